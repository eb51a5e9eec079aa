use anyhow::Context;
use clap::Parser;
use petition_open311::{Facade, router};
use std::net::SocketAddr;
use std::sync::Arc;

/// Petition Pipeline's Open311 GeoReport v2 facade: platforms that speak Open311 register
/// petitions and follow them over HTTP and JSON; intake does the work.
#[derive(Parser, Debug)]
#[command(name = "petition-open311", version)]
struct Args {
    /// Where the facade listens (HTTP)
    #[arg(
        long,
        env = "PETITION_OPEN311_LISTEN",
        default_value = "127.0.0.1:8311"
    )]
    listen: SocketAddr,
    /// Intake's gRPC address
    #[arg(
        long,
        env = "PETITION_INTAKE_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    intake: String,
    /// The reference data (categories.toml for the service list); the built-in copy if unset
    #[arg(long, env = "PETITION_CONFIG_DIR")]
    config_dir: Option<std::path::PathBuf>,
    #[arg(long, env = "PETITION_LOG_FORMAT", default_value = "pretty")]
    log_format: petition_telemetry::LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let _telemetry = petition_telemetry::init("open311", a.log_format, None)?;
    let reference = petition_grpc::reference::Reference::load(a.config_dir.as_deref())
        .context("--config-dir")?;
    let channel = tonic::transport::Endpoint::from_shared(a.intake.clone())
        .context("--intake")?
        .tcp_nodelay(true)
        .connect_lazy();
    let facade = Arc::new(Facade {
        intake: petition_proto::v1::intake_service_client::IntakeServiceClient::new(channel),
        taxonomy: Arc::new(reference.taxonomy.clone()),
        clock: Arc::new(petition_domain::SystemClock),
    });
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("--listen {}", a.listen))?;
    tracing::info!(addr = %listener.local_addr()?, intake = %a.intake, "serving Open311 GeoReport v2 at /open311/v2");
    axum::serve(listener, router(facade))
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down: finishing the requests in flight");
        })
        .await?;
    Ok(())
}
