//! Each port says exactly what it serves: reflection lists the services of that port and no
//! other, and a call to a service served elsewhere is answered UNIMPLEMENTED in words.

use chrono::Utc;
use petition_auth::Role;
mod common;

use common::Suite;
use petition_e2e::{bearer, connect, reflected_services, who};
use petition_intake::IntakeConfig;
use petition_proto::v1 as pb;
use petition_routing::RoutingConfig;
use std::sync::Arc;

/// Every port also serves the audit log of the services behind it.
const PLUMBING: [&str; 4] = [
    petition_proto::v1::audit_service_server::SERVICE_NAME,
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

fn expect(services: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = services
        .iter()
        .chain(PLUMBING.iter())
        .map(|s| s.to_string())
        .collect();
    v.sort();
    v
}

/// Whether the port's reflection resolves `symbol` to a file.
async fn describes(addr: std::net::SocketAddr, symbol: &str) -> bool {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(connect(addr).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    // An unknown symbol comes back as an error status or as an error message.
    match replies.message().await {
        Ok(Some(reply)) => matches!(
            reply.message_response,
            Some(MessageResponse::FileDescriptorResponse(_))
        ),
        _ => false,
    }
}

#[tokio::test]
async fn reflection_lists_exactly_what_each_port_serves() {
    petition_telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(petition_domain::FixedClock::new(Utc::now()));
    let mut i = IntakeConfig::new(&format!("sqlite://{}/intake.db", dir.path().display()));
    i.host.listen = "127.0.0.1:0".parse().unwrap();
    i.host.dev = true;
    let intake = i.start(None, clock.clone()).await.unwrap();
    let mut r = RoutingConfig::new(&format!("sqlite://{}/routing.db", dir.path().display()));
    r.host.listen = "127.0.0.1:0".parse().unwrap();
    r.host.dev = true;
    let routing = r.start(None, clock).await.unwrap();
    let suite = Suite::embedded(Utc::now()).await;

    assert_eq!(
        reflected_services(intake.grpc_addr).await,
        expect(&[petition_intake::SERVICE_NAME])
    );
    assert_eq!(
        reflected_services(routing.grpc_addr).await,
        expect(&[petition_routing::SERVICE_NAME])
    );
    assert_eq!(
        reflected_services(suite.grpc_addr).await,
        expect(&[
            petition_intake::SERVICE_NAME,
            petition_routing::SERVICE_NAME,
            petition_supervision::SERVICE_NAME,
            petition_analytics::SERVICE_NAME
        ])
    );

    // Nor does intake's port describe routing's service, though it describes its own.
    assert!(!describes(intake.grpc_addr, petition_routing::SERVICE_NAME).await);
    assert!(describes(intake.grpc_addr, petition_intake::SERVICE_NAME).await);
    assert!(describes(suite.grpc_addr, petition_routing::SERVICE_NAME).await);
    assert!(describes(suite.grpc_addr, petition_analytics::SERVICE_NAME).await);

    // Routing called on intake's port: UNIMPLEMENTED, saying what the port does serve.
    let mut wrong = pb::routing_service_client::RoutingServiceClient::with_interceptor(
        connect(intake.grpc_addr).await,
        bearer(&intake.token_keys, &who("pingcheng.bureau", Role::Clerk)),
    );
    let err = wrong
        .list_inbox(pb::ListInboxRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert!(
        err.message()
            .contains("petition.v1.RoutingService/ListInbox is not served on this port")
            && err.message().contains(petition_intake::SERVICE_NAME),
        "{}",
        err.message()
    );
    intake.shutdown().await;
    routing.shutdown().await;
    suite.stop().await;
}
