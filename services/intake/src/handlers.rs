//! `petition.v1.IntakeService`: registration, the staff's reads, and the petitioner's view.
//! Who may see what is the access policy's to say; this file only asks it.

use crate::convert::{View, flags_to_pb, shown_query_code, summary};
use crate::crypto::PersonalDataCipher;
use crate::store::{
    CaseBody, CaseFilter, CaseKey, CaseRecord, IntakeStore, NewCase, PageCursor, StoreError,
    StoredFlags, StoredPetitioner,
};
use chrono::{DateTime, Utc};
use pb::intake_service_server::IntakeService;
use petition_auth::{CaseFacts, CaseView, Principal, principal};
use petition_domain::intake::{
    Accused, IntakeContext, IntakePolicy, PetitionForm, PetitionerForm, ValidPetition, repeat_flags,
};
use petition_domain::validation::shown;
use petition_domain::{CaseNumber, CaseStatus, IdType, QueryCode, case_number};
use petition_grpc::convert::{
    channel_from_pb, diversion_to_pb, from_ts, id_type_from_pb, type_to_pb,
};
use petition_grpc::page::{binding, page_size};
use petition_grpc::{denied, invalid};
use petition_host::Shared;
use petition_proto::v1 as pb;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub struct IntakeGrpc {
    pub shared: Shared,
    pub store: IntakeStore,
    pub registrar: crate::registrar::Registrar,
    pub rules: IntakePolicy,
    pub cipher: PersonalDataCipher,
    pub exchanges: crate::federation::ExchangeStore,
    pub federation: std::sync::Arc<petition_federation::Federation>,
    /// told when a step enters a peer's feed, so WatchCases sends it at once
    pub feed: std::sync::Arc<tokio::sync::Notify>,
    /// told when an exchange is to be sent again now
    pub deliver: std::sync::Arc<tokio::sync::Notify>,
}

/// What the access policy needs to know of an intake case.
fn facts(case: &CaseRecord) -> CaseFacts<'_> {
    CaseFacts {
        received_by: &case.body.received_by,
        holder: case.holder.as_deref(),
        bureau: case.bureau.as_deref(),
        accused_organ: case.body.accused_organ.as_deref(),
        source_system: case.body.source_system.as_deref(),
        recused: &case.recused,
    }
}

pub(crate) fn internal(e: StoreError) -> Status {
    tracing::error!(error = %e, "intake store failed");
    match e {
        StoreError::Corrupt(_) => {
            Status::internal("stored data is inconsistent; an operator has been alerted in the log")
        }
        _ => Status::internal("storage failure; the request was not completed, retry later"),
    }
}

const NO_SUCH_CASE: &str = "no case with that id or case number";
const NO_SUCH_CODE: &str = "query_code: no case has this query code (查询码)";

pub(crate) fn form_from_pb(req: &pb::RegisterPetitionRequest) -> Result<PetitionForm, Status> {
    let received_at = match &req.received_at {
        Some(t) => Some(from_ts(t).ok_or_else(|| {
            petition_grpc::invalid_argument(&[(
                "received_at".into(),
                "not a valid timestamp".into(),
            )])
        })?),
        None => None,
    };
    Ok(PetitionForm {
        channel: channel_from_pb(req.channel),
        received_by: req.received_by.trim().to_owned(),
        received_at,
        petitioners: req
            .petitioners
            .iter()
            .map(|p| PetitionerForm {
                name: p.name.clone(),
                id_type: id_type_from_pb(p.id_type),
                id_number: p.id_number.clone(),
                phone: p.phone.clone(),
                address: p.address.clone(),
                is_main: p.is_main,
            })
            .collect(),
        category: req.category.trim().to_owned(),
        problem_location: req.problem_location.trim().to_owned(),
        title: req.title.clone(),
        content: req.content.clone(),
        people_present: req.people_present,
        people_affected: req.people_affected,
        representatives: req.representatives,
        accused: req.accused.as_ref().map(|a| Accused {
            name: a.name.trim().to_owned(),
            organ_id: a.organ_id.trim().to_owned(),
        }),
        source_system: req.source_system.clone(),
        external_ref: req.external_ref.clone(),
    })
}

