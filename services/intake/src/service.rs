//! `petition.v1.IntakeService`: the gRPC face of intake.

use crate::crypto::PersonalDataCipher;
use crate::store::{
    CaseFilter, CaseKey, CaseRecord, IntakeStore, NewCase, PageCursor, StoreError, StoredFlags,
    StoredPetitioner,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use pb::intake_service_server::IntakeService;
use petition_auth::{Principal, Role, principal};
use petition_domain::identity::{mask_address, mask_id_number, mask_phone};
use petition_domain::intake::{
    Accused, IntakeContext, IntakePolicy, PetitionForm, PetitionerForm, ValidPetition, Violation,
    repeat_flags,
};
use petition_domain::{
    CaseNumber, Clock, Diversion, IdType, QueryCode, Sex, TypeOfMatter, case_number,
};
use petition_events::INTAKE_STREAM;
use petition_grpc::convert::{self, channel_from_pb, from_ts, ts};
use petition_grpc::reference::Reference;
use petition_proto::v1 as pb;
use prost::Message;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub const PRODUCER: &str = "intake";
const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

pub struct IntakeGrpc {
    store: Arc<dyn IntakeStore>,
    reference: Arc<Reference>,
    policy: IntakePolicy,
    cipher: PersonalDataCipher,
    clock: Arc<dyn Clock>,
    relay_wake: Arc<Notify>,
}

impl IntakeGrpc {
    pub fn new(
        store: Arc<dyn IntakeStore>,
        reference: Arc<Reference>,
        policy: IntakePolicy,
        cipher: PersonalDataCipher,
        clock: Arc<dyn Clock>,
        relay_wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            reference,
            policy,
            cipher,
            clock,
            relay_wake,
        }
    }

    /// Staff see the cases received by their organ and the organs below it; an upstream system
    /// sees what it submitted; an admin sees everything.
    fn can_see(&self, p: &Principal, case: &CaseRecord) -> bool {
        match p.role {
            Role::Admin => true,
            Role::Analyst => false,
            Role::Upstream => case.source_system.as_deref() == Some(p.subject.as_str()),
            _ => self
                .reference
                .tree
                .is_same_or_above(&p.org, &case.received_by),
        }
    }

    fn organs_within(&self, org: &str) -> Vec<String> {
        self.reference
            .tree
            .organs()
            .filter(|o| self.reference.tree.is_same_or_above(org, &o.id))
            .map(|o| o.id.clone())
            .collect()
    }

    fn check_may_register(
        &self,
        p: &Principal,
        req: &pb::RegisterPetitionRequest,
    ) -> Result<(), Status> {
        match p.role {
            Role::Admin => Ok(()),
            Role::Upstream if req.source_system == p.subject => Ok(()),
            Role::Upstream => Err(Status::permission_denied(format!(
                "source_system: an upstream system registers under its own name {:?}, not {:?}",
                p.subject, req.source_system
            ))),
            Role::Clerk | Role::Supervisor | Role::Leader => {
                if req.received_by.is_empty()
                    || self.reference.tree.get(&req.received_by).is_none()
                    || self
                        .reference
                        .tree
                        .is_same_or_above(&p.org, &req.received_by)
                {
                    // Unknown organs fall through to validation, which names the field.
                    Ok(())
                } else {
                    Err(Status::permission_denied(format!(
                        "received_by: {} staff cannot register petitions received by {}",
                        p.org, req.received_by
                    )))
                }
            }
            Role::Handler | Role::Analyst => Err(Status::permission_denied(format!(
                "role {} may not register petitions (登记 is for bureau clerks and upstream systems)",
                p.role
            ))),
        }
    }

    fn replay(
        &self,
        existing: &CaseRecord,
        fingerprint: &[u8],
    ) -> Result<pb::RegisterPetitionResponse, Status> {
        if existing.fingerprint != fingerprint {
            return Err(Status::already_exists(format!(
                "external_ref {:?} from {:?} is already registered as case {} with different content; \
                 send a new external_ref for a new petition",
                existing.external_ref.as_deref().unwrap_or_default(),
                existing.source_system.as_deref().unwrap_or_default(),
                existing.case_number
            )));
        }
        Ok(pb::RegisterPetitionResponse {
            case_id: existing.id.to_string(),
            case_number: existing.case_number.clone(),
            query_code: QueryCode::from_str_lossy(&existing.query_code),
            flags: Some(flags_to_pb(&existing.flags)),
            type_of_matter: type_to_pb(&existing.type_of_matter) as i32,
            diversion: diversion_to_pb(existing.diversion.as_deref()) as i32,
            replayed: true,
        })
    }

    fn petitioners_to_pb(&self, p: &Principal, case: &CaseRecord) -> Vec<pb::Petitioner> {
        let reveal = p.may_see_personal_data();
        if reveal && !case.petitioners.is_empty() {
            // PIPL Art. 51/56: every reveal of personal data leaves an audit record.
            tracing::info!(
                target: "audit",
                subject = %p.subject,
                org = %p.org,
                role = %p.role,
                case_number = %case.case_number,
                "personal data revealed"
            );
        }
        let open = |sealed: &Option<Vec<u8>>, mask: fn(&str) -> String| -> String {
            let plain = sealed
                .as_deref()
                .map(|s| {
                    self.cipher
                        .open(s)
                        .unwrap_or_else(|_| "<unreadable>".into())
                })
                .unwrap_or_default();
            if reveal || plain.is_empty() {
                plain
            } else {
                mask(&plain)
            }
        };
        case.petitioners
            .iter()
            .map(|sp| pb::Petitioner {
                name: sp.name.clone(),
                id_type: id_type_to_pb(sp.id_type.as_deref()) as i32,
                id_number: open(&sp.id_number_sealed, mask_id_number),
                phone: open(&sp.phone_sealed, mask_phone),
                address: open(&sp.address_sealed, mask_address),
                is_main: sp.is_main,
                sex: sex_to_pb(sp.sex.as_deref()) as i32,
                age_band: sp.age_band.clone().unwrap_or_default(),
                masked: !reveal,
            })
            .collect()
    }

    fn case_to_pb(&self, p: &Principal, case: &CaseRecord) -> pb::Case {
        let accused =
            (case.accused_name_sealed.is_some() || case.accused_organ.is_some()).then(|| {
                let name = case
                    .accused_name_sealed
                    .as_deref()
                    .map(|s| self.cipher.open(s).unwrap_or_default())
                    .unwrap_or_default();
                pb::Accused {
                    name: if p.may_see_personal_data() {
                        name
                    } else {
                        mask_address(&name)
                    },
                    organ_id: case.accused_organ.clone().unwrap_or_default(),
                }
            });
        pb::Case {
            id: case.id.to_string(),
            case_number: case.case_number.clone(),
            channel: channel_to_pb(&case.channel) as i32,
            received_by: case.received_by.clone(),
            received_at: Some(ts(case.received_at)),
            registered_at: Some(ts(case.registered_at)),
            category: case.category.clone(),
            type_of_matter: type_to_pb(&case.type_of_matter) as i32,
            diversion: diversion_to_pb(case.diversion.as_deref()) as i32,
            problem_location: case.problem_location.clone(),
            title: case.title.clone(),
            content: case.content.clone(),
            people_present: case.people_present as u32,
            people_affected: case.people_affected as u32,
            representatives: case.representatives as u32,
            petitioners: self.petitioners_to_pb(p, case),
            accused,
            source_system: case.source_system.clone().unwrap_or_default(),
            external_ref: case.external_ref.clone().unwrap_or_default(),
            flags: Some(flags_to_pb(&case.flags)),
            status: status_to_pb(&case.status) as i32,
            registered_by: case.registered_by.clone(),
        }
    }
}

