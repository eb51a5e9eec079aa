use clap::Parser;
use petition_host::{CommonArgs, HostCommand, Ports};
use petition_intake::{Intake, IntakeArgs};

/// Petition Pipeline intake: registers petitions from every channel.
#[derive(Parser)]
#[command(name = "petition-intake", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<HostCommand>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    intake: IntakeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: Cli = petition_host::parse(Ports {
        listen: "127.0.0.1:50051",
        admin: "127.0.0.1:9464",
    });
    let intake = Intake((&cli.intake).into());
    petition_host::run("intake", &cli.common, cli.command, &[&intake]).await?;
    Ok(())
}
