//! Page tokens for every list: the position to continue from, signed together with the filter
//! and the caller it was issued for, so that a token is neither forged, nor replayed under a
//! different filter (which would skip or repeat rows), nor handed to another caller.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tonic::Status;

type HmacSha256 = Hmac<Sha256>;

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

/// The page size a request asked for: 0 means the default; more than the maximum is cut.
pub fn page_size(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

#[derive(Clone)]
pub struct PageTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

impl PageTokens {
    /// Keys derived from the deployment's token secret, so tokens survive a restart and no
    /// second secret needs configuring.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"petition-pipeline page tokens v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, binding: &[u8], cursor: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&(binding.len() as u64).to_be_bytes());
        mac.update(binding);
        mac.update(cursor);
        mac
    }

    /// A token for `cursor`, bound to `binding` (the caller and the request's filter).
    pub fn encode(&self, binding: &[u8], cursor: &str) -> String {
        let tag = self.mac(binding, cursor.as_bytes()).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(cursor),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The cursor of a token this service issued for the same binding.
    pub fn decode(&self, binding: &[u8], token: &str) -> Result<String, Status> {
        let bad = |why: &str| Status::invalid_argument(format!("page_token: {why}"));
        let (cursor, tag) = token
            .split_once('.')
            .ok_or_else(|| bad("not a token this service issued"))?;
        let cursor = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| bad("not a token this service issued"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| bad("not a token this service issued"))?;
        self.mac(binding, &cursor).verify_slice(&tag).map_err(|_| {
            bad("not issued for this filter and caller; repeat the first request's filter, or start again without a token")
        })?;
        String::from_utf8(cursor).map_err(|_| bad("not a token this service issued"))
    }

    /// Where a list request continues: `None` for the first page (no token), else the cursor
    /// its token carries, read by `parse`.
    pub fn after<C>(
        &self,
        binding: &[u8],
        token: &str,
        parse: impl FnOnce(&str) -> Option<C>,
    ) -> Result<Option<C>, Status> {
        if token.is_empty() {
            return Ok(None);
        }
        parse(&self.decode(binding, token)?)
            .map(Some)
            .ok_or_else(|| Status::invalid_argument("page_token: not a token this service issued"))
    }

    /// Every list fetches one row more than the page holds, to know whether another page
    /// follows without counting: cuts `rows` back to `size` and returns the token for the next
    /// page, positioned at the last row kept (empty when this is the last page).
    pub fn next_page<T>(
        &self,
        binding: &[u8],
        rows: &mut Vec<T>,
        size: u32,
        cursor: impl FnOnce(&T) -> String,
    ) -> String {
        if rows.len() <= size as usize {
            return String::new();
        }
        rows.truncate(size as usize);
        rows.last()
            .map(|r| self.encode(binding, &cursor(r)))
            .unwrap_or_default()
    }
}

/// The binding of a list request: who asks, and the request with its paging fields cleared.
pub fn binding(p: &petition_auth::Principal, filter: &impl prost::Message) -> Vec<u8> {
    let mut b = format!("{}\n{}\n{}\n", p.subject, p.org, p.role).into_bytes();
    b.extend(filter.encode_to_vec());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_only_under_their_binding_and_key() {
        let t = PageTokens::new(b"secret-secret-secret-secret-secret");
        let token = t.encode(b"filter A", "1772400000:abc");
        assert_eq!(t.decode(b"filter A", &token).unwrap(), "1772400000:abc");
        let err = t.decode(b"filter B", &token).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("not issued for this filter"));
        let other = PageTokens::new(b"another-secret-another-secret-xx");
        assert!(other.decode(b"filter A", &token).is_err());
        assert!(t.decode(b"filter A", "garbage").is_err());
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("0:zzz"),
            token.split_once('.').unwrap().1
        );
        assert!(t.decode(b"filter A", &forged).is_err());
        assert_eq!(page_size(0), 50);

        // one row more than the page: cut, and a token at the last row kept
        let mut rows = vec![1, 2, 3];
        let next = t.next_page(b"f", &mut rows, 2, |r| r.to_string());
        assert_eq!(rows, [1, 2]);
        assert_eq!(
            t.after(b"f", &next, |c| c.parse::<i32>().ok()).unwrap(),
            Some(2)
        );
        let mut last = vec![1, 2];
        assert_eq!(t.next_page(b"f", &mut last, 2, |r| r.to_string()), "");
        assert_eq!(t.after(b"f", "", |c| c.parse::<i32>().ok()).unwrap(), None);
        let wrong = t.encode(b"f", "not a number");
        assert!(t.after(b"f", &wrong, |c| c.parse::<i32>().ok()).is_err());
        assert_eq!(page_size(10_000), 500);
    }
}
