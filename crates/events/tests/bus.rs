//! The outbox, relay and consumers against real PostgreSQL and Redis (and SQLite with the
//! in-process bus): a relay killed at the worst moments still delivers every committed event,
//! a stream that lost entries is refilled from the outbox, streams are trimmed only below what
//! every group acknowledged, and idempotent consumers apply each event exactly once.

use chrono::Utc;
use petition_events::outbox::{EntryId, EventSink, OutboxRow, Published};
use petition_events::{
    Apply, ApplyError, BatchError, BusError, ConsumerConfig, Delivery, EventHandler, HandlerError,
    InProcessBus, Outbox, OutboxMessage, RedisSink, Relay, RelayConfig, Stream, Transactional,
    processed, run_redis_consumer,
};
use petition_proto::v1 as pb;
use petition_storage::{Db, Tx};
use petition_testkit::{TestDb, TestRedis, require};
use prost::Message;
use sqlx::migrate::Migrator;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

const STREAM: Stream = Stream::Intake;

fn envelope(case: &str) -> pb::EventEnvelope {
    petition_events::envelope(
        case,
        "test",
        Utc::now(),
        pb::event_envelope::Payload::PetitionRegistered(pb::PetitionRegistered {
            case_id: case.into(),
            case_number: format!("140213-2026-{case:0>6}"),
            ..Default::default()
        }),
    )
}

async fn open(db: &TestDb, schema: &str) -> Db {
    db.open(schema, &Migrator::with_migrations(Vec::new()))
        .await
}

fn outbox(db: &Db) -> Outbox {
    Outbox::new(db.clone())
}

/// A state change and its event, committed together.
async fn commit(db: &Db, case: &str) -> OutboxMessage {
    let msg = petition_events::to_outbox(STREAM, &envelope(case));
    let mut tx = db.begin().await.unwrap();
    Outbox::enqueue(&mut tx, &msg).await.unwrap();
    tx.commit().await.unwrap();
    msg
}

fn relay(outbox: &Outbox, sink: Arc<dyn EventSink>) -> Arc<Relay> {
    let cfg = RelayConfig {
        poll_interval: Duration::from_millis(50),
        ..RelayConfig::default()
    };
    Relay::new(
        "test",
        outbox.clone(),
        sink,
        petition_events::RelayWake::new(),
        cfg,
        None,
    )
}

/// A consumer whose effect is a row per applied event, made idempotent by `processed_events`.
struct Applier {
    db: Db,
    group: String,
    deliveries: AtomicUsize,
    /// The process dies in the middle of a batch after this many deliveries.
    block_after: Option<usize>,
}

impl Applier {
    async fn new(db: Db, group: &str, block_after: Option<usize>) -> Arc<Self> {
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS effects (event_id TEXT NOT NULL)")
            .execute(db.pool())
            .await
            .unwrap();
        Arc::new(Self {
            db,
            group: group.into(),
            deliveries: AtomicUsize::new(0),
            block_after,
        })
    }

    async fn effects(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects")
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

#[async_trait::async_trait]
impl EventHandler for Applier {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        let n = self.deliveries.fetch_add(1, Ordering::SeqCst);
        if self.block_after.is_some_and(|b| n >= b) {
            std::future::pending::<()>().await;
        }
        let t = |e: sqlx::Error| HandlerError::Transient(e.to_string());
        let mut tx = self.db.begin().await.map_err(t)?;
        if processed::first_time(&mut tx, &self.group, &d.envelope.event_id)
            .await
            .map_err(t)?
        {
            sqlx::query("INSERT INTO effects (event_id) VALUES ($1)")
                .bind(&d.envelope.event_id)
                .execute(&mut *tx)
                .await
                .map_err(t)?;
        }
        tx.commit().await.map_err(t)
    }
}

/// A relay that dies after XADD and before it can mark the rows published.
struct DiesAfterPublish(Arc<RedisSink>);

#[async_trait::async_trait]
impl EventSink for DiesAfterPublish {
    async fn publish(
        &self,
        batch: &[OutboxRow],
        known: &HashMap<String, EntryId>,
    ) -> Result<Published, BusError> {
        self.0.publish(batch, known).await?;
        Err(BusError::Other("relay process killed".into()))
    }
}

/// A relay that never gets to XADD.
struct NeverPublishes;

#[async_trait::async_trait]
impl EventSink for NeverPublishes {
    async fn publish(
        &self,
        _: &[OutboxRow],
        _: &HashMap<String, EntryId>,
    ) -> Result<Published, BusError> {
        std::future::pending().await
    }
}

fn key(redis: &TestRedis) -> String {
    format!("{}{STREAM}", redis.prefix)
}

fn consumer_cfg(redis: &TestRedis, group: &str, consumer: &str) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(&key(redis), group, consumer);
    cfg.block = Duration::from_millis(200);
    cfg.min_idle = Duration::from_millis(300);
    cfg.max_deliveries = 3;
    cfg
}

