//! The outbox, relay and consumers against real PostgreSQL and Redis (and SQLite with the
//! in-process bus): a relay killed at the worst moments still delivers every committed event,
//! and idempotent consumers apply each exactly once.

use petition_events::outbox::{EventSink, Outbox, OutboxRow, PgOutbox, SqliteOutbox};
use petition_events::processed;
use petition_events::{
    BusError, ConsumerConfig, Delivery, EventHandler, HandlerError, InProcessBus, OutboxMessage,
    RedisSink, Relay, run_redis_consumer,
};
use petition_proto::v1 as pb;
use petition_testkit::{TestDatabase, TestRedis, require};
use prost::Message;
use sqlx::{PgPool, SqlitePool};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

const STREAM: &str = "petition.intake.v1";

fn envelope(case: &str) -> pb::EventEnvelope {
    petition_events::envelope(
        case,
        "petition.registered",
        "test",
        chrono::Utc::now(),
        pb::event_envelope::Payload::PetitionRegistered(pb::PetitionRegistered {
            case_id: case.into(),
            case_number: format!("140213-2026-{case:0>6}"),
            ..Default::default()
        }),
    )
}

async fn pg_outbox(db: &TestDatabase) -> (PgPool, PgOutbox) {
    let pool = petition_storage::connect_postgres(&db.url, "producer", 4)
        .await
        .unwrap();
    let outbox = PgOutbox::install(pool.clone()).await.unwrap();
    (pool, outbox)
}

/// A state change and its event, committed together.
async fn commit_pg(pool: &PgPool, case: &str) -> OutboxMessage {
    let msg = petition_events::to_outbox(STREAM, &envelope(case));
    let mut tx = pool.begin().await.unwrap();
    petition_events::outbox::enqueue_pg(&mut tx, &msg)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    msg
}

/// A consumer whose effect is a row per applied event, made idempotent by `processed_events`.
struct PgApplier {
    pool: PgPool,
    group: String,
    deliveries: AtomicUsize,
}

impl PgApplier {
    async fn new(db: &TestDatabase, group: &str) -> Arc<Self> {
        let pool = petition_storage::connect_postgres(&db.url, "consumer", 4)
            .await
            .unwrap();
        sqlx::raw_sql(processed::PG_DDL)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS effects (event_id TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        Arc::new(Self {
            pool,
            group: group.into(),
            deliveries: AtomicUsize::new(0),
        })
    }

    async fn effects(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

#[async_trait::async_trait]
impl EventHandler for PgApplier {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        let t = |e: sqlx::Error| HandlerError::Transient(e.to_string());
        let mut tx = self.pool.begin().await.map_err(t)?;
        if processed::first_time_pg(&mut tx, &self.group, &d.envelope.event_id)
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
struct DiesAfterPublish(RedisSink);

#[async_trait::async_trait]
impl EventSink for DiesAfterPublish {
    async fn publish(&self, batch: &[OutboxRow]) -> Result<(), BusError> {
        self.0.publish(batch).await?;
        Err(BusError::Other("relay process killed".into()))
    }
}

/// A relay that never gets to XADD.
struct NeverPublishes;

#[async_trait::async_trait]
impl EventSink for NeverPublishes {
    async fn publish(&self, _: &[OutboxRow]) -> Result<(), BusError> {
        std::future::pending().await
    }
}

fn consumer_cfg(redis: &TestRedis, group: &str, consumer: &str) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(&format!("{}{STREAM}", redis.prefix), group, consumer);
    cfg.block = Duration::from_millis(200);
    cfg.min_idle = Duration::from_millis(300);
    cfg.max_deliveries = 3;
    cfg
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

async fn stream_len(redis: &TestRedis, key: &str) -> usize {
    let mut c = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("XLEN")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn relay_killed_between_commit_and_xadd_still_delivers_exactly_once() {
    let db = require!(TestDatabase::create());
    let redis = require!(TestRedis::create());
    let (pool, outbox) = pg_outbox(&db).await;
    let outbox: Arc<dyn Outbox> = Arc::new(outbox);
    commit_pg(&pool, "1").await;

    // First life: the relay claims the row and is killed before XADD.
    let (_stop, stop_rx) = watch::channel(false);
    let doomed = tokio::spawn(
        Relay::new(
            outbox.clone(),
            Arc::new(NeverPublishes),
            Arc::new(Notify::new()),
        )
        .run(stop_rx.clone()),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    doomed.abort();
    let _ = doomed.await;
    assert_eq!(outbox.pending().await.unwrap(), 1, "nothing was published");

    // Second life, with a consumer: the event arrives and is applied once.
    let applier = PgApplier::new(&db, "routing").await;
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "routing", "c1"),
        applier.clone(),
        stop_rx.clone(),
    ));
    let sink = Arc::new(
        RedisSink::connect(&redis.client(), &redis.prefix)
            .await
            .unwrap(),
    );
    let relay =
        tokio::spawn(Relay::new(outbox.clone(), sink, Arc::new(Notify::new())).run(stop_rx));
    wait_for(async || applier.effects().await == 1, "the effect").await;
    assert_eq!(outbox.pending().await.unwrap(), 0);
    assert_eq!(
        stream_len(&redis, &format!("{}{STREAM}", redis.prefix)).await,
        1
    );
    stop.send(true).unwrap();
    relay.await.unwrap();
    consumer.await.unwrap().unwrap();
}

#[tokio::test]
async fn relay_killed_after_xadd_publishes_again_and_the_consumer_applies_once() {
    let db = require!(TestDatabase::create());
    let redis = require!(TestRedis::create());
    let (pool, outbox) = pg_outbox(&db).await;
    let outbox: Arc<dyn Outbox> = Arc::new(outbox);
    let msg = commit_pg(&pool, "2").await;
    let sink = RedisSink::connect(&redis.client(), &redis.prefix)
        .await
        .unwrap();

    // XADD happens, the mark does not: the row stays unpublished.
    assert!(
        outbox
            .relay_once(&DiesAfterPublish(sink.clone()), 10)
            .await
            .is_err()
    );
    assert_eq!(outbox.pending().await.unwrap(), 1);
    // The next relay publishes it again: two entries, one event id.
    assert_eq!(outbox.relay_once(&sink, 10).await.unwrap(), 1);
    let key = format!("{}{STREAM}", redis.prefix);
    assert_eq!(stream_len(&redis, &key).await, 2);

    let applier = PgApplier::new(&db, "routing").await;
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "routing", "c1"),
        applier.clone(),
        stop_rx,
    ));
    wait_for(
        async || applier.deliveries.load(Ordering::SeqCst) == 2,
        "both deliveries",
    )
    .await;
    assert_eq!(applier.effects().await, 1, "applied exactly once");
    let processed: String = sqlx::query_scalar("SELECT event_id FROM processed_events")
        .fetch_one(&applier.pool)
        .await
        .unwrap();
    assert_eq!(processed, msg.event_id.to_string());
    stop.send(true).unwrap();
    consumer.await.unwrap().unwrap();
}

