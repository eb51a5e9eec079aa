//! Petitioner identity: resident ID numbers (GB 11643), phone numbers, masking.
//!
//! Only the sex and age band derived from a resident ID may leave intake; the number itself is
//! personal data (PIPL) and is encrypted at rest.

use chrono::{Datelike, NaiveDate};
use std::fmt;

crate::text_enum! {
    pub enum IdType {
        /// 居民身份证
        ResidentId = "resident_id",
        Passport = "passport",
        Other = "other",
    }
}

crate::text_enum! {
    pub enum Sex {
        Male = "male",
        Female = "female",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    #[error("must be 18 characters: 17 digits and a check digit (0-9 or X)")]
    Length,
    #[error("must be 17 digits followed by a digit or X")]
    Characters,
    #[error("the first two digits {0:?} are not a province-level region code")]
    Region(String),
    #[error("the birth date {0:?} (digits 7-14) is not a real date")]
    BirthDate(String),
    #[error("the birth date {0} lies outside 1900-01-01..today")]
    BirthDateRange(NaiveDate),
    #[error(
        "check digit is {found}, but the GB 11643 checksum of the first 17 digits gives {expected}"
    )]
    CheckDigit { expected: char, found: char },
}

/// Province-level codes that may begin an 18-digit resident ID number.
const PROVINCES: [&str; 35] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82", "83",
];

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// A validated 18-digit resident ID number (居民身份证号码).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId {
    number: String,
    birth_date: NaiveDate,
    sex: Sex,
}

impl fmt::Debug for ResidentId {
    // Never print the number itself: debug output ends up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResidentId")
            .field("number", &mask_id_number(&self.number))
            .finish()
    }
}