fn sink(redis: &TestRedis) -> Arc<RedisSink> {
    Arc::new(RedisSink::new(redis.client(), &redis.prefix))
}

async fn wait_for(mut check: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn redis_cmd<T: redis::FromRedisValue>(redis: &TestRedis, cmd: &mut redis::Cmd) -> T {
    let mut c = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    cmd.query_async(&mut c).await.unwrap()
}

async fn stream_len(redis: &TestRedis, key: &str) -> usize {
    redis_cmd(redis, redis::cmd("XLEN").arg(key)).await
}

async fn pending_count(redis: &TestRedis, group: &str) -> usize {
    let reply: redis::streams::StreamPendingReply =
        redis_cmd(redis, redis::cmd("XPENDING").arg(key(redis)).arg(group)).await;
    reply.count()
}

#[tokio::test]
async fn relay_killed_between_commit_and_xadd_still_delivers_exactly_once() {
    let db = require!(TestDb::postgres());
    let redis = require!(TestRedis::create());
    let producer = open(&db, "producer").await;
    let outbox = outbox(&producer);
    commit(&producer, "1").await;

    // First life: the relay claims the row and is killed before XADD.
    let (_stop, stop_rx) = watch::channel(false);
    let doomed = tokio::spawn(relay(&outbox, Arc::new(NeverPublishes)).run(stop_rx.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    doomed.abort();
    let _ = doomed.await;
    assert_eq!(outbox.pending().await.unwrap(), 1, "nothing was published");

    // Second life, with a consumer: the event arrives and is applied once.
    let applier = Applier::new(open(&db, "consumer").await, "routing", None).await;
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "routing", "c1"),
        applier.clone(),
        None,
        stop_rx.clone(),
    ));
    let relay = tokio::spawn(relay(&outbox, sink(&redis)).run(stop_rx));
    wait_for(async || applier.effects().await == 1, "the effect").await;
    assert_eq!(outbox.pending().await.unwrap(), 0);
    assert_eq!(stream_len(&redis, &key(&redis)).await, 1);
    stop.send(true).unwrap();
    relay.await.unwrap();
    consumer.await.unwrap();
}

#[tokio::test]
async fn relay_killed_after_xadd_publishes_again_and_the_consumer_applies_once() {
    let db = require!(TestDb::postgres());
    let redis = require!(TestRedis::create());
    let producer = open(&db, "producer").await;
    let outbox = outbox(&producer);
    let msg = commit(&producer, "2").await;
    let sink = sink(&redis);
    let mut known = HashMap::new();

    // XADD happens, the mark does not: the row stays unpublished.
    assert!(
        outbox
            .relay_once(&DiesAfterPublish(sink.clone()), 10, &mut known)
            .await
            .is_err()
    );
    assert_eq!(outbox.pending().await.unwrap(), 1);
    // The next relay publishes it again: two entries, one event id.
    assert!(matches!(
        outbox.relay_once(sink.as_ref(), 10, &mut known).await.unwrap(),
        Published::Done(ids) if ids.len() == 1 && ids[0].is_some()
    ));
    assert_eq!(stream_len(&redis, &key(&redis)).await, 2);

    let applier = Applier::new(open(&db, "consumer").await, "routing", None).await;
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "routing", "c1"),
        applier.clone(),
        None,
        stop_rx,
    ));
    wait_for(
        async || applier.deliveries.load(Ordering::SeqCst) == 2,
        "both deliveries",
    )
    .await;
    assert_eq!(applier.effects().await, 1, "applied exactly once");
    let processed: String = sqlx::query_scalar("SELECT event_id FROM processed_events")
        .fetch_one(applier.db.pool())
        .await
        .unwrap();
    assert_eq!(processed, msg.event_id.to_string());
    stop.send(true).unwrap();
    consumer.await.unwrap();
}

