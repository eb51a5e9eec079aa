//! One conformance suite for the routing store, run against PostgreSQL and SQLite.

use chrono::{DateTime, TimeZone, Utc};
use petition_domain::{Channel, TypeOfMatter};
use petition_events::OutboxMessage;
use petition_routing::model::{
    AssignmentRecord, AssignmentState, HandlingMode, PetitionerView, ReplyOutcome, RouteOutcome,
    ServiceMode, ServiceRecord, Step,
};
use petition_routing::store::{Bucket, InboxQuery, RequestId, RoutingStore, StoreError};
use petition_storage::recusals;
use petition_testkit::{StoreHarness, TestDb};
use uuid::Uuid;

type Harness = StoreHarness<RoutingStore>;

async fn open(db: &TestDb) -> Harness {
    db.harness(
        "routing",
        &petition_routing::store::MIGRATOR,
        RoutingStore::new,
    )
    .await
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 2, 0, 0).unwrap()
}

fn record(case: &str, organ: &str, state: AssignmentState) -> AssignmentRecord {
    let mut r = AssignmentRecord::blank(case, &format!("140213-2026-{case:0>6}"), at(2));
    r.received_by = "pingcheng.bureau".into();
    r.organ = organ.into();
    r.outcome = RouteOutcome::Sent;
    r.state = state;
    r.mode = Some(HandlingMode::Forward);
    r.rule = "competent by field 01.01".into();
    r.hops = vec!["datong.bureau".into(), "pingcheng.bureau".into()];
    r.type_of_matter = Some(TypeOfMatter::Grievance);
    r.category = "01.01".into();
    r.problem_location = "140213001".into();
    r.channel = Channel::Letter;
    r.forwarding_bureau = "pingcheng.bureau".into();
    r.flag_group = true;
    r.flag_repeat = true;
    r.route_due = at(17);
    r.organ_received_at = Some(at(2));
    r.objection_due = Some(at(9));
    r.report_due = Some(at(30));
    r.due_at = Some(at(17));
    r.history = vec![Step {
        at_micros: at(2).timestamp_micros(),
        from_organ: "pingcheng.bureau".into(),
        to_organ: organ.into(),
        rule: "competent by field 01.01".into(),
        actor: "routing".into(),
    }];
    r
}

fn event() -> OutboxMessage {
    OutboxMessage {
        event_id: Uuid::now_v7(),
        stream: "petition.routing.v1".into(),
        payload: vec![1, 2, 3],
        actor: Default::default(),
    }
}

