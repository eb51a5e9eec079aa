//! The clocks of a case as data: each statutory limit a case runs (DOMAIN.md §4), where it
//! stands, when it lapses, and what supervision does as it nears and passes its end — a
//! reminder before the last day, urging (催办) the day after it, listed supervision (挂牌督办)
//! or a circular (通报) when still overdue some working days later.
//!
//! Everything here is arithmetic over the loaded calendar; the supervision service keeps the
//! clocks and fires them, and reads every date from these functions so that a list, a
//! timeline and the firing engine can never disagree about a last day.

use crate::calendar::{
    CountingPolicy, Deadline, HolidayCalendar, Period, deadline, end_of_local_day, extend,
    local_date,
};
use crate::limits::{self, StatutoryLimit};
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};

crate::text_enum! {
    /// The statutory periods a case runs, one clock each.
    pub enum ClockKind {
        /// the bureau forwards or assigns (Art. 22 ¶1)
        Forward = "forward",
        /// the receiving organ tells the petitioner in writing (Art. 23 ¶3)
        Notice = "notice",
        /// an organ that is not competent objects, in working days (Art. 23 ¶3)
        Objection = "objection",
        /// handle and reply in writing, 60 days, one extension (Art. 34)
        Handling = "handling",
        /// 交办: the completion report by the date the bureau set (Art. 22 ¶1(3))
        Report = "report",
        /// the petitioner's window to request review (Art. 35)
        ReviewRequest = "review_request",
        /// the organ one level up gives its review opinion (Art. 35)
        ReviewOpinion = "review_opinion",
        /// the petitioner's window to request re-examination (Art. 36)
        ReexaminationRequest = "reexamination_request",
        /// the re-examination opinion, hearing time not counted (Art. 36)
        ReexaminationOpinion = "reexamination_opinion",
        /// the petitioner's window to rate the handling (满意度评价)
        Rating = "rating",
    }
}

impl ClockKind {
    /// The limit in the law (or, for the rating window, in configuration).
    pub fn limit(self, rules: &ClockRules) -> StatutoryLimit {
        match self {
            ClockKind::Forward => limits::FORWARD_OR_ASSIGN,
            ClockKind::Notice => limits::NOTICE_BY_RECEIVING_ORGAN,
            ClockKind::Objection => limits::OBJECTION,
            ClockKind::Handling => limits::HANDLING,
            ClockKind::Report => StatutoryLimit {
                name: limits::ASSIGNMENT_REPORT_NAME,
                article: limits::ASSIGNMENT_REPORT_ARTICLE,
                // the bureau sets the date per case; this is only a placeholder, see `Span`
                period: Period::CalendarDays(0),
            },
            ClockKind::ReviewRequest => limits::REVIEW_REQUEST,
            ClockKind::ReviewOpinion => limits::REVIEW_OPINION,
            ClockKind::ReexaminationRequest => limits::REEXAMINATION_REQUEST,
            ClockKind::ReexaminationOpinion => limits::REEXAMINATION_OPINION,
            ClockKind::Rating => StatutoryLimit {
                period: Period::CalendarDays(rules.rating_days),
                ..limits::RATING_WINDOW
            },
        }
    }

    /// A window someone may use or let lapse — the petitioner's to request review,
    /// re-examination or to rate, the organ's to object — rather than a duty that can be
    /// missed: its end closes the window and urges no one.
    pub fn is_window(self) -> bool {
        matches!(
            self,
            ClockKind::ReviewRequest
                | ClockKind::ReexaminationRequest
                | ClockKind::Rating
                | ClockKind::Objection
        )
    }

    /// Only the handling period is extended (Art. 34).
    pub fn may_extend(self) -> bool {
        self == ClockKind::Handling
    }

    /// Periods of handling work may stand still for a hearing (听证, Art. 36) or while the
    /// organ waits on material from the petitioner; a petitioner's window never does.
    pub fn may_pause(self) -> bool {
        matches!(
            self,
            ClockKind::Handling | ClockKind::ReviewOpinion | ClockKind::ReexaminationOpinion
        )
    }
}

crate::text_enum! {
    /// Where one clock stands.
    pub enum ClockState {
        /// counting down
        Running = "running",
        /// standing still (hearing, waiting on the petitioner): audited, moves the end
        Paused = "paused",
        /// past its end with the duty not done
        Overdue = "overdue",
        /// the duty was done (in time or late: compare `ended_at` with the due instant)
        Met = "met",
        /// a window ended unused
        Lapsed = "lapsed",
        /// no longer owed: the case moved on (re-routed, transferred, superseded)
        Stopped = "stopped",
    }
}

impl ClockState {
    /// Still counting, or owed: what a list of what is due shows.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ClockState::Running | ClockState::Paused | ClockState::Overdue
        )
    }
}

crate::text_enum! {
    /// How far the warnings of a clock have gone; each fires once.
    pub enum Stage {
        Quiet = "quiet",
        /// reminded before the last day
        Reminded = "reminded",
        /// urged (催办) the day after the last day, or the window lapsed
        Urged = "urged",
        /// escalated: listed supervision (挂牌督办) or a circular (通报)
        Escalated = "escalated",
    }
}

crate::text_enum! {
    /// What a clock's firing means for the organ that owes it.
    pub enum Warning {
        /// 提醒: the last day is near
        Reminder = "reminder",
        /// 催办: the day after the last day, copied to the organ's responsible leader
        Urging = "urging",
        /// 挂牌督办: still overdue some working days after urging
        Listed = "listed",
        /// 通报: a circular criticising the organ, where the bureau escalates that way
        Circular = "circular",
        /// a window closed unused (nobody is urged)
        WindowClosed = "window_closed",
    }
}