#[tokio::test]
async fn a_stream_that_lost_entries_is_refilled_from_the_outbox() {
    let db = require!(TestDb::postgres());
    let redis = require!(TestRedis::create());
    let producer = open(&db, "producer").await;
    let outbox = outbox(&producer);
    let applier = Applier::new(open(&db, "consumer").await, "routing", None).await;
    let (stop, stop_rx) = watch::channel(false);
    let relay = tokio::spawn(relay(&outbox, sink(&redis)).run(stop_rx.clone()));
    for case in ["1", "2", "3", "4"] {
        commit(&producer, case).await;
    }
    wait_for(async || outbox.pending().await.unwrap() == 0, "the publish").await;
    assert_eq!(stream_len(&redis, &key(&redis)).await, 4);

    // Redis lost its last two writes (a crash inside its fsync interval): the entries are
    // gone and the stream's last id is back where it was before them.
    let ids: redis::streams::StreamRangeReply = redis_cmd(
        &redis,
        redis::cmd("XRANGE").arg(key(&redis)).arg("-").arg("+"),
    )
    .await;
    let _: i64 = redis_cmd(
        &redis,
        redis::cmd("XDEL")
            .arg(key(&redis))
            .arg(&ids.ids[2].id)
            .arg(&ids.ids[3].id),
    )
    .await;
    let _: () = redis_cmd(
        &redis,
        redis::cmd("XSETID").arg(key(&redis)).arg(&ids.ids[1].id),
    )
    .await;
    // The consumer starts only now, with its group at the beginning of what is left.
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "routing", "c1"),
        applier.clone(),
        None,
        stop_rx.clone(),
    ));
    wait_for(async || applier.effects().await == 4, "the two lost events").await;

    // Then Redis loses everything, group included.
    let _: i64 = redis_cmd(&redis, redis::cmd("DEL").arg(key(&redis))).await;
    commit(&producer, "5").await;
    wait_for(async || applier.effects().await == 5, "the new event").await;
    assert!(
        stream_len(&redis, &key(&redis)).await >= 5,
        "everything retained was published again, in order, before the new event"
    );
    wait_for(
        async || pending_count(&redis, "routing").await == 0,
        "the acks",
    )
    .await;
    assert_eq!(applier.effects().await, 5, "every event applied once");
    stop.send(true).unwrap();
    relay.await.unwrap();
    consumer.await.unwrap();
}

/// Fails the first `failures` deliveries, then succeeds: with a transient error (a retry is
/// worth it), or as a store that is unavailable (wait, do not give up on the entry).
struct Flaky {
    failures: usize,
    unavailable: bool,
    seen: AtomicUsize,
    applied: AtomicUsize,
}

impl Flaky {
    fn new(failures: usize) -> Arc<Self> {
        Arc::new(Self {
            failures,
            unavailable: false,
            seen: AtomicUsize::new(0),
            applied: AtomicUsize::new(0),
        })
    }

