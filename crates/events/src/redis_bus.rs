//! Redis Streams: the relay's sink and the consumer runner.
//!
//! Redis is the transport and the outbox the durable log, so everything here is built to
//! survive Redis going away: the sink reconnects on its own and refuses to write to a stream
//! that lost what it was given (the relay then refills it from the outbox); a consumer
//! reconnects with backoff after any error, re-creates its group when Redis came back empty,
//! and reports itself not ready while it cannot read.

use crate::outbox::{EntryId, EventSink, OutboxRow, Published};
use crate::{BusError, Delivery, EventHandler, HandlerError};
use chrono::{DateTime, Utc};
use petition_proto::v1::EventEnvelope;
use petition_telemetry::ReadinessFlag;
use prost::Message;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{
    StreamClaimReply, StreamId, StreamInfoConsumersReply, StreamInfoGroupsReply,
    StreamPendingCountReply, StreamPendingReply, StreamReadOptions, StreamReadReply,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, watch};
use tracing::Instrument;

/// Field names inside a stream entry.
pub const FIELD_EVENT: &str = "event";
pub const FIELD_ID: &str = "event_id";

/// Checks, atomically with the writes, that every stream of the batch still holds the last
/// entry this relay gave it, then appends the batch. A stream that lost entries is reported and
/// nothing is written, so the relay can put the lost rows back in order first.
///
/// KEYS: the batch's streams. ARGV[1..#KEYS]: the last id given to each ('' = none known).
/// Then triples: index into KEYS, payload, event id.
const PUBLISH_SCRIPT: &str = r"
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function older(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local n = #KEYS
for i = 1, n do
  local expected = ARGV[i]
  if expected ~= '' then
    if redis.call('EXISTS', KEYS[i]) == 0 then
      return {'lost', tostring(i), ''}
    end
    local info = redis.call('XINFO', 'STREAM', KEYS[i])
    local last = nil
    for j = 1, #info, 2 do
      if info[j] == 'last-generated-id' then last = info[j + 1] end
    end
    if last == nil or older(last, expected) then
      return {'lost', tostring(i), last or ''}
    end
  end
end
local out = {'ok'}
for j = n + 1, #ARGV, 3 do
  out[#out + 1] = redis.call('XADD', KEYS[tonumber(ARGV[j])], '*', 'event', ARGV[j + 1], 'event_id', ARGV[j + 2])
end
return out
";

/// Publishes outbox rows to `<prefix><stream>`.
pub struct RedisSink {
    client: redis::Client,
    prefix: String,
    conn: Mutex<Option<ConnectionManager>>,
    script: redis::Script,
}

impl RedisSink {
    /// A sink that connects on first use, so that a service starts (not ready) while Redis is
    /// still coming up.
    pub fn new(client: redis::Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_owned(),
            conn: Mutex::new(None),
            script: redis::Script::new(PUBLISH_SCRIPT),
        }
    }

    async fn conn(&self) -> Result<ConnectionManager, BusError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let c = self
            .client
            .get_connection_manager_with_config(config)
            .await?;
        *guard = Some(c.clone());
        Ok(c)
    }

    fn key(&self, stream: &str) -> String {
        format!("{}{}", self.prefix, stream)
    }

    async fn run_script(
        &self,
        streams: &[&str],
        known: &HashMap<String, EntryId>,
        batch: &[OutboxRow],
    ) -> Result<Published, BusError> {
        let mut inv = self.script.prepare_invoke();
        for s in streams {
            inv.key(self.key(s));
        }
        for s in streams {
            inv.arg(known.get(*s).map(|e| e.to_string()).unwrap_or_default());
        }
        for row in batch {
            let index = streams.iter().position(|s| *s == row.stream).unwrap_or(0) + 1;
            inv.arg(index)
                .arg(&row.payload[..])
                .arg(row.event_id.to_string());
        }
        let mut conn = self.conn().await?;
        let reply: Vec<String> = inv.invoke_async(&mut conn).await?;
        match reply.first().map(String::as_str) {
            Some("ok") => Ok(Published::Done(
                reply[1..]
                    .iter()
                    .map(|id| id.parse().map(Some))
                    .collect::<Result<_, _>>()?,
            )),
            Some("lost") => {
                let index: usize = reply
                    .get(1)
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| BusError::Other(format!("publish script said {reply:?}")))?;
                let last = reply
                    .get(2)
                    .filter(|l| !l.is_empty())
                    .map(|l| l.parse())
                    .transpose()?;
                Ok(Published::Lost {
                    stream: streams[index - 1].to_owned(),
                    last,
                })
            }
            _ => Err(BusError::Other(format!("publish script said {reply:?}"))),
        }
    }

    /// The lowest id every group of `key` still needs: its oldest pending entry, or, with
    /// nothing pending, the last entry it was given. `None` when no group reads the stream.
    async fn acknowledged_floor(&self, key: &str) -> Result<Option<EntryId>, BusError> {
        let mut conn = self.conn().await?;
        let groups: StreamInfoGroupsReply = match conn.xinfo_groups(key).await {
            Ok(g) => g,
            Err(e) if e.code() == Some("ERR") => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut floor: Option<EntryId> = None;
        for g in &groups.groups {
            let needed: EntryId = if g.pending > 0 {
                let summary: StreamPendingReply = conn.xpending(key, &g.name).await?;
                match summary {
                    StreamPendingReply::Data(d) => d.start_id.parse()?,
                    _ => g.last_delivered_id.parse()?,
                }
            } else {
                g.last_delivered_id.parse()?
            };
            floor = Some(floor.map_or(needed, |f| f.min(needed)));
        }
        Ok(floor)
    }
}

