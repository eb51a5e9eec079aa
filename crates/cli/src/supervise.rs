//! What supervision shows an organ: the clocks it owes (due), the notices sent to it, and the
//! backlog (积案).

use crate::client::{Conn, Failure};
use crate::output::{self, Format, when, word};
use petition_proto::v1 as pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DueBucket {
    /// running, last day within the reminder lead
    DueSoon,
    Overdue,
    Paused,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  petition due
  petition due --organ pingcheng.housing --bucket overdue
  petition due --within --bucket overdue     # a bureau: every organ of its territory")]
pub struct Due {
    /// default: your organ; any organ within your reach
    #[arg(long, default_value = "")]
    pub organ: String,
    /// also every organ the organ covers (below it; for a bureau, its territory)
    #[arg(long)]
    pub within: bool,
    #[arg(long, value_enum)]
    pub bucket: Option<DueBucket>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  petition notices --unacknowledged")]
pub struct Notices {
    #[arg(long, default_value = "")]
    pub organ: String,
    /// also those sent to the organs it covers
    #[arg(long)]
    pub within: bool,
    /// only those still waiting for the organ's written feedback
    #[arg(long)]
    pub unacknowledged: bool,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  petition backlog")]
pub struct Backlog {
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

pub async fn due(conn: &Conn, a: &Due, format: Format) -> Result<(), Failure> {
    let list = conn
        .supervision()
        .list_due(pb::ListDueRequest {
            organ: a.organ.clone(),
            bucket: match a.bucket {
                None => pb::DueBucket::Unspecified,
                Some(DueBucket::DueSoon) => pb::DueBucket::DueSoon,
                Some(DueBucket::Overdue) => pb::DueBucket::Overdue,
                Some(DueBucket::Paused) => pb::DueBucket::Paused,
            } as i32,
            page_size: a.limit,
            page_token: String::new(),
            within: a.within,
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!("{}", output::json(&list, "petition.v1.ListDueResponse"));
        return Ok(());
    }
    let mut t = output::table(&[
        "case number",
        "clock",
        "article",
        "owed by",
        "last day",
        "bucket",
    ]);
    for i in &list.items {
        let c = i.clock.clone().unwrap_or_default();
        t.add_row(vec![
            i.case_number.clone(),
            c.name.clone(),
            c.article.clone(),
            c.organ.clone(),
            if c.provisional {
                format!("{} (provisional)", c.last_day)
            } else {
                c.last_day.clone()
            },
            pb::DueBucket::try_from(i.bucket)
                .map(|b| word(b.as_str_name(), "DUE_BUCKET_"))
                .unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(())
}

pub async fn notices(conn: &Conn, a: &Notices, format: Format) -> Result<(), Failure> {
    let list = conn
        .supervision()
        .list_notices(pb::ListNoticesRequest {
            organ: a.organ.clone(),
            only_unacknowledged: a.unacknowledged,
            page_size: a.limit,
            page_token: String::new(),
            within: a.within,
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!("{}", output::json(&list, "petition.v1.ListNoticesResponse"));
        return Ok(());
    }
    let mut t = output::table(&[
        "issued",
        "case number",
        "kind",
        "to",
        "text",
        "acknowledged",
    ]);
    for n in &list.notices {
        t.add_row(vec![
            when(&n.issued_at),
            n.case_number.clone(),
            pb::NoticeKind::try_from(n.kind)
                .map(|k| word(k.as_str_name(), "NOTICE_KIND_"))
                .unwrap_or_default(),
            n.organ.clone(),
            n.text.clone(),
            when(&n.acknowledged_at),
        ]);
    }
    println!("{t}");
    Ok(())
}

pub async fn backlog(conn: &Conn, a: &Backlog, format: Format) -> Result<(), Failure> {
    let list = conn
        .supervision()
        .list_backlog(pb::ListBacklogRequest {
            page_size: a.limit,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!("{}", output::json(&list, "petition.v1.ListBacklogResponse"));
        return Ok(());
    }
    let mut t = output::table(&[
        "case number",
        "held by",
        "overdue",
        "repeats",
        "flagged",
        "leader",
    ]);
    for i in &list.items {
        t.add_row(vec![
            i.case_number.clone(),
            i.holder.clone(),
            output::mark(i.overdue, "overdue"),
            i.repeats.to_string(),
            output::mark(i.flagged, "by hand"),
            i.leader
                .as_ref()
                .map(|l| l.leader.clone())
                .unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(())
}
