//! `petition import` against a suite this test starts, on PostgreSQL + Redis and on the
//! embedded default: historical cases come in under their original numbers, a bad row is
//! reported with its reason and nothing else is lost, a second run imports nothing, an
//! interrupted run resumes from its checkpoint, and history is neither routed nor supervised.

use petition_auth::{Role, TokenKeys};
use petition_proto::v1 as pb;
use petition_testkit::grpc::{bearer, connect, synthetic_resident_id, who};
use std::path::Path;
use std::process::Command;

/// `rows` historical cases, rows 7, 19 and 25 bad (a wrong check digit, an unknown category,
/// a case still open in the old system).
fn export(rows: u64) -> String {
    (1..=rows)
        .map(|n| {
            let id = if n == 7 {
                "140213198304157570".to_owned()
            } else {
                synthetic_resident_id(9_000 + n)
            };
            serde_json::json!({
                "case_number": format!("OLD-2024-{n:05}"),
                "status": if n == 25 { "in_handling" } else { "closed" },
                "channel": "letter",
                "received_by": if n % 2 == 0 { "pingcheng.bureau" } else { "datong.bureau" },
                "received_at": format!("2024-03-{:02}T10:00:00+08:00", 1 + n % 28),
                "petitioners": [{"name": "历史信访人", "id_number": id}],
                "category": if n == 19 { "99.99" } else { "01.01" },
                "problem_location": "140213001",
                "title": format!("历史信访事项 {n}"),
                "content": "旧系统导出的历史信访事项。",
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn suite(dir: &Path, pg: Option<(&str, &str, &str)>) -> petition_host::Running {
    petition_telemetry::init_for_tests();
    let mut cfg = petition_host::HostConfig::new("suite");
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dev = true;
    cfg.data_dir = dir.join("data");
    cfg.pg_max_connections = 4;
    if let Some((db, redis, prefix)) = pg {
        cfg.database_url = Some(db.to_owned());
        cfg.redis_url = Some(redis.to_owned());
        cfg.stream_prefix = prefix.to_owned();
    }
    petition_host::start(
        cfg,
        None,
        None,
        &[
            &petition_supervision::Supervision::default(),
            &petition_routing::Routing::default(),
            &petition_intake::Intake::default(),
        ],
    )
    .await
    .expect("the suite starts")
}

async fn petition(addr: std::net::SocketAddr, args: Vec<String>) -> std::process::Output {
    let token = TokenKeys::dev().issue(
        &who("datong.bureau", Role::Admin),
        chrono::Duration::hours(1),
    );
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_petition"))
            .args(args)
            .env("PETITION_ADDR", addr.to_string())
            .env("PETITION_TOKEN", token)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn history_comes_in_once(running: &petition_host::Running, dir: &Path) {
    let file = dir.join("history.jsonl");
    std::fs::write(&file, export(40)).unwrap();
    let import = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "import".into(),
            file.display().to_string(),
            "--source-system".into(),
            "old-xf".into(),
            "--batch".into(),
            "7".into(),
            "--segment".into(),
            "10".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        petition(running.grpc_addr, args)
    };
    // Interrupted after row 20: the checkpoint says so; the run resumes at row 21.
    let checkpoint = dir.join("history.jsonl.checkpoint");
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::write(
        &checkpoint,
        serde_json::json!({"source_system": "old-xf", "file_len": len, "next_row": 21,
            "imported": 0, "already_imported": 0, "rejected": 0})
        .to_string(),
    )
    .unwrap();
    let out = import(&[]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{said}{err}");
    assert!(err.contains("resuming at row 21"), "{err}");
    assert!(
        said.contains("20 rows") && said.contains("19 imported, 0 there already, 1 rejected"),
        "{said}"
    );
    // From the start: rows 1–20 come in, 21–40 are there already, 7, 19 and 25 are refused.
    let out = import(&["--restart"]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{said}");
    assert!(
        said.contains("18 imported, 19 there already, 3 rejected"),
        "{said}"
    );
    let rejected = std::fs::read_to_string(dir.join("history.jsonl.rejected.jsonl")).unwrap();
    let reasons: Vec<serde_json::Value> = rejected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "each once: {rejected}");
    assert_eq!(reasons[0]["import_row"], 7);
    assert!(
        reasons[0]["import_error"]
            .as_str()
            .unwrap()
            .contains("id_number")
    );
    assert_eq!(
        reasons[0]["case_number"], "OLD-2024-00007",
        "the row as it was"
    );
    assert_eq!(reasons[1]["import_row"], 19);
    assert!(
        reasons[1]["import_error"]
            .as_str()
            .unwrap()
            .contains("category")
    );
    assert_eq!(reasons[2]["import_row"], 25);
    assert!(
        reasons[2]["import_error"]
            .as_str()
            .unwrap()
            .contains("not history")
    );
    // Fixed, the rejected file imports the rest; nothing is lost, nothing doubled.
    let fixed = rejected
        .replace("140213198304157570", &synthetic_resident_id(9_007))
        .replace("99.99", "01.01")
        .replace("in_handling", "closed");
    let fixed_file = dir.join("fixed.jsonl");
    std::fs::write(&fixed_file, fixed).unwrap();
    let out = petition(
        running.grpc_addr,
        vec![
            "import".into(),
            fixed_file.display().to_string(),
            "--source-system".into(),
            "old-xf".into(),
        ],
    )
    .await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("3 imported"), "{said}");
    // The original file again: nothing new. Rows 7 and 19 in their old versions conflict
    // with the fixed cases now in, and are reported, not dropped; row 25 differed only in its
    // status, not in the petition, and is there already.
    let out = import(&["--restart"]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("0 imported, 38 there already, 2 rejected"),
        "{said}"
    );
    let rejected = std::fs::read_to_string(dir.join("history.jsonl.rejected.jsonl")).unwrap();
    assert!(
        rejected.contains("was imported before with other content"),
        "{rejected}"
    );

    // Twice in one file: the same row once; the same number with other content reported.
    let dup = dir.join("dup.jsonl");
    let line = export(1).replace("OLD-2024-00001", "OLD-2024-09001");
    let other = line.replace("历史信访事项 1", "另一事项");
    std::fs::write(&dup, format!("{line}\n{line}\n{other}\n")).unwrap();
    let out = petition(
        running.grpc_addr,
        vec![
            "import".into(),
            dup.display().to_string(),
            "--source-system".into(),
            "old-xf".into(),
            "--output".into(),
            "json".into(),
        ],
    )
    .await;
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            &summary["imported"],
            &summary["already_imported"],
            &summary["rejected"]
        ),
        (&1.into(), &1.into(), &1.into()),
        "{summary}"
    );
    let rejected = std::fs::read_to_string(dir.join("dup.jsonl.rejected.jsonl")).unwrap();
    assert!(
        rejected.contains("is also on row 1 with other content"),
        "{rejected}"
    );

    // Kept under the original number, with its year's register and final state; history is
    // neither routed nor supervised.
    let channel = connect(running.grpc_addr).await;
    let admin = who("datong.bureau", Role::Admin);
    let mut intake = pb::intake_service_client::IntakeServiceClient::with_interceptor(
        channel.clone(),
        bearer(&TokenKeys::dev(), &admin),
    );
    let list = intake
        .list_cases(pb::ListCasesRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.cases.len(), 41);
    let case = intake
        .get_case(pb::GetCaseRequest {
            case_id: list.cases[0].id.clone(),
            case_number: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(case.source_system, "old-xf");
    assert!(case.external_ref.starts_with("OLD-2024-"), "{case:?}");
    assert!(case.case_number.contains("-2024-"), "{}", case.case_number);
    assert!(matches!(
        pb::CaseStatus::try_from(case.status),
        Ok(pb::CaseStatus::Closed | pb::CaseStatus::Answered)
    ));
    let mut routing = pb::routing_service_client::RoutingServiceClient::with_interceptor(
        channel.clone(),
        bearer(&TokenKeys::dev(), &admin),
    );
    let mut supervision =
        pb::supervision_service_client::SupervisionServiceClient::with_interceptor(
            channel,
            bearer(&TokenKeys::dev(), &admin),
        );
    // A new petition registered after the history is routed: the events have all passed by.
    let mut req = petition_testkit::grpc::load_request(1);
    req.received_by = "datong.bureau".into();
    let fresh = intake.register_petition(req).await.unwrap().into_inner();
    let mut routed = false;
    for _ in 0..400 {
        routed = routing
            .get_assignment(pb::GetAssignmentRequest {
                case_id: fresh.case_id.clone(),
            })
            .await
            .is_ok();
        if routed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(routed, "the new petition was never routed");
    let routed = routing
        .get_assignment(pb::GetAssignmentRequest {
            case_id: case.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(routed.code(), tonic::Code::NotFound, "{routed}");
    let timeline = supervision
        .get_timeline(pb::GetTimelineRequest {
            case_id: case.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(timeline.code(), tonic::Code::NotFound, "{timeline}");
}

#[tokio::test]
async fn import_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let running = suite(dir.path(), None).await;
    history_comes_in_once(&running, dir.path()).await;
    running.shutdown().await;
}

#[tokio::test]
async fn import_on_postgres_and_redis() {
    let Some(db) = petition_testkit::TestDatabase::create().await else {
        return;
    };
    let Some(redis) = petition_testkit::TestRedis::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let running = suite(dir.path(), Some((&db.url, &redis.url, &redis.prefix))).await;
    history_comes_in_once(&running, dir.path()).await;
    running.shutdown().await;
}
