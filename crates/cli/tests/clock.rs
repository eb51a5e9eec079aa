//! `petition clock` moves a development suite's simulated time through its admin port: by a
//! step, or to an instant given with its offset; never back.

mod common;

use std::process::{Command, Output};

fn petition(admin: std::net::SocketAddr, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_petition"))
        .args(args)
        .env("PETITION_ADMIN", admin.to_string())
        .output()
        .unwrap()
}

fn instant(out: &Output) -> chrono::DateTime<chrono::Utc> {
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .to_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_moves_by_a_step_or_to_an_instant_and_never_back() {
    let dir = tempfile::tempdir().unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-02-10T09:00:00+08:00")
        .unwrap()
        .to_utc();
    let running = common::suite(dir.path(), true, Some(start)).await;
    let admin = running.admin_addr.unwrap();

    let shown = instant(&petition(admin, &["clock", "show"]));
    assert!(shown >= start && shown - start < chrono::Duration::minutes(1));

    // 09:00 Beijing on 03-18 is 01:00 UTC: the clock reads that instant or just after it.
    let to = petition(
        admin,
        &["clock", "advance", "--to", "2026-03-18T09:00:00+08:00"],
    );
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-18T01:00:00Z")
        .unwrap()
        .to_utc();
    let moved = instant(&to);
    assert!(
        moved >= at && moved - at < chrono::Duration::seconds(1),
        "{moved}"
    );

    let later = instant(&petition(admin, &["clock", "advance", "--days", "2"]));
    assert!(later - moved >= chrono::Duration::days(2), "{later}");

    // Back to an instant already passed: refused, and the clock stays.
    let back = petition(
        admin,
        &["clock", "advance", "--to", "2026-03-18T09:00:00+08:00"],
    );
    assert_eq!(back.status.code(), Some(5), "{back:?}");
    assert!(
        String::from_utf8_lossy(&back.stderr).contains("only moves forward"),
        "{back:?}"
    );
    // No step at all, or a step back: the command line is wrong.
    for wrong in [
        &["clock", "advance"][..],
        &["clock", "advance", "--days", "-1"],
    ] {
        let out = petition(admin, wrong);
        assert_eq!(out.status.code(), Some(2), "{wrong:?}: {out:?}");
    }
    // A step and an instant at once: the command line says they do not go together.
    let both = petition(
        admin,
        &[
            "clock",
            "advance",
            "--days",
            "1",
            "--to",
            "2026-05-01T09:00:00+08:00",
        ],
    );
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    let stays = instant(&petition(admin, &["clock", "show"]));
    assert!(stays >= later && stays - later < chrono::Duration::minutes(1));
    running.shutdown().await;
}