    /// Its database is away for the first `outage` deliveries.
    fn outage(outage: usize) -> Arc<Self> {
        Arc::new(Self {
            failures: outage,
            unavailable: true,
            seen: AtomicUsize::new(0),
            applied: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl EventHandler for Flaky {
    async fn handle(&self, _: &Delivery) -> Result<(), HandlerError> {
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(if self.unavailable {
                HandlerError::Unavailable("database away".into())
            } else {
                HandlerError::Transient("database briefly away".into())
            });
        }
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn publish_one(redis: &TestRedis, case: &str) {
    let msg = petition_events::to_outbox(STREAM, &envelope(case));
    sink(redis)
        .publish(
            &[OutboxRow {
                seq: 1,
                event_id: msg.event_id,
                stream: msg.stream,
                payload: msg.payload,
            }],
            &HashMap::new(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_delivery_is_reclaimed_and_retried() {
    let redis = require!(TestRedis::create());
    let flaky = Flaky::new(1);
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "supervision", "c1"),
        flaky.clone(),
        None,
        stop_rx,
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish_one(&redis, "3").await;
    wait_for(
        async || flaky.applied.load(Ordering::SeqCst) == 1,
        "the retry",
    )
    .await;
    assert_eq!(flaky.seen.load(Ordering::SeqCst), 2);
    wait_for(
        async || pending_count(&redis, "supervision").await == 0,
        "the ack",
    )
    .await;
    stop.send(true).unwrap();
    consumer.await.unwrap();
}

#[tokio::test]
async fn a_consumer_that_died_holding_entries_is_taken_over_and_removed() {
    let redis = require!(TestRedis::create());
    publish_one(&redis, "4").await;
    // The first consumer reads the entry and dies before acknowledging it.
    {
        let mut c = redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        petition_events::redis_bus::ensure_group(&mut c, &key(&redis), "analytics")
            .await
            .unwrap();
        let opts = redis::streams::StreamReadOptions::default()
            .group("analytics", "dead-consumer")
            .count(10);
        let read: redis::streams::StreamReadReply =
            redis::AsyncCommands::xread_options(&mut c, &[&key(&redis)], &[">"], &opts)
                .await
                .unwrap();
        assert_eq!(read.keys[0].ids.len(), 1);
    }
    let ok = Flaky::new(0);
    let (stop, stop_rx) = watch::channel(false);
    let mut cfg = consumer_cfg(&redis, "analytics", "c2");
    cfg.dead_after = Duration::from_millis(500);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        cfg,
        ok.clone(),
        None,
        stop_rx,
    ));
    wait_for(
        async || ok.applied.load(Ordering::SeqCst) == 1,
        "the takeover",
    )
    .await;
    wait_for(
        async || pending_count(&redis, "analytics").await == 0,
        "the ack",
    )
    .await;
    wait_for(
        async || {
            let consumers: redis::streams::StreamInfoConsumersReply = redis_cmd(
                &redis,
                redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(key(&redis))
                    .arg("analytics"),
            )
            .await;
            consumers
                .consumers
                .iter()
                .all(|c| c.name != "dead-consumer")
        },
        "the dead consumer's removal",
    )
    .await;
    stop.send(true).unwrap();
    consumer.await.unwrap();
}

#[tokio::test]
async fn poison_and_hopeless_entries_go_to_the_dead_letter_stream() {
    let redis = require!(TestRedis::create());
    let dead = format!("{}.dead", key(&redis));
    let never = Flaky::new(usize::MAX);
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "routing", "c1"),
        never.clone(),
        None,
        stop_rx,
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Undecodable: dead at once.
    let _: String = redis_cmd(
        &redis,
        redis::cmd("XADD")
            .arg(key(&redis))
            .arg("*")
            .arg("event")
            .arg(b"\xff\xff".as_slice()),
    )
    .await;
    wait_for(
        async || stream_len(&redis, &dead).await == 1,
        "the poison entry",
    )
    .await;
    assert_eq!(
        never.seen.load(Ordering::SeqCst),
        0,
        "never handed to the handler"
    );
    // Always failing: dead after three deliveries.
    publish_one(&redis, "5").await;
    wait_for(
        async || stream_len(&redis, &dead).await == 2,
        "the hopeless entry",
    )
    .await;
    assert_eq!(never.seen.load(Ordering::SeqCst), 3);
    wait_for(async || pending_count(&redis, "routing").await == 0, "acks").await;
    stop.send(true).unwrap();
    consumer.await.unwrap();
}

#[tokio::test]
async fn streams_are_trimmed_only_below_what_every_group_acknowledged() {
    let redis = require!(TestRedis::create());
    for case in ["1", "2", "3"] {
        publish_one(&redis, case).await;
    }
    let mut c = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let read = |group: &'static str, n: usize| {
        let mut c = c.clone();
        let key = key(&redis);
        async move {
            petition_events::redis_bus::ensure_group(&mut c, &key, group)
                .await
                .unwrap();
            if n == 0 {
                return;
            }
            let opts = redis::streams::StreamReadOptions::default()
                .group(group, "x")
                .count(n);
            let r: redis::streams::StreamReadReply =
                redis::AsyncCommands::xread_options(&mut c, &[&key], &[">"], &opts)
                    .await
                    .unwrap();
            let ids: Vec<String> = r.keys[0].ids.iter().map(|e| e.id.clone()).collect();
            let _: i64 = redis::AsyncCommands::xack(&mut c, &key, group, &ids)
                .await
                .unwrap();
        }
    };
    read("fast", 3).await;
    read("slow", 0).await;
    // Everything is old enough; the slow group has acknowledged nothing.
    let later = Utc::now() + chrono::Duration::hours(1);
    sink(&redis).trim(STREAM.as_str(), later).await.unwrap();
    assert_eq!(stream_len(&redis, &key(&redis)).await, 3);
    read("slow", 2).await;
    sink(&redis).trim(STREAM.as_str(), later).await.unwrap();
    // The floor is the slow group's last acknowledged entry: only the first goes.
    let left = stream_len(&redis, &key(&redis)).await;
    assert_eq!(left, 2);
    // Nothing is trimmed that is younger than the retention.
    read("slow", 1).await;
    sink(&redis)
        .trim(STREAM.as_str(), Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(stream_len(&redis, &key(&redis)).await, 2);
    let _ = &mut c;
}

async fn replay_and_retention(producer: Db) {
    let outbox = outbox(&producer);
    for case in ["1", "2", "3"] {
        commit(&producer, case).await;
    }
    let bus = InProcessBus::new();
    let mut known = HashMap::new();
    outbox
        .relay_once(bus.as_ref(), 10, &mut known)
        .await
        .unwrap();
    assert_eq!(outbox.pending().await.unwrap(), 0);
    // An operator replays the stream: every retained event goes out again.
    let n = outbox
        .replay(STREAM.as_str(), Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(outbox.pending().await.unwrap(), 3);
    assert_eq!(
        outbox
            .replay(
                Stream::Routing.as_str(),
                Utc::now() - chrono::Duration::hours(1)
            )
            .await
            .unwrap(),
        0,
        "another stream is untouched"
    );
    outbox
        .relay_once(bus.as_ref(), 10, &mut known)
        .await
        .unwrap();
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.backlog, stats.oldest), (0, None));
    // Retention: published rows older than the cut go; unpublished ones never do.
    commit(&producer, "4").await;
    let purged = outbox
        .purge(Utc::now() + chrono::Duration::seconds(1), Utc::now())
        .await
        .unwrap();
    assert_eq!(purged, 3);
    assert_eq!(outbox.pending().await.unwrap(), 1);
    assert!(outbox.stats().await.unwrap().oldest.is_some());
}

petition_testkit::dual_dialect!(unit => replay_and_retention);

async fn unit(db: &TestDb) -> Db {
    open(db, "producer").await
}

#[tokio::test]
async fn in_process_events_not_delivered_before_a_restart_are_delivered_after_it() {
    let db = TestDb::sqlite();
    let consumer_db = TestDb::sqlite();
    let consumer = open(&consumer_db, "consumer").await;

    // First life: three events committed; the consumer applies one and the process dies.
    {
        let producer = open(&db, "producer").await;
        let outbox = outbox(&producer);
        for case in ["6", "7", "8"] {
            commit(&producer, case).await;
        }
        let bus = InProcessBus::new();
        let sub = bus.subscribe(
            STREAM.as_str(),
            "analytics",
            Applier::new(consumer.clone(), "analytics", Some(1)).await,
        );
        let (_stop, stop_rx) = watch::channel(false);
        let relay = tokio::spawn(relay(&outbox, bus).run(stop_rx));
        tokio::time::sleep(Duration::from_millis(200)).await;
        relay.abort();
        sub.abort();
        let _ = relay.await;
        assert_eq!(
            outbox.pending().await.unwrap(),
            3,
            "the batch was never acknowledged"
        );
        producer.close().await;
    }

    // Second life: everything is delivered, the already-applied event is not applied again.
    let producer = open(&db, "producer").await;
    let outbox = outbox(&producer);
    let bus = InProcessBus::new();
    let applier = Applier::new(consumer.clone(), "analytics", None).await;
    bus.subscribe(STREAM.as_str(), "analytics", applier.clone());
    let (stop, stop_rx) = watch::channel(false);
    let relay = tokio::spawn(relay(&outbox, bus).run(stop_rx));
    wait_for(
        async || outbox.pending().await.unwrap() == 0,
        "the redelivery",
    )
    .await;
    assert_eq!(applier.effects().await, 3);
    stop.send(true).unwrap();
    relay.await.unwrap();
}

#[tokio::test]
async fn the_envelope_carries_the_current_trace_and_its_payload_type() {
    petition_telemetry::init_for_tests();
    let span = tracing::info_span!("register");
    let env = span.in_scope(|| envelope("9"));
    let trace = env.trace.unwrap();
    assert!(
        trace.traceparent.starts_with("00-"),
        "{:?}",
        trace.traceparent
    );
    let decoded = pb::EventEnvelope::decode(&*envelope("9").encode_to_vec()).unwrap();
    assert_eq!(decoded.r#type, "petition.registered");
}

#[tokio::test]
async fn an_unreachable_database_pauses_the_consumer_and_sends_nothing_to_the_dead_letters() {
    let redis = require!(TestRedis::create());
    publish_one(&redis, "6").await;
    let readiness = petition_telemetry::Readiness::new();
    let outage = Flaky::outage(4);
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "routing", "c1"),
        outage.clone(),
        Some(readiness.component("consumer")),
        stop_rx,
    ));
    let mut saw_not_ready = false;
    for _ in 0..400 {
        saw_not_ready |=
            !readiness.failing().is_empty() && readiness.failing()[0].1.contains("unavailable");
        if outage.applied.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        outage.applied.load(Ordering::SeqCst),
        1,
        "applied once it came back"
    );
    assert_eq!(
        outage.seen.load(Ordering::SeqCst),
        5,
        "more tries than max_deliveries"
    );
    assert!(
        saw_not_ready,
        "the consumer said it was not ready meanwhile"
    );
    assert_eq!(
        stream_len(&redis, &format!("{}.dead", key(&redis))).await,
        0
    );
    wait_for(
        async || pending_count(&redis, "routing").await == 0,
        "the ack",
    )
    .await;
    wait_for(async || readiness.is_ready(), "ready again").await;
    stop.send(true).unwrap();
    consumer.await.unwrap();
}

#[tokio::test]
async fn in_process_an_unreachable_database_delays_an_event_and_loses_nothing() {
    let db = TestDb::sqlite();
    let producer = open(&db, "producer").await;
    let outbox = outbox(&producer);
    commit(&producer, "7").await;
    let bus = InProcessBus::new();
    let outage = Flaky::outage(4);
    bus.subscribe(STREAM.as_str(), "analytics", outage.clone());
    let (stop, stop_rx) = watch::channel(false);
    let relay = tokio::spawn(relay(&outbox, bus.clone()).run(stop_rx));
    wait_for(
        async || outbox.pending().await.unwrap() == 0,
        "the delivery",
    )
    .await;
    assert_eq!(outage.applied.load(Ordering::SeqCst), 1);
    assert!(bus.dead_letters().is_empty(), "{:?}", bus.dead_letters());
    stop.send(true).unwrap();
    relay.await.unwrap();
}

/// A consumer run through `Transactional`: one effect row per applied event, naming the
/// transaction it was written in; the case `poison` can never be applied; the case `stall`
/// makes its apply hang, holding the batch's transaction open.
struct Effects {
    entered: Arc<AtomicUsize>,
}

impl Effects {
    async fn open(db: &Db) -> Arc<Transactional<Effects>> {
        Self::open_with(db).await.0
    }

