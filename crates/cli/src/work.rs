//! A department's work on the cases sent to it: the inbox, and accept (受理), object (异议),
//! transfer, reply (书面答复), extend (Art. 34), and recusal (回避, Art. 28 ¶3).

use crate::client::{Conn, Failure, request_id};
use crate::output::{self, Format, last_day, when, word};
use petition_proto::v1 as pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bucket {
    /// 待领: sent to you, not yet accepted
    ToClaim,
    /// 待办: accepted, the reply still owed
    ToDo,
    /// 超期: past its date
    Overdue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Outcome {
    /// 支持
    Supported,
    /// 解释说明
    Explained,
    /// 不予支持
    NotSupported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Served {
    /// 直接送达
    InPerson,
    /// 邮寄送达
    Post,
    Other,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  petition inbox
  petition inbox --bucket overdue")]
pub struct Inbox {
    /// one bucket; default all
    #[arg(long, value_enum)]
    pub bucket: Option<Bucket>,
    /// category code prefix, e.g. 01
    #[arg(long, default_value = "")]
    pub category: String,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  petition accept 140213-2026-000001")]
pub struct Accept {
    /// case number or case id
    pub case: String,
    /// apply once even if sent twice (a script's retry)
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example:
  petition object 140213-2026-000001 --reason '房屋产权登记属不动产登记中心职责'")]
pub struct Object {
    pub case: String,
    /// why your organ is not competent (Art. 23 ¶3: within 5 working days of receipt)
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example:
  petition transfer 140213-2026-000001 --to pingcheng.resources --reason '属自然资源部门职责'")]
pub struct Transfer {
    pub case: String,
    /// the organ to send it to
    #[arg(long)]
    pub to: String,
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example:
  petition reply 140213-2026-000001 --outcome supported \\
      --text '已督促开发商于3个月内办理不动产权证' --legal-basis '《不动产登记暂行条例》' \\
      --served in-person")]
pub struct Reply {
    pub case: String,
    #[arg(long, value_enum)]
    pub outcome: Outcome,
    /// the written reply (信访处理意见书)
    #[arg(long)]
    pub text: String,
    #[arg(long, default_value = "")]
    pub legal_basis: String,
    /// how it reached the petitioner (送达); its date starts the 30 days to request review
    #[arg(long, value_enum)]
    pub served: Option<Served>,
    /// when it was served (RFC 3339); default now
    #[arg(long)]
    pub served_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  # the holder asks (Art. 34: once, at most 30 days, with a reason)
  petition extend 140213-2026-000001 --days 30 --reason '需现场核查'
  # the bureau decides
  petition extend 140213-2026-000001 --approve --reason '情况复杂'")]
pub struct Extend {
    pub case: String,
    /// ask for this many days
    #[arg(long, required_unless_present_any = ["approve", "refuse"], conflicts_with_all = ["approve", "refuse"])]
    pub days: Option<u32>,
    /// approve the holder's request (the bureau, or the organ above when so configured)
    #[arg(long, conflicts_with = "refuse")]
    pub approve: bool,
    #[arg(long)]
    pub refuse: bool,
    /// why: told to the petitioner
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub request_id: Option<String>,
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn state(v: i32) -> String {
    pb::AssignmentState::try_from(v)
        .map(|s| word(s.as_str_name(), "ASSIGNMENT_STATE_"))
        .unwrap_or_default()
}

fn due(t: &Option<prost_types::Timestamp>, provisional: bool) -> String {
    let day = last_day(t);
    if day.is_empty() || !provisional {
        day
    } else {
        format!("{day} (provisional)")
    }
}

pub fn print_assignment(a: &pb::Assignment, format: Format) {
    if format == Format::Json {
        println!("{}", output::json(a, "petition.v1.Assignment"));
        return;
    }
    print!(
        "{}",
        output::fields(&[
            ("case number", a.case_number.clone()),
            ("state", state(a.state)),
            ("held by", a.organ.clone()),
            (
                "mode",
                pb::HandlingMode::try_from(a.mode)
                    .map(|m| word(m.as_str_name(), "HANDLING_MODE_"))
                    .unwrap_or_default()
            ),
            (
                "objection until",
                due(&a.objection_due, a.objection_due_provisional)
            ),
            (
                "reply due",
                due(&a.handling_due, a.handling_due_provisional)
            ),
            ("report due", last_day(&a.report_due)),
            ("rule", a.rule.clone()),
        ])
    );
    if let Some(last) = a.history.last() {
        println!("latest: {} {}", when(&last.at), last.rule);
    }
}

pub async fn inbox(conn: &Conn, a: &Inbox, format: Format) -> Result<(), Failure> {
    let list = conn
        .routing()
        .list_inbox(pb::ListInboxRequest {
            bucket: match a.bucket {
                None => pb::InboxBucket::Unspecified,
                Some(Bucket::ToClaim) => pb::InboxBucket::ToClaim,
                Some(Bucket::ToDo) => pb::InboxBucket::ToDo,
                Some(Bucket::Overdue) => pb::InboxBucket::Overdue,
            } as i32,
            category_prefix: a.category.clone(),
            page_size: a.limit,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!("{}", output::json(&list, "petition.v1.ListInboxResponse"));
        return Ok(());
    }
    let mut t = output::table(&[
        "case number",
        "bucket",
        "state",
        "due",
        "category",
        "received",
    ]);
    for i in &list.items {
        let provisional = match pb::AssignmentState::try_from(i.state) {
            Ok(pb::AssignmentState::Accepted) => i.handling_due_provisional,
            _ => i.objection_due_provisional,
        };
        let next = match pb::AssignmentState::try_from(i.state) {
            Ok(pb::AssignmentState::Accepted) => i.handling_due.or(i.report_due),
            _ => i.objection_due,
        };
        t.add_row(vec![
            i.case_number.clone(),
            pb::InboxBucket::try_from(i.bucket)
                .map(|b| word(b.as_str_name(), "INBOX_BUCKET_"))
                .unwrap_or_default(),
            state(i.state),
            due(&next, provisional),
            i.category.clone(),
            when(&i.organ_received_at),
        ]);
    }
    println!("{t}");
    Ok(())
}

pub async fn accept(conn: &Conn, a: &Accept, format: Format) -> Result<(), Failure> {
    let id = conn.case_id(&a.case).await?;
    let r = conn
        .routing()
        .accept_case(pb::AcceptCaseRequest {
            case_id: id,
            request_id: request_id(a.request_id.as_deref()),
        })
        .await?
        .into_inner();
    print_assignment(&r, format);
    Ok(())
}

pub async fn object(conn: &Conn, a: &Object, format: Format) -> Result<(), Failure> {
    let id = conn.case_id(&a.case).await?;
    let r = conn
        .routing()
        .object_to_assignment(pb::ObjectToAssignmentRequest {
            case_id: id,
            reason: a.reason.clone(),
            request_id: request_id(a.request_id.as_deref()),
        })
        .await?
        .into_inner();
    print_assignment(&r, format);
    Ok(())
}

pub async fn transfer(conn: &Conn, a: &Transfer, format: Format) -> Result<(), Failure> {
    let id = conn.case_id(&a.case).await?;
    let r = conn
        .routing()
        .transfer_case(pb::TransferCaseRequest {
            case_id: id,
            organ: a.to.clone(),
            reason: a.reason.clone(),
            request_id: request_id(a.request_id.as_deref()),
        })
        .await?
        .into_inner();
    print_assignment(&r, format);
    Ok(())
}

pub async fn reply(conn: &Conn, a: &Reply, format: Format) -> Result<(), Failure> {
    let id = conn.case_id(&a.case).await?;
    let r = conn
        .routing()
        .submit_reply(pb::SubmitReplyRequest {
            case_id: id,
            outcome: match a.outcome {
                Outcome::Supported => pb::ReplyOutcome::Supported,
                Outcome::Explained => pb::ReplyOutcome::Explained,
                Outcome::NotSupported => pb::ReplyOutcome::NotSupported,
            } as i32,
            text: a.text.clone(),
            legal_basis: a.legal_basis.clone(),
            service: a.served.map(|s| pb::ServiceRecord {
                mode: match s {
                    Served::InPerson => pb::ServiceMode::InPerson,
                    Served::Post => pb::ServiceMode::Post,
                    Served::Other => pb::ServiceMode::Other,
                } as i32,
                served_at: Some(ts(a
                    .served_at
                    .map(|t| t.to_utc())
                    .unwrap_or_else(chrono::Utc::now))),
                signed: s == Served::InPerson,
                refused: false,
                view: pb::PetitionerView::Unspecified as i32,
            }),
            request_id: request_id(a.request_id.as_deref()),
        })
        .await?
        .into_inner();
    print_assignment(&r, format);
    Ok(())
}

pub async fn extend(conn: &Conn, a: &Extend, format: Format) -> Result<(), Failure> {
    let id = conn.case_id(&a.case).await?;
    let request_id = request_id(a.request_id.as_deref());
    match a.days {
        Some(days) => {
            let r = conn
                .routing()
                .request_extension(pb::RequestExtensionRequest {
                    case_id: id,
                    days,
                    reason: a.reason.clone(),
                    request_id,
                })
                .await?
                .into_inner();
            print_assignment(&r, format);
        }
        None => {
            let t = conn
                .supervision()
                .decide_extension(pb::DecideExtensionRequest {
                    case_id: id,
                    approve: a.approve,
                    reason: a.reason.clone(),
                    request_id,
                })
                .await?
                .into_inner();
            crate::cases::print_timeline(&t, format);
        }
    }
    Ok(())
}

/// Why a member of staff stays out of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecusalReason {
    /// 近亲属: a close relative of the petitioner or of a party
    Relative,
    /// 当事人: a party to the matter
    Party,
    /// 被反映人: the person the petition is about
    Accused,
    /// 其他利害关系: another direct interest
    OtherInterest,
}

impl RecusalReason {
    fn pb(self) -> pb::RecusalReason {
        match self {
            RecusalReason::Relative => pb::RecusalReason::Relative,
            RecusalReason::Party => pb::RecusalReason::Party,
            RecusalReason::Accused => pb::RecusalReason::Accused,
            RecusalReason::OtherInterest => pb::RecusalReason::OtherInterest,
        }
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  # the housing bureau's leader: handler.li is the petitioner's cousin
  petition recuse 140213-2026-000001 --subject handler.li --reason relative
  # a handler declares their own interest (the subject their token names)
  petition recuse 140213-2026-000001 --subject handler.wang --reason other-interest
  # an admin lifts one recorded in error, saying why
  petition recuse 140213-2026-000001 --subject handler.wang --lift \"recorded for the wrong case\"")]
pub struct Recuse {
    /// case number or case id
    pub case: String,
    /// the member of staff who is out of the case, as their token names them
    #[arg(long)]
    pub subject: String,
    #[arg(long, value_enum, required_unless_present = "lift")]
    pub reason: Option<RecusalReason>,
    /// lift a recusal recorded in error instead (an admin), saying why
    #[arg(long, value_name = "WHY", conflicts_with = "reason")]
    pub lift: Option<String>,
    /// the organ they work for (default: yours)
    #[arg(long, default_value = "")]
    pub organ: String,
    /// apply once even if sent twice (a script's retry)
    #[arg(long)]
    pub request_id: Option<String>,
}

pub async fn recuse(conn: &Conn, a: &Recuse, format: Format) -> Result<(), Failure> {
    let id = conn.case_id(&a.case).await?;
    if let Some(why) = &a.lift {
        let r = conn
            .routing()
            .lift_recusal(pb::LiftRecusalRequest {
                case_id: id,
                subject: a.subject.clone(),
                why: why.clone(),
                request_id: request_id(a.request_id.as_deref()),
            })
            .await?
            .into_inner();
        if format == Format::Json {
            println!("{}", output::json(&r, "petition.v1.Recusal"));
        } else {
            println!(
                "{} is no longer out of case {}: every service shows it to them again as soon as it hears of it",
                r.subject,
                a.case.trim()
            );
        }
        return Ok(());
    }
    let reason = a
        .reason
        .ok_or_else(|| Failure::usage("--reason: required"))?;
    let r = conn
        .routing()
        .record_recusal(pb::RecordRecusalRequest {
            case_id: id,
            subject: a.subject.clone(),
            reason: reason.pb() as i32,
            request_id: request_id(a.request_id.as_deref()),
            organ: a.organ.clone(),
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!("{}", output::json(&r, "petition.v1.Recusal"));
        return Ok(());
    }
    println!(
        "{} is out of case {} (回避, {}) since {}: every service hides it from them as soon as it hears of it",
        r.subject,
        a.case.trim(),
        word(
            pb::RecusalReason::try_from(r.reason)
                .map(|r| r.as_str_name())
                .unwrap_or_default(),
            "RECUSAL_REASON_"
        ),
        when(&r.recorded_at)
    );
    Ok(())
}
