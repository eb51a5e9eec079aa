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

impl Cli {
    /// A clerk of the Pingcheng bureau registers an online petition by 赵敏 (ID
    /// 140213198807150027) in `category` at `location`: its case number.
    pub fn register(&self, clerk: &str, category: &str, location: &str, title: &str) -> String {
        let out = self.run(
            clerk,
            &[
                "register",
                "--channel",
                "online",
                "--name",
                "赵敏",
                "--id-number",
                "140213198807150027",
                "--category",
                category,
                "--location",
                location,
                "--title",
                title,
                "--content",
                title,
                "-q",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        text(&out).split_whitespace().next().unwrap().to_owned()
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
    suite_with(dir, admin, dev_clock, petition_intake::Intake::default()).await
}

/// The embedded suite with intake's settings given (a peers file, say).
pub async fn suite_with(
    dir: &std::path::Path,
    admin: bool,
    dev_clock: Option<chrono::DateTime<chrono::Utc>>,
    intake: petition_intake::Intake,
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
            &intake,
        ],
    )
    .await
    .expect("the suite starts")
}
