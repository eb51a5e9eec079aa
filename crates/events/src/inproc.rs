//! The in-process bus of the embedded default. The outbox table is the durable log: the relay
//! marks a row published only after every subscribed group has applied it, so what was not
//! delivered before a restart is delivered after it. Subscribe every group before any relay
//! starts (the service host does), or the first rows are marked published before a late group
//! could see them.

use crate::outbox::{EntryId, EventSink, OutboxRow, Published};
use crate::{BusError, Delivery, EventHandler, HandlerError};
use petition_proto::v1::EventEnvelope;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

struct Batch {
    rows: Vec<OutboxRow>,
    done: oneshot::Sender<()>,
}

struct Subscriber {
    group: String,
    tx: mpsc::Sender<Batch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub group: String,
    pub event_id: String,
    pub reason: String,
}

pub struct InProcessBus {
    subscribers: Mutex<HashMap<String, Vec<Subscriber>>>,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
    max_attempts: u64,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self {
            subscribers: Mutex::default(),
            dead: Arc::default(),
            max_attempts: 5,
        }
    }
}

impl InProcessBus {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Subscribes a consumer group to a stream. Subscribe every group before starting the
    /// relays, or the first rows are marked published before the group can see them.
    pub fn subscribe(
        &self,
        stream: &str,
        group: &str,
        handler: Arc<dyn EventHandler>,
    ) -> tokio::task::JoinHandle<()> {
        let (tx, mut rx) = mpsc::channel::<Batch>(16);
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(stream.to_owned())
            .or_default()
            .push(Subscriber {
                group: group.to_owned(),
                tx,
            });
        let group = group.to_owned();
        let stream = stream.to_owned();
        let dead = self.dead.clone();
        let max_attempts = self.max_attempts;
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                let sub = Sub {
                    stream: &stream,
                    group: &group,
                    handler: handler.as_ref(),
                    max_attempts,
                    dead: &dead,
                };
                sub.deliver_all(&batch.rows).await;
                let _ = batch.done.send(());
            }
        })
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One group's subscription, delivering what the relay hands it.
struct Sub<'a> {
    stream: &'a str,
    group: &'a str,
    handler: &'a dyn EventHandler,
    max_attempts: u64,
    dead: &'a Mutex<Vec<DeadLetter>>,
}

impl Sub<'_> {
    fn bury(&self, event_id: &str, reason: String) {
        tracing::error!(%event_id, group = %self.group, %reason, "event dead-lettered in process");
        self.dead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(DeadLetter {
                group: self.group.to_owned(),
                event_id: event_id.to_owned(),
                reason,
            });
    }

    fn delivery(&self, row: &OutboxRow) -> Option<Delivery> {
        match EventEnvelope::decode(&row.payload[..]) {
            Ok(envelope) => Some(Delivery {
                stream: self.stream.to_owned(),
                group: self.group.to_owned(),
                bus: "in_process",
                entry_id: row.seq.to_string(),
                envelope,
                attempt: 0,
            }),
            Err(e) => {
                self.bury(
                    &row.event_id.to_string(),
                    format!("undecodable envelope: {e}"),
                );
                None
            }
        }
    }

    /// The relay's batch at once when the handler applies it whole; what a failed batch left
    /// goes one at a time, each with its own retries and verdict.
    async fn deliver_all(&self, rows: &[OutboxRow]) {
        let batch: Vec<Delivery> = rows.iter().filter_map(|r| self.delivery(r)).collect();
        let applied = match &batch[..] {
            [] | [_] => 0,
            many => match self.handler.handle_batch(many).await {
                Ok(()) => many.len(),
                Err(e) => e.applied.min(many.len()),
            },
        };
        for d in batch.into_iter().skip(applied) {
            self.deliver(d).await;
        }
    }

    async fn deliver(&self, mut delivery: Delivery) {
        let mut waited = 0u32;
        loop {
            delivery.attempt += 1;
            let span = delivery.span();
            let event_id = delivery.envelope.event_id.clone();
            match self.handler.handle(&delivery).instrument(span).await {
                Ok(()) => return,
                Err(HandlerError::Poison(reason)) => return self.bury(&event_id, reason),
                Err(HandlerError::Unavailable(reason)) => {
                    // The publish waits with it, so the row stays unpublished in the outbox: an
                    // outage delays the event, it never loses it.
                    delivery.attempt -= 1;
                    waited = (waited + 1).min(5);
                    tracing::warn!(%event_id, group = %self.group, %reason, "handler unavailable; retrying");
                    tokio::time::sleep(Duration::from_millis(20 << waited)).await;
                }
                Err(HandlerError::Transient(reason)) if delivery.attempt >= self.max_attempts => {
                    return self.bury(
                        &event_id,
                        format!("failed {} deliveries, last: {reason}", delivery.attempt),
                    );
                }
                Err(HandlerError::Transient(_)) => {
                    tokio::time::sleep(Duration::from_millis(20 << delivery.attempt.min(6))).await;
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl EventSink for InProcessBus {
    async fn publish(
        &self,
        batch: &[OutboxRow],
        _known: &HashMap<String, EntryId>,
    ) -> Result<Published, BusError> {
        let mut by_stream: HashMap<&str, Vec<OutboxRow>> = HashMap::new();
        for row in batch {
            by_stream
                .entry(row.stream.as_str())
                .or_default()
                .push(row.clone());
        }
        let targets: Vec<(String, mpsc::Sender<Batch>, Vec<OutboxRow>)> = {
            let subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
            by_stream
                .into_iter()
                .flat_map(|(stream, rows)| {
                    subs.get(stream)
                        .into_iter()
                        .flatten()
                        .map(move |sub| (sub.group.clone(), sub.tx.clone(), rows.clone()))
                })
                .collect()
        };
        let mut waits = Vec::new();
        for (group, tx, rows) in targets {
            let (done, wait) = oneshot::channel();
            tx.send(Batch { rows, done })
                .await
                .map_err(|_| BusError::SubscriberGone(group.clone()))?;
            waits.push((group, wait));
        }
        for (group, wait) in waits {
            wait.await.map_err(|_| BusError::SubscriberGone(group))?;
        }
        // Nothing is kept between a publish and a delivery, so nothing can be lost: no ids.
        Ok(Published::Done(vec![None; batch.len()]))
    }
}
