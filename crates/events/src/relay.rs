//! The relay: moves outbox rows to the bus, woken at once by a commit (the service notifies it
//! after each transaction), with a poll as a safety net for rows written by other instances.
//! On each poll it also checks that the streams still hold what it gave them, refilling them
//! from the outbox when Redis came back without its data, and from time to time it deletes
//! rows past their retention and trims streams below what every group has acknowledged.

use crate::BusError;
use crate::outbox::{EntryId, EventSink, Outbox, Published};
use petition_telemetry::ReadinessFlag;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify, watch};

/// How a committing writer wakes its relay: at once, and with the time of the wake, so that the
/// relay can tell a wake its last round already covered (the commit came before the round read
/// the outbox) from one that brings new rows. Under load most wakes arrive while a round is
/// running; without the time each would cost a round that finds nothing.
#[derive(Debug)]
pub struct RelayWake {
    notify: Notify,
    base: Instant,
    /// nanoseconds after `base` of the latest wake
    last: AtomicU64,
}

impl Default for RelayWake {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            base: Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

impl RelayWake {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Call after the commit that wrote outbox rows.
    pub fn notify_one(&self) {
        // `fetch_max`: two writers racing must not move the time back past a round's start.
        self.last.fetch_max(self.now(), Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Waits for a wake after `since` (a `now()` taken before the last round read the outbox).
    async fn after(&self, since: u64) {
        loop {
            self.notify.notified().await;
            if self.last.load(Ordering::SeqCst) >= since {
                return;
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub batch_size: usize,
    /// how often the relay looks without being woken, and checks its streams for losses
    pub poll_interval: Duration,
    /// how often published rows past retention are deleted and streams trimmed
    pub maintenance_interval: Duration,
    /// how long published rows stay in the outbox, ready to be published again
    pub retention: chrono::Duration,
    /// how long stream entries stay after every group has acknowledged them
    pub stream_retention: chrono::Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval: Duration::from_secs(1),
            maintenance_interval: Duration::from_secs(60),
            retention: chrono::Duration::days(7),
            stream_retention: chrono::Duration::days(1),
        }
    }
}

pub struct Relay {
    /// the producing service, for logs and metrics
    service: String,
    outbox: Outbox,
    sink: Arc<dyn EventSink>,
    wake: Arc<RelayWake>,
    cfg: RelayConfig,
    readiness: Option<ReadinessFlag>,
    /// per stream, the last entry id this relay gave it; loaded from the outbox on first use
    known: Mutex<Option<HashMap<String, EntryId>>>,
    /// when (on `wake`'s clock) the last round last read the outbox: wakes from before it
    /// brought nothing that read did not see
    read_at: AtomicU64,
}

/// Losses in a row within one drain before the relay gives up until its next round: a bus that
/// keeps losing what it is given is not ready.
const MAX_LOSSES_PER_DRAIN: usize = 3;

impl Relay {
    pub fn new(
        service: &str,
        outbox: Outbox,
        sink: Arc<dyn EventSink>,
        wake: Arc<RelayWake>,
        cfg: RelayConfig,
        readiness: Option<ReadinessFlag>,
    ) -> Arc<Self> {
        Arc::new(Self {
            service: service.to_owned(),
            outbox,
            sink,
            wake,
            cfg,
            readiness,
            known: Mutex::new(None),
            read_at: AtomicU64::new(0),
        })
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Runs until `shutdown` turns true. The final flush is the caller's (see `flush`), so
    /// that a process with several relays can flush them together until all are quiet.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        // At zero from the start: an alert on its increase sees the first error, which a
        // series born at 1 would hide.
        metrics::counter!("outbox_relay_errors_total", "service" => self.service.clone())
            .absolute(0);
        let mut backoff = Duration::from_millis(50);
        let mut next_maintenance = Instant::now();
        let mut next_check = Instant::now();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = Instant::now();
            let check = now >= next_check;
            let maintain = now >= next_maintenance;
            // A round is not cut short by a shutdown: cut between XADD and the mark, it would
            // publish its rows twice. The host's shutdown budget bounds the wait.
            match self.round(check, maintain).await {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    if let Some(f) = &self.readiness {
                        f.ready();
                    }
                    if check {
                        next_check = now + self.cfg.poll_interval;
                    }
                    if maintain {
                        next_maintenance = now + self.cfg.maintenance_interval;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, service = %self.service, "outbox relay failed; retrying");
                    metrics::counter!("outbox_relay_errors_total", "service" => self.service.clone())
                        .increment(1);
                    if let Some(f) = &self.readiness {
                        f.failing(format!("outbox relay: {e}"));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            tokio::select! {
                _ = self.wake.after(self.read_at.load(Ordering::SeqCst)) => {}
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn round(&self, check: bool, maintain: bool) -> Result<(), BusError> {
        let mut guard = self.known.lock().await;
        if guard.is_none() {
            *guard = Some(self.outbox.last_published().await?);
        }
        let known = guard.as_mut().expect("loaded above");
        if check {
            // Measured before Redis is asked: while it is away the backlog is what grows, and
            // the gauges must show it then most of all.
            let stats = self.outbox.stats().await?;
            let age = stats
                .oldest
                .map(|t| (self.outbox.now() - t).num_milliseconds().max(0) as f64 / 1e3)
                .unwrap_or(0.0);
            metrics::gauge!("outbox_backlog", "service" => self.service.clone())
                .set(stats.backlog as f64);
            metrics::gauge!("outbox_oldest_age_seconds", "service" => self.service.clone())
                .set(age);
            if let Published::Lost { stream, last } = self.sink.check(known).await? {
                self.refill(known, &stream, last).await?;
            }
        }
        self.drain(known).await?;
        if maintain {
            self.maintain(known).await?;
        }
        Ok(())
    }

    /// Publishes until the outbox is empty; returns how many rows went out.
    async fn drain(&self, known: &mut HashMap<String, EntryId>) -> Result<usize, BusError> {
        let mut total = 0;
        let mut losses = 0;
        loop {
            self.read_at.store(self.wake.now(), Ordering::SeqCst);
            match self
                .outbox
                .relay_once(self.sink.as_ref(), self.cfg.batch_size, known)
                .await?
            {
                Published::Done(ids) => {
                    total += ids.len();
                    metrics::counter!("outbox_published_total", "service" => self.service.clone())
                        .increment(ids.len() as u64);
                    if ids.len() < self.cfg.batch_size {
                        return Ok(total);
                    }
                }
                Published::Lost { stream, last } => {
                    losses += 1;
                    if losses > MAX_LOSSES_PER_DRAIN {
                        return Err(BusError::Other(format!(
                            "stream {stream} keeps losing entries"
                        )));
                    }
                    self.refill(known, &stream, last).await?;
                }
            }
        }
    }

    async fn refill(
        &self,
        known: &mut HashMap<String, EntryId>,
        stream: &str,
        last: Option<EntryId>,
    ) -> Result<(), BusError> {
        let n = self.outbox.republish_lost(stream, last).await?;
        known.remove(stream);
        tracing::warn!(
            service = %self.service,
            stream,
            last = ?last.map(|l| l.to_string()),
            republished = n,
            "the stream lost entries it was given (Redis restarted without its data?); publishing them again from the outbox"
        );
        metrics::counter!("outbox_republished_total", "service" => self.service.clone(), "stream" => stream.to_owned())
            .increment(n);
        Ok(())
    }

    async fn maintain(&self, known: &HashMap<String, EntryId>) -> Result<(), BusError> {
        let now = self.outbox.now();
        let purged = self
            .outbox
            .purge(now - self.cfg.retention, now - self.cfg.retention * 2)
            .await?;
        if purged > 0 {
            tracing::debug!(service = %self.service, purged, "outbox rows past retention deleted");
        }
        for stream in known.keys() {
            self.sink
                .trim(stream, now - self.cfg.stream_retention)
                .await?;
        }
        Ok(())
    }

    /// Publishes what is left, for a graceful shutdown; returns how many rows went out.
    pub async fn flush(&self) -> Result<usize, BusError> {
        let mut guard = self.known.lock().await;
        if guard.is_none() {
            *guard = Some(self.outbox.last_published().await?);
        }
        self.drain(guard.as_mut().expect("loaded above")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `after(since)` is ready at once.
    async fn woken(w: &RelayWake, since: u64) -> bool {
        tokio::select! {
            biased;
            _ = w.after(since) => true,
            _ = std::future::ready(()) => false,
        }
    }

    #[tokio::test]
    async fn a_wake_the_last_round_covered_starts_no_round_and_a_later_one_does() {
        let w = RelayWake::default();
        // A commit, then a round that reads the outbox after it.
        w.notify_one();
        let began = loop {
            let t = w.now();
            if t > w.last.load(Ordering::SeqCst) {
                break t;
            }
        };
        assert!(!woken(&w, began).await, "its rows were in the round");
        // A commit while the round runs: its rows may have come too late for it.
        w.notify_one();
        assert!(woken(&w, began).await);
    }
}
