//! One conformance suite for the supervision store, run against PostgreSQL and SQLite.

use chrono::{DateTime, TimeZone, Utc};
use petition_domain::calendar::HolidayCalendar;
use petition_domain::clocks::{ClockKind, ClockRules, ClockState};
use petition_grpc::convert::ts;
use petition_grpc::reference::LiveCalendar;
use petition_proto::v1 as pb;
use petition_proto::v1::event_envelope::Payload;
use petition_storage::requests::RequestId;
use petition_supervision::engine::Engine;
use petition_supervision::store::{
    DueFilter, DueQuery, NoticeQuery, StoreError, SupervisionStore, Unchanged,
};
use petition_supervision::workflow::{self, Change, Ctx, NotYet};
use petition_testkit::{StoreHarness, TestDb};
use std::sync::Arc;

type Harness = StoreHarness<SupervisionStore>;

const SHIPPED: &str = include_str!("../../../deploy/config/cn-calendar.csv");

fn calendar() -> LiveCalendar {
    LiveCalendar::new(HolidayCalendar::from_csv(SHIPPED).unwrap(), None)
}

async fn open(db: &TestDb) -> Harness {
    db.harness(
        "supervision",
        &petition_supervision::store::MIGRATOR,
        |db| SupervisionStore::new(db, calendar(), ClockRules::default()),
    )
    .await
}

/// 10:00 Beijing on a day of March 2026.
fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 2, 0, 0).unwrap()
}

fn case_id(n: u32) -> String {
    format!("0190a1b2-0000-7000-8000-{n:012}")
}

fn registered(n: u32, accused: &str) -> Payload {
    Payload::PetitionRegistered(pb::PetitionRegistered {
        case_id: case_id(n),
        case_number: format!("140213-2026-{n:06}"),
        received_by: "pingcheng.bureau".into(),
        received_at: Some(ts(at(2))),
        accused_organ_id: accused.into(),
        ..Default::default()
    })
}

fn routed(n: u32, organ: &str) -> Payload {
    Payload::PetitionRouted(pb::PetitionRouted {
        case_id: case_id(n),
        case_number: format!("140213-2026-{n:06}"),
        organ: organ.into(),
        outcome: pb::RouteOutcome::Sent as i32,
        mode: pb::HandlingMode::Forward as i32,
        routed_at: Some(ts(at(2))),
        forwarding_bureau: "pingcheng.bureau".into(),
        ..Default::default()
    })
}

/// Applies `payload` as event `event_id` the way the consumer does: the processed mark and
/// the effect in one transaction.
async fn apply(h: &Harness, event_id: &str, payload: &Payload, now: DateTime<Utc>) -> bool {
    let cal = calendar().current();
    let rules = ClockRules::default();
    let cx = Ctx {
        calendar: &cal,
        rules: &rules,
        now,
        actor: workflow::ENGINE,
    };
    let id = match payload {
        Payload::PetitionRegistered(r) => r.case_id.clone(),
        Payload::PetitionRouted(r) => r.case_id.clone(),
        Payload::CaseAccepted(a) => a.case_id.clone(),
        _ => unreachable!(),
    };
    let mut tx = h.db.begin().await.unwrap();
    if !petition_events::processed::first_time(&mut tx, "supervision", event_id)
        .await
        .unwrap()
    {
        return false;
    }
    let changed = h
        .store
        .apply_event(
            &mut tx,
            &id,
            &cal,
            |f| workflow::on_event(f, payload, now, cx),
            |c: &Change| petition_supervision::events::of(c, now),
        )
        .await
        .unwrap()
        .unwrap_or_else(|NotYet(why)| panic!("{why}"));
    tx.commit().await.unwrap();
    changed
}

async fn fire(h: &Harness, now: DateTime<Utc>) -> usize {
    let cal = calendar().current();
    let rules = ClockRules::default();
    let cx = Ctx {
        calendar: &cal,
        rules: &rules,
        now,
        actor: workflow::ENGINE,
    };
    let ids = h.store.due_cases(now, 100).await.unwrap();
    let (fired, conflicts) = h
        .store
        .change_cases(
            &ids,
            &cal,
            |f| workflow::fire(f, cx),
            |c| petition_supervision::events::of(c, now),
            Unchanged::Rewrite,
        )
        .await
        .unwrap();
    assert_eq!(conflicts, 0);
    fired
}

