//! `petition audit` against a suite on the embedded default: a case's entries name who did
//! what (the clerk's registration, the reveal of personal data, the handler's acceptance, what
//! routing decided on its own); the chains verify; a row altered in the database afterwards is
//! named by `petition audit verify`, which exits 5.

mod common;

use common::{Cli, text};

fn chained(cli: &Cli, admin: &str, service: &str, at_least: u64) {
    for _ in 0..400 {
        let out = cli.run(
            admin,
            &["audit", "verify", "--service", service, "-o", "json"],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let c = &v["chains"][0];
        if c["pending"].as_str() == Some("0")
            && c["entries"].as_str().and_then(|n| n.parse::<u64>().ok()) >= Some(at_least)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("the {service} chain never held {at_least} linked entries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cases_entries_name_who_did_what_and_a_tampered_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let running = common::suite(dir.path(), false, None).await;
    let cli = Cli {
        grpc: running.grpc_addr,
        dir: dir.path().to_owned(),
    };
    let db = dir.path().join("data").join("intake.db");
    tokio::task::spawn_blocking(move || {
        let clerk = cli.token("pingcheng.bureau", "clerk");
        let case = cli.register(&clerk, "01.01", "140213001", "小区漏水");
        let routed = cli.run(&clerk, &["case", "get", &case, "--wait", "routed"]);
        assert!(routed.status.success(), "{}", text(&routed));
        let shown = cli.run(
            &clerk,
            &["case", "reveal", &case, "--purpose", "calling her back"],
        );
        assert!(
            shown.status.success() && text(&shown).contains("140213198807150027"),
            "{}",
            text(&shown)
        );
        let handler = cli.token("pingcheng.housing", "handler");
        let accepted = cli.run(&handler, &["accept", &case]);
        assert!(accepted.status.success(), "{}", text(&accepted));

        let admin = cli.token("shanxi.bureau", "admin");
        chained(&cli, &admin, "intake", 2);
        chained(&cli, &admin, "routing", 2);
        let intake = text(&cli.run(
            &admin,
            &["audit", "list", "--service", "intake", "--case", &case],
        ));
        let lines = |action: &str| {
            intake
                .lines()
                .filter(|l| l.contains(action))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert!(
            lines("petition.registered")
                .iter()
                .any(|l| l.contains("clerk@pingcheng.bureau")),
            "{intake}"
        );
        assert!(
            lines("personal data revealed")
                .iter()
                .any(|l| l.contains("clerk@pingcheng.bureau")),
            "the clerk's `case reveal` showed the petitioner in the clear: {intake}"
        );
        let routing = text(&cli.run(
            &admin,
            &["audit", "list", "--service", "routing", "--case", &case],
        ));
        assert!(
            routing.contains("petition.routed") && routing.contains("routing"),
            "{routing}"
        );
        let by_handler = text(&cli.run(
            &admin,
            &[
                "audit",
                "list",
                "--service",
                "routing",
                "--actor",
                "handler@pingcheng.housing",
            ],
        ));
        assert!(
            by_handler
                .lines()
                .any(|l| l.contains("case.accepted") && l.contains("pingcheng.housing")),
            "{by_handler}"
        );
        assert!(
            !by_handler.contains("petition.routed"),
            "only the handler's own: {by_handler}"
        );
        let district = cli.token("pingcheng.bureau", "admin");
        let denied = cli.run(&district, &["audit", "verify"]);
        assert_eq!(denied.status.code(), Some(3), "{}", text(&denied));

        let ok = cli.run(&admin, &["audit", "verify"]);
        assert!(ok.status.success(), "{}", text(&ok));
        assert_eq!(text(&ok).matches("intact").count(), 4, "{}", text(&ok));

        // The head as the log gave it holds; a head the chain never had does not.
        let v: serde_json::Value = serde_json::from_slice(
            &cli.run(
                &admin,
                &["audit", "verify", "--service", "intake", "-o", "json"],
            )
            .stdout,
        )
        .unwrap();
        let (seq, hash) = (
            v["chains"][0]["head_seq"].as_str().unwrap().to_owned(),
            v["chains"][0]["head_hash"].as_str().unwrap().to_owned(),
        );
        let held = cli.run(
            &admin,
            &[
                "audit",
                "verify",
                "--expect",
                &format!("intake:{seq}:{hash}"),
            ],
        );
        assert!(held.status.success(), "{}", text(&held));
        let other = format!("intake:{seq}:{}", "0".repeat(64));
        let missed = cli.run(&admin, &["audit", "verify", "--expect", &other]);
        assert_eq!(missed.status.code(), Some(5), "{}", text(&missed));
        assert!(
            text(&missed).contains("the anchor given to verify"),
            "{}",
            text(&missed)
        );

        // An anchor for a chain not checked is refused, not ignored.
        let typo = cli.run(
            &admin,
            &[
                "audit",
                "verify",
                "--expect",
                &format!("inatke:{seq}:{hash}"),
            ],
        );
        assert!(!typo.status.success(), "{}", text(&typo));
        assert!(
            text(&typo).contains("not among the chains"),
            "{}",
            text(&typo)
        );

        // Someone with the database file rewrites who registered the case.
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE seq = 1")
                .execute(&mut c)
                .await
                .unwrap();
        });
        let broken = cli.run(&admin, &["audit", "verify"]);
        assert_eq!(broken.status.code(), Some(5), "{}", text(&broken));
        let said = text(&broken);
        assert!(
            said.contains("intake audit chain is broken at entry 1") && said.contains("altered"),
            "{said}"
        );
        assert_eq!(
            said.matches("intact").count(),
            3,
            "the other chains hold: {said}"
        );
    })
    .await
    .unwrap();
    running.shutdown().await;
}
