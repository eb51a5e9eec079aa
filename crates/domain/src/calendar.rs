//! Statutory time: the holiday calendar (放假调休) and day counting in Asia/Shanghai.
//!
//! Counting follows the Civil Code (民法典 Arts. 200-204) as DOMAIN.md §4 reads it: the start day
//! is not counted; a period ends at 24:00 local time on its last day; a period whose last day is
//! not a working day ends on the next working day. Working days cannot be computed from rules —
//! make-up working days (调休) fall on weekends — so they come from the loaded calendar.

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, TimeZone, Utc, Weekday};
use std::collections::HashSet;

/// China Standard Time has no daylight saving: a fixed UTC+8 is Asia/Shanghai.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8")
}

/// An instant as people in the bureau read it, for messages: Beijing time, to the second, with
/// its offset so that no one mistakes it for UTC.
pub fn beijing_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&beijing())
        .format("%Y-%m-%d %H:%M:%S +08:00")
        .to_string()
}

/// The calendar date in Asia/Shanghai of an instant.
pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&beijing()).date_naive()
}

/// 24:00 Asia/Shanghai at the end of `d`, as an instant.
pub fn end_of_local_day(d: NaiveDate) -> DateTime<Utc> {
    let next = d.checked_add_days(Days::new(1)).unwrap_or(d);
    beijing()
        .from_local_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("line {line}: expected date,kind,holiday with kind off or workday, got {text:?}")]
    Line { line: usize, text: String },
    #[error("line {line}: {date} is listed twice")]
    Duplicate { line: usize, date: NaiveDate },
    /// A weekday is a working day already: a `workday` line on one is a typo for another date.
    #[error(
        "line {line}: {date} is a {weekday}; a make-up working day (调休上班) falls on a Saturday or Sunday"
    )]
    WorkdayNotWeekend {
        line: usize,
        date: NaiveDate,
        weekday: String,
    },
    #[error("the file lists no day off: a holiday calendar holds at least one year's arrangement")]
    Empty,
    /// Every year has its New Year's Day off: a year without a day off between the first and
    /// the last is a block lost in editing, and would be counted on weekends alone as if final.
    #[error(
        "the file covers {first}–{last} but lists no day off in {missing}: each year's arrangement is needed"
    )]
    MissingYear { first: i32, last: i32, missing: i32 },
    /// A new file that covers less than the loaded one would make settled deadlines
    /// provisional again: most likely a file cut short, or one year pasted over the others.
    #[error(
        "the file covers {new} but the loaded calendar covers {old}; a new calendar keeps every year the old one had"
    )]
    Shrinks { new: String, old: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolidayCalendar {
    off: HashSet<NaiveDate>,
    workdays: HashSet<NaiveDate>,
    first_year: Option<i32>,
    last_year: Option<i32>,
}

impl HolidayCalendar {
    /// Reads `date,kind,holiday` lines (`kind` = `off` or `workday`); `#` lines are comments.
    pub fn from_csv(text: &str) -> Result<Self, CalendarError> {
        let mut cal = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("date,") {
                continue;
            }
            let bad = || CalendarError::Line {
                line: i + 1,
                text: line.to_owned(),
            };
            let mut cols = line.split(',');
            let date = cols
                .next()
                .and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok())
                .ok_or_else(bad)?;
            let fresh = match cols.next().map(str::trim) {
                Some("off") => cal.off.insert(date) && !cal.workdays.contains(&date),
                Some("workday") => {
                    if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                        return Err(CalendarError::WorkdayNotWeekend {
                            line: i + 1,
                            date,
                            weekday: date.format("%A").to_string(),
                        });
                    }
                    cal.workdays.insert(date) && !cal.off.contains(&date)
                }
                _ => return Err(bad()),
            };
            if !fresh {
                return Err(CalendarError::Duplicate { line: i + 1, date });
            }
            cal.first_year = Some(cal.first_year.map_or(date.year(), |y| y.min(date.year())));
            cal.last_year = Some(cal.last_year.map_or(date.year(), |y| y.max(date.year())));
        }
        let (Some(first), Some(last)) = (cal.first_year, cal.last_year) else {
            return Err(CalendarError::Empty);
        };
        let with_days_off: HashSet<i32> = cal.off.iter().map(|d| d.year()).collect();
        if let Some(missing) = (first..=last).find(|y| !with_days_off.contains(y)) {
            return Err(CalendarError::MissingYear {
                first,
                last,
                missing,
            });
        }
        Ok(cal)
    }

    /// The years whose arrangement is loaded, first and last.
    pub fn years(&self) -> Option<(i32, i32)> {
        self.first_year.zip(self.last_year)
    }

    /// The last day the calendar covers (31 December of its last year).
    pub fn covered_until(&self) -> Option<NaiveDate> {
        self.last_year
            .and_then(|y| NaiveDate::from_ymd_opt(y, 12, 31))
    }

    /// Whether a period whose last day is `last_day` was counted on days the calendar does
    /// not cover. Counting runs forward from a covered day and coverage is one run of years,
    /// so this is the same mark as `Deadline::provisional`, for a date read back from storage.
    pub fn is_provisional(&self, last_day: NaiveDate) -> bool {
        !self.covers(last_day)
    }

    /// The same for a lapse instant (24:00 Beijing time at the end of the last day).
    pub fn is_provisional_due(&self, due: DateTime<Utc>) -> bool {
        self.is_provisional(local_date(due - chrono::Duration::microseconds(1)))
    }

    /// Whether this calendar may replace `old`: it keeps every year `old` covers.
    pub fn may_replace(&self, old: &HolidayCalendar) -> Result<(), CalendarError> {
        let span = |c: &HolidayCalendar| match c.years() {
            Some((a, b)) if a == b => a.to_string(),
            Some((a, b)) => format!("{a}–{b}"),
            None => "no year".into(),
        };
        match (self.years(), old.years()) {
            (_, None) => Ok(()),
            (Some((a, b)), Some((oa, ob))) if a <= oa && b >= ob => Ok(()),
            _ => Err(CalendarError::Shrinks {
                new: span(self),
                old: span(old),
            }),
        }
    }

    /// Whether the calendar holds the State Council arrangement for `d`'s year; outside it,
    /// only weekends are rest days and the answer may be wrong around holidays.
    pub fn covers(&self, d: NaiveDate) -> bool {
        matches!((self.first_year, self.last_year), (Some(a), Some(b)) if (a..=b).contains(&d.year()))
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        if self.off.contains(&d) {
            return false;
        }
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    pub fn next_working_day_on_or_after(&self, d: NaiveDate) -> NaiveDate {
        self.roll(d).0
    }

    /// The first working day on or after `d`, and whether the calendar covered every day it
    /// looked at to find it.
    pub fn roll(&self, mut d: NaiveDate) -> (NaiveDate, bool) {
        let mut covered = true;
        // Holidays never run longer than a few weeks; the bound only guards bad data.
        for _ in 0..366 {
            covered &= self.covers(d);
            if self.is_working_day(d) {
                return (d, covered);
            }
            d = d.succ_opt().unwrap_or(d);
        }
        (d, covered)
    }
}

