//! TLS and mutual TLS on the suite binary's gRPC port, with certificates from a development CA
//! made here: staff connect over TLS with their tokens alone; an upstream system's token counts
//! only over a connection whose client certificate names that system; a certificate from
//! another CA does not get through the handshake; plain text gets nowhere.

use petition_auth::{Principal, Role, TokenKeys};
use petition_e2e::{bearer, load_request, who};
use petition_proto::v1 as pb;
use petition_testkit::process::ServiceProcess;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const BIN: &str = env!("CARGO_BIN_EXE_petition-suite");

/// The suite on mutual TLS: its data in `data`, its certificate, key and client CA in PEM files.
fn mutual_tls_suite(data: &str, cert: &str, key: &str, client_ca: &str) -> ServiceProcess {
    ServiceProcess::spawn_dev(
        BIN,
        &[
            "--data-dir",
            data,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--tls-client-ca",
            client_ca,
        ],
        &[],
    )
}

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate for `names` (the first is also the common name), and its key, in PEM.
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn channel(
    addr: std::net::SocketAddr,
    ca: &Ca,
    client: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .domain_name("localhost");
    if let Some((cert, key)) = client {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

fn intake(
    channel: Channel,
    p: &Principal,
) -> pb::intake_service_client::IntakeServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, petition_e2e::Bearer>,
> {
    pb::intake_service_client::IntakeServiceClient::with_interceptor(
        channel,
        bearer(&TokenKeys::dev(), p),
    )
}

fn hotline() -> Principal {
    Principal {
        subject: "datong.12345".into(),
        org: "pingcheng.bureau".into(),
        role: Role::Upstream,
        scopes: vec![],
    }
}

fn upstream_petition(n: u64) -> pb::RegisterPetitionRequest {
    let mut r = load_request(n);
    r.source_system = "datong.12345".into();
    r.external_ref = format!("12345-2026-{n:06}");
    r
}

#[tokio::test]
async fn upstream_systems_need_their_client_certificate_staff_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ca("Pingcheng development CA");
    let theirs = ca("Somebody else's CA");
    let (server_cert, server_key) = leaf(&ours, &["localhost", "127.0.0.1"]);
    let hotline_cert = leaf(&ours, &["datong.12345"]);
    let other_system = leaf(&ours, &["yungang.hotline"]);
    let forged = leaf(&theirs, &["datong.12345"]);
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (cert, key, client_ca) = (
        file("server.pem", &server_cert),
        file("server.key", &server_key),
        file("ca.pem", &ours.pem),
    );
    let data = dir.path().join("data").display().to_string();
    let mut suite = mutual_tls_suite(&data, &cert, &key, &client_ca);
    let addr = suite.grpc_addr;
    assert!(
        suite.log.iter().any(|l| l.contains("\"tls\":\"mutual\"")),
        "the serving line says TLS is mutual"
    );

    // Without a client certificate: staff work, an upstream token does not.
    let plain_tls = channel(addr, &ours, None).await.unwrap();
    let clerk = intake(plain_tls.clone(), &who("pingcheng.bureau", Role::Clerk))
        .register_petition(load_request(1))
        .await
        .unwrap()
        .into_inner();
    assert!(clerk.case_number.starts_with("140213-"));
    let refused = intake(plain_tls, &hotline())
        .register_petition(upstream_petition(2))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");
    assert!(
        refused.message().contains("mutual TLS") && refused.message().contains("datong.12345"),
        "{refused}"
    );

    // Nor does an admin's token claim the hotline's name without its certificate.
    let plain_tls = channel(addr, &ours, None).await.unwrap();
    let admin = intake(plain_tls, &who("shanxi.bureau", Role::Admin))
        .register_petition(upstream_petition(7))
        .await
        .unwrap_err();
    assert_eq!(admin.code(), Code::Unauthenticated, "{admin}");
    assert!(admin.message().contains("source_system"), "{admin}");

    // With the certificate issued to the hotline: it registers.
    let with_cert = channel(addr, &ours, Some(&hotline_cert)).await.unwrap();
    let registered = intake(with_cert, &hotline())
        .register_petition(upstream_petition(3))
        .await
        .unwrap()
        .into_inner();
    assert!(registered.case_number.starts_with("140213-"));

    // Another system's certificate with the hotline's token: refused, naming both.
    let wrong = channel(addr, &ours, Some(&other_system)).await.unwrap();
    let err = intake(wrong, &hotline())
        .register_petition(upstream_petition(4))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    assert!(err.message().contains("yungang.hotline"), "{err}");

    // A certificate from another CA, or no TLS at all, gets no call through.
    let forged = match channel(addr, &ours, Some(&forged)).await {
        Err(_) => None,
        Ok(c) => Some(
            intake(c, &hotline())
                .register_petition(upstream_petition(5))
                .await
                .unwrap_err(),
        ),
    };
    // (TLS 1.3 lets the client finish its side first: the refusal arrives as the broken
    // connection its first call runs into, never as an answer)
    // (the code depends on where the connection broke; what matters is that the error is the
    // transport's, not an answer from the service)
    let no_answer = |e: &tonic::Status| {
        std::error::Error::source(e)
            .is_some_and(|s| s.downcast_ref::<tonic::transport::Error>().is_some())
    };
    if let Some(e) = forged {
        assert!(no_answer(&e), "the handshake is refused: {e}");
    }
    let plain = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(c) = plain {
        let e = intake(c, &who("pingcheng.bureau", Role::Clerk))
            .register_petition(load_request(6))
            .await
            .unwrap_err();
        assert!(no_answer(&e), "{e}");
    }
    suite.terminate();
    suite.expect_clean_exit();
}

/// The README's development CA, made with its openssl commands as written, serves and proves.
#[tokio::test]
async fn the_readme_development_ca_works_as_written() {
    const README: &str = include_str!("../../../README.md");
    let start = README
        .find("<!-- tls -->")
        .expect("a TLS block in the README");
    let end = README.find("<!-- /tls -->").expect("its end");
    let script: String = README[start..end]
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = |name: &str| dir.path().join(name).display().to_string();
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let data = path("data");
    let (cert, key, client_ca) = (path("suite.pem"), path("suite.key"), path("ca.pem"));
    let mut suite = mutual_tls_suite(&data, &cert, &key, &client_ca);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(read("hotline.pem"), read("hotline.key")))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", suite.grpc_addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let r = intake(channel, &hotline())
        .register_petition(upstream_petition(9))
        .await
        .unwrap()
        .into_inner();
    assert!(r.case_number.starts_with("140213-"));
    suite.terminate();
    suite.expect_clean_exit();
}
