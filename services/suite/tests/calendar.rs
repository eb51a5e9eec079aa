//! A deadline past the end of the holiday calendar, through the running suite on simulated
//! time, on PostgreSQL + Redis and on the embedded default. The calendar ends with 2026; a
//! grievance accepted on 2026-11-27 gets a provisional handling deadline, shown so in
//! supervision's timeline, routing's inbox and the petitioner's view. A malformed calendar file
//! is refused with its line, the loaded calendar kept. Then the 2027 arrangement (a test
//! fixture, not the State Council's) is loaded without a restart: the deadline is counted
//! again to the fixture's make-up Saturday, an event carries the change to routing and intake,
//! and the provisional mark is gone everywhere.

use chrono::TimeZone;
use petition_auth::Role;
mod common;

use common::Suite;
use petition_e2e::{admin_get, admin_post, samples, timestamp, who};
use petition_proto::v1 as pb;
use std::path::Path;

const SHIPPED_CALENDAR: &str = include_str!("../../../deploy/config/cn-calendar.csv");
const FIXTURE_2027: &str = include_str!("../../../tests/fixtures/calendar-2027-fixture.csv");

fn beijing(y: i32, m: u32, d: u32, h: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .unwrap()
        .to_utc()
}

/// A configuration directory of the test's own: the shipped files, to be changed.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
    for name in ["orgs.toml", "categories.toml", "cn-calendar.csv"] {
        std::fs::copy(shipped.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn handling(t: &pb::Timeline) -> Option<&pb::CaseClock> {
    t.clocks
        .iter()
        .find(|c| c.kind == pb::ClockKind::Handling as i32)
}

/// The last day of an instant that ends one (24:00 Beijing), as the APIs show it.
fn day_of(t: &Option<prost_types::Timestamp>) -> String {
    let t = t.as_ref().unwrap();
    let at = chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
        - chrono::Duration::microseconds(1);
    petition_domain::calendar::local_date(at).to_string()
}

/// The petitioner's view by query code.
async fn view(
    s: &Suite,
    p: &petition_auth::Principal,
    code: &str,
) -> pb::LookupByQueryCodeResponse {
    s.intake(p)
        .await
        .lookup_by_query_code(pb::LookupByQueryCodeRequest {
            query_code: code.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn the_next_year_is_loaded_without_a_restart(s: &Suite, dir: &Path) {
    let admin = s.admin_addr;
    let (code, body) = admin_get(admin, "/calendar").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"last_year\":2026"), "{body}");
    assert!(
        body.contains("\"days_left\":34"),
        "2026-11-27 to 12-31: {body}"
    );
    assert!(
        body.contains("the holiday calendar ends on 2026-12-31 (34 days from today)")
            && body.contains("cn-calendar.csv"),
        "{body}"
    );

    // Fri 2026-11-27: a housing grievance, registered, sent, accepted at once.
    let sample = samples().into_iter().find(|s| s.sample == 1).unwrap();
    let mut req = sample.request();
    req.received_at = Some(timestamp(beijing(2026, 11, 27, 9)));
    let reg = s
        .intake(&sample.principal())
        .await
        .register_petition(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.routed(&reg.case_id).await.organ, "pingcheng.housing");
    let mut handler = s.routing(&who("pingcheng.housing", Role::Handler)).await;
    let accepted = handler
        .accept_case(pb::AcceptCaseRequest {
            case_id: reg.case_id.clone(),
            request_id: "accept".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // 11-27 + 60 days = Tue 2027-01-26: a working day, on weekends alone.
    assert_eq!(day_of(&accepted.handling_due), "2027-01-26");
    assert!(accepted.handling_due_provisional);

    let t = s
        .timeline_when(&reg.case_id, |t| handling(t).is_some())
        .await;
    let clock = handling(&t).unwrap();
    assert_eq!(
        (clock.last_day.as_str(), clock.provisional),
        ("2027-01-26", true)
    );
    // The petitioner is told the day, and that it may still move, only later.
    let mut told = String::new();
    for _ in 0..400 {
        let v = view(s, &sample.principal(), &reg.query_code).await;
        if let Some(step) = v
            .steps
            .iter()
            .find(|st| st.kind == pb::StepKind::Accepted as i32)
        {
            told = step.note.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        told.contains("due by 2027-01-26") && told.contains("provisional") && told.contains("2027"),
        "{told}"
    );

    // The gauge counts it.
    let mut metrics = String::new();
    for _ in 0..400 {
        metrics = admin_get(admin, "/metrics").await.1;
        if metrics.contains("supervision_open_provisional_clocks 1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        metrics.contains("supervision_open_provisional_clocks 1")
            && metrics.contains("petition_calendar_days_left 34"),
        "{metrics}"
    );

    // A malformed file: refused with its line and reason, the loaded calendar kept.
    let file = dir.join("cn-calendar.csv");
    let bad = format!("{SHIPPED_CALENDAR}\n{FIXTURE_2027}2027-02-03,workday,春节\n");
    std::fs::write(&file, &bad).unwrap();
    let line = 1 + bad
        .lines()
        .position(|l| l.starts_with("2027-02-03"))
        .unwrap();
    let (code, body) = admin_post(admin, "/calendar/reload").await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains(&format!("line {line}: 2027-02-03 is a Wednesday"))
            && body.contains("the loaded calendar stays"),
        "{body}"
    );
    let (_, body) = admin_get(admin, "/calendar").await;
    assert!(body.contains("\"last_year\":2026"), "{body}");
    let t = s
        .timeline_when(&reg.case_id, |t| handling(t).is_some())
        .await;
    assert!(handling(&t).unwrap().provisional);

    // The 2027 arrangement: loaded on the admin call, no restart.
    std::fs::write(&file, format!("{SHIPPED_CALENDAR}\n{FIXTURE_2027}")).unwrap();
    let (code, body) = admin_post(admin, "/calendar/reload").await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"last_year\":2027")
            && body.contains("\"days_left\":399")
            && body.contains("\"warning\":null"),
        "{body}"
    );
    // In the fixture 01-25..29 are off and Sat 01-30 is a make-up working day. The engine
    // counts the stored clocks again and says so on the timeline.
    let t = s
        .timeline_when(&reg.case_id, |t| {
            t.entries.iter().any(|e| e.kind == "clock.recounted")
                && handling(t).is_some_and(|c| !c.provisional)
        })
        .await;
    let clock = handling(&t).unwrap();
    assert_eq!(
        (clock.last_day.as_str(), clock.provisional),
        ("2027-01-30", false)
    );
    let recounted: Vec<_> = t
        .entries
        .iter()
        .filter(|e| e.kind == "clock.recounted")
        .collect();
    assert_eq!(recounted.len(), 1, "{:?}", t.entries);
    assert!(
        recounted[0].text.contains("2027-01-30") && recounted[0].text.contains("not 2027-01-26"),
        "{}",
        recounted[0].text
    );
    // The event carried it to routing (the inbox date) and to intake (the petitioner's view).
    let mut moved = None;
    for _ in 0..400 {
        let a = handler
            .get_assignment(pb::GetAssignmentRequest {
                case_id: reg.case_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if day_of(&a.handling_due) == "2027-01-30" {
            moved = Some(a);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let a = moved.expect("routing never moved the handling date");
    assert!(!a.handling_due_provisional);
    assert!(
        a.history
            .iter()
            .any(|h| h.rule.contains("now ends on 2027-01-30")),
        "{:?}",
        a.history
    );
    let mut step = None;
    for _ in 0..400 {
        let v = view(s, &sample.principal(), &reg.query_code).await;
        step = v
            .steps
            .into_iter()
            .find(|st| st.kind == pb::StepKind::DeadlineMoved as i32);
        if step.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let step = step.expect("the petitioner was never told");
    // The gauges: the coverage left, and no open provisional clock.
    for _ in 0..400 {
        metrics = admin_get(admin, "/metrics").await.1;
        if metrics.contains("petition_calendar_days_left 399")
            && metrics.contains("supervision_open_provisional_clocks 0")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        metrics.contains("petition_calendar_days_left 399")
            && metrics.contains("supervision_open_provisional_clocks 0"),
        "{metrics}"
    );
    assert!(
        step.note.contains("the written reply is due by 2027-01-30")
            && step.note.contains("was 2027-01-26"),
        "{}",
        step.note
    );
}

#[tokio::test]
async fn a_new_year_on_postgres_and_redis() {
    let dir = config_dir();
    let Some(s) =
        Suite::postgres_and_redis_with(beijing(2026, 11, 27, 10), Some(dir.path().to_owned()))
            .await
    else {
        return;
    };
    the_next_year_is_loaded_without_a_restart(&s, dir.path()).await;
    s.stop().await;
}

#[tokio::test]
async fn a_new_year_on_the_embedded_default() {
    let dir = config_dir();
    let s = Suite::embedded_with(beijing(2026, 11, 27, 10), Some(dir.path().to_owned())).await;
    the_next_year_is_loaded_without_a_restart(&s, dir.path()).await;
    s.stop().await;
}
