//! `petition recuse` (回避, Art. 28 ¶3): the housing bureau's leader takes a handler out of a
//! case; from then on every command of that handler on it answers "not found" (exit 4), while
//! a colleague accepts it.

mod common;

use common::{Cli, text};
use std::process::Command;

fn token_for(subject: &str, org: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_petition"))
        .args(["token", "issue", "--dev", "--org", org, "--role", role])
        .args(["--subject", subject])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recused_handler_finds_the_case_nowhere_and_a_colleague_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let running = common::suite(dir.path(), false, None).await;
    let cli = Cli {
        grpc: running.grpc_addr,
        dir: dir.path().to_owned(),
    };
    tokio::task::spawn_blocking(move || {
        let clerk = cli.token("pingcheng.bureau", "clerk");
        let case = cli.register(&clerk, "01.01", "140213001", "小区漏水");
        let routed = cli.run(&clerk, &["case", "get", &case, "--wait", "routed"]);
        assert!(routed.status.success(), "{}", text(&routed));

        let li = token_for("handler.li", "pingcheng.housing", "handler");
        assert!(cli.run(&li, &["case", "get", &case]).status.success());
        // A handler may not take a colleague out; a wrong reason is a usage error.
        let refused = cli.run(
            &li,
            &[
                "recuse",
                &case,
                "--subject",
                "handler.zhang",
                "--reason",
                "party",
            ],
        );
        assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
        let usage = cli.run(
            &li,
            &[
                "recuse",
                &case,
                "--subject",
                "handler.li",
                "--reason",
                "friend",
            ],
        );
        assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));

        let leader = cli.token("pingcheng.housing", "leader");
        let out = cli.run(
            &leader,
            &[
                "recuse",
                &case,
                "--subject",
                "handler.li",
                "--reason",
                "relative",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("handler.li is out of case") && text(&out).contains("relative"),
            "{}",
            text(&out)
        );
        let again = cli.run(
            &leader,
            &[
                "recuse",
                &case,
                "--subject",
                "handler.li",
                "--reason",
                "party",
            ],
        );
        assert_eq!(again.status.code(), Some(5), "{}", text(&again));

        let accept = cli.run(&li, &["accept", &case]);
        assert_eq!(accept.status.code(), Some(4), "{}", text(&accept));
        // intake hears of it from routing's stream
        let mut got = None;
        for _ in 0..400 {
            let out = cli.run(&li, &["case", "get", &case]);
            if !out.status.success() {
                got = Some(out);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let got = got.expect("intake hides the case from handler.li");
        assert_eq!(got.status.code(), Some(4), "{}", text(&got));
        assert!(!text(&got).contains(&case), "{}", text(&got));

        let zhang = token_for("handler.zhang", "pingcheng.housing", "handler");
        let accepted = cli.run(&zhang, &["accept", &case]);
        assert!(accepted.status.success(), "{}", text(&accepted));

        // An admin lifts li's, recorded in error; li reads the case again.
        let admin = cli.token("shanxi.bureau", "admin");
        let lifted = cli.run(
            &admin,
            &[
                "recuse",
                &case,
                "--subject",
                "handler.li",
                "--lift",
                "wrong person",
            ],
        );
        assert!(lifted.status.success(), "{}", text(&lifted));
        assert!(
            text(&lifted).contains("no longer out of case"),
            "{}",
            text(&lifted)
        );
        let mut seen = false;
        for _ in 0..400 {
            if cli.run(&li, &["case", "get", &case]).status.success() {
                seen = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(seen, "intake shows handler.li the case again");
    })
    .await
    .unwrap();
    running.shutdown().await;
}