async fn a_case_file_is_written_once_per_event_and_read_back(h: Harness) {
    assert!(apply(&h, "e1", &registered(1, ""), at(2)).await);
    assert!(
        !apply(&h, "e1", &registered(1, ""), at(2)).await,
        "a redelivery changes nothing"
    );
    assert!(apply(&h, "e2", &routed(1, "pingcheng.housing"), at(2)).await);
    let f = h.store.load(&case_id(1)).await.unwrap().unwrap();
    assert_eq!(f.case.version, 2);
    assert_eq!(f.case.holder.as_deref(), Some("pingcheng.housing"));
    let kinds: Vec<_> = f
        .clocks
        .iter()
        .map(|c| (c.kind.as_str(), c.state))
        .collect();
    assert!(kinds.contains(&("forward", ClockState::Met)), "{kinds:?}");
    assert!(
        kinds.contains(&("notice", ClockState::Running)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("objection", ClockState::Running)),
        "{kinds:?}"
    );
    let t = h.store.timeline(&case_id(1)).await.unwrap();
    assert_eq!(
        t.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["registered", "routed"]
    );
    // Routing seen before the registration: the same file, the forward clock met at once.
    assert!(apply(&h, "e3", &routed(2, "pingcheng.housing"), at(2)).await);
    assert!(apply(&h, "e4", &registered(2, ""), at(2)).await);
    let g = h.store.load(&case_id(2)).await.unwrap().unwrap();
    assert_eq!(g.case.received_by, "pingcheng.bureau");
    assert_eq!(
        g.clocks
            .iter()
            .find(|c| c.kind.as_str() == "forward")
            .map(|c| c.state),
        Some(ClockState::Met)
    );
    // A stale version is a conflict, never a lost update.
    let stale = Change {
        file: f.clone(),
        read: vec![],
        entries: vec![],
        notices: vec![],
        events: vec![],
    };
    assert!(matches!(
        h.store
            .save(
                f.case.version - 1,
                &stale,
                &[],
                None,
                at(3),
                &calendar().current()
            )
            .await,
        Err(StoreError::Conflict)
    ));
}

