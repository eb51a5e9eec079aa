//! One conformance suite for the intake store, run against PostgreSQL and SQLite: whatever one
//! dialect does, the other must do too.

use chrono::{DateTime, Duration, TimeZone, Utc};
use petition_events::outbox::{EventSink, Outbox, OutboxRow};
use petition_events::{BusError, OutboxMessage};
use petition_intake::store::{
    CaseFilter, CaseKey, IntakeStore, NewCase, PageCursor, PgIntakeStore, SqliteIntakeStore,
    StoreError, StoredFlags, StoredPetitioner,
};
use petition_testkit::TestDatabase;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

struct Harness {
    store: Arc<dyn IntakeStore>,
    outbox: Arc<dyn Outbox>,
    _db: Option<TestDatabase>,
    _dir: Option<tempfile::TempDir>,
}

async fn postgres() -> Option<Harness> {
    let db = TestDatabase::create().await?;
    let pool = petition_storage::connect_postgres(&db.url, "intake", 8)
        .await
        .unwrap();
    let (store, outbox) = PgIntakeStore::open(pool).await.unwrap();
    Some(Harness {
        store: Arc::new(store),
        outbox: Arc::new(outbox),
        _db: Some(db),
        _dir: None,
    })
}

async fn sqlite() -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/intake.db", dir.path().display());
    let pool = petition_storage::connect_sqlite(&url).await.unwrap();
    let (store, outbox) = SqliteIntakeStore::open(pool).await.unwrap();
    Some(Harness {
        store: Arc::new(store),
        outbox: Arc::new(outbox),
        _db: None,
        _dir: Some(dir),
    })
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn petitioner(hash: &[u8]) -> StoredPetitioner {
    StoredPetitioner {
        name: "王建国".into(),
        id_type: Some("resident_id".into()),
        id_hash: Some(hash.to_vec()),
        id_number_sealed: Some(vec![1, 2, 3, 4]),
        phone_sealed: Some(vec![5, 6]),
        address_sealed: None,
        is_main: true,
        sex: Some("male".into()),
        age_band: Some("60-69".into()),
    }
}

fn case(organ: &str, region: &str, year: i32, received_at: DateTime<Utc>) -> NewCase {
    let id = Uuid::now_v7();
    NewCase {
        id,
        query_code: id.simple().to_string()[20..].to_uppercase(),
        channel: "visit".into(),
        received_by: organ.into(),
        register_region: region.into(),
        register_year: year,
        received_at,
        registered_at: received_at + Duration::minutes(5),
        registered_by: "clerk".into(),
        category: "01.01".into(),
        type_of_matter: "grievance".into(),
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
        petitioners: vec![petitioner(b"hash-wang")],
    }
}

fn event(id: Uuid) -> petition_intake::store::EventBuilder {
    Box::new(move |number: &str| OutboxMessage {
        event_id: id,
        stream: "petition.intake.v1".into(),
        payload: number.as_bytes().to_vec(),
    })
}

async fn register(h: &Harness, c: NewCase) -> Result<String, StoreError> {
    h.store.register(c, event(Uuid::now_v7())).await
}

/// Collects what the relay publishes.
#[derive(Default)]
struct Sink(Mutex<Vec<OutboxRow>>);

#[async_trait::async_trait]
impl EventSink for Sink {
    async fn publish(&self, batch: &[OutboxRow]) -> Result<(), BusError> {
        self.0.lock().unwrap().extend_from_slice(batch);
        Ok(())
    }
}

