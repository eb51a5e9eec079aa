use anyhow::Context;
use clap::Parser;
use petition_console::{Channels, Console, Portal, router};
use std::net::SocketAddr;
use std::sync::Arc;

/// Petition Pipeline's web console, beside services that run elsewhere: it calls them over
/// gRPC with each signed-in person's token. (`petition-suite` serves it itself.)
#[derive(Parser, Debug)]
#[command(name = "petition-console", version)]
struct Args {
    /// Where the console listens (HTTP; put TLS in front of it)
    #[arg(
        long,
        env = "PETITION_CONSOLE_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    /// The services' gRPC address (the suite's); each may be given apart below
    #[arg(
        long,
        env = "PETITION_GRPC_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    grpc: String,
    /// Intake's address, when the services run apart
    #[arg(long, env = "PETITION_INTAKE_ADDR")]
    intake: Option<String>,
    #[arg(long, env = "PETITION_ROUTING_ADDR")]
    routing: Option<String>,
    #[arg(long, env = "PETITION_SUPERVISION_ADDR")]
    supervision: Option<String>,
    #[arg(long, env = "PETITION_ANALYTICS_ADDR")]
    analytics: Option<String>,
    /// The deployment's token key ring, as the services take it: the petitioner's page then
    /// calls with short-lived tokens the console issues itself (role upstream, subject
    /// console.portal, at the top bureau) and signs no one else in with it
    #[arg(long, env = "PETITION_TOKEN_KEY", hide_env_values = true)]
    token_key: Option<String>,
    /// The audience the services expect in tokens (PETITION_TOKEN_AUDIENCE)
    #[arg(long, env = "PETITION_TOKEN_AUDIENCE")]
    token_audience: Option<String>,
    /// The reference data (organisations, categories); the built-in copy if unset
    #[arg(long, env = "PETITION_CONFIG_DIR")]
    config_dir: Option<std::path::PathBuf>,
    /// Development: offer a sign-in page that picks organ and role, signed with the
    /// development token key the services use under --dev. Never in production.
    #[arg(long, env = "PETITION_DEV")]
    dev: bool,
    /// A file holding the token the petitioner's page calls with instead: role upstream,
    /// issued by this deployment (`petition token issue --role upstream …`). Without it, the
    /// token key or --dev, the petitioner's page is not offered.
    #[arg(long, env = "PETITION_CONSOLE_PORTAL_TOKEN_FILE")]
    portal_token_file: Option<std::path::PathBuf>,
    #[arg(long, env = "PETITION_LOG_FORMAT", default_value = "pretty")]
    log_format: petition_telemetry::LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let _telemetry = petition_telemetry::init("console", a.log_format, None)?;
    let reference = petition_grpc::reference::Reference::load(a.config_dir.as_deref())
        .context("--config-dir")?;
    let channel = |flag: &str, addr: Option<&String>| {
        let addr = addr.unwrap_or(&a.grpc);
        tonic::transport::Endpoint::from_shared(addr.clone())
            .with_context(|| format!("--{flag} {addr}"))
            .map(|e| e.tcp_nodelay(true).connect_lazy())
    };
    let channels = Channels {
        intake: channel("intake", a.intake.as_ref())?,
        routing: channel("routing", a.routing.as_ref())?,
        supervision: channel("supervision", a.supervision.as_ref())?,
        analytics: channel("analytics", a.analytics.as_ref())?,
    };
    let mut console = Console::new(
        channels,
        reference.tree.clone(),
        Arc::new(reference.taxonomy.clone()),
        Arc::new(petition_domain::SystemClock),
    );
    if a.dev {
        let keys = Arc::new(petition_auth::TokenKeys::dev());
        console.portal = Portal::issued(keys.clone(), &reference.tree);
        console.dev_keys = Some(keys);
    }
    if let Some(spec) = a.token_key.as_deref().filter(|k| !k.is_empty()) {
        let keys = petition_auth::TokenKeys::parse(spec)
            .context("--token-key")?
            .with_audience(a.token_audience.clone().filter(|s| !s.is_empty()));
        console.portal = Portal::issued(Arc::new(keys), &reference.tree);
    }
    if let Some(path) = &a.portal_token_file {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("--portal-token-file {}", path.display()))?;
        console.portal = Some(Portal::Token(token.trim().to_owned()));
    }
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("--listen {}", a.listen))?;
    tracing::info!(console = %format!("http://{}/", listener.local_addr()?), grpc = %a.grpc,
        petitioners_page = console.portal.is_some(), "serving the web console");
    axum::serve(listener, router(Arc::new(console)))
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
