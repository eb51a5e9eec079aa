//! One conformance suite for the intake store, run against PostgreSQL and SQLite: whatever one
//! dialect does, the other must do too.

use chrono::{DateTime, Duration, TimeZone, Utc};
use petition_auth::ListScope;
use petition_domain::{CaseStatus, Channel, IdType, Sex, StepKind, TypeOfMatter};
use petition_events::outbox::{EntryId, EventSink, OutboxRow, Published};
use petition_events::{BusError, OutboxMessage};
use petition_intake::registrar::Registrar;
use petition_intake::store::{
    CaseBody, CaseFilter, CaseKey, IntakeStore, NewCase, PageCursor, Registration, StepRecord,
    StoreError, StoredFlags, StoredPetitioner,
};
use petition_testkit::{StoreHarness, TestDb};
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

type Harness = StoreHarness<IntakeStore>;

async fn open(db: &TestDb) -> Harness {
    db.harness(
        "intake",
        &petition_intake::store::MIGRATOR,
        IntakeStore::new,
    )
    .await
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn petitioner(hash: &[u8]) -> StoredPetitioner {
    StoredPetitioner {
        name: "王建国".into(),
        id_type: Some(IdType::ResidentId),
        id_hash: Some(hash.to_vec()),
        id_number_sealed: Some(vec![1, 2, 3, 4]),
        phone_sealed: Some(vec![5, 6]),
        address_sealed: None,
        is_main: true,
        sex: Some(Sex::Male),
        age_band: Some("60-69".into()),
    }
}

fn case(organ: &str, region: &str, year: i32, received_at: DateTime<Utc>) -> NewCase {
    let id = Uuid::now_v7();
    NewCase {
        body: CaseBody {
            id,
            query_code: id.simple().to_string()[20..].to_uppercase(),
            channel: Channel::Visit,
            received_by: organ.into(),
            received_at,
            registered_at: received_at + Duration::minutes(5),
            registered_by: "clerk".into(),
            category: "01.01".into(),
            type_of_matter: TypeOfMatter::Grievance,
            diversion: None,
            problem_location: "140213001".into(),
            title: "逾期未办证".into(),
            content: "请求督促开发商办理不动产权证".into(),
            people_present: 1,
            people_affected: 320,
            representatives: 0,
            accused_name_sealed: None,
            accused_organ: None,
            source_system: None,
            external_ref: None,
            fingerprint: vec![0xAB; 32],
            competent_organ: Some("pingcheng.housing".into()),
            flags: StoredFlags {
                first_at_organ: true,
                ..Default::default()
            },
            status: CaseStatus::Registered,
        },
        register_region: region.into(),
        register_year: year,
        petitioners: vec![petitioner(b"hash-wang")],
        upstream: None,
    }
}

fn event(id: Uuid) -> petition_intake::store::EventBuilder {
    petition_intake::store::EventBuilder {
        event_id: id,
        build: std::sync::Arc::new(move |number: &str| OutboxMessage {
            event_id: id,
            stream: "petition.intake.v1".into(),
            payload: number.as_bytes().to_vec(),
            actor: Default::default(),
        }),
    }
}

async fn register(h: &Harness, c: NewCase) -> Result<String, StoreError> {
    h.store.register(c, event(Uuid::now_v7())).await
}

/// Collects what the relay publishes.
#[derive(Default)]
struct Sink(Mutex<Vec<OutboxRow>>);

#[async_trait::async_trait]
impl EventSink for Sink {
    async fn publish(
        &self,
        batch: &[OutboxRow],
        _: &HashMap<String, EntryId>,
    ) -> Result<Published, BusError> {
        self.0.lock().unwrap().extend_from_slice(batch);
        Ok(Published::Done(vec![None; batch.len()]))
    }
}

async fn round_trips_every_field(h: Harness) {
    let mut c = case("pingcheng.bureau", "140213", 2026, at(2, 1));
    c.body.diversion = Some(petition_domain::Diversion::Litigation);
    c.body.accused_name_sealed = Some(vec![9, 9, 9]);
    c.body.accused_organ = Some("pingcheng.street.beiguan".into());
    c.body.source_system = Some("datong.12345".into());
    c.body.external_ref = Some("DT-1".into());
    c.body.flags = StoredFlags {
        group: true,
        leapfrog: true,
        repeat: true,
        repeat_of_case_id: Some(Uuid::now_v7().to_string()),
        repeat_of_case_number: Some("140213-2026-000009".into()),
        repeat_of_open: true,
        first_at_organ: false,
        open_below_case_number: Some("140213-2026-000009".into()),
    };
    let mut second = petitioner(b"hash-li");
    second.is_main = false;
    second.address_sealed = Some(vec![7]);
    second.sex = None;
    c.petitioners.push(second);
    let number = register(&h, c.clone()).await.unwrap();
    assert_eq!(number, "140213-2026-000001");

    for key in [
        CaseKey::Id(c.body.id),
        CaseKey::Number(number.clone()),
        CaseKey::QueryCode(c.body.query_code.clone()),
    ] {
        let got = h.store.get_case(&key).await.unwrap().expect("found");
        assert_eq!(got.body, c.body, "every field as written");
        assert_eq!(got.case_number, number);
        assert_eq!(got.petitioners, c.petitioners);
        assert_eq!(got.status, CaseStatus::Registered);
        assert_eq!(got.holder, None);
        assert_eq!(got.steps.len(), 1, "the registration starts the timeline");
        assert_eq!(got.steps[0].kind, StepKind::Registered);
        assert_eq!(got.steps[0].at, c.body.registered_at);
    }
    assert!(
        h.store
            .get_case(&CaseKey::Number("140213-2026-000002".into()))
            .await
            .unwrap()
            .is_none()
    );
    let by_key = h
        .store
        .find_by_idempotency_key("datong.12345", "DT-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_key.body.id, c.body.id);
    assert!(
        h.store
            .find_by_idempotency_key("datong.12345", "DT-2")
            .await
            .unwrap()
            .is_none()
    );
}

async fn numbers_are_gapless_per_register_and_year(h: Harness) {
    let mut got = Vec::new();
    for (organ, region, year) in [
        ("pingcheng.bureau", "140213", 2026),
        ("pingcheng.bureau", "140213", 2026),
        ("datong.bureau", "140200", 2026),
        ("pingcheng.bureau", "140213", 2027),
        // Another organ of the district shares its register: no number is drawn twice.
        ("pingcheng.housing", "140213", 2026),
        ("pingcheng.bureau", "140213", 2026),
    ] {
        got.push(
            register(&h, case(organ, region, year, at(3, 2)))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        got,
        [
            "140213-2026-000001",
            "140213-2026-000002",
            "140200-2026-000001",
            "140213-2027-000001",
            "140213-2026-000003",
            "140213-2026-000004",
        ]
    );
}

async fn a_rejected_registration_leaves_no_gap_and_no_event(h: Harness) {
    let mut first = case("pingcheng.bureau", "140213", 2026, at(4, 1));
    first.body.source_system = Some("datong.12345".into());
    first.body.external_ref = Some("DT-7".into());
    register(&h, first.clone()).await.unwrap();
    let mut again = case("pingcheng.bureau", "140213", 2026, at(4, 2));
    again.body.source_system = first.body.source_system.clone();
    again.body.external_ref = first.body.external_ref.clone();
    assert!(matches!(
        register(&h, again).await,
        Err(StoreError::DuplicateKey)
    ));
    let next = register(&h, case("pingcheng.bureau", "140213", 2026, at(4, 3)))
        .await
        .unwrap();
    assert_eq!(next, "140213-2026-000002");
    assert_eq!(
        h.outbox.pending().await.unwrap(),
        2,
        "one event per committed case"
    );
}

fn registration(c: NewCase) -> Registration {
    Registration {
        case: c,
        event: event(Uuid::now_v7()),
    }
}

async fn a_batch_numbers_each_register_in_arrival_order(h: Harness) {
    register(&h, case("pingcheng.bureau", "140213", 2026, at(7, 1)))
        .await
        .unwrap();
    let batch = [
        case("pingcheng.bureau", "140213", 2026, at(7, 2)),
        case("datong.bureau", "140200", 2026, at(7, 2)),
        case("pingcheng.housing", "140213", 2026, at(7, 3)),
        case("pingcheng.bureau", "140213", 2026, at(7, 4)),
    ];
    let regs: Vec<Registration> = batch.iter().cloned().map(registration).collect();
    let numbers = h.store.register_all(&regs).await.unwrap();
    assert_eq!(
        numbers,
        [
            "140213-2026-000002",
            "140200-2026-000001",
            "140213-2026-000003",
            "140213-2026-000004",
        ]
    );
    for (c, number) in batch.iter().zip(&numbers) {
        let stored = h
            .store
            .get_case(&CaseKey::Id(c.body.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            &stored.case_number, number,
            "each case carries its own number"
        );
    }
    assert_eq!(h.outbox.pending().await.unwrap(), 5, "one event per case");
}

/// History comes numbered in the register of its year, with its final state, and the keys it
/// came under are found again, one by one, whatever else the source holds.
async fn imported_history_is_numbered_first_and_found_by_key(h: Harness) {
    let mut batch = Vec::new();
    for n in 0..3 {
        let mut c = case("datong.bureau", "140200", 2023, at(7, 2));
        c.body.source_system = Some("old-xf".into());
        c.body.external_ref = Some(format!("OLD-{n}"));
        c.body.status = CaseStatus::Closed;
        batch.push(c);
    }
    let regs: Vec<Registration> = batch.iter().cloned().map(registration).collect();
    let numbers = h.store.import_all(&regs).await.unwrap();
    assert_eq!(
        numbers,
        [
            "140200-2023-000001",
            "140200-2023-000002",
            "140200-2023-000003"
        ]
    );
    let stored = h
        .store
        .get_case(&CaseKey::Id(batch[1].body.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.case_number, "140200-2023-000002");
    assert_eq!(stored.status, CaseStatus::Closed);
    assert_eq!(h.outbox.pending().await.unwrap(), 3, "one event per case");
    let found = h
        .store
        .registered_refs("old-xf", &["OLD-2".into(), "OLD-9".into(), "OLD-0".into()])
        .await
        .unwrap();
    let mut found: Vec<String> = found.into_keys().collect();
    found.sort();
    assert_eq!(found, ["OLD-0", "OLD-2"]);
    assert!(
        h.store
            .registered_refs("another-system", &["OLD-0".into()])
            .await
            .unwrap()
            .is_empty()
    );
    // The same key again (a case of its own) is refused whole: nothing written, no number
    // drawn.
    let mut again = case("datong.bureau", "140200", 2023, at(7, 3));
    again.body.source_system = Some("old-xf".into());
    again.body.external_ref = Some("OLD-1".into());
    let refused = h.store.import_all(&[registration(again)]).await;
    assert!(
        matches!(refused, Err(StoreError::DuplicateKey)),
        "{refused:?}"
    );
    let next = h
        .store
        .import_all(&[registration(case(
            "datong.bureau",
            "140200",
            2023,
            at(7, 3),
        ))])
        .await
        .unwrap();
    assert_eq!(next, ["140200-2023-000004"]);
}

async fn a_failed_batch_writes_and_draws_nothing(h: Harness) {
    let mut first = case("pingcheng.bureau", "140213", 2026, at(8, 1));
    first.body.source_system = Some("datong.12345".into());
    first.body.external_ref = Some("DT-9".into());
    register(&h, first.clone()).await.unwrap();
    let mut again = case("pingcheng.bureau", "140213", 2026, at(8, 2));
    again.body.source_system = first.body.source_system.clone();
    again.body.external_ref = first.body.external_ref.clone();
    let good = case("pingcheng.bureau", "140213", 2026, at(8, 3));
    let regs = [registration(good.clone()), registration(again)];
    assert!(matches!(
        h.store.register_all(&regs).await,
        Err(StoreError::DuplicateKey)
    ));
    assert!(
        h.store
            .get_case(&CaseKey::Id(good.body.id))
            .await
            .unwrap()
            .is_none(),
        "the good case of the failed batch was not written"
    );
    let next = register(&h, case("pingcheng.bureau", "140213", 2026, at(8, 4)))
        .await
        .unwrap();
    assert_eq!(next, "140213-2026-000002", "no number was drawn for it");
    assert_eq!(h.outbox.pending().await.unwrap(), 2);
}

async fn the_registrar_batches_and_a_duplicate_fails_alone(h: Harness) {
    let mut first = case("pingcheng.bureau", "140213", 2026, at(9, 0));
    first.body.source_system = Some("datong.12345".into());
    first.body.external_ref = Some("DT-11".into());
    register(&h, first.clone()).await.unwrap();
    let registrar = Registrar::start(h.store.clone(), 64, petition_events::RelayWake::new());
    let calls: Vec<_> = (0..30u32)
        .map(|i| {
            let registrar = registrar.clone();
            let mut c = case("pingcheng.bureau", "140213", 2026, at(9, i % 20));
            if i == 17 {
                c.body.source_system = first.body.source_system.clone();
                c.body.external_ref = first.body.external_ref.clone();
            }
            tokio::spawn(async move { registrar.register(registration(c)).await })
        })
        .collect();
    let mut numbers = Vec::new();
    let mut duplicates = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(n) => numbers.push(n),
            Err(StoreError::DuplicateKey) => duplicates += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(duplicates, 1, "only the duplicate is refused");
    numbers.sort();
    let want: Vec<String> = (2..=30).map(|i| format!("140213-2026-{i:06}")).collect();
    assert_eq!(numbers, want, "the others, without a gap");
    assert_eq!(h.outbox.pending().await.unwrap(), 30);
}

async fn concurrent_registrations_draw_distinct_gapless_numbers(h: Harness) {
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = h.store.clone();
            tokio::spawn(async move {
                store
                    .register(
                        case("pingcheng.bureau", "140213", 2026, at(5, i % 20)),
                        event(Uuid::now_v7()),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    let want: Vec<String> = (1..=40).map(|i| format!("140213-2026-{i:06}")).collect();
    assert_eq!(numbers, want);
}

async fn the_outbox_relays_in_commit_order_once(h: Harness) {
    let mut numbers = Vec::new();
    for i in 0..5 {
        numbers.push(
            register(&h, case("pingcheng.bureau", "140213", 2026, at(6, i)))
                .await
                .unwrap(),
        );
    }
    let sink = Sink::default();
    let mut known = HashMap::new();
    let n = |p: Published| match p {
        Published::Done(ids) => ids.len(),
        Published::Lost { .. } => panic!("nothing is lost in process"),
    };
    assert_eq!(
        n(h.outbox.relay_once(&sink, 3, &mut known).await.unwrap()),
        3
    );
    assert_eq!(
        n(h.outbox.relay_once(&sink, 3, &mut known).await.unwrap()),
        2
    );
    assert_eq!(
        n(h.outbox.relay_once(&sink, 3, &mut known).await.unwrap()),
        0
    );
    let published: Vec<String> = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    assert_eq!(
        published, numbers,
        "the event was built with the drawn case number"
    );
    assert_eq!(h.outbox.pending().await.unwrap(), 0);
}

async fn prior_cases_match_person_and_matter(h: Harness) {
    let a = case("pingcheng.bureau", "140213", 2026, at(2, 1));
    register(&h, a.clone()).await.unwrap();
    let mut other_matter = case("pingcheng.bureau", "140213", 2026, at(2, 2));
    other_matter.body.category = "02.01".into();
    register(&h, other_matter).await.unwrap();
    let mut other_person = case("pingcheng.bureau", "140213", 2026, at(2, 3));
    other_person.petitioners = vec![petitioner(b"hash-zhao")];
    register(&h, other_person).await.unwrap();

    let priors = h
        .store
        .prior_cases(
            &[b"hash-wang".to_vec(), b"hash-nobody".to_vec()],
            "01.01",
            "140213001",
        )
        .await
        .unwrap();
    assert_eq!(priors.len(), 1);
    assert_eq!(priors[0].case_id, a.body.id.to_string());
    assert_eq!(priors[0].received_at, a.body.received_at);
    assert!(priors[0].open);
    assert!(
        h.store
            .prior_cases(&[], "01.01", "140213001")
            .await
            .unwrap()
            .is_empty()
    );
    let history = h
        .store
        .list_cases(
            &CaseFilter {
                petitioner: Some(vec![b"hash-wang".to_vec(), b"hash-wang-old-key".to_vec()]),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert!(
        history[0].body.received_at > history[1].body.received_at,
        "newest first"
    );
}

async fn lists_filter_scope_and_page(h: Harness) {
    let mut ids = Vec::new();
    for i in 0..8u32 {
        let (organ, region) = if i < 5 {
            ("pingcheng.bureau", "140213")
        } else {
            ("datong.bureau", "140200")
        };
        let mut c = case(organ, region, 2026, at(10, i));
        c.body.flags.group = i % 2 == 0;
        c.body.category = if i == 3 { "02.01" } else { "01.01" }.into();
        c.body.channel = if i == 4 {
            Channel::Letter
        } else {
            Channel::Visit
        };
        if i == 7 {
            // An accusation against the district bureau.
            c.body.type_of_matter = TypeOfMatter::Accusation;
            c.body.accused_organ = Some("pingcheng.bureau".into());
        }
        ids.push(c.body.id);
        register(&h, c).await.unwrap();
    }
    let all = |f: CaseFilter| {
        let store = h.store.clone();
        async move {
            let mut out = Vec::new();
            let mut after = None;
            loop {
                let page = store.list_cases(&f, after, 2).await.unwrap();
                if page.is_empty() {
                    return out;
                }
                after = page.last().map(|c| PageCursor {
                    received_at: c.body.received_at,
                    id: c.body.id,
                });
                out.extend(page.into_iter().map(|c| c.body.id));
            }
        }
    };
    let everything = all(CaseFilter::default()).await;
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(everything, newest_first);

    let scope = |organs: &[&str], hidden: &[&str]| CaseFilter {
        scope: ListScope {
            organs: Some(organs.iter().map(|s| s.to_string()).collect()),
            hidden_accused: hidden.iter().map(|s| s.to_string()).collect(),
            ..ListScope::default()
        },
        ..Default::default()
    };
    assert_eq!(all(scope(&["pingcheng.bureau"], &[])).await.len(), 5);
    assert!(all(scope(&[], &[])).await.is_empty());
    // Art. 30 ¶3: the city sees its own three, but not the accusation against the district
    // bureau when the district bureau is on its side.
    let city = all(scope(&["datong.bureau"], &["pingcheng.bureau"])).await;
    assert_eq!(city, vec![ids[6], ids[5]]);
    // The holder reads what it holds.
    step_in(
        &h,
        &ids[0].to_string(),
        &StepRecord {
            event_id: Uuid::now_v7().to_string(),
            at: at(11, 1),
            kind: StepKind::Routed,
            organ: "pingcheng.housing".into(),
            note: "competent".into(),
            public_note: String::new(),
            bureau: Some("pingcheng.bureau".into()),
        },
    )
    .await;
    assert_eq!(all(scope(&["pingcheng.housing"], &[])).await, vec![ids[0]]);
    // 回避: a member of staff out of case 0 lists the rest, and reads it no more.
    let mut tx = h.db.begin().await.unwrap();
    let zero = ids[0].to_string();
    petition_storage::recusals::record(&mut tx, &zero, "clerk.li", "relative", at(11, 2))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut li = scope(&["pingcheng.bureau"], &[]);
    li.scope.recused = Some("clerk.li".into());
    assert_eq!(all(li).await.len(), 4);
    let read = h
        .store
        .get_case(&CaseKey::Id(ids[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.recused, ["clerk.li"]);
    let mut upstream = CaseFilter::default();
    upstream.scope.source_system = Some("datong.12345".into());
    assert!(all(upstream).await.is_empty());
    let mut analyst = CaseFilter::default();
    analyst.scope.nothing = true;
    assert!(all(analyst).await.is_empty());

    let groups = all(CaseFilter {
        only_group: true,
        ..Default::default()
    })
    .await;
    assert_eq!(groups.len(), 4);
    let labour = all(CaseFilter {
        category_prefix: Some("02".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(labour, vec![ids[3]]);
    let letters = all(CaseFilter {
        channel: Some(Channel::Letter),
        ..Default::default()
    })
    .await;
    assert_eq!(letters, vec![ids[4]]);
    let window = all(CaseFilter {
        received_from: Some(at(10, 2)),
        received_to: Some(at(10, 4)),
        ..Default::default()
    })
    .await;
    assert_eq!(window, vec![ids[3], ids[2]]);
    let from_district = all(CaseFilter {
        received_by: Some("datong.bureau".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(from_district.len(), 3);
}

async fn steps_apply_once_and_late_ones_do_not_turn_the_clock_back(h: Harness) {
    let c = case("pingcheng.bureau", "140213", 2026, at(2, 1));
    let id = c.body.id.to_string();
    register(&h, c).await.unwrap();
    let step = |kind: StepKind, organ: &str, hour: u32| StepRecord {
        event_id: Uuid::now_v7().to_string(),
        at: at(3, hour),
        kind,
        organ: organ.into(),
        note: format!("{kind}"),
        public_note: String::new(),
        bureau: None,
    };
    let routed = step(StepKind::Routed, "pingcheng.housing", 1);
    let accepted = step(StepKind::Accepted, "pingcheng.housing", 2);
    let answered = step(StepKind::Answered, "pingcheng.housing", 5);
    assert!(step_in(&h, &id, &routed).await);
    assert!(step_in(&h, &id, &answered).await);
    // Delivered late, and delivered twice (past the consumer's processed mark, as a step
    // published twice under two event ids would not be, but a replayed one could).
    assert!(step_in(&h, &id, &accepted).await);
    assert!(!step_in(&h, &id, &accepted).await);
    let got = h
        .store
        .get_case(&CaseKey::Id(Uuid::parse_str(&id).unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.status, CaseStatus::Answered, "the newest step wins");
    assert_eq!(got.holder.as_deref(), Some("pingcheng.housing"));
    let kinds: Vec<StepKind> = got.steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            StepKind::Registered,
            StepKind::Routed,
            StepKind::Accepted,
            StepKind::Answered
        ],
        "the timeline is in the order things happened"
    );
    // A step of a case this intake does not hold is remembered and ignored.
    let stranger = step(StepKind::Routed, "pingcheng.hrss", 1);
    assert!(!step_in(&h, &Uuid::now_v7().to_string(), &stranger).await);
}

/// A step recorded in its own transaction, as the consumer does in its batch's.
async fn step_in(h: &Harness, case_id: &str, step: &StepRecord) -> bool {
    let mut tx = h.db.begin().await.unwrap();
    let applied = IntakeStore::apply_step(&mut tx, case_id, step)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    applied
}

petition_testkit::dual_dialect!(open =>
    round_trips_every_field,
    numbers_are_gapless_per_register_and_year,
    a_rejected_registration_leaves_no_gap_and_no_event,
    concurrent_registrations_draw_distinct_gapless_numbers,
    a_batch_numbers_each_register_in_arrival_order,
    a_failed_batch_writes_and_draws_nothing,
    imported_history_is_numbered_first_and_found_by_key,
    the_registrar_batches_and_a_duplicate_fails_alone,
    the_outbox_relays_in_commit_order_once,
    prior_cases_match_person_and_matter,
    lists_filter_scope_and_page,
    steps_apply_once_and_late_ones_do_not_turn_the_clock_back,
);