/// How supervision warns and urges: configuration, not law (DOMAIN.md §6 [practice]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockRules {
    /// remind this many days before the last day (0: no reminder)
    pub reminder_days: u32,
    /// escalate when still overdue this many working days after the last day
    pub escalate_after_working_days: u32,
    /// escalate by listed supervision (挂牌督办) or by a circular (通报)
    pub escalation: Warning,
    /// the petitioner's rating window, in days from service of the reply
    pub rating_days: u32,
    pub counting: CountingPolicy,
}

impl Default for ClockRules {
    fn default() -> Self {
        Self {
            reminder_days: 3,
            escalate_after_working_days: 5,
            escalation: Warning::Listed,
            rating_days: 7,
            counting: CountingPolicy::default(),
        }
    }
}

/// How long a clock runs: a period of the law from its start, or to a date set for the case
/// (the reporting deadline of an assignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Period(Period),
    Until(NaiveDate),
}

/// Why a clock refuses a change, for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockRefusal {
    #[error("the {kind} clock is {state}; only a running clock can be {what}")]
    NotRunning {
        kind: ClockKind,
        state: ClockState,
        what: &'static str,
    },
    #[error("the {kind} clock lapsed on {last_day}; a pause cannot undo a lapse")]
    Lapsed {
        kind: ClockKind,
        last_day: NaiveDate,
    },
    #[error("the {0} clock is not paused")]
    NotPaused(ClockKind),
    #[error(
        "the {0} clock cannot be paused: only handling, review and re-examination opinions stand still for a hearing or for material"
    )]
    CannotPause(ClockKind),
    #[error("only the handling clock is extended (Art. 34), not the {0} clock")]
    CannotExtend(ClockKind),
    #[error(
        "the handling period was already extended once by {0} days; Art. 34 allows one extension"
    )]
    ExtendedAlready(u32),
    #[error("days: an extension is 1 to {max} days (Art. 34), not {0}", max = limits::MAX_EXTENSION_DAYS)]
    ExtensionLength(u32),
    #[error("at: {at} is before the clock was paused at {since}")]
    ResumeBeforePause { at: String, since: String },
}

/// One statutory clock of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseClock {
    pub kind: ClockKind,
    /// the organ that owes the duty; `None` for a petitioner's window
    pub organ: Option<String>,
    pub started_at: DateTime<Utc>,
    pub span: Span,
    pub extension_days: u32,
    /// whole Beijing calendar days the clock stood still within the original period, over every
    /// pause so far: they move the original end
    pub paused_days: u32,
    /// days it stood still after the original end, in the extension: they move the extended
    /// end (a roll-over of the original end must not swallow them)
    pub paused_days_late: u32,
    pub paused_since: Option<DateTime<Utc>>,
    pub state: ClockState,
    pub stage: Stage,
    pub ended_at: Option<DateTime<Utc>>,
    /// The last day announced while the count ran into a year the calendar did not cover.
    /// When that year is loaded the clock is counted again, and the counting policy says a
    /// recount never ends it before this day: the petitioner and the organ planned on the
    /// date they were told (docs/adr/0012-provisional-deadlines.md).
    pub floor: Option<NaiveDate>,
}

/// A clock counted again on a newly loaded calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recount {
    /// the last day announced before
    pub previous: NaiveDate,
    /// the last day the new calendar alone gives; earlier than `previous` when the announced
    /// day stands
    pub counted: NaiveDate,
    /// where the clock ends now
    pub deadline: Deadline,
}

impl Recount {
    /// The announced day was kept over an earlier count.
    pub fn announced_day_stands(&self) -> bool {
        self.counted < self.deadline.last_day
    }
}

impl CaseClock {
    /// A clock that starts running at `started_at` (the start day itself is not counted).
    pub fn start(
        kind: ClockKind,
        organ: Option<String>,
        started_at: DateTime<Utc>,
        span: Span,
    ) -> Self {
        Self {
            kind,
            organ,
            started_at,
            span,
            extension_days: 0,
            paused_days: 0,
            paused_days_late: 0,
            paused_since: None,
            state: ClockState::Running,
            stage: Stage::Quiet,
            ended_at: None,
            floor: None,
        }
    }

    /// The clock's last day and lapse instant, as things stand: the period counted from the
    /// start (Civil Code: start day not counted, rest days rolled over), moved by the days it
    /// stood still, then extended from that end (Art. 34: the extension runs from the end of
    /// the original period, after any roll-over).
    /// Never before `floor`, a day announced earlier.
    pub fn deadline(&self, calendar: &HolidayCalendar, counting: CountingPolicy) -> Deadline {
        let counted = self.counted(calendar, counting);
        // A floor moved by a pause may land on a rest day: it rolls like any last day.
        match self
            .floor
            .map(|f| on_or_rolled(f, calendar, counting).last_day)
        {
            Some(f) if f > counted.last_day => Deadline::on(f, counted.provisional),
            _ => counted,
        }
    }

    /// The deadline from the count alone.
    fn counted(&self, calendar: &HolidayCalendar, counting: CountingPolicy) -> Deadline {
        let original = self.original_end(calendar, counting);
        if self.extension_days == 0 && self.paused_days_late == 0 {
            original
        } else {
            extend(
                original,
                self.extension_days + self.paused_days_late,
                calendar,
                counting,
            )
        }
    }

