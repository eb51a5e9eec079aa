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
/// How long the petitioner's page keeps a query code typed on it.
const QUERY_KEPT: Duration = Duration::minutes(15);
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

/// What a clerk's last registration answered, for the receipt page (which the clerk may print
/// or reload) until the next one. The query code is the petitioner's: it is kept nowhere else
/// in the console, and only in the session of the clerk who registered the case.
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
    /// the query code a petitioner typed on the petitioner's page, and when: see `query_code`
    query: Option<(String, DateTime<Utc>)>,
    /// the ids of the registration forms sent from here (see `Sessions::claim_form`)
    forms_sent: Vec<String>,
    seen: DateTime<Utc>,
}

impl Session {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            csrf: random(),
            user: None,
            flash: None,
            receipt: None,
            query: None,
            forms_sent: Vec::new(),
            seen: now,
        }
    }

    /// The query code typed here, while it is fresh: a petitioner at a shared terminal in a
    /// reception hall leaves, and the next visitor must not find their case open.
    pub fn query_code(&self, now: DateTime<Utc>) -> Option<&str> {
        self.query
            .as_ref()
            .filter(|(_, at)| now - *at <= QUERY_KEPT)
            .map(|(code, _)| code.as_str())
    }

    /// Keeps `code` as the petitioner's, or forgets it.
    pub fn set_query_code(&mut self, code: Option<String>, now: DateTime<Utc>) {
        self.query = code.map(|c| (c, now));
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

    /// Marks the registration form `form` as sent from this session: false when it was
    /// already, so that a double click or a resend registers one case. Forms without an id
    /// are not held to it.
    pub fn claim_form(&self, id: &str, form: &str) -> bool {
        if form.is_empty() {
            return true;
        }
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(id) {
            Some(s) if s.forms_sent.iter().any(|f| f == form) => false,
            Some(s) => {
                // the last few are enough to catch a double click or a reload
                if s.forms_sent.len() >= 16 {
                    s.forms_sent.remove(0);
                }
                s.forms_sent.push(form.to_owned());
                true
            }
            None => true,
        }
    }

    /// Lets the form be sent again: the service refused it, so nothing was registered.
    pub fn release_form(&self, id: &str, form: &str) {
        self.update(id, |s| s.forms_sent.retain(|f| f != form));
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
        assert!(!after.csrf_matches(""));
        assert!(!after.csrf_matches(&after.csrf[..after.csrf.len() - 1]));
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
    fn a_query_code_is_forgotten_after_a_quarter_of_an_hour() {
        let t0 = Utc::now();
        let mut s = Session::new(t0);
        s.set_query_code(Some("K7Q2-M9XD-4TPA".into()), t0);
        assert_eq!(
            s.query_code(t0 + Duration::minutes(15)),
            Some("K7Q2-M9XD-4TPA")
        );
        assert_eq!(s.query_code(t0 + Duration::minutes(16)), None);
        s.set_query_code(None, t0);
        assert_eq!(s.query_code(t0), None);
    }

    #[test]
    fn a_registration_form_is_sent_once_unless_it_was_refused() {
        let s = Sessions::default();
        let (id, _, _) = s.open(None, Utc::now());
        assert!(s.claim_form(&id, "form-1"));
        assert!(!s.claim_form(&id, "form-1"));
        assert!(s.claim_form(&id, "form-2"));
        s.release_form(&id, "form-2");
        assert!(s.claim_form(&id, "form-2"));
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