    /// The handler, and how many applies it has begun.
    async fn open_with(db: &Db) -> (Arc<Transactional<Effects>>, Arc<AtomicUsize>) {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS batch_effects (event_id TEXT NOT NULL, txid TEXT NOT NULL)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        let entered = Arc::new(AtomicUsize::new(0));
        let effects = Effects {
            entered: entered.clone(),
        };
        (
            Arc::new(Transactional::new(db.clone(), "routing", effects)),
            entered,
        )
    }
}

#[async_trait::async_trait]
impl Apply for Effects {
    async fn apply(&self, tx: &mut Tx, d: &Delivery) -> Result<bool, ApplyError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        match d.envelope.case_id.as_str() {
            "poison" => return Err(HandlerError::Poison("cannot be applied".into()).into()),
            "stall" => std::future::pending::<()>().await,
            _ => {}
        }
        sqlx::query("INSERT INTO batch_effects (event_id, txid) VALUES ($1, txid_current()::text)")
            .bind(&d.envelope.event_id)
            .execute(&mut **tx)
            .await
            .map_err(ApplyError::store)?;
        Ok(true)
    }
}

/// (effects, distinct events, distinct transactions)
async fn batch_effects(db: &Db) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT event_id), count(DISTINCT txid) FROM batch_effects",
    )
    .fetch_one(db.pool())
    .await
    .unwrap()
}