impl ResidentId {
    /// Validates region, birth date and check digit; `today` bounds the birth date.
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, ResidentIdError> {
        let number = raw.trim().to_ascii_uppercase();
        if number.chars().count() != 18 {
            return Err(ResidentIdError::Length);
        }
        let bytes = number.as_bytes();
        if !bytes[..17].iter().all(u8::is_ascii_digit)
            || !(bytes[17].is_ascii_digit() || bytes[17] == b'X')
        {
            return Err(ResidentIdError::Characters);
        }
        if !PROVINCES.contains(&&number[..2]) {
            return Err(ResidentIdError::Region(number[..2].to_owned()));
        }
        let birth = &number[6..14];
        let birth_date = NaiveDate::parse_from_str(birth, "%Y%m%d")
            .map_err(|_| ResidentIdError::BirthDate(birth.to_owned()))?;
        let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
        if birth_date < earliest || birth_date > today {
            return Err(ResidentIdError::BirthDateRange(birth_date));
        }
        let expected = check_digit(&bytes[..17]);
        let found = bytes[17] as char;
        if expected != found {
            return Err(ResidentIdError::CheckDigit { expected, found });
        }
        // The 17th digit (sequence code) is odd for men and even for women.
        let sex = if (bytes[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        };
        Ok(Self {
            number,
            birth_date,
            sex,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.number
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    pub fn birth_year(&self) -> i32 {
        self.birth_date.year()
    }

    pub fn sex(&self) -> Sex {
        self.sex
    }

    pub fn age_band(&self, on: NaiveDate) -> &'static str {
        age_band(self.birth_date, on)
    }
}

/// The GB 11643 check character for the first 17 digits (also used to make valid test and
/// benchmark identities).
pub fn check_digit(first17: &[u8]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// Age bands used in situation analysis; fine enough to be useful, coarse enough not to identify.
pub fn age_band(birth: NaiveDate, on: NaiveDate) -> &'static str {
    let age = on.years_since(birth).unwrap_or(0);
    match age {
        0..=17 => "0-17",
        18..=29 => "18-29",
        30..=39 => "30-39",
        40..=49 => "40-49",
        50..=59 => "50-59",
        60..=69 => "60-69",
        70..=79 => "70-79",
        _ => "80+",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be a mainland mobile number (11 digits starting 13-19) or a landline with area code (0 + 2-3 digit area code + 7-8 digits)"
)]
pub struct InvalidPhone;

/// Normalises a phone number to digits only and checks its shape.
pub fn normalize_phone(raw: &str) -> Result<String, InvalidPhone> {
    let trimmed = raw.trim();
    let body = trimmed
        .strip_prefix("+86")
        .or_else(|| trimmed.strip_prefix("0086"))
        .unwrap_or(trimmed);
    if body
        .chars()
        .any(|c| !(c.is_ascii_digit() || c == '-' || c == ' '))
    {
        return Err(InvalidPhone);
    }
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    let b = digits.as_bytes();
    let mobile = b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
    // Area codes are 3 or 4 characters including the leading 0, subscriber numbers 7 or 8.
    let landline = b.first() == Some(&b'0') && (10..=12).contains(&b.len()) && b[1] != b'0';
    if mobile || landline {
        Ok(digits)
    } else {
        Err(InvalidPhone)
    }
}

/// `140213196503121017` → `1402**********1017`
pub fn mask_id_number(s: &str) -> String {
    mask_middle(s, 4, 4)
}

/// `13903521234` → `139****1234`
pub fn mask_phone(s: &str) -> String {
    mask_middle(s, 3, 4)
}

/// `王建国` → `王**`: the family name alone, so that a name of two or three characters is not
/// shown whole.
pub fn mask_name(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// Keeps the first six characters (city and district) of an address.
pub fn mask_address(s: &str) -> String {
    let kept: String = s.chars().take(6).collect();
    if s.chars().count() > 6 {
        format!("{kept}****")
    } else {
        kept
    }
}

fn mask_middle(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    #[test]
    fn accepts_the_sample_petitioners() {
        for (id, sex, year) in [
            ("140213196503121017", Sex::Male, 1965),
            ("140213197208052025", Sex::Female, 1972),
            ("140213198304157577", Sex::Male, 1983),
            ("140213195502288689", Sex::Female, 1955),
            ("140214198801173136", Sex::Male, 1988),
            ("140213197909244249", Sex::Female, 1979),
            ("140213196012015359", Sex::Male, 1960),
            ("140212199106306461", Sex::Female, 1991),
        ] {
            let rid = ResidentId::parse(id, today()).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(rid.sex(), sex, "{id}");
            assert_eq!(rid.birth_year(), year, "{id}");
        }
    }

    #[test]
    fn check_digit_x_is_accepted_in_either_case() {
        // 11010519491231002X is the standard's own worked example.
        let rid = ResidentId::parse("11010519491231002x", today()).unwrap();
        assert_eq!(rid.as_str(), "11010519491231002X");
        assert_eq!(rid.sex(), Sex::Female);
    }

    #[test]
    fn rejects_a_wrong_check_digit_naming_the_expected_one() {
        let err = ResidentId::parse("140213196503121018", today()).unwrap_err();
        assert_eq!(
            err,
            ResidentIdError::CheckDigit {
                expected: '7',
                found: '8'
            }
        );
    }

    #[test]
    fn rejects_impossible_birth_dates() {
        // 1965-02-30 does not exist; the check digit would not matter.
        assert!(matches!(
            ResidentId::parse("140213196502301017", today()),
            Err(ResidentIdError::BirthDate(_))
        ));
        // born after "today"
        let future = "140213202701010000";
        assert!(matches!(
            ResidentId::parse(future, today()),
            Err(ResidentIdError::BirthDateRange(_))
        ));
    }

    #[test]
    fn rejects_unknown_province_and_bad_shapes() {
        assert!(matches!(
            ResidentId::parse("990213196503121017", today()),
            Err(ResidentIdError::Region(_))
        ));
        assert_eq!(
            ResidentId::parse("14021319650312101", today()),
            Err(ResidentIdError::Length)
        );
        assert_eq!(
            ResidentId::parse("1402131965031210Y7", today()),
            Err(ResidentIdError::Characters)
        );
    }

    #[test]
    fn age_bands_turn_on_the_birthday() {
        let birth = NaiveDate::from_ymd_opt(1966, 3, 2).unwrap();
        assert_eq!(
            age_band(birth, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
            "50-59"
        );
        assert_eq!(
            age_band(birth, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()),
            "60-69"
        );
        assert_eq!(
            age_band(birth, NaiveDate::from_ymd_opt(1980, 1, 1).unwrap()),
            "0-17"
        );
    }

    #[test]
    fn debug_output_masks_the_number() {
        let rid = ResidentId::parse("140213196503121017", today()).unwrap();
        let shown = format!("{rid:?}");
        assert!(!shown.contains("196503121"), "{shown}");
    }

    #[test]
    fn phones() {
        assert_eq!(normalize_phone("13903521234").unwrap(), "13903521234");
        assert_eq!(normalize_phone("+86 139-0352-1234").unwrap(), "13903521234");
        assert_eq!(normalize_phone("0352-2223333").unwrap(), "03522223333");
        assert_eq!(normalize_phone("010-12345678").unwrap(), "01012345678");
        for bad in [
            "12903521234",
            "1390352123",
            "abc",
            "0012345678",
            "139035212345",
            "",
        ] {
            assert!(normalize_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask_id_number("140213196503121017"), "1402**********1017");
        assert_eq!(mask_phone("13903521234"), "139****1234");
        assert_eq!(
            mask_address("大同市平城区北关街道某小区3号楼"),
            "大同市平城区****"
        );
        assert_eq!(mask_phone("123"), "***");
    }
}