/// Fails the first `failures` deliveries, then succeeds.
struct Flaky {
    failures: usize,
    seen: AtomicUsize,
    applied: AtomicUsize,
}

#[async_trait::async_trait]
impl EventHandler for Flaky {
    async fn handle(&self, _: &Delivery) -> Result<(), HandlerError> {
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(HandlerError::Transient("database briefly away".into()));
        }
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn publish_one(redis: &TestRedis, case: &str) {
    let sink = RedisSink::connect(&redis.client(), &redis.prefix)
        .await
        .unwrap();
    let msg = petition_events::to_outbox(STREAM, &envelope(case));
    sink.publish(&[OutboxRow {
        seq: 1,
        event_id: msg.event_id,
        stream: msg.stream,
        payload: msg.payload,
    }])
    .await
    .unwrap();
}

async fn pending_count(redis: &TestRedis, group: &str) -> usize {
    let mut c = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let reply: redis::streams::StreamPendingReply =
        redis::AsyncCommands::xpending(&mut c, format!("{}{STREAM}", redis.prefix), group)
            .await
            .unwrap();
    reply.count()
}

#[tokio::test]
async fn a_failed_delivery_is_reclaimed_and_retried() {
    let redis = require!(TestRedis::create());
    let flaky = Arc::new(Flaky {
        failures: 1,
        seen: AtomicUsize::new(0),
        applied: AtomicUsize::new(0),
    });
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "supervision", "c1"),
        flaky.clone(),
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
    consumer.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_consumer_that_died_holding_entries_is_taken_over() {
    let redis = require!(TestRedis::create());
    publish_one(&redis, "4").await;
    // The first consumer reads the entry and dies before acknowledging it.
    {
        let mut c = redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let key = format!("{}{STREAM}", redis.prefix);
        petition_events::redis_bus::ensure_group(&mut c, &key, "analytics")
            .await
            .unwrap();
        let opts = redis::streams::StreamReadOptions::default()
            .group("analytics", "dead-consumer")
            .count(10);
        let read: redis::streams::StreamReadReply =
            redis::AsyncCommands::xread_options(&mut c, &[&key], &[">"], &opts)
                .await
                .unwrap();
        assert_eq!(read.keys[0].ids.len(), 1);
    }
    let ok = Arc::new(Flaky {
        failures: 0,
        seen: AtomicUsize::new(0),
        applied: AtomicUsize::new(0),
    });
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "analytics", "c2"),
        ok.clone(),
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
    stop.send(true).unwrap();
    consumer.await.unwrap().unwrap();
}

