//! Human case numbers: `<region>-<year>-<6-digit sequence>`, gapless per registering organ and
//! year (e.g. `140213-2026-000123`). The sequence itself is drawn by storage inside the
//! registration transaction; this module only formats and parses.

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaseNumber {
    region: String,
    year: i32,
    sequence: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseNumberError {
    #[error("case number must look like 140213-2026-000123 (region-year-sequence)")]
    Shape,
    #[error("sequence {0} does not fit in six digits: the organ's register for the year is full")]
    Overflow(u64),
}

pub const MAX_SEQUENCE: u64 = 999_999;

impl CaseNumber {
    pub fn new(region: &str, year: i32, sequence: u64) -> Result<Self, CaseNumberError> {
        if sequence == 0 || sequence > MAX_SEQUENCE {
            return Err(CaseNumberError::Overflow(sequence));
        }
        Ok(Self {
            region: region.to_owned(),
            year,
            sequence: sequence as u32,
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn sequence(&self) -> u32 {
        self.sequence
    }
}

/// The register year is the calendar year in China (UTC+8, no daylight saving) at registration.
pub fn register_year(registered_at: DateTime<Utc>) -> i32 {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    registered_at.with_timezone(&beijing).year()
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:04}-{:06}", self.region, self.year, self.sequence)
    }
}

impl FromStr for CaseNumber {
    type Err = CaseNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('-');
        let (Some(region), Some(year), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CaseNumberError::Shape);
        };
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        if !(digits(region, 6) || digits(region, 9)) || !digits(year, 4) || !digits(seq, 6) {
            return Err(CaseNumberError::Shape);
        }
        let year = year.parse().map_err(|_| CaseNumberError::Shape)?;
        let seq: u64 = seq.parse().map_err(|_| CaseNumberError::Shape)?;
        CaseNumber::new(region, year, seq).map_err(|_| CaseNumberError::Shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_and_parses() {
        let n = CaseNumber::new("140213", 2026, 123).unwrap();
        assert_eq!(n.to_string(), "140213-2026-000123");
        assert_eq!("140213-2026-000123".parse::<CaseNumber>().unwrap(), n);
        for bad in [
            "140213-2026-123",
            "140213-26-000123",
            "x-2026-000001",
            "140213-2026-000000",
        ] {
            assert!(bad.parse::<CaseNumber>().is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_a_seventh_digit() {
        assert!(CaseNumber::new("140213", 2026, 999_999).is_ok());
        assert_eq!(
            CaseNumber::new("140213", 2026, 1_000_000),
            Err(CaseNumberError::Overflow(1_000_000))
        );
    }

    #[test]
    fn the_year_turns_at_beijing_midnight() {
        // 2026-12-31T16:00Z is already 2027-01-01 00:00 in Asia/Shanghai.
        assert_eq!(
            register_year(Utc.with_ymd_and_hms(2026, 12, 31, 15, 59, 59).unwrap()),
            2026
        );
        assert_eq!(
            register_year(Utc.with_ymd_and_hms(2026, 12, 31, 16, 0, 0).unwrap()),
            2027
        );
    }
}