/// How long a statutory period runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// 日: calendar days (the law's default)
    CalendarDays(u32),
    /// 工作日: working days on the loaded calendar (only the objection period, Art. 23 ¶3)
    WorkingDays(u32),
}

/// The counting rules where the law leaves room (DOMAIN.md §4 marks them unsettled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountingPolicy {
    /// Civil Code Art. 203: a period ending on a rest day ends on the next working day.
    pub roll_over_rest_days: bool,
}

impl Default for CountingPolicy {
    fn default() -> Self {
        Self {
            roll_over_rest_days: true,
        }
    }
}

/// The last day of a period and the instant it lapses (24:00 Asia/Shanghai that day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub last_day: NaiveDate,
    pub due: DateTime<Utc>,
    /// Some day the count looked at lies in a year whose holiday arrangement is not loaded
    /// (the State Council publishes the next year's each November or December): it was taken
    /// for a working day unless a weekend, and the last day may move once the year is loaded.
    pub provisional: bool,
}

impl Deadline {
    pub fn on(last_day: NaiveDate, provisional: bool) -> Self {
        Self {
            last_day,
            due: end_of_local_day(last_day),
            provisional,
        }
    }

    /// Still within the period at `t`?
    pub fn is_open_at(&self, t: DateTime<Utc>) -> bool {
        t < self.due
    }
}

/// The period that starts with an event at `start`: the start day itself is not counted.
pub fn deadline(
    start: DateTime<Utc>,
    period: Period,
    calendar: &HolidayCalendar,
    policy: CountingPolicy,
) -> Deadline {
    deadline_from_day(local_date(start), period, calendar, policy)
}

