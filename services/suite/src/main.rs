//! Every service in one process, on one gRPC port. With no database URL it is the embedded
//! default: one SQLite file per service under `--data-dir` and the in-process event bus, so
//! `cargo run` needs nothing installed. It takes every flag each service takes alone.

use petition_analytics::Analytics;
use petition_host::{Binary, Service};
use petition_intake::{Intake, IntakeArgs};
use petition_routing::{Routing, RoutingArgs};
use petition_supervision::{Supervision, SupervisionArgs};

const BINARY: Binary = Binary::new(
    "petition-suite",
    "suite",
    ("127.0.0.1:50051", "127.0.0.1:9464"),
)
.about("Petition Pipeline: every service in one process, on one port.");

#[derive(clap::Args, Debug)]
struct SuiteArgs {
    #[command(flatten)]
    intake: IntakeArgs,
    #[command(flatten)]
    routing: RoutingArgs,
    #[command(flatten)]
    supervision: SupervisionArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Consumers subscribe as each service installs, and relays start after the last one, so
    // no event passes a service by.
    petition_host::main::<SuiteArgs>(&BINARY, |a| {
        let services: Vec<Box<dyn Service>> = vec![
            // one backlog rule (积案) for the due board and the situation analysis
            Box::new(Analytics {
                backlog_repeats: a.supervision.backlog_repeats,
            }),
            Box::new(Supervision::from(&a.supervision)),
            Box::new(Routing::from(&a.routing)),
            Box::new(Intake::from(&a.intake)),
        ];
        services
    })
    .await?;
    Ok(())
}