#[async_trait::async_trait]
impl EventSink for RedisSink {
    async fn publish(
        &self,
        batch: &[OutboxRow],
        known: &HashMap<String, EntryId>,
    ) -> Result<Published, BusError> {
        let mut streams: Vec<&str> = Vec::new();
        for row in batch {
            if !streams.contains(&row.stream.as_str()) {
                streams.push(&row.stream);
            }
        }
        self.run_script(&streams, known, batch).await
    }

    async fn check(&self, known: &HashMap<String, EntryId>) -> Result<Published, BusError> {
        let streams: Vec<&str> = known.keys().map(String::as_str).collect();
        if streams.is_empty() {
            // Still touch Redis, so that a relay with nothing to publish notices it is gone.
            let mut conn = self.conn().await?;
            let () = redis::cmd("PING").query_async(&mut conn).await?;
            return Ok(Published::Done(Vec::new()));
        }
        self.run_script(&streams, known, &[]).await
    }

    /// `XTRIM MINID`: only below what every group has acknowledged, and only entries older
    /// than `before`. A stream no group reads is left alone: nobody has acknowledged anything.
    async fn trim(&self, stream: &str, before: DateTime<Utc>) -> Result<u64, BusError> {
        let key = self.key(stream);
        let Some(floor) = self.acknowledged_floor(&key).await? else {
            return Ok(0);
        };
        let age = EntryId {
            ms: before.timestamp_millis().max(0) as u64,
            seq: 0,
        };
        let minid = floor.min(age);
        let mut conn = self.conn().await?;
        // Exact, not `~`: it runs once a maintenance round, and an approximate trim of a
        // small stream trims nothing at all.
        let trimmed: u64 = redis::cmd("XTRIM")
            .arg(&key)
            .arg("MINID")
            .arg(minid.to_string())
            .query_async(&mut conn)
            .await?;
        if trimmed > 0 {
            tracing::debug!(stream = %key, trimmed, %minid, "stream trimmed");
        }
        Ok(trimmed)
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
    /// a consumer of the group idle this long with nothing pending is removed from it
    pub dead_after: Duration,
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
            dead_after: Duration::from_secs(300),
        }
    }
}

/// Creates the consumer group (and the stream) if missing; the group starts at the beginning
/// so that nothing published before the first consumer — or refilled after Redis lost its data
/// — is missed.
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

