//! Every service in one process, on one gRPC port. With no database URL it is the embedded
//! default: one SQLite file per service under `--data-dir` and the in-process event bus, so
//! `cargo run` needs nothing installed. It takes every flag each service takes alone, and
//! `--demo`, which fills it with a year of petitions through its own APIs.

use chrono::{Duration, TimeZone, Utc};
use petition_analytics::Analytics;
use petition_host::{AfterStart, Binary, HostConfig, Service, StartError};
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
    /// Play a year of petitions through the suite's own APIs on simulated time, from a year
    /// ago to now, so that every screen has something to show (implies --dev; wants a fresh
    /// --data-dir)
    #[arg(long, env = "PETITION_DEMO")]
    demo: bool,
    /// Days the demo plays, ending today
    #[arg(
        long,
        env = "PETITION_DEMO_DAYS",
        default_value_t = 365,
        requires = "demo"
    )]
    demo_days: u32,
    /// Petitions the demo registers on a working day
    #[arg(
        long,
        env = "PETITION_DEMO_PER_DAY",
        default_value_t = 12,
        requires = "demo"
    )]
    demo_per_day: u32,
    /// Also serve Open311 GeoReport v2 (HTTP) in front of intake here, e.g. 127.0.0.1:8311
    #[arg(long, env = "PETITION_OPEN311_LISTEN")]
    open311_listen: Option<std::net::SocketAddr>,
    /// Where the web console listens (HTTP), or `off`
    #[arg(long, env = "PETITION_CONSOLE_LISTEN", default_value = CONSOLE_DEFAULT)]
    console_listen: String,
}

const CONSOLE_DEFAULT: &str = "127.0.0.1:8080";

/// What runs once the suite serves: the demo, the Open311 facade, either or both.
fn prepare(a: &SuiteArgs, cfg: &mut HostConfig) -> Result<Option<AfterStart>, StartError> {
    let demo = demo(a, cfg)?;
    let open311 = open311(a, cfg)?;
    let console = console(a, cfg)?;
    if demo.is_none() && open311.is_none() && console.is_none() {
        return Ok(None);
    }
    Ok(Some(Box::new(move |running| {
        for then in [console, demo, open311].into_iter().flatten() {
            then(running);
        }
    })))
}

/// The web console on its own port, calling this suite. The port is taken now, so that a
/// port in use stops the start with its reason; only the default port, taken by something
/// else, leaves the suite running without a console, and says so.
fn console(a: &SuiteArgs, cfg: &HostConfig) -> Result<Option<AfterStart>, StartError> {
    let given = a.console_listen.trim();
    if given.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let addr: std::net::SocketAddr = given.parse().map_err(|_| {
        StartError::Config(format!(
            "--console-listen: {given:?} is not an address such as 127.0.0.1:8080, nor off"
        ))
    })?;
    if cfg.tls.is_some() {
        if given == CONSOLE_DEFAULT {
            tracing::warn!(
                "no web console: it calls the services in plain gRPC, and this suite serves TLS; run petition-console beside it"
            );
            return Ok(None);
        }
        return Err(StartError::Config(
            "--console-listen calls the services in plain gRPC and cannot with --tls-cert: run petition-console beside the suite with its own settings".into(),
        ));
    }
    let listener = match std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
    {
        Ok(l) => l,
        Err(e) if given == CONSOLE_DEFAULT && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(%addr, "no web console: its default port is in use; pass --console-listen with a free one, or off");
            return Ok(None);
        }
        Err(source) => return Err(StartError::Listen { addr, source }),
    };
    let reference = petition_grpc::reference::Reference::load(cfg.config_dir.as_deref())
        .map_err(|e| StartError::Config(format!("--config-dir: {e}")))?;
    let dev = cfg.dev;
    Ok(Some(Box::new(move |running| {
        let (Ok(channel), Ok(listener)) = (
            grpc_channel(running),
            tokio::net::TcpListener::from_std(listener),
        ) else {
            tracing::error!("the web console could not start");
            return;
        };
        let addr = listener.local_addr().unwrap_or(addr);
        let mut console = petition_console::Console::new(
            petition_console::Channels::one(channel),
            reference.tree.clone(),
            std::sync::Arc::new(reference.taxonomy.clone()),
            running.clock.clone(),
        );
        console.portal =
            petition_console::Portal::issued(running.token_keys.clone(), &reference.tree);
        if dev {
            console.dev_keys = Some(running.token_keys.clone());
        }
        tracing::info!(console = %format!("http://{addr}/"), "serving the web console");
        let router = petition_console::router(std::sync::Arc::new(console));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the web console stopped");
            }
        });
    })))
}

