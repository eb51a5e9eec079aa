//! Writes an old system's export for `petition import`: N historical cases, one JSON object
//! per line in the shape of `sample-petitions.jsonl` plus the old `case_number` and final
//! `status` (closed: history), received 2022–2026 by the four bureaus of the sample tree, with a given share of
//! bad rows of several kinds (a wrong ID check digit, an unknown category, no case number,
//! a line that is not JSON) for the rejection report.
//!
//!     cargo run --release -p petition-e2e --bin history-gen -- --rows 1000000 --bad-percent 1 > history.jsonl

use chrono::{Duration, TimeZone};
use clap::Parser;
use petition_e2e::synthetic_resident_id;
use std::io::{BufWriter, Write};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// rows in a hundred that are bad
    #[arg(long, default_value_t = 1.0)]
    bad_percent: f64,
    /// makes the same file again
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// A small, fast, reproducible mix (splitmix64): no crate needed for test data.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    const BUREAUS: [&str; 4] = [
        "pingcheng.bureau",
        "pingcheng.bureau",
        "datong.bureau",
        "yungang.bureau",
    ];
    const CATEGORIES: [&str; 6] = ["01.01", "01.04", "01.05", "02.01", "03.01", "01.01"];
    const CHANNELS: [&str; 4] = ["online", "letter", "phone", "online"];
    let start = chrono::FixedOffset::east_opt(8 * 3600)
        .expect("UTC+8")
        .with_ymd_and_hms(2022, 1, 4, 9, 0, 0)
        .single()
        .expect("a date");
    // up to the end of October 2026, in minutes
    let span_minutes: u64 = 4 * 365 * 24 * 60 + 300 * 24 * 60;
    let bad_every = if a.bad_percent > 0.0 {
        (100.0 / a.bad_percent).round() as u64
    } else {
        u64::MAX
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    for n in 0..a.rows {
        let r = mix(a.seed ^ n);
        let received = start + Duration::minutes((r % span_minutes) as i64);
        let mut row = serde_json::json!({
            "case_number": format!("OLD-{}-{n:08}", received.format("%Y")),
            "status": "closed",
            "channel": CHANNELS[(r >> 8) as usize % CHANNELS.len()],
            "received_by": BUREAUS[(r >> 12) as usize % BUREAUS.len()],
            "received_at": received.to_rfc3339(),
            "petitioners": [{
                "name": "历史信访人",
                "id_type": "resident_id",
                "id_number": synthetic_resident_id(n),
                "phone": format!("139{:08}", n % 100_000_000),
                "address": "大同市平城区某街道某小区",
            }],
            "category": CATEGORIES[(r >> 16) as usize % CATEGORIES.len()],
            "problem_location": format!("14021300{}", 1 + (r >> 24) % 3),
            "title": format!("历史信访事项 {n}"),
            "content": "旧系统导出的历史信访事项，办理完毕后归档。",
            "people_present": 1,
            "people_affected": 1 + (r >> 28) % 4,
        });
        let line = if n % bad_every == bad_every / 2 {
            match (n / bad_every) % 4 {
                0 => {
                    row["petitioners"][0]["id_number"] = "140213198304157570".into();
                    row.to_string()
                }
                1 => {
                    row["category"] = "99.99".into();
                    row.to_string()
                }
                2 => {
                    row["case_number"] = "".into();
                    row.to_string()
                }
                _ => format!("{{\"case_number\": \"OLD-{n}\", \"broken"),
            }
        } else {
            row.to_string()
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}
