//! What analytics shows a bureau: the situation of a period (形势分析), the scorecards, and the
//! rendered report.

use crate::client::{Conn, Failure};
use crate::output::{self, Format};
use petition_charts::{change, pct, rate};
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
            basis: basis_to_pb(a.basis) as i32,
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

#[derive(clap::Args, Debug)]
#[command(after_help = "\
A cell is hot when its cases in the month are at least 5 and at least 3 standard deviations
above the mean of its 12 months before.

Examples:
  petition hotspots
  petition hotspots --month 2026-10")]
pub struct Hotspots {
    /// YYYY-MM; default: the last whole month
    #[arg(long, default_value = "")]
    pub month: String,
    #[arg(long, default_value = "")]
    pub organ: String,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  petition export 2026-Q3 --out cases-2026-q3.csv
  petition export 2026 --basis registration > cases-2026.csv")]
pub struct Export {
    pub period: String,
    #[arg(long, default_value = "")]
    pub organ: String,
    #[arg(long, value_enum, default_value_t = Basis::Petition)]
    pub basis: Basis,
    /// where to write the CSV; default: standard output
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum SuggestionCommand {
    /// Record a suggestion made to the Party committee and government (Art. 41).
    #[command(
        after_help = "Example:\n  petition suggestion add --addressee 区委、区政府 --title 建立征收补偿协商机制 --text '…'"
    )]
    Add {
        #[arg(long)]
        addressee: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        text: String,
        /// YYYY-MM-DD; default: today
        #[arg(long, default_value = "")]
        made_on: String,
    },
    /// Record whether a suggestion was adopted, and what was done.
    #[command(
        after_help = "Example:\n  petition suggestion answer 0193… --adoption adopted --outcome 区政府已设立协商平台"
    )]
    Answer {
        id: String,
        #[arg(long, value_enum)]
        adoption: Adoption,
        #[arg(long, default_value = "")]
        outcome: String,
    },
    /// The suggestions of a period.
    #[command(after_help = "Example:\n  petition suggestion list 2026")]
    List {
        period: String,
        #[arg(long, default_value = "")]
        organ: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Adoption {
    Pending,
    /// 采纳
    Adopted,
    /// 部分采纳
    Partly,
    /// 未采纳
    Declined,
}

fn basis_to_pb(b: Basis) -> pb::DateBasis {
    match b {
        Basis::Petition => pb::DateBasis::Petition,
        Basis::Registration => pb::DateBasis::Registration,
        Basis::Exchange => pb::DateBasis::Exchange,
    }
}

pub async fn hotspots(conn: &Conn, a: &Hotspots, format: Format) -> Result<(), Failure> {
    let h = conn
        .analytics()
        .detect_hotspots(pb::HotspotsRequest {
            month: a.month.clone(),
            organ: a.organ.clone(),
        })
        .await?
        .into_inner();
    if format == Format::Json {
        println!("{}", output::json(&h, "petition.v1.Hotspots"));
        return Ok(());
    }
    let mut t = output::table(&["category", "place", "cases", "mean of 12 months", "z"]);
    for x in &h.hotspots {
        t.add_row(vec![
            format!("{} {}", x.category, x.category_label),
            format!("{} {}", x.location, x.location_label),
            x.cases.to_string(),
            format!("{:.1}", x.mean),
            format!("{:.1}", x.z),
        ]);
    }
    println!("hot spots of {}: {}\n{t}", h.month, h.hotspots.len());
    Ok(())
}

pub async fn export(conn: &Conn, a: &Export) -> Result<(), Failure> {
    use std::io::Write;
    let mut stream = conn
        .analytics()
        .export_cases(pb::ExportCasesRequest {
            period: a.period.clone(),
            organ: a.organ.clone(),
            basis: basis_to_pb(a.basis) as i32,
        })
        .await?
        .into_inner();
    let io = |e: std::io::Error| Failure::usage(format!("--out: cannot write: {e}"));
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(io)?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut rows = 0usize;
    while let Some(chunk) = stream.message().await? {
        rows += chunk.data.iter().filter(|b| **b == b'\n').count();
        out.write_all(&chunk.data).map_err(io)?;
    }
    out.flush().map_err(io)?;
    if let Some(p) = &a.out {
        eprintln!("wrote {} cases to {}", rows.saturating_sub(1), p.display());
    }
    Ok(())
}

pub async fn suggestion(conn: &Conn, c: &SuggestionCommand, format: Format) -> Result<(), Failure> {
    let mut client = conn.analytics();
    let shown = match c {
        SuggestionCommand::Add {
            addressee,
            title,
            text,
            made_on,
        } => vec![
            client
                .record_suggestion(pb::RecordSuggestionRequest {
                    made_on: made_on.clone(),
                    addressee: addressee.clone(),
                    title: title.clone(),
                    text: text.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner(),
        ],
        SuggestionCommand::Answer {
            id,
            adoption,
            outcome,
        } => vec![
            client
                .record_suggestion(pb::RecordSuggestionRequest {
                    id: id.clone(),
                    adoption: match adoption {
                        Adoption::Pending => pb::Adoption::Pending,
                        Adoption::Adopted => pb::Adoption::Adopted,
                        Adoption::Partly => pb::Adoption::Partly,
                        Adoption::Declined => pb::Adoption::Declined,
                    } as i32,
                    outcome: outcome.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner(),
        ],
        SuggestionCommand::List { period, organ } => {
            client
                .list_suggestions(pb::ListSuggestionsRequest {
                    period: period.clone(),
                    organ: organ.clone(),
                })
                .await?
                .into_inner()
                .suggestions
        }
    };
    if format == Format::Json {
        let all = pb::ListSuggestionsResponse { suggestions: shown };
        println!(
            "{}",
            output::json(&all, "petition.v1.ListSuggestionsResponse")
        );
        return Ok(());
    }
    let mut t = output::table(&["id", "made on", "to", "title", "adoption", "outcome"]);
    for s in &shown {
        t.add_row(vec![
            s.id.clone(),
            s.made_on.clone(),
            s.addressee.clone(),
            s.title.clone(),
            pb::Adoption::try_from(s.adoption)
                .map(|a| output::word(a.as_str_name(), "ADOPTION_"))
                .unwrap_or_default(),
            s.outcome.clone(),
        ]);
    }
    println!("{t}");
    Ok(())
}
