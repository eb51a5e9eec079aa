//! API keys on the suite binary: an upstream system calls with its key, kept by the services
//! only as a hash, and acts as itself alone — under its own source_system, seeing what it
//! submitted; a wrong or unknown key is refused.

mod common;

use common::Suite;
use petition_e2e::load_request;
use petition_proto::v1 as pb;
use tonic::Code;

async fn with_key(
    addr: std::net::SocketAddr,
    key: String,
) -> pb::intake_service_client::IntakeServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor,
    >,
> {
    let value: tonic::metadata::MetadataValue<_> = format!("ApiKey {key}").parse().unwrap();
    pb::intake_service_client::IntakeServiceClient::with_interceptor(
        petition_e2e::connect(addr).await,
        move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", value.clone());
            Ok(r)
        },
    )
}

fn hotline_petition(n: u64, system: &str) -> pb::RegisterPetitionRequest {
    let mut r = load_request(n);
    r.source_system = system.into();
    r.external_ref = format!("12345-{n}");
    r
}

#[tokio::test]
async fn an_upstream_system_calls_with_its_key_as_itself_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (key, line) = petition_auth::apikey::mint("datong.12345", "pingcheng.bureau");
    let (other_key, other_line) =
        petition_auth::apikey::mint("yungang.hotline", "pingcheng.bureau");
    let file = dir.path().join("api-keys");
    std::fs::write(&file, format!("# upstream systems\n{line}\n{other_line}\n")).unwrap();
    assert!(
        !std::fs::read_to_string(&file)
            .unwrap()
            .contains(key.rsplit('.').next().unwrap())
    );
    let s = Suite::embedded_args(&["--api-keys-file".to_owned(), file.display().to_string()]);

    let mut hotline = with_key(s.grpc_addr, key.clone()).await;
    let r = hotline
        .register_petition(hotline_petition(1, "datong.12345"))
        .await
        .unwrap()
        .into_inner();
    assert!(r.case_number.starts_with("140213-"));
    // not under another system's name
    let e = hotline
        .register_petition(hotline_petition(2, "yungang.hotline"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    // it lists what it submitted, the other system nothing of it
    let mine = hotline
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(mine.len(), 1);
    let theirs = with_key(s.grpc_addr, other_key)
        .await
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert!(theirs.is_empty());
    // a key altered or made up
    let mut forged = key.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    for bad in [
        forged,
        "pk.000000000000.nothing".to_owned(),
        "secret".to_owned(),
    ] {
        let e = with_key(s.grpc_addr, bad)
            .await
            .list_cases(pb::ListCasesRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    }
    s.stop().await;
}

#[test]
fn a_keys_file_naming_an_unknown_organ_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_, line) = petition_auth::apikey::mint("datong.12345", "nowhere.bureau");
    let file = dir.path().join("api-keys");
    std::fs::write(&file, line).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args([
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--api-keys-file", file.to_str().unwrap()])
        .env_remove("PETITION_DATABASE_URL")
        .env_remove("PETITION_REDIS_URL")
        .output()
        .unwrap();
    petition_testkit::process::refused(&out, &["--api-keys-file", "line 1", "nowhere.bureau"]);
}

/// The suite with `--open311-listen` serves the Open311 facade beside its gRPC port: a platform
/// posts with its key over plain HTTP and reads its request back; without a key it reads
/// nothing.
#[tokio::test]
async fn the_suite_serves_open311_on_its_own_port() {
    let dir = tempfile::tempdir().unwrap();
    let (key, line) = petition_auth::apikey::mint("datong.12345", "pingcheng.bureau");
    let file = dir.path().join("api-keys");
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let _s = Suite::embedded_args(&[
        "--api-keys-file".to_owned(),
        file.display().to_string(),
        "--open311-listen".to_owned(),
        http.to_string(),
    ]);
    let post = |body: String| {
        format!(
            "POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nX-Api-Key: {key}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let exchange = |request: String| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).await.unwrap();
        all
    };
    let body = "service_code=01.01&address_id=140213001&description=%E6%BC%8F%E6%B0%B4&last_name=%E8%B5%B5&attribute%5Bexternal_ref%5D=12345-9";
    let created = exchange(post(body.to_owned())).await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let id = created
        .split("\"service_request_id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let read = exchange(format!(
        "GET /open311/v2/requests/{id}.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Api-Key: {key}\r\n\r\n"
    ))
    .await;
    assert!(read.starts_with("HTTP/1.1 200"), "{read}");
    assert!(read.contains(&id));
    let anonymous = exchange(format!(
        "GET /open311/v2/requests/{id}.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
}
