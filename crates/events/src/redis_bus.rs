//! Redis Streams: the relay's sink (XADD in pipelined batches) and the consumer runner
//! (XREADGROUP + XACK, reclaim of stuck entries, dead letters after N deliveries).

use crate::outbox::{EventSink, OutboxRow};
use crate::{BusError, Delivery, EventHandler, HandlerError, delivery_span};
use petition_proto::v1::EventEnvelope;
use prost::Message;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{
    StreamClaimReply, StreamId, StreamPendingCountReply, StreamRangeReply, StreamReadOptions,
    StreamReadReply,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;

/// Field names inside a stream entry.
pub const FIELD_EVENT: &str = "event";
pub const FIELD_ID: &str = "event_id";

/// Publishes outbox rows to `<prefix><stream>`.
#[derive(Clone)]
pub struct RedisSink {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisSink {
    pub async fn connect(client: &redis::Client, prefix: &str) -> Result<Self, BusError> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let conn = client.get_connection_manager_with_config(config).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }
}

#[async_trait::async_trait]
impl EventSink for RedisSink {
    async fn publish(&self, batch: &[OutboxRow]) -> Result<(), BusError> {
        let mut pipe = redis::pipe();
        for row in batch {
            pipe.cmd("XADD")
                .arg(format!("{}{}", self.prefix, row.stream))
                .arg("*")
                .arg(FIELD_EVENT)
                .arg(&row.payload[..])
                .arg(FIELD_ID)
                .arg(row.event_id.to_string())
                .ignore();
        }
        let mut conn = self.conn.clone();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// the full stream key, prefix included
    pub stream: String,
    pub group: String,
    pub consumer: String,
    pub batch: usize,
    pub block: Duration,
    /// an entry pending this long with its consumer is taken over by another
    pub min_idle: Duration,
    /// after this many deliveries an entry goes to the dead-letter stream
    pub max_deliveries: u64,
    pub dead_letter_stream: String,
}

impl ConsumerConfig {
    pub fn new(stream: &str, group: &str, consumer: &str) -> Self {
        Self {
            stream: stream.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            batch: 128,
            block: Duration::from_secs(2),
            min_idle: Duration::from_secs(30),
            max_deliveries: 5,
            dead_letter_stream: format!("{stream}.dead"),
        }
    }
}

/// Creates the consumer group (and the stream) if missing; the group starts at the beginning
/// so that nothing published before the first consumer is missed.
pub async fn ensure_group(
    conn: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
) -> Result<(), BusError> {
    let r: Result<(), redis::RedisError> = conn.xgroup_create_mkstream(stream, group, "0").await;
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

struct Consumer {
    cfg: ConsumerConfig,
    ctl: MultiplexedConnection,
    handler: Arc<dyn EventHandler>,
}

/// Runs a consumer until `shutdown` turns true.
pub async fn run_redis_consumer(
    client: redis::Client,
    cfg: ConsumerConfig,
    handler: Arc<dyn EventHandler>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), BusError> {
    let mut ctl = client.get_multiplexed_async_connection().await?;
    // A blocking read gets its own connection whose timeout outlasts the block; on the shared
    // one it would stall every other command and trip the 500 ms default timeout.
    let read_cfg = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(cfg.block + Duration::from_secs(10)));
    let mut reader = client
        .get_multiplexed_async_connection_with_config(&read_cfg)
        .await?;
    ensure_group(&mut ctl, &cfg.stream, &cfg.group).await?;
    let consumer = Consumer { cfg, ctl, handler };
    let opts = StreamReadOptions::default()
        .group(&consumer.cfg.group, &consumer.cfg.consumer)
        .count(consumer.cfg.batch)
        .block(consumer.cfg.block.as_millis() as usize);
    let reclaim_every = (consumer.cfg.min_idle / 2).max(Duration::from_millis(50));
    let mut last_reclaim: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        if last_reclaim.is_none_or(|t| t.elapsed() >= reclaim_every) {
            if let Err(e) = consumer.reclaim().await {
                tracing::warn!(error = %e, stream = %consumer.cfg.stream, "reclaim failed");
            }
            last_reclaim = Some(Instant::now());
        }
        let keys = [consumer.cfg.stream.as_str()];
        let read = tokio::select! {
            r = reader.xread_options::<_, _, StreamReadReply>(&keys, &[">"], &opts) => r,
            _ = shutdown.changed() => return Ok(()),
        };
        match read {
            Ok(reply) => {
                for key in reply.keys {
                    for entry in key.ids {
                        consumer.process(entry, 1).await;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, stream = %consumer.cfg.stream, "XREADGROUP failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

impl Consumer {
    async fn process(&self, entry: StreamId, attempt: u64) {
        let bytes: Option<Vec<u8>> = entry.get(FIELD_EVENT);
        let envelope = match bytes.as_deref().map(EventEnvelope::decode) {
            Some(Ok(env)) => env,
            Some(Err(e)) => {
                return self
                    .dead_letter(&entry, &format!("undecodable envelope: {e}"))
                    .await;
            }
            None => return self.dead_letter(&entry, "entry has no event field").await,
        };
        let delivery = Delivery {
            stream: self.cfg.stream.clone(),
            entry_id: entry.id.clone(),
            envelope,
            attempt,
        };
        let span = delivery_span(&delivery, &self.cfg.group);
        let outcome = self.handler.handle(&delivery).instrument(span).await;
        match outcome {
            Ok(()) => {
                metrics::counter!("events_consumed_total", "group" => self.cfg.group.clone())
                    .increment(1);
                self.ack(&entry.id).await;
            }
            Err(HandlerError::Poison(reason)) => self.dead_letter(&entry, &reason).await,
            Err(HandlerError::Transient(reason)) if attempt >= self.cfg.max_deliveries => {
                self.dead_letter(
                    &entry,
                    &format!("failed {attempt} deliveries, last: {reason}"),
                )
                .await
            }
            Err(HandlerError::Transient(reason)) => {
                tracing::warn!(entry = %entry.id, attempt, %reason, "event left pending for retry");
            }
        }
    }

    async fn ack(&self, id: &str) {
        let mut c = self.ctl.clone();
        let r: Result<i64, _> = c.xack(&self.cfg.stream, &self.cfg.group, &[id]).await;
        if let Err(e) = r {
            // Not fatal: the entry is redelivered and applied idempotently.
            tracing::warn!(error = %e, entry = %id, "XACK failed");
        }
    }

    async fn dead_letter(&self, entry: &StreamId, reason: &str) {
        tracing::error!(entry = %entry.id, stream = %self.cfg.stream, group = %self.cfg.group, %reason, "event sent to the dead-letter stream");
        metrics::counter!("events_dead_lettered_total", "group" => self.cfg.group.clone())
            .increment(1);
        let event: Vec<u8> = entry.get(FIELD_EVENT).unwrap_or_default();
        let mut c = self.ctl.clone();
        let r: Result<String, _> = c
            .xadd(
                &self.cfg.dead_letter_stream,
                "*",
                &[
                    ("source_entry", entry.id.as_bytes()),
                    ("group", self.cfg.group.as_bytes()),
                    ("reason", reason.as_bytes()),
                    (FIELD_EVENT, &event[..]),
                ],
            )
            .await;
        match r {
            Ok(_) => self.ack(&entry.id).await,
            // Leave it pending rather than lose it.
            Err(e) => tracing::error!(error = %e, "cannot write the dead-letter stream"),
        }
    }

    /// Takes over entries another consumer (or an earlier life of this one) left pending.
    async fn reclaim(&self) -> Result<(), BusError> {
        let mut c = self.ctl.clone();
        let pending: StreamPendingCountReply = c
            .xpending_count(&self.cfg.stream, &self.cfg.group, "-", "+", 100)
            .await?;
        let min_idle_ms = self.cfg.min_idle.as_millis() as usize;
        for p in pending
            .ids
            .into_iter()
            .filter(|p| p.last_delivered_ms >= min_idle_ms)
        {
            let delivered = p.times_delivered as u64;
            if delivered >= self.cfg.max_deliveries {
                let range: StreamRangeReply = c.xrange(&self.cfg.stream, &p.id, &p.id).await?;
                let entry = range.ids.into_iter().next().unwrap_or(StreamId {
                    id: p.id.clone(),
                    ..Default::default()
                });
                self.dead_letter(
                    &entry,
                    &format!("delivered {delivered} times without success"),
                )
                .await;
                continue;
            }
            let claimed: StreamClaimReply = c
                .xclaim(
                    &self.cfg.stream,
                    &self.cfg.group,
                    &self.cfg.consumer,
                    min_idle_ms,
                    &[&p.id],
                )
                .await?;
            for entry in claimed.ids {
                self.process(entry, delivered + 1).await;
            }
        }
        Ok(())
    }
}
