//! Periods of the situation analysis: whole months in Beijing time. Reports, assessments and
//! their comparisons (同比, 环比) are by month, quarter and year, so the read models keep months
//! and never a finer grain than they are asked for.

use chrono::{Datelike, NaiveDate};
use std::fmt;

/// A calendar month, as the number of months since January of year 0: consecutive months are
/// consecutive numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(i32);

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        (1..=12)
            .contains(&month)
            .then_some(Month(year * 12 + month as i32 - 1))
    }

    pub fn of(d: NaiveDate) -> Self {
        Month(d.year() * 12 + d.month0() as i32)
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    pub fn month(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    /// `YYYYMM`, the key the read models store: it sorts and ranges as the months do.
    pub fn key(self) -> i64 {
        i64::from(self.year()) * 100 + i64::from(self.month())
    }

    pub fn from_key(k: i64) -> Option<Self> {
        Month::new(i32::try_from(k / 100).ok()?, u32::try_from(k % 100).ok()?)
    }

    pub fn plus(self, months: i32) -> Self {
        Month(self.0 + months)
    }

    /// How many months after `earlier` this one is.
    pub fn since(self, earlier: Month) -> i32 {
        self.0 - earlier.0
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year(), self.month(), 1).expect("a month's first day")
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        Month::new(y.parse().ok()?, m.parse().ok()?)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// Consecutive months, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Months {
    pub first: Month,
    pub last: Month,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "period: {0:?} is not a period; write a year (2026), a quarter (2026-Q3), a month (2026-05) or months (2026-03..2026-08)"
)]
pub struct BadPeriod(pub String);

impl Months {
    pub fn single(m: Month) -> Self {
        Months { first: m, last: m }
    }

    /// Parses a period as the API documents it.
    pub fn parse(s: &str) -> Result<Self, BadPeriod> {
        let bad = || BadPeriod(s.to_owned());
        let s = s.trim();
        if let Some((a, b)) = s.split_once("..") {
            let (first, last) = (
                Month::parse(a).ok_or_else(bad)?,
                Month::parse(b).ok_or_else(bad)?,
            );
            return if first <= last && last.0 - first.0 < 120 {
                Ok(Months { first, last })
            } else {
                Err(bad())
            };
        }
        if let Some((y, q)) = s.split_once("-Q") {
            let year: i32 = parse_year(y).ok_or_else(bad)?;
            let q: u32 = q
                .parse()
                .ok()
                .filter(|q| (1..=4).contains(q))
                .ok_or_else(bad)?;
            let first = Month::new(year, q * 3 - 2).ok_or_else(bad)?;
            return Ok(Months {
                first,
                last: first.plus(2),
            });
        }
        if let Some(year) = parse_year(s) {
            let first = Month::new(year, 1).ok_or_else(bad)?;
            return Ok(Months {
                first,
                last: first.plus(11),
            });
        }
        Month::parse(s).map(Months::single).ok_or_else(bad)
    }

    pub fn len(self) -> i32 {
        self.last.0 - self.first.0 + 1
    }

    pub fn is_empty(self) -> bool {
        false
    }

    /// 环比: the period of the same length just before.
    pub fn previous(self) -> Self {
        let n = self.len();
        Months {
            first: self.first.plus(-n),
            last: self.last.plus(-n),
        }
    }

    /// 同比: the same months a year earlier.
    pub fn year_ago(self) -> Self {
        Months {
            first: self.first.plus(-12),
            last: self.last.plus(-12),
        }
    }

    pub fn contains(self, m: Month) -> bool {
        self.first <= m && m <= self.last
    }

    pub fn iter(self) -> impl Iterator<Item = Month> {
        (self.first.0..=self.last.0).map(Month)
    }

    /// How a person names it: 2026年, 2026年第3季度, 2026年5月, 2026年3月至8月.
    pub fn label(self) -> String {
        let (f, l) = (self.first, self.last);
        if f.month() == 1 && l == f.plus(11) {
            format!("{}年", f.year())
        } else if self.len() == 3 && f.month() % 3 == 1 {
            format!("{}年第{}季度", f.year(), f.month() / 3 + 1)
        } else if f == l {
            format!("{}年{}月", f.year(), f.month())
        } else if f.year() == l.year() {
            format!("{}年{}月至{}月", f.year(), f.month(), l.month())
        } else {
            format!(
                "{}年{}月至{}年{}月",
                f.year(),
                f.month(),
                l.year(),
                l.month()
            )
        }
    }
}

impl fmt::Display for Months {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

fn parse_year(s: &str) -> Option<i32> {
    (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
        .filter(|y| *y >= 1990)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(y: i32, mo: u32) -> Month {
        Month::new(y, mo).unwrap()
    }

    #[test]
    fn periods_parse_to_whole_months() {
        assert_eq!(
            Months::parse("2026").unwrap(),
            Months {
                first: m(2026, 1),
                last: m(2026, 12)
            }
        );
        assert_eq!(
            Months::parse("2026-Q3").unwrap(),
            Months {
                first: m(2026, 7),
                last: m(2026, 9)
            }
        );
        assert_eq!(
            Months::parse("2026-05").unwrap(),
            Months::single(m(2026, 5))
        );
        assert_eq!(
            Months::parse("2025-11..2026-02").unwrap(),
            Months {
                first: m(2025, 11),
                last: m(2026, 2)
            }
        );
        for bad in [
            "",
            "26",
            "2026-13",
            "2026-Q5",
            "2026-05..2026-04",
            "2026-5",
            "May",
        ] {
            let e = Months::parse(bad).unwrap_err();
            assert!(e.to_string().starts_with("period: "), "{e}");
        }
    }

    #[test]
    fn comparisons_cross_year_ends() {
        let q1 = Months::parse("2026-Q1").unwrap();
        assert_eq!(q1.previous(), Months::parse("2025-Q4").unwrap());
        assert_eq!(q1.year_ago(), Months::parse("2025-Q1").unwrap());
        let jan = Months::parse("2026-01").unwrap();
        assert_eq!(jan.previous(), Months::parse("2025-12").unwrap());
        assert_eq!(Months::parse("2026").unwrap().previous().label(), "2025年");
        assert_eq!(m(2026, 1).plus(-1).key(), 202512);
        assert_eq!(Month::from_key(202512), Some(m(2025, 12)));
        assert_eq!(Months::parse("2026-Q3").unwrap().label(), "2026年第3季度");
    }

    proptest::proptest! {
        /// A period typed by anyone parses or is refused, never panics, and never spans more
        /// than the ten years a query may cover.
        #[test]
        fn fuzz_periods(s in "\\PC{0,24}", y in 2000i32..2100, a in 1u32..=12, b in 1u32..=12) {
            if let Ok(p) = Months::parse(&s) {
                proptest::prop_assert!(p.first <= p.last && p.last.0 - p.first.0 < 120);
            }
            let (first, last) = (a.min(b), a.max(b));
            let range = format!("{y}-{first:02}..{y}-{last:02}");
            let p = Months::parse(&range).unwrap();
            proptest::prop_assert_eq!((p.first, p.last), (m(y, first), m(y, last)));
        }
    }
}
