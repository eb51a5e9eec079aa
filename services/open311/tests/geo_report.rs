//! The Open311 facade over a running suite, spoken to as a GeoReport v2 client does: plain
//! HTTP/1.1 over a socket, form-encoded POST, JSON back. And schemathesis, generating requests
//! from the OpenAPI document, finds no answer that breaks it.

use petition_open311::{Facade, router};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Running {
    suite: petition_host::Running,
    http: SocketAddr,
    key: String,
    /// another platform's key
    other: String,
    _dir: tempfile::TempDir,
}

/// An embedded suite that knows one platform's key (datong.12345, registering at the
/// Pingcheng bureau), and the facade in front of it.
async fn start() -> Running {
    petition_telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let (key, line) = petition_auth::apikey::mint("datong.12345", "pingcheng.bureau");
    let (other, other_line) = petition_auth::apikey::mint("datong.web", "pingcheng.bureau");
    let keys = dir.path().join("api-keys");
    std::fs::write(&keys, format!("{line}\n{other_line}\n")).unwrap();
    let mut cfg = petition_host::HostConfig::new("suite");
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dev = true;
    cfg.data_dir = dir.path().join("data");
    cfg.api_keys_file = Some(keys);
    // schemathesis calls far faster than a platform would
    cfg.rate_limit_per_minute = 0;
    let suite = petition_host::start(
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
    .expect("the suite starts");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", suite.grpc_addr))
        .unwrap()
        .connect_lazy();
    let facade = Arc::new(Facade {
        intake: petition_proto::v1::intake_service_client::IntakeServiceClient::new(channel),
        taxonomy: Arc::new(petition_grpc::reference::Reference::builtin().taxonomy),
        clock: suite.clock.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(facade)).await });
    Running {
        suite,
        http,
        key,
        other,
        _dir: dir,
    }
}