#[tokio::test]
async fn poison_and_hopeless_entries_go_to_the_dead_letter_stream() {
    let redis = require!(TestRedis::create());
    let key = format!("{}{STREAM}", redis.prefix);
    let dead = format!("{key}.dead");
    let never = Arc::new(Flaky {
        failures: usize::MAX,
        seen: AtomicUsize::new(0),
        applied: AtomicUsize::new(0),
    });
    let (stop, stop_rx) = watch::channel(false);
    let consumer = tokio::spawn(run_redis_consumer(
        redis.client(),
        consumer_cfg(&redis, "routing", "c1"),
        never.clone(),
        stop_rx,
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Undecodable: dead at once.
    let mut c = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: String =
        redis::AsyncCommands::xadd(&mut c, &key, "*", &[("event", b"\xff\xff".as_slice())])
            .await
            .unwrap();
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
    consumer.await.unwrap().unwrap();
}

/// The embedded default: SQLite outbox + in-process bus.
struct SqliteApplier {
    pool: SqlitePool,
    block_after: Option<usize>,
    seen: AtomicUsize,
}

#[async_trait::async_trait]
impl EventHandler for SqliteApplier {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        if self.block_after.is_some_and(|b| n >= b) {
            // The process is about to die in the middle of a batch.
            std::future::pending::<()>().await;
        }
        let t = |e: sqlx::Error| HandlerError::Transient(e.to_string());
        let mut tx = self.pool.begin().await.map_err(t)?;
        if processed::first_time_sqlite(&mut tx, "analytics", &d.envelope.event_id)
            .await
            .map_err(t)?
        {
            sqlx::query("INSERT INTO effects (event_id) VALUES (?1)")
                .bind(&d.envelope.event_id)
                .execute(&mut *tx)
                .await
                .map_err(t)?;
        }
        tx.commit().await.map_err(t)
    }
}

#[tokio::test]
async fn in_process_events_not_delivered_before_a_restart_are_delivered_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let producer_url = format!("sqlite://{}/producer.db", dir.path().display());
    let consumer_url = format!("sqlite://{}/consumer.db", dir.path().display());
    let consumer_pool = petition_storage::connect_sqlite(&consumer_url)
        .await
        .unwrap();
    sqlx::raw_sql(processed::SQLITE_DDL)
        .execute(&consumer_pool)
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE effects (event_id TEXT NOT NULL)")
        .execute(&consumer_pool)
        .await
        .unwrap();

    // First life: three events committed; the consumer applies one and the process dies.
    {
        let pool = petition_storage::connect_sqlite(&producer_url)
            .await
            .unwrap();
        let outbox = Arc::new(SqliteOutbox::install(pool.clone()).await.unwrap());
        for case in ["6", "7", "8"] {
            let msg = petition_events::to_outbox(STREAM, &envelope(case));
            let mut tx = pool.begin().await.unwrap();
            petition_events::outbox::enqueue_sqlite(&mut tx, &msg)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let bus = InProcessBus::new();
        let sub = bus.subscribe(
            STREAM,
            "analytics",
            Arc::new(SqliteApplier {
                pool: consumer_pool.clone(),
                block_after: Some(1),
                seen: AtomicUsize::new(0),
            }),
        );
        let (_stop, stop_rx) = watch::channel(false);
        let relay =
            tokio::spawn(Relay::new(outbox.clone(), bus, Arc::new(Notify::new())).run(stop_rx));
        tokio::time::sleep(Duration::from_millis(200)).await;
        relay.abort();
        sub.abort();
        let _ = relay.await;
        assert_eq!(
            outbox.pending().await.unwrap(),
            3,
            "the batch was never acknowledged"
        );
        pool.close().await;
    }

    // Second life: everything is delivered, the already-applied event is not applied again.
    let pool = petition_storage::connect_sqlite(&producer_url)
        .await
        .unwrap();
    let outbox = Arc::new(SqliteOutbox::install(pool.clone()).await.unwrap());
    let bus = InProcessBus::new();
    bus.subscribe(
        STREAM,
        "analytics",
        Arc::new(SqliteApplier {
            pool: consumer_pool.clone(),
            block_after: None,
            seen: AtomicUsize::new(0),
        }),
    );
    let (stop, stop_rx) = watch::channel(false);
    let relay = tokio::spawn(Relay::new(outbox.clone(), bus, Arc::new(Notify::new())).run(stop_rx));
    wait_for(
        async || outbox.pending().await.unwrap() == 0,
        "the redelivery",
    )
    .await;
    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(&consumer_pool)
        .await
        .unwrap();
    assert_eq!(effects, 3);
    stop.send(true).unwrap();
    relay.await.unwrap();
}

#[tokio::test]
async fn the_envelope_carries_the_current_trace() {
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
