//! The petitioner's query code (查询码, Art. 21): unguessable, and easy to read aloud over the
//! phone or copy from a slip of paper — no 0/O, 1/I/L or U/V pairs to confuse.

use rand::Rng;
use std::fmt;
use std::str::FromStr;

/// 29 symbols: digits 2-9 and letters without I, L, O, U, V.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTWXYZ";
const GROUPS: usize = 3;
const GROUP_LEN: usize = 4;

/// Twelve symbols from 29 give about 58 bits: at a million live cases, a guess succeeds about
/// once in 2^38 tries.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct QueryCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "query code must be 12 characters from 2-9 and A-Z without I, L, O, U, V (dashes and spaces are ignored)"
)]
pub struct InvalidQueryCode;

impl QueryCode {
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let symbols: String = (0..GROUPS * GROUP_LEN)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        Self(symbols)
    }

    /// The canonical form, without separators: what storage keeps.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the canonical form, in hex: what other services keep to check a code the
    /// petitioner presents, without holding the code. (58 bits of code make a digest
    /// impractical to invert.)
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.0.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl FromStr for QueryCode {
    type Err = InvalidQueryCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cleaned: String = s
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if cleaned.len() == GROUPS * GROUP_LEN && cleaned.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(Self(cleaned))
        } else {
            Err(InvalidQueryCode)
        }
    }
}

/// Shown in groups of four: `7KQ3-M9XH-2RTA`.
impl fmt::Display for QueryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<&str> = (0..GROUPS)
            .map(|i| &self.0[i * GROUP_LEN..(i + 1) * GROUP_LEN])
            .collect();
        f.write_str(&groups.join("-"))
    }
}

impl fmt::Debug for QueryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueryCode(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_codes_read_back_and_avoid_ambiguous_symbols() {
        let mut rng = rand::rng();
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let code = QueryCode::generate(&mut rng);
            let shown = code.to_string();
            assert_eq!(shown.len(), 14);
            assert!(
                !shown.contains(['0', '1', 'O', 'I', 'L', 'U', 'V']),
                "{shown}"
            );
            assert_eq!(shown.parse::<QueryCode>().unwrap(), code);
            assert_eq!(shown.to_lowercase().parse::<QueryCode>().unwrap(), code);
            seen.insert(code);
        }
        assert_eq!(
            seen.len(),
            2000,
            "12 symbols of 29 should not collide in 2000 draws"
        );
    }

    #[test]
    fn rejects_ambiguous_or_short_input() {
        assert!("7KQ3-M9XH-2RT0".parse::<QueryCode>().is_err());
        assert!("7KQ3-M9XH".parse::<QueryCode>().is_err());
        assert!("7kq3 m9xh 2rta".parse::<QueryCode>().is_ok());
    }
}
