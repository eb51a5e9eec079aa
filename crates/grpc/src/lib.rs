//! What every Petition Pipeline service needs to speak gRPC: a server with health, reflection
//! and the telemetry middleware, the admin port, token keys, and conversions between protobuf
//! and domain types.

pub mod convert;
pub mod reference;

use petition_auth::TokenKeys;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("telemetry: {0}")]
    Telemetry(#[from] petition_telemetry::TelemetryError),
    #[error(
        "no token key: set PETITION_TOKEN_KEY to a secret of at least 32 bytes, or pass --dev for a development run"
    )]
    NoTokenKey,
    #[error("token key: {0}")]
    TokenKey(#[from] petition_auth::AuthError),
}

/// The configured token key, or the public dev key on a dev run (said loudly).
pub fn token_keys(configured: Option<&str>, dev: bool) -> Result<TokenKeys, ServeError> {
    match (configured, dev) {
        (Some(k), _) => Ok(TokenKeys::hs256(k.as_bytes())?),
        (None, true) => {
            tracing::warn!(
                "DEVELOPMENT RUN: bearer tokens are checked against the public built-in dev key"
            );
            Ok(TokenKeys::dev())
        }
        (None, false) => Err(ServeError::NoTokenKey),
    }
}

/// Serves `routes` plus `grpc.health.v1` (reporting `service_name` SERVING until shutdown) and
/// server reflection, every call passing through the telemetry middleware. Returns the bound
/// address and the task that ends after a graceful shutdown.
pub async fn serve(
    addr: SocketAddr,
    service_name: &'static str,
    routes: tonic::service::Routes,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), ServeError> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(service_name, ServingStatus::Serving)
        .await;
    health_reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(petition_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let router = routes
        .add_service(health)
        .add_service(v1)
        .add_service(v1alpha)
        .into_axum_router()
        .layer(axum::middleware::from_fn(
            petition_telemetry::grpc_middleware,
        ));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { addr, source })?;
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            health_reporter
                .set_service_status(service_name, ServingStatus::NotServing)
                .await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "gRPC server failed");
        }
    });
    Ok((bound, task))
}

/// Serves Prometheus `/metrics` and `/healthz` until shutdown.
pub async fn serve_admin(
    addr: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), ServeError> {
    let handle = petition_telemetry::prometheus()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { addr, source })?;
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(e) = petition_telemetry::serve_admin(listener, handle, stop).await {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    Ok((bound, task))
}

/// Where a started service listens, and the tasks that end after its graceful shutdown.
pub struct Serving {
    pub grpc_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// `serve` plus, when an address is given, the admin port.
pub async fn serve_with_admin(
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    service_name: &'static str,
    routes: tonic::service::Routes,
    shutdown: watch::Receiver<bool>,
) -> Result<Serving, ServeError> {
    let (grpc_addr, server) = serve(addr, service_name, routes, shutdown.clone()).await?;
    let mut tasks = vec![server];
    let admin_addr = match admin {
        Some(a) => {
            let (bound, task) = serve_admin(a, shutdown).await?;
            tasks.push(task);
            Some(bound)
        }
        None => None,
    };
    tracing::info!(%grpc_addr, ?admin_addr, service = service_name, "serving");
    Ok(Serving {
        grpc_addr,
        admin_addr,
        tasks,
    })
}

/// INVALID_ARGUMENT naming every bad field, with `google.rpc.BadRequest` details.
pub fn invalid_argument(violations: &[(String, String)]) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let summary = violations
        .iter()
        .map(|(f, r)| format!("{f}: {r}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for (f, r) in violations {
        details.add_bad_request_violation(f.clone(), r.clone());
    }
    tonic::Status::with_error_details(tonic::Code::InvalidArgument, summary, details)
}