impl IntakeGrpc {
    /// Records a read the audit log keeps (a reveal of personal data, a petitioner's history)
    /// in its own transaction; the read is refused if the record cannot be written.
    async fn audit(
        &self,
        p: &Principal,
        action: &str,
        case_id: &str,
        detail: &str,
    ) -> Result<(), Status> {
        let entry = petition_audit::Entry {
            at: self.shared.clock.now(),
            actor: p.subject.clone(),
            organ: p.org.clone(),
            action: action.to_owned(),
            case_id: case_id.to_owned(),
            detail: detail.to_owned(),
        };
        self.store.audit(&entry).await.map_err(|e| {
            tracing::error!(error = %e, "audit entry not written: the read is refused");
            Status::unavailable(
                "the audit log cannot be written now, so personal data is not shown; try again",
            )
        })
    }

    fn view(&self) -> View<'_> {
        View {
            tree: &self.shared.reference.tree,
            cipher: &self.cipher,
        }
    }

    /// A retry of a registered key is answered with the first result; the same key with other
    /// content is ALREADY_EXISTS, naming the case only to a caller who may see it.
    fn replay(
        &self,
        p: &Principal,
        existing: &CaseRecord,
        fingerprint: &[u8],
    ) -> Result<pb::RegisterPetitionResponse, Status> {
        let c = &existing.body;
        if c.fingerprint != fingerprint {
            let visible = matches!(
                self.shared.access.view(p, &facts(existing)),
                CaseView::Visible { .. }
            );
            let which = if visible {
                format!(" as case {}", existing.case_number)
            } else {
                String::new()
            };
            let mut status = Status::already_exists(format!(
                "external_ref {} from {} is already registered{which} with different content; \
                 send a new external_ref for a new petition",
                shown(c.external_ref.as_deref().unwrap_or_default()),
                shown(c.source_system.as_deref().unwrap_or_default()),
            ));
            // The case, for a caller who may read it: a peer deployment lists the conflict
            // with both versions.
            if visible && let Ok(v) = existing.case_number.parse() {
                status
                    .metadata_mut()
                    .insert(crate::federation::EXISTING_CASE, v);
            }
            return Err(status);
        }
        Ok(pb::RegisterPetitionResponse {
            case_id: c.id.to_string(),
            case_number: existing.case_number.clone(),
            query_code: shown_query_code(&c.query_code),
            flags: Some(flags_to_pb(&c.flags)),
            type_of_matter: type_to_pb(Some(c.type_of_matter)) as i32,
            diversion: diversion_to_pb(c.diversion) as i32,
            replayed: true,
        })
    }

    /// Whether the calling system is one of the deployments the peers file lets send cases down
    /// and watch them: another upstream platform (a 12345 hotline) is not.
    fn known_upstream(&self, p: &Principal, what: &str) -> Result<(), Status> {
        if self.federation.upstreams.iter().any(|u| u == &p.subject) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "{what}: {} is not a deployment this one takes cases from (upstreams in its peers file)",
                shown(&p.subject)
            )))
        }
    }

    /// A case a peer deployment sends down (DESIGN §5b): only a peer does, under its case
    /// number, to an organ this deployment serves; anything else is refused for good, and the
    /// peer lists it as failed with this reason.
    fn sent_down(
        &self,
        p: &Principal,
        req: &pb::RegisterPetitionRequest,
    ) -> Result<Option<pb::Upstream>, Status> {
        let Some(up) = &req.upstream else {
            return Ok(None);
        };
        self.shared
            .access
            .may_federate(p, "upstream")
            .map_err(denied)?;
        self.known_upstream(p, "upstream")?;
        let mut up = up.clone();
        up.case_number = up.case_number.trim().to_owned();
        up.organ = up.organ.trim().to_owned();
        if up.assigned && up.report_due.is_none() {
            return Err(Status::invalid_argument(
                "upstream.report_due: required for an assigned case (交办): the date the completion report (办结报告) is owed",
            ));
        }
        if up.case_number.is_empty() || up.case_number != req.external_ref.trim() {
            return Err(Status::invalid_argument(
                "upstream.case_number: required, and equal to external_ref (the peer's case number is the idempotency key)",
            ));
        }
        let tree = &self.shared.reference.tree;
        let Some(organ) = tree.get(&up.organ) else {
            return Err(Status::invalid_argument(format!(
                "upstream.organ: {} is not in the organisation tree",
                shown(&up.organ)
            )));
        };
        if !self.federation.serves(organ) {
            return Err(Status::failed_precondition(format!(
                "upstream.organ: {} ({}) is not served by this deployment ({}); send it to the deployment that serves region {}",
                organ.id,
                organ.name,
                if self.federation.name.is_empty() {
                    "no peers file"
                } else {
                    &self.federation.name
                },
                organ.region
            )));
        }
        Ok(Some(up))
    }

    pub(crate) fn new_case(
        &self,
        p: &Principal,
        valid: &ValidPetition,
        query_code: &QueryCode,
        fingerprint: Vec<u8>,
        flags: StoredFlags,
        now: DateTime<Utc>,
    ) -> NewCase {
        let region = self
            .shared
            .reference
            .tree
            .get(&valid.received_by)
            .map(|o| o.region.as_str().to_owned())
            .unwrap_or_default();
        NewCase {
            body: CaseBody {
                id: Uuid::now_v7(),
                query_code: query_code.as_str().to_owned(),
                channel: valid.channel,
                received_by: valid.received_by.clone(),
                received_at: valid.received_at,
                registered_at: now,
                registered_by: p.subject.clone(),
                category: valid.category.clone(),
                type_of_matter: valid.type_of_matter,
                diversion: valid.diversion,
                problem_location: valid.problem_location.as_str().to_owned(),
                title: valid.title.clone(),
                content: valid.content.clone(),
                people_present: i64::from(valid.people_present),
                people_affected: i64::from(valid.people_affected),
                representatives: i64::from(valid.representatives),
                accused_name_sealed: valid
                    .accused
                    .as_ref()
                    .filter(|a| !a.name.is_empty())
                    .map(|a| self.cipher.seal(&a.name)),
                accused_organ: valid.accused_organ().map(str::to_owned),
                source_system: valid.idempotency_key.as_ref().map(|k| k.0.clone()),
                external_ref: valid.idempotency_key.as_ref().map(|k| k.1.clone()),
                fingerprint,
                competent_organ: valid.competent_organ.clone(),
                flags,
                status: CaseStatus::Registered,
            },
            register_region: region,
            register_year: case_number::register_year(now),
            petitioners: valid
                .petitioners
                .iter()
                .map(|vp| StoredPetitioner {
                    name: vp.name.clone(),
                    id_hash: vp
                        .id_number
                        .as_ref()
                        .zip(vp.id_type)
                        .map(|(n, t)| self.cipher.id_hash(t.as_str(), n)),
                    id_type: vp.id_type,
                    id_number_sealed: vp.id_number.as_deref().map(|n| self.cipher.seal(n)),
                    phone_sealed: vp.phone.as_deref().map(|n| self.cipher.seal(n)),
                    address_sealed: vp.address.as_deref().map(|n| self.cipher.seal(n)),
                    is_main: vp.is_main,
                    sex: vp.sex,
                    age_band: vp.age_band.map(str::to_owned),
                })
                .collect(),
            upstream: None,
        }
    }

    /// Same person, same matter: earlier cases, of which the caller sees only those it may —
    /// an accusation against its own side is no earlier case to it (Art. 30 ¶3).
    /// One page of a list, newest first, with the token for the next, bound to the caller and
    /// the filter.
    async fn page(
        &self,
        filter: &CaseFilter,
        bound: &[u8],
        token: &str,
        requested: u32,
    ) -> Result<(Vec<pb::CaseSummary>, String), Status> {
        let size = page_size(requested);
        let after = self.shared.pages.after(bound, token, parse_cursor)?;
        let mut cases = self
            .store
            .list_cases(filter, after, size + 1)
            .await
            .map_err(internal)?;
        let next = self
            .shared
            .pages
            .next_page(bound, &mut cases, size, cursor_text);
        Ok((cases.iter().map(summary).collect(), next))
    }

    async fn repeat_flags(
        &self,
        p: &Principal,
        valid: &ValidPetition,
    ) -> Result<(StoredFlags, Vec<String>), Status> {
        // under every key: a petitioner hashed before a rotation is still the same person
        let id_hashes: Vec<Vec<u8>> = valid
            .petitioners
            .iter()
            .filter_map(|vp| {
                Some(
                    self.cipher
                        .id_hashes(vp.id_type?.as_str(), vp.id_number.as_deref()?),
                )
            })
            .flatten()
            .collect();
        let mut priors = self
            .store
            .prior_cases(&id_hashes, &valid.category, valid.problem_location.as_str())
            .await
            .map_err(internal)?;
        priors.retain(|prior| {
            !self
                .shared
                .access
                .is_accused_side(p, prior.accused_organ.as_deref())
        });
        // Cases the caller is out of (回避) still make the new one a repeat, but their numbers
        // are not told to the caller.
        let ids: Vec<String> = priors.iter().map(|c| c.case_id.clone()).collect();
        let out_of = self
            .store
            .recused_among(&p.subject, &ids)
            .await
            .map_err(internal)?;
        let unnamed: Vec<String> = priors
            .iter()
            .filter(|c| out_of.contains(&c.case_id))
            .map(|c| c.case_number.clone())
            .collect();
        if let Some(earlier) = petition_domain::intake::not_accepted_again(&priors) {
            let which = if unnamed.contains(&earlier.case_number) {
                "an earlier case".to_owned()
            } else {
                format!("case {}", earlier.case_number)
            };
            return Err(Status::failed_precondition(format!(
                "不再受理 (Art. 36 ¶3): the same matter — same petitioner, category and problem location — was re-examined (复核) in {which}; that decision is final and a petition with the same facts is not accepted again. Tell the petitioner so, in writing"
            )));
        }
        let rf = repeat_flags(
            &priors,
            &valid.received_by,
            valid.received_at,
            &self.shared.reference.tree,
            &self.rules,
        );
        let flags = StoredFlags {
            group: valid.group,
            leapfrog: valid.leapfrog,
            repeat: rf.repeat,
            repeat_of_case_id: rf.repeat_of.as_ref().map(|(id, _)| id.clone()),
            repeat_of_case_number: rf.repeat_of.as_ref().map(|(_, n)| n.clone()),
            repeat_of_open: rf.repeat_of_open,
            first_at_organ: rf.first_at_organ,
            open_below_case_number: rf.open_below.clone(),
        };
        Ok((flags, unnamed))
    }
}

