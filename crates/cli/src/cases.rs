//! `petition case get|list|timeline|lookup`: a case as intake holds it, supervision's timeline
//! and clocks, and the petitioner's view by query code.

use crate::client::{Conn, EXIT_WAIT, Failure};
use crate::output::{self, Format, when, word};
use petition_proto::v1 as pb;
use std::time::{Duration, Instant};

#[derive(clap::Subcommand, Debug)]
pub enum CaseCommand {
    /// A case by number or id: the petition, its status and holder, and its steps.
    #[command(after_help = "\
Examples:
  petition case get 140213-2026-000001
  # wait (up to --timeout) until routing has sent it on
  petition case get 140213-2026-000001 --wait routed")]
    Get {
        /// case number (140213-2026-000001) or case id
        case: String,
        /// wait until the case reaches this status: registered, routed, in-handling, answered,
        /// closed, diverted or linked
        #[arg(long, value_enum)]
        wait: Option<Status>,
        /// seconds --wait waits before giving up (exit code 7)
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// A case's personal data in the clear, for a purpose you state (kept in the audit log).
    #[command(after_help = "\
Example:
  petition case reveal 140213-2026-000001 --purpose \"phoning the petitioner about the hearing\"")]
    Reveal {
        /// case number or case id
        case: String,
        /// why you need it, in a few words
        #[arg(long)]
        purpose: String,
    },
    /// Cases registered within your reach, newest first.
    #[command(after_help = "\
Examples:
  petition case list
  petition case list --received-by pingcheng.bureau --category 01 --repeat")]
    List {
        #[arg(long, default_value = "")]
        received_by: String,
        /// category code prefix, e.g. 01 or 01.01
        #[arg(long, default_value = "")]
        category: String,
        #[arg(long)]
        group: bool,
        #[arg(long)]
        leapfrog: bool,
        #[arg(long)]
        repeat: bool,
        /// at most this many
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Supervision's view: every clock with its article and last day, and the timeline.
    #[command(after_help = "\
Examples:
  petition case timeline 140213-2026-000001
  # wait (up to --timeout) until supervision has the written reply: the rating and review
  # windows run from then
  petition case timeline 140213-2026-000001 --wait answered")]
    Timeline {
        case: String,
        /// wait until supervision has the case at this stage
        #[arg(long, value_enum)]
        wait: Option<Stage>,
        /// seconds --wait waits before giving up (exit code 7)
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// What the petitioner sees with their query code (查询码).
    #[command(after_help = "Example:\n  petition case lookup K7Q2-M9XD-4TPA")]
    Lookup { query_code: String },
}

/// Where a case stands in supervision (its timeline's stage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    Routed,
    InHandling,
    Answered,
    ReviewRequested,
    ReviewDecided,
    ReexaminationRequested,
    Final,
}

impl Stage {
    fn pb(self) -> pb::CaseStage {
        match self {
            Stage::Routed => pb::CaseStage::Routed,
            Stage::InHandling => pb::CaseStage::InHandling,
            Stage::Answered => pb::CaseStage::Answered,
            Stage::ReviewRequested => pb::CaseStage::ReviewRequested,
            Stage::ReviewDecided => pb::CaseStage::ReviewDecided,
            Stage::ReexaminationRequested => pb::CaseStage::ReexaminationRequested,
            Stage::Final => pb::CaseStage::Final,
        }
    }
}

