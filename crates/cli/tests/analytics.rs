//! The analytics commands against a suite on the embedded default: the export of a period as
//! CSV, hot spots, and the register of suggestions, as a person at a terminal runs them.

mod common;

use common::{Cli, text};
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_hotspots_and_suggestions_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let running = common::suite(dir.path(), false, None).await;
    let cli = Cli {
        grpc: running.grpc_addr,
        dir: dir.path().to_owned(),
    };
    let year = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y")
        .to_string();
    let out = tokio::task::spawn_blocking(move || {
        let clerk = cli.token("pingcheng.bureau", "clerk");
        let case = cli.register(&clerk, "02.01", "140213002", "工地拖欠工资");
        let leader = cli.token("pingcheng.bureau", "leader");
        // the export lists the case once analytics has it
        let mut csv = String::new();
        for _ in 0..200 {
            let out = cli.run(&leader, &["export", &year, "--out", "cases.csv"]);
            assert!(out.status.success(), "{}", text(&out));
            csv = std::fs::read_to_string(cli.dir.join("cases.csv")).unwrap();
            if csv.contains(&case) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(csv.starts_with("case_number,channel,"), "{csv}");
        assert!(csv.contains(&case) && csv.contains("02.01"), "{csv}");
        assert!(
            !csv.contains("140213198807150027") && !csv.contains("赵敏"),
            "no personal data"
        );
        let hot = cli.run(&leader, &["hotspots"]);
        assert!(
            hot.status.success() && text(&hot).contains("hot spots of"),
            "{}",
            text(&hot)
        );
        let added = cli.run(
            &leader,
            &[
                "suggestion",
                "add",
                "--addressee",
                "区委、区政府",
                "--title",
                "治理工程欠薪",
                "--text",
                "建议建立工程款支付担保制度",
                "--output",
                "json",
            ],
        );
        assert!(added.status.success(), "{}", text(&added));
        let listed = cli.run(&leader, &["suggestion", "list", &year]);
        assert!(
            listed.status.success() && text(&listed).contains("治理工程欠薪"),
            "{}",
            text(&listed)
        );
        // a department's handler keeps no register: refused, exit 3
        let handler = cli.token("pingcheng.hrss", "handler");
        let refused = cli.run(
            &handler,
            &[
                "suggestion",
                "add",
                "--addressee",
                "x",
                "--title",
                "x",
                "--text",
                "x",
            ],
        );
        assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
        // a period that is not one: refused by rule, exit 5, naming the field
        let bad = cli.run(&leader, &["situation", "2026-13"]);
        assert_eq!(bad.status.code(), Some(5), "{}", text(&bad));
        assert!(text(&bad).contains("period: \"2026-13\""), "{}", text(&bad));
        Path::new(&cli.dir).join("cases.csv").exists()
    })
    .await
    .unwrap();
    assert!(out);
    running.shutdown().await;
}
