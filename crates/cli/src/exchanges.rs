//! The cases routed to organs a peer deployment serves (DESIGN §5b): where each exchange
//! stands, and sending one again once its cause is fixed.

use crate::client::{Conn, Failure};
use crate::output::{self, Format, when, word};
use petition_proto::v1 as pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Status {
    Pending,
    Retrying,
    Done,
    Conflict,
    Failed,
}

#[derive(clap::Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
Examples:
  petition exchanges --status failed
  petition exchanges --status conflict --output json
  petition exchanges retry 140200-2026-000017"
)]
pub struct Exchanges {
    #[command(subcommand)]
    pub action: Option<Action>,
    #[arg(long, value_enum)]
    pub status: Option<Status>,
    /// only the exchanges with this peer deployment
    #[arg(long)]
    pub peer: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Send a failed or conflicting case again now, or a retrying one without waiting.
    #[command(after_help = "Example:\n  petition exchanges retry 140200-2026-000017")]
    Retry {
        /// the case number (ours)
        case_number: String,
    },
}

pub async fn run(conn: &Conn, a: &Exchanges, format: Format) -> Result<(), Failure> {
    if let Some(Action::Retry { case_number }) = &a.action {
        let e = conn
            .intake()
            .retry_exchange(pb::RetryExchangeRequest {
                case_number: case_number.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        if format == Format::Json {
            println!("{}", output::json(&e, "petition.v1.Exchange"));
        } else {
            println!(
                "case {}: {} to {}, attempt {} next, at {}",
                e.case_number,
                status_word(e.status),
                e.peer,
                e.attempts + 1,
                when(&e.next_attempt_at)
            );
        }
        return Ok(());
    }
    let list = conn
        .intake()
        .list_exchanges(pb::ListExchangesRequest {
            status: match a.status {
                None => pb::ExchangeStatus::Unspecified,
                Some(Status::Pending) => pb::ExchangeStatus::Pending,
                Some(Status::Retrying) => pb::ExchangeStatus::Retrying,
                Some(Status::Done) => pb::ExchangeStatus::Done,
                Some(Status::Conflict) => pb::ExchangeStatus::Conflict,
                Some(Status::Failed) => pb::ExchangeStatus::Failed,
            } as i32,
            peer: a.peer.clone().unwrap_or_default(),
            page_size: a.limit,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!(
            "{}",
            output::json(&list, "petition.v1.ListExchangesResponse")
        );
        return Ok(());
    }
    let mut t = output::table(&[
        "case number",
        "peer",
        "organ",
        "status",
        "attempts",
        "peer's case",
        "why",
    ]);
    for e in &list.exchanges {
        let mut why = e.reason.clone();
        // A conflict shows both versions side by side: the person who decides needs both.
        if let (Some(ours), Some(theirs)) = (&e.ours, &e.theirs) {
            why = format!(
                "{why}\n  ours:   {} «{}» received {}\n  theirs: {} «{}» received {}",
                ours.case_number,
                ours.title,
                when(&ours.received_at),
                theirs.case_number,
                theirs.title,
                when(&theirs.received_at)
            );
        }
        t.add_row(vec![
            e.case_number.clone(),
            e.peer.clone(),
            e.organ.clone(),
            status_word(e.status),
            e.attempts.to_string(),
            e.peer_case_number.clone(),
            why,
        ]);
    }
    println!("{t}");
    if !list.next_page_token.is_empty() {
        println!("(more: raise --limit)");
    }
    Ok(())
}

fn status_word(v: i32) -> String {
    pb::ExchangeStatus::try_from(v)
        .map(|s| word(s.as_str_name(), "EXCHANGE_STATUS_"))
        .unwrap_or_default()
}
