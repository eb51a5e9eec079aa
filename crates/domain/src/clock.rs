//! Time is injected so that tests move it instead of sleeping.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
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
#[derive(Debug)]
pub struct SimulatedClock {
    started: std::time::Instant,
    start_at: DateTime<Utc>,
    offset: Mutex<chrono::Duration>,
}

impl SimulatedClock {
    pub fn starting_at(at: DateTime<Utc>) -> Self {
        Self {
            started: std::time::Instant::now(),
            start_at: at,
            offset: Mutex::new(chrono::Duration::zero()),
        }
    }

    /// Moves the clock forward by `by`; a negative or zero step is refused.
    pub fn advance(&self, by: chrono::Duration) -> Result<DateTime<Utc>, ClockError> {
        if by <= chrono::Duration::zero() {
            return Err(ClockError::NotForward);
        }
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset = offset.checked_add(&by).ok_or(ClockError::OutOfRange)?;
        drop(offset);
        Ok(self.now())
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.start_at + elapsed + offset
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("the clock only moves forward: give a positive duration")]
    NotForward,
    #[error("that step takes the clock out of range")]
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
}