async fn the_engine_reads_only_what_is_due_and_fires_it_once(h: Harness) {
    for n in 1..=3 {
        apply(&h, &format!("r{n}"), &registered(n, ""), at(2)).await;
        apply(&h, &format!("s{n}"), &routed(n, "pingcheng.housing"), at(2)).await;
    }
    // Nothing is due on the day of routing.
    assert!(h.store.due_cases(at(3), 100).await.unwrap().is_empty());
    // The objection windows (5 working days: 03-09) close silently; the notice clocks
    // (15 days: 03-17) remind on 03-14.
    assert_eq!(h.store.due_cases(at(10), 100).await.unwrap().len(), 3);
    assert_eq!(fire(&h, at(10)).await, 3);
    assert_eq!(
        h.store
            .notices(&query("pingcheng.housing"))
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(fire(&h, at(10)).await, 0, "nothing twice");
    let next = h.store.next_fire_at().await.unwrap().unwrap();
    assert_eq!(
        next,
        Utc.with_ymd_and_hms(2026, 3, 13, 16, 0, 0).unwrap(),
        "03-14 00:00 Beijing"
    );
    // The day after 03-17: reminder and urging together, for a service that was down.
    assert_eq!(fire(&h, at(18)).await, 3);
    let notices = h.store.notices(&query("pingcheng.housing")).await.unwrap();
    assert_eq!(notices.len(), 6);
    assert_eq!(
        notices
            .iter()
            .filter(|n| n.kind.as_str() == "urging")
            .count(),
        3
    );
    assert_eq!(fire(&h, at(18)).await, 0);
    let due = h
        .store
        .due(&DueQuery {
            organs: vec!["pingcheng.housing".into()],
            filter: DueFilter::Overdue,
            now: at(18),
            soon_until: at(21),
            hidden_accused: vec![],
            recused: None,
            after: None,
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(due.len(), 2, "paged");
    let rest = h
        .store
        .due(&DueQuery {
            organs: vec!["pingcheng.housing".into()],
            filter: DueFilter::Overdue,
            now: at(18),
            soon_until: at(21),
            hidden_accused: vec![],
            recused: None,
            after: Some((
                due[1].due_at.timestamp_micros(),
                format!("{}:{}", due[1].case_id, due[1].clock.kind),
            )),
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(
        rest.iter()
            .all(|r| !due.iter().any(|d| d.case_id == r.case_id))
    );
}

fn query(organ: &str) -> NoticeQuery {
    NoticeQuery {
        organs: vec![organ.into()],
        only_unacknowledged: false,
        hidden_accused: vec![],
        recused: None,
        after: None,
        limit: 50,
    }
}

async fn lists_hide_accusations_and_a_notice_is_acknowledged_once(h: Harness) {
    apply(&h, "r1", &registered(1, "pingcheng.housing"), at(2)).await;
    apply(&h, "s1", &routed(1, "pingcheng.discipline"), at(2)).await;
    apply(&h, "r2", &registered(2, ""), at(2)).await;
    apply(&h, "s2", &routed(2, "pingcheng.discipline"), at(2)).await;
    fire(&h, at(18)).await;
    let all = h
        .store
        .notices(&query("pingcheng.discipline"))
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    let mut hidden = query("pingcheng.discipline");
    hidden.hidden_accused = vec!["pingcheng.housing".into()];
    let shown = h.store.notices(&hidden).await.unwrap();
    assert!(shown.iter().all(|n| n.case_id == case_id(2)), "{shown:?}");
    let due = h
        .store
        .due(&DueQuery {
            organs: vec!["pingcheng.discipline".into()],
            filter: DueFilter::All,
            now: at(18),
            soon_until: at(21),
            hidden_accused: vec!["pingcheng.housing".into()],
            recused: None,
            after: None,
            limit: 50,
        })
        .await
        .unwrap();
    assert!(due.iter().all(|r| r.case_id == case_id(2)), "{due:?}");
    // 回避: the member of staff out of case 2 finds neither its clocks nor its notices.
    let mut tx = h.db.begin().await.unwrap();
    petition_storage::recusals::record(&mut tx, &case_id(2), "handler.li", "party", at(18))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut li = query("pingcheng.discipline");
    li.recused = Some("handler.li".into());
    let shown = h.store.notices(&li).await.unwrap();
    assert!(!shown.is_empty() && shown.iter().all(|n| n.case_id == case_id(1)));
    let due = h
        .store
        .due(&DueQuery {
            organs: vec!["pingcheng.discipline".into()],
            filter: DueFilter::All,
            now: at(18),
            soon_until: at(21),
            hidden_accused: vec![],
            recused: Some("handler.li".into()),
            after: None,
            limit: 50,
        })
        .await
        .unwrap();
    assert!(
        !due.is_empty() && due.iter().all(|r| r.case_id == case_id(1)),
        "{due:?}"
    );
    assert_eq!(
        h.store.load(&case_id(2)).await.unwrap().unwrap().recused,
        ["handler.li"]
    );

    let mut n = all[0].clone();
    n.acknowledged_at = Some(at(19));
    n.acknowledged_by = Some("handler@pingcheng.discipline".into());
    n.feedback = Some("done".into());
    let req = RequestId::of("pingcheng.discipline", "AcknowledgeNotice", "ack-1");
    h.store.acknowledge(&n, req, at(19)).await.unwrap();
    assert_eq!(
        h.store
            .applied_request(req.unwrap())
            .await
            .unwrap()
            .as_deref(),
        Some(n.notice_id.as_str())
    );
    assert!(matches!(
        h.store.acknowledge(&n, None, at(19)).await,
        Err(StoreError::Conflict)
    ));
    let read = h.store.notice(&n.notice_id).await.unwrap().unwrap();
    assert_eq!(read.feedback.as_deref(), Some("done"));
    let mut open = query("pingcheng.discipline");
    open.only_unacknowledged = true;
    assert_eq!(h.store.notices(&open).await.unwrap().len(), 3);
    // Every notice went out on the stream too, in the transaction that wrote it.
    assert!(h.outbox.pending().await.unwrap() >= 4);
}

/// An instant in Beijing time.
fn bj(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(y, m, d, 10, 0, 0)
        .unwrap()
        .to_utc()
}

/// A case registered and sent to the housing bureau at `t`.
async fn sent(h: &Harness, n: u32, t: DateTime<Utc>) {
    let (Payload::PetitionRegistered(mut r), Payload::PetitionRouted(mut s)) =
        (registered(n, ""), routed(n, "pingcheng.housing"))
    else {
        unreachable!()
    };
    r.received_at = Some(ts(t));
    s.routed_at = Some(ts(t));
    assert!(apply(h, &format!("r{n}"), &Payload::PetitionRegistered(r), t).await);
    assert!(apply(h, &format!("s{n}"), &Payload::PetitionRouted(s), t).await);
}

/// Routing accepted case `n` at `t`, telling a provisional reply date ending at `due`.
async fn accepted(h: &Harness, n: u32, t: DateTime<Utc>, due: DateTime<Utc>) {
    let accepted = Payload::CaseAccepted(pb::CaseAccepted {
        case_id: case_id(n),
        case_number: format!("140213-2026-{n:06}"),
        organ: "pingcheng.housing".into(),
        accepted_at: Some(ts(t)),
        handling_due: Some(ts(due)),
        handling_due_provisional: true,
    });
    assert!(apply(h, &format!("a{n}"), &accepted, t).await);
}

/// Clocks counted into 2027 on the shipped calendar (which ends with 2026) are provisional;
/// loading the test fixture's 2027 recounts each once: the handling clock of a grievance
/// accepted on 2026-11-27 moves from 01-26 to the fixture's make-up Saturday 01-30, with a
/// timeline line and an event; one accepted 12-01 keeps its announced 02-01 though the fixture
/// counts 01-30, and a notice clock whose day stands, both only lose their mark.
async fn a_loaded_year_recounts_each_provisional_clock_once(h: Harness) {
    let live = calendar();
    let store = SupervisionStore::new(h.db.clone(), live.clone(), ClockRules::default());
    sent(&h, 1, bj(2026, 11, 27)).await;
    // 24:00 Beijing at the end of 01-26
    accepted(
        &h,
        1,
        bj(2026, 11, 27),
        bj(2027, 1, 27) - chrono::Duration::hours(10),
    )
    .await;
    sent(&h, 4, bj(2026, 12, 1)).await;
    accepted(
        &h,
        4,
        bj(2026, 12, 1),
        bj(2027, 2, 2) - chrono::Duration::hours(10),
    )
    .await;
    // Sun 12-20 + 15 days = Mon 2027-01-04, a working day on weekends alone.
    sent(&h, 2, bj(2026, 12, 20)).await;
    // Nothing of 2027 here.
    sent(&h, 3, bj(2026, 3, 2)).await;
    let d = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    assert_eq!(
        store.provisional_clocks(None, 100).await.unwrap(),
        vec![
            (case_id(1), ClockKind::Handling),
            (case_id(2), ClockKind::Notice),
            (case_id(4), ClockKind::Handling),
        ]
    );
    assert_eq!(store.open_provisional_clocks().await.unwrap(), 3);
    // One page at a time, resumed after the last row.
    assert_eq!(
        store
            .provisional_clocks(Some(&(case_id(1), ClockKind::Handling)), 100)
            .await
            .unwrap()
            .len(),
        2
    );
    let engine = Engine {
        store: store.clone(),
        calendar: live.clone(),
        settled: petition_supervision::settled::Settled::new(live.current()),
        rules: ClockRules::default(),
        clock: Arc::new(petition_domain::FixedClock::new(bj(2026, 12, 1))),
        relay_wake: petition_events::RelayWake::new(),
        wake: Arc::new(tokio::sync::Notify::new()),
        batch: 1,
        max_sleep: std::time::Duration::from_secs(1),
        gauge_every: std::time::Duration::from_secs(30),
    };
    // The calendar has not changed: nothing moves, the marks stay.
    assert_eq!(engine.recount().await.unwrap(), Some(0));
    assert_eq!(store.open_provisional_clocks().await.unwrap(), 3);
    let fixture = include_str!("../../../tests/fixtures/calendar-2027-fixture.csv");
    live.load_text(&format!("{SHIPPED}\n{fixture}")).unwrap();
    let before = h.outbox.pending().await.unwrap();
    assert_eq!(engine.recount().await.unwrap(), Some(3));
    assert_eq!(
        h.outbox.pending().await.unwrap(),
        before + 1,
        "one clock moved"
    );
    assert_eq!(store.open_provisional_clocks().await.unwrap(), 0);
    let f = store.load(&case_id(1)).await.unwrap().unwrap();
    let handling = f.clock(ClockKind::Handling).unwrap();
    let cal = live.current();
    let dl = handling.deadline(&cal, ClockRules::default().counting);
    assert_eq!((dl.last_day, dl.provisional), (d(2027, 1, 30), false));
    assert_eq!(
        handling.floor,
        Some(d(2027, 1, 30)),
        "the moved day, announced"
    );
    let line = store.timeline(&case_id(1)).await.unwrap();
    let moved: Vec<_> = line
        .iter()
        .filter(|e| e.kind == "clock.recounted")
        .collect();
    assert_eq!(moved.len(), 1, "{line:?}");
    assert!(
        moved[0].text.contains("2027-01-30") && moved[0].text.contains("not 2027-01-26"),
        "{}",
        moved[0].text
    );
    for n in [2, 4] {
        let quiet = store.timeline(&case_id(n)).await.unwrap();
        assert!(
            quiet.iter().all(|e| e.kind != "clock.recounted"),
            "{quiet:?}"
        );
    }
    // The announced day stands over the fixture's count, and is kept.
    let f = store.load(&case_id(4)).await.unwrap().unwrap();
    let handling = f.clock(ClockKind::Handling).unwrap();
    let dl = handling.deadline(&cal, ClockRules::default().counting);
    assert_eq!((dl.last_day, dl.provisional), (d(2027, 2, 1), false));
    assert_eq!(handling.floor, Some(d(2027, 2, 1)));
    // Counted once: again, nothing.
    assert_eq!(engine.recount().await.unwrap(), Some(0));
    assert_eq!(h.outbox.pending().await.unwrap(), before + 1);
}

petition_testkit::dual_dialect!(open =>
    a_case_file_is_written_once_per_event_and_read_back,
    the_engine_reads_only_what_is_due_and_fires_it_once,
    lists_hide_accusations_and_a_notice_is_acknowledged_once,
    a_loaded_year_recounts_each_provisional_clock_once,
);