    /// The end of the original period (before any extension), moved by the days it stood still
    /// within it, rolled off rest days.
    fn original_end(&self, calendar: &HolidayCalendar, counting: CountingPolicy) -> Deadline {
        let (nominal, provisional) = match self.span {
            Span::Period(period) => {
                let strict = CountingPolicy {
                    roll_over_rest_days: false,
                };
                let d = deadline(self.started_at, period, calendar, strict);
                (d.last_day, d.provisional)
            }
            Span::Until(day) => (day, false),
        };
        let moved = nominal
            .checked_add_days(Days::new(self.paused_days.into()))
            .unwrap_or(nominal);
        let end = on_or_rolled(moved, calendar, counting);
        Deadline {
            provisional: provisional || end.provisional,
            ..end
        }
    }

    /// Adds the days of the pause that began at `since` and ends at `at`: those after the
    /// original end (in the extension) apart from those within it.
    fn settle_pause(
        &mut self,
        since: DateTime<Utc>,
        at: DateTime<Utc>,
        calendar: &HolidayCalendar,
        counting: CountingPolicy,
    ) -> u32 {
        let (from, to) = (local_date(since), local_date(at));
        let days = days_between(from, to);
        let late = if self.extension_days > 0 {
            let end = self.original_end(calendar, counting).last_day;
            days_between(from.max(end), to)
        } else {
            0
        };
        self.paused_days += days - late;
        self.paused_days_late += late;
        self.paused_since = None;
        // The announced day stood still with the clock: the pause moves it as much.
        self.floor = self
            .floor
            .and_then(|f| f.checked_add_days(Days::new(days.into())));
        days
    }

    /// The floor to keep with a clock whose deadline is `dl`: a provisional last day, once
    /// announced, is the least the clock will run.
    pub fn floor_after(&self, dl: &Deadline) -> Option<NaiveDate> {
        if dl.provisional {
            Some(self.floor.map_or(dl.last_day, |f| f.max(dl.last_day)))
        } else {
            self.floor
        }
    }

    /// Counts an open clock again on `calendar`, newly loaded, from the provisional last day it
    /// was announced with (its `floor`). `None` when nothing a person was told changes: the
    /// clock ended, was never provisional, or is still provisional with the same last day. A
    /// clock urged against a provisional day that now ends later runs again, and is urged
    /// again only if it lapses again.
    pub fn recount(
        &mut self,
        calendar: &HolidayCalendar,
        counting: CountingPolicy,
        now: DateTime<Utc>,
    ) -> Option<Recount> {
        if !self.state.is_open() {
            return None;
        }
        let previous = self.floor?;
        let counted = self.counted(calendar, counting).last_day;
        let deadline = self.deadline(calendar, counting);
        if deadline.provisional && deadline.last_day == previous {
            return None;
        }
        if self.state == ClockState::Overdue && deadline.is_open_at(now) {
            self.state = ClockState::Running;
            self.stage = Stage::Reminded;
        }
        // The day the recount gives is announced in its turn: no later load takes it back.
        self.floor = Some(deadline.last_day);
        Some(Recount {
            previous,
            counted,
            deadline,
        })
    }

    /// The statutory last day, as a Beijing calendar date.
    pub fn last_day(&self, calendar: &HolidayCalendar, counting: CountingPolicy) -> NaiveDate {
        self.deadline(calendar, counting).last_day
    }

    /// Stops counting for a hearing or while waiting on the petitioner — only a clock still in
    /// time: a pause cannot undo a lapse, nor stop the urging that follows it.
    pub fn pause(
        &mut self,
        at: DateTime<Utc>,
        calendar: &HolidayCalendar,
        counting: CountingPolicy,
    ) -> Result<(), ClockRefusal> {
        if !self.kind.may_pause() {
            return Err(ClockRefusal::CannotPause(self.kind));
        }
        if self.state != ClockState::Running {
            return Err(ClockRefusal::NotRunning {
                kind: self.kind,
                state: self.state,
                what: "paused",
            });
        }
        let dl = self.deadline(calendar, counting);
        if !dl.is_open_at(at) {
            return Err(ClockRefusal::Lapsed {
                kind: self.kind,
                last_day: dl.last_day,
            });
        }
        self.state = ClockState::Paused;
        self.paused_since = Some(at);
        Ok(())
    }

    /// Counts again; the end moves by the whole Beijing calendar days between the pause and
    /// now (a pause within one day moves nothing). The state is recomputed: a clock resumed
    /// after its moved end is overdue.
    pub fn resume(
        &mut self,
        at: DateTime<Utc>,
        calendar: &HolidayCalendar,
        counting: CountingPolicy,
    ) -> Result<u32, ClockRefusal> {
        let (ClockState::Paused, Some(since)) = (self.state, self.paused_since) else {
            return Err(ClockRefusal::NotPaused(self.kind));
        };
        if at < since {
            return Err(ClockRefusal::ResumeBeforePause {
                at: crate::beijing_time(at),
                since: crate::beijing_time(since),
            });
        }
        let days = self.settle_pause(since, at, calendar, counting);
        self.state = if self.deadline(calendar, counting).is_open_at(at) {
            ClockState::Running
        } else {
            ClockState::Overdue
        };
        Ok(days)
    }

    /// The one extension of the handling period (Art. 34).
    pub fn extend_by(&mut self, days: u32) -> Result<(), ClockRefusal> {
        if !self.kind.may_extend() {
            return Err(ClockRefusal::CannotExtend(self.kind));
        }
        if self.extension_days > 0 {
            return Err(ClockRefusal::ExtendedAlready(self.extension_days));
        }
        if !(1..=limits::MAX_EXTENSION_DAYS).contains(&days) {
            return Err(ClockRefusal::ExtensionLength(days));
        }
        if !self.state.is_open() {
            return Err(ClockRefusal::NotRunning {
                kind: self.kind,
                state: self.state,
                what: "extended",
            });
        }
        self.extension_days = days;
        // An extension granted after the lapse brings the clock back into time, and its
        // warnings may fire again against the new end.
        if self.state == ClockState::Overdue {
            self.state = ClockState::Running;
        }
        self.stage = Stage::Quiet;
        Ok(())
    }