/// Puts `envelopes` on the stream as the relay would, in one call.
async fn publish_all(redis: &TestRedis, envelopes: &[pb::EventEnvelope]) {
    let rows: Vec<OutboxRow> = envelopes
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let msg = petition_events::to_outbox(STREAM, e);
            OutboxRow {
                seq: i as i64 + 1,
                event_id: msg.event_id,
                stream: msg.stream,
                payload: msg.payload,
            }
        })
        .collect();
    sink(redis).publish(&rows, &HashMap::new()).await.unwrap();
}

fn consume(
    redis: &TestRedis,
    handler: Arc<dyn EventHandler>,
    stop: &watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(redis, "routing", "c1"),
        handler,
        None,
        stop.clone(),
    ))
}

#[tokio::test]
async fn a_read_is_applied_in_one_transaction_and_an_event_published_twice_once() {
    let db = require!(TestDb::postgres());
    let redis = require!(TestRedis::create());
    let consumer_db = open(&db, "consumer").await;
    let events: Vec<_> = (1..=5).map(|n| envelope(&n.to_string())).collect();
    // The second event twice, as a relay killed after XADD publishes it again.
    let mut published = events.clone();
    published.push(events[1].clone());
    publish_all(&redis, &published).await;

    let (stop, stop_rx) = watch::channel(false);
    let consumer = consume(&redis, Effects::open(&consumer_db).await, &stop_rx);
    wait_for(
        async || batch_effects(&consumer_db).await.0 == 5,
        "the effects",
    )
    .await;
    wait_for(
        async || pending_count(&redis, "routing").await == 0,
        "the acks",
    )
    .await;
    assert_eq!(stream_len(&redis, &key(&redis)).await, 6);
    assert_eq!(
        batch_effects(&consumer_db).await,
        (5, 5, 1),
        "six entries read at once: five effects, each once, in one transaction"
    );
    stop.send(true).unwrap();
    consumer.await.unwrap();
}

