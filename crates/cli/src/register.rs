//! `petition register`: one petition from flags, or many from a JSON or JSONL file in the
//! shape of the old system's export (`tests/e2e/sample-petitions.jsonl`).

use crate::client::{Conn, Failure};
use crate::output::{self, Format};
use chrono::{DateTime, FixedOffset};
pub use petition_cli::record::{Record, RecordAccused, RecordPetitioner};
use petition_proto::v1 as pb;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  petition register --channel visit --name 王建国 --id-number 140213196503121017 \\
      --phone 13903521234 --category 01.01 --location 140213001 \\
      --title '逾期未办理不动产权证' --content '开发商承诺2021年底前办理，至今未办'
  # many at once, one JSON object per line; -q prints the case number and query code of each
  petition register --file petitions.jsonl -q")]
pub struct Register {
    /// a JSON object, a JSON array, or one object per line (JSONL), in the export's shape
    #[arg(long, conflicts_with_all = ["name", "title", "content"])]
    pub file: Option<PathBuf>,
    /// visit, letter, online, phone, fax or upstream
    #[arg(long, default_value = "visit")]
    pub channel: String,
    /// the registering organ; default: the organ of your token
    #[arg(long)]
    pub received_by: Option<String>,
    /// when it was received (RFC 3339); default now, as a window registers on receipt
    #[arg(long, value_parser = parse_instant)]
    pub received_at: Option<DateTime<FixedOffset>>,
    /// the petitioner's name (主访人)
    #[arg(long, required_unless_present = "file")]
    pub name: Option<String>,
    /// resident ID number (居民身份证号码)
    #[arg(long, default_value = "")]
    pub id_number: String,
    #[arg(long, default_value = "")]
    pub phone: String,
    #[arg(long, default_value = "")]
    pub address: String,
    /// content category code from categories.toml, e.g. 01.01
    #[arg(long, required_unless_present = "file")]
    pub category: Option<String>,
    /// region code of the problem's place, 6 or 9 digits, e.g. 140213001
    #[arg(long, required_unless_present = "file")]
    pub location: Option<String>,
    #[arg(long, required_unless_present = "file")]
    pub title: Option<String>,
    #[arg(long, required_unless_present = "file")]
    pub content: Option<String>,
    /// people who came (信访人数)
    #[arg(long, default_value_t = 1)]
    pub people_present: u32,
    /// people the matter concerns (涉及人数)
    #[arg(long, default_value_t = 1)]
    pub people_affected: u32,
    /// the person or unit accused, for an accusation (检举控告)
    #[arg(long)]
    pub accused_name: Option<String>,
    /// the accused's own organ, if known (Art. 30 ¶3: it never learns of the accusation)
    #[arg(long)]
    pub accused_organ: Option<String>,
    /// print only "<case number> <query code>", one line per petition
    #[arg(long, short)]
    pub quiet: bool,
}

pub(crate) fn parse_instant(s: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{e}: an instant with its offset, e.g. 2026-11-27T09:00:00+08:00"))
}

/// The records of a file: a JSON object, an array of them, or one per line.
pub fn read_records(path: &std::path::Path) -> Result<Vec<Record>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("--file {}: {e}", path.display())))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed)
            .map_err(|e| Failure::usage(format!("--file {}: {e}", path.display())));
    }
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    if lines.len() > 1 || serde_json::from_str::<Record>(trimmed).is_err() {
        return lines
            .into_iter()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| {
                    Failure::usage(format!("--file {} line {}: {e}", path.display(), i + 1))
                })
            })
            .collect();
    }
    serde_json::from_str(trimmed)
        .map(|r| vec![r])
        .map_err(|e| Failure::usage(format!("--file {}: {e}", path.display())))
}

pub async fn run(
    conn: &Conn,
    a: &Register,
    my_org: Option<String>,
    format: Format,
) -> Result<(), Failure> {
    let records = match &a.file {
        Some(path) => read_records(path)?,
        None => vec![Record {
            channel: a.channel.clone(),
            received_by: a.received_by.clone().or(my_org).unwrap_or_default(),
            received_at: a.received_at,
            petitioners: vec![RecordPetitioner {
                name: a.name.clone().unwrap_or_default(),
                id_type: String::new(),
                id_number: a.id_number.clone(),
                phone: a.phone.clone(),
                address: a.address.clone(),
            }],
            category: a.category.clone().unwrap_or_default(),
            problem_location: a.location.clone().unwrap_or_default(),
            title: a.title.clone().unwrap_or_default(),
            content: a.content.clone().unwrap_or_default(),
            people_present: a.people_present,
            people_affected: a.people_affected,
            representatives: 0,
            accused: (a.accused_name.is_some() || a.accused_organ.is_some()).then(|| {
                RecordAccused {
                    name: a.accused_name.clone().unwrap_or_default(),
                    organ_id: a.accused_organ.clone().unwrap_or_default(),
                }
            }),
            source_system: String::new(),
            external_ref: String::new(),
            case_number: String::new(),
            status: String::new(),
        }],
    };
    let mut intake = conn.intake();
    let many = records.len() > 1;
    let mut table = output::table(&["case number", "query code", "flags", "title"]);
    for r in &records {
        let reg = intake.register_petition(r.request()).await?.into_inner();
        if a.quiet {
            println!("{} {}", reg.case_number, reg.query_code);
            continue;
        }
        match format {
            Format::Json => println!(
                "{}",
                output::json(&reg, "petition.v1.RegisterPetitionResponse")
            ),
            Format::Table if many => {
                table.add_row(vec![
                    reg.case_number.clone(),
                    reg.query_code.clone(),
                    flags(reg.flags.as_ref()),
                    r.title.clone(),
                ]);
            }
            Format::Table => print!(
                "{}",
                output::fields(&[
                    ("case number", reg.case_number.clone()),
                    (
                        "query code",
                        format!(
                            "{} (give it to the petitioner: it opens their view of the case)",
                            reg.query_code
                        )
                    ),
                    ("case id", reg.case_id.clone()),
                    ("flags", flags(reg.flags.as_ref())),
                    (
                        "replayed",
                        output::mark(
                            reg.replayed,
                            "yes: registered before with this source and reference"
                        ),
                    ),
                ])
            ),
        }
    }
    if many && !a.quiet && format == Format::Table {
        println!("{table}");
    }
    Ok(())
}

/// The intake flags in words.
pub fn flags(f: Option<&pb::CaseFlags>) -> String {
    let Some(f) = f else { return String::new() };
    let mut out = Vec::new();
    if f.group {
        out.push("group (集体访)".to_owned());
    }
    if f.leapfrog {
        out.push("leapfrog (越级访)".to_owned());
    }
    if f.repeat {
        out.push(format!("repeat of {} (重复信访)", f.repeat_of_case_number));
    }
    if f.open_below {
        out.push(format!("open below as {}", f.open_below_case_number));
    }
    out.join(", ")
}