    /// The duty was done (or the petitioner used the window) at `at`; a pause still open ends
    /// with it and counts, so that lateness is judged against the moved end.
    pub fn meet(
        &mut self,
        at: DateTime<Utc>,
        calendar: &HolidayCalendar,
        counting: CountingPolicy,
    ) {
        self.end(ClockState::Met, at, calendar, counting);
    }

    /// The duty is no longer owed.
    pub fn stop(
        &mut self,
        at: DateTime<Utc>,
        calendar: &HolidayCalendar,
        counting: CountingPolicy,
    ) {
        self.end(ClockState::Stopped, at, calendar, counting);
    }

    fn end(
        &mut self,
        state: ClockState,
        at: DateTime<Utc>,
        calendar: &HolidayCalendar,
        counting: CountingPolicy,
    ) {
        if !self.state.is_open() {
            return;
        }
        if let Some(since) = self.paused_since {
            self.settle_pause(since, at.max(since), calendar, counting);
        }
        self.state = state;
        self.ended_at = Some(at);
    }

    /// Whether the duty was (or is being) done after the lapse.
    pub fn is_late(
        &self,
        now: DateTime<Utc>,
        calendar: &HolidayCalendar,
        counting: CountingPolicy,
    ) -> bool {
        let due = self.deadline(calendar, counting).due;
        match self.state {
            ClockState::Overdue => true,
            ClockState::Met => self.ended_at.is_some_and(|t| t >= due),
            ClockState::Running => now >= due,
            ClockState::Paused | ClockState::Lapsed | ClockState::Stopped => false,
        }
    }

    /// The next warning this clock will give, and when: what the firing engine indexes. A
    /// paused or ended clock gives none.
    pub fn next_warning(
        &self,
        rules: &ClockRules,
        calendar: &HolidayCalendar,
    ) -> Option<(DateTime<Utc>, Warning)> {
        let dl = self.deadline(calendar, rules.counting);
        let window = self.kind.is_window();
        match (self.state, self.stage) {
            (ClockState::Running, Stage::Quiet) if !window && rules.reminder_days > 0 => {
                let day = dl
                    .last_day
                    .checked_sub_days(Days::new(rules.reminder_days.into()))
                    .unwrap_or(dl.last_day);
                let at = start_of_local_day(day);
                // A period shorter than the reminder lead has nothing to remind of.
                if at > self.started_at {
                    Some((at, Warning::Reminder))
                } else {
                    Some((dl.due, Warning::Urging))
                }
            }
            (ClockState::Running, Stage::Quiet | Stage::Reminded) => Some((
                dl.due,
                if window {
                    Warning::WindowClosed
                } else {
                    Warning::Urging
                },
            )),
            (ClockState::Overdue, Stage::Urged) => Some((
                escalation_from_last_day(dl.last_day, rules, calendar),
                rules.escalation,
            )),
            _ => None,
        }
    }

    /// Every warning due by `now`, in order, with the instant each was due at; the clock moves
    /// on past each. A clock that came due while the service was down fires now, once.
    pub fn fire(
        &mut self,
        now: DateTime<Utc>,
        rules: &ClockRules,
        calendar: &HolidayCalendar,
    ) -> Vec<(DateTime<Utc>, Warning)> {
        let mut fired = Vec::new();
        while let Some((at, w)) = self.next_warning(rules, calendar) {
            if at > now {
                break;
            }
            match w {
                Warning::Reminder => self.stage = Stage::Reminded,
                Warning::Urging => {
                    self.stage = Stage::Urged;
                    self.state = ClockState::Overdue;
                }
                Warning::WindowClosed => {
                    self.stage = Stage::Urged;
                    self.state = ClockState::Lapsed;
                    self.ended_at = Some(at);
                }
                Warning::Listed | Warning::Circular => self.stage = Stage::Escalated,
            }
            fired.push((at, w));
        }
        fired
    }
}

/// The escalation instant: the end of the N-th working day after the last day.
fn escalation_from_last_day(
    last_day: NaiveDate,
    rules: &ClockRules,
    calendar: &HolidayCalendar,
) -> DateTime<Utc> {
    let mut d = last_day;
    let mut counted = 0;
    while counted < rules.escalate_after_working_days {
        d = d.succ_opt().unwrap_or(d);
        if calendar.is_working_day(d) {
            counted += 1;
        }
    }
    end_of_local_day(d)
}

fn on_or_rolled(day: NaiveDate, calendar: &HolidayCalendar, counting: CountingPolicy) -> Deadline {
    if counting.roll_over_rest_days {
        let (last, covered) = calendar.roll(day);
        Deadline::on(last, !covered)
    } else {
        Deadline::on(day, false)
    }
}

