//! Analytics against generated histories with known answers, on PostgreSQL + Redis and on the
//! embedded default (SQLite, in-process bus): every figure the service computes from the events
//! must equal the figure this test computes from the generator's own record, by its own
//! arithmetic (Beijing months as UTC+8, rates as plain counts). Then a rebuild must reproduce
//! the incrementally kept read models exactly, and a second delivery of every event must change
//! nothing.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use petition_analytics::{Analytics, AnalyticsConfig};
use petition_auth::{Principal, Role};
use petition_events::{EventSink, OutboxRow, RedisSink};
use petition_proto::v1::{self as pb, analytics_service_client::AnalyticsServiceClient};
use petition_simulate::{Config, Route, Simulator, Spike, Truth, beijing_month};
use petition_storage::Db;
use petition_testkit::grpc::{bearer, connect, who};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type Client = AnalyticsServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        petition_testkit::grpc::Bearer,
    >,
>;

fn now() -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn history() -> Vec<petition_simulate::CaseHistory> {
    Simulator::new(Config {
        seed: 20261127,
        first_month: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        months: 23,
        per_month: 90,
        now: now(),
        spikes: vec![Spike {
            month: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            category: "01.04",
            location: "140213002",
            cases: 14,
        }],
    })
    .cases()
    .collect()
}

struct Running {
    running: petition_host::Running,
    url: String,
    sink: Arc<dyn EventSink>,
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

async fn on_postgres_and_redis() -> Option<Running> {
    let db = petition_testkit::TestDatabase::create().await?;
    let redis = petition_testkit::TestRedis::create().await?;
    let mut cfg = AnalyticsConfig::new(&db.url);
    cfg.host.listen = "127.0.0.1:0".parse().unwrap();
    cfg.host.dev = true;
    cfg.host.pg_max_connections = 4;
    cfg.host.redis_url = Some(redis.url.clone());
    cfg.host.stream_prefix = redis.prefix.clone();
    let clock = Arc::new(petition_domain::FixedClock::new(now()));
    let running = cfg.start(None, clock).await.expect("analytics starts");
    Some(Running {
        running,
        url: db.url.clone(),
        sink: Arc::new(RedisSink::new(redis.client(), &redis.prefix)),
        _keep: vec![Box::new(db), Box::new(redis)],
    })
}

async fn embedded() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AnalyticsConfig {
        host: petition_host::HostConfig::new("analytics"),
        service: Analytics::default(),
    };
    cfg.host.listen = "127.0.0.1:0".parse().unwrap();
    cfg.host.dev = true;
    cfg.host.data_dir = dir.path().to_owned();
    let url = cfg.host.database_url_for(petition_analytics::SCHEMA);
    let bus = petition_events::InProcessBus::new();
    let clock = Arc::new(petition_domain::FixedClock::new(now()));
    let running = cfg
        .start(Some(bus.clone()), clock)
        .await
        .expect("analytics starts");
    Running {
        running,
        url,
        sink: bus,
        _keep: vec![Box::new(dir)],
    }
}

async fn publish(sink: &dyn EventSink, histories: &[petition_simulate::CaseHistory]) -> usize {
    let rows: Vec<OutboxRow> = histories
        .iter()
        .flat_map(|h| &h.events)
        .enumerate()
        .map(|(i, (stream, e))| OutboxRow {
            seq: i as i64,
            event_id: e.event_id.parse().unwrap(),
            stream: stream.as_str().to_owned(),
            payload: e.encode_to_vec(),
        })
        .collect();
    for chunk in rows.chunks(500) {
        sink.publish(chunk, &HashMap::new()).await.expect("publish");
    }
    rows.len()
}

