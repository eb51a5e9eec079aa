//! `petition-suite --demo` plays weeks of petitions through the real APIs on simulated time, on
//! the embedded default and on PostgreSQL + Redis: cases are registered (some again on the same
//! matter), claimed (some late), answered and rated with no call refused, supervision urges the
//! late claims, and analytics counts every registration.

mod common;

use chrono::{Duration, Utc};
use common::Suite;
use petition_auth::Role;
use petition_e2e::who;
use petition_proto::v1 as pb;

const DAYS: i64 = 75;

fn demo_args() -> Vec<String> {
    [
        "--demo",
        "--demo-days",
        &DAYS.to_string(),
        "--demo-per-day",
        "4",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// What the demo says it did, from its "DEMO done: …" line, in the order it says them
/// ("{registered} petitions registered ({repeats} came back …), {accepted} accepted
/// ({accepted_late} after 15 days), {answered} answered ({late} late, {extended} after an
/// extension), {rated} rated, {reviews} reviews requested; {refused} calls refused …").
#[derive(Debug)]
struct Told {
    registered: u64,
    repeats: u64,
    accepted: u64,
    accepted_late: u64,
    answered: u64,
    rated: u64,
    refused: u64,
}

fn told(line: &str) -> Told {
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(line.starts_with("DEMO done: "), "{line}");
    assert_eq!(n.len(), 11, "ten counts and the 15 days in {line:?}");
    assert_eq!(n[4], 15, "{line}");
    Told {
        registered: n[0],
        repeats: n[1],
        accepted: n[2],
        accepted_late: n[3],
        answered: n[5],
        rated: n[8],
        refused: n[10],
    }
}

async fn plays_weeks_of_petitions(mut s: Suite) {
    let done = s
        .log_line(
            |l| l.starts_with("DEMO done") || l.contains("DEMO stopped"),
            std::time::Duration::from_secs(300),
        )
        .expect("the demo ends");
    let t = told(&done);
    assert!(t.registered >= 4 * 50, "{t:?}");
    assert!(
        t.repeats > 0 && t.accepted > 0 && t.accepted_late > 0,
        "{t:?}"
    );
    assert!(t.answered > 0 && t.rated > 0, "{t:?}");
    assert!(t.answered <= t.accepted && t.rated <= t.answered, "{t:?}");
    assert_eq!(t.refused, 0, "every call was one the law allows: {t:?}");
    assert!(
        s.log_line(
            |l| l.contains("petition situation"),
            std::time::Duration::from_secs(5)
        )
        .is_some(),
        "the demo says what to try next"
    );

    // analytics saw every registration, and the late claims were urged
    let admin = who("shanxi.bureau", Role::Admin);
    let mut figures = s.analytics(&admin).await;
    let first = (Utc::now() - Duration::days(DAYS) + Duration::hours(8)).format("%Y-%m");
    let last = (Utc::now() + Duration::hours(8)).format("%Y-%m");
    let mut cases = 0;
    for _ in 0..400 {
        cases = figures
            .get_situation(pb::SituationRequest {
                period: format!("{first}..{last}"),
                organ: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .cases
            .unwrap_or_default()
            .count;
        if cases == t.registered {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(cases, t.registered);
    let mut notices = s.supervision(&admin).await;
    let tree = petition_grpc::reference::Reference::load(None)
        .unwrap()
        .tree;
    let mut urged = 0;
    for organ in petition_demo::working_organs(&tree) {
        urged += notices
            .list_notices(pb::ListNoticesRequest {
                organ,
                page_size: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .notices
            .iter()
            .filter(|n| n.kind == pb::NoticeKind::Urging as i32)
            .count();
    }
    assert!(urged > 0, "claims left past 15 days were urged");
    s.stop().await;
}

#[tokio::test]
async fn the_demo_on_the_embedded_default() {
    plays_weeks_of_petitions(Suite::embedded_args(&demo_args())).await;
}

#[tokio::test]
async fn the_demo_on_postgres_and_redis() {
    let Some(s) = Suite::postgres_and_redis_args(&demo_args()).await else {
        return;
    };
    plays_weeks_of_petitions(s).await;
}
