//! Who is calling: a bearer token names an organ, a role and scopes. The interceptor rejects a
//! call without a valid token (UNAUTHENTICATED) and hands the principal to the handler.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use tonic::{Request, Status};

const ISSUER: &str = "petition-pipeline";

/// Used when a dev run configures no key. Anyone can mint tokens with it: never in production.
pub const DEV_TOKEN_KEY: &[u8] = b"petition-pipeline-dev-token-key-do-not-use-in-production";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// registers petitions at a bureau's window
    Clerk,
    /// works the cases assigned to a department
    Handler,
    Supervisor,
    Leader,
    /// reads aggregates without personal data
    Analyst,
    Admin,
    /// a city platform, 12345 hotline or peer deployment
    Upstream,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Clerk,
        Role::Handler,
        Role::Supervisor,
        Role::Leader,
        Role::Analyst,
        Role::Admin,
        Role::Upstream,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::Handler => "handler",
            Role::Supervisor => "supervisor",
            Role::Leader => "leader",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Upstream => "upstream",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}; one of clerk, handler, supervisor, leader, analyst, admin, upstream"
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller of a request, as its token names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// the person or system, e.g. `clerk.wang` or `datong.12345`
    pub subject: String,
    /// organ id from the organisation tree
    pub org: String,
    pub role: Role,
    pub scopes: Vec<String>,
}

impl Principal {
    /// Roles whose duty needs petitioners' identity and contact data (PIPL Art. 34: only as far
    /// as the duty needs).
    pub fn may_see_personal_data(&self) -> bool {
        matches!(
            self.role,
            Role::Clerk | Role::Supervisor | Role::Leader | Role::Admin
        )
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    org: String,
    role: Role,
    #[serde(default)]
    scopes: Vec<String>,
    iss: String,
    iat: i64,
    exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send 'authorization: Bearer <token>'")]
    Missing,
    #[error("the authorization header is not 'Bearer <token>'")]
    Malformed,
    #[error("token rejected: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token key must be at least 32 bytes")]
    WeakKey,
}

/// Signs and verifies HS256 tokens with one shared key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    pub fn hs256(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.len() < 32 {
            return Err(AuthError::WeakKey);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 30;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    pub fn dev() -> Self {
        Self::hs256(DEV_TOKEN_KEY).expect("the dev key is long enough")
    }

    pub fn issue(&self, principal: &Principal, ttl: chrono::Duration) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: principal.subject.clone(),
            org: principal.org.clone(),
            role: principal.role,
            scopes: principal.scopes.clone(),
            iss: ISSUER.into(),
            iat: now,
            exp: now + ttl.num_seconds(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with a valid key cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?;
        let c = data.claims;
        Ok(Principal {
            subject: c.sub,
            org: c.org,
            role: c.role,
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

/// Rejects calls without a valid token and stores the principal in the request extensions.
#[derive(Clone, Debug)]
pub struct AuthInterceptor {
    keys: Arc<TokenKeys>,
}

impl AuthInterceptor {
    pub fn new(keys: Arc<TokenKeys>) -> Self {
        Self { keys }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match self.keys.authenticate(request.metadata()) {
            Ok(p) => {
                request.extensions_mut().insert(p);
                Ok(request)
            }
            Err(e) => Err(Status::unauthenticated(e.to_string())),
        }
    }
}

/// The principal the interceptor attached; a handler reached without one is a wiring bug, and
/// the caller still gets UNAUTHENTICATED rather than a panic.
pub fn principal<T>(request: &Request<T>) -> Result<&Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("no principal on this call"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn clerk() -> Principal {
        Principal {
            subject: "clerk.wang".into(),
            org: "pingcheng.bureau".into(),
            role: Role::Clerk,
            scopes: vec!["intake:write".into()],
        }
    }

    #[test]
    fn a_token_round_trips() {
        let keys = TokenKeys::dev();
        let t = keys.issue(&clerk(), chrono::Duration::hours(1));
        assert_eq!(keys.verify(&t).unwrap(), clerk());
    }

    #[test]
    fn another_key_expired_or_garbage_is_rejected() {
        let keys = TokenKeys::dev();
        let other = TokenKeys::hs256(&[7u8; 32]).unwrap();
        let t = other.issue(&clerk(), chrono::Duration::hours(1));
        assert!(keys.verify(&t).is_err());
        let old = keys.issue(&clerk(), chrono::Duration::hours(-1));
        assert!(keys.verify(&old).is_err());
        assert!(keys.verify("not.a.token").is_err());
        assert!(matches!(
            TokenKeys::hs256(b"short"),
            Err(AuthError::WeakKey)
        ));
    }

    #[test]
    fn the_interceptor_demands_a_bearer_token() {
        let keys = Arc::new(TokenKeys::dev());
        let mut i = AuthInterceptor::new(keys.clone());
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
    }

    #[test]
    fn personal_data_roles() {
        let mut p = clerk();
        assert!(p.may_see_personal_data());
        p.role = Role::Analyst;
        assert!(!p.may_see_personal_data());
        p.role = Role::Handler;
        assert!(!p.may_see_personal_data());
    }
}