trait LossyQueryCode {
    fn from_str_lossy(s: &str) -> String;
}

impl LossyQueryCode for QueryCode {
    /// Stored codes are canonical; show them grouped as the petitioner's slip does.
    fn from_str_lossy(s: &str) -> String {
        s.parse::<QueryCode>()
            .map(|q| q.to_string())
            .unwrap_or_else(|_| s.to_owned())
    }
}

fn invalid(violations: Vec<Violation>) -> Status {
    let pairs: Vec<(String, String)> = violations.into_iter().map(|v| (v.field, v.rule)).collect();
    petition_grpc::invalid_argument(&pairs)
}

fn type_to_pb(s: &str) -> pb::TypeOfMatter {
    convert::type_to_pb(TypeOfMatter::parse(s))
}

fn diversion_to_pb(s: Option<&str>) -> pb::Diversion {
    convert::diversion_to_pb(s.and_then(Diversion::parse))
}

fn channel_to_pb(s: &str) -> pb::Channel {
    convert::channel_str_to_pb(s)
}

fn internal(e: StoreError) -> Status {
    tracing::error!(error = %e, "intake store failed");
    Status::internal("storage failure; the request was not completed, retry later")
}

fn id_type_from_pb(v: i32) -> Option<IdType> {
    match pb::IdType::try_from(v).ok()? {
        pb::IdType::Unspecified => None,
        pb::IdType::ResidentId => Some(IdType::ResidentId),
        pb::IdType::Passport => Some(IdType::Passport),
        pb::IdType::Other => Some(IdType::Other),
    }
}

