//! `petition exchanges`: a city whose district peer does not answer lists the case it routed
//! there as retrying, with the reason; its supervisor sends it again at once; a handler may
//! not manage exchanges.

mod common;

use common::{Cli, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_lists_a_case_waiting_for_its_peer_and_sends_it_again() {
    let dir = tempfile::tempdir().unwrap();
    // A district peer at an address where nothing listens.
    let away = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let peers = dir.path().join("peers.toml");
    std::fs::write(
        &peers,
        format!(
            "name = \"datong\"\nregions = [\"140200\"]\n[[peer]]\nname = \"pingcheng\"\n\
             address = \"http://{away}\"\nregions = [\"140213\"]\ntoken = \"unused\"\n"
        ),
    )
    .unwrap();
    let running = common::suite_with(
        dir.path(),
        false,
        None,
        petition_intake::Intake {
            peers: Some(peers),
            exchange_retry_max: std::time::Duration::from_secs(1),
            ..petition_intake::Intake::default()
        },
    )
    .await;
    let cli = Cli {
        grpc: running.grpc_addr,
        dir: dir.path().to_owned(),
    };
    tokio::task::spawn_blocking(move || {
        let clerk = cli.token("pingcheng.bureau", "clerk");
        let case = cli.register(&clerk, "01.01", "140213001", "小区漏水");
        let supervisor = cli.token("pingcheng.bureau", "supervisor");
        // The case goes to Pingcheng's housing bureau, which the peer serves: it waits.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let listed = loop {
            let out = cli.run(&supervisor, &["exchanges", "--status", "retrying"]);
            assert!(out.status.success(), "{}", text(&out));
            let shown = text(&out);
            if shown.contains(&case) || std::time::Instant::now() > deadline {
                break shown;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        assert!(listed.contains(&case), "{listed}");
        assert!(listed.contains("pingcheng.housing"), "{listed}");
        assert!(listed.contains("pingcheng did not answer"), "{listed}");

        let shown = cli.run(&supervisor, &["case", "get", &case]);
        assert!(
            text(&shown).contains("retrying to pingcheng: pingcheng did not answer"),
            "{}",
            text(&shown)
        );

        let again = cli.run(&supervisor, &["exchanges", "retry", &case]);
        assert!(again.status.success(), "{}", text(&again));
        assert!(
            text(&again).contains("retrying to pingcheng"),
            "{}",
            text(&again)
        );

        let json = cli.run(&supervisor, &["exchanges", "--output", "json"]);
        assert!(json.status.success(), "{}", text(&json));
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(v["exchanges"][0]["case_number"], case.as_str());

        let handler = cli.token("pingcheng.housing", "handler");
        let refused = cli.run(&handler, &["exchanges"]);
        assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
        let unknown = cli.run(&supervisor, &["exchanges", "retry", "140200-2026-999999"]);
        assert_eq!(unknown.status.code(), Some(4), "{}", text(&unknown));
    })
    .await
    .unwrap();
    running.shutdown().await;
}