async fn round_trips_every_field(h: Harness) {
    let mut c = case("pingcheng.bureau", "140213", 2026, at(2, 1));
    c.diversion = Some("litigation".into());
    c.accused_name_sealed = Some(vec![9, 9, 9]);
    c.accused_organ = Some("pingcheng.street.beiguan".into());
    c.source_system = Some("datong.12345".into());
    c.external_ref = Some("DT-1".into());
    c.flags = StoredFlags {
        group: true,
        leapfrog: true,
        repeat: true,
        repeat_of_case_id: Some(Uuid::now_v7()),
        repeat_of_case_number: Some("140213-2026-000009".into()),
        first_at_organ: false,
        open_below_case_number: Some("140213-2026-000009".into()),
    };
    let mut second = petitioner(b"hash-li");
    second.is_main = false;
    second.address_sealed = Some(vec![7]);
    c.petitioners.push(second);
    let number = register(&h, c.clone()).await.unwrap();
    assert_eq!(number, "140213-2026-000001");

    for key in [
        CaseKey::Id(c.id),
        CaseKey::Number(number.clone()),
        CaseKey::QueryCode(c.query_code.clone()),
    ] {
        let got = h.store.get_case(&key).await.unwrap().expect("found");
        assert_eq!(got.id, c.id);
        assert_eq!(got.case_number, number);
        assert_eq!(got.received_at, c.received_at);
        assert_eq!(got.registered_at, c.registered_at);
        assert_eq!(got.flags, c.flags);
        assert_eq!(got.petitioners, c.petitioners);
        assert_eq!(got.accused_name_sealed, c.accused_name_sealed);
        assert_eq!(got.accused_organ, c.accused_organ);
        assert_eq!(got.diversion.as_deref(), Some("litigation"));
        assert_eq!(got.fingerprint, c.fingerprint);
        assert_eq!(got.status, "registered");
        assert_eq!(got.people_affected, 320);
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
    assert_eq!(by_key.id, c.id);
    assert!(
        h.store
            .find_by_idempotency_key("datong.12345", "DT-2")
            .await
            .unwrap()
            .is_none()
    );
}

async fn numbers_are_gapless_per_organ_and_year(h: Harness) {
    let mut got = Vec::new();
    for (organ, region, year) in [
        ("pingcheng.bureau", "140213", 2026),
        ("pingcheng.bureau", "140213", 2026),
        ("datong.bureau", "140200", 2026),
        ("pingcheng.bureau", "140213", 2027),
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
        ]
    );
}

async fn a_rejected_registration_leaves_no_gap_and_no_event(h: Harness) {
    let mut first = case("pingcheng.bureau", "140213", 2026, at(4, 1));
    first.source_system = Some("datong.12345".into());
    first.external_ref = Some("DT-7".into());
    register(&h, first.clone()).await.unwrap();
    let mut again = case("pingcheng.bureau", "140213", 2026, at(4, 2));
    again.source_system = first.source_system.clone();
    again.external_ref = first.external_ref.clone();
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

async fn concurrent_registrations_draw_distinct_gapless_numbers(h: Harness) {
    let store = h.store.clone();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
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
    assert_eq!(h.outbox.relay_once(&sink, 3).await.unwrap(), 3);
    assert_eq!(h.outbox.relay_once(&sink, 3).await.unwrap(), 2);
    assert_eq!(h.outbox.relay_once(&sink, 3).await.unwrap(), 0);
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
    other_matter.category = "02.01".into();
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
    assert_eq!(priors[0].case_id, a.id.to_string());
    assert_eq!(priors[0].received_at, a.received_at);
    assert!(priors[0].open);
    assert!(
        h.store
            .prior_cases(&[], "01.01", "140213001")
            .await
            .unwrap()
            .is_empty()
    );
    let history = h.store.cases_of_petitioner(b"hash-wang").await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(
        history[0].received_at > history[1].received_at,
        "newest first"
    );
}

async fn lists_filter_and_page(h: Harness) {
    let mut ids = Vec::new();
    for i in 0..7u32 {
        let (organ, region) = if i < 5 {
            ("pingcheng.bureau", "140213")
        } else {
            ("datong.bureau", "140200")
        };
        let mut c = case(organ, region, 2026, at(10, i));
        c.flags.group = i % 2 == 0;
        c.category = if i == 3 {
            "02.01".into()
        } else {
            "01.01".into()
        };
        c.channel = if i == 4 {
            "letter".into()
        } else {
            "visit".into()
        };
        ids.push(c.id);
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
                    received_at: c.received_at,
                    id: c.id,
                });
                out.extend(page.into_iter().map(|c| c.id));
            }
        }
    };
    let everything = all(CaseFilter::default()).await;
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(everything, newest_first);

    let district = all(CaseFilter {
        received_by_any: Some(vec!["pingcheng.bureau".into()]),
        ..Default::default()
    })
    .await;
    assert_eq!(district.len(), 5);
    let nobody = all(CaseFilter {
        received_by_any: Some(vec![]),
        ..Default::default()
    })
    .await;
    assert!(nobody.is_empty());
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
        channel: Some("letter".into()),
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
    round_trips_every_field,
    numbers_are_gapless_per_organ_and_year,
    a_rejected_registration_leaves_no_gap_and_no_event,
    concurrent_registrations_draw_distinct_gapless_numbers,
    the_outbox_relays_in_commit_order_once,
    prior_cases_match_person_and_matter,
    lists_filter_and_page,
);
