//! Every service in one process, on one gRPC port. With no database URL it is the embedded
//! default: one SQLite file per service under `--data-dir` and the in-process event bus, so
//! `cargo run` needs nothing installed. It takes every flag each service takes alone.

use clap::Parser;
use petition_host::{CommonArgs, HostCommand, Ports};
use petition_intake::{Intake, IntakeArgs};
use petition_routing::{Routing, RoutingArgs};

#[derive(Parser)]
#[command(name = "petition-suite", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<HostCommand>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    intake: IntakeArgs,
    #[command(flatten)]
    routing: RoutingArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = petition_host::parse(Ports {
        listen: "127.0.0.1:50051",
        admin: "127.0.0.1:9464",
    });
    // Consumers subscribe as each service installs, and relays start after the last one, so
    // no event passes a service by.
    let intake = Intake((&cli.intake).into());
    let routing = Routing((&cli.routing).into());
    petition_host::run("suite", &cli.common, cli.command, &[&routing, &intake]).await?;
    Ok(())
}
