//! `petition import FILE`: the old system's export (one JSON object per line, the shape of
//! `tests/e2e/sample-petitions.jsonl` plus `case_number` and `status`) through ImportPetitions,
//! in segments. After each segment the rows it settled are recorded in a checkpoint beside the
//! file, so an interrupted import resumes where it stopped; a row refused by the service or
//! unreadable here is written, as it was with the reason added, to a file of rejected rows that
//! can be fixed and imported again. The service keys each case by the source system and its
//! original number, so running the same file twice imports nothing twice.

use crate::client::{Conn, EXIT_REFUSED, Failure};
use crate::register::Record;
use indicatif::{ProgressBar, ProgressStyle};
use petition_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example:
  export PETITION_TOKEN=$(petition token issue --dev --org datong.bureau --role admin)
  petition import history.jsonl --source-system old-xf
  # interrupted? run it again: it resumes from history.jsonl.checkpoint; rows the service
  # refused are in history.jsonl.rejected.jsonl, each with its reason, ready to fix and import

Each line is a petition as `petition register --file` reads it, with its \"received_at\"
(required), plus the old system's \"case_number\" (required) and \"status\" (closed, the
default: a case still open there is registered with `petition register` instead). Exit code 5
when any row was rejected.")]
pub struct Import {
    /// the export: one JSON object per line
    pub file: PathBuf,
    /// the old system's name: each case keeps its original number under it
    #[arg(long)]
    pub source_system: String,
    /// rows per message, 1 to 1000 (a message is also cut at 3 MB)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch: u16,
    /// rows per checkpoint
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub segment: u32,
    /// start from the first row, ignoring a checkpoint
    #[arg(long)]
    pub restart: bool,
    /// no progress bar (it is drawn only on a terminal anyway)
    #[arg(long, short)]
    pub quiet: bool,
}

/// Where an import of a file stands: written after every segment.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Checkpoint {
    source_system: String,
    /// the file's length when the import began: a different file is not resumed
    file_len: u64,
    /// the first line (1-based) not yet settled
    next_row: u64,
    imported: u64,
    already_imported: u64,
    rejected: u64,
}

fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io(path: &Path, e: std::io::Error) -> Failure {
    Failure::usage(format!("{}: {e}", path.display()))
}

/// The status as the service names it; what it accepts is the service's to say.
fn status(text: &str) -> Result<i32, String> {
    let s = match text.trim() {
        "" | "closed" => pb::CaseStatus::Closed,
        "registered" => pb::CaseStatus::Registered,
        "routed" => pb::CaseStatus::Routed,
        "in_handling" => pb::CaseStatus::InHandling,
        "answered" => pb::CaseStatus::Answered,
        "diverted" => pb::CaseStatus::Diverted,
        "linked" => pb::CaseStatus::Linked,
        other => {
            return Err(format!(
                "status: {other:?} is not a case status; history is closed"
            ));
        }
    };
    Ok(s as i32)
}

/// A line of the file as a historical petition, or why it cannot be one.
fn row(number: u64, line: &str) -> Result<pb::HistoricalPetition, String> {
    let record: Record = serde_json::from_str(line).map_err(|e| format!("not a petition: {e}"))?;
    // A registration without a date was received now; history was not.
    if record.received_at.is_none() {
        return Err("received_at: required for history: when the old system received it".into());
    }
    Ok(pb::HistoricalPetition {
        row: number,
        status: status(&record.status)?,
        original_case_number: record.case_number.clone(),
        petition: Some(record.request()),
    })
}

/// A rejected line, as it was, with the reason: fix the line, delete the reason, import again.
fn rejected_line(line: &str, number: u64, reason: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(mut o)) => {
            o.insert("import_row".into(), number.into());
            o.insert("import_error".into(), reason.into());
            serde_json::Value::Object(o).to_string()
        }
        _ => serde_json::json!({"import_row": number, "import_error": reason, "line": line})
            .to_string(),
    }
}

/// The largest message sent: under the service's 4 MB limit, whatever the rows hold.
const MAX_MESSAGE_BYTES: usize = 3 << 20;

