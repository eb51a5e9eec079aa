//! Bearer tokens: HS256, an issuer, a capped lifetime, and an organ the tree knows. Errors say
//! what is wrong with the token in words, never the JWT library's internals.

use crate::keyring::{self, DEFAULT_KEY_ID, KeyRingError, NamedKey};
use crate::{Principal, Role};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use petition_domain::OrgTree;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use tonic::{Request, Status};

const ISSUER: &str = "petition-pipeline";

/// Used when a dev run configures no key. Anyone can mint tokens with it: never in production.
pub const DEV_TOKEN_KEY: &[u8] = b"petition-pipeline-dev-token-key-do-not-use-in-production";

/// The longest lifetime a token may claim unless configured otherwise: a week covers an
/// upstream system's deployment cycle; staff tokens are issued for hours.
pub const DEFAULT_MAX_TTL: chrono::Duration = chrono::Duration::days(7);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    org: String,
    /// text, so that an unknown role gets our message rather than serde's
    role: String,
    #[serde(default)]
    scopes: Vec<String>,
    iss: String,
    /// the deployment the token is for, when deployments name themselves
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    /// optional here so that its absence gets our message, not serde's
    iat: Option<i64>,
    exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send 'authorization: Bearer <token>'")]
    Missing,
    #[error("the authorization header is not 'Bearer <token>'")]
    Malformed,
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("token key {0:?} must be at least 32 bytes")]
    WeakKey(String),
    #[error("token keys: {0}")]
    Ring(#[from] KeyRingError),
}

/// Signs with the first key of a ring and verifies with any of them, each token naming its
/// key (`kid`), so that tokens issued before a rotation keep working until they expire.
#[derive(Clone)]
pub struct TokenKeys {
    signing_id: String,
    signing_secret: Vec<u8>,
    encoding: EncodingKey,
    decoding: Vec<(String, DecodingKey)>,
    validation: Validation,
    max_ttl: chrono::Duration,
    audience: Option<String>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.decoding.iter().map(|(id, _)| id.as_str()).collect();
        write!(
            f,
            "TokenKeys(signing {:?}, verifying {ids:?})",
            self.signing_id
        )
    }
}

impl TokenKeys {
    /// One key, the ring's `default`.
    pub fn hs256(secret: &[u8]) -> Result<Self, AuthError> {
        Self::from_ring(vec![NamedKey {
            id: DEFAULT_KEY_ID.into(),
            secret: secret.to_vec(),
        }])
    }

    /// A ring as configured (`ID:SECRET …`, newest first; see [`crate::keyring`]).
    pub fn parse(spec: &str) -> Result<Self, AuthError> {
        Self::from_ring(keyring::parse(spec, |s| Ok(s.as_bytes().to_vec()))?)
    }

    /// The first key signs; every key verifies.
    pub fn from_ring(keys: Vec<NamedKey>) -> Result<Self, AuthError> {
        if let Some(weak) = keys.iter().find(|k| k.secret.len() < 32) {
            return Err(AuthError::WeakKey(weak.id.clone()));
        }
        let first = keys.first().ok_or(KeyRingError::Empty)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        validation.leeway = 30;
        // an audience is checked only where the deployment names itself (with_audience)
        validation.validate_aud = false;
        Ok(Self {
            signing_id: first.id.clone(),
            signing_secret: first.secret.clone(),
            encoding: EncodingKey::from_secret(&first.secret),
            decoding: keys
                .iter()
                .map(|k| (k.id.clone(), DecodingKey::from_secret(&k.secret)))
                .collect(),
            validation,
            max_ttl: DEFAULT_MAX_TTL,
            audience: None,
        })
    }

    pub fn dev() -> Self {
        Self::hs256(DEV_TOKEN_KEY).expect("the dev key is long enough")
    }

    /// Tokens that claim a longer life than `max` are refused.
    pub fn with_max_ttl(mut self, max: chrono::Duration) -> Self {
        self.max_ttl = max;
        self
    }