/// 00:00 Beijing time at the start of `d`.
pub fn start_of_local_day(d: NaiveDate) -> DateTime<Utc> {
    crate::calendar::beijing()
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    u32::try_from((to - from).num_days()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::beijing;
    use chrono::Datelike;
    use proptest::prelude::*;

    fn cal() -> HolidayCalendar {
        HolidayCalendar::from_csv(include_str!("../../../deploy/config/cn-calendar.csv")).unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// An instant in Beijing time.
    fn bj(y: i32, m: u32, day: u32, h: u32) -> DateTime<Utc> {
        beijing()
            .with_ymd_and_hms(y, m, day, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn clock(kind: ClockKind, start: DateTime<Utc>) -> CaseClock {
        let rules = ClockRules::default();
        CaseClock::start(
            kind,
            Some("pingcheng.housing".into()),
            start,
            Span::Period(kind.limit(&rules).period),
        )
    }

    /// The shipped calendar with the test fixture's made-up 2027 appended.
    fn cal_with_2027() -> HolidayCalendar {
        HolidayCalendar::from_csv(&format!(
            "{}\n{}",
            include_str!("../../../deploy/config/cn-calendar.csv"),
            include_str!("../../../tests/fixtures/calendar-2027-fixture.csv")
        ))
        .unwrap()
    }

    /// Handling clocks accepted late in 2026 end in January 2027, counted on weekends alone
    /// until 2027 is loaded. The fixture's festival moves one later; its make-up Saturday
    /// would end another two days sooner than announced, and the announced day stands.
    #[test]
    fn a_recount_moves_a_provisional_day_later_but_never_earlier() {
        let (old, new) = (cal(), cal_with_2027());
        assert!(new.may_replace(&old).is_ok());
        let p = CountingPolicy::default();
        let now = bj(2026, 12, 10, 10);
        // What the store keeps of a provisional deadline: its day, as the floor.
        let announce = |c: &mut CaseClock| {
            let dl = c.deadline(&old, p);
            c.floor = c.floor_after(&dl);
            dl
        };
        // Fri 2026-11-27 + 60 days = Tue 2027-01-26: a working day on weekends alone.
        let mut later = clock(ClockKind::Handling, bj(2026, 11, 27, 10));
        let announced = announce(&mut later);
        assert_eq!(
            (announced.last_day, announced.provisional),
            (d(2027, 1, 26), true)
        );
        assert_eq!(later.floor, Some(d(2027, 1, 26)));
        // In the fixture 01-25..29 are off and Sat 01-30 is a make-up working day.
        let r = later.recount(&new, p, now).unwrap();
        assert_eq!(r.previous, d(2027, 1, 26));
        assert_eq!(
            (r.deadline.last_day, r.deadline.provisional),
            (d(2027, 1, 30), false)
        );
        assert!(!r.announced_day_stands());
        assert_eq!(r.deadline.due, bj(2027, 1, 31, 0));
        assert_eq!(later.floor, Some(d(2027, 1, 30)), "the new day, announced");
        // Tue 2026-12-01 + 60 = Sat 2027-01-30, rolled to Mon 02-01 on weekends alone; the
        // fixture makes 01-30 a working day, two days sooner than the petitioner was told.
        let mut sooner = clock(ClockKind::Handling, bj(2026, 12, 1, 10));
        assert_eq!(announce(&mut sooner).last_day, d(2027, 2, 1));
        let r = sooner.recount(&new, p, now).unwrap();
        assert_eq!(
            (r.counted, r.deadline.last_day),
            (d(2027, 1, 30), d(2027, 2, 1))
        );
        assert!(r.announced_day_stands() && !r.deadline.provisional);
        assert_eq!(sooner.last_day(&new, p), d(2027, 2, 1));
        // A hearing of two days after the recount moves the announced day too (02-03), not
        // only the count beneath it (02-01).
        let mut heard = sooner.clone();
        heard.pause(bj(2027, 1, 4, 10), &new, p).unwrap();
        heard.resume(bj(2027, 1, 6, 10), &new, p).unwrap();
        assert_eq!(heard.last_day(&new, p), d(2027, 2, 3));
        // An extension runs from the end the loaded calendar counts (Art. 34).
        sooner.extend_by(30).unwrap();
        assert_eq!(
            sooner.last_day(&new, p),
            d(2027, 3, 1),
            "01-30 + 30 = 03-01"
        );
        // Still provisional on the same day: nothing to tell anyone.
        let mut same = clock(ClockKind::Handling, bj(2026, 11, 27, 10));
        announce(&mut same);
        assert_eq!(same.recount(&old, p, now), None);
        // Never provisional, or ended: not counted again.
        let mut plain = clock(ClockKind::Handling, bj(2026, 3, 2, 10));
        announce(&mut plain);
        assert_eq!(plain.floor, None);
        assert_eq!(plain.recount(&new, p, now), None);
        let mut ended = clock(ClockKind::Handling, bj(2026, 11, 27, 10));
        announce(&mut ended);
        ended.meet(bj(2026, 12, 20, 10), &old, p);
        assert_eq!(ended.recount(&new, p, now), None);
    }

    /// A clock urged against a provisional day the loaded year moves later is in time again,
    /// and is urged again only against its new end.
    #[test]
    fn an_urged_clock_moved_later_runs_again() {
        let (old, new) = (cal(), cal_with_2027());
        let (p, rules) = (CountingPolicy::default(), ClockRules::default());
        let mut c = clock(ClockKind::Handling, bj(2026, 11, 27, 10));
        c.floor = c.floor_after(&c.deadline(&old, p));
        // Loaded late: the engine urged on 01-27 against the provisional 01-26.
        let fired = c.fire(bj(2027, 1, 27, 9), &rules, &old);
        assert!(
            fired.iter().any(|(_, w)| *w == Warning::Urging),
            "{fired:?}"
        );
        assert_eq!(c.state, ClockState::Overdue);
        let r = c.recount(&new, p, bj(2027, 1, 27, 10)).unwrap();
        assert_eq!(r.deadline.last_day, d(2027, 1, 30));
        assert_eq!(c.state, ClockState::Running);
        assert_eq!(
            c.next_warning(&rules, &new),
            Some((bj(2027, 1, 31, 0), Warning::Urging))
        );
    }

    /// The loaded calendar ends with 2026. A deadline is provisional when its count looked at a
    /// day of a year whose arrangement is not loaded (where 2027-01-01, say, is taken for a
    /// working Friday), and only then; the day itself is still given.
    #[test]
    fn a_deadline_past_the_end_of_the_calendar_is_provisional() {
        use ClockKind::{Forward, Handling, Objection};
        let cal = cal();
        let counting = CountingPolicy::default();
        let rows: &[(NaiveDate, ClockKind, NaiveDate, bool, &str)] = &[
            (
                d(2026, 12, 1),
                Forward,
                d(2026, 12, 16),
                false,
                "inside 2026",
            ),
            (
                d(2026, 12, 16),
                Forward,
                d(2026, 12, 31),
                false,
                "day 15 is 12-31, the last day loaded",
            ),
            (
                d(2026, 12, 17),
                Forward,
                d(2027, 1, 1),
                true,
                "day 15 is 2027-01-01, not loaded",
            ),
            (
                d(2026, 12, 11),
                Forward,
                d(2026, 12, 28),
                false,
                "day 15 Sat 12-26 rolls to Mon 12-28",
            ),
            (
                d(2026, 11, 27),
                Handling,
                d(2027, 1, 26),
                true,
                "60 days from today's late-November case",
            ),
            (
                d(2026, 12, 21),
                Objection,
                d(2026, 12, 28),
                false,
                "5 working days within 2026",
            ),
            (
                d(2026, 12, 28),
                Objection,
                d(2027, 1, 4),
                true,
                "5 working days counting 2027-01-01",
            ),
        ];
        for (start, kind, last, provisional, why) in rows {
            let dl = clock(*kind, bj(start.year(), start.month(), start.day(), 9))
                .deadline(&cal, counting);
            assert_eq!(
                (dl.last_day, dl.provisional),
                (*last, *provisional),
                "{why}: {kind:?} from {start}"
            );
        }
        // An extension that runs into 2027 makes a final deadline provisional.
        let mut c = clock(Handling, bj(2026, 10, 20, 9));
        assert!(!c.deadline(&cal, counting).provisional);
        c.extend_by(30).unwrap();
        let dl = c.deadline(&cal, counting);
        assert!(dl.provisional, "extended to {}", dl.last_day);
    }

    /// The 15-day (Art. 22, 23) and 60-day (Art. 34) limits around the 2026 Spring Festival
    /// (off 02-15..02-23, make-up Saturdays 02-14 and 02-28), May Day (off 05-01..05-05,
    /// make-up Saturday 05-09) and National Day (off 10-01..10-07, make-up Sunday 09-20 and
    /// Saturday 10-10). Each row: start (Beijing date), clock, expected last day, why.
    #[test]
    fn fifteen_and_sixty_days_around_the_2026_holidays() {
        use ClockKind::{Forward, Handling, Notice};
        let rows: &[(NaiveDate, ClockKind, NaiveDate, &str)] = &[
            (
                d(2026, 1, 20),
                Forward,
                d(2026, 2, 4),
                "day 15 an ordinary Wednesday",
            ),
            (
                d(2026, 1, 30),
                Forward,
                d(2026, 2, 14),
                "day 15 the make-up Saturday 02-14",
            ),
            (
                d(2026, 2, 1),
                Forward,
                d(2026, 2, 24),
                "day 15 Mon 02-16 in the festival",
            ),
            (
                d(2026, 2, 5),
                Notice,
                d(2026, 2, 24),
                "day 15 Fri 02-20 in the festival",
            ),
            (
                d(2026, 2, 8),
                Forward,
                d(2026, 2, 24),
                "day 15 Mon 02-23, its last day off",
            ),
            (
                d(2026, 2, 9),
                Forward,
                d(2026, 2, 24),
                "day 15 the first working day after",
            ),
            (
                d(2026, 2, 10),
                Forward,
                d(2026, 2, 25),
                "registered 02-10: no roll-over",
            ),
            (
                d(2026, 2, 13),
                Notice,
                d(2026, 2, 28),
                "day 15 the make-up Saturday 02-28",
            ),
            (
                d(2025, 12, 20),
                Handling,
                d(2026, 2, 24),
                "day 60 Wed 02-18 in the festival",
            ),
            (
                d(2026, 2, 10),
                Handling,
                d(2026, 4, 13),
                "day 60 Sat 04-11 rolls to Monday",
            ),
            (
                d(2026, 3, 1),
                Handling,
                d(2026, 4, 30),
                "day 60 the eve of May Day",
            ),
            (
                d(2026, 3, 2),
                Handling,
                d(2026, 5, 6),
                "day 60 Fri 05-01, May Day",
            ),
            (
                d(2026, 3, 3),
                Handling,
                d(2026, 5, 6),
                "day 60 Sat 05-02, May Day",
            ),
            (d(2026, 4, 16), Forward, d(2026, 5, 6), "day 15 05-01"),
            (
                d(2026, 4, 20),
                Notice,
                d(2026, 5, 6),
                "day 15 05-05, May Day's last day",
            ),
            (
                d(2026, 4, 21),
                Forward,
                d(2026, 5, 6),
                "day 15 the first working day after",
            ),
            (
                d(2026, 4, 24),
                Forward,
                d(2026, 5, 9),
                "day 15 the make-up Saturday 05-09",
            ),
            (
                d(2026, 8, 2),
                Handling,
                d(2026, 10, 8),
                "day 60 10-01, National Day",
            ),
            (d(2026, 8, 3), Handling, d(2026, 10, 8), "day 60 10-02"),
            (
                d(2026, 8, 10),
                Handling,
                d(2026, 10, 9),
                "day 60 Fri 10-09 after the holiday",
            ),
            (
                d(2026, 9, 5),
                Forward,
                d(2026, 9, 20),
                "day 15 the make-up Sunday 09-20",
            ),
            (d(2026, 9, 16), Forward, d(2026, 10, 8), "day 15 10-01"),
            (d(2026, 9, 20), Notice, d(2026, 10, 8), "day 15 10-05"),
            (d(2026, 9, 24), Forward, d(2026, 10, 9), "day 15 Fri 10-09"),
            (
                d(2026, 9, 25),
                Forward,
                d(2026, 10, 10),
                "day 15 the make-up Saturday 10-10",
            ),
        ];
        let c = cal();
        for (start, kind, expected, why) in rows {
            // the same day at 00:00, 09:00 and 23:59 Beijing: only the date counts
            for at in [
                start_of_local_day(*start),
                bj(start.year(), start.month(), start.day(), 9),
                end_of_local_day(*start) - chrono::Duration::seconds(1),
            ] {
                let k = clock(*kind, at);
                assert_eq!(
                    k.last_day(&c, CountingPolicy::default()),
                    *expected,
                    "{kind} from {start}: {why}"
                );
            }
        }
    }

    #[test]
    fn day_fifteen_is_open_until_midnight_beijing_and_day_sixteen_is_overdue() {
        let c = cal();
        let mut k = clock(ClockKind::Forward, bj(2026, 2, 10, 9));
        let dl = k.deadline(&c, CountingPolicy::default());
        assert_eq!(dl.last_day, d(2026, 2, 25));
        assert!(dl.is_open_at(bj(2026, 2, 25, 23) + chrono::Duration::minutes(59)));
        let rules = ClockRules::default();
        assert_eq!(
            k.fire(bj(2026, 2, 25, 23), &rules, &c),
            vec![(start_of_local_day(d(2026, 2, 22)), Warning::Reminder)]
        );
        assert_eq!(k.state, ClockState::Running);
        assert_eq!(
            k.fire(start_of_local_day(d(2026, 2, 26)), &rules, &c),
            vec![(start_of_local_day(d(2026, 2, 26)), Warning::Urging)],
            "催办 the day after the last day, at 00:00 Beijing"
        );
        assert_eq!(k.state, ClockState::Overdue);
    }

    #[test]
    fn a_hearing_moves_the_end_by_exactly_the_paused_days() {
        let c = cal();
        let p = CountingPolicy::default();
        // Re-examination requested Mon 2026-06-01: day 30 is Wed 07-01.
        let mut k = clock(ClockKind::ReexaminationOpinion, bj(2026, 6, 1, 10));
        assert_eq!(k.last_day(&c, p), d(2026, 7, 1));
        k.pause(bj(2026, 6, 8, 9), &c, p).unwrap();
        assert_eq!(k.state, ClockState::Paused);
        assert_eq!(k.next_warning(&ClockRules::default(), &c), None);
        // Hearing from Mon 06-08 to Wed 06-10: two days stood still; Wed 07-01 → Fri 07-03.
        assert_eq!(k.resume(bj(2026, 6, 10, 17), &c, p), Ok(2));
        assert_eq!(k.last_day(&c, p), d(2026, 7, 3), "exactly the paused days");
        // A pause and resume within one day moves nothing.
        k.pause(bj(2026, 6, 12, 9), &c, p).unwrap();
        assert_eq!(k.resume(bj(2026, 6, 12, 16), &c, p), Ok(0));
        assert_eq!(k.last_day(&c, p), d(2026, 7, 3));
        // A pause that pushes the end onto a weekend rolls on to Monday (Civil Code Art. 203).
        k.pause(bj(2026, 6, 13, 9), &c, p).unwrap();
        assert_eq!(k.resume(bj(2026, 6, 14, 9), &c, p), Ok(1));
        assert_eq!(k.last_day(&c, p), d(2026, 7, 6));
        // A petitioner's window never stands still; a clock cannot resume before its pause.
        let mut w = clock(ClockKind::ReviewRequest, bj(2026, 6, 1, 10));
        assert_eq!(
            w.pause(bj(2026, 6, 2, 10), &c, p),
            Err(ClockRefusal::CannotPause(ClockKind::ReviewRequest))
        );
        k.pause(bj(2026, 6, 15, 9), &c, p).unwrap();
        assert!(matches!(
            k.resume(bj(2026, 6, 15, 8), &c, p),
            Err(ClockRefusal::ResumeBeforePause { .. })
        ));
    }

    #[test]
    fn a_hearing_in_the_extension_moves_the_extended_end_and_a_lapse_cannot_be_paused() {
        let c = cal();
        let p = CountingPolicy::default();
        // Accepted 2026-03-02: day 60 is 05-01 (May Day), rolled to 05-06; extended 30 days to
        // 06-05. A hearing 05-20..05-25 in the extension moves it five days, to 06-10.
        let mut k = clock(ClockKind::Handling, bj(2026, 3, 2, 9));
        k.extend_by(30).unwrap();
        assert_eq!(k.last_day(&c, p), d(2026, 6, 5));
        k.pause(bj(2026, 5, 20, 9), &c, p).unwrap();
        assert_eq!(k.resume(bj(2026, 5, 25, 9), &c, p), Ok(5));
        assert_eq!(k.last_day(&c, p), d(2026, 6, 10));
        // An opinion given while paused ends the pause too: judged against the moved end.
        let mut r = clock(ClockKind::ReexaminationOpinion, bj(2026, 6, 1, 10));
        r.pause(bj(2026, 6, 25, 9), &c, p).unwrap();
        r.meet(bj(2026, 7, 3, 9), &c, p);
        assert_eq!(r.last_day(&c, p), d(2026, 7, 9));
        assert!(!r.is_late(bj(2026, 7, 3, 9), &c, p));
        // Past its end, a clock is not paused.
        let mut late = clock(ClockKind::Handling, bj(2026, 3, 2, 9));
        assert_eq!(
            late.pause(bj(2026, 5, 7, 9), &c, p),
            Err(ClockRefusal::Lapsed {
                kind: ClockKind::Handling,
                last_day: d(2026, 5, 6)
            })
        );
    }

    #[test]
    fn one_extension_of_at_most_thirty_days_from_the_rolled_end() {
        let c = cal();
        let p = CountingPolicy::default();
        let mut k = clock(ClockKind::Handling, bj(2026, 3, 2, 9));
        assert_eq!(k.last_day(&c, p), d(2026, 5, 6));
        assert_eq!(k.extend_by(31), Err(ClockRefusal::ExtensionLength(31)));
        assert_eq!(k.extend_by(0), Err(ClockRefusal::ExtensionLength(0)));
        k.extend_by(30).unwrap();
        assert_eq!(k.last_day(&c, p), d(2026, 6, 5), "30 days from Wed 05-06");
        assert_eq!(k.extend_by(10), Err(ClockRefusal::ExtendedAlready(30)));
        let mut f = clock(ClockKind::Forward, bj(2026, 3, 2, 9));
        assert_eq!(
            f.extend_by(10),
            Err(ClockRefusal::CannotExtend(ClockKind::Forward))
        );
    }

    #[test]
    fn overdue_escalates_after_five_working_days_and_no_warning_fires_twice() {
        let c = cal();
        let rules = ClockRules::default();
        // Accepted Thu 2026-09-17; the handling period (60) ends day 60 = Mon 11-16.
        let mut k = clock(ClockKind::Handling, bj(2026, 9, 17, 10));
        assert_eq!(k.last_day(&c, rules.counting), d(2026, 11, 16));
        let fired = k.fire(bj(2026, 12, 31, 0), &rules, &c);
        assert_eq!(
            fired,
            vec![
                (start_of_local_day(d(2026, 11, 13)), Warning::Reminder),
                (start_of_local_day(d(2026, 11, 17)), Warning::Urging),
                // five working days after Mon 11-16: Tue..Mon 11-23, at its end
                (end_of_local_day(d(2026, 11, 23)), Warning::Listed),
            ]
        );
        assert_eq!(k.stage, Stage::Escalated);
        assert!(
            k.fire(bj(2027, 6, 1, 0), &rules, &c).is_empty(),
            "nothing twice"
        );
    }

    #[test]
    fn a_petitioners_window_closes_without_urging_anyone() {
        let c = cal();
        let rules = ClockRules::default();
        let mut w = CaseClock::start(
            ClockKind::Rating,
            None,
            bj(2026, 3, 2, 10),
            Span::Period(ClockKind::Rating.limit(&rules).period),
        );
        assert_eq!(w.last_day(&c, rules.counting), d(2026, 3, 9));
        assert_eq!(
            w.fire(bj(2026, 4, 1, 0), &rules, &c),
            vec![(end_of_local_day(d(2026, 3, 9)), Warning::WindowClosed)]
        );
        assert_eq!(w.state, ClockState::Lapsed);
    }

    fn any_day() -> impl Strategy<Value = NaiveDate> {
        // inside the loaded calendar, 2022-2026, with room for the longest period
        (0i64..1_700).prop_map(|n| d(2022, 1, 1) + chrono::Duration::days(n))
    }

    fn any_kind() -> impl Strategy<Value = ClockKind> {
        prop::sample::select(
            ClockKind::ALL
                .iter()
                .copied()
                .filter(|k| *k != ClockKind::Report)
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        #[test]
        fn a_later_start_never_ends_earlier(a in any_day(), b in any_day(), kind in any_kind()) {
            let c = cal();
            let (a, b) = (a.min(b), a.max(b));
            let p = CountingPolicy::default();
            prop_assert!(
                clock(kind, start_of_local_day(a)).last_day(&c, p)
                    <= clock(kind, start_of_local_day(b)).last_day(&c, p)
            );
        }

        #[test]
        fn a_period_never_ends_on_a_day_off(day in any_day(), kind in any_kind(), paused in 0u32..40, ext in 0u32..=30) {
            let c = cal();
            let mut k = clock(kind, start_of_local_day(day));
            k.paused_days = paused;
            if kind.may_extend() && ext > 0 {
                k.extend_by(ext).unwrap();
            }
            let last = k.last_day(&c, CountingPolicy::default());
            prop_assert!(c.is_working_day(last), "{kind} from {day} ends on {last}");
            prop_assert!(last > day, "the start day is not counted");
        }

        #[test]
        fn extension_and_pause_never_shorten(day in any_day(), ext in 1u32..=30, paused in 0u32..40) {
            let c = cal();
            let p = CountingPolicy::default();
            let plain = clock(ClockKind::Handling, start_of_local_day(day));
            let mut extended = plain.clone();
            extended.extend_by(ext).unwrap();
            let mut stood = plain.clone();
            stood.paused_days = paused;
            let base = plain.last_day(&c, p);
            prop_assert!(extended.last_day(&c, p) >= base + Days::new(ext.into()));
            prop_assert!(stood.last_day(&c, p) >= base);
            prop_assert!(
                (stood.last_day(&c, p) - base).num_days() >= 0
                    && stood.last_day(&c, p) >= plain.last_day(&c, p)
            );
        }
    }
}
