//! The firing engine: finds what is due through the index on each clock's next firing
//! instant — O(due), not O(open) — and fires it, case by case, under each case's version. It
//! sleeps until the earliest next instant (or at most `max_sleep`, so that a simulated clock
//! moved forward is seen soon), and is woken early when a change may bring that instant
//! closer. Nothing is kept only in memory: after a restart, what came due while the service
//! was down is found by the first scan and fires once.
//!
//! The engine also counts provisional clocks again — at start, and each time a holiday
//! calendar with a new year is loaded — so that one task, not two, moves clocks on its own.

use crate::settled::Settled;
use crate::store::{StoreError, SupervisionStore, Unchanged};
use crate::workflow::{self, Ctx};
use petition_domain::Clock;
use petition_domain::clocks::{ClockKind, ClockRules, ClockState};
use petition_grpc::reference::LiveCalendar;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

pub struct Engine {
    pub store: SupervisionStore,
    /// the calendar as loaded: what a recount counts on
    pub calendar: LiveCalendar,
    /// the calendar changes are decided on, once recounted (see `settled`)
    pub settled: Settled,
    pub rules: ClockRules,
    pub clock: Arc<dyn Clock>,
    pub relay_wake: Arc<petition_events::RelayWake>,
    pub wake: Arc<Notify>,
    /// cases fired per scan
    pub batch: u32,
    pub max_sleep: Duration,
    /// how often the open-clock gauges are counted (a count over the clocks table)
    pub gauge_every: Duration,
}

/// What one scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// cases read because a clock of theirs was due
    pub due: usize,
    /// cases where something fired
    pub fired: usize,
}

impl Engine {
    /// One scan at the clock's now: every due case, in batches, until none is left.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let now = self.clock.now();
        let calendar = self.settled.current();
        let cx = Ctx {
            calendar: &calendar,
            rules: &self.rules,
            now,
            actor: workflow::ENGINE,
        };
        let mut total = Tick::default();
        loop {
            let ids = self.store.due_cases(now, self.batch).await?;
            if ids.is_empty() {
                break;
            }
            total.due += ids.len();
            let (fired, conflicts) = self
                .store
                .change_cases(
                    &ids,
                    &calendar,
                    |f| workflow::fire(f, cx),
                    |c| crate::events::of(c, now),
                    Unchanged::Rewrite,
                )
                .await?;
            total.fired += fired;
            // changed meanwhile: read again on the next round
            let progressed = fired > 0 || conflicts > 0;
            if total.fired > 0 {
                self.relay_wake.notify_one();
            }
            // A due row that fires nothing would be read forever: stop at once instead.
            if !progressed {
                break;
            }
        }
        if total.fired > 0 {
            metrics::counter!("supervision_cases_fired_total").increment(total.fired as u64);
        }
        // Every clock due up to this instant has fired: an operator reads how far behind the
        // engine is; a test knows when an absence means "not yet due" rather than "not yet
        // looked at".
        metrics::gauge!("supervision_engine_scanned_until_seconds").set(now.timestamp() as f64);
        Ok(total)
    }

    /// Counts every open provisional clock again on the calendar loaded now, then decides
    /// every later change on it. Returns how many cases changed (a clock's last day moved, or
    /// its provisional mark went); `Ok(None)` when cases kept changing under it and some are
    /// left for the next try.
    pub async fn recount(&self) -> Result<Option<usize>, StoreError> {
        let calendar = self.calendar.current();
        let Some(first) = self.recount_on(&calendar).await? else {
            return Ok(None);
        };
        self.settled.settle(calendar.clone());
        // A change decided on the old calendar while the first pass ran left its clocks
        // provisional: one more pass counts those.
        let Some(second) = self.recount_on(&calendar).await? else {
            return Ok(None);
        };
        let total = first + second;
        if total > 0 {
            self.relay_wake.notify_one();
            metrics::counter!("supervision_clocks_recounted_total").increment(total as u64);
            tracing::info!(
                cases = total,
                "provisional clocks counted again on the loaded holiday calendar"
            );
        }
        Ok(Some(total))
    }

    async fn recount_on(
        &self,
        calendar: &petition_domain::calendar::HolidayCalendar,
    ) -> Result<Option<usize>, StoreError> {
        let now = self.clock.now();
        let cx = Ctx {
            calendar,
            rules: &self.rules,
            now,
            actor: workflow::ENGINE,
        };
        let (mut after, mut total, mut retries) = (None, 0, 0);
        loop {
            let rows = self
                .store
                .provisional_clocks(after.as_ref(), self.batch)
                .await?;
            let Some(last) = rows.last().cloned() else {
                return Ok(Some(total));
            };
            let mut kinds: HashMap<String, Vec<ClockKind>> = HashMap::new();
            for (case_id, kind) in rows {
                kinds.entry(case_id).or_default().push(kind);
            }
            let ids: Vec<String> = kinds.keys().cloned().collect();
            let (changed, conflicts) = self
                .store
                .change_cases(
                    &ids,
                    calendar,
                    |f| {
                        let of_case = kinds.get(&f.case.case_id).cloned().unwrap_or_default();
                        workflow::recount(f, &of_case, cx)
                    },
                    |c| crate::events::of(c, now),
                    Unchanged::Skip,
                )
                .await?;
            total += changed;
            // A case changed meanwhile is read again, page and all; one that keeps changing
            // is left for the next try rather than skipped.
            if conflicts > 0 {
                retries += 1;
                if retries > 10 {
                    return Ok(None);
                }
                continue;
            }
            retries = 0;
            after = Some(last);
        }
    }

    async fn count_gauges(&self) {
        match self.store.open_provisional_clocks().await {
            Ok(n) => metrics::gauge!("supervision_open_provisional_clocks").set(n as f64),
            Err(e) => tracing::warn!(error = %e, "could not count provisional clocks"),
        }
        if let Ok(states) = self.store.open_clocks().await {
            // A state with no clock left has no row: it is zero, not what it was last time.
            for state in [ClockState::Running, ClockState::Paused, ClockState::Overdue] {
                let n = states
                    .iter()
                    .find(|(s, _)| *s == state)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("supervision_open_clocks", "state" => state.as_str()).set(n as f64);
            }
        }
    }

    /// Runs until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut loaded = self.calendar.subscribe();
        // Counted at start too: the calendar may have gained a year while the service was down.
        let mut must_recount = true;
        let mut counted_at: Option<Instant> = None;
        let mut calendar_live = true;
        loop {
            if must_recount {
                match self.recount().await {
                    Ok(_) => must_recount = false,
                    Err(e) => {
                        tracing::warn!(error = %e, "recount of provisional clocks failed; retrying")
                    }
                }
            }
            if counted_at.is_none_or(|t| t.elapsed() >= self.gauge_every) {
                self.count_gauges().await;
                counted_at = Some(Instant::now());
            }
            let sleep = match self.tick().await {
                Ok(_) => match self.store.next_fire_at().await {
                    Ok(Some(at)) => (at - self.clock.now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(self.max_sleep),
                    Ok(None) => self.max_sleep,
                    Err(e) => {
                        tracing::warn!(error = %e, "supervision engine could not read its next instant");
                        self.max_sleep
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "supervision engine scan failed; retrying");
                    self.max_sleep
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep.max(Duration::from_millis(10))) => {}
                _ = self.wake.notified() => {}
                r = loaded.changed(), if calendar_live => match r {
                    Ok(()) => {
                        must_recount = true;
                        // the gauge follows the recount at once
                        counted_at = None;
                    }
                    Err(_) => calendar_live = false,
                },
                _ = stop.changed() => return,
            }
        }
    }
}