    /// Tokens must name `audience` (this deployment) as their `aud`, and are issued so.
    pub fn with_audience(mut self, audience: Option<String>) -> Self {
        match &audience {
            Some(a) => {
                self.validation.validate_aud = true;
                self.validation.set_audience(&[a]);
                self.validation
                    .set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
            }
            None => {
                self.validation.validate_aud = false;
                self.validation.aud = None;
                self.validation
                    .set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
            }
        }
        self.audience = audience;
        self
    }

    pub fn max_ttl(&self) -> chrono::Duration {
        self.max_ttl
    }

    /// The id of the key that signs.
    pub fn signing_id(&self) -> &str {
        &self.signing_id
    }

    /// The signing key's secret, from which this deployment derives its other MACs (page
    /// tokens).
    pub fn signing_secret(&self) -> &[u8] {
        &self.signing_secret
    }

    pub fn issue(&self, principal: &Principal, ttl: chrono::Duration) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: principal.subject.clone(),
            org: principal.org.clone(),
            role: principal.role.as_str().to_owned(),
            scopes: principal.scopes.clone(),
            iss: ISSUER.into(),
            aud: self.audience.clone(),
            iat: Some(now),
            exp: now + ttl.num_seconds(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("HS256 signing with a valid key cannot fail")
    }

    /// Checks signature, issuer, expiry and lifetime, and reads the principal.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        // The header first: an algorithm the library does not even name ("none") fails to
        // parse as JSON, which would otherwise be reported as wrong claims.
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            AuthError::Invalid(match e.kind() {
                ErrorKind::Json(_) => "its header does not name HS256 as its algorithm".into(),
                _ => "it is not a well-formed JWT".into(),
            })
        })?;
        // A token without a key id was issued before key ids: by the `default` key.
        let kid = header.kid.as_deref().unwrap_or(DEFAULT_KEY_ID);
        let data = match self.decoding.iter().find(|(id, _)| id == kid) {
            Some((_, key)) => jsonwebtoken::decode::<Claims>(token, key, &self.validation)
                .map_err(|e| AuthError::Invalid(explain(e.kind())))?,
            // An id the ring does not hold: the same secret may carry another id now (a bare
            // key is `default`, and rotating labels it). The signature decides.
            None => self
                .decoding
                .iter()
                .find_map(|(_, key)| {
                    jsonwebtoken::decode::<Claims>(token, key, &self.validation).ok()
                })
                .ok_or_else(|| {
                    AuthError::Invalid(format!(
                        "it is signed with key {:?}, which this deployment does not hold (a retired key, or another deployment's); ask for a new token",
                        kid.chars().take(40).collect::<String>()
                    ))
                })?,
        };
        let c = data.claims;
        let now = chrono::Utc::now().timestamp();
        let iat = c
            .iat
            .ok_or_else(|| AuthError::Invalid("it lacks the \"iat\" claim".into()))?;
        if iat > now + self.validation.leeway as i64 {
            return Err(AuthError::Invalid(
                "it was issued in the future (iat); check the issuer's clock".into(),
            ));
        }
        if c.exp - iat > self.max_ttl.num_seconds() {
            return Err(AuthError::Invalid(format!(
                "its lifetime (exp - iat) exceeds the maximum of {} hours; issue a shorter-lived token",
                self.max_ttl.num_hours()
            )));
        }
        let role = c.role.parse::<Role>().map_err(AuthError::Invalid)?;
        Ok(Principal {
            subject: c.sub,
            org: c.org,
            role,
            scopes: c.scopes,
        })
    }

    /// Reads `authorization: Bearer …` from request metadata.
    pub fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Principal, AuthError> {
        let header = metadata.get("authorization").ok_or(AuthError::Missing)?;
        let value = header.to_str().map_err(|_| AuthError::Malformed)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::Malformed)?;
        self.verify(token.trim())
    }
}

/// Who a token says it is, and when it ends, without checking its signature: for a web
/// console that shows the signed-in person their name and menu and forgets the token at its
/// expiry. It grants nothing: the services verify the token on every call.
pub fn read_unverified(
    token: &str,
) -> Result<(Principal, chrono::DateTime<chrono::Utc>), AuthError> {
    let c = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token.trim())
        .map_err(|e| AuthError::Invalid(explain(e.kind())))?;
    let role = c.role.parse::<Role>().map_err(AuthError::Invalid)?;
    let ends = chrono::DateTime::from_timestamp(c.exp, 0)
        .ok_or_else(|| AuthError::Invalid("its \"exp\" claim is out of range".into()))?;
    Ok((
        Principal {
            subject: c.sub,
            org: c.org,
            role,
            scopes: c.scopes,
        },
        ends,
    ))
}

