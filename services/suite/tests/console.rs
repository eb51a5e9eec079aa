//! The web console in a real browser: `tests/browser/walk.mjs` (services/console) drives
//! Debian's Chromium through one case on a suite this test starts — the clerk registers it,
//! the handler accepts and replies, the petitioner rates it, the director sees it counted —
//! photographing and axe-checking every screen. Then this test asks the services themselves
//! whether what the pages showed happened. Once on PostgreSQL + Redis, once embedded.
//!
//! Needs chromium (Debian's `chromium`), Node.js, and the walk's npm packages
//! (`npm ci` in services/console/tests/browser); `.ci/run` and `tests/run.sh` provide them.
//! Without them the test says what is missing and passes outside CI; under CI=true it fails.

mod common;

use common::Suite;
use petition_auth::Role;
use petition_e2e::who;
use petition_proto::v1 as pb;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../console/tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What the walk needs that is not there, if anything.
fn missing() -> Vec<String> {
    let mut out = vec![];
    if !chromium().exists() {
        out.push(format!(
            "{} (apt-get install chromium)",
            chromium().display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        out.push("node (Node.js)".into());
    }
    if !browser_dir().join("node_modules/playwright-core").exists()
        || !browser_dir().join("node_modules/axe-core").exists()
    {
        out.push("the walk's npm packages (npm ci in services/console/tests/browser)".into());
    }
    out
}

/// Runs the walk against `suite`'s console, its screenshots under `shots`: what it saw.
fn walk(suite: &mut Suite, start: &str, shots: &Path) -> serde_json::Value {
    let line = suite
        .log_line(
            |l| l.contains("serving the web console"),
            Duration::from_secs(20),
        )
        .expect("the suite logs its console's address");
    let log: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    let url = log["fields"]["console"]
        .as_str()
        .expect("the console's address")
        .to_owned();
    let _ = std::fs::remove_dir_all(shots);
    let out = Command::new("node")
        .arg("walk.mjs")
        .current_dir(browser_dir())
        .env("CONSOLE_URL", &url)
        .env("ADMIN_URL", format!("http://{}", suite.admin_addr))
        .env("CLOCK_START", start)
        .env("SHOTS", shots)
        .env("CHROMIUM", chromium())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the walk failed (screenshots of each open page in {}):\n{}\n{}",
        shots.display(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("the walk's JSON")
}

/// What the pages showed, asked of the services: the rating the petitioner gave on the page
/// is the one supervision holds, and the accused organ cannot read the accusation at all.
async fn services_agree(suite: &Suite, seen: &serde_json::Value) {
    let number = seen["caseNumber"].as_str().expect("a case number");
    let bureau = who("pingcheng.bureau", Role::Supervisor);
    let case = suite
        .intake(&bureau)
        .await
        .get_case(pb::GetCaseRequest {
            case_number: number.into(),
            ..Default::default()
        })
        .await
        .expect("the case the clerk registered")
        .into_inner();
    assert_eq!(case.title, "小区楼顶漏水无人维修");
    assert_eq!(case.holder, "pingcheng.housing");
    let timeline = suite
        .supervision(&bureau)
        .await
        .get_timeline(pb::GetTimelineRequest {
            case_id: case.id.clone(),
        })
        .await
        .expect("its timeline")
        .into_inner();
    let handling = timeline
        .clocks
        .iter()
        .find(|k| k.kind == pb::ClockKind::Handling as i32)
        .expect("the handling clock");
    assert_eq!(
        handling.extension_days, 10,
        "the extension the bureau approved"
    );
    assert_eq!(timeline.rating, pb::RatingState::Rated as i32);
    assert_eq!(timeline.bureau_rating, pb::Satisfaction::Satisfied as i32);
    assert_eq!(
        timeline.organ_rating,
        pb::Satisfaction::BasicallySatisfied as i32
    );

    let accusation = seen["accusation"]
        .as_str()
        .expect("the accusation's number");
    let accused = suite
        .intake(&who("pingcheng.housing", Role::Handler))
        .await
        .get_case(pb::GetCaseRequest {
            case_number: accusation.into(),
            ..Default::default()
        })
        .await
        .expect_err("the accused organ reads nothing of the accusation");
    assert_eq!(accused.code(), tonic::Code::NotFound);

    // every screen the console must have was photographed and passed axe (the walk fails on
    // a serious violation): this list holds the walk to them if it is ever edited
    let screens: Vec<&str> = seen["screens"]
        .as_array()
        .expect("screens")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for screen in [
        "intake-form",
        "intake-warnings",
        "receipt",
        "inbox",
        "case-extension-decided",
        "case-objection",
        "case-answered",
        "petitioner-answered",
        "petitioner-rated",
        "board-due-soon",
        "board",
        "situation",
        "intake-form-phone",
    ] {
        assert!(screens.contains(&screen), "{screen} in {screens:?}");
    }
    assert_eq!(seen["cases"], 2);
    assert_eq!(seen["housingRated"], "100.0% (1/1)");
    assert_eq!(
        seen["objectedNowWith"], true,
        "the bureau sent the objected case on"
    );
    // the unclaimed petition, overdue on the bureau's board after 20 days
    let board = seen["board"].as_str().expect("the overdue list");
    assert!(
        board.contains(seen["unclaimed"].as_str().unwrap_or("?")),
        "{board}"
    );
}

fn shots(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/console-screenshots")
        .join(name)
}

fn ready() -> bool {
    let missing = missing();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and the browser tests cannot run; missing: {}",
        missing.join(", ")
    );
    eprintln!(
        "SKIPPED: the console's browser walk needs {}",
        missing.join(", ")
    );
    false
}

/// A console on a free port, and the suite's clock held at `start` (the walk moves it).
fn console_args(start: &str) -> Vec<String> {
    ["--console-listen", "127.0.0.1:0", "--dev-clock", start]
        .map(str::to_owned)
        .to_vec()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn a_case_walks_through_the_console_on_postgres_and_redis() {
    if !ready() {
        return;
    }
    let start = now();
    let Some(mut suite) = Suite::postgres_and_redis_args(&console_args(&start)).await else {
        return;
    };
    let seen = walk(&mut suite, &start, &shots("postgres"));
    services_agree(&suite, &seen).await;
}

#[tokio::test]
async fn a_case_walks_through_the_console_embedded() {
    if !ready() {
        return;
    }
    let start = now();
    let mut suite = Suite::embedded_args(&console_args(&start));
    let seen = walk(&mut suite, &start, &shots("embedded"));
    services_agree(&suite, &seen).await;
}
