//! Who is calling, and what they may see and do.
//!
//! A bearer token names an organ, a role and scopes; the interceptor rejects a call without a
//! valid token (UNAUTHENTICATED) and hands the principal to the handler. Every service then asks
//! the one [`AccessPolicy`] — role × organ scope × the case's holder × Art. 30 ¶3 — and never
//! decides access on its own.

pub mod apikey;
pub mod keyring;
pub mod limit;
pub mod policy;
pub mod token;

pub use limit::CallLimit;
pub use policy::{AccessPolicy, CaseFacts, CaseView, Denied, Duty, FigureScope, ListScope, Scope};
pub use token::{
    AuthError, AuthInterceptor, CertificatesRequired, ClientCertificate, DEV_TOKEN_KEY, TokenKeys,
    check_source_system, read_unverified,
};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use tonic::{Request, Status};

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

    /// Staff of an organ, who work its cases.
    pub fn is_staff(self) -> bool {
        matches!(
            self,
            Role::Clerk | Role::Handler | Role::Supervisor | Role::Leader
        )
    }

    /// Staff of a petition bureau's desk, who register, route and triage.
    pub fn is_bureau_desk(self) -> bool {
        matches!(self, Role::Clerk | Role::Supervisor | Role::Leader)
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
                    "unknown role {:?}; one of clerk, handler, supervisor, leader, analyst, admin, upstream",
                    s.chars().take(40).collect::<String>()
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

/// The principal the interceptor attached; a handler reached without one is a wiring bug, and
/// the caller still gets UNAUTHENTICATED rather than a panic.
pub fn principal<T>(request: &Request<T>) -> Result<&Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("no principal on this call"))
}
