//! The firing engine: finds what is due through the index on each clock's next firing
//! instant — O(due), not O(open) — and fires it, case by case, under each case's version. It
//! sleeps until the earliest next instant (or at most `max_sleep`, so that a simulated clock
//! moved forward is seen soon), and is woken early when a change may bring that instant
//! closer. Nothing is kept only in memory: after a restart, what came due while the service
//! was down is found by the first scan and fires once.

use crate::store::{StoreError, SupervisionStore};
use crate::workflow::{self, Ctx};
use petition_domain::Clock;
use petition_domain::calendar::HolidayCalendar;
use petition_domain::clocks::ClockRules;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

pub struct Engine {
    pub store: SupervisionStore,
    pub calendar: Arc<HolidayCalendar>,
    pub rules: ClockRules,
    pub clock: Arc<dyn Clock>,
    pub relay_wake: Arc<petition_events::RelayWake>,
    pub wake: Arc<Notify>,
    /// cases fired per scan
    pub batch: u32,
    pub max_sleep: Duration,
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
        let cx = Ctx {
            calendar: &self.calendar,
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
                .fire_cases(
                    &ids,
                    |f| workflow::fire(f, cx),
                    |c| crate::events::of(c, now),
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
        Ok(total)
    }

    /// Runs until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
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
                _ = stop.changed() => return,
            }
        }
    }
}
