//! Personal data at rest: resident ID, phone, address and the accused party are sealed with
//! XChaCha20-Poly1305 (random 192-bit nonces are safe at any volume), and resident IDs are
//! looked up by a keyed hash so that repeat detection never needs the plain number.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use petition_auth::keyring::{self, DEFAULT_KEY_ID, KeyRingError, NamedKey};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 24;

/// The first byte of a value sealed since key ids: then the key id's length, the id, the nonce
/// and the ciphertext. A value without it (nonce and ciphertext only) was sealed before key
/// ids and is opened by trying each key, so that data written then still opens.
const WITH_KEY_ID: u8 = 0x01;

/// Publicly known: only for runs started with `--dev`, which say so loudly.
pub const DEV_DATA_KEY: [u8; 32] = *b"petition-pipeline-dev-data-key!!";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("data key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    KeyFormat,
    #[error("data keys: {0}")]
    Ring(#[from] KeyRingError),
    #[error("sealed value is damaged or was sealed with another key")]
    Open,
    #[error(
        "sealed with data key {0:?}, which is not configured: put it back in PETITION_DATA_KEY until `petition rekey` has re-sealed its data"
    )]
    UnknownKey(String),
}

struct DataKey {
    id: String,
    aead: XChaCha20Poly1305,
    hash_key: [u8; 32],
}

impl DataKey {
    fn open(&self, nonce_and_body: &[u8]) -> Option<String> {
        if nonce_and_body.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = nonce_and_body.split_at(NONCE_LEN);
        let plain = self.aead.decrypt(XNonce::from_slice(nonce), body).ok()?;
        String::from_utf8(plain).ok()
    }

    fn id_hash(&self, id_type: &str, id_number: &str) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key).expect("any key length");
        mac.update(id_type.as_bytes());
        mac.update(b":");
        mac.update(id_number.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// Seals with the first key of its ring and opens with any; hashes identity documents with the
/// first key and looks them up under every key, so that a rotation loses neither data nor
/// repeat detection before `rekey` has moved everything to the new key.
#[derive(Clone)]
pub struct PersonalDataCipher {
    keys: std::sync::Arc<Vec<DataKey>>,
}

impl std::fmt::Debug for PersonalDataCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "PersonalDataCipher({ids:?})")
    }
}

fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// A value sealed since key ids: its key id and the rest.
fn with_key_id(sealed: &[u8]) -> Option<(&str, &[u8])> {
    let (&tag, rest) = sealed.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if tag != WITH_KEY_ID || len == 0 || rest.len() < len + NONCE_LEN {
        return None;
    }
    let (id, body) = rest.split_at(len);
    Some((std::str::from_utf8(id).ok()?, body))
}

impl PersonalDataCipher {
    /// One key, the ring's `default`. Separate keys for sealing and hashing are derived from
    /// each configured master key.
    pub fn new(master: &[u8; 32]) -> Self {
        Self::from_ring(vec![NamedKey {
            id: DEFAULT_KEY_ID.into(),
            secret: master.to_vec(),
        }])
        .expect("one key of 32 bytes")
    }

    fn from_ring(keys: Vec<NamedKey>) -> Result<Self, CryptoError> {
        let keys = keys
            .into_iter()
            .map(|k| {
                let master: [u8; 32] = k.secret.try_into().map_err(|_| CryptoError::KeyFormat)?;
                Ok(DataKey {
                    aead: XChaCha20Poly1305::new(
                        &derive(&master, "petition-pipeline/personal-data/aead/v1").into(),
                    ),
                    hash_key: derive(&master, "petition-pipeline/personal-data/id-hash/v1"),
                    id: k.id,
                })
            })
            .collect::<Result<Vec<_>, CryptoError>>()?;
        if keys.is_empty() {
            return Err(KeyRingError::Empty.into());
        }
        Ok(Self {
            keys: std::sync::Arc::new(keys),
        })
    }