/// The flags as the caller is told them: an earlier case the caller is out of (回避) is not
/// named.
fn flags_told(flags: &StoredFlags, unnamed: &[String]) -> pb::CaseFlags {
    let mut shown = flags_to_pb(flags);
    for number in [
        &mut shown.repeat_of_case_number,
        &mut shown.open_below_case_number,
    ] {
        if unnamed.contains(number) {
            number.clear();
        }
    }
    shown
}

fn case_key(req: &pb::GetCaseRequest) -> Result<CaseKey, Status> {
    match (req.case_id.trim(), req.case_number.trim()) {
        ("", "") => Err(Status::invalid_argument(
            "case_id or case_number: one of them is required",
        )),
        (id, "") => Ok(CaseKey::Id(petition_grpc::case_id("case_id", id)?)),
        (_, number) => {
            number
                .parse::<CaseNumber>()
                .map_err(|e| Status::invalid_argument(format!("case_number: {e}")))?;
            Ok(CaseKey::Number(number.to_owned()))
        }
    }
}

fn cursor_text(c: &CaseRecord) -> String {
    format!("{}:{}", c.body.received_at.timestamp_micros(), c.body.id)
}

fn parse_cursor(text: &str) -> Option<PageCursor> {
    let (micros, id) = text.split_once(':')?;
    Some(PageCursor {
        received_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: Uuid::parse_str(id).ok()?,
    })
}

