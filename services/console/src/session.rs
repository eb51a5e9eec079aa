//! Sessions: a random id in a Secure, HttpOnly, SameSite=Strict cookie, and everything else on
//! the server — the signed-in person's token, the form token against cross-site requests
//! (CSRF), a one-time message for the next page. The token never reaches the browser's
//! scripts, and a stolen page cannot post a form without the form token of its session.
//! Sessions live in memory: a restart of the console signs everyone out, which is safe.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use petition_auth::Principal;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

pub const COOKIE: &str = "petition_session";
/// A session no one has used for this long is forgotten.
const IDLE: Duration = Duration::hours(8);
/// At most this many sessions are kept; beyond it the least recently used anonymous ones go
/// first, so that a flood of visits can neither fill the console's memory nor sign out the
/// people at work.
const MAX_SESSIONS: usize = 20_000;

/// The person signed in on a session.
#[derive(Debug, Clone)]
pub struct User {
    /// the bearer token every call is made with: the services decide what it may do
    pub token: String,
    /// who the token says it is (for the menu and the page header only)
    pub principal: Principal,
    pub organ_name: String,
    /// the token's expiry: the session signs out then
    pub ends: DateTime<Utc>,
}

/// A message for the next page: what an action did, or why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    Done(String),
    Refused(String),
}

/// What a clerk's registration answered: shown once, on the receipt page. The query code is
/// the petitioner's and is not kept anywhere else in the console.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub case_number: String,
    pub query_code: String,
    pub received_by: String,
    pub registered_at: DateTime<Utc>,
    pub title: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    pub user: Option<User>,
    pub flash: Option<Flash>,
    pub receipt: Option<Receipt>,
    /// the query code a petitioner typed on the petitioner's page
    pub query_code: Option<String>,
    seen: DateTime<Utc>,
}

impl Session {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            csrf: random(),
            user: None,
            flash: None,
            receipt: None,
            query_code: None,
            seen: now,
        }
    }

    /// The form token matches this session's. Both sides are hashed first, so that the time
    /// the comparison takes says nothing about how much of a guess was right.
    pub fn csrf_matches(&self, given: &str) -> bool {
        Sha256::digest(given.as_bytes()) == Sha256::digest(self.csrf.as_bytes())
    }
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// The session under `id`, touched, or a new one (with its new id) when there is none.
    pub fn open(&self, id: Option<&str>, now: DateTime<Utc>) -> (String, Session, bool) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = id
            && let Some(s) = map.get_mut(id)
        {
            let expired = now - s.seen > IDLE || s.user.as_ref().is_some_and(|u| u.ends <= now);
            if !expired {
                s.seen = now;
                return (id.to_owned(), s.clone(), false);
            }
            map.remove(id);
        }
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| now - s.seen <= IDLE);
            // a visitor who never signed in goes before anyone signed in
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| (s.user.is_some(), s.seen))
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let id = random();
        let s = Session::new(now);
        map.insert(id.clone(), s.clone());
        (id, s, true)
    }

    /// Changes a session in place; nothing when it is gone.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Session)) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get_mut(id) {
            change(s);
        }
    }

    /// The one-time message, taken.
    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.get_mut(id).and_then(|s| s.flash.take())
    }

    /// Signs `user` in on a session with a new id and a new form token (the old id, which a
    /// page could have planted, is worth nothing afterwards): the new id.
    pub fn sign_in(&self, old: &str, user: User, now: DateTime<Utc>) -> String {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(old);
        let id = random();
        let mut s = Session::new(now);
        s.user = Some(user);
        map.insert(id.clone(), s);
        id
    }

    pub fn sign_out(&self, id: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petition_auth::Role;

    fn user(ends: DateTime<Utc>) -> User {
        User {
            token: "t".into(),
            principal: Principal {
                subject: "clerk.wang".into(),
                org: "pingcheng.bureau".into(),
                role: Role::Clerk,
                scopes: vec![],
            },
            organ_name: "平城区信访局".into(),
            ends,
        }
    }

    #[test]
    fn a_session_is_found_again_until_it_idles_out() {
        let s = Sessions::default();
        let t0 = Utc::now();
        let (id, _, new) = s.open(None, t0);
        assert!(new);
        let (again, _, new) = s.open(Some(&id), t0 + Duration::hours(7));
        assert_eq!((again.as_str(), new), (id.as_str(), false));
        let (later, _, new) = s.open(Some(&id), t0 + Duration::hours(16));
        assert!(new);
        assert_ne!(later, id);
    }

    #[test]
    fn signing_in_replaces_the_id_and_the_form_token() {
        let s = Sessions::default();
        let t0 = Utc::now();
        let (id, before, _) = s.open(None, t0);
        let signed = s.sign_in(&id, user(t0 + Duration::hours(1)), t0);
        assert_ne!(signed, id);
        let (_, gone, new) = s.open(Some(&id), t0);
        assert!(new && gone.user.is_none());
        let (_, after, _) = s.open(Some(&signed), t0);
        assert!(after.user.is_some());
        assert!(!after.csrf_matches(&before.csrf));
        assert!(after.csrf_matches(&after.csrf.clone()));
    }

    #[test]
    fn a_flood_of_visitors_does_not_sign_out_the_people_at_work() {
        let s = Sessions::default();
        let t0 = Utc::now();
        let (id, _, _) = s.open(None, t0);
        let worker = s.sign_in(&id, user(t0 + Duration::hours(8)), t0);
        for i in 0..MAX_SESSIONS + 10 {
            s.open(None, t0 + Duration::milliseconds(i as i64 + 1));
        }
        let (_, still, new) = s.open(Some(&worker), t0 + Duration::seconds(30));
        assert!(!new && still.user.is_some());
        assert!(s.inner.lock().unwrap().len() <= MAX_SESSIONS);
    }

    #[test]
    fn a_session_ends_with_its_token() {
        let s = Sessions::default();
        let t0 = Utc::now();
        let (id, _, _) = s.open(None, t0);
        let signed = s.sign_in(&id, user(t0 + Duration::minutes(30)), t0);
        let (_, still, _) = s.open(Some(&signed), t0 + Duration::minutes(29));
        assert!(still.user.is_some());
        let (_, after, new) = s.open(Some(&signed), t0 + Duration::minutes(31));
        assert!(new && after.user.is_none());
    }
}
