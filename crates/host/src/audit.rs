//! The audit log of every service a host runs: their chainers, and `AuditService` on the
//! host's port, reading each service's chain in its own schema.

use petition_audit::{Filter, hex};
use petition_auth::{AccessPolicy, principal};
use petition_proto::v1 as pb;
use petition_storage::Db;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// How often pending entries are linked, and the head anchored.
pub(crate) const CHAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
pub(crate) const ANCHOR_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Clone)]
pub(crate) struct AuditGrpc {
    /// (service, its database), in the order the host installed them
    pub chains: Arc<Vec<(&'static str, Db)>>,
    pub policy: Arc<AccessPolicy>,
}

impl AuditGrpc {
    fn chains(&self, service: &str) -> Result<Vec<&(&'static str, Db)>, Status> {
        let wanted: Vec<_> = self
            .chains
            .iter()
            .filter(|(name, _)| service.is_empty() || *name == service)
            .collect();
        if wanted.is_empty() {
            let here: Vec<&str> = self.chains.iter().map(|(n, _)| *n).collect();
            return Err(Status::not_found(format!(
                "service: {:?} keeps no audit log here; this port serves {}",
                petition_domain::validation::shown(service),
                here.join(", ")
            )));
        }
        Ok(wanted)
    }
}

/// Bytes from lower- or upper-case hex; `None` for anything else.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn failed(e: sqlx::Error) -> Status {
    tracing::error!(error = %e, "audit log read failed");
    Status::unavailable("the audit log cannot be read now; try again")
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditGrpc {
    async fn verify_audit(
        &self,
        request: Request<pb::VerifyAuditRequest>,
    ) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        let p = principal(&request)?;
        self.policy
            .may_maintain_deployment(p)
            .map_err(petition_grpc::denied)?;
        let mut expected: Vec<(&str, i64, Vec<u8>)> = Vec::new();
        for (i, a) in request.get_ref().expect.iter().enumerate() {
            let hash = unhex(a.hash.trim()).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "expect[{i}].hash: 64 hex digits, as the \"audit chain anchored\" log line gives it"
                ))
            })?;
            expected.push((a.service.trim(), a.seq, hash));
        }
        let checked = self.chains(request.get_ref().service.trim())?;
        if let Some((i, (service, _, _))) = expected
            .iter()
            .enumerate()
            .find(|(_, (s, _, _))| !checked.iter().any(|(name, _)| name == s))
        {
            return Err(Status::invalid_argument(format!(
                "expect[{i}].service: {:?} is not among the chains checked here ({})",
                petition_domain::validation::shown(service),
                checked
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut chains = Vec::new();
        for (service, db) in checked {
            let mine: Vec<(i64, Vec<u8>)> = expected
                .iter()
                .filter(|(s, _, _)| s == service)
                .map(|(_, seq, h)| (*seq, h.clone()))
                .collect();
            let v = petition_audit::verify_against(db, &mine)
                .await
                .map_err(failed)?;
            let (head_seq, head_hash) = v.head.clone().unwrap_or_default();
            chains.push(pb::ChainReport {
                service: (*service).to_owned(),
                entries: v.entries,
                pending: v.pending,
                head_seq,
                head_hash: hex(&head_hash),
                anchors: v.anchors,
                intact: v.broken.is_none(),
                broken_at: v.broken.as_ref().map(|b| b.seq).unwrap_or_default(),
                broken_reason: v.broken.map(|b| b.reason).unwrap_or_default(),
            });
        }
        tracing::info!(target: "audit", subject = %p.subject, "audit chains verified");
        Ok(Response::new(pb::VerifyAuditResponse { chains }))
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        let p = principal(&request)?;
        self.policy
            .may_maintain_deployment(p)
            .map_err(petition_grpc::denied)?;
        let r = request.get_ref();
        if r.service.trim().is_empty() {
            return Err(Status::invalid_argument(
                "service: required (intake, routing, supervision or analytics)",
            ));
        }
        let filter = match (r.case_id.trim(), r.actor.trim()) {
            (c, "") if !c.is_empty() => Filter::Case(c.to_owned()),
            ("", a) if !a.is_empty() => Filter::Actor(a.to_owned()),
            _ => {
                return Err(Status::invalid_argument(
                    "case_id, actor: give exactly one of them",
                ));
            }
        };
        if r.page_size > 500 {
            return Err(Status::invalid_argument("page_size: at most 500"));
        }
        let limit = if r.page_size == 0 { 100 } else { r.page_size };
        let (_, db) = self.chains(r.service.trim())?[0];
        let links = petition_audit::list(db, &filter, r.after_seq, limit.into())
            .await
            .map_err(failed)?;
        Ok(Response::new(pb::ListAuditResponse {
            entries: links
                .into_iter()
                .map(|l| pb::AuditEntry {
                    seq: l.seq,
                    at: Some(prost_types::Timestamp {
                        seconds: l.entry.at.timestamp(),
                        nanos: l.entry.at.timestamp_subsec_nanos() as i32,
                    }),
                    actor: l.entry.actor,
                    organ: l.entry.organ,
                    action: l.entry.action,
                    case_id: l.entry.case_id,
                    detail: l.entry.detail,
                    hash: hex(&l.hash),
                })
                .collect(),
        }))
    }
}
