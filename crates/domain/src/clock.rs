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
    /// how far the clock was moved, in microseconds: an atomic, so that no panic anywhere can
    /// leave a lock poisoned and every later reading of the time broken with it
    offset_micros: AtomicI64,
    /// told after every move: work that sleeps until an instant (the statutory clocks) looks
    /// again at once instead of at its next scheduled look
    moved: Mutex<Vec<Listener>>,
}

type Listener = std::sync::Arc<dyn Fn() + Send + Sync>;

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
            offset_micros: AtomicI64::new(0),
            moved: Mutex::new(Vec::new()),
        }
    }

    /// Calls `f` after every move of the clock.
    pub fn on_move(&self, f: impl Fn() + Send + Sync + 'static) {
        self.moved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(std::sync::Arc::new(f));
    }

    /// Moves the clock forward by `by`; a step that is not forward, or that would take the
    /// clock past [`Self::ceiling`], is refused and leaves the clock where it was.
    pub fn advance(&self, by: chrono::Duration) -> Result<DateTime<Utc>, ClockError> {
        if by <= chrono::Duration::zero() {
            return Err(ClockError::NotForward);
        }
        self.move_to(|now| now.checked_add_signed(by))
    }

    /// Moves the clock forward to `at`; an instant already passed is refused.
    pub fn advance_to(&self, at: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
        self.move_to(|_| Some(at))
    }

    /// Moves the clock to `target(now)`, `now` read in the same atomic update that moves it:
    /// two moves to one instant at once make one move, and the other is told the instant has
    /// passed.
    fn move_to(
        &self,
        target: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, ClockError> {
        let mut refused = ClockError::OutOfRange;
        let moved = self
            .offset_micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
                let now = self
                    .start_at
                    .checked_add_signed(self.elapsed())?
                    .checked_add_signed(chrono::Duration::microseconds(offset))?;
                let Some(to) = target(now).filter(|to| *to <= Self::ceiling()) else {
                    refused = ClockError::OutOfRange;
                    return None;
                };
                if to <= now {
                    refused = ClockError::Passed(now);
                    return None;
                }
                offset.checked_add((to - now).num_microseconds()?)
            });
        if moved.is_err() {
            return Err(refused);
        }
        // The listeners are called outside the lock: one may read or move the clock itself.
        let listeners: Vec<Listener> = self.moved.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for f in listeners {
            f();
        }
        Ok(self.now())
    }

    fn elapsed(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = chrono::Duration::microseconds(self.offset_micros.load(Ordering::SeqCst));
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
    #[error("the clock only moves forward: give a positive step")]
    NotForward,
    #[error("that instant has passed: the clock stands at {} and only moves forward", .0.to_rfc3339())]
    Passed(DateTime<Utc>),
    #[error("that would take the clock past 2200-01-01; give an earlier instant or a smaller step")]
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
        assert!(matches!(c.advance_to(start), Err(ClockError::Passed(t)) if t >= now));
        assert_eq!(told.load(Ordering::SeqCst), 1, "a refused move is not told");
    }

    #[test]
    fn two_moves_to_one_instant_at_once_move_the_clock_once() {
        let start = Utc.with_ymd_and_hms(2026, 2, 10, 1, 0, 0).unwrap();
        let c = std::sync::Arc::new(SimulatedClock::starting_at(start));
        let at = start + chrono::Duration::days(10);
        let moves: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || c.advance_to(at))
            })
            .collect();
        let results: Vec<_> = moves.into_iter().map(|m| m.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(c.now() >= at && c.now() < at + chrono::Duration::seconds(1));
    }
}