/// What a stream entry holds.
enum Decoded {
    Event(Box<EventEnvelope>),
    /// deleted from the stream while pending: its fields are gone
    Deleted,
    Bad(String),
}

struct Consumer {
    cfg: ConsumerConfig,
    ctl: MultiplexedConnection,
    handler: Arc<dyn EventHandler>,
}

/// Runs a consumer until `shutdown` turns true, through any number of Redis outages: after an
/// error it reports not ready, waits (50 ms doubling to 5 s), reconnects and goes on.
pub async fn run_redis_consumer(
    client: redis::Client,
    cfg: ConsumerConfig,
    handler: Arc<dyn EventHandler>,
    readiness: Option<ReadinessFlag>,
    mut shutdown: watch::Receiver<bool>,
) {
    // At zero from the start, so that an alert on their increase sees the first one.
    for counter in ["events_consumer_errors_total", "events_dead_lettered_total"] {
        metrics::counter!(counter, "group" => cfg.group.clone()).absolute(0);
    }
    let mut backoff = Duration::from_millis(50);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let started = Instant::now();
        match session(
            &client,
            &cfg,
            handler.clone(),
            readiness.as_ref(),
            &mut shutdown,
        )
        .await
        {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, stream = %cfg.stream, group = %cfg.group, "consumer lost Redis; reconnecting");
                metrics::counter!("events_consumer_errors_total", "group" => cfg.group.clone())
                    .increment(1);
                if let Some(f) = &readiness {
                    f.failing(format!("consumer {} of {}: {e}", cfg.group, cfg.stream));
                }
                if started.elapsed() > Duration::from_secs(10) {
                    backoff = Duration::from_millis(50);
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One connected life of a consumer; returns Ok at shutdown and Err when Redis fails it.
async fn session(
    client: &redis::Client,
    cfg: &ConsumerConfig,
    handler: Arc<dyn EventHandler>,
    readiness: Option<&ReadinessFlag>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), BusError> {
    let connect = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    let mut ctl = client
        .get_multiplexed_async_connection_with_config(&connect)
        .await?;
    // A blocking read gets its own connection whose timeout outlasts the block; on the shared
    // one it would stall every other command and trip the response timeout.
    let read_cfg = connect.set_response_timeout(Some(cfg.block + Duration::from_secs(10)));
    let mut reader = client
        .get_multiplexed_async_connection_with_config(&read_cfg)
        .await?;
    ensure_group(&mut ctl, &cfg.stream, &cfg.group).await?;
    let consumer = Consumer {
        cfg: cfg.clone(),
        ctl,
        handler,
    };
    // What this consumer was handed before a reconnect and never acknowledged comes first.
    consumer.read(&mut reader, "0").await?;
    if let Some(f) = readiness {
        f.ready();
    }
    let reclaim_every = (cfg.min_idle / 2).max(Duration::from_millis(50));
    let mut last_reclaim: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        if last_reclaim.is_none_or(|t| t.elapsed() >= reclaim_every) {
            consumer.reclaim().await?;
            consumer.maintain().await?;
            last_reclaim = Some(Instant::now());
        }
        tokio::select! {
            r = consumer.read(&mut reader, ">") => r?,
            _ = shutdown.changed() => return Ok(()),
        }
        if let Some(f) = readiness {
            f.ready();
        }
    }
}

impl Consumer {
    /// Reads one batch (`>`: new entries; `0`: this consumer's own pending ones) and
    /// processes it. A group that vanished (Redis restarted empty) is created again.
    async fn read(&self, reader: &mut MultiplexedConnection, from: &str) -> Result<(), BusError> {
        let opts = StreamReadOptions::default()
            .group(&self.cfg.group, &self.cfg.consumer)
            .count(self.cfg.batch);
        let opts = if from == ">" {
            opts.block(self.cfg.block.as_millis() as usize)
        } else {
            opts
        };
        let keys = [self.cfg.stream.as_str()];
        let reply: StreamReadReply = match reader.xread_options(&keys, &[from], &opts).await {
            Ok(r) => r,
            Err(e) if e.code() == Some("NOGROUP") => {
                tracing::warn!(stream = %self.cfg.stream, group = %self.cfg.group,
                    "the consumer group is gone (Redis restarted without its data?); creating it again");
                let mut c = self.ctl.clone();
                ensure_group(&mut c, &self.cfg.stream, &self.cfg.group).await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let mut entries: Vec<StreamId> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
        if entries.len() == 1
            && let Some(entry) = entries.pop()
        {
            return self.process(entry, 1).await;
        }
        self.process_batch(entries).await
    }

    /// The entries of one read, applied together when the handler can. Entries that cannot be
    /// decoded go to the dead letters first; after a failed batch the rest are processed one
    /// at a time, each with its own verdict.
    async fn process_batch(&self, entries: Vec<StreamId>) -> Result<(), BusError> {
        let mut batch = Vec::with_capacity(entries.len());
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            match self.decode(&entry) {
                Decoded::Event(envelope) => {
                    batch.push(self.delivery(&entry, *envelope, 1));
                    kept.push(entry);
                }
                Decoded::Deleted => self.ack(&[&entry.id]).await?,
                Decoded::Bad(reason) => self.dead_letter(&entry, &reason).await?,
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let (applied, error) = match self.handler.handle_batch(&batch).await {
            Ok(()) => (batch.len(), None),
            Err(e) => (e.applied.min(batch.len()), Some(e.error)),
        };
        if applied > 0 {
            let ids: Vec<&str> = kept[..applied].iter().map(|e| e.id.as_str()).collect();
            metrics::counter!("events_consumed_total", "group" => self.cfg.group.clone())
                .increment(applied as u64);
            self.ack(&ids).await?;
        }
        match error {
            None => Ok(()),
            Some(HandlerError::Unavailable(reason)) => {
                Err(BusError::Other(format!("handler unavailable: {reason}")))
            }
            Some(e) => {
                tracing::debug!(error = %e, applied, of = batch.len(), group = %self.cfg.group,
                    "batch failed; applying the rest one at a time");
                for entry in kept.into_iter().skip(applied) {
                    self.process(entry, 1).await?;
                }
                Ok(())
            }
        }
    }

    fn decode(&self, entry: &StreamId) -> Decoded {
        let bytes: Option<Vec<u8>> = entry.get(FIELD_EVENT);
        match bytes.as_deref().map(EventEnvelope::decode) {
            Some(Ok(env)) => Decoded::Event(Box::new(env)),
            Some(Err(e)) => Decoded::Bad(format!("undecodable envelope: {e}")),
            // A deleted entry still pending has no fields: nothing to apply, just let it go.
            None if entry.map.is_empty() => Decoded::Deleted,
            None => Decoded::Bad("entry has no event field".into()),
        }
    }

    fn delivery(&self, entry: &StreamId, envelope: EventEnvelope, attempt: u64) -> Delivery {
        Delivery {
            stream: self.cfg.stream.clone(),
            group: self.cfg.group.clone(),
            bus: "redis",
            entry_id: entry.id.clone(),
            envelope,
            attempt,
        }
    }

    async fn process(&self, entry: StreamId, attempt: u64) -> Result<(), BusError> {
        let envelope = match self.decode(&entry) {
            Decoded::Event(env) => *env,
            Decoded::Deleted => return self.ack(&[&entry.id]).await,
            Decoded::Bad(reason) => return self.dead_letter(&entry, &reason).await,
        };
        let delivery = self.delivery(&entry, envelope, attempt);
        let span = delivery.span();
        match self.handler.handle(&delivery).instrument(span).await {
            Ok(()) => {
                metrics::counter!("events_consumed_total", "group" => self.cfg.group.clone())
                    .increment(1);
                self.ack(&[&entry.id]).await
            }
            Err(HandlerError::Poison(reason)) => self.dead_letter(&entry, &reason).await,
            Err(HandlerError::Transient(reason)) if attempt >= self.cfg.max_deliveries => {
                self.dead_letter(
                    &entry,
                    &format!("failed {attempt} deliveries, last: {reason}"),
                )
                .await
            }
            Err(HandlerError::Unavailable(reason)) => {
                // Left pending, uncounted: this consumer pauses, reports not ready, and takes it
                // up again from its own pending entries once it reconnects.
                Err(BusError::Other(format!("handler unavailable: {reason}")))
            }
            Err(HandlerError::Transient(reason)) => {
                // Left pending: reclaimed and retried after min_idle.
                tracing::warn!(entry = %entry.id, attempt, %reason, "event left pending for retry");
                metrics::counter!("events_consumer_errors_total", "group" => self.cfg.group.clone())
                    .increment(1);
                Ok(())
            }
        }
    }

    /// One XACK for a whole batch.
    async fn ack(&self, ids: &[&str]) -> Result<(), BusError> {
        let mut c = self.ctl.clone();
        // A failed XACK leaves the entries pending; they are redelivered and applied
        // idempotently.
        let _: i64 = c.xack(&self.cfg.stream, &self.cfg.group, ids).await?;
        Ok(())
    }

    async fn dead_letter(&self, entry: &StreamId, reason: &str) -> Result<(), BusError> {
        tracing::error!(entry = %entry.id, stream = %self.cfg.stream, group = %self.cfg.group, %reason, "event sent to the dead-letter stream");
        metrics::counter!("events_dead_lettered_total", "group" => self.cfg.group.clone())
            .increment(1);
        let event: Vec<u8> = entry.get(FIELD_EVENT).unwrap_or_default();
        let mut c = self.ctl.clone();
        // Written before the XACK: if Redis fails between the two, the entry stays pending
        // rather than being lost.
        let _: String = c
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
            .await?;
        self.ack(&[&entry.id]).await
    }

    /// Takes over entries another consumer (or an earlier life of this one) left pending.
    async fn reclaim(&self) -> Result<(), BusError> {
        let mut c = self.ctl.clone();
        let pending: StreamPendingCountReply = c
            .xpending_count(&self.cfg.stream, &self.cfg.group, "-", "+", 100)
            .await?;
        let min_idle_ms = self.cfg.min_idle.as_millis() as usize;
        // No entry goes to the dead letters for its delivery count alone: the handler decides
        // (transient failures count, an unavailable database does not).
        for p in pending
            .ids
            .into_iter()
            .filter(|p| p.last_delivered_ms >= min_idle_ms)
        {
            let delivered = p.times_delivered as u64;
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
                self.process(entry, delivered + 1).await?;
            }
        }
        Ok(())
    }

    /// Removes consumers of the group that are gone (idle past `dead_after` with nothing left
    /// pending: `reclaim` took their entries), and reports lag and pending.
    async fn maintain(&self) -> Result<(), BusError> {
        let mut c = self.ctl.clone();
        let consumers: StreamInfoConsumersReply =
            c.xinfo_consumers(&self.cfg.stream, &self.cfg.group).await?;
        let dead_ms = self.cfg.dead_after.as_millis() as usize;
        for gone in consumers
            .consumers
            .iter()
            .filter(|x| x.name != self.cfg.consumer && x.pending == 0 && x.idle >= dead_ms)
        {
            let _: i64 = c
                .xgroup_delconsumer(&self.cfg.stream, &self.cfg.group, &gone.name)
                .await?;
            tracing::info!(consumer = %gone.name, group = %self.cfg.group, "removed a consumer that is gone");
            metrics::counter!("stream_consumers_removed_total", "group" => self.cfg.group.clone())
                .increment(1);
        }
        let groups: StreamInfoGroupsReply = c.xinfo_groups(&self.cfg.stream).await?;
        if let Some(g) = groups.groups.iter().find(|g| g.name == self.cfg.group) {
            let labels = [
                ("stream", self.cfg.stream.clone()),
                ("group", self.cfg.group.clone()),
            ];
            metrics::gauge!("stream_group_pending", &labels).set(g.pending as f64);
            if let Some(lag) = g.lag {
                metrics::gauge!("stream_group_lag", &labels).set(lag as f64);
            }
        }
        Ok(())
    }
}