fn deadline_from_day(
    day: NaiveDate,
    period: Period,
    calendar: &HolidayCalendar,
    policy: CountingPolicy,
) -> Deadline {
    match period {
        Period::CalendarDays(n) => {
            let last = day.checked_add_days(Days::new(n.into())).unwrap_or(day);
            // Calendar days are counted without the calendar; only the roll-over asks it.
            if policy.roll_over_rest_days {
                let (last, covered) = calendar.roll(last);
                Deadline::on(last, !covered)
            } else {
                Deadline::on(last, false)
            }
        }
        Period::WorkingDays(n) => {
            let mut d = day;
            let mut counted = 0;
            let mut covered = true;
            while counted < n {
                d = d.succ_opt().unwrap_or(d);
                covered &= calendar.covers(d);
                if calendar.is_working_day(d) {
                    counted += 1;
                }
            }
            Deadline::on(d, !covered)
        }
    }
}

/// An extension runs from the day the original period ended, after any roll-over (Art. 34).
pub fn extend(
    original: Deadline,
    days: u32,
    calendar: &HolidayCalendar,
    policy: CountingPolicy,
) -> Deadline {
    let extended = deadline_from_day(
        original.last_day,
        Period::CalendarDays(days),
        calendar,
        policy,
    );
    Deadline {
        provisional: original.provisional || extended.provisional,
        ..extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> HolidayCalendar {
        HolidayCalendar::from_csv(include_str!("../../../deploy/config/cn-calendar.csv")).unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// 10:00 Beijing time on a date.
    fn at(y: i32, m: u32, day: u32) -> DateTime<Utc> {
        beijing()
            .with_ymd_and_hms(y, m, day, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_spring_festival_2026_and_its_make_up_days() {
        let c = cal();
        assert!(c.is_working_day(d(2026, 2, 14)), "Saturday make-up day");
        for day in 15..=23 {
            assert!(!c.is_working_day(d(2026, 2, day)), "Feb {day} off");
        }
        assert!(c.is_working_day(d(2026, 2, 24)));
        assert!(c.is_working_day(d(2026, 2, 28)), "Saturday make-up day");
        assert!(!c.is_working_day(d(2026, 3, 1)), "an ordinary Sunday");
        assert!(c.covers(d(2026, 6, 1)) && !c.covers(d(2027, 6, 1)));
    }

    #[test]
    fn messages_show_beijing_time() {
        assert_eq!(
            beijing_time(Utc.with_ymd_and_hms(2027, 5, 31, 16, 0, 0).unwrap()),
            "2027-06-01 00:00:00 +08:00"
        );
    }

    #[test]
    fn fifteen_days_end_at_midnight_beijing_of_day_fifteen() {
        // Received Mon 2026-03-02: day 1 is 03-03, day 15 is Tue 03-17.
        let dl = deadline(
            at(2026, 3, 2),
            Period::CalendarDays(15),
            &cal(),
            CountingPolicy::default(),
        );
        assert_eq!(dl.last_day, d(2026, 3, 17));
        // 24:00 Beijing = 16:00 UTC the same day.
        assert_eq!(dl.due, Utc.with_ymd_and_hms(2026, 3, 17, 16, 0, 0).unwrap());
        assert!(dl.is_open_at(Utc.with_ymd_and_hms(2026, 3, 17, 15, 59, 59).unwrap()));
        assert!(
            !dl.is_open_at(Utc.with_ymd_and_hms(2026, 3, 17, 16, 0, 0).unwrap()),
            "day 16"
        );
    }

    #[test]
    fn the_start_day_is_the_beijing_date_not_the_utc_one() {
        // 2026-03-02 23:30 Beijing is still 03-02 in UTC terms 15:30Z; 00:30 Beijing on 03-03 is
        // 16:30Z on 03-02 — a different start day.
        let late = beijing()
            .with_ymd_and_hms(2026, 3, 3, 0, 30, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(late.date_naive(), d(2026, 3, 2));
        let dl = deadline(
            late,
            Period::CalendarDays(15),
            &cal(),
            CountingPolicy::default(),
        );
        assert_eq!(dl.last_day, d(2026, 3, 18));
    }

    #[test]
    fn a_period_ending_on_a_rest_day_rolls_to_the_next_working_day() {
        // From 2026-02-05, 15 days end on 02-20, inside the Spring Festival: roll to 02-24.
        let c = cal();
        let rolled = deadline(
            at(2026, 2, 5),
            Period::CalendarDays(15),
            &c,
            CountingPolicy::default(),
        );
        assert_eq!(rolled.last_day, d(2026, 2, 24));
        let strict = deadline(
            at(2026, 2, 5),
            Period::CalendarDays(15),
            &c,
            CountingPolicy {
                roll_over_rest_days: false,
            },
        );
        assert_eq!(strict.last_day, d(2026, 2, 20));
    }

    #[test]
    fn five_working_days_across_the_festival_and_a_make_up_saturday() {
        // Received Fri 2026-02-13. Working days after it: Sat 02-14 (make-up), Tue 02-24,
        // Wed 02-25, Thu 02-26, Fri 02-27 → day 5 is 02-27; 02-28 (make-up Saturday) is day 6.
        let dl = deadline(
            at(2026, 2, 13),
            Period::WorkingDays(5),
            &cal(),
            CountingPolicy::default(),
        );
        assert_eq!(dl.last_day, d(2026, 2, 27));
        assert!(dl.is_open_at(at(2026, 2, 27)));
        assert!(!dl.is_open_at(at(2026, 2, 28)));
        // Received Tue 02-24: 25, 26, 27, 28 (Sat, make-up), Mon 03-02.
        let dl = deadline(
            at(2026, 2, 24),
            Period::WorkingDays(5),
            &cal(),
            CountingPolicy::default(),
        );
        assert_eq!(dl.last_day, d(2026, 3, 2));
    }

    #[test]
    fn an_extension_runs_from_the_rolled_end_of_the_original_period() {
        let c = cal();
        let original = deadline(
            at(2026, 2, 5),
            Period::CalendarDays(15),
            &c,
            CountingPolicy::default(),
        );
        assert_eq!(original.last_day, d(2026, 2, 24));
        let ext = extend(original, 30, &c, CountingPolicy::default());
        assert_eq!(ext.last_day, d(2026, 3, 26));
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(
            HolidayCalendar::from_csv("2026-01-01,holiday,元旦").unwrap_err(),
            CalendarError::Line {
                line: 1,
                text: "2026-01-01,holiday,元旦".into()
            }
        );
        assert!(matches!(
            HolidayCalendar::from_csv("2026-01-03,off,x\n2026-01-03,workday,y"),
            Err(CalendarError::Duplicate { line: 2, .. })
        ));
    }

    #[test]
    fn a_workday_line_on_a_weekday_or_a_file_without_days_off_is_refused() {
        assert_eq!(
            HolidayCalendar::from_csv("2027-01-01,off,元旦\n2027-02-03,workday,春节")
                .unwrap_err()
                .to_string(),
            "line 2: 2027-02-03 is a Wednesday; a make-up working day (调休上班) falls on a Saturday or Sunday"
        );
        assert_eq!(
            HolidayCalendar::from_csv("# nothing yet\ndate,kind,holiday\n").unwrap_err(),
            CalendarError::Empty
        );
    }

    #[test]
    fn a_year_lost_in_the_middle_is_refused() {
        let text = include_str!("../../../deploy/config/cn-calendar.csv")
            .lines()
            .filter(|l| !l.starts_with("2024-"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            HolidayCalendar::from_csv(&text).unwrap_err().to_string(),
            "the file covers 2022–2026 but lists no day off in 2024: each year's arrangement is needed"
        );
    }

    #[test]
    fn a_new_calendar_keeps_every_year_of_the_old() {
        let shipped = cal();
        assert_eq!(shipped.years(), Some((2022, 2026)));
        assert_eq!(shipped.covered_until(), Some(d(2026, 12, 31)));
        let only_2027 = HolidayCalendar::from_csv("2027-01-01,off,元旦").unwrap();
        assert_eq!(
            only_2027.may_replace(&shipped).unwrap_err().to_string(),
            "the file covers 2027 but the loaded calendar covers 2022–2026; a new calendar keeps every year the old one had"
        );
        let longer = HolidayCalendar::from_csv(&format!(
            "{}\n2027-01-01,off,元旦",
            include_str!("../../../deploy/config/cn-calendar.csv")
        ))
        .unwrap();
        assert!(longer.may_replace(&shipped).is_ok());
        assert!(shipped.may_replace(&shipped).is_ok());
    }

    #[test]
    fn a_date_past_the_last_year_is_provisional() {
        let c = cal();
        assert!(!c.is_provisional(d(2026, 12, 31)));
        assert!(c.is_provisional(d(2027, 1, 1)));
        // 24:00 on 12-31 is the last instant of 2026, not a day of 2027.
        assert!(!c.is_provisional_due(end_of_local_day(d(2026, 12, 31))));
        assert!(c.is_provisional_due(end_of_local_day(d(2027, 1, 1))));
    }
}
