//! What analytics shows a bureau: the situation of a period (形势分析), the scorecards, and the
//! rendered report.

use crate::client::{Conn, Failure};
use crate::output::{self, Format};
use petition_proto::v1 as pb;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Periods: 2026 (a year), 2026-Q3 (a quarter), 2026-05 (a month), 2026-03..2026-08 (months).

Examples:
  petition situation 2026
  petition situation 2026-Q3 --organ pingcheng.bureau --output json")]
pub struct Situation {
    /// the period: a year, a quarter, a month or a range of months
    pub period: String,
    /// default: your organ; any organ within your reach
    #[arg(long, default_value = "")]
    pub organ: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Basis {
    /// 信访日期: when the petition was received
    Petition,
    /// 登记日期: when it was registered
    Registration,
    /// 交换日期: when it was first routed to an organ
    Exchange,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  petition scorecards 2026
  petition scorecards 2026-Q3 --basis exchange")]
pub struct Scorecards {
    pub period: String,
    #[arg(long, default_value = "")]
    pub organ: String,
    /// which date of a case puts it into the period
    #[arg(long, value_enum, default_value_t = Basis::Petition)]
    pub basis: Basis,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  petition report 2026 --out report-2026.html
  petition report 2026-Q3 --organ pingcheng.bureau")]
pub struct Report {
    pub period: String,
    #[arg(long, default_value = "")]
    pub organ: String,
    /// where to write the page; default: the file name the service gives, here
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn change(now: u64, base: u64) -> String {
    if base == 0 {
        "—".into()
    } else {
        format!("{:+.1}%", (now as f64 - base as f64) / base as f64 * 100.0)
    }
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn rate(r: &Option<pb::Rate>) -> String {
    match r {
        Some(pb::Rate {
            numerator,
            denominator,
            value: Some(v),
        }) => format!("{} ({numerator}/{denominator})", pct(*v)),
        _ => "—".into(),
    }
}

fn shares(title: &str, rows: &[pb::Share]) -> String {
    let mut t = output::table(&[title, "件次", "人次", "share"]);
    for s in rows {
        t.add_row(vec![
            format!("{} {}", s.key, s.label),
            s.cases.to_string(),
            s.persons.to_string(),
            pct(s.share),
        ]);
    }
    t.to_string()
}

pub async fn situation(conn: &Conn, a: &Situation, format: Format) -> Result<(), Failure> {
    let s = conn
        .analytics()
        .get_situation(pb::SituationRequest {
            period: a.period.clone(),
            organ: a.organ.clone(),
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!("{}", output::json(&s, "petition.v1.Situation"));
        return Ok(());
    }
    let mut t = output::table(&[
        "",
        "count",
        "环比 (period on period)",
        "同比 (year on year)",
    ]);
    for (name, f) in [
        ("件次 cases", s.cases),
        ("人次 persons", s.persons),
        ("网上信访 online", s.online),
        ("越级访 leapfrog", s.leapfrog),
        ("集体访 group", s.group),
        ("重复信访 repeat", s.repeat),
    ] {
        let f = f.unwrap_or_default();
        t.add_row(vec![
            name.to_owned(),
            f.count.to_string(),
            change(f.count, f.previous),
            change(f.count, f.year_ago),
        ]);
    }
    println!(
        "{} ({} to {}), {}: 网信占比 (online share) {}\n{t}",
        s.period,
        s.from_month,
        s.to_month,
        if s.organ.is_empty() {
            "everywhere"
        } else {
            &s.organ
        },
        pct(s.online_share)
    );
    println!("{}", shares("channel", &s.by_channel));
    println!("{}", shares("category", &s.by_category_l1));
    println!("{}", shares("hot issue", &s.hot_issues));
    println!("{}", shares("most complained", &s.most_complained));
    println!(
        "forwarded {}, assigned {}, diverted {}, linked {}; supervised (督办) {}, urged {}",
        s.forwarded, s.assigned, s.diverted, s.linked, s.supervised, s.urged
    );
    Ok(())
}

pub async fn scorecards(conn: &Conn, a: &Scorecards, format: Format) -> Result<(), Failure> {
    let s = conn
        .analytics()
        .get_scorecards(pb::ScorecardsRequest {
            period: a.period.clone(),
            organ: a.organ.clone(),
            basis: match a.basis {
                Basis::Petition => pb::DateBasis::Petition,
                Basis::Registration => pb::DateBasis::Registration,
                Basis::Exchange => pb::DateBasis::Exchange,
            } as i32,
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!("{}", output::json(&s, "petition.v1.Scorecards"));
        return Ok(());
    }
    let mut t = output::table(&[
        "organ",
        "cases",
        "及时受理率",
        "按期办结率",
        "参评率",
        "满意率",
        "重复信访率",
        "包案化解率",
    ]);
    for c in s.bureaux.iter().chain(&s.organs) {
        t.add_row(vec![
            format!("{}{}", c.organ, if c.bureau { " (bureau)" } else { "" }),
            c.cases.to_string(),
            rate(&c.timely_acceptance),
            rate(&c.on_time_completion),
            rate(&c.rated),
            rate(&c.satisfied),
            rate(&c.repeat),
            rate(&c.leader_resolution),
        ]);
    }
    println!("{t}");
    Ok(())
}

pub async fn report(conn: &Conn, a: &Report, format: Format) -> Result<(), Failure> {
    let r = conn
        .analytics()
        .render_report(pb::RenderReportRequest {
            period: a.period.clone(),
            organ: a.organ.clone(),
        })
        .await?
        .into_inner();
    let path = a.out.clone().unwrap_or_else(|| PathBuf::from(&r.file_name));
    std::fs::write(&path, &r.content)
        .map_err(|e| Failure::usage(format!("--out: cannot write {}: {e}", path.display())))?;
    if format == Format::Json {
        println!(
            "{}",
            serde_json::json!({"file": path.display().to_string(), "bytes": r.content.len()})
        );
    } else {
        println!(
            "wrote {} ({} bytes); open it in a browser",
            path.display(),
            r.content.len()
        );
    }
    Ok(())
}