#[tonic::async_trait]
impl IntakeService for IntakeGrpc {
    async fn register_petition(
        &self,
        request: Request<pb::RegisterPetitionRequest>,
    ) -> Result<Response<pb::RegisterPetitionResponse>, Status> {
        let p = principal(&request)?.clone();
        let extensions = request.extensions().clone();
        let mut req = request.into_inner();
        // An upstream system registers under its own name, at the organ its key or token names,
        // unless it says otherwise: a facade such as Open311 need not know either.
        if p.role == petition_auth::Role::Upstream {
            if req.source_system.trim().is_empty() {
                req.source_system = p.subject.clone();
            }
            if req.received_by.trim().is_empty() {
                req.received_by = p.org.clone();
            }
        }
        petition_auth::check_source_system(&extensions, &req.source_system)?;
        self.shared
            .access
            .may_register(&p, req.received_by.trim(), &req.source_system)
            .map_err(denied)?;
        let fingerprint = Sha256::digest(req.encode_to_vec()).to_vec();
        let now = self.shared.clock.now();
        // A platform that does not say when it received the petition received it now; filled
        // in after the fingerprint, so that the same request sent again is the same request.
        if p.role == petition_auth::Role::Upstream && req.received_at.is_none() {
            req.received_at = Some(petition_grpc::convert::ts(now));
        }
        let upstream = self.sent_down(&p, &req)?;
        let form = form_from_pb(&req)?;
        let valid = petition_domain::intake::validate(
            &form,
            &IntakeContext {
                tree: &self.shared.reference.tree,
                taxonomy: &self.shared.reference.taxonomy,
                policy: &self.rules,
                now,
            },
        )
        .map_err(invalid)?;

        if let Some((source, external)) = &valid.idempotency_key
            && let Some(existing) = self
                .store
                .find_by_idempotency_key(source, external)
                .await
                .map_err(internal)?
        {
            return Ok(Response::new(self.replay(&p, &existing, &fingerprint)?));
        }

        let (mut flags, unnamed) = self.repeat_flags(&p, &valid).await?;
        // The peer saw the petitioner skip this level: the flag travels with the case.
        flags.leapfrog |= upstream.as_ref().is_some_and(|u| u.leapfrog);
        if req.validate_only {
            // The warnings before saving: the same checks and flags, nothing kept.
            return Ok(Response::new(pb::RegisterPetitionResponse {
                flags: Some(flags_told(&flags, &unnamed)),
                type_of_matter: type_to_pb(Some(valid.type_of_matter)) as i32,
                diversion: diversion_to_pb(valid.diversion) as i32,
                ..Default::default()
            }));
        }
        let query_code = QueryCode::generate(&mut rand::rng());
        let mut case = self.new_case(
            &p,
            &valid,
            &query_code,
            fingerprint.clone(),
            flags.clone(),
            now,
        );
        case.upstream = upstream.clone().map(|u| (p.subject.clone(), u));
        let case_id = case.body.id;
        let mut envelope = crate::events::registered(&case.body, &valid, false);
        if let Some(pb::event_envelope::Payload::PetitionRegistered(r)) = &mut envelope.payload {
            r.upstream = upstream;
        }
        let event = crate::store::EventBuilder {
            event_id: uuid::Uuid::parse_str(&envelope.event_id)
                .map_err(|e| Status::internal(format!("event id: {e}")))?,
            build: {
                let (subject, organ) = (p.subject.clone(), p.org.clone());
                std::sync::Arc::new(move |number: &str| {
                    crate::events::with_number(envelope.clone(), number).by(&subject, &organ)
                })
            },
        };
        let registration = crate::store::Registration { case, event };
        let case_number = match self.registrar.register(registration).await {
            Ok(n) => n,
            Err(StoreError::DuplicateKey) => {
                // Lost a race with a concurrent retry of the same key: answer as a retry.
                let (source, external) = valid.idempotency_key.as_ref().ok_or_else(|| {
                    Status::internal("duplicate idempotency key on a request without one")
                })?;
                let existing = self
                    .store
                    .find_by_idempotency_key(source, external)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| Status::aborted("concurrent registration; retry"))?;
                return Ok(Response::new(self.replay(&p, &existing, &fingerprint)?));
            }
            Err(e @ StoreError::RegisterFull { .. }) => {
                return Err(Status::resource_exhausted(e.to_string()));
            }
            Err(e @ (StoreError::Stopped | StoreError::Unavailable(_))) => {
                return Err(Status::unavailable(e.to_string()));
            }
            Err(e) => return Err(internal(e)),
        };
        tracing::info!(%case_number, channel = %valid.channel, received_by = %valid.received_by,
            group = flags.group, leapfrog = flags.leapfrog, repeat = flags.repeat, "petition registered");
        metrics::counter!("petitions_registered_total", "channel" => valid.channel.as_str())
            .increment(1);
        Ok(Response::new(pb::RegisterPetitionResponse {
            case_id: case_id.to_string(),
            case_number,
            query_code: query_code.to_string(),
            flags: Some(flags_told(&flags, &unnamed)),
            type_of_matter: type_to_pb(Some(valid.type_of_matter)) as i32,
            diversion: diversion_to_pb(valid.diversion) as i32,
            replayed: false,
        }))
    }

    async fn import_petitions(
        &self,
        request: Request<tonic::Streaming<pb::ImportPetitionsRequest>>,
    ) -> Result<Response<pb::ImportPetitionsResponse>, Status> {
        let p = principal(&request)?.clone();
        self.shared.access.may_import(&p).map_err(denied)?;
        // every message names its source system: the first is held to the certificate, and
        // the stream to the first (see import_stream)
        let proven = request.extensions().clone();
        let out = self
            .import_stream(&p, request.into_inner(), &proven)
            .await?;
        tracing::info!(
            imported = out.imported,
            already = out.already_imported,
            rejected = out.rejected.len(),
            "import finished"
        );
        Ok(Response::new(out))
    }

    async fn rekey_personal_data(
        &self,
        request: Request<pb::RekeyPersonalDataRequest>,
    ) -> Result<Response<pb::RekeyPersonalDataResponse>, Status> {
        let p = principal(&request)?.clone();
        self.shared
            .access
            .may_maintain_deployment(&p)
            .map_err(denied)?;
        let r = crate::rekey::run(&self.store, &self.cipher)
            .await
            .map_err(internal)?;
        self.audit(
            &p,
            "personal data re-sealed",
            "",
            &format!(
                "under key {}: {} petitioners, {} accusations, {} unreadable",
                r.key_id, r.petitioners_resealed, r.accusations_resealed, r.unreadable
            ),
        )
        .await?;
        Ok(Response::new(pb::RekeyPersonalDataResponse {
            key_id: r.key_id,
            petitioners_resealed: r.petitioners_resealed,
            accusations_resealed: r.accusations_resealed,
            already_current: r.already_current,
            unreadable: r.unreadable,
            unreadable_cases: r.unreadable_cases,
        }))
    }

    async fn reveal_personal_data(
        &self,
        request: Request<pb::RevealPersonalDataRequest>,
    ) -> Result<Response<pb::RevealPersonalDataResponse>, Status> {
        let p = principal(&request)?.clone();
        let r = request.get_ref();
        let key = case_key(&pb::GetCaseRequest {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
        })?;
        let purpose = r.purpose.trim();
        if purpose.chars().count() < 4 || purpose.chars().count() > 200 {
            return Err(Status::invalid_argument(
                "purpose: say why the personal data is needed, in 4 to 200 characters (e.g. \"phoning the petitioner about the hearing\"); it is kept in the audit log",
            ));
        }
        self.shared.access.may_read_cases(&p).map_err(denied)?;
        let case = self
            .store
            .get_case(&key)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_CASE))?;
        match self.shared.access.view(&p, &facts(&case)) {
            CaseView::Visible { .. } => {
                self.shared
                    .access
                    .may_reveal(&p, &facts(&case))
                    .map_err(denied)?;
                // PIPL Art. 51/56: recorded before it is shown, or not shown at all.
                self.audit(
                    &p,
                    "personal data revealed",
                    &case.body.id.to_string(),
                    purpose,
                )
                .await?;
                let shown = self.view().case(&case, true);
                Ok(Response::new(pb::RevealPersonalDataResponse {
                    case_number: shown.case_number,
                    petitioners: shown.petitioners,
                    accused: shown.accused,
                }))
            }
            other => Err(petition_grpc::case_access(other, &p, NO_SUCH_CASE)
                .err()
                .unwrap_or_else(|| Status::not_found(NO_SUCH_CASE))),
        }
    }

    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        let p = principal(&request)?.clone();
        let key = case_key(request.get_ref())?;
        self.shared.access.may_read_cases(&p).map_err(denied)?;
        let case = self
            .store
            .get_case(&key)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_CASE))?;
        match self.shared.access.view(&p, &facts(&case)) {
            // Masked for everyone: the clear text is RevealPersonalData's, with a purpose.
            CaseView::Visible { .. } => {
                let mut shown = self.view().case(&case, false);
                // A platform passes what it reads on to the public: the steps and notes the
                // petitioner is told of, never the staff's notes.
                if p.role == petition_auth::Role::Upstream {
                    shown.timeline = self.view().public_timeline(&case);
                }
                let id = case.body.id.to_string();
                shown.upstream = self.exchanges.upstream_of(&id).await.map_err(internal)?;
                shown.exchange = self.exchanges.get(&id).await.map_err(internal)?.map(|e| {
                    let mut e = e.to_pb();
                    // Both versions of a conflict, one of them another petition, are for
                    // those who manage exchanges.
                    if self.shared.access.exchange_reach(&p).is_err() {
                        e.ours = None;
                        e.theirs = None;
                    }
                    e
                });
                Ok(Response::new(shown))
            }
            // Visible was answered above: this is the refusal, never Ok.
            other => Err(petition_grpc::case_access(other, &p, NO_SUCH_CASE)
                .err()
                .unwrap_or_else(|| Status::not_found(NO_SUCH_CASE))),
        }
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.shared.access.may_read_cases(&p).map_err(denied)?;
        let mut filter = CaseFilter {
            scope: self.shared.access.list_scope(&p),
            ..CaseFilter::default()
        };
        if !req.received_by.is_empty() {
            if self.shared.reference.tree.get(&req.received_by).is_none() {
                return Err(Status::invalid_argument(format!(
                    "received_by: organ {} is not in the organisation tree",
                    shown(&req.received_by)
                )));
            }
            if let Some(scope) = &filter.scope.organs
                && !scope.contains(&req.received_by)
            {
                return Err(Status::permission_denied(format!(
                    "received_by: {} is outside the reach of {}",
                    req.received_by, p.org
                )));
            }
            filter.received_by = Some(req.received_by.clone());
        }
        if req.channel != 0 {
            filter.channel = Some(
                channel_from_pb(req.channel)
                    .ok_or_else(|| Status::invalid_argument("channel: unknown value"))?,
            );
        }
        if !req.category_prefix.is_empty() {
            if !req
                .category_prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.')
            {
                return Err(Status::invalid_argument(
                    "category_prefix: a category code such as 01 or 01.04 (digits and dots)",
                ));
            }
            filter.category_prefix = Some(req.category_prefix.clone());
        }
        for v in &req.statuses {
            filter
                .statuses
                .push(
                    petition_grpc::convert::case_status_from_pb(*v).ok_or_else(|| {
                        Status::invalid_argument(format!("statuses: unknown case status {v}"))
                    })?,
                );
        }
        filter.only_group = req.only_group;
        filter.only_leapfrog = req.only_leapfrog;
        filter.only_repeat = req.only_repeat;
        let time = |field: &str, t: &Option<prost_types::Timestamp>| match t {
            None => Ok(None),
            Some(t) => from_ts(t)
                .map(Some)
                .ok_or_else(|| Status::invalid_argument(format!("{field}: not a valid timestamp"))),
        };
        filter.received_from = time("received_from", &req.received_from)?;
        filter.received_to = time("received_to", &req.received_to)?;
        let bound = binding(
            &p,
            &pb::ListCasesRequest {
                page_size: 0,
                page_token: String::new(),
                ..req.clone()
            },
        );
        let (cases, next_page_token) = self
            .page(&filter, &bound, &req.page_token, req.page_size)
            .await?;
        Ok(Response::new(pb::ListCasesResponse {
            cases,
            next_page_token,
        }))
    }

    async fn lookup_by_query_code(
        &self,
        request: Request<pb::LookupByQueryCodeRequest>,
    ) -> Result<Response<pb::LookupByQueryCodeResponse>, Status> {
        let p = principal(&request)?.clone();
        let code: QueryCode = request
            .get_ref()
            .query_code
            .parse()
            .map_err(|e| Status::invalid_argument(format!("query_code: {e}")))?;
        let case = self
            .store
            .get_case(&CaseKey::QueryCode(code.as_str().to_owned()))
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_CODE))?;
        // Art. 30 ¶3: even holding the code, the accused side learns nothing; nor does a
        // member of staff out of the case (回避), at the window or anywhere.
        let access = &self.shared.access;
        if access.is_accused_side(&p, case.body.accused_organ.as_deref())
            || access.is_recused(&p, &facts(&case))
        {
            return Err(Status::not_found(NO_SUCH_CODE));
        }
        Ok(Response::new(self.view().lookup(&case)))
    }

    async fn get_petitioner_history(
        &self,
        request: Request<pb::GetPetitionerHistoryRequest>,
    ) -> Result<Response<pb::GetPetitionerHistoryResponse>, Status> {
        let p = principal(&request)?.clone();
        self.shared
            .access
            .may_look_up_petitioners(&p)
            .map_err(denied)?;
        let req = request.into_inner();
        let id_type = id_type_from_pb(req.id_type)
            .ok_or_else(|| Status::invalid_argument("id_type: required"))?;
        let number = match id_type {
            IdType::ResidentId => {
                let today = petition_domain::calendar::local_date(self.shared.clock.now());
                petition_domain::ResidentId::parse(&req.id_number, today)
                    .map_err(|e| {
                        Status::invalid_argument(format!(
                            "id_number: invalid resident ID (居民身份证号码): {e}"
                        ))
                    })?
                    .as_str()
                    .to_owned()
            }
            _ if req.id_number.trim().is_empty() => {
                return Err(Status::invalid_argument("id_number: required"));
            }
            _ => req.id_number.trim().to_owned(),
        };
        // whose history: the identity's keyed hash, never the number itself
        let whose = petition_audit::hex(&self.cipher.id_hash(id_type.as_str(), &number));
        self.audit(
            &p,
            "petitioner history looked up",
            "",
            &format!("identity {whose}"),
        )
        .await?;
        let filter = CaseFilter {
            scope: self.shared.access.list_scope(&p),
            petitioner: Some(self.cipher.id_hashes(id_type.as_str(), &number)),
            ..CaseFilter::default()
        };
        let bound = binding(
            &p,
            &pb::GetPetitionerHistoryRequest {
                page_size: 0,
                page_token: String::new(),
                ..req.clone()
            },
        );
        let (cases, next_page_token) = self
            .page(&filter, &bound, &req.page_token, req.page_size)
            .await?;
        Ok(Response::new(pb::GetPetitionerHistoryResponse {
            cases,
            next_page_token,
        }))
    }

    type WatchCasesStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::CaseProgress, Status>> + Send + 'static>,
    >;

    async fn watch_cases(
        &self,
        request: Request<pb::WatchCasesRequest>,
    ) -> Result<Response<Self::WatchCasesStream>, Status> {
        let p = principal(&request)?.clone();
        self.shared
            .access
            .may_federate(&p, "WatchCases")
            .map_err(denied)?;
        self.known_upstream(&p, "WatchCases")?;
        let since = i64::try_from(request.get_ref().since).map_err(|_| {
            Status::invalid_argument("since: a seq this deployment sent, or 0 from the start")
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let (store, feed) = (self.exchanges.clone(), self.feed.clone());
        tokio::spawn(async move {
            let mut since = since;
            loop {
                // Asked before reading: a step written between the read and the wait still
                // wakes this loop.
                let woken = feed.notified();
                let batch = match store.feed_after(&p.subject, since, 256).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, peer = %p.subject, "feed not read");
                        let _ = tx
                            .send(Err(Status::unavailable(
                                "the feed could not be read now; watch again from your last seq",
                            )))
                            .await;
                        return;
                    }
                };
                let full = batch.len() == 256;
                for progress in batch {
                    since = i64::try_from(progress.seq).unwrap_or(since);
                    if tx.send(Ok(progress)).await.is_err() {
                        return; // the peer went away
                    }
                }
                if full {
                    continue;
                }
                // Another replica may write the feed: look again within a second regardless.
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn list_exchanges(
        &self,
        request: Request<pb::ListExchangesRequest>,
    ) -> Result<Response<pb::ListExchangesResponse>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        let routed_by = self.shared.access.exchange_reach(&p).map_err(denied)?;
        let scope = self.shared.access.list_scope(&p);
        let filter = crate::federation::ExchangeFilter {
            status: crate::federation::status_from_pb(req.status)?,
            peer: Some(req.peer.trim().to_owned()).filter(|s| !s.is_empty()),
            routed_by,
            hidden_accused: scope.hidden_accused,
            recused: scope.recused,
        };
        let bound = binding(
            &p,
            &pb::ListExchangesRequest {
                page_size: 0,
                page_token: String::new(),
                ..req.clone()
            },
        );
        let size = page_size(req.page_size);
        let after = self.shared.pages.after(&bound, &req.page_token, |t| {
            let (micros, id) = t.split_once(':')?;
            Some((micros.parse().ok()?, id.to_owned()))
        })?;
        let mut rows = self
            .exchanges
            .list(&filter, after, size + 1)
            .await
            .map_err(internal)?;
        let next_page_token = self.shared.pages.next_page(&bound, &mut rows, size, |r| {
            format!("{}:{}", r.created_at.timestamp_micros(), r.case_id)
        });
        Ok(Response::new(pb::ListExchangesResponse {
            exchanges: rows.iter().map(|r| r.to_pb()).collect(),
            next_page_token,
        }))
    }

    async fn retry_exchange(
        &self,
        request: Request<pb::RetryExchangeRequest>,
    ) -> Result<Response<pb::Exchange>, Status> {
        const NO_SUCH_EXCHANGE: &str = "no exchange with a peer deployment for that case";
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        let reach = self.shared.access.exchange_reach(&p).map_err(denied)?;
        let key = case_key(&pb::GetCaseRequest {
            case_id: req.case_id,
            case_number: req.case_number,
        })?;
        let case = self
            .store
            .get_case(&key)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_EXCHANGE))?;
        let id = case.body.id.to_string();
        let row = self
            .exchanges
            .get(&id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_EXCHANGE))?;
        // Out of reach, the accused side and a member of staff out of the case (回避) get the
        // answer a missing exchange gets.
        let hidden = self.shared.access.list_scope(&p).hidden_accused;
        if reach.is_some_and(|r| !r.contains(&row.routed_by))
            || self.shared.access.is_recused(&p, &facts(&case))
            || row
                .accused_organ
                .as_ref()
                .is_some_and(|a| hidden.contains(a))
        {
            return Err(Status::not_found(NO_SUCH_EXCHANGE));
        }
        if row.status == petition_federation::ExchangeStatus::Done {
            return Err(Status::failed_precondition(format!(
                "case {}: the exchange is done; {} holds it as case {}",
                row.case_number,
                row.peer,
                row.peer_case_number.unwrap_or_default()
            )));
        }
        self.exchanges
            .retry(&id, self.shared.clock.now())
            .await
            .map_err(internal)?;
        self.deliver.notify_one();
        let row = self
            .exchanges
            .get(&id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_EXCHANGE))?;
        Ok(Response::new(row.to_pb()))
    }
}
