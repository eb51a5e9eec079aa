//! The README's tour, run as written: the lines between `<!-- tour -->` and `<!-- /tour -->`
//! go to bash, one script, against a suite this test starts on the embedded default, with the
//! `petition` binary of this build first on the PATH. If the README and the product drift
//! apart, this fails.

mod common;

use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../../../README.md");

/// The shell lines of the tour block.
fn tour() -> String {
    let start = README.find("<!-- tour -->").expect("a tour in the README");
    let end = README.find("<!-- /tour -->").expect("the tour's end");
    README[start..end]
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_readme_tour_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let running = common::suite(dir.path(), true, None).await;

    let script = dir.path().join("tour.sh");
    std::fs::write(&script, format!("set -euo pipefail\n{}\n", tour())).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_petition"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (grpc, admin) = (running.grpc_addr, running.admin_addr.unwrap());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(&script)
            .current_dir(script.parent().unwrap())
            .env("PATH", path)
            .env("PETITION_ADDR", grpc.to_string())
            .env("PETITION_ADMIN", admin.to_string())
            .env_remove("PETITION_TOKEN")
            .env_remove("PETITION_TOKEN_KEY")
            .env_remove("PETITION_CONFIG_DIR")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    running.shutdown().await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the tour failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    // What each step shows a person following it.
    for says in [
        "case 140213-2026-",
        "status       routed",
        "held by      pingcheng.housing",
        "to claim",
        "state            accepted",
        "reply due",
        "state            answered",
        "stage        answered",
        "a written reply is due by",
        "rated by the petitioner: bureau satisfied, handling organ satisfied",
        "件次 cases",
        "及时受理率",
        "wrote situation.html",
    ] {
        assert!(stdout.contains(says), "{says:?} missing from:\n{stdout}");
    }
    let report = std::fs::read_to_string(dir.path().join("situation.html")).unwrap_or_default();
    assert!(report.contains("信访形势分析报告"), "the report is written");
}
