//! The suite as a user runs it: it takes every flag the single services take (and their
//! environment variables), and a development run walks a simulated clock forward.

use petition_auth::Role;
use petition_proto::v1 as pb;
use petition_testkit::ServiceProcess;
use petition_testkit::grpc::{intake_as, timestamp, who};
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_petition-suite");

#[test]
fn the_suite_takes_every_flag_of_every_service() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--admin-listen",
        "--database-url",
        "--data-dir",
        "--redis-url",
        "--stream-prefix",
        "--token-key",
        "--dev",
        "--dev-clock",
        "--config-dir",
        "--log-format",
        "--outbox-retention-days",
        "--data-key",
        "--group-threshold",
        "--repeat-window-days",
        "--earliest-received-at",
        "--rules-file",
        "--report-days",
        "--reminder-days",
        "--escalate-after-working-days",
        "--escalation",
        "--rating-days",
        "--extension-approver",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(help.contains("replay"), "{help}");
}

#[test]
fn a_simulated_clock_is_for_development_runs_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--dev-clock", "2026-02-10T09:00:00+08:00"])
        .arg("--data-dir")
        .arg(dir.path())
        .env(
            "PETITION_TOKEN_KEY",
            "a-configured-token-key-of-at-least-32-bytes",
        )
        .env(
            "PETITION_DATA_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env_remove("PETITION_DEV")
        .output()
        .unwrap();
    petition_testkit::process::refused(&out, &["--dev-clock", "--dev"]);
}

/// An HTTP/1.0 request to the admin port: the status line and the body.
async fn admin(addr: std::net::SocketAddr, method: &str, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).await.unwrap();
    let status = all.lines().next().unwrap_or_default().to_owned();
    let body = all
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    (status, body)
}

fn instant(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .to_utc()
}

#[tokio::test]
async fn a_development_run_walks_simulated_time_and_honours_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut suite = ServiceProcess::spawn_dev(
        BIN,
        &[
            "--dev-clock",
            "2026-02-10T09:00:00+08:00",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[("PETITION_GROUP_THRESHOLD", "3")],
    );
    let admin_addr = suite.admin_addr.expect("an admin port");
    let start = instant(&admin(admin_addr, "GET", "/clock").await.1);
    assert!(
        (start - instant("2026-02-10T01:00:00Z"))
            .num_seconds()
            .abs()
            < 60,
        "{start}"
    );
    let moved = instant(
        &admin(admin_addr, "POST", "/clock/advance?days=15&hours=2")
            .await
            .1,
    );
    assert!(moved - start >= chrono::Duration::hours(15 * 24 + 2));
    let (status, body) = admin(admin_addr, "POST", "/clock/advance?days=-1").await;
    assert!(
        status.contains("400") && body.contains("only moves forward"),
        "{status} {body}"
    );
    // A step past any sensible date is refused, and the clock (and everything that reads it)
    // keeps working afterwards.
    let (status, body) = admin(admin_addr, "POST", "/clock/advance?days=100000000").await;
    assert!(
        status.contains("400") && body.contains("2200-01-01"),
        "{status} {body}"
    );
    let still = instant(&admin(admin_addr, "GET", "/clock").await.1);
    assert!(
        still >= moved && still - moved < chrono::Duration::minutes(1),
        "{still}"
    );
    // To an instant: forward only, and not together with a step.
    let (status, body) = admin(admin_addr, "POST", "/clock/advance?to=2026-02-11T01:00:00Z").await;
    assert!(
        status.contains("400") && body.contains("only moves forward"),
        "{status} {body}"
    );
    let (status, body) = admin(admin_addr, "POST", "/clock/advance?to=2026-03-01&days=1").await;
    assert!(
        status.contains("400") && body.contains("not both"),
        "{status} {body}"
    );
    let (status, body) = admin(admin_addr, "POST", "/clock/advance?to=tomorrow").await;
    assert!(
        status.contains("400") && body.contains("to:") && body.contains("RFC 3339"),
        "{status} {body}"
    );
    // The '+' of an offset typed unencoded arrives as a space, and is read as meant.
    let march = instant("2026-03-01T01:00:00Z");
    let moved = instant(
        &admin(
            admin_addr,
            "POST",
            "/clock/advance?to=2026-03-01T09:00:00+08:00",
        )
        .await
        .1,
    );
    assert!(
        moved >= march && moved - march < chrono::Duration::seconds(1),
        "{moved}"
    );

    // A group of three is a group visit here (PETITION_GROUP_THRESHOLD=3), registered in
    // simulated time.
    let mut c = intake_as(suite.grpc_addr, &who("pingcheng.bureau", Role::Clerk)).await;
    let mut req = petition_testkit::grpc::load_request(7);
    req.channel = pb::Channel::Visit as i32;
    req.people_present = 3;
    req.representatives = 1;
    req.received_at = Some(timestamp(moved - chrono::Duration::hours(1)));
    let r = c.register_petition(req).await.unwrap().into_inner();
    assert!(r.flags.unwrap().group);
    let case = c
        .get_case(pb::GetCaseRequest {
            case_id: r.case_id,
            case_number: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let registered = case.registered_at.unwrap();
    let registered = chrono::DateTime::from_timestamp(registered.seconds, 0).unwrap();
    assert!(
        registered >= moved - chrono::Duration::seconds(5),
        "{registered} vs {moved}"
    );
    // A second suite on the same data directory is refused: it would write the same files.
    let second = Command::new(BIN)
        .args([
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .env_remove("PETITION_DATABASE_URL")
        .env_remove("PETITION_REDIS_URL")
        .output()
        .unwrap();
    petition_testkit::process::refused(
        &second,
        &["--data-dir", "in use by another running petition process"],
    );

    // The client's connection stays open: the shutdown does not wait for it.
    suite.terminate();
    suite.expect_clean_exit();
    assert!(
        !suite.log.iter().any(|l| l.contains("grace period")),
        "an idle client connection does not hold the shutdown up"
    );
    drop(c);
}

/// Logs go to standard error, and a log that is not a terminal (a file, a pipe, a container's
/// log driver) gets no colour codes.
#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out.log"), dir.path().join("err.log"));
    let mut child = Command::new(BIN)
        .args(["--dev", "--log-format", "pretty"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let serving = (0..400).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(25));
        std::fs::read_to_string(&err).is_ok_and(|l| l.contains("serving"))
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(&err).unwrap();
    assert!(serving, "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "", "logs on stdout");
}

/// `--demo` plays a history through the suite's own APIs and says what it did and what to try.
#[test]
fn the_demo_fills_a_fresh_suite_and_says_what_to_try() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let mut suite = ServiceProcess::spawn_dev(
        BIN,
        &[
            "--demo",
            "--demo-days",
            "12",
            "--demo-per-day",
            "4",
            "--data-dir",
            data,
        ],
        &[],
    );
    let done = suite.wait_for_line(
        |l| l.starts_with("DEMO done") || l.contains("DEMO stopped"),
        std::time::Duration::from_secs(120),
    );
    let done = done.unwrap_or_else(|| panic!("no end of the demo:\n{}", suite.log.join("\n")));
    assert!(done.starts_with("DEMO done: "), "{done}");
    assert!(
        suite
            .wait_for_line(
                |l| l.contains("petition report"),
                std::time::Duration::from_secs(5)
            )
            .is_some()
    );
    suite.terminate();
    // a second demo on the same data directory is refused: it plays from scratch
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--demo",
        ])
        .args(["--data-dir", data])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--demo:") && err.contains("fresh --data-dir"),
        "{err}"
    );
}