fn id_type_to_pb(s: Option<&str>) -> pb::IdType {
    match s.and_then(|s| s.parse::<IdType>().ok()) {
        Some(IdType::ResidentId) => pb::IdType::ResidentId,
        Some(IdType::Passport) => pb::IdType::Passport,
        Some(IdType::Other) => pb::IdType::Other,
        None => pb::IdType::Unspecified,
    }
}

fn sex_to_pb(s: Option<&str>) -> pb::Sex {
    match s.and_then(|s| s.parse::<Sex>().ok()) {
        Some(Sex::Male) => pb::Sex::Male,
        Some(Sex::Female) => pb::Sex::Female,
        None => pb::Sex::Unspecified,
    }
}

fn status_to_pb(s: &str) -> pb::CaseStatus {
    match s {
        "registered" => pb::CaseStatus::Registered,
        "routed" => pb::CaseStatus::Routed,
        "in_handling" => pb::CaseStatus::InHandling,
        "answered" => pb::CaseStatus::Answered,
        "closed" => pb::CaseStatus::Closed,
        _ => pb::CaseStatus::Unspecified,
    }
}

fn flags_to_pb(f: &StoredFlags) -> pb::CaseFlags {
    pb::CaseFlags {
        group: f.group,
        leapfrog: f.leapfrog,
        repeat: f.repeat,
        repeat_of_case_id: f
            .repeat_of_case_id
            .map(|u| u.to_string())
            .unwrap_or_default(),
        repeat_of_case_number: f.repeat_of_case_number.clone().unwrap_or_default(),
        first_at_organ: f.first_at_organ,
        open_below: f.open_below_case_number.is_some(),
        open_below_case_number: f.open_below_case_number.clone().unwrap_or_default(),
    }
}

fn summary(case: &CaseRecord) -> pb::CaseSummary {
    pb::CaseSummary {
        id: case.id.to_string(),
        case_number: case.case_number.clone(),
        channel: channel_to_pb(&case.channel) as i32,
        received_by: case.received_by.clone(),
        received_at: Some(ts(case.received_at)),
        category: case.category.clone(),
        problem_location: case.problem_location.clone(),
        title: case.title.clone(),
        flags: Some(flags_to_pb(&case.flags)),
        status: status_to_pb(&case.status) as i32,
    }
}

fn form_from_pb(req: &pb::RegisterPetitionRequest) -> Result<PetitionForm, Vec<Violation>> {
    let mut bad = Vec::new();
    let channel = channel_from_pb(req.channel);
    let received_at = match &req.received_at {
        Some(t) => match from_ts(t) {
            Some(t) => Some(t),
            None => {
                bad.push(Violation {
                    field: "received_at".into(),
                    rule: "not a valid timestamp".into(),
                });
                None
            }
        },
        None => None,
    };
    let petitioners = req
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
        .collect();
    if !bad.is_empty() {
        return Err(bad);
    }
    Ok(PetitionForm {
        channel,
        received_by: req.received_by.trim().to_owned(),
        received_at,
        petitioners,
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

fn encode_page_token(c: &CaseRecord) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}:{}",
        c.received_at.timestamp_micros(),
        c.id
    ))
}

fn decode_page_token(token: &str) -> Result<PageCursor, Status> {
    let bad = || Status::invalid_argument("page_token: not a token this service issued");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (micros, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(PageCursor {
        received_at: DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?)
            .ok_or_else(bad)?,
        id: Uuid::parse_str(id).map_err(|_| bad())?,
    })
}

