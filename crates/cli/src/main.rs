//! `petition`: Petition Pipeline from the command line. It talks gRPC to the suite (or to the
//! service behind `--addr`) with a bearer token, prints tables for people and protobuf JSON for
//! scripts, and exits with a code that says what happened.

mod admin;
mod audit;
mod cases;
mod client;
mod exchanges;
mod health;
mod import;
mod keys;
mod output;
mod petitioner;
mod register;
mod situation;
mod supervise;
mod token;
mod work;

use clap::{Parser, Subcommand};
use client::{Conn, Failure};
use output::Format;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Start here:
  cargo run -p petition-suite -- --dev          # the suite, embedded, in another terminal
  export PETITION_TOKEN=$(petition token issue --dev --org pingcheng.bureau --role clerk)
  petition case list

Exit codes:
  0  done
  1  the service failed (an internal error: its log says more)
  2  the command line is wrong, or a file it names cannot be read (the message says which)
  3  not signed in, or not allowed: check PETITION_TOKEN and its organ and role
  4  not found, or not within your reach
  5  refused: the request breaks a rule; the message names the field and the rule (an
     import: some rows were refused, each in the rejected file with its reason; audit
     verify: a chain is broken, at the entry named)
  6  the service cannot be reached, is busy, or the call was interrupted: try again
  7  --wait gave up before the case got there";

#[derive(Parser, Debug)]
#[command(
    name = "petition",
    version,
    about = "Petition Pipeline from the command line: register petitions, work a department's inbox, follow the statutory clocks.",
    after_help = AFTER_HELP
)]
struct Cli {
    /// gRPC address of the suite or service
    #[arg(
        long,
        env = "PETITION_ADDR",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    addr: String,
    /// bearer token (`petition token issue` prints one)
    #[arg(long, env = "PETITION_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// admin port of the suite or service (clock and calendar commands)
    #[arg(
        long,
        env = "PETITION_ADMIN",
        default_value = "127.0.0.1:9464",
        global = true
    )]
    admin: String,
    #[command(flatten)]
    tls: client::TlsArgs,
    /// table for people, json for scripts
    #[arg(long, short, value_enum, default_value_t = Format::Table, global = true)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Bearer tokens for people and upstream systems.
    #[command(
        subcommand,
        after_help = "Example:\n  export PETITION_TOKEN=$(petition token issue --dev --org pingcheng.bureau --role clerk)"
    )]
    Token(TokenCommand),
    /// API keys for upstream systems.
    #[command(
        subcommand,
        after_help = "Example:\n  petition apikey new --system datong.12345 --org pingcheng.bureau"
    )]
    Apikey(ApiKeyCommand),
    /// Register a petition (登记), from flags or a JSON/JSONL file.
    Register(Box<register::Register>),
    /// Bring historical cases from the old system's export (resumable, idempotent).
    Import(import::Import),
    /// Read cases: one, a list, the timeline, the petitioner's view.
    #[command(
        subcommand,
        after_help = "Examples:\n  petition case get 140213-2026-000001\n  petition case list --repeat"
    )]
    Case(cases::CaseCommand),
    /// A department's cases: to claim, to do, overdue.
    Inbox(work::Inbox),
    /// Accept a case sent to your organ (受理); the handling clock starts.
    Accept(work::Accept),
    /// Object that your organ is not competent (异议, Art. 23 ¶3).
    Object(work::Object),
    /// Send a case on to another organ.
    Transfer(work::Transfer),
    /// The written reply (书面答复, Art. 34) and its service on the petitioner.
    Reply(work::Reply),
    /// Ask for the one extension of the handling period, or decide one (Art. 34).
    Extend(work::Extend),
    /// Take a member of staff with an interest out of a case (回避, Art. 28 ¶3).
    Recuse(work::Recuse),
    /// Whether a service serves (grpc.health.v1): for health checks.
    Health(health::Health),
    /// The petitioner rates the handling (满意度评价), with their query code.
    Rate(petitioner::Rate),
    /// The petitioner requests review (复查) or re-examination (复核), with their query code.
    Review(petitioner::Review),
    /// The clocks an organ owes: due soon, overdue, paused.
    Due(supervise::Due),
    /// Reminders, urging (催办), listed supervision (挂牌督办) sent to an organ.
    Notices(supervise::Notices),
    /// The backlog (积案): past the limit, repeated, or flagged.
    Backlog(supervise::Backlog),
    /// The situation of a period (形势分析): volumes, shares, 同比 and 环比, hot issues.
    Situation(situation::Situation),
    /// The rates organs are judged by, with numerators and denominators.
    Scorecards(situation::Scorecards),
    /// Write the situation report of a period as one HTML page, charts included.
    Report(situation::Report),
    /// Category × place cells unusually high in a month against their own history.
    Hotspots(situation::Hotspots),
    /// Every case of a period as CSV, without personal data.
    Export(situation::Export),
    /// The register of suggestions to the Party committee and government (Art. 41).
    #[command(subcommand, after_help = "Example:\n  petition suggestion list 2026")]
    Suggestion(situation::SuggestionCommand),
    /// Simulated time of a --dev-clock suite (admin port).
    #[command(
        subcommand,
        after_help = "Example:\n  petition clock advance --days 15"
    )]
    Clock(admin::ClockCommand),
    /// Cases routed to organs a peer deployment serves: where each stands; send one again.
    Exchanges(exchanges::Exchanges),
    /// The holiday calendar (admin port).
    #[command(subcommand, after_help = "Example:\n  petition calendar reload")]
    Calendar(admin::CalendarCommand),
    /// After a data key rotation: re-seal personal data under the new key (an admin).
    Rekey(keys::Rekey),
    /// The audit log: verify the chains, read a case's or an actor's entries (an admin).
    #[command(subcommand, after_help = "Example:\n  petition audit verify")]
    Audit(audit::AuditCommand),
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Print a token for an organ and role.
    Issue(token::Issue),
}