/// Writes the checkpoint whole or not at all: a crash mid-write must not leave half a file.
fn save(path: &Path, cp: &Checkpoint) -> Result<(), Failure> {
    let tmp = beside(path, ".tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(cp).unwrap_or_default())
        .map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

pub async fn run(conn: &Conn, a: &Import, format: crate::output::Format) -> Result<(), Failure> {
    let file_len = std::fs::metadata(&a.file)
        .map_err(|e| io(&a.file, e))?
        .len();
    let (checkpoint_path, rejected_path) = (
        beside(&a.file, ".checkpoint"),
        beside(&a.file, ".rejected.jsonl"),
    );
    let mut cp = match std::fs::read_to_string(&checkpoint_path) {
        Ok(text) if !a.restart => match serde_json::from_str::<Checkpoint>(&text) {
            Ok(c) if c.file_len == file_len && c.source_system == a.source_system => c,
            _ => {
                eprintln!(
                    "petition: {} belongs to another file or source system: starting from the first row",
                    checkpoint_path.display()
                );
                Checkpoint::default()
            }
        },
        _ => Checkpoint::default(),
    };
    let resuming = cp.next_row > 1;
    if !resuming {
        cp = Checkpoint {
            source_system: a.source_system.clone(),
            file_len,
            next_row: 1,
            ..Checkpoint::default()
        };
    }
    let total = BufReader::new(std::fs::File::open(&a.file).map_err(|e| io(&a.file, e))?)
        .lines()
        .count() as u64;
    let mut rejected_out = std::fs::OpenOptions::new()
        .create(true)
        .append(resuming)
        .write(true)
        .truncate(!resuming)
        .open(&rejected_path)
        .map_err(|e| io(&rejected_path, e))?;
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        // rate and ETA count from here, not from the rows settled by an earlier run
        ProgressBar::new(total).with_position(cp.next_row - 1)
    };
    bar.reset_eta();
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  ETA {eta}  {msg}")
            .map_err(|e| Failure::usage(e.to_string()))?,
    );
    if resuming {
        eprintln!(
            "petition: resuming at row {} of {} ({} imported before)",
            cp.next_row,
            checkpoint_path.display(),
            cp.imported
        );
    }
    let started = Instant::now();
    let first_row = cp.next_row;
    let mut lines = BufReader::new(std::fs::File::open(&a.file).map_err(|e| io(&a.file, e))?)
        .lines()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l))
        .skip((cp.next_row - 1) as usize)
        .peekable();
    let mut intake = conn.intake();
    while lines.peek().is_some() {
        // One segment: read, send as one stream of messages, settle. What this side refuses
        // is written with what the service refuses, after the service answered, so that a
        // segment cut short and run again does not report a row twice.
        let mut texts: std::collections::HashMap<u64, String> = Default::default();
        let mut refused_here: Vec<(u64, String)> = Vec::new();
        let mut messages = Vec::new();
        let (mut batch, mut bytes) = (Vec::new(), 0usize);
        let mut last = cp.next_row - 1;
        for (number, line) in lines.by_ref().take(a.segment as usize) {
            let line = line.map_err(|e| io(&a.file, e))?;
            last = number;
            if line.trim().is_empty() {
                continue;
            }
            match row(number, &line) {
                Ok(h) => {
                    let size = prost::Message::encoded_len(&h);
                    if !batch.is_empty()
                        && (batch.len() == a.batch as usize || bytes + size > MAX_MESSAGE_BYTES)
                    {
                        messages.push(std::mem::take(&mut batch));
                        bytes = 0;
                    }
                    bytes += size;
                    batch.push(h);
                }
                Err(reason) => refused_here.push((number, reason)),
            }
            texts.insert(number, line);
        }
        if !batch.is_empty() {
            messages.push(batch);
        }
        let source = a.source_system.clone();
        let stream = tokio_stream::iter(messages.into_iter().map(move |petitions| {
            pb::ImportPetitionsRequest {
                source_system: source.clone(),
                petitions,
            }
        }));
        let settled_from = cp.next_row;
        let answer = intake
            .import_petitions(stream)
            .await
            .map_err(|s| {
                let mut f = Failure::from(s);
                f.message.push_str(&format!(
                    "\n  rows from {settled_from} on are not settled; run the command again: it resumes there"
                ));
                f
            })?
            .into_inner();
        let mut refused: Vec<(u64, &str)> = refused_here
            .iter()
            .map(|(n, r)| (*n, r.as_str()))
            .chain(answer.rejected.iter().map(|r| (r.row, r.reason.as_str())))
            .collect();
        refused.sort_by_key(|(n, _)| *n);
        for (number, reason) in &refused {
            let line = texts.get(number).map(String::as_str).unwrap_or_default();
            writeln!(rejected_out, "{}", rejected_line(line, *number, reason))
                .map_err(|e| io(&rejected_path, e))?;
        }
        rejected_out.flush().map_err(|e| io(&rejected_path, e))?;
        cp.imported += answer.imported;
        cp.already_imported += answer.already_imported;
        cp.rejected += refused.len() as u64;
        cp.next_row = last + 1;
        save(&checkpoint_path, &cp)?;
        bar.set_position(last);
        bar.set_message(format!(
            "{} imported, {} there already, {} rejected",
            cp.imported, cp.already_imported, cp.rejected
        ));
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let done = cp.next_row.saturating_sub(first_row);
    if format == crate::output::Format::Json {
        println!(
            "{}",
            serde_json::json!({
                "rows_this_run": done,
                "seconds": secs,
                "imported": cp.imported,
                "already_imported": cp.already_imported,
                "rejected": cp.rejected,
                "rejected_file": rejected_path.display().to_string(),
            })
        );
    } else {
        println!(
            "{} rows in {:.1} s ({:.0} rows/s){}: {} imported, {} there already, {} rejected{}",
            done,
            secs,
            done as f64 / secs.max(0.001),
            if first_row > 1 {
                "; with the earlier run"
            } else {
                ""
            },
            cp.imported,
            cp.already_imported,
            cp.rejected,
            if cp.rejected > 0 {
                format!(" (each with its reason in {})", rejected_path.display())
            } else {
                String::new()
            }
        );
    }
    if cp.rejected > 0 {
        return Err(Failure::new(
            EXIT_REFUSED,
            format!(
                "{} rows were rejected; fix them in {} and import that file again",
                cp.rejected,
                rejected_path.display()
            ),
        ));
    }
    Ok(())
}