    /// One base64 key, or `ID:BASE64 …` newest first (see `petition_auth::keyring`).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let ring = keyring::parse(text, |s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| CryptoError::KeyFormat.to_string())
        })?;
        Self::from_ring(ring)
    }

    fn current(&self) -> &DataKey {
        &self.keys[0]
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.current().id
    }

    pub fn seal(&self, plain: &str) -> Vec<u8> {
        let key = self.current();
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = key
            .aead
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory data");
        let id = key.id.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + sealed.len());
        out.push(WITH_KEY_ID);
        out.push(u8::try_from(id.len()).expect("key ids are at most 40 bytes"));
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Whether `sealed` is sealed with the key that seals now, under its id (else `rekey`
    /// re-seals it: a value whose secret is current under an old id too, so that every value
    /// names the key it is sealed with).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        with_key_id(sealed).is_some_and(|(id, body)| {
            id == self.current().id && self.current().open(body).is_some()
        })
    }

    pub fn open(&self, sealed: &[u8]) -> Result<String, CryptoError> {
        let named = with_key_id(sealed);
        if let Some((id, body)) = named {
            // The key it names first; then any key, because the same secret may have been
            // given another id in the ring since (a bare key is `default`; an operator may
            // label it when rotating). The AEAD tells a wrong key from the right one.
            let by_id = self.keys.iter().find(|k| k.id == id);
            if let Some(plain) = by_id
                .into_iter()
                .chain(self.keys.iter().filter(|k| k.id != id))
                .find_map(|k| k.open(body))
            {
                return Ok(plain);
            }
        }
        // Sealed before key ids (a random nonce may begin like a key id: try this too).
        if let Some(plain) = self.keys.iter().find_map(|k| k.open(sealed)) {
            return Ok(plain);
        }
        match named {
            Some((id, _)) if !self.keys.iter().any(|k| k.id == id) => {
                Err(CryptoError::UnknownKey(id.to_owned()))
            }
            _ => Err(CryptoError::Open),
        }
    }

    /// Keyed hash of an identity document under the key that seals now: equal for equal
    /// documents, useless without the key.
    pub fn id_hash(&self, id_type: &str, id_number: &str) -> Vec<u8> {
        self.current().id_hash(id_type, id_number)
    }

    /// The document's hash under every key, to find it whichever key hashed it.
    pub fn id_hashes(&self, id_type: &str, id_number: &str) -> Vec<Vec<u8>> {
        self.keys
            .iter()
            .map(|k| k.id_hash(id_type, id_number))
            .collect()
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

    fn key(n: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([n; 32])
    }

    #[test]
    fn a_rotated_ring_opens_what_the_old_key_sealed_and_finds_its_hashes() {
        let old = PersonalDataCipher::from_base64(&format!("k1:{}", key(1))).unwrap();
        let sealed = old.seal("13903521234");
        let hash = old.id_hash("resident_id", "140213196503121017");

        let rotated =
            PersonalDataCipher::from_base64(&format!("k2:{} k1:{}", key(2), key(1))).unwrap();
        assert_eq!(rotated.current_id(), "k2");
        assert_eq!(rotated.open(&sealed).unwrap(), "13903521234");
        assert!(!rotated.is_current(&sealed), "rekey must re-seal it");
        let resealed = rotated.seal("13903521234");
        assert!(rotated.is_current(&resealed));
        assert!(
            rotated
                .id_hashes("resident_id", "140213196503121017")
                .contains(&hash)
        );
        assert_ne!(rotated.id_hash("resident_id", "140213196503121017"), hash);

        // The old key retired: what it sealed no longer opens, and the error names it.
        let retired = PersonalDataCipher::from_base64(&format!("k2:{}", key(2))).unwrap();
        assert_eq!(retired.open(&resealed).unwrap(), "13903521234");
        let err = retired.open(&sealed).unwrap_err().to_string();
        assert!(err.contains("\"k1\"") && err.contains("rekey"), "{err}");
    }

    #[test]
    fn a_value_sealed_before_key_ids_still_opens() {
        // nonce and ciphertext only, under the single key a deployment had then
        let master = [5u8; 32];
        let aead = XChaCha20Poly1305::new(
            &derive(&master, "petition-pipeline/personal-data/aead/v1").into(),
        );
        let nonce = [7u8; NONCE_LEN];
        let mut legacy = nonce.to_vec();
        legacy.extend(
            aead.encrypt(
                XNonce::from_slice(&nonce),
                &b"Pingcheng, Xinjian Road 3"[..],
            )
            .unwrap(),
        );
        let ring =
            PersonalDataCipher::from_base64(&format!("new:{} default:{}", key(6), key(5))).unwrap();
        assert_eq!(ring.open(&legacy).unwrap(), "Pingcheng, Xinjian Road 3");
        assert!(!ring.is_current(&legacy));
    }

    proptest::proptest! {
        /// Whatever bytes a row holds, opening them refuses or succeeds, never panics; what
        /// is sealed opens as it was, under a rotated ring too.
        #[test]
        fn fuzz_sealed_values(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            plain in "\\PC{0,100}",
        ) {
            let ring = PersonalDataCipher::from_base64(&format!("k2:{} k1:{}", key(2), key(1))).unwrap();
            let _ = ring.open(&bytes);
            let _ = ring.is_current(&bytes);
            let old = PersonalDataCipher::from_base64(&format!("k1:{}", key(1))).unwrap();
            proptest::prop_assert_eq!(ring.open(&old.seal(&plain)).unwrap(), plain.clone());
            proptest::prop_assert_eq!(ring.open(&ring.seal(&plain)).unwrap(), plain);
        }
    }

    #[test]
    fn a_key_given_another_id_in_the_ring_still_opens_what_it_sealed() {
        let bare = PersonalDataCipher::from_base64(&key(1)).unwrap();
        let sealed = bare.seal("13903521234");
        let labelled =
            PersonalDataCipher::from_base64(&format!("2026-11:{} 2026-05:{}", key(2), key(1)))
                .unwrap();
        assert_eq!(labelled.open(&sealed).unwrap(), "13903521234");
        assert!(!labelled.is_current(&sealed));
    }
}