#[tokio::test]
async fn a_poison_event_fails_alone_and_its_neighbours_in_the_read_apply_once() {
    let db = require!(TestDb::postgres());
    let redis = require!(TestRedis::create());
    let consumer_db = open(&db, "consumer").await;
    let dead = format!("{}.dead", key(&redis));
    publish_all(
        &redis,
        &[
            envelope("1"),
            envelope("poison"),
            envelope("2"),
            envelope("3"),
        ],
    )
    .await;
    let (stop, stop_rx) = watch::channel(false);
    let consumer = consume(&redis, Effects::open(&consumer_db).await, &stop_rx);
    wait_for(
        async || stream_len(&redis, &dead).await == 1,
        "the dead letter",
    )
    .await;
    wait_for(
        async || pending_count(&redis, "routing").await == 0,
        "the acks",
    )
    .await;
    let (effects, events, _) = batch_effects(&consumer_db).await;
    assert_eq!(
        (effects, events),
        (3, 3),
        "the three good events, once each"
    );
    let marks: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(consumer_db.pool())
        .await
        .unwrap();
    assert_eq!(marks, 3, "the poison event is not marked as applied");
    stop.send(true).unwrap();
    consumer.await.unwrap();
}

/// Applies a read, then dies before the runner can acknowledge it.
struct DiesBeforeAck(Arc<dyn EventHandler>);