fn explain(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "it has expired; ask for a new token".into(),
        ErrorKind::InvalidSignature => {
            "its signature does not match this deployment's token key".into()
        }
        ErrorKind::InvalidIssuer => format!("it was not issued by {ISSUER}"),
        ErrorKind::InvalidAudience => {
            "it is meant for another deployment (its \"aud\" claim names another)".into()
        }
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "it is not signed with HS256".into()
        }
        ErrorKind::MissingRequiredClaim(c) => format!("it lacks the {c:?} claim"),
        ErrorKind::InvalidClaimFormat(c) => format!("its {c:?} claim has the wrong type"),
        ErrorKind::Json(_) => {
            "its claims are not sub, org, role, scopes, iss, iat and exp as this service issues them"
                .into()
        }
        _ => "it is not a well-formed JWT".into(),
    }
}

/// The names a caller proved with a TLS client certificate its deployment's client CA signed
/// (mutual TLS): the subject's common name and its DNS and URI alternative names. The server
/// puts it in a call's extensions; it is absent on a connection without a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub names: Vec<String>,
}

/// Put in a call's extensions where mutual TLS is on: registering under a `source_system` then
/// needs a client certificate naming it, whatever the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificatesRequired;

/// Whether a call may register under `source_system`: always where mutual TLS is off or no
/// source system is claimed; otherwise only over a connection whose client certificate names
/// it, so that no token alone (an admin's neither) registers as the city platform.
pub fn check_source_system(
    extensions: &tonic::Extensions,
    source_system: &str,
) -> Result<(), Status> {
    let source_system = source_system.trim();
    if source_system.is_empty() || extensions.get::<CertificatesRequired>().is_none() {
        return Ok(());
    }
    match extensions.get::<ClientCertificate>() {
        Some(c) if c.names.iter().any(|n| n == source_system) => Ok(()),
        _ => Err(Status::unauthenticated(format!(
            "source_system {:?}: registering under it needs mutual TLS with the client certificate issued to it",
            source_system.chars().take(60).collect::<String>()
        ))),
    }
}

/// Rejects calls without a valid token, or whose organ the organisation tree does not know,
/// and stores the principal in the request extensions. Where mutual TLS is on, an upstream
/// system's token counts only over a connection whose client certificate names that system: a
/// token alone, copied off a clerk's machine, registers nothing as the city platform.
#[derive(Clone, Debug)]
pub struct AuthInterceptor {
    keys: Arc<TokenKeys>,
    api_keys: Arc<crate::apikey::ApiKeys>,
    tree: Arc<OrgTree>,
    upstream_needs_certificate: bool,
    limit: Option<Arc<crate::CallLimit>>,
    /// a cost benchmark's baseline: every call runs as this principal, unchecked
    unchecked: Option<Principal>,
}

impl AuthInterceptor {
    pub fn new(keys: Arc<TokenKeys>, tree: Arc<OrgTree>) -> Self {
        Self {
            keys,
            api_keys: Arc::default(),
            tree,
            upstream_needs_certificate: false,
            limit: None,
            unchecked: None,
        }
    }

    /// Lets every call through as `p` without looking at its credentials: the baseline of the
    /// security cost benchmark, which measures what checking them costs. A host builds it only
    /// on a development run with [`HostConfig`]'s benchmark field set, which no flag reaches.
    ///
    /// [`HostConfig`]: ../../petition_host/struct.HostConfig.html
    pub fn unchecked_for_benchmarks(mut self, p: Principal) -> Self {
        self.unchecked = Some(p);
        self
    }

    /// Takes `authorization: ApiKey …` for the upstream systems in `keys` too.
    pub fn with_api_keys(mut self, keys: Arc<crate::apikey::ApiKeys>) -> Self {
        self.api_keys = keys;
        self
    }

