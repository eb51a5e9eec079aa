//! Time is injected so that tests move it instead of sleeping.

use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// Instants are read to the microsecond, the precision PostgreSQL keeps: an instant answered
/// to a caller is then equal to the same instant read back from a store later (a retried
/// command's answer, a timeline).
fn to_store_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        to_store_precision(Utc::now())
    }
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The clock of a development run started with `--dev-clock`: it starts at a chosen instant,
/// runs with real time from there, and can be moved forward (never back, so that no deadline
/// already passed becomes open again) to walk a case through its statutory life in minutes.
pub struct SimulatedClock {
    started: std::time::Instant,
    start_at: DateTime<Utc>,
    /// how far the clock was moved, in seconds: an atomic, so that no panic anywhere can leave
    /// a lock poisoned and every later reading of the time broken with it
    offset_secs: AtomicI64,
    /// told after every move: work that sleeps until an instant (the statutory clocks) looks
    /// again at once instead of at its next scheduled look
    moved: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for SimulatedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedClock")
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

impl SimulatedClock {
    /// The latest instant a simulated clock may be moved to. Statutory clocks count in days and
    /// years; a step beyond this is a typo, and refusing it keeps every date the pipeline
    /// computes (deadlines, retention) far inside what dates can represent.
    pub fn ceiling() -> DateTime<Utc> {
        DateTime::from_timestamp(7_258_118_400, 0).expect("2200-01-01 is a valid instant")
    }

    pub fn starting_at(at: DateTime<Utc>) -> Self {
        Self {
            started: std::time::Instant::now(),
            start_at: at,
            offset_secs: AtomicI64::new(0),
            moved: Mutex::new(Vec::new()),
        }
    }

    /// Calls `f` after every move of the clock.
    pub fn on_move(&self, f: impl Fn() + Send + Sync + 'static) {
        self.moved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(f));
    }

    /// Moves the clock forward by `by`; a step that is not forward, or that would take the
    /// clock past [`Self::ceiling`], is refused and leaves the clock where it was.
    pub fn advance(&self, by: chrono::Duration) -> Result<DateTime<Utc>, ClockError> {
        if by <= chrono::Duration::zero() {
            return Err(ClockError::NotForward);
        }
        let step = by.num_seconds().max(1);
        self.offset_secs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
                let moved = offset.checked_add(step)?;
                let at = self
                    .start_at
                    .checked_add_signed(self.elapsed())?
                    .checked_add_signed(chrono::Duration::try_seconds(moved)?)?;
                (at <= Self::ceiling()).then_some(moved)
            })
            .map_err(|_| ClockError::OutOfRange)?;
        for f in self.moved.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            f();
        }
        Ok(self.now())
    }

    /// Moves the clock forward to `at`, as [`Self::advance`] does.
    /// The clock moves in whole seconds: the step is rounded up, so that the clock reads `at` or
    /// just after it, never just before.
    pub fn advance_to(&self, at: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
        let by = at - self.now();
        let whole = chrono::Duration::seconds(by.num_seconds());
        let by = if by > whole {
            whole + chrono::Duration::seconds(1)
        } else {
            by
        };
        self.advance(by)
    }

    fn elapsed(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = chrono::Duration::seconds(self.offset_secs.load(Ordering::SeqCst));
        // `advance` keeps start + offset under the ceiling; real time elapsing past it would
        // take centuries, but saturate rather than panic all the same.
        to_store_precision(
            self.start_at
                .checked_add_signed(self.elapsed())
                .and_then(|t| t.checked_add_signed(offset))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("the clock only moves forward: give a positive duration")]
    NotForward,
    #[error("that step would take the clock past 2200-01-01; give a smaller one")]
    OutOfRange,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_simulated_clock_starts_where_told_and_only_moves_forward() {
        let start = Utc.with_ymd_and_hms(2026, 2, 10, 1, 0, 0).unwrap();
        let c = SimulatedClock::starting_at(start);
        let now = c.now();
        assert!(now >= start && now < start + chrono::Duration::seconds(5));
        let later = c.advance(chrono::Duration::days(15)).unwrap();
        assert!(later >= start + chrono::Duration::days(15));
        assert_eq!(
            c.advance(chrono::Duration::hours(-1)),
            Err(ClockError::NotForward)
        );
        assert!(c.now() >= later);
    }

    #[test]
    fn a_step_past_the_ceiling_is_refused_and_the_clock_keeps_working() {
        let start = Utc.with_ymd_and_hms(2026, 2, 10, 1, 0, 0).unwrap();
        let c = SimulatedClock::starting_at(start);
        assert_eq!(
            c.advance(chrono::Duration::days(100_000_000)),
            Err(ClockError::OutOfRange)
        );
        assert_eq!(
            c.advance(chrono::Duration::MAX),
            Err(ClockError::OutOfRange)
        );
        assert!(c.now() < start + chrono::Duration::seconds(5));
        // up to the ceiling is allowed, one more day is not
        let to_ceiling = SimulatedClock::ceiling() - c.now() - chrono::Duration::seconds(10);
        assert!(c.advance(to_ceiling).unwrap() <= SimulatedClock::ceiling());
        assert_eq!(
            c.advance(chrono::Duration::days(1)),
            Err(ClockError::OutOfRange)
        );
        assert!(c.advance(chrono::Duration::seconds(1)).is_ok());
    }

    #[test]
    fn a_move_is_told_and_a_move_to_an_instant_past_is_refused() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        let start = Utc.with_ymd_and_hms(2026, 2, 10, 1, 0, 0).unwrap();
        let c = SimulatedClock::starting_at(start);
        let told = Arc::new(AtomicUsize::new(0));
        let t = told.clone();
        c.on_move(move || {
            t.fetch_add(1, Ordering::SeqCst);
        });
        let at = Utc.with_ymd_and_hms(2026, 3, 18, 16, 1, 0).unwrap();
        let now = c.advance_to(at).unwrap();
        assert!(
            now >= at && now < at + chrono::Duration::seconds(5),
            "{now}"
        );
        assert_eq!(told.load(Ordering::SeqCst), 1);
        assert_eq!(c.advance_to(start), Err(ClockError::NotForward));
        assert_eq!(told.load(Ordering::SeqCst), 1, "a refused move is not told");
    }
}
