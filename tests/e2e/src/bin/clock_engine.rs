//! The supervision clock engine at scale, on PostgreSQL: a million open clocks, of which a
//! thousand are due; what one due scan costs (time, and rows read as PostgreSQL counts them),
//! what firing those thousand costs, how fast a burst of clocks due in the same minute fires,
//! and the process's resident memory.
//!
//!   createdb clocks && cargo run --release -p petition-e2e --bin clock-engine -- \
//!     --database-url postgres://postgres@127.0.0.1:5432/clocks --open 1000000 --due 1000 \
//!     --burst 100000
//!
//! The database should be fresh: the run fills schema `supervision` and leaves it for a look.

use anyhow::Context;
use clap::Parser;
use petition_domain::clocks::ClockRules;
use petition_domain::{Clock, SystemClock};
use petition_storage::{Db, micros};
use petition_supervision::engine::Engine;
use petition_supervision::store::SupervisionStore;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    /// open clocks in all
    #[arg(long, default_value_t = 1_000_000)]
    open: u64,
    /// of which due now
    #[arg(long, default_value_t = 1_000)]
    due: u64,
    /// then this many made due in the same minute, fired at once
    #[arg(long, default_value_t = 100_000)]
    burst: u64,
}

const DUE_SCAN: &str = "SELECT case_id, next_fire_at FROM clocks WHERE next_fire_at IS NOT NULL \
     AND next_fire_at <= $1 ORDER BY next_fire_at LIMIT $2";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let db = Db::connect(&a.database_url, "supervision", 8).await?;
    petition_events::outbox::migrate_service(&db, &petition_supervision::store::MIGRATOR).await?;
    let pool = db.pool().clone();
    let now = SystemClock.now();
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clocks")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        existing == 0,
        "use a fresh database: clocks already holds {existing} rows"
    );

    // Fill: `open` cases, each with a running 15-day notice clock owed by the housing bureau.
    // The first `due` started 20 days ago and are due now; the rest started today.
    let t = Instant::now();
    let day = 86_400_000_000i64;
    sqlx::query(
        "INSERT INTO cases (case_id, case_number, received_by, bureau, holder, stage, \
         backlog_flag, petitioner_confirmed, version) \
         SELECT 'bench-' || i, '140213-2026-' || lpad(i::text, 7, '0'), 'pingcheng.bureau', \
         'pingcheng.bureau', 'pingcheng.housing', 'routed', 0, 0, 1 \
         FROM generate_series(1, $1) AS i",
    )
    .bind(a.open as i64)
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO clocks (case_id, kind, organ, started_at, period_days, working_days, \
         until_day, extension_days, paused_days, paused_since, state, stage, ended_at, last_day, \
         due_at, next_fire_at) \
         SELECT 'bench-' || i, 'notice', 'pingcheng.housing', \
           CASE WHEN i <= $2 THEN $3 - 20 * $4 ELSE $3 END, 15, 0, NULL, 0, 0, NULL, 'running', \
           'quiet', NULL, '2026-12-12', \
           CASE WHEN i <= $2 THEN $3 - 5 * $4 ELSE $3 + 15 * $4 END, \
           CASE WHEN i <= $2 THEN $3 - 60000000 ELSE $3 + 12 * $4 + (i % 86400) * 1000000 END \
         FROM generate_series(1, $1) AS i",
    )
    .bind(a.open as i64)
    .bind(a.due as i64)
    .bind(micros(now))
    .bind(day)
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE clocks").execute(&pool).await?;
    sqlx::query("ANALYZE cases").execute(&pool).await?;
    println!(
        "filled {} open clocks, {} due, in {:.1} s",
        a.open,
        a.due,
        t.elapsed().as_secs_f64()
    );

    let calendar = petition_grpc::reference::Reference::builtin().calendar;
    let store = SupervisionStore::new(db.clone(), calendar.clone(), ClockRules::default());

    // One due scan, as the engine runs it: the median of 21.
    let mut times = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let ids = store.due_cases(now, a.due as u32).await?;
        times.push(t.elapsed());
        anyhow::ensure!(
            ids.len() as u64 == a.due,
            "scan found {} of {}",
            ids.len(),
            a.due
        );
    }
    times.sort();
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS) {}",
        DUE_SCAN
            .replace("$1", &micros(now).to_string())
            .replace("$2", &a.due.to_string())
    )))
    .fetch_all(&pool)
    .await
    .context("EXPLAIN of the due scan")?;
    let (node, rows) = scanned(&plan);
    println!(
        "due scan of {} open clocks with {} due: median {:.2} ms (min {:.2}, max {:.2}); {node} read {rows} rows",
        a.open,
        a.due,
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );

    let engine = Engine {
        store: store.clone(),
        settled: petition_supervision::settled::Settled::new(calendar.current()),
        calendar,
        rules: ClockRules::default(),
        clock: Arc::new(SystemClock),
        relay_wake: petition_events::RelayWake::new(),
        wake: Arc::new(Notify::new()),
        batch: 500,
        max_sleep: Duration::from_secs(1),
        gauge_every: Duration::from_secs(30),
    };
    let t = Instant::now();
    let tick = engine.tick().await?;
    println!(
        "one tick fired {} of {} due cases in {:.1} ms (reminder and 催办 each: a notice, a timeline entry, an event)",
        tick.fired,
        tick.due,
        ms(t.elapsed())
    );

    // A burst: `burst` clocks come due in the same minute.
    sqlx::query(
        "UPDATE clocks SET started_at = $1 - 20 * $2, next_fire_at = $1 - 30000000 \
         WHERE case_id IN (SELECT 'bench-' || i FROM generate_series($3, $4) AS i)",
    )
    .bind(micros(now))
    .bind(day)
    .bind(a.due as i64 + 1)
    .bind((a.due + a.burst) as i64)
    .execute(&pool)
    .await?;
    let t = Instant::now();
    let tick = engine.tick().await?;
    let took = t.elapsed();
    println!(
        "burst: {} clocks due in the same minute fired in {:.1} s ({:.0} cases/s)",
        tick.fired,
        took.as_secs_f64(),
        tick.fired as f64 / took.as_secs_f64()
    );
    let notices: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notices")
        .fetch_one(&pool)
        .await?;
    let again = engine.tick().await?;
    println!(
        "notices written: {notices}; a further tick fired {} (each warning once)",
        again.fired
    );
    println!(
        "resident memory of this process: {}",
        petition_e2e::resident_memory()
    );
    db.close().await;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The scan node of a plan and the rows it read (and, if any, removed by its filter).
fn scanned(plan: &[String]) -> (String, u64) {
    let number_after = |line: &str, key: &str| -> u64 {
        line.split(key)
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let Some(i) = plan.iter().position(|l| l.contains(" Scan")) else {
        return ("no scan".into(), 0);
    };
    let line = &plan[i];
    let node = line
        .trim_start_matches([' ', '-', '>'])
        .split(" (")
        .next()
        .unwrap_or_default()
        .to_owned();
    let removed: u64 = plan[i + 1..]
        .iter()
        .take_while(|l| !l.contains(" Scan") && !l.contains("->"))
        .map(|l| number_after(l, "Rows Removed by Filter: "))
        .sum();
    let read = number_after(line.split("actual").nth(1).unwrap_or_default(), "rows=");
    (node, read + removed)
}
