//! Administrative region codes (GB/T 2260 plus 9-digit street/township codes).
//!
//! Codes nest by prefix once trailing zero pairs of the 6-digit part are dropped: `140000`
//! covers `14…`, `140200` covers `1402…`, and `140213001` sits inside `140213`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "region code must be 6 digits (province/city/district) or 9 digits (street/township), got {0:?}"
)]
pub struct InvalidRegionCode(pub String);

impl RegionCode {
    pub fn parse(s: &str) -> Result<Self, InvalidRegionCode> {
        let ok = (s.len() == 6 || s.len() == 9) && s.bytes().all(|b| b.is_ascii_digit());
        if ok && &s[..2] != "00" {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidRegionCode(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The significant prefix: the 6-digit part without trailing `00` pairs, plus any street
    /// digits.
    pub fn prefix(&self) -> &str {
        if self.0.len() == 9 {
            return &self.0;
        }
        let mut p = &self.0[..];
        while p.len() > 2 && p.ends_with("00") {
            p = &p[..p.len() - 2];
        }
        p
    }

    /// Whether `other` lies inside this region (a region contains itself).
    pub fn contains(&self, other: &RegionCode) -> bool {
        other.prefix().starts_with(self.prefix())
    }

    /// Nesting depth: 1 province, 2 city, 3 district, 4 street.
    pub fn depth(&self) -> usize {
        match self.prefix().len() {
            2 => 1,
            4 => 2,
            6 => 3,
            _ => 4,
        }
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    #[test]
    fn nesting_follows_significant_prefix() {
        assert!(r("140000").contains(&r("140213001")));
        assert!(r("140200").contains(&r("140213")));
        assert!(r("140213").contains(&r("140213001")));
        assert!(r("140213").contains(&r("140213")));
        assert!(!r("140213").contains(&r("140214")));
        assert!(!r("140213001").contains(&r("140213")));
        assert!(!r("140213001").contains(&r("140213002")));
        assert!(!r("140200").contains(&r("140300")));
    }

    #[test]
    fn depth_by_level() {
        assert_eq!(r("140000").depth(), 1);
        assert_eq!(r("140200").depth(), 2);
        assert_eq!(r("140213").depth(), 3);
        assert_eq!(r("140213001").depth(), 4);
    }

    #[test]
    fn rejects_malformed_codes() {
        for bad in ["", "14021", "1402130", "14021300a", "000000", "1402130011"] {
            assert!(RegionCode::parse(bad).is_err(), "{bad}");
        }
    }
}
