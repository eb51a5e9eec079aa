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

Each line is a petition as `petition register --file` reads it, plus the old system's
\"case_number\" (required) and \"status\" (registered, routed, in_handling, answered, closed,
diverted or linked; default closed). Exit code 5 when any row was rejected.")]
pub struct Import {
    /// the export: one JSON object per line
    pub file: PathBuf,
    /// the old system's name: each case keeps its original number under it
    #[arg(long)]
    pub source_system: String,
    /// rows per message (at most 1000)
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// rows per checkpoint
    #[arg(long, default_value_t = 20_000)]
    pub segment: usize,
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

fn status(text: &str) -> Result<i32, String> {
    Ok(match text.trim() {
        "" | "closed" => pb::CaseStatus::Closed,
        "registered" => pb::CaseStatus::Registered,
        "routed" => pb::CaseStatus::Routed,
        "in_handling" => pb::CaseStatus::InHandling,
        "answered" => pb::CaseStatus::Answered,
        "diverted" => pb::CaseStatus::Diverted,
        "linked" => pb::CaseStatus::Linked,
        other => {
            return Err(format!(
                "status: {other:?} is not one of registered, routed, in_handling, answered, closed, diverted, linked"
            ));
        }
    } as i32)
}

/// A line of the file as a historical petition, or why it cannot be one.
fn row(number: u64, line: &str) -> Result<pb::HistoricalPetition, String> {
    let record: Record = serde_json::from_str(line).map_err(|e| format!("not a petition: {e}"))?;
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

pub async fn run(conn: &Conn, a: &Import) -> Result<(), Failure> {
    if a.batch == 0 || a.batch > 1000 {
        return Err(Failure::usage("--batch: 1 to 1000 rows a message"));
    }
    let file_len = std::fs::metadata(&a.file)
        .map_err(|e| io(&a.file, e))?
        .len();
    let (checkpoint_path, rejected_path) = (
        beside(&a.file, ".checkpoint"),
        beside(&a.file, ".rejected.jsonl"),
    );
    let mut cp = match std::fs::read_to_string(&checkpoint_path) {
        Ok(text) if !a.restart => serde_json::from_str::<Checkpoint>(&text)
            .ok()
            .filter(|c| c.file_len == file_len && c.source_system == a.source_system)
            .unwrap_or_default(),
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
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  ETA {eta}  {msg}")
            .map_err(|e| Failure::usage(e.to_string()))?,
    );
    bar.set_position(cp.next_row - 1);
    if resuming {
        bar.println(format!(
            "resuming at row {} ({} imported so far)",
            cp.next_row, cp.imported
        ));
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
        // One segment: read, send as one stream of messages, settle.
        let mut texts: std::collections::HashMap<u64, String> = Default::default();
        let mut messages = Vec::new();
        let mut batch = Vec::new();
        let mut last = cp.next_row - 1;
        for (number, line) in lines.by_ref().take(a.segment) {
            let line = line.map_err(|e| io(&a.file, e))?;
            last = number;
            if line.trim().is_empty() {
                continue;
            }
            match row(number, &line) {
                Ok(h) => batch.push(h),
                Err(reason) => {
                    writeln!(rejected_out, "{}", rejected_line(&line, number, &reason))
                        .map_err(|e| io(&rejected_path, e))?;
                    cp.rejected += 1;
                }
            }
            texts.insert(number, line);
            if batch.len() == a.batch {
                messages.push(std::mem::take(&mut batch));
            }
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
        let answer = intake.import_petitions(stream).await?.into_inner();
        for r in &answer.rejected {
            let line = texts.get(&r.row).map(String::as_str).unwrap_or_default();
            writeln!(rejected_out, "{}", rejected_line(line, r.row, &r.reason))
                .map_err(|e| io(&rejected_path, e))?;
        }
        rejected_out.flush().map_err(|e| io(&rejected_path, e))?;
        cp.imported += answer.imported;
        cp.already_imported += answer.already_imported;
        cp.rejected += answer.rejected.len() as u64;
        cp.next_row = last + 1;
        std::fs::write(
            &checkpoint_path,
            serde_json::to_string_pretty(&cp).unwrap_or_default(),
        )
        .map_err(|e| io(&checkpoint_path, e))?;
        bar.set_position(last);
        bar.set_message(format!(
            "{} imported, {} there already, {} rejected",
            cp.imported, cp.already_imported, cp.rejected
        ));
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let done = cp.next_row.saturating_sub(first_row);
    println!(
        "{} rows in {:.1} s ({:.0} rows/s): {} imported, {} there already, {} rejected{}",
        done,
        secs,
        done as f64 / secs.max(0.001),
        cp.imported,
        cp.already_imported,
        cp.rejected,
        if cp.rejected > 0 {
            format!(" (each with its reason in {})", rejected_path.display())
        } else {
            String::new()
        }
    );
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