/// A routing recorded in its own transaction, as the consumer does in its batch's.
async fn insert(h: &Harness, r: &AssignmentRecord) {
    let mut tx = h.db.begin().await.unwrap();
    RoutingStore::insert_routed(&mut tx, r, &event())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn round_trips_with_its_event(h: Harness) {
    let mut r = record(
        "1",
        "pingcheng.housing",
        AssignmentState::AwaitingAcceptance,
    );
    r.accused_organ = Some("pingcheng.street.beiguan".into());
    r.due_at = None;
    insert(&h, &r).await;
    assert_eq!(
        h.outbox.pending().await.unwrap(),
        1,
        "one event for one routing"
    );
    let got = h.store.get("1").await.unwrap().unwrap();
    assert_eq!(got, r);
    assert!(h.store.get("2").await.unwrap().is_none());
}

async fn inboxes_filter_sort_and_page_in_sql(h: Harness) {
    use AssignmentState::*;
    let rows = [
        (
            "1",
            "pingcheng.housing",
            AwaitingAcceptance,
            Some(at(20)),
            None,
        ),
        ("2", "pingcheng.housing", Accepted, Some(at(10)), None),
        ("3", "pingcheng.housing", Objected, Some(at(12)), None),
        (
            "4",
            "pingcheng.hrss",
            AwaitingAcceptance,
            Some(at(11)),
            None,
        ),
        ("5", "pingcheng.housing", Accepted, Some(at(5)), None),
        ("6", "pingcheng.housing", Diverted, None, None),
        // An accusation against the housing bureau, held by it only in this test.
        (
            "7",
            "pingcheng.housing",
            Accepted,
            Some(at(15)),
            Some("pingcheng.housing"),
        ),
    ];
    for (case, organ, state, due, accused) in rows {
        let mut r = record(case, organ, state);
        r.due_at = due;
        r.accused_organ = accused.map(String::from);
        if case == "5" {
            r.category = "02.01".into();
        }
        insert(&h, &r).await;
    }
    let query = |bucket: Bucket, hidden: &[&str], prefix: Option<&str>| InboxQuery {
        organ: "pingcheng.housing".into(),
        bucket,
        now: at(8),
        category_prefix: prefix.map(String::from),
        hidden_accused: hidden.iter().map(|s| s.to_string()).collect(),
        recused: None,
        after: None,
        limit: 100,
    };
    let ids = |rs: Vec<AssignmentRecord>| rs.into_iter().map(|r| r.case_id).collect::<Vec<_>>();
    assert_eq!(
        ids(h
            .store
            .inbox(&query(Bucket::All, &["pingcheng.housing"], None))
            .await
            .unwrap()),
        ["5", "2", "1", "6"],
        "by due date, nothing due last; no objection, no other organ, no accusation against it"
    );
    assert_eq!(
        ids(h.store.inbox(&query(Bucket::All, &[], None)).await.unwrap()),
        ["5", "2", "7", "1", "6"]
    );
    assert_eq!(
        ids(h
            .store
            .inbox(&query(Bucket::Overdue, &[], None))
            .await
            .unwrap()),
        ["5"]
    );
    assert_eq!(
        ids(h
            .store
            .inbox(&query(Bucket::ToClaim, &[], None))
            .await
            .unwrap()),
        ["1"]
    );
    assert_eq!(
        ids(h
            .store
            .inbox(&query(Bucket::ToDo, &[], None))
            .await
            .unwrap()),
        ["2", "7", "6"]
    );
    assert_eq!(
        ids(h
            .store
            .inbox(&query(Bucket::All, &[], Some("02")))
            .await
            .unwrap()),
        ["5"]
    );
    // 回避 (Art. 28 ¶3): the member of staff out of case 1 finds it nowhere in the inbox;
    // their colleague does, and a second record of the same recusal changes nothing.
    let mut tx = h.db.begin().await.unwrap();
    assert!(
        recusals::record(&mut tx, "1", "handler.li", "relative", at(1))
            .await
            .unwrap()
    );
    assert!(
        !recusals::record(&mut tx, "1", "handler.li", "party", at(2))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let as_person = |subject: &str| InboxQuery {
        recused: Some(subject.into()),
        ..query(Bucket::All, &[], None)
    };
    assert_eq!(
        ids(h.store.inbox(&as_person("handler.li")).await.unwrap()),
        ["5", "2", "7", "6"]
    );
    assert_eq!(
        ids(h.store.inbox(&as_person("handler.zhang")).await.unwrap()),
        ["5", "2", "7", "1", "6"]
    );
    assert_eq!(
        h.store.get("1").await.unwrap().unwrap().recused,
        ["handler.li"]
    );
    assert_eq!(
        h.store
            .recusal("1", "handler.li")
            .await
            .unwrap()
            .map(|(r, _)| r),
        Some(petition_domain::RecusalReason::Relative),
        "the first record stays"
    );
    // A lift that reaches a copy before its record leaves a tombstone the late record does not
    // undo; a recusal recorded after the lift stands again.
    let mut tx = h.db.begin().await.unwrap();
    assert!(
        recusals::lift(&mut tx, "2", "handler.wu", at(3))
            .await
            .unwrap()
    );
    assert!(
        !recusals::record(&mut tx, "2", "handler.wu", "party", at(2))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert!(h.store.get("2").await.unwrap().unwrap().recused.is_empty());
    let mut tx = h.db.begin().await.unwrap();
    assert!(
        recusals::record(&mut tx, "2", "handler.wu", "party", at(4))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(
        h.store.get("2").await.unwrap().unwrap().recused,
        ["handler.wu"]
    );
    // Page by page, two at a time, the same order.
    let mut paged = Vec::new();
    let mut q = query(Bucket::All, &[], None);
    q.limit = 2;
    loop {
        let page = h.store.inbox(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        q.after = Some((
            last.due_at.map_or(i64::MAX, |d| d.timestamp_micros()),
            last.case_id.clone(),
        ));
        paged.extend(ids(page));
    }
    assert_eq!(paged, ["5", "2", "7", "1", "6"]);
    // The bureau's desk: the objection it must answer.
    let desk = h
        .store
        .triage("pingcheng.bureau", &[], None, None, 10)
        .await
        .unwrap();
    assert_eq!(ids(desk), ["3"]);
}

async fn updates_are_optimistic_and_remember_request_ids_per_organ(h: Harness) {
    let r = record(
        "1",
        "pingcheng.housing",
        AssignmentState::AwaitingAcceptance,
    );
    insert(&h, &r).await;
    let mut next = r.clone();
    next.state = AssignmentState::Accepted;
    next.accepted_at = Some(at(3));
    next.handling_due = Some(at(31));
    next.reply_outcome = Some(ReplyOutcome::Supported);
    next.service_record = Some(ServiceRecord {
        mode: ServiceMode::Post,
        served_at_micros: at(20).timestamp_micros(),
        signed: true,
        refused: false,
        view: PetitionerView::Agrees,
    });
    next.served_at = Some(at(20));
    next.extension_days = Some(30);
    next.version = 2;
    let req = |organ, id| RequestId {
        organ,
        method: "AcceptCase",
        id,
    };
    h.store
        .update(
            &next,
            &event(),
            Some(req("pingcheng.housing", "req-1")),
            at(3),
        )
        .await
        .unwrap();
    assert_eq!(h.store.get("1").await.unwrap().unwrap(), next);
    assert_eq!(
        h.store
            .applied_request(req("pingcheng.housing", "req-1"))
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    assert!(
        h.store
            .applied_request(req("pingcheng.hrss", "req-1"))
            .await
            .unwrap()
            .is_none(),
        "another organ's ids are its own"
    );
    // A writer that read version 1 loses.
    let mut stale = r.clone();
    stale.state = AssignmentState::Objected;
    stale.version = 2;
    assert!(matches!(
        h.store.update(&stale, &event(), None, at(3)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        h.outbox.pending().await.unwrap(),
        2,
        "no event for the lost write"
    );
}

/// The inbox query and `workflow::in_inbox` are two statements of one rule (what still needs
/// the holder): for every state in both modes they must agree.
async fn the_inbox_lists_exactly_what_still_needs_its_holder(h: Harness) {
    let mut expected = Vec::new();
    for (i, (state, mode)) in AssignmentState::ALL
        .iter()
        .flat_map(|s| HandlingMode::ALL.iter().map(move |m| (*s, *m)))
        .enumerate()
    {
        let mut r = record(&format!("{}", i + 1), "pingcheng.housing", state);
        r.mode = Some(mode);
        r.due_at = Some(at(20));
        insert(&h, &r).await;
        if petition_routing::workflow::in_inbox(&r) {
            expected.push(r.case_id.clone());
        }
    }
    let mut listed: Vec<String> = h
        .store
        .inbox(&InboxQuery {
            organ: "pingcheng.housing".into(),
            bucket: Bucket::All,
            now: at(3),
            category_prefix: None,
            hidden_accused: vec![],
            recused: None,
            after: None,
            limit: 100,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.case_id)
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    // to accept, accepted and diverted in either mode, and answered when assigned (交办): the
    // completion report is still owed
    assert_eq!(expected.len(), 7, "{expected:?}");
}

petition_testkit::dual_dialect!(open =>
    round_trips_with_its_event,
    the_inbox_lists_exactly_what_still_needs_its_holder,
    inboxes_filter_sort_and_page_in_sql,
    updates_are_optimistic_and_remember_request_ids_per_organ,
);