#[derive(Subcommand, Debug)]
enum ApiKeyCommand {
    /// A new key for an upstream system: the key to give it (shown once), and the line for the
    /// services' --api-keys-file (which keeps only a hash).
    #[command(after_help = "\
Example:
  petition apikey new --system datong.12345 --org pingcheng.bureau
  # give the system the key; append the line to the file PETITION_API_KEYS_FILE names,
  # restart the services; the system calls with `authorization: ApiKey pk.…`")]
    New {
        /// the system's name: its registrations carry it as source_system
        #[arg(long)]
        system: String,
        /// the organ it registers at, from the organisation tree
        #[arg(long)]
        org: String,
    },
}

/// The organ a token names, read without checking its signature (the services check it):
/// only to fill in a default such as the registering organ.
fn token_org(token: Option<&str>) -> Option<String> {
    use base64::Engine;
    let payload = token?.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("org")?.as_str().map(str::to_owned)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let format = cli.output;
    if let Command::Token(TokenCommand::Issue(a)) = &cli.command {
        println!("{}", token::issue(a)?);
        return Ok(());
    }
    if let Command::Apikey(ApiKeyCommand::New { system, org }) = &cli.command {
        // the rule a registration's source_system meets, or the key could never register
        let fits = !system.is_empty()
            && system.chars().count() <= petition_domain::intake::MAX_SOURCE_SYSTEM_CHARS
            && system.bytes().all(|b| b.is_ascii_graphic());
        if !fits {
            return Err(Failure::usage(format!(
                "--system: printable ASCII without spaces, at most {} characters, e.g. datong.12345",
                petition_domain::intake::MAX_SOURCE_SYSTEM_CHARS
            )));
        }
        let (key, line) = petition_auth::apikey::mint(system, org);
        println!("key (give it to {system}; it is not shown again):\n  {key}");
        println!("line for the --api-keys-file (no secret in it):\n  {line}");
        return Ok(());
    }
    match &cli.command {
        Command::Clock(c) => return admin::clock(&cli.admin, c).await,
        Command::Calendar(c) => return admin::calendar(&cli.admin, c).await,
        _ => {}
    }
    let conn = Conn::open(&cli.addr, cli.token.as_deref(), &cli.tls)?;
    match &cli.command {
        Command::Token(_) | Command::Apikey(_) | Command::Clock(_) | Command::Calendar(_) => Ok(()),
        Command::Register(a) => {
            register::run(&conn, a, token_org(cli.token.as_deref()), format).await
        }
        Command::Import(a) => import::run(&conn, a, format).await,
        Command::Case(c) => cases::run(&conn, c, format).await,
        Command::Inbox(a) => work::inbox(&conn, a, format).await,
        Command::Accept(a) => work::accept(&conn, a, format).await,
        Command::Recuse(a) => work::recuse(&conn, a, format).await,
        Command::Health(a) => health::run(&conn, a).await,
        Command::Object(a) => work::object(&conn, a, format).await,
        Command::Transfer(a) => work::transfer(&conn, a, format).await,
        Command::Reply(a) => work::reply(&conn, a, format).await,
        Command::Extend(a) => work::extend(&conn, a, format).await,
        Command::Rate(a) => petitioner::rate(&conn, a, format).await,
        Command::Review(a) => petitioner::review(&conn, a, format).await,
        Command::Due(a) => supervise::due(&conn, a, format).await,
        Command::Notices(a) => supervise::notices(&conn, a, format).await,
        Command::Backlog(a) => supervise::backlog(&conn, a, format).await,
        Command::Situation(a) => situation::situation(&conn, a, format).await,
        Command::Scorecards(a) => situation::scorecards(&conn, a, format).await,
        Command::Report(a) => situation::report(&conn, a, format).await,
        Command::Hotspots(a) => situation::hotspots(&conn, a, format).await,
        Command::Export(a) => situation::export(&conn, a).await,
        Command::Suggestion(c) => situation::suggestion(&conn, c, format).await,
        Command::Rekey(a) => keys::rekey(&conn, a, format).await,
        Command::Audit(c) => audit::run(&conn, c, format).await,
        Command::Exchanges(a) => exchanges::run(&conn, a, format).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("petition: cannot start: {e}");
            return ExitCode::from(client::EXIT_INTERNAL);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("petition: {f}");
            ExitCode::from(f.exit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command, and every group of commands, shows an example in its help.
    #[test]
    fn every_command_has_an_example() {
        fn walk(cmd: &mut clap::Command, path: &str, missing: &mut Vec<String>) {
            let name = format!("{path} {}", cmd.get_name());
            let help = cmd.render_long_help().to_string();
            if !help.contains("Example") && !help.contains("Start here") {
                missing.push(name.clone());
            }
            for sub in cmd.get_subcommands_mut() {
                if sub.get_name() != "help" {
                    walk(sub, &name, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&mut Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no example in the help of {missing:?}");
    }

    #[test]
    fn the_organ_of_a_token_fills_the_registering_organ() {
        let token = petition_auth::TokenKeys::dev().issue(
            &petition_auth::Principal {
                subject: "clerk@pingcheng.bureau".into(),
                org: "pingcheng.bureau".into(),
                role: petition_auth::Role::Clerk,
                scopes: vec![],
            },
            chrono::Duration::hours(1),
        );
        assert_eq!(token_org(Some(&token)).as_deref(), Some("pingcheng.bureau"));
        assert_eq!(token_org(Some("not-a-token")), None);
    }
}