/// A lazily connected channel to this suite's own gRPC port.
fn grpc_channel(
    running: &petition_host::Running,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(format!("http://{}", running.grpc_addr))
        .map(|e| e.tcp_nodelay(true).connect_lazy())
}

/// With `--open311-listen`: the facade on its own port, calling this suite's intake. The port
/// is taken now, so that a port in use stops the start with its reason.
fn open311(a: &SuiteArgs, cfg: &HostConfig) -> Result<Option<AfterStart>, StartError> {
    let Some(addr) = a.open311_listen else {
        return Ok(None);
    };
    if cfg.tls.is_some() {
        return Err(StartError::Config(
            "--open311-listen calls intake in plain gRPC and cannot with --tls-cert: run petition-open311 beside the suite with its own settings".into(),
        ));
    }
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| StartError::Listen { addr, source })?;
    let reference = petition_grpc::reference::Reference::load(cfg.config_dir.as_deref())
        .map_err(|e| StartError::Config(format!("--config-dir: {e}")))?;
    Ok(Some(Box::new(move |running| {
        let (Ok(channel), Ok(listener)) = (
            grpc_channel(running),
            tokio::net::TcpListener::from_std(listener),
        ) else {
            tracing::error!("the Open311 facade could not start");
            return;
        };
        let facade = std::sync::Arc::new(petition_open311::Facade {
            intake: petition_proto::v1::intake_service_client::IntakeServiceClient::new(channel),
            taxonomy: std::sync::Arc::new(reference.taxonomy.clone()),
            clock: running.clock.clone(),
        });
        tracing::info!(open311 = %format!("http://{addr}/open311/v2/services.json"),
            "serving Open311 GeoReport v2 in front of intake");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, petition_open311::router(facade)).await {
                tracing::error!(error = %e, "the Open311 facade stopped");
            }
        });
    })))
}

/// With `--demo`: a development run whose clock starts `demo_days` ago at 09:00 Beijing, and
/// the demo driven once it serves.
fn demo(a: &SuiteArgs, cfg: &mut HostConfig) -> Result<Option<AfterStart>, StartError> {
    if !a.demo {
        return Ok(None);
    }
    if cfg.database_url.is_none() && cfg.data_dir.join("intake.db").exists() {
        return Err(StartError::Config(format!(
            "--demo: {} holds cases already; the demo plays a year from scratch: give it a fresh --data-dir",
            cfg.data_dir.display()
        )));
    }
    cfg.dev = true;
    // The demo's own drivers call far faster than people: they are not held to the limit.
    cfg.rate_limit_per_minute = 0;
    if cfg.dev_clock.is_none() {
        let day =
            (Utc::now() + Duration::hours(8)).date_naive() - Duration::days(a.demo_days.into());
        let nine = chrono::FixedOffset::east_opt(8 * 3600)
            .and_then(|bj| bj.from_local_datetime(&day.and_hms_opt(9, 0, 0)?).single())
            .ok_or_else(|| StartError::Config("--demo-days: too far back".into()))?;
        cfg.dev_clock = Some(nine.to_utc());
    }
    let reference = petition_grpc::reference::Reference::load(cfg.config_dir.as_deref())
        .map_err(|e| StartError::Config(format!("--config-dir: {e}")))?;
    let demo = petition_demo::Demo {
        days: a.demo_days,
        per_day: a.demo_per_day,
        ..petition_demo::Demo::default()
    };
    Ok(Some(Box::new(move |running| {
        let (addr, keys) = (running.grpc_addr, running.token_keys.clone());
        let Some(clock) = running.simulated_clock().cloned() else {
            tracing::error!("--demo needs the simulated clock of a --dev run");
            return;
        };
        tokio::spawn(async move {
            tracing::warn!(
                days = demo.days,
                "DEMO: playing a history of petitions on simulated time"
            );
            match petition_demo::run(addr, &keys, &clock, &reference.tree, demo).await {
                Ok(s) => println!("{}", petition_demo::told(&s, addr)),
                Err(e) => tracing::error!(error = %e, "DEMO stopped"),
            }
        });
    })))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Consumers subscribe as each service installs, and relays start after the last one, so
    // no event passes a service by.
    petition_host::main_with::<SuiteArgs>(
        &BINARY,
        |a| {
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
        },
        prepare,
    )
    .await?;
    Ok(())
}