async fn wait_for_events(url: &str, n: usize) {
    let db = Db::connect(url, petition_analytics::SCHEMA, 1)
        .await
        .unwrap();
    let store = petition_analytics::store::AnalyticsStore::new(db);
    for _ in 0..600 {
        let (events, _) = store.counts().await.unwrap_or((0, 0));
        if events as usize == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("analytics did not take in {n} events within 30 s");
}

async fn client(r: &Running, p: &Principal) -> Client {
    AnalyticsServiceClient::with_interceptor(
        connect(r.running.grpc_addr).await,
        bearer(&r.running.token_keys, p),
    )
}

/// The CSV export of a period, on the petition date, as the caller sees it.
async fn export(c: &mut Client, period: &str) -> String {
    let mut stream = c
        .export_cases(pb::ExportCasesRequest {
            period: period.into(),
            organ: String::new(),
            basis: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut csv = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        csv.extend(chunk.data);
    }
    String::from_utf8(csv).unwrap()
}

/// 积案 by the rule analytics documents: open, and past the handling limit, flagged by hand,
/// or repeated three times or more (by `repeats`, the repeats counted per case).
fn in_backlog(t: &Truth, repeats: &BTreeMap<String, u64>) -> bool {
    t.is_open()
        && ((t.answered_at.is_none() && t.handling_due.is_some_and(|d| d < now()))
            || t.backlog_flag
            || repeats.get(&t.case_id).copied().unwrap_or(0) >= 3)
}

/// The months of a period, as (year, month) pairs.
fn months_of(first: (i32, u32), n: u32) -> Vec<(i32, u32)> {
    (0..n)
        .map(|i| {
            let m0 = first.0 * 12 + first.1 as i32 - 1 + i as i32;
            (m0.div_euclid(12), m0.rem_euclid(12) as u32 + 1)
        })
        .collect()
}

fn in_months(t: DateTime<Utc>, months: &[(i32, u32)]) -> bool {
    months.contains(&beijing_month(t))
}

/// The district's organs: every id of the sample tree under Pingcheng.
fn pingcheng(o: &str) -> bool {
    o.starts_with("pingcheng.")
}

fn count(cases: &[&Truth], f: impl Fn(&Truth) -> bool) -> u64 {
    cases.iter().filter(|t| f(t)).count() as u64
}

fn share_counts(shares: &[pb::Share]) -> BTreeMap<String, u64> {
    shares.iter().map(|s| (s.key.clone(), s.cases)).collect()
}

fn tally<K: Ord>(cases: &[&Truth], key: impl Fn(&Truth) -> Option<K>) -> BTreeMap<K, u64> {
    let mut m = BTreeMap::new();
    for t in cases {
        if let Some(k) = key(t) {
            *m.entry(k).or_default() += 1;
        }
    }
    m
}

fn check_situation(
    s: &pb::Situation,
    all: &[&Truth],
    period: &[(i32, u32)],
    prev: &[(i32, u32)],
    ago: &[(i32, u32)],
) {
    let of = |months: &[(i32, u32)]| -> Vec<&Truth> {
        all.iter()
            .copied()
            .filter(|t| in_months(t.received_at, months))
            .collect()
    };
    let (now, before, year_ago) = (of(period), of(prev), of(ago));
    let fig = |f: &Option<pb::Figure>| f.unwrap();
    let online = |t: &Truth| t.channel == petition_domain::Channel::Online;
    assert_eq!(
        fig(&s.cases),
        pb::Figure {
            count: now.len() as u64,
            previous: before.len() as u64,
            year_ago: year_ago.len() as u64
        },
        "件次"
    );
    let persons = |c: &[&Truth]| c.iter().map(|t| u64::from(t.persons())).sum::<u64>();
    assert_eq!(
        fig(&s.persons),
        pb::Figure {
            count: persons(&now),
            previous: persons(&before),
            year_ago: persons(&year_ago)
        },
        "人次"
    );
    assert_eq!(fig(&s.online).count, count(&now, online), "online");
    assert_eq!(fig(&s.online).year_ago, count(&year_ago, online));
    let share = count(&now, online) as f64 / now.len() as f64;
    assert!((s.online_share - share).abs() < 1e-12, "网信占比");
    assert_eq!(
        fig(&s.leapfrog).count,
        count(&now, |t| t.leapfrog),
        "越级访"
    );
    assert_eq!(fig(&s.leapfrog).previous, count(&before, |t| t.leapfrog));
    assert_eq!(fig(&s.group).count, count(&now, |t| t.group), "集体访");
    assert_eq!(
        fig(&s.repeat).count,
        count(&now, |t| t.repeat_of.is_some()),
        "重复信访"
    );
    assert_eq!(
        share_counts(&s.by_channel),
        tally(&now, |t| Some(t.channel.as_str().to_owned())),
        "by channel"
    );
    assert_eq!(
        share_counts(&s.by_category_l1),
        tally(&now, |t| Some(t.category[..2].to_owned())),
        "by category, level 1"
    );
    assert_eq!(
        share_counts(&s.by_category_l2),
        tally(&now, |t| (t.category.len() == 5)
            .then(|| t.category.clone())),
        "by category, level 2"
    );
    assert_eq!(
        share_counts(&s.by_location),
        tally(&now, |t| Some(t.location.clone())),
        "by location"
    );
    assert_eq!(
        share_counts(&s.by_level),
        tally(&now, |t| Some(
            match t.received_by.as_str() {
                "shanxi.bureau" => "province",
                "datong.bureau" => "city",
                _ => "district",
            }
            .to_owned()
        )),
        "by registering level"
    );
    assert_eq!(
        share_counts(&s.by_sex),
        tally(&now, |t| Some(
            if t.male { "male" } else { "female" }.to_owned()
        )),
        "by sex"
    );
    assert_eq!(
        share_counts(&s.by_age_band),
        tally(&now, |t| Some(t.age_band.to_owned())),
        "by age band"
    );
    // top ten: the ten largest, each with its own count
    let organs = tally(&now, |t| t.organ.clone());
    let mut top: Vec<(String, u64)> = organs.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(10);
    let got: Vec<(String, u64)> = s
        .most_complained
        .iter()
        .map(|x| (x.key.clone(), x.cases))
        .collect();
    assert_eq!(got, top, "most complained");
    let route = |r: Route| count(&now, move |t| t.route == Some(r));
    assert_eq!(
        (s.forwarded, s.assigned, s.diverted, s.linked),
        (
            route(Route::Forward),
            route(Route::Assign),
            route(Route::Diverted),
            route(Route::Linked)
        ),
        "forwarded, assigned, diverted, linked"
    );
    assert_eq!(s.urged, count(&now, |t| t.urged), "urged");
    assert_eq!(s.supervised, count(&now, |t| t.supervised), "supervised");
}

/// A rate as (numerator, denominator).
fn nd(r: &Option<pb::Rate>) -> (u64, u64) {
    let r = r.unwrap();
    (r.numerator, r.denominator)
}

fn check_scorecards(
    cards: &pb::Scorecards,
    all: &[&Truth],
    period: &[(i32, u32)],
    basis_of: impl Fn(&Truth) -> Option<DateTime<Utc>>,
) {
    let now = now();
    let cases: Vec<&Truth> = all
        .iter()
        .copied()
        .filter(|t| basis_of(t).is_some_and(|at| in_months(at, period)))
        .collect();
    let overdue = |t: &Truth| {
        t.is_open() && t.answered_at.is_none() && t.handling_due.is_some_and(|d| d < now)
    };
    let mut checked = 0;
    for c in &cards.organs {
        let mine: Vec<&Truth> = cases
            .iter()
            .copied()
            .filter(|t| t.organ.as_deref() == Some(c.organ.as_str()))
            .collect();
        assert_eq!(c.cases, mine.len() as u64, "{} cases", c.organ);
        assert_eq!(
            nd(&c.timely_acceptance),
            (
                count(&mine, |t| t.accepted_timely == Some(true)),
                count(&mine, |t| t.accepted_at.is_some()
                    || (t.unaccepted_late && t.is_open()))
            ),
            "{} 及时受理率",
            c.organ
        );
        let answered = |t: &Truth| t.answered_at.is_some();
        assert_eq!(
            nd(&c.on_time_completion),
            (
                count(&mine, |t| t
                    .answered_at
                    .zip(t.handling_due)
                    .is_some_and(|(a, d)| a <= d)),
                count(&mine, |t| answered(t) || overdue(t))
            ),
            "{} 按期办结率",
            c.organ
        );
        assert_eq!(
            nd(&c.rated),
            (count(&mine, |t| t.rating.is_some()), count(&mine, answered)),
            "{} 参评率",
            c.organ
        );
        assert_eq!(
            nd(&c.satisfied),
            (
                count(&mine, |t| t.rating.is_some_and(|(_, o)| o.is_satisfied())),
                count(&mine, |t| t.rating.is_some())
            ),
            "{} 满意率",
            c.organ
        );
        assert_eq!(
            nd(&c.repeat),
            (count(&mine, |t| t.repeat_of.is_some()), mine.len() as u64),
            "{} 重复信访率",
            c.organ
        );
        assert_eq!(
            nd(&c.leader_resolution),
            (
                count(&mine, |t| t.leader && t.resolved),
                count(&mine, |t| t.leader)
            ),
            "{} 包案化解率",
            c.organ
        );
        checked += 1;
    }
    let organs = tally(&cases, |t| t.organ.clone());
    assert_eq!(checked, organs.len(), "a card for every responsible organ");
    for c in &cards.bureaux {
        let mine: Vec<&Truth> = cases
            .iter()
            .copied()
            .filter(|t| t.received_by == c.organ)
            .collect();
        assert_eq!(c.cases, mine.len() as u64, "{} cases", c.organ);
        let sent = |t: &Truth| matches!(t.route, Some(Route::Forward | Route::Assign));
        assert_eq!(
            nd(&c.timely_acceptance),
            (
                count(&mine, |t| t.routed_timely == Some(true)),
                count(&mine, |t| sent(t) || (t.unrouted_late && t.is_open()))
            ),
            "{} 及时受理率 (routed within 15 days)",
            c.organ
        );
        assert_eq!(
            nd(&c.satisfied),
            (
                count(&mine, |t| t.rating.is_some_and(|(b, _)| b.is_satisfied())),
                count(&mine, |t| t.rating.is_some())
            ),
            "{} 满意率 (of the bureau)",
            c.organ
        );
        assert_eq!(
            nd(&c.on_time_completion).1,
            count(&mine, |t| t.answered_at.is_some() || overdue(t)),
            "{} 按期办结率 denominator",
            c.organ
        );
    }
    assert_eq!(
        cards.bureaux.len(),
        tally(&cases, |t| Some(t.received_by.clone())).len()
    );
}

async fn figures_equal_the_record(r: Running) {
    let histories = history();
    let truth: Vec<&Truth> = histories.iter().map(|h| &h.truth).collect();
    assert!(truth.len() > 1500, "a history of {} cases", truth.len());
    // every kind of case the rates tell apart is in the history
    let some = |what: &str, f: &dyn Fn(&Truth) -> bool| {
        let n = truth.iter().filter(|t| f(t)).count();
        assert!(n > 0, "no case {what} in the history");
    };
    some("routed late", &|t| t.routed_timely == Some(false));
    some("left unrouted past the limit", &|t| t.unrouted_late);
    some("accepted late", &|t| t.accepted_timely == Some(false));
    some("left unaccepted past the limit", &|t| t.unaccepted_late);
    some("answered late", &|t| {
        t.answered_at
            .zip(t.handling_due)
            .is_some_and(|(a, d)| a > d)
    });
    some("overdue and open", &|t| {
        t.is_open() && t.answered_at.is_none() && t.handling_due.is_some_and(|d| d < now())
    });
    some("extended", &|t| t.extended);
    some("rated dissatisfied", &|t| {
        t.rating
            .is_some_and(|(b, o)| !b.is_satisfied() || !o.is_satisfied())
    });
    some("owned by a leader and resolved", &|t| {
        t.leader && t.resolved
    });
    some("registered on the 1st at 00:10 Beijing", &|t| {
        (t.received_at + Duration::hours(8))
            .format("%d %H:%M")
            .to_string()
            == "01 00:10"
    });
    some("diverted", &|t| t.route == Some(Route::Diverted));
    some("linked", &|t| t.route == Some(Route::Linked));
    let n = publish(r.sink.as_ref(), &histories).await;
    wait_for_events(&r.url, n).await;

    // an admin of the province: no accusation in the history is against its chain
    let admin = who("shanxi.bureau", Role::Admin);
    let mut c = client(&r, &admin).await;
    let q3 = months_of((2026, 7), 3);
    let s = c
        .get_situation(pb::SituationRequest {
            period: "2026-Q3".into(),
            organ: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    check_situation(
        &s,
        &truth,
        &q3,
        &months_of((2026, 4), 3),
        &months_of((2025, 7), 3),
    );

    // The district bureau's leader: cases registered by or the responsibility of an organ of
    // the district, without the accusations against the bureau itself (Art. 30 ¶3).
    let leader = who("pingcheng.bureau", Role::Leader);
    let mut l = client(&r, &leader).await;
    let s = l
        .get_situation(pb::SituationRequest {
            period: "2026".into(),
            organ: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let district: Vec<&Truth> = truth
        .iter()
        .copied()
        .filter(|t| pingcheng(&t.received_by) || t.organ.as_deref().is_some_and(pingcheng))
        .filter(|t| t.accused.as_deref() != Some("pingcheng.bureau"))
        .collect();
    assert!(
        truth
            .iter()
            .any(|t| t.accused.as_deref() == Some("pingcheng.bureau")),
        "the history holds accusations against the bureau"
    );
    check_situation(
        &s,
        &district,
        &months_of((2026, 1), 12),
        &months_of((2025, 1), 12),
        &months_of((2025, 1), 12),
    );

    // Scorecards on each date basis.
    for (basis, of) in [
        (
            pb::DateBasis::Petition,
            (|t: &Truth| Some(t.received_at)) as fn(&Truth) -> Option<DateTime<Utc>>,
        ),
        (pb::DateBasis::Registration, |t: &Truth| {
            Some(t.registered_at)
        }),
        (pb::DateBasis::Exchange, |t: &Truth| t.routed_at),
    ] {
        let cards = c
            .get_scorecards(pb::ScorecardsRequest {
                period: "2026".into(),
                organ: String::new(),
                basis: basis as i32,
            })
            .await
            .unwrap()
            .into_inner();
        check_scorecards(&cards, &truth, &months_of((2026, 1), 12), of);
    }

    // The trend: twelve months to October 2026.
    let trend = c
        .get_trend(pb::TrendRequest {
            last_month: "2026-10".into(),
            months: 12,
            organ: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(trend.points.len(), 12);
    for (p, m) in trend.points.iter().zip(months_of((2025, 11), 12)) {
        let mine: Vec<&Truth> = truth
            .iter()
            .copied()
            .filter(|t| beijing_month(t.received_at) == m)
            .collect();
        assert_eq!(p.month, format!("{:04}-{:02}", m.0, m.1));
        assert_eq!(
            (p.cases, p.online, p.leapfrog, p.group, p.repeat),
            (
                mine.len() as u64,
                count(&mine, |t| t.channel == petition_domain::Channel::Online),
                count(&mine, |t| t.leapfrog),
                count(&mine, |t| t.group),
                count(&mine, |t| t.repeat_of.is_some())
            ),
            "{}",
            p.month
        );
    }

    // Hot spots of October 2026, by the documented rule computed here.
    let hot = c
        .detect_hotspots(pb::HotspotsRequest {
            month: "2026-10".into(),
            organ: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut cells: BTreeMap<(String, String), [u64; 13]> = BTreeMap::new();
    for t in &truth {
        let l2 = t.category.get(..5).unwrap_or(&t.category).to_owned();
        let (y, m) = beijing_month(t.received_at);
        let i = (y * 12 + m as i32) - (2025 * 12 + 10);
        if (0..13).contains(&i) {
            cells.entry((l2, t.location.clone())).or_default()[i as usize] += 1;
        }
    }
    let mut expected = Vec::new();
    for ((cat, loc), v) in &cells {
        let mean = v[..12].iter().sum::<u64>() as f64 / 12.0;
        let var = v[..12]
            .iter()
            .map(|x| (*x as f64 - mean).powi(2))
            .sum::<f64>()
            / 12.0;
        let sigma = var.sqrt().max(mean.sqrt()).max(1.0);
        if v[12] >= 5 && (v[12] as f64 - mean) / sigma >= 3.0 {
            expected.push(format!("{cat}|{loc}"));
        }
    }
    let mut got: Vec<String> = hot
        .hotspots
        .iter()
        .map(|h| format!("{}|{}", h.category, h.location))
        .collect();
    got.sort();
    assert_eq!(got, expected, "hot spots");
    assert!(
        got.contains(&"01.04|140213002".to_owned()),
        "the expropriation spike of October is found: {got:?}"
    );

    // The backlog: open, and overdue, flagged, or repeated three times or more.
    let repeats = tally(&truth, |t| t.repeat_of.clone());
    let backlog: Vec<&Truth> = truth
        .iter()
        .copied()
        .filter(|t| in_backlog(t, &repeats))
        .collect();
    let b = c
        .list_backlog(pb::AnalyticsBacklogRequest {
            organ: String::new(),
            limit: 1000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.total, backlog.len() as u64, "积案");
    assert!(b.total > 0);
    // The district's leader: its cases, and repeats counted without the accusations against
    // the bureau, which it may not learn of even as a number.
    let visible_repeats = tally(&truth, |t| {
        t.repeat_of
            .clone()
            .filter(|_| t.accused.as_deref() != Some("pingcheng.bureau"))
    });
    let district_backlog = district
        .iter()
        .filter(|t| in_backlog(t, &visible_repeats))
        .count();
    let lb = l
        .list_backlog(pb::AnalyticsBacklogRequest {
            organ: String::new(),
            limit: 1000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lb.total, district_backlog as u64, "the district's 积案");
    for c in &lb.cases {
        assert_eq!(
            u64::from(c.repeats),
            visible_repeats.get(&c.case_id).copied().unwrap_or(0),
            "{}",
            c.case_number
        );
    }

    // The export: a header and one line per case of the period.
    let text = export(&mut c, "2026-Q3").await;
    assert_eq!(
        text.lines().count() as u64,
        1 + count(&truth, |t| in_months(t.received_at, &q3))
    );
    assert!(text.starts_with("case_number,channel,received_by,organ,"));

    let dept = who("pingcheng.housing", Role::Analyst);
    let mut d = client(&r, &dept).await;

    // The register of suggestions (Art. 41): made by the bureau's leader, answered, listed.
    let made = l
        .record_suggestion(pb::RecordSuggestionRequest {
            made_on: "2026-06-15".into(),
            addressee: "区委、区政府".into(),
            title: "建立征收补偿协商机制".into(),
            text: "房屋征收与补偿类信访上升，建议设立协商平台".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made.adoption, pb::Adoption::Pending as i32);
    let answered = l
        .record_suggestion(pb::RecordSuggestionRequest {
            id: made.id.clone(),
            adoption: pb::Adoption::Adopted as i32,
            outcome: "区政府已设立协商平台".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.adoption, pb::Adoption::Adopted as i32);
    let listed = l
        .list_suggestions(pb::ListSuggestionsRequest {
            period: "2026".into(),
            organ: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .suggestions;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].outcome, "区政府已设立协商平台");
    let none = l
        .list_suggestions(pb::ListSuggestionsRequest {
            period: "2025".into(),
            organ: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .suggestions;
    assert!(none.is_empty());
    let e = d
        .record_suggestion(pb::RecordSuggestionRequest {
            title: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        tonic::Code::PermissionDenied,
        "a department's analyst records none"
    );
    let e = l
        .record_suggestion(pb::RecordSuggestionRequest {
            addressee: "区委".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().starts_with("title: required"),
        "{}",
        e.message()
    );

    // Case lists keep Art. 30 ¶3 too: the district bureau's leader exports the year's cases of
    // the district, and not one accusation against the bureau is among them.
    let exported = export(&mut l, "2026").await;
    let year = months_of((2026, 1), 12);
    let expected = district
        .iter()
        .filter(|t| in_months(t.received_at, &year))
        .count();
    assert_eq!(exported.lines().count(), 1 + expected);
    for t in truth
        .iter()
        .filter(|t| t.accused.as_deref() == Some("pingcheng.bureau"))
    {
        assert!(
            !exported.contains(&t.case_number),
            "{} leaked",
            t.case_number
        );
    }

    // The yearly report renders, charts and all.
    let report = c
        .render_report(pb::RenderReportRequest {
            period: "2026".into(),
            organ: "pingcheng.bureau".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let html = String::from_utf8(report.content).unwrap();
    assert!(
        html.contains("平城区信访局2026年信访形势分析报告"),
        "{}",
        &html[..400]
    );
    assert!(html.matches("<svg").count() >= 4);
    assert!(html.contains("建立征收补偿协商机制") && html.contains("已采纳"));

    // Rebuild: the read models replayed from the stored events equal the incremental ones.
    let db = Db::connect(&r.url, petition_analytics::SCHEMA, 1)
        .await
        .unwrap();
    let store = petition_analytics::store::AnalyticsStore::new(db);
    let before = store.dump().await.unwrap();
    let rebuilt = c.rebuild(pb::RebuildRequest {}).await.unwrap().into_inner();
    assert_eq!(rebuilt.events as usize, n);
    assert_eq!(rebuilt.cases as usize, truth.len());
    let after = store.dump().await.unwrap();
    assert_eq!(before.len(), after.len());
    let first_difference = before.iter().zip(&after).find(|(a, b)| a != b);
    assert!(first_difference.is_none(), "{first_difference:?}");

    // Every event again (a relay that published twice): nothing changes.
    publish(r.sink.as_ref(), &histories).await;
    let s2 = c
        .get_situation(pb::SituationRequest {
            period: "2026-Q3".into(),
            organ: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    check_situation(
        &s2,
        &truth,
        &q3,
        &months_of((2026, 4), 3),
        &months_of((2025, 7), 3),
    );
    assert_eq!(store.counts().await.unwrap().0 as usize, n);

    // Who may not: a department reads no other department's figures; bad input is named.
    let e = d
        .get_situation(pb::SituationRequest {
            period: "2026".into(),
            organ: "pingcheng.hrss".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let e = d
        .list_backlog(pb::AnalyticsBacklogRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        tonic::Code::PermissionDenied,
        "analysts see no single case"
    );
    let e = c
        .get_situation(pb::SituationRequest {
            period: "2026-13".into(),
            organ: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().starts_with("period: \"2026-13\""),
        "{}",
        e.message()
    );
    let e = c
        .get_scorecards(pb::ScorecardsRequest {
            period: "2026".into(),
            organ: "no.such.organ".into(),
            basis: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().starts_with("organ: "), "{}", e.message());
    let e = c
        .get_trend(pb::TrendRequest {
            last_month: "2026-10".into(),
            months: 37,
            organ: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().starts_with("months: 37"), "{}", e.message());
    let e = l.rebuild(pb::RebuildRequest {}).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    r.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_equal_the_record_on_postgres_and_redis() {
    let Some(r) = on_postgres_and_redis().await else {
        return;
    };
    figures_equal_the_record(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_equal_the_record_on_the_embedded_default() {
    figures_equal_the_record(embedded().await).await;
}

#[test]
fn a_simulated_history_is_the_same_for_the_same_seed() {
    let a: Vec<_> = history().iter().map(|h| h.truth.case_id.clone()).collect();
    let b: Vec<_> = history().iter().map(|h| h.truth.case_id.clone()).collect();
    assert_eq!(a, b);
}
