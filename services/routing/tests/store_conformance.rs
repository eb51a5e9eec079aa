//! One conformance suite for the routing store, run against PostgreSQL and SQLite.

use chrono::{DateTime, TimeZone, Utc};
use petition_events::OutboxMessage;
use petition_events::outbox::Outbox;
use petition_routing::store::{
    AssignmentRecord, PgRoutingStore, RoutingStore, SqliteRoutingStore, Step, StoreError,
};
use petition_testkit::TestDatabase;
use std::sync::Arc;
use uuid::Uuid;

struct Harness {
    store: Arc<dyn RoutingStore>,
    outbox: Arc<dyn Outbox>,
    _db: Option<TestDatabase>,
    _dir: Option<tempfile::TempDir>,
}

async fn postgres() -> Option<Harness> {
    let db = TestDatabase::create().await?;
    let pool = petition_storage::connect_postgres(&db.url, "routing", 4)
        .await
        .unwrap();
    let (store, outbox) = PgRoutingStore::open(pool).await.unwrap();
    Some(Harness {
        store: Arc::new(store),
        outbox: Arc::new(outbox),
        _db: Some(db),
        _dir: None,
    })
}

async fn sqlite() -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/routing.db", dir.path().display());
    let pool = petition_storage::connect_sqlite(&url).await.unwrap();
    let (store, outbox) = SqliteRoutingStore::open(pool).await.unwrap();
    Some(Harness {
        store: Arc::new(store),
        outbox: Arc::new(outbox),
        _db: None,
        _dir: Some(dir),
    })
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 2, 0, 0).unwrap()
}

fn record(case: &str, organ: &str, state: &str) -> AssignmentRecord {
    AssignmentRecord {
        case_id: case.into(),
        case_number: format!("140213-2026-{case:0>6}"),
        organ: organ.into(),
        outcome: "sent".into(),
        state: state.into(),
        mode: Some("forward".into()),
        rule: "competent by field 01.01".into(),
        notice: String::new(),
        hops: vec!["datong.bureau".into(), "pingcheng.bureau".into()],
        linked_case_number: None,
        diversion: None,
        type_of_matter: "grievance".into(),
        category: "01.01".into(),
        problem_location: "140213001".into(),
        channel: "visit".into(),
        forwarding_bureau: "pingcheng.bureau".into(),
        accused_organ: Some("pingcheng.street.beiguan".into()),
        flag_group: true,
        flag_leapfrog: false,
        flag_repeat: true,
        received_at: at(2),
        route_due: at(17),
        organ_received_at: Some(at(2)),
        objection_due: Some(at(9)),
        accepted_at: None,
        handling_due: None,
        report_due: Some(at(30)),
        objection_reason: None,
        history: vec![Step {
            at_micros: at(2).timestamp_micros(),
            from_organ: "pingcheng.bureau".into(),
            to_organ: organ.into(),
            rule: "competent by field 01.01".into(),
            actor: "routing".into(),
        }],
        version: 1,
        ..Default::default()
    }
}

fn event() -> OutboxMessage {
    OutboxMessage {
        event_id: Uuid::now_v7(),
        stream: "petition.routing.v1".into(),
        payload: vec![1, 2, 3],
    }
}

async fn round_trips_and_applies_each_event_once(h: Harness) {
    let r = record("1", "pingcheng.housing", "awaiting_acceptance");
    assert!(
        h.store
            .insert_routed("routing", "ev-1", &r, &event())
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .insert_routed("routing", "ev-1", &r, &event())
            .await
            .unwrap(),
        "a redelivered event changes nothing"
    );
    assert_eq!(
        h.outbox.pending().await.unwrap(),
        1,
        "one event for one routing"
    );
    let got = h.store.get("1").await.unwrap().unwrap();
    assert_eq!(got, r);
    assert!(h.store.get("2").await.unwrap().is_none());
}

async fn lists_what_an_organ_holds_by_state(h: Harness) {
    for (case, organ, state) in [
        ("1", "pingcheng.housing", "awaiting_acceptance"),
        ("2", "pingcheng.housing", "accepted"),
        ("3", "pingcheng.housing", "objected"),
        ("4", "pingcheng.hrss", "awaiting_acceptance"),
    ] {
        let ev = format!("ev-{case}");
        h.store
            .insert_routed("routing", &ev, &record(case, organ, state), &event())
            .await
            .unwrap();
    }
    let mut held: Vec<String> = h
        .store
        .held_by("pingcheng.housing", &["awaiting_acceptance", "accepted"])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.case_id)
        .collect();
    held.sort();
    assert_eq!(held, ["1", "2"]);
    assert!(
        h.store
            .held_by("pingcheng.civil", &["accepted"])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn updates_are_optimistic_and_remember_request_ids(h: Harness) {
    let r = record("1", "pingcheng.housing", "awaiting_acceptance");
    h.store
        .insert_routed("routing", "ev-1", &r, &event())
        .await
        .unwrap();
    let mut next = r.clone();
    next.state = "accepted".into();
    next.accepted_at = Some(at(3));
    next.handling_due = Some(at(31));
    next.reply_outcome = Some("supported".into());
    next.service_record = Some(petition_routing::store::ServiceRecord {
        mode: "post".into(),
        served_at_micros: at(20).timestamp_micros(),
        signed: true,
        refused: false,
        view: "agrees".into(),
    });
    next.served_at = Some(at(20));
    next.extension_days = Some(30);
    next.version = 2;
    h.store
        .update(&next, &event(), Some("req-1"))
        .await
        .unwrap();
    assert_eq!(h.store.get("1").await.unwrap().unwrap(), next);
    assert_eq!(
        h.store.applied_request("req-1").await.unwrap().as_deref(),
        Some("1")
    );
    assert!(h.store.applied_request("req-2").await.unwrap().is_none());
    // A writer that read version 1 loses.
    let mut stale = r.clone();
    stale.state = "objected".into();
    stale.version = 2;
    assert!(matches!(
        h.store.update(&stale, &event(), None).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        h.outbox.pending().await.unwrap(),
        2,
        "no event for the lost write"
    );
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(h) = super::postgres().await else { return };
                    super::$name(h).await;
                }
            )*
        }
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(h) = super::sqlite().await else { return };
                    super::$name(h).await;
                }
            )*
        }
    };
}

conformance!(
    round_trips_and_applies_each_event_once,
    lists_what_an_organ_holds_by_state,
    updates_are_optimistic_and_remember_request_ids,
);
