//! Consumers whose effect lives in the same database as their processed-event marks. The
//! runner below owns the transaction: it marks a read's events in one statement, applies each
//! first-seen one in order, and commits once. Under load that turns a transaction per event
//! into a transaction per read, which is where a consumer spends its time (a round trip per
//! BEGIN, mark, COMMIT and XACK); idle, a read holds one event and nothing waits for a batch
//! to fill. Exactly once holds as before: the marks commit with the effects or not at all.

use crate::{BatchError, Delivery, EventHandler, HandlerError};
use petition_storage::{Db, Tx};
use std::time::Instant;
use tracing::Instrument;

/// Why one event could not be applied inside a batch's transaction.
#[derive(Debug)]
pub enum ApplyError {
    /// Another writer changed the record since it was read. The implementation must notice it
    /// at its first write, by a statement that did not fail (a versioned UPDATE that matched
    /// nothing, an INSERT … ON CONFLICT DO NOTHING that inserted nothing), so that the
    /// transaction is still usable: the runner then applies the same event again at once, in
    /// the same transaction, where a fresh read sees the other writer's commit. A failed
    /// statement would abort the whole transaction on PostgreSQL.
    Conflict,
    Failed(HandlerError),
}

impl From<HandlerError> for ApplyError {
    fn from(e: HandlerError) -> Self {
        ApplyError::Failed(e)
    }
}

/// A store's conflict is the runner's cue to apply again; anything else fails the event.
impl From<petition_storage::StoreError> for ApplyError {
    fn from(e: petition_storage::StoreError) -> Self {
        match e {
            petition_storage::StoreError::Conflict => ApplyError::Conflict,
            e => ApplyError::store(e),
        }
    }
}

impl ApplyError {
    /// A failed store call: unavailable when the database could not be reached, transient
    /// otherwise (see [`HandlerError::from_store`]).
    pub fn store(e: impl std::error::Error + 'static) -> Self {
        ApplyError::Failed(HandlerError::from_store(e))
    }
}

#[async_trait::async_trait]
pub trait Apply: Send + Sync + 'static {
    /// Whether the event can change anything here. Those that cannot (most of a stream, for a
    /// consumer that follows a few of its types) are acknowledged without a transaction or a
    /// processed mark: an event with no effect has nothing to apply twice.
    fn wants(&self, _d: &Delivery) -> bool {
        true
    }

    /// Applies one event, seen for the first time, inside `tx`. Returns whether it changed
    /// anything.
    async fn apply(&self, tx: &mut Tx, d: &Delivery) -> Result<bool, ApplyError>;

    /// Called after a commit in which `changed` events changed something (to wake the relay,
    /// say). Never called for a transaction that rolled back.
    fn committed(&self, _changed: usize) {}
}

/// How many times one event is applied again after conflicts before the batch gives up and
/// leaves it to redelivery.
const CONFLICT_TRIES: usize = 5;

/// An [`Apply`] run as an [`EventHandler`] of `group`, each read in one transaction.
pub struct Transactional<A> {
    db: Db,
    group: String,
    apply: A,
}

impl<A: Apply> Transactional<A> {
    pub fn new(db: Db, group: &str, apply: A) -> Self {
        Self {
            db,
            group: group.to_owned(),
            apply,
        }
    }

    /// All of `batch` or none of it. `spans` is false for a single delivery, which the runner
    /// has already put in its span.
    async fn run(&self, batch: &[Delivery], spans: bool) -> Result<(), HandlerError> {
        let batch: Vec<&Delivery> = batch.iter().filter(|d| self.apply.wants(d)).collect();
        if batch.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut tx = self.db.begin().await.map_err(HandlerError::from_store)?;
        let mut fresh = crate::processed::first_times(
            &mut tx,
            &self.group,
            batch.iter().map(|d| d.envelope.event_id.as_str()),
        )
        .await
        .map_err(HandlerError::from_store)?;
        let mut changed = 0;
        for d in batch.iter().copied() {
            // `remove`: an event twice in one read is applied once.
            if !fresh.remove(&d.envelope.event_id) {
                continue;
            }
            let span = if spans {
                d.span()
            } else {
                tracing::Span::current()
            };
            let mut tries = 0;
            loop {
                tries += 1;
                match self.apply.apply(&mut tx, d).instrument(span.clone()).await {
                    Ok(c) => {
                        changed += usize::from(c);
                        break;
                    }
                    Err(ApplyError::Conflict) if tries < CONFLICT_TRIES => {}
                    Err(ApplyError::Conflict) => {
                        return Err(HandlerError::Transient(format!(
                            "event {} kept conflicting with other writers",
                            d.envelope.event_id
                        )));
                    }
                    // Dropping `tx` rolls back every effect and mark of the batch.
                    Err(ApplyError::Failed(e)) => return Err(e),
                }
            }
        }
        tx.commit().await.map_err(HandlerError::from_store)?;
        metrics::histogram!("events_batch_size", "group" => self.group.clone())
            .record(batch.len() as f64);
        metrics::histogram!("events_batch_seconds", "group" => self.group.clone())
            .record(started.elapsed().as_secs_f64());
        if changed > 0 {
            self.apply.committed(changed);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<A: Apply> EventHandler for Transactional<A> {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        self.run(std::slice::from_ref(d), false).await
    }

    /// A failed batch rolled back whole: nothing of it is applied.
    async fn handle_batch(&self, batch: &[Delivery]) -> Result<(), BatchError> {
        self.run(batch, true)
            .await
            .map_err(|error| BatchError { applied: 0, error })
    }
}
