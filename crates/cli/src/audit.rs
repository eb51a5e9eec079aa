//! `petition audit`: walk the audit chains, and read a case's or an actor's entries.

use crate::client::{Conn, EXIT_REFUSED, Failure};
use crate::output::{self, Format};
use petition_proto::v1 as pb;

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk each service's chain from its first entry and name the first broken link (exit 5
    /// when one is broken).
    #[command(after_help = "\
Examples:
  petition audit verify
  # also against a head logged earlier and kept elsewhere
  petition audit verify --expect intake:1200:3f7a0c…")]
    Verify {
        /// intake, routing, supervision or analytics; all when left out
        #[arg(long)]
        service: Option<String>,
        /// an anchor kept outside the database, SERVICE:SEQ:HASH from an "audit chain
        /// anchored" log line (schema, seq, hash); repeat for several
        #[arg(long, value_parser = expected_anchor)]
        expect: Vec<pb::ExpectedAnchor>,
    },
    /// The entries of one case (its number or id) or of one actor, oldest first.
    #[command(after_help = "\
Examples:
  petition audit list --service intake --case 140213-2026-000001
  petition audit list --service routing --actor handler@pingcheng.housing")]
    List {
        #[arg(long)]
        service: String,
        #[arg(long, conflicts_with = "actor", required_unless_present = "actor")]
        case: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        /// the last seq of the previous page
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
}

fn expected_anchor(s: &str) -> Result<pb::ExpectedAnchor, String> {
    let mut parts = s.splitn(3, ':');
    let (Some(service), Some(seq), Some(hash)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("SERVICE:SEQ:HASH, e.g. intake:1200:3f7a…".into());
    };
    Ok(pb::ExpectedAnchor {
        service: service.to_owned(),
        seq: seq
            .parse()
            .map_err(|_| format!("{seq:?}: the entry's sequence number"))?,
        hash: hash.to_owned(),
    })
}

pub async fn run(conn: &Conn, c: &AuditCommand, format: Format) -> Result<(), Failure> {
    match c {
        AuditCommand::Verify { service, expect } => {
            let r = conn
                .audit()
                .verify_audit(pb::VerifyAuditRequest {
                    service: service.clone().unwrap_or_default(),
                    expect: expect.clone(),
                })
                .await?
                .into_inner();
            if format == Format::Json {
                println!("{}", output::json(&r, "petition.v1.VerifyAuditResponse"));
            } else {
                let mut t =
                    output::table(&["service", "entries", "pending", "head", "anchors", "state"]);
                for c in &r.chains {
                    t.add_row(vec![
                        c.service.clone(),
                        c.entries.to_string(),
                        c.pending.to_string(),
                        format!(
                            "{} {}",
                            c.head_seq,
                            c.head_hash.chars().take(16).collect::<String>()
                        ),
                        c.anchors.to_string(),
                        if c.intact {
                            "intact".to_owned()
                        } else {
                            format!("BROKEN at entry {}: {}", c.broken_at, c.broken_reason)
                        },
                    ]);
                }
                println!("{t}");
            }
            if let Some(b) = r.chains.iter().find(|c| !c.intact) {
                return Err(Failure::new(
                    EXIT_REFUSED,
                    format!(
                        "the {} audit chain is broken at entry {}: {}",
                        b.service, b.broken_at, b.broken_reason
                    ),
                ));
            }
            Ok(())
        }
        AuditCommand::List {
            service,
            case,
            actor,
            after,
            limit,
        } => {
            let case_id = match case {
                Some(c) => conn.case_id(c).await?,
                None => String::new(),
            };
            let r = conn
                .audit()
                .list_audit(pb::ListAuditRequest {
                    service: service.clone(),
                    case_id,
                    actor: actor.clone().unwrap_or_default(),
                    after_seq: *after,
                    page_size: *limit,
                })
                .await?
                .into_inner();
            if format == Format::Json {
                println!("{}", output::json(&r, "petition.v1.ListAuditResponse"));
                return Ok(());
            }
            let mut t = output::table(&["seq", "at", "actor", "organ", "action", "detail"]);
            for e in &r.entries {
                t.add_row(vec![
                    e.seq.to_string(),
                    output::when(&e.at),
                    e.actor.clone(),
                    e.organ.clone(),
                    e.action.clone(),
                    e.detail.clone(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
    }
}