fn stage(v: i32) -> String {
    pb::CaseStage::try_from(v)
        .map(|s| word(s.as_str_name(), "CASE_STAGE_"))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Status {
    Registered,
    Routed,
    InHandling,
    Answered,
    Closed,
    Diverted,
    Linked,
}

impl Status {
    fn pb(self) -> pb::CaseStatus {
        match self {
            Status::Registered => pb::CaseStatus::Registered,
            Status::Routed => pb::CaseStatus::Routed,
            Status::InHandling => pb::CaseStatus::InHandling,
            Status::Answered => pb::CaseStatus::Answered,
            Status::Closed => pb::CaseStatus::Closed,
            Status::Diverted => pb::CaseStatus::Diverted,
            Status::Linked => pb::CaseStatus::Linked,
        }
    }
}

pub fn status(v: i32) -> String {
    pb::CaseStatus::try_from(v)
        .map(|s| word(s.as_str_name(), "CASE_STATUS_"))
        .unwrap_or_default()
}

fn step_kind(v: i32) -> String {
    pb::StepKind::try_from(v)
        .map(|s| word(s.as_str_name(), "STEP_KIND_"))
        .unwrap_or_default()
}

pub async fn run(conn: &Conn, cmd: &CaseCommand, format: Format) -> Result<(), Failure> {
    match cmd {
        CaseCommand::Get {
            case,
            wait,
            timeout,
        } => get(conn, case, *wait, Duration::from_secs(*timeout), format).await,
        CaseCommand::Reveal { case, purpose } => reveal(conn, case, purpose, format).await,
        CaseCommand::List {
            received_by,
            category,
            group,
            leapfrog,
            repeat,
            limit,
        } => {
            let list = conn
                .intake()
                .list_cases(pb::ListCasesRequest {
                    received_by: received_by.clone(),
                    category_prefix: category.clone(),
                    only_group: *group,
                    only_leapfrog: *leapfrog,
                    only_repeat: *repeat,
                    page_size: *limit,
                    ..Default::default()
                })
                .await?
                .into_inner();
            if format == Format::Json {
                println!("{}", output::json(&list, "petition.v1.ListCasesResponse"));
                return Ok(());
            }
            let mut t = output::table(&[
                "case number",
                "received",
                "status",
                "holder",
                "category",
                "flags",
                "title",
            ]);
            for c in &list.cases {
                t.add_row(vec![
                    c.case_number.clone(),
                    when(&c.received_at),
                    status(c.status),
                    c.holder.clone(),
                    c.category.clone(),
                    crate::register::flags(c.flags.as_ref()),
                    c.title.clone(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        CaseCommand::Timeline {
            case,
            wait,
            timeout,
        } => {
            let id = conn.case_id(case).await?;
            let (started, timeout) = (Instant::now(), Duration::from_secs(*timeout));
            let mut supervision = conn.supervision();
            let t = loop {
                let got = supervision
                    .get_timeline(pb::GetTimelineRequest {
                        case_id: id.clone(),
                    })
                    .await;
                let waited_out = started.elapsed() >= timeout;
                match (got, wait) {
                    (Ok(t), Some(w)) if t.get_ref().stage != w.pb() as i32 => {
                        if waited_out {
                            let t = t.into_inner();
                            return Err(Failure::new(
                                EXIT_WAIT,
                                format!(
                                    "case {} is {} in supervision after {} s, not {}",
                                    t.case_number,
                                    stage(t.stage),
                                    timeout.as_secs(),
                                    stage(w.pb() as i32)
                                ),
                            ));
                        }
                    }
                    (Ok(t), _) => break t.into_inner(),
                    // supervision learns of a case from the events a moment after intake
                    (Err(e), Some(_)) if e.code() == tonic::Code::NotFound && !waited_out => {}
                    (Err(e), _) => return Err(e.into()),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            print_timeline(&t, format);
            Ok(())
        }
        CaseCommand::Lookup { query_code } => {
            let v = conn
                .intake()
                .lookup_by_query_code(pb::LookupByQueryCodeRequest {
                    query_code: query_code.clone(),
                })
                .await?
                .into_inner();
            if format == Format::Json {
                println!(
                    "{}",
                    output::json(&v, "petition.v1.LookupByQueryCodeResponse")
                );
                return Ok(());
            }
            print!(
                "{}",
                output::fields(&[
                    ("case number", v.case_number.clone()),
                    ("title", v.title.clone()),
                    ("status", status(v.status)),
                    ("received", when(&v.received_at)),
                    ("received by", v.received_by_name.clone()),
                    ("handled by", v.holder_name.clone()),
                ])
            );
            let mut t = output::table(&["when", "step", "what you are told"]);
            for s in &v.steps {
                t.add_row(vec![when(&s.at), step_kind(s.kind), s.note.clone()]);
            }
            println!("{t}");
            Ok(())
        }
    }
}

async fn get(
    conn: &Conn,
    case: &str,
    wait: Option<Status>,
    timeout: Duration,
    format: Format,
) -> Result<(), Failure> {
    let (id, number) = if uuid::Uuid::parse_str(case.trim()).is_ok() {
        (case.trim().to_owned(), String::new())
    } else {
        (String::new(), case.trim().to_owned())
    };
    let started = Instant::now();
    let mut intake = conn.intake();
    let c = loop {
        let c = intake
            .get_case(pb::GetCaseRequest {
                case_id: id.clone(),
                case_number: number.clone(),
            })
            .await?
            .into_inner();
        match wait {
            Some(w) if c.status != w.pb() as i32 => {
                if started.elapsed() >= timeout {
                    return Err(Failure::new(
                        EXIT_WAIT,
                        format!(
                            "case {} is {} after {} s, not {}",
                            c.case_number,
                            status(c.status),
                            timeout.as_secs(),
                            status(w.pb() as i32)
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => break c,
        }
    };
    if format == Format::Json {
        println!("{}", output::json(&c, "petition.v1.Case"));
        return Ok(());
    }
    let main = c
        .petitioners
        .iter()
        .find(|p| p.is_main)
        .or(c.petitioners.first());
    print!(
        "{}",
        output::fields(&[
            ("case number", c.case_number.clone()),
            ("status", status(c.status)),
            (
                "held by",
                format!("{} {}", c.holder, c.holder_name).trim().to_owned()
            ),
            (
                "received",
                format!("{} by {}", when(&c.received_at), c.received_by)
            ),
            ("category", c.category.clone()),
            ("place", c.problem_location.clone()),
            (
                "petitioner",
                main.map(|p| format!("{} {}", p.name, p.id_number))
                    .unwrap_or_default()
            ),
            ("flags", crate::register::flags(c.flags.as_ref())),
            (
                "sent down",
                c.upstream
                    .as_ref()
                    .map(|u| {
                        format!(
                            "by {} as its case {} to {}{}",
                            c.source_system,
                            u.case_number,
                            u.organ,
                            if u.assigned {
                                ", assigned (交办)"
                            } else {
                                ""
                            }
                        )
                    })
                    .unwrap_or_default(),
            ),
            (
                "exchange",
                c.exchange
                    .as_ref()
                    .map(|e| {
                        let status = pb::ExchangeStatus::try_from(e.status)
                            .map(|s| output::word(s.as_str_name(), "EXCHANGE_STATUS_"))
                            .unwrap_or_default();
                        let held = if e.peer_case_number.is_empty() {
                            String::new()
                        } else {
                            format!(" as case {}", e.peer_case_number)
                        };
                        let why = if e.reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", e.reason)
                        };
                        format!("{status} to {}{held}{why}", e.peer)
                    })
                    .unwrap_or_default(),
            ),
            ("title", c.title.clone()),
            ("content", c.content.clone()),
        ])
    );
    let mut t = output::table(&["when", "step", "organ", "note"]);
    for s in &c.timeline {
        t.add_row(vec![
            when(&s.at),
            step_kind(s.kind),
            s.organ.clone(),
            s.note.clone(),
        ]);
    }
    println!("{t}");
    Ok(())
}

pub fn print_timeline(t: &pb::Timeline, format: Format) {
    if format == Format::Json {
        println!("{}", output::json(t, "petition.v1.Timeline"));
        return;
    }
    print!(
        "{}",
        output::fields(&[
            ("case number", t.case_number.clone()),
            ("stage", stage(t.stage)),
            ("held by", t.holder.clone()),
        ])
    );
    let mut clocks = output::table(&["clock", "article", "owed by", "last day", "state", ""]);
    for c in &t.clocks {
        clocks.add_row(vec![
            c.name.clone(),
            c.article.clone(),
            c.organ.clone(),
            c.last_day.clone(),
            pb::ClockState::try_from(c.state)
                .map(|s| word(s.as_str_name(), "CLOCK_STATE_"))
                .unwrap_or_default(),
            [
                output::mark(c.late, "late"),
                output::mark(c.provisional, "provisional"),
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        ]);
    }
    println!("{clocks}\n");
    let mut entries = output::table(&["when", "what", "by"]);
    for e in &t.entries {
        entries.add_row(vec![when(&e.at), e.text.clone(), e.actor.clone()]);
    }
    println!("{entries}");
}

async fn reveal(conn: &Conn, case: &str, purpose: &str, format: Format) -> Result<(), Failure> {
    let case = case.trim();
    let (case_id, case_number) = if uuid::Uuid::parse_str(case).is_ok() {
        (case.to_owned(), String::new())
    } else {
        (String::new(), case.to_owned())
    };
    let r = conn
        .intake()
        .reveal_personal_data(pb::RevealPersonalDataRequest {
            case_id,
            case_number,
            purpose: purpose.to_owned(),
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!(
            "{}",
            output::json(&r, "petition.v1.RevealPersonalDataResponse")
        );
        return Ok(());
    }
    println!("case {} (this reveal is in the audit log)", r.case_number);
    let mut t = output::table(&["petitioner", "id number", "phone", "address"]);
    for p in &r.petitioners {
        t.add_row(vec![
            p.name.clone(),
            p.id_number.clone(),
            p.phone.clone(),
            p.address.clone(),
        ]);
    }
    println!("{t}");
    if let Some(a) = r.accused.as_ref().filter(|a| !a.name.is_empty()) {
        println!("accused: {}", a.name);
    }
    Ok(())
}