    fn principal(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Principal, AuthError> {
        let key = metadata
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|v| v.strip_prefix("ApiKey "));
        match key {
            Some(k) => self.api_keys.principal(k).map_err(AuthError::Invalid),
            None => self.keys.authenticate(metadata),
        }
    }

    /// Counts each principal's calls against `limit` (one for every service of a process).
    pub fn with_limit(mut self, limit: Option<Arc<crate::CallLimit>>) -> Self {
        self.limit = limit;
        self
    }

    /// Upstream systems must present a client certificate naming their `source_system`.
    pub fn with_upstream_certificates(mut self, required: bool) -> Self {
        self.upstream_needs_certificate = required;
        self
    }

    fn check_certificate(&self, p: &Principal, request: &Request<()>) -> Result<(), Status> {
        if !self.upstream_needs_certificate || p.role != Role::Upstream {
            return Ok(());
        }
        let shown = |s: &str| s.chars().take(60).collect::<String>();
        match request.extensions().get::<ClientCertificate>() {
            None => Err(Status::unauthenticated(format!(
                "an upstream system's token needs mutual TLS here: connect with the client certificate issued to {:?}",
                shown(&p.subject)
            ))),
            Some(c) if !c.names.iter().any(|n| n == &p.subject) => {
                Err(Status::unauthenticated(format!(
                    "the client certificate names {:?}, not {:?}, the system the token is for",
                    c.names.iter().map(|n| shown(n)).collect::<Vec<_>>(),
                    shown(&p.subject)
                )))
            }
            Some(_) => Ok(()),
        }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(p) = &self.unchecked {
            request.extensions_mut().insert(p.clone());
            return Ok(request);
        }
        match self.principal(request.metadata()) {
            Ok(p) if self.tree.get(&p.org).is_none() => Err(Status::unauthenticated(format!(
                "token rejected: its organ {:?} is not in this deployment's organisation tree",
                p.org.chars().take(60).collect::<String>()
            ))),
            Ok(p) => {
                self.check_certificate(&p, &request)?;
                if self.upstream_needs_certificate {
                    request.extensions_mut().insert(CertificatesRequired);
                }
                if let Some(limit) = &self.limit {
                    limit.check(&p)?;
                }
                request.extensions_mut().insert(p);
                Ok(request)
            }
            Err(e) => Err(Status::unauthenticated(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal;
    use tonic::service::Interceptor;

    fn clerk() -> Principal {
        Principal {
            subject: "clerk.wang".into(),
            org: "pingcheng.bureau".into(),
            role: Role::Clerk,
            scopes: vec!["intake:write".into()],
        }
    }

    fn tree() -> Arc<OrgTree> {
        Arc::new(OrgTree::from_toml(include_str!("../../../deploy/config/orgs.toml")).unwrap())
    }

    fn sign(claims: &serde_json::Value, key: &[u8]) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    }

    #[test]
    fn a_token_round_trips() {
        let keys = TokenKeys::dev();
        let t = keys.issue(&clerk(), chrono::Duration::hours(1));
        assert_eq!(keys.verify(&t).unwrap(), clerk());
    }

    #[test]
    fn another_key_expired_or_garbage_is_rejected_in_words() {
        let keys = TokenKeys::dev();
        let other = TokenKeys::hs256(&[7u8; 32]).unwrap();
        let t = other.issue(&clerk(), chrono::Duration::hours(1));
        let err = keys.verify(&t).unwrap_err().to_string();
        assert!(err.contains("signature does not match"), "{err}");
        let old = keys.issue(&clerk(), chrono::Duration::hours(-1));
        assert!(
            keys.verify(&old)
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        let err = keys.verify("not.a.token").unwrap_err().to_string();
        assert!(err.contains("not a well-formed JWT"), "{err}");
        // An unsigned token ("alg": "none") with claims that would otherwise pass.
        // (the header is base64url of {"alg":"none","typ":"JWT"})
        let claims = keys.issue(&clerk(), chrono::Duration::hours(1));
        let unsigned = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            claims.split('.').nth(1).unwrap()
        );
        let err = keys.verify(&unsigned).unwrap_err().to_string();
        assert!(err.contains("does not name HS256"), "{err}");
        assert!(matches!(
            TokenKeys::hs256(b"short"),
            Err(AuthError::WeakKey(id)) if id == "default"
        ));
    }

    const OLD: &str = "old-secret-old-secret-old-secret-old";
    const NEW: &str = "new-secret-new-secret-new-secret-new";

    #[test]
    fn a_rotated_ring_verifies_old_tokens_until_the_old_key_is_dropped() {
        let before = TokenKeys::parse(&format!("2026-05:{OLD}")).unwrap();
        let old_token = before.issue(&clerk(), chrono::Duration::hours(1));
        // A token issued before key ids: no kid, signed by the single (default) key.
        let legacy = sign(
            &serde_json::json!({
                "sub": "x", "org": "pingcheng.bureau", "role": "clerk", "iss": ISSUER,
                "iat": chrono::Utc::now().timestamp(), "exp": chrono::Utc::now().timestamp() + 60,
            }),
            OLD.as_bytes(),
        );
        assert!(
            TokenKeys::hs256(OLD.as_bytes())
                .unwrap()
                .verify(&legacy)
                .is_ok()
        );

        // The old secret labelled on rotation: tokens naming it `default` still verify.
        let bare_token = TokenKeys::hs256(OLD.as_bytes())
            .unwrap()
            .issue(&clerk(), chrono::Duration::hours(1));
        let relabelled = TokenKeys::parse(&format!("2026-11:{NEW} 2026-05:{OLD}")).unwrap();
        assert_eq!(relabelled.verify(&bare_token).unwrap(), clerk());
        let rotated =
            TokenKeys::parse(&format!("2026-11:{NEW} 2026-05:{OLD} default:{OLD}")).unwrap();
        assert_eq!(rotated.signing_id(), "2026-11");
        assert_eq!(rotated.verify(&old_token).unwrap(), clerk());
        assert!(rotated.verify(&legacy).is_ok());
        let new_token = rotated.issue(&clerk(), chrono::Duration::hours(1));
        assert_eq!(
            jsonwebtoken::decode_header(&new_token)
                .unwrap()
                .kid
                .as_deref(),
            Some("2026-11")
        );
        // the old deployment does not know the new key
        let err = before.verify(&new_token).unwrap_err().to_string();
        assert!(
            err.contains("key \"2026-11\"") && err.contains("does not hold"),
            "{err}"
        );

        let retired = TokenKeys::parse(&format!("2026-11:{NEW}")).unwrap();
        assert!(retired.verify(&new_token).is_ok());
        let err = retired.verify(&old_token).unwrap_err().to_string();
        assert!(
            err.contains("key \"2026-05\"") && err.contains("retired"),
            "{err}"
        );
        // a token naming a key it was not signed with fails on the signature
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("2026-11".into());
        let forged = jsonwebtoken::encode(
            &header,
            &serde_json::json!({
                "sub": "x", "org": "pingcheng.bureau", "role": "clerk", "iss": ISSUER,
                "iat": chrono::Utc::now().timestamp(), "exp": chrono::Utc::now().timestamp() + 60,
            }),
            &EncodingKey::from_secret(OLD.as_bytes()),
        )
        .unwrap();
        assert!(
            rotated
                .verify(&forged)
                .unwrap_err()
                .to_string()
                .contains("signature does not match")
        );
    }

    #[test]
    fn a_deployment_that_names_itself_takes_only_tokens_for_it() {
        let here = TokenKeys::dev().with_audience(Some("pingcheng".into()));
        let there = TokenKeys::dev().with_audience(Some("yungang".into()));
        let anywhere = TokenKeys::dev();
        let t = here.issue(&clerk(), chrono::Duration::hours(1));
        assert!(here.verify(&t).is_ok());
        let err = there.verify(&t).unwrap_err().to_string();
        assert!(err.contains("another deployment"), "{err}");
        let err = here
            .verify(&anywhere.issue(&clerk(), chrono::Duration::hours(1)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lacks the \"aud\" claim"), "{err}");
        // a deployment that names none ignores the claim
        assert!(anywhere.verify(&t).is_ok());
    }

    #[test]
    fn lifetimes_are_capped_and_unknown_roles_named() {
        let keys = TokenKeys::dev();
        let now = chrono::Utc::now().timestamp();
        let forever = serde_json::json!({
            "sub": "x", "org": "pingcheng.bureau", "role": "clerk", "iss": ISSUER,
            "iat": now, "exp": 99_999_999_999_i64,
        });
        let err = keys
            .verify(&sign(&forever, DEV_TOKEN_KEY))
            .unwrap_err()
            .to_string();
        assert!(err.contains("exceeds the maximum of 168 hours"), "{err}");
        let week = keys.issue(&clerk(), chrono::Duration::days(7));
        assert!(keys.verify(&week).is_ok(), "exactly the maximum is allowed");
        let over = keys.issue(
            &clerk(),
            chrono::Duration::days(7) + chrono::Duration::seconds(1),
        );
        assert!(keys.verify(&over).is_err());
        let none = serde_json::json!({
            "sub": "x", "org": "pingcheng.bureau", "role": "none", "iss": ISSUER,
            "iat": now, "exp": now + 60,
        });
        let err = keys
            .verify(&sign(&none, DEV_TOKEN_KEY))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown role \"none\"; one of clerk"), "{err}");
        assert!(!err.contains("variant"), "no serde internals: {err}");
        let no_iat = serde_json::json!({
            "sub": "x", "org": "pingcheng.bureau", "role": "clerk", "iss": ISSUER,
            "exp": now + 60,
        });
        let err = keys
            .verify(&sign(&no_iat, DEV_TOKEN_KEY))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lacks the \"iat\" claim"), "{err}");
    }

    #[test]
    fn the_interceptor_demands_a_bearer_token_for_a_known_organ() {
        let keys = Arc::new(TokenKeys::dev());
        let mut i = AuthInterceptor::new(keys.clone(), tree());
        let err = i.call(Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);

        let mut req = Request::new(());
        req.metadata_mut()
            .insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(
            i.call(req).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );

        let mut req = Request::new(());
        let t = keys.issue(&clerk(), chrono::Duration::hours(1));
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
        let ok = i.call(req).unwrap();
        assert_eq!(principal(&ok).unwrap(), &clerk());

        let mut stranger = clerk();
        stranger.org = "atlantis.bureau".into();
        let mut req = Request::new(());
        let t = keys.issue(&stranger, chrono::Duration::hours(1));
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
        let err = i.call(req).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(
            err.message()
                .contains("not in this deployment's organisation tree")
        );
    }

    #[test]
    fn where_mutual_tls_is_on_an_upstream_token_needs_its_certificate() {
        let keys = Arc::new(TokenKeys::dev());
        let hotline = Principal {
            subject: "datong.12345".into(),
            org: "pingcheng.bureau".into(),
            role: Role::Upstream,
            scopes: vec![],
        };
        let call = |i: &mut AuthInterceptor, p: &Principal, cert: Option<&str>| {
            let mut req = Request::new(());
            let t = keys.issue(p, chrono::Duration::hours(1));
            req.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
            if let Some(name) = cert {
                req.extensions_mut().insert(ClientCertificate {
                    names: vec![name.to_owned()],
                });
            }
            i.call(req).map(|_| ())
        };
        let mut plain = AuthInterceptor::new(keys.clone(), tree());
        assert!(
            call(&mut plain, &hotline, None).is_ok(),
            "without mutual TLS a token suffices"
        );
        let mut mutual =
            AuthInterceptor::new(keys.clone(), tree()).with_upstream_certificates(true);
        let err = call(&mut mutual, &hotline, None).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("mutual TLS"), "{err}");
        let err = call(&mut mutual, &hotline, Some("yungang.hotline")).unwrap_err();
        assert!(err.message().contains("yungang.hotline"), "{err}");
        assert!(call(&mut mutual, &hotline, Some("datong.12345")).is_ok());
        assert!(
            call(&mut mutual, &clerk(), None).is_ok(),
            "staff need no certificate"
        );
    }
}
