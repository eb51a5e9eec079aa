//! `petition token issue`: a bearer token the services accept, signed with the deployment's
//! key (or the public development key of a `--dev` suite, said so).

use crate::client::Failure;
use petition_auth::{Principal, Role, TokenKeys};
use petition_grpc::reference::Reference;
use std::path::PathBuf;

/// Who a token is for, and what signs it.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Roles:
  clerk       registers petitions at a bureau's window, and acts for a petitioner who comes
              with a query code (rating, review requests)
  handler     works the cases sent to a department: inbox, accept, object, reply, extend
  supervisor  a bureau's supervision: due lists, notices, urging, extension decisions
  leader      an organ's leader: takes charge of cases (包案), decides like a supervisor
  analyst     figures without personal data
  admin       everything within the organ and below, reference data
  upstream    a system (a city platform, the 12345 hotline, a peer deployment) that registers
              petitions; --subject is its source_system, the name its registrations carry

Examples:
  # a clerk of the district bureau, against a suite started with --dev
  export PETITION_TOKEN=$(petition token issue --dev --org pingcheng.bureau --role clerk)
  # the city's 12345 hotline, signed with the deployment's key
  PETITION_TOKEN_KEY=... petition token issue --org datong.bureau --role upstream --subject datong.12345")]
pub struct Issue {
    /// organ id from the organisation tree (orgs.toml), e.g. pingcheng.bureau
    #[arg(long)]
    pub org: String,
    /// clerk, handler, supervisor, leader, analyst, admin or upstream (see below)
    #[arg(long)]
    pub role: Role,
    /// the person or system; default "<role>@<org>"
    #[arg(long)]
    pub subject: Option<String>,
    /// how long the token is valid
    #[arg(long, default_value_t = 12)]
    pub ttl_hours: i64,
    /// the longest lifetime the services accept (as they are configured)
    #[arg(long, env = "PETITION_TOKEN_MAX_TTL_HOURS", default_value_t = 168)]
    pub max_ttl_hours: i64,
    /// the deployment's token keys as the services take them (one secret of at least 32 bytes,
    /// or `ID:SECRET …` newest first): the first signs, and the token names it
    #[arg(long, env = "PETITION_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<String>,
    /// the deployment's name, when its services check the audience (PETITION_TOKEN_AUDIENCE)
    #[arg(long, env = "PETITION_TOKEN_AUDIENCE")]
    pub audience: Option<String>,
    /// sign with the public development key, as a suite started with --dev checks
    #[arg(long)]
    pub dev: bool,
    /// where orgs.toml is, when the services read theirs from a directory
    #[arg(long, env = "PETITION_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
}

pub fn issue(a: &Issue) -> Result<String, Failure> {
    if a.ttl_hours < 1 || a.ttl_hours > a.max_ttl_hours {
        return Err(Failure::usage(format!(
            "--ttl-hours: 1 to {} hours (PETITION_TOKEN_MAX_TTL_HOURS); the services refuse longer-lived tokens",
            a.max_ttl_hours
        )));
    }
    // A token for an organ the services do not know would only be refused at its first call.
    let reference = Reference::load(a.config_dir.as_deref())
        .map_err(|e| Failure::usage(format!("--config-dir: {e}")))?;
    if reference.tree.get(&a.org).is_none() {
        return Err(Failure::usage(format!(
            "--org: {} is not in the organisation tree (orgs.toml)",
            petition_domain::validation::shown(&a.org)
        )));
    }
    // The same rule as serving: the public key only when asked for, so that a token printed
    // for production is never one production refuses.
    let keys = match (&a.token_key, a.dev) {
        (Some(k), _) => TokenKeys::parse(k)
            .map_err(|e| Failure::usage(format!("--token-key (PETITION_TOKEN_KEY): {e}")))?,
        (None, true) => {
            eprintln!(
                "petition: signed with the public development key: only a suite started with --dev accepts it"
            );
            TokenKeys::dev()
        }
        (None, false) => {
            return Err(Failure::usage(
                "no signing key: set PETITION_TOKEN_KEY to the key the services use, or pass --dev for a suite started with --dev",
            ));
        }
    };
    let keys = keys.with_audience(a.audience.clone().filter(|a| !a.is_empty()));
    let principal = Principal {
        subject: a
            .subject
            .clone()
            .unwrap_or_else(|| format!("{}@{}", a.role, a.org)),
        org: a.org.clone(),
        role: a.role,
        scopes: Vec::new(),
    };
    Ok(keys.issue(&principal, chrono::Duration::hours(a.ttl_hours)))
}