impl IntakeGrpc {
    fn new_case(
        &self,
        p: &Principal,
        valid: &ValidPetition,
        query_code: &QueryCode,
        fingerprint: Vec<u8>,
        flags: StoredFlags,
        now: DateTime<Utc>,
    ) -> NewCase {
        let tree = &self.reference.tree;
        let region = tree
            .get(&valid.received_by)
            .map(|o| o.region.as_str().to_owned())
            .unwrap_or_default();
        NewCase {
            id: Uuid::now_v7(),
            query_code: query_code.as_str().to_owned(),
            channel: valid.channel.as_str().to_owned(),
            received_by: valid.received_by.clone(),
            register_region: region,
            register_year: case_number::register_year(now),
            received_at: valid.received_at,
            registered_at: now,
            registered_by: p.subject.clone(),
            category: valid.category.clone(),
            type_of_matter: valid.type_of_matter.as_str().to_owned(),
            diversion: valid.diversion.map(|d| d.as_str().to_owned()),
            problem_location: valid.problem_location.as_str().to_owned(),
            title: valid.title.clone(),
            content: valid.content.clone(),
            people_present: valid.people_present as i32,
            people_affected: valid.people_affected as i32,
            representatives: valid.representatives as i32,
            accused_name_sealed: valid
                .accused
                .as_ref()
                .filter(|a| !a.name.is_empty())
                .map(|a| self.cipher.seal(&a.name)),
            accused_organ: valid
                .accused
                .as_ref()
                .map(|a| a.organ_id.clone())
                .filter(|o| !o.is_empty()),
            source_system: valid.idempotency_key.as_ref().map(|k| k.0.clone()),
            external_ref: valid.idempotency_key.as_ref().map(|k| k.1.clone()),
            fingerprint,
            competent_organ: valid.competent_organ.clone(),
            flags,
            petitioners: valid
                .petitioners
                .iter()
                .map(|vp| {
                    let id_type = vp.id_type.map(|t| t.as_str().to_owned());
                    StoredPetitioner {
                        name: vp.name.clone(),
                        id_hash: vp
                            .id_number
                            .as_ref()
                            .zip(id_type.as_ref())
                            .map(|(n, t)| self.cipher.id_hash(t, n)),
                        id_type,
                        id_number_sealed: vp.id_number.as_deref().map(|n| self.cipher.seal(n)),
                        phone_sealed: vp.phone.as_deref().map(|n| self.cipher.seal(n)),
                        address_sealed: vp.address.as_deref().map(|n| self.cipher.seal(n)),
                        is_main: vp.is_main,
                        sex: vp.sex.map(|s| s.as_str().to_owned()),
                        age_band: vp.age_band.map(str::to_owned),
                    }
                })
                .collect(),
        }
    }
}

