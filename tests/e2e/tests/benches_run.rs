//! The benchmark binaries still run, on a small scale: a bench that no test runs breaks without
//! anyone noticing (the clock-engine bench did, when the supervision schema grew a NOT NULL
//! column its fill did not write). What they measure is theirs to report; here they only have
//! to finish, find what they seeded, and reach every case.

use petition_testkit::{TestDatabase, TestRedis, require};
use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{bin} {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn the_clock_engine_bench_fills_scans_and_fires() {
    let db = require!(TestDatabase::create());
    let out = run(
        env!("CARGO_BIN_EXE_clock-engine"),
        &[
            "--database-url",
            &db.url,
            "--open",
            "2000",
            "--due",
            "20",
            "--burst",
            "200",
        ],
    );
    assert!(
        out.contains("with 20 due") && out.contains("fired 20 of 20"),
        "{out}"
    );
}

#[tokio::test]
async fn the_pipeline_latency_bench_reaches_every_case() {
    let db = require!(TestDatabase::create());
    let redis = require!(TestRedis::create());
    let out = run(
        env!("CARGO_BIN_EXE_pipeline-latency"),
        &[
            "--database-url",
            &db.url,
            "--redis-url",
            &redis.url,
            "--rate",
            "20",
            "--seconds",
            "1",
            "--warmup",
            "0",
        ],
    );
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("registrations/s"))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("20 cases") && l.ends_with("not reached 0")),
        "{out}"
    );
}

#[test]
fn the_routing_decision_bench_decides() {
    let out = run(
        env!("CARGO_BIN_EXE_routing-decision"),
        &["--rules", "10", "--decisions", "1000"],
    );
    assert!(!out.trim().is_empty());
}

#[tokio::test]
async fn the_security_cost_bench_compares_a_baseline_that_keeps_no_audit_log() {
    // The bench makes its own databases and stream prefix; it only needs the servers.
    let _ = require!(TestDatabase::create());
    let _ = require!(TestRedis::create());
    let out = run(
        env!("CARGO_BIN_EXE_register-cost"),
        &[
            "--clients",
            "2",
            "--seconds",
            "1",
            "--warmup-seconds",
            "0",
            "--rounds",
            "1",
        ],
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("cases stored"))
        .unwrap_or_else(|| panic!("{out}"));
    let numbers: Vec<i64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [on_cases, off_cases, on_audit, off_audit] = numbers[..] else {
        panic!("{line}");
    };
    assert!(on_cases > 0 && off_cases > 0, "{line}");
    assert_eq!(
        on_audit, on_cases,
        "one audit entry per registration: {line}"
    );
    assert_eq!(off_audit, 0, "the baseline keeps no audit log: {line}");
    assert!(out.contains("security adds"), "{out}");
}
