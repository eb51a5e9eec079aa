//! Named keys, so that a key can be replaced without a flag day: the first key of a ring signs
//! or seals, every key of it verifies or opens, and what a key made carries the key's id.
//! Rotating is then: put the new key first and keep the old one after it; once nothing made
//! with the old one is in use (its tokens have expired; `rekey` has re-sealed its data), drop it.
//!
//! A ring is written as whitespace-separated `ID:SECRET` entries, newest first, e.g.
//! `PETITION_TOKEN_KEY="2026-11:… 2026-05:…"`. One entry without an id is the key `default`:
//! that is how a deployment configured before key ids reads its single key.

/// The id of a key given without one.
pub const DEFAULT_KEY_ID: &str = "default";

#[derive(Clone, PartialEq, Eq)]
pub struct NamedKey {
    pub id: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NamedKey({:?}, ..)", self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    #[error("no key given")]
    Empty,
    #[error(
        "entry {0}: give every key as ID:SECRET when there is more than one (ID: letters, digits, '.', '_', '-', up to 40)"
    )]
    NoId(usize),
    #[error("key {0:?} is given twice")]
    Duplicate(String),
    #[error("key {0:?}: {1}")]
    Secret(String, String),
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 40
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Reads a ring, each secret through `decode` (which says what is wrong with one).
pub fn parse(
    spec: &str,
    decode: impl Fn(&str) -> Result<Vec<u8>, String>,
) -> Result<Vec<NamedKey>, KeyRingError> {
    let entries: Vec<&str> = spec.split_whitespace().collect();
    if entries.is_empty() {
        return Err(KeyRingError::Empty);
    }
    let mut keys: Vec<NamedKey> = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        let (id, secret) = match entry.split_once(':') {
            Some((id, secret)) if valid_id(id) && !secret.is_empty() => (id, secret),
            _ if entries.len() == 1 => (DEFAULT_KEY_ID, *entry),
            _ => return Err(KeyRingError::NoId(n + 1)),
        };
        if keys.iter().any(|k| k.id == id) {
            return Err(KeyRingError::Duplicate(id.to_owned()));
        }
        let secret = decode(secret).map_err(|e| KeyRingError::Secret(id.to_owned(), e))?;
        keys.push(NamedKey {
            id: id.to_owned(),
            secret,
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Result<Vec<u8>, String> {
        if s.len() < 4 {
            Err("too short".into())
        } else {
            Ok(s.as_bytes().to_vec())
        }
    }

    #[test]
    fn one_key_without_an_id_is_the_default_key() {
        let k = parse("  abcdef  ", raw).unwrap();
        assert_eq!(k.len(), 1);
        assert_eq!(
            (k[0].id.as_str(), k[0].secret.as_slice()),
            ("default", &b"abcdef"[..])
        );
        // a lone secret that holds a colon after something that is no id is still one key
        let k = parse("x/y:abcdef", raw).unwrap();
        assert_eq!(
            (k[0].id.as_str(), k[0].secret.as_slice()),
            ("default", &b"x/y:abcdef"[..])
        );
        // several words without ids are a mistake, not one key
        assert_eq!(parse("two words", raw), Err(KeyRingError::NoId(1)));
    }

    #[test]
    fn the_first_of_several_named_keys_leads() {
        let k = parse("2026-11:newsecret\n 2026-05:oldsecret", raw).unwrap();
        let ids: Vec<&str> = k.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["2026-11", "2026-05"]);
        assert_eq!(k[1].secret, b"oldsecret");
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(parse(" ", raw), Err(KeyRingError::Empty));
        assert_eq!(parse("a:abcdef abcdef", raw), Err(KeyRingError::NoId(2)));
        assert_eq!(
            parse("a:abcdef a:ghijkl", raw),
            Err(KeyRingError::Duplicate("a".into()))
        );
        assert_eq!(
            parse("a:abcdef b:xy", raw),
            Err(KeyRingError::Secret("b".into(), "too short".into()))
        );
    }
}
