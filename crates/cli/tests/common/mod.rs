//! What the command-line tests share: the suite on the embedded default, every service in one
//! process, on a port of its own, and the `petition` binary run against it.

// Each test file is its own crate and uses part of this.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The `petition` binary of this build, against a suite at `grpc`, in `dir`.
pub struct Cli {
    pub grpc: std::net::SocketAddr,
    pub dir: std::path::PathBuf,
}

impl Cli {
    pub fn run(&self, token: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_petition"))
            .args(args)
            .current_dir(&self.dir)
            .env("PETITION_ADDR", self.grpc.to_string())
            .env("PETITION_TOKEN", token)
            .output()
            .unwrap()
    }

    pub fn token(&self, org: &str, role: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_petition"))
            .args(["token", "issue", "--dev", "--org", org, "--role", role])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

/// What a command printed, standard output then standard error.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Starts the suite with its SQLite files under `dir/data`, the admin port when `admin`, and
/// a simulated clock from `dev_clock` when given.
pub async fn suite(
    dir: &std::path::Path,
    admin: bool,
    dev_clock: Option<chrono::DateTime<chrono::Utc>>,
) -> petition_host::Running {
    petition_telemetry::init_for_tests();
    let mut cfg = petition_host::HostConfig::new("suite");
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    if admin {
        cfg.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    }
    cfg.dev = true;
    cfg.dev_clock = dev_clock;
    cfg.data_dir = dir.join("data");
    petition_host::start(
        cfg,
        None,
        None,
        &[
            &petition_analytics::Analytics::default(),
            &petition_supervision::Supervision::default(),
            &petition_routing::Routing::default(),
            &petition_intake::Intake::default(),
        ],
    )
    .await
    .expect("the suite starts")
}
