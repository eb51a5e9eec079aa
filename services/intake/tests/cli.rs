//! The binary's command line: `issue-token` prints a token the service accepts, and the service
//! refuses to start without keys unless told it is a dev run.

use petition_auth::{Role, TokenKeys};
use petition_testkit::process::refused;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_petition-intake");

#[test]
fn issue_token_signs_with_the_dev_key_only_for_a_dev_run() {
    let issue = |extra: &[&str]| {
        Command::new(BIN)
            .args([
                "issue-token",
                "--org",
                "pingcheng.bureau",
                "--role",
                "clerk",
            ])
            .args(extra)
            .env_remove("PETITION_TOKEN_KEY")
            .env_remove("PETITION_DEV")
            .output()
            .unwrap()
    };
    // Without a key a production service refuses to start; a token it would refuse is no help.
    let no_key = issue(&[]);
    refused(&no_key, &["PETITION_TOKEN_KEY", "--dev"]);
    assert!(no_key.stdout.is_empty());
    let out = issue(&["--dev"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let p = TokenKeys::dev().verify(token.trim()).unwrap();
    assert_eq!(p.org, "pingcheng.bureau");
    assert_eq!(p.role, Role::Clerk);
    assert_eq!(p.subject, "clerk@pingcheng.bureau");
}

#[test]
fn issue_token_uses_the_configured_key() {
    let key = "a-configured-token-key-of-at-least-32-bytes";
    let out = Command::new(BIN)
        .args([
            "issue-token",
            "--org",
            "datong.bureau",
            "--role",
            "upstream",
        ])
        .args(["--subject", "datong.12345"])
        .env("PETITION_TOKEN_KEY", key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(TokenKeys::dev().verify(token.trim()).is_err());
    let p = TokenKeys::hs256(key.as_bytes())
        .unwrap()
        .verify(token.trim())
        .unwrap();
    assert_eq!(p.subject, "datong.12345");
}

#[test]
fn a_token_for_an_organ_outside_the_tree_is_refused_when_asked_for() {
    let out = Command::new(BIN)
        .args([
            "issue-token",
            "--dev",
            "--org",
            "nonexistent.org",
            "--role",
            "clerk",
        ])
        .output()
        .unwrap();
    refused(&out, &["--org", "not in the organisation tree"]);
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unknown_role_is_refused_by_name() {
    let out = Command::new(BIN)
        .args(["issue-token", "--org", "x", "--role", "mayor"])
        .output()
        .unwrap();
    refused(&out, &["unknown role"]);
}

#[test]
fn serving_without_keys_fails_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--database-url")
        .arg(format!("sqlite://{}/intake.db", dir.path().display()))
        .env_remove("PETITION_DATA_KEY")
        .env_remove("PETITION_TOKEN_KEY")
        .env_remove("PETITION_DEV")
        .output()
        .unwrap();
    refused(&out, &["PETITION_DATA_KEY", "--dev"]);
}

#[tokio::test]
async fn replay_puts_a_streams_events_back_in_the_outbox() {
    use petition_testkit::grpc::{intake_as, load_request, who};
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let mut intake =
        petition_testkit::ServiceProcess::spawn_dev(BIN, &["--data-dir", data_dir], &[]);
    let mut c = intake_as(intake.grpc_addr, &who("pingcheng.bureau", Role::Clerk)).await;
    for n in 0..3 {
        c.register_petition(load_request(n)).await.unwrap();
    }
    drop(c);
    intake.terminate();
    intake.expect_clean_exit();

    let replay = |stream: &str| {
        Command::new(BIN)
            .args([
                "replay",
                "--stream",
                stream,
                "--since",
                "2000-01-01T00:00:00+08:00",
            ])
            .args(["--data-dir", data_dir])
            .output()
            .unwrap()
    };
    let out = replay("petition.intake.v1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("3 events of petition.intake.v1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = replay("petition.routing.v1");
    refused(&out, &["this binary publishes petition.intake.v1"]);
    let out = replay("petition.nowhere.v1");
    refused(&out, &["unknown Stream"]);
}