#[async_trait::async_trait]
impl EventHandler for DiesBeforeAck {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        self.0.handle(d).await?;
        std::future::pending().await
    }

    async fn handle_batch(&self, batch: &[Delivery]) -> Result<(), BatchError> {
        self.0.handle_batch(batch).await?;
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_consumer_killed_inside_a_batch_or_before_its_ack_applies_each_event_once() {
    let db = require!(TestDb::postgres());
    let redis = require!(TestRedis::create());
    let consumer_db = open(&db, "consumer").await;
    publish_all(
        &redis,
        &[
            envelope("1"),
            envelope("2"),
            envelope("stall"),
            envelope("4"),
        ],
    )
    .await;
    let (_stop, stop_rx) = watch::channel(false);

    // First life: killed while its transaction holds the first two effects, uncommitted.
    let (handler, entered) = Effects::open_with(&consumer_db).await;
    let first = consume(&redis, handler, &stop_rx);
    wait_for(async || entered.load(Ordering::SeqCst) >= 3, "the stall").await;
    first.abort();
    let _ = first.await;
    assert_eq!(batch_effects(&consumer_db).await.0, 0, "nothing committed");
    assert_eq!(
        pending_count(&redis, "routing").await,
        4,
        "all still pending"
    );

    // The event that stalled is taken off the stream, as an operator would, so that the
    // rest can go.
    let entries: redis::streams::StreamRangeReply = redis_cmd(
        &redis,
        redis::cmd("XRANGE").arg(key(&redis)).arg("-").arg("+"),
    )
    .await;
    let _: i64 = redis_cmd(
        &redis,
        redis::cmd("XDEL").arg(key(&redis)).arg(&entries.ids[2].id),
    )
    .await;

    // Second life: commits the batch, then dies before XACK.
    let (handler, _) = Effects::open_with(&consumer_db).await;
    let second = consume(&redis, Arc::new(DiesBeforeAck(handler)), &stop_rx);
    wait_for(
        async || batch_effects(&consumer_db).await.0 == 3,
        "the commit",
    )
    .await;
    second.abort();
    let _ = second.await;
    assert_eq!(
        pending_count(&redis, "routing").await,
        3,
        "only the deleted entry was let go; the applied three are not acknowledged"
    );

    // Third life: the same consumer takes up its pending entries; the marks skip them all.
    let (stop, stop_rx) = watch::channel(false);
    let third = consume(&redis, Effects::open(&consumer_db).await, &stop_rx);
    wait_for(
        async || pending_count(&redis, "routing").await == 0,
        "the acks",
    )
    .await;
    let (effects, events, txids) = batch_effects(&consumer_db).await;
    assert_eq!((effects, events), (3, 3), "each applied event once");
    assert_eq!(txids, 1, "the three committed together");
    stop.send(true).unwrap();
    third.await.unwrap();
}

#[tokio::test]
async fn one_relay_leads_an_outbox_and_a_standby_takes_over_when_it_is_gone() {
    let db = require!(TestDb::postgres());
    let redis = require!(TestRedis::create());
    let producer = open(&db, "producer").await;
    let sink = sink(&redis);
    // Two instances of one service: two outboxes over one table.
    let first = Outbox::new(producer.clone());
    let standby = Outbox::new(producer.clone());
    let (mut known_first, mut known_standby) = (HashMap::new(), HashMap::new());

    commit(&producer, "1").await;
    assert!(matches!(
        first.relay_once(sink.as_ref(), 10, &mut known_first).await.unwrap(),
        Published::Done(ids) if ids.len() == 1
    ));
    commit(&producer, "2").await;
    assert!(
        matches!(
            standby.relay_once(sink.as_ref(), 10, &mut known_standby).await.unwrap(),
            Published::Done(ids) if ids.is_empty()
        ),
        "the standby publishes nothing while the first leads"
    );
    assert_eq!(standby.pending().await.unwrap(), 1);

    // The first instance goes away (its process dies): its session, and its lead, go with it.
    drop(first);
    wait_for(
        async || {
            standby
                .relay_once(sink.as_ref(), 10, &mut known_standby)
                .await
                .is_ok_and(|p| matches!(p, Published::Done(ids) if ids.len() == 1))
        },
        "the standby's takeover",
    )
    .await;
    assert_eq!(standby.pending().await.unwrap(), 0);
    assert_eq!(
        stream_len(&redis, &key(&redis)).await,
        2,
        "each row published once"
    );
}

#[tokio::test]
async fn a_publish_that_failed_while_redis_was_down_still_finds_what_redis_lost() {
    let db = require!(TestDb::postgres());
    let Some(mut redis) = petition_testkit::RedisServer::start(false) else {
        return;
    };
    let producer = open(&db, "producer").await;
    let outbox = outbox(&producer);
    let client = redis::Client::open(redis.url()).unwrap();
    let relay = relay(&outbox, Arc::new(RedisSink::new(client.clone(), "lost:")));
    let key = format!("lost:{STREAM}");
    let len = async || -> usize {
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("XLEN")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap()
    };
    for case in ["1", "2"] {
        commit(&producer, case).await;
    }
    assert_eq!(relay.flush().await.unwrap(), 2);
    // Redis dies with both entries, unconsumed; a commit meanwhile fails to go out.
    redis.kill();
    commit(&producer, "3").await;
    assert!(relay.flush().await.is_err());
    // It comes back empty. The relay's next rounds find the loss and publish all three again.
    redis.restart();
    wait_for(
        async || {
            let _ = relay.flush().await;
            outbox.pending().await.unwrap() == 0 && len().await == 3
        },
        "the refill",
    )
    .await;
}