/// One HTTP/1.1 exchange on a fresh connection: the status and the JSON body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    // The facade answers in one piece; a chunked body is read back whole.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_geo_report_client_posts_a_request_and_finds_it_by_id_and_by_date() {
    let r = start().await;
    let (code, services) = http(r.http, "GET", "/open311/v2/services.json", &[], "").await;
    assert_eq!(code, 200);
    let leak = services
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service_code"] == "01.01")
        .expect("housing repairs is a service");
    assert_eq!(leak["type"], "realtime");
    let (code, def) = http(r.http, "GET", "/open311/v2/services/01.01.json", &[], "").await;
    assert_eq!(code, 200);
    assert!(
        def["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "external_ref" && a["required"] == true)
    );

    let body = form(&[
        ("api_key", &r.key),
        ("service_code", "01.01"),
        ("address_id", "140213001"),
        ("description", "楼顶漏水三个月，物业一直不修"),
        ("last_name", "赵"),
        ("first_name", "敏"),
        ("phone", "13912345678"),
        ("attribute[external_ref]", "12345-2026-0001"),
        ("attribute[channel]", "phone"),
    ]);
    let (code, created) = http(r.http, "POST", "/open311/v2/requests.json", &[FORM], &body).await;
    assert_eq!(code, 201, "{created}");
    let id = created[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("140213-"), "a case number: {id}");
    assert!(
        created[0]["service_notice"]
            .as_str()
            .unwrap()
            .contains("查询码")
    );
    // The same ticket again: the same request, nothing new.
    let (code, again) = http(r.http, "POST", "/open311/v2/requests.json", &[FORM], &body).await;
    assert_eq!(code, 200);
    assert_eq!(again[0]["service_request_id"], id.as_str());

    // By id, with the update history once routing has sent it on. (Intake reads a case's row
    // and its steps one after the other: while routing's step lands, one read can show the
    // step before the status, so the test waits for both.)
    let key = ("X-Api-Key", r.key.as_str());
    let path = format!("/open311/v2/requests/{id}.json?extensions=true");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let one = loop {
        let (code, one) = http(r.http, "GET", &path, &[key], "").await;
        assert_eq!(code, 200, "{one}");
        let routed = one[0]["extended_attributes"]["updates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["type"] == "routed")
            && one[0]["extended_attributes"]["case_status"] == "routed";
        if routed || tokio::time::Instant::now() > deadline {
            break one;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let req = &one[0];
    assert_eq!(req["service_request_id"], id.as_str());
    assert_eq!(req["status"], "open");
    assert_eq!(req["service_code"], "01.01");
    assert_eq!(req["address_id"], "140213001");
    assert_eq!(req["description"], "楼顶漏水三个月，物业一直不修");
    assert_eq!(req["extended_attributes"]["case_status"], "routed");
    assert!(
        req["agency_responsible"].as_str().unwrap().contains("住房"),
        "{req}"
    );

    // By date range: today's window holds it, last month's does not.
    let now = chrono::Utc::now();
    let range = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        format!(
            "/open311/v2/requests.json?start_date={}&end_date={}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    let (code, list) = http(
        r.http,
        "GET",
        &range(
            now - chrono::Duration::hours(1),
            now + chrono::Duration::hours(1),
        ),
        &[key],
        "",
    )
    .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["service_request_id"], id.as_str());
    let (_, old) = http(
        r.http,
        "GET",
        &range(
            now - chrono::Duration::days(40),
            now - chrono::Duration::days(30),
        ),
        &[key],
        "",
    )
    .await;
    assert_eq!(old.as_array().unwrap().len(), 0);
    let (_, closed) = http(
        r.http,
        "GET",
        "/open311/v2/requests.json?status=closed",
        &[key],
        "",
    )
    .await;
    assert_eq!(closed.as_array().unwrap().len(), 0, "it is open");

    // A client's mistakes are named, in GeoReport's shape; no key is no access.
    let (code, refused) = http(
        r.http,
        "POST",
        "/open311/v2/requests.json",
        &[FORM, key],
        &form(&[("service_code", "01.01")]),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        refused[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("address_id")
    );
    assert_eq!(refused[0]["code"], 400);
    let (code, _) = http(
        r.http,
        "GET",
        &format!("/open311/v2/requests/{id}.json"),
        &[],
        "",
    )
    .await;
    assert_eq!(code, 401);
    let (code, _) = http(
        r.http,
        "GET",
        &format!("/open311/v2/requests/{id}.json"),
        &[("X-Api-Key", "pk.000000000000.nope")],
        "",
    )
    .await;
    assert_eq!(code, 401);
    // Another platform's case is no case to this one: the same 404 as a number nobody used.
    let theirs = form(&[
        ("service_code", "01.01"),
        ("address_id", "140213002"),
        ("description", "另一平台的工单"),
        ("last_name", "钱"),
        ("attribute[external_ref]", "web-0001"),
    ]);
    let (code, made) = http(
        r.http,
        "POST",
        "/open311/v2/requests.json",
        &[FORM, ("X-Api-Key", r.other.as_str())],
        &theirs,
    )
    .await;
    assert_eq!(code, 201, "{made}");
    let foreign = made[0]["service_request_id"].as_str().unwrap().to_owned();
    let (code, hidden) = http(
        r.http,
        "GET",
        &format!("/open311/v2/requests/{foreign}.json"),
        &[key],
        "",
    )
    .await;
    assert_eq!(code, 404, "{hidden}");
    let (code, listed) = http(
        r.http,
        "GET",
        &format!("/open311/v2/requests.json?service_request_id={foreign},{id}"),
        &[key],
        "",
    )
    .await;
    assert_eq!(code, 200, "{listed}");
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only its own: {listed}"
    );
    let (code, _) = http(
        r.http,
        "GET",
        "/open311/v2/requests/140213-2026-999999.json",
        &[key],
        "",
    )
    .await;
    assert_eq!(code, 404);
    r.suite.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_answer_that_breaks_the_openapi_document() {
    let r = start().await;
    let base = format!("http://{}/open311/v2", r.http);
    let schema = format!("{base}/openapi.yaml");
    let key = format!("X-Api-Key: {}", r.key);
    // First every operation, the POST linked to the GET of what it created, with every check
    // but "schema-valid data is accepted": the schema cannot say which categories and places
    // exist or which identity numbers have a valid checksum, and intake rightly refuses those
    // (400, naming the field). Then the reads alone with every check.
    for (method, skip) in [
        ("POST|GET", Some("positive_data_acceptance")),
        ("GET", None),
    ] {
        let mut args: Vec<String> = [
            "run",
            schema.as_str(),
            "--url",
            base.as_str(),
            "-H",
            key.as_str(),
            "--include-method-regex",
            method,
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--seed",
            "311",
            "--no-color",
        ]
        .map(str::to_owned)
        .to_vec();
        match skip {
            Some(check) => args.extend(["--exclude-checks".to_owned(), check.to_owned()]),
            // the POST that links to the reads is not in this run: no stateful phase
            None => args.extend([
                "--phases".to_owned(),
                "examples,coverage,fuzzing".to_owned(),
            ]),
        }
        // From a blocking thread: the suite and the facade answer on this runtime meanwhile.
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("schemathesis")
                .args(args)
                .output()
        })
        .await
        .unwrap();
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !petition_testkit::in_ci() => {
                eprintln!("SKIPPED: schemathesis is not installed (pip install schemathesis)");
                return;
            }
            Err(e) => panic!("schemathesis: {e} (pip install schemathesis)"),
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The counts the closing note quotes.
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("generated") || l.contains("passed") || l.contains("Tested"))
            .collect();
        eprintln!("schemathesis {method}:\n{}", summary.join("\n"));
        assert!(
            out.status.success(),
            "schemathesis found problems ({method}):\n{text}"
        );
    }
    r.suite.shutdown().await;
}