#[tonic::async_trait]
impl IntakeService for IntakeGrpc {
    async fn register_petition(
        &self,
        request: Request<pb::RegisterPetitionRequest>,
    ) -> Result<Response<pb::RegisterPetitionResponse>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.check_may_register(&p, &req)?;
        let fingerprint = Sha256::digest(req.encode_to_vec()).to_vec();
        let now = self.clock.now();
        let form = form_from_pb(&req).map_err(invalid)?;
        let valid = petition_domain::intake::validate(
            &form,
            &IntakeContext {
                tree: &self.reference.tree,
                taxonomy: &self.reference.taxonomy,
                policy: &self.policy,
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
            return Ok(Response::new(self.replay(&existing, &fingerprint)?));
        }

        let id_hashes: Vec<Vec<u8>> = valid
            .petitioners
            .iter()
            .filter_map(|vp| {
                Some(
                    self.cipher
                        .id_hash(vp.id_type?.as_str(), vp.id_number.as_deref()?),
                )
            })
            .collect();
        let priors = self
            .store
            .prior_cases(&id_hashes, &valid.category, valid.problem_location.as_str())
            .await
            .map_err(internal)?;
        let rf = repeat_flags(
            &priors,
            &valid.received_by,
            valid.received_at,
            &self.reference.tree,
            &self.policy,
        );
        let flags = StoredFlags {
            group: valid.group,
            leapfrog: valid.leapfrog,
            repeat: rf.repeat,
            repeat_of_case_id: rf
                .repeat_of
                .as_ref()
                .and_then(|(id, _)| Uuid::parse_str(id).ok()),
            repeat_of_case_number: rf.repeat_of.as_ref().map(|(_, n)| n.clone()),
            first_at_organ: rf.first_at_organ,
            open_below_case_number: rf.open_below.clone(),
        };
        let query_code = QueryCode::generate(&mut rand::rng());
        let case = self.new_case(
            &p,
            &valid,
            &query_code,
            fingerprint.clone(),
            flags.clone(),
            now,
        );
        let case_id = case.id;
        let main = valid.main_petitioner();
        let mut envelope = petition_events::envelope(
            &case_id.to_string(),
            "petition.registered",
            PRODUCER,
            now,
            pb::event_envelope::Payload::PetitionRegistered(pb::PetitionRegistered {
                case_id: case_id.to_string(),
                case_number: String::new(),
                channel: channel_to_pb(valid.channel.as_str()) as i32,
                received_by: valid.received_by.clone(),
                received_at: Some(ts(valid.received_at)),
                category: valid.category.clone(),
                type_of_matter: type_to_pb(valid.type_of_matter.as_str()) as i32,
                diversion: diversion_to_pb(valid.diversion.map(|d| d.as_str())) as i32,
                problem_location: valid.problem_location.as_str().to_owned(),
                people_present: valid.people_present,
                people_affected: valid.people_affected,
                petitioner_count: valid.petitioners.len() as u32,
                main_age_band: main.age_band.unwrap_or_default().to_owned(),
                main_sex: sex_to_pb(main.sex.map(|s| s.as_str())) as i32,
                flags: Some(flags_to_pb(&flags)),
                accused_organ_id: case.accused_organ.clone().unwrap_or_default(),
                source_system: case.source_system.clone().unwrap_or_default(),
                external_ref: case.external_ref.clone().unwrap_or_default(),
            }),
        );
        let event = Box::new(move |number: &str| {
            if let Some(pb::event_envelope::Payload::PetitionRegistered(r)) = &mut envelope.payload
            {
                r.case_number = number.to_owned();
            }
            petition_events::to_outbox(INTAKE_STREAM, &envelope)
        });
        let case_number = match self.store.register(case, event).await {
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
                return Ok(Response::new(self.replay(&existing, &fingerprint)?));
            }
            Err(e @ StoreError::RegisterFull { .. }) => {
                return Err(Status::resource_exhausted(e.to_string()));
            }
            Err(e) => return Err(internal(e)),
        };
        self.relay_wake.notify_one();
        debug_assert!(case_number.parse::<CaseNumber>().is_ok());
        tracing::info!(%case_number, channel = %valid.channel, received_by = %valid.received_by,
            group = flags.group, leapfrog = flags.leapfrog, repeat = flags.repeat, "petition registered");
        metrics::counter!("petitions_registered_total", "channel" => valid.channel.as_str())
            .increment(1);
        Ok(Response::new(pb::RegisterPetitionResponse {
            case_id: case_id.to_string(),
            case_number,
            query_code: query_code.to_string(),
            flags: Some(flags_to_pb(&flags)),
            type_of_matter: type_to_pb(valid.type_of_matter.as_str()) as i32,
            diversion: diversion_to_pb(valid.diversion.map(|d| d.as_str())) as i32,
            replayed: false,
        }))
    }

    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        let key =
            match (req.case_id.trim(), req.case_number.trim()) {
                ("", "") => {
                    return Err(Status::invalid_argument(
                        "case_id or case_number: one of them is required",
                    ));
                }
                (id, "") => CaseKey::Id(Uuid::parse_str(id).map_err(|_| {
                    Status::invalid_argument(format!("case_id: {id:?} is not a UUID"))
                })?),
                (_, number) => {
                    number
                        .parse::<CaseNumber>()
                        .map_err(|e| Status::invalid_argument(format!("case_number: {e}")))?;
                    CaseKey::Number(number.to_owned())
                }
            };
        if p.role == Role::Analyst {
            return Err(Status::permission_denied(
                "role analyst sees aggregates only, not individual cases",
            ));
        }
        let case = self
            .store
            .get_case(&key)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found("no case with that id or case number"))?;
        if !self.can_see(&p, &case) {
            return Err(Status::permission_denied(format!(
                "case {} was received by {}, outside the reach of {} ({})",
                case.case_number, case.received_by, p.org, p.role
            )));
        }
        Ok(Response::new(self.case_to_pb(&p, &case)))
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        let mut filter = CaseFilter::default();
        match p.role {
            Role::Admin | Role::Analyst => {}
            Role::Upstream => filter.source_system = Some(p.subject.clone()),
            _ => filter.received_by_any = Some(self.organs_within(&p.org)),
        }
        if !req.received_by.is_empty() {
            if self.reference.tree.get(&req.received_by).is_none() {
                return Err(Status::invalid_argument(format!(
                    "received_by: organ {:?} is not in the organisation tree",
                    req.received_by
                )));
            }
            if let Some(scope) = &filter.received_by_any
                && !scope.contains(&req.received_by)
            {
                return Err(Status::permission_denied(format!(
                    "received_by: {} is outside the reach of {}",
                    req.received_by, p.org
                )));
            }
            filter.received_by_any = Some(vec![req.received_by.clone()]);
        }
        if req.channel != 0 {
            let c = channel_from_pb(req.channel)
                .ok_or_else(|| Status::invalid_argument("channel: unknown value"))?;
            filter.channel = Some(c.as_str().to_owned());
        }
        if !req.category_prefix.is_empty() {
            filter.category_prefix = Some(req.category_prefix.clone());
        }
        filter.only_group = req.only_group;
        filter.only_leapfrog = req.only_leapfrog;
        filter.only_repeat = req.only_repeat;
        filter.received_from = req.received_from.as_ref().and_then(from_ts);
        filter.received_to = req.received_to.as_ref().and_then(from_ts);
        let size = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = if req.page_token.is_empty() {
            None
        } else {
            Some(decode_page_token(&req.page_token)?)
        };
        let mut cases = self
            .store
            .list_cases(&filter, after, size + 1)
            .await
            .map_err(internal)?;
        let next_page_token = if cases.len() > size as usize {
            cases.truncate(size as usize);
            cases.last().map(encode_page_token).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListCasesResponse {
            cases: cases.iter().map(summary).collect(),
            next_page_token,
        }))
    }

    async fn lookup_by_query_code(
        &self,
        request: Request<pb::LookupByQueryCodeRequest>,
    ) -> Result<Response<pb::LookupByQueryCodeResponse>, Status> {
        principal(&request)?;
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
            .ok_or_else(|| Status::not_found("query_code: no case has this query code (查询码)"))?;
        let organ_name = self
            .reference
            .tree
            .get(&case.received_by)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| case.received_by.clone());
        Ok(Response::new(pb::LookupByQueryCodeResponse {
            case_number: case.case_number,
            status: status_to_pb(&case.status) as i32,
            received_at: Some(ts(case.received_at)),
            registered_at: Some(ts(case.registered_at)),
            received_by_name: organ_name,
            title: case.title,
        }))
    }

    async fn get_petitioner_history(
        &self,
        request: Request<pb::GetPetitionerHistoryRequest>,
    ) -> Result<Response<pb::GetPetitionerHistoryResponse>, Status> {
        let p = principal(&request)?.clone();
        if !p.may_see_personal_data() {
            return Err(Status::permission_denied(format!(
                "role {} may not look petitioners up by identity",
                p.role
            )));
        }
        let req = request.into_inner();
        let id_type = id_type_from_pb(req.id_type)
            .ok_or_else(|| Status::invalid_argument("id_type: required"))?;
        let number = match id_type {
            IdType::ResidentId => {
                let today = self.clock.now().date_naive();
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
        tracing::info!(target: "audit", subject = %p.subject, org = %p.org, "petitioner history looked up");
        let hash = self.cipher.id_hash(id_type.as_str(), &number);
        let cases = self
            .store
            .cases_of_petitioner(&hash)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::GetPetitionerHistoryResponse {
            cases: cases
                .iter()
                .filter(|c| self.can_see(&p, c))
                .map(summary)
                .collect(),
        }))
    }
}
