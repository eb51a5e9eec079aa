//! The holiday calendar supervision decides and writes with. A newly loaded calendar becomes
//! it only once the engine has counted every provisional clock on it: a command or an event
//! applied meanwhile would otherwise store a moved last day that no recount sees, and no one
//! would be told (docs/adr/0012-provisional-deadlines.md).

use petition_domain::calendar::HolidayCalendar;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
pub struct Settled(Arc<RwLock<Arc<HolidayCalendar>>>);

impl Settled {
    pub fn new(calendar: Arc<HolidayCalendar>) -> Self {
        Self(Arc::new(RwLock::new(calendar)))
    }

    /// The calendar to decide one change on, and to write it with.
    pub fn current(&self) -> Arc<HolidayCalendar> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// From now on, changes are decided on `calendar`.
    pub fn settle(&self, calendar: Arc<HolidayCalendar>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = calendar;
    }
}
