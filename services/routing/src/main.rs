use clap::Parser;
use petition_host::{CommonArgs, HostCommand, Ports};
use petition_routing::{Routing, RoutingArgs};

/// Petition Pipeline routing: who has authority, and the department inbox. Reads intake's
/// events from Redis (--redis-url).
#[derive(Parser)]
#[command(name = "petition-routing", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<HostCommand>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    routing: RoutingArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = petition_host::parse(Ports {
        listen: "127.0.0.1:50052",
        admin: "127.0.0.1:9465",
    });
    if cli.command.is_none()
        && cli
            .common
            .redis_url
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    {
        // Alone, an in-process bus would have no intake to listen to.
        anyhow::bail!(
            "--redis-url (PETITION_REDIS_URL) is required: routing reads intake's events from Redis"
        );
    }
    let routing = Routing((&cli.routing).into());
    petition_host::run("routing", &cli.common, cli.command, &[&routing]).await?;
    Ok(())
}
