//! Personal data at rest: resident ID, phone, address and the accused party are sealed with
//! XChaCha20-Poly1305 (random 192-bit nonces are safe at any volume), and resident IDs are
//! looked up by a keyed hash so that repeat detection never needs the plain number.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 24;

/// Publicly known: only for runs started with `--dev`, which say so loudly.
pub const DEV_DATA_KEY: [u8; 32] = *b"petition-pipeline-dev-data-key!!";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("data key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    KeyFormat,
    #[error("sealed value is damaged or was sealed with another key")]
    Open,
}

#[derive(Clone)]
pub struct PersonalDataCipher {
    aead: XChaCha20Poly1305,
    hash_key: [u8; 32],
}

impl std::fmt::Debug for PersonalDataCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalDataCipher(..)")
    }
}

fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl PersonalDataCipher {
    /// Separate keys for sealing and hashing, both derived from one configured master key.
    pub fn new(master: &[u8; 32]) -> Self {
        let enc = derive(master, "petition-pipeline/personal-data/aead/v1");
        Self {
            aead: XChaCha20Poly1305::new(&enc.into()),
            hash_key: derive(master, "petition-pipeline/personal-data/id-hash/v1"),
        }
    }

    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::KeyFormat)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::KeyFormat)?;
        Ok(Self::new(&key))
    }

    pub fn seal(&self, plain: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory data");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<String, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let plain = self
            .aead
            .decrypt(XNonce::from_slice(nonce), body)
            .map_err(|_| CryptoError::Open)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Open)
    }

    /// Keyed hash of an identity document: equal for equal documents, useless without the key.
    pub fn id_hash(&self, id_type: &str, id_number: &str) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key).expect("any key length");
        mac.update(id_type.as_bytes());
        mac.update(b":");
        mac.update(id_number.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_fresh_nonces() {
        let c = PersonalDataCipher::new(&DEV_DATA_KEY);
        let a = c.seal("140213196503121017");
        let b = c.seal("140213196503121017");
        assert_ne!(a, b, "nonces differ");
        assert!(
            !a.windows(6).any(|w| w == b"140213"),
            "no plaintext in the sealed bytes"
        );
        assert_eq!(c.open(&a).unwrap(), "140213196503121017");
    }

    #[test]
    fn another_key_or_a_flipped_bit_fails_to_open() {
        let c = PersonalDataCipher::new(&DEV_DATA_KEY);
        let other = PersonalDataCipher::new(&[9u8; 32]);
        let mut sealed = c.seal("13903521234");
        assert!(other.open(&sealed).is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(c.open(&sealed).is_err());
        assert!(c.open(b"short").is_err());
    }

    #[test]
    fn id_hash_is_stable_and_keyed() {
        let c = PersonalDataCipher::new(&DEV_DATA_KEY);
        let other = PersonalDataCipher::new(&[9u8; 32]);
        let h = c.id_hash("resident_id", "140213196503121017");
        assert_eq!(h, c.id_hash("resident_id", "140213196503121017"));
        assert_ne!(h, other.id_hash("resident_id", "140213196503121017"));
        assert_ne!(h, c.id_hash("passport", "140213196503121017"));
    }

    #[test]
    fn base64_keys() {
        let text = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
        assert!(PersonalDataCipher::from_base64(&text).is_ok());
        assert!(PersonalDataCipher::from_base64("c2hvcnQ=").is_err());
        assert!(PersonalDataCipher::from_base64("not base64!").is_err());
    }
}
