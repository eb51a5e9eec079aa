//! API keys for upstream systems (a city platform, the 12345 hotline) that cannot refresh
//! signed tokens: `authorization: ApiKey pk.<id>.<secret>`. Only a SHA-256 of each secret is
//! kept, in a file of lines `ID SYSTEM ORGAN SHA256`; a key always acts as role upstream under
//! its own system's name, so no key can act as a clerk, and no clerk can claim a system's key.

use crate::{Principal, Role};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("line {0}: write ID SYSTEM ORGAN SHA256 (the line `petition apikey new` prints)")]
    Line(usize),
    #[error("line {0}: key id {1:?} is given twice")]
    Duplicate(usize, String),
    #[error("line {0}: organ {1:?} is not in the organisation tree")]
    Organ(usize, String),
}

struct Entry {
    system: String,
    organ: String,
    hash: [u8; 32],
}

/// The keys a deployment accepts, by id.
#[derive(Default)]
pub struct ApiKeys {
    by_id: HashMap<String, Entry>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.by_id.len())
    }
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new key for `system` registering at `organ`: the key to give the system (shown once) and
/// the line for the keys file (which holds no secret).
pub fn mint(system: &str, organ: &str) -> (String, String) {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    let (id, secret) = (hex(&id), URL_SAFE_NO_PAD.encode(secret));
    let line = format!("{id} {system} {organ} {}", hex(&hash(&secret)));
    (format!("pk.{id}.{secret}"), line)
}

impl ApiKeys {
    /// Reads a keys file; `known_organ` says whether an organ is in the tree.
    pub fn parse(text: &str, known_organ: impl Fn(&str) -> bool) -> Result<Self, ApiKeyError> {
        let mut by_id = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let [id, system, organ, digest] = f[..] else {
                return Err(ApiKeyError::Line(n));
            };
            let bytes: Option<Vec<u8>> = (digest.len() == 64 && digest.is_ascii())
                .then(|| {
                    (0..64)
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&digest[i..i + 2], 16).ok())
                        .collect()
                })
                .flatten();
            let Some(hash) = bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
                return Err(ApiKeyError::Line(n));
            };
            if !known_organ(organ) {
                return Err(ApiKeyError::Organ(n, organ.to_owned()));
            }
            let entry = Entry {
                system: system.to_owned(),
                organ: organ.to_owned(),
                hash,
            };
            if by_id.insert(id.to_owned(), entry).is_some() {
                return Err(ApiKeyError::Duplicate(n, id.to_owned()));
            }
        }
        Ok(Self { by_id })
    }

    /// The upstream system a key belongs to, or why it is refused.
    pub fn principal(&self, key: &str) -> Result<Principal, String> {
        let unknown =
            || "this API key is not one this deployment issued (or it was withdrawn)".to_owned();
        let mut parts = key.trim().splitn(3, '.');
        let (Some("pk"), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("an API key reads pk.<id>.<secret>".into());
        };
        let entry = self.by_id.get(id).ok_or_else(unknown)?;
        let given = hash(secret);
        // compared in full whatever differs first: the time taken says nothing of the key
        let same = given
            .iter()
            .zip(entry.hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if !same {
            return Err(unknown());
        }
        Ok(Principal {
            subject: entry.system.clone(),
            org: entry.organ.clone(),
            role: Role::Upstream,
            scopes: vec![],
        })
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_key_opens_as_its_system_and_nothing_else() {
        let (key, line) = mint("datong.12345", "pingcheng.bureau");
        assert!(
            !line.contains(key.rsplit('.').next().unwrap()),
            "the file holds no secret"
        );
        let keys = ApiKeys::parse(&format!("# the hotline\n{line}\n"), |o| {
            o == "pingcheng.bureau"
        })
        .unwrap();
        let p = keys.principal(&key).unwrap();
        assert_eq!(
            (p.subject.as_str(), p.role),
            ("datong.12345", Role::Upstream)
        );
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
        assert!(
            keys.principal(&wrong)
                .unwrap_err()
                .contains("not one this deployment issued")
        );
        assert!(keys.principal("Bearer x").is_err());
        assert_eq!(
            ApiKeys::parse(&line, |_| false).unwrap_err(),
            ApiKeyError::Organ(1, "pingcheng.bureau".into())
        );
        assert_eq!(
            ApiKeys::parse("a b c", |_| true).unwrap_err(),
            ApiKeyError::Line(1)
        );
        assert!(matches!(
            ApiKeys::parse(&format!("{line}\n{line}"), |_| true),
            Err(ApiKeyError::Duplicate(2, _))
        ));
    }
}
