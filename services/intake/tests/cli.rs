//! The binary's command line: the service refuses to start without keys unless told it is a
//! dev run, and `replay` puts a stream's events back in the outbox.

use petition_auth::Role;
use petition_testkit::process::refused;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_petition-intake");

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
