//! `petition.v1.RoutingService`: the department inbox and the bureau's routing desk.

use crate::consumer::{ROUTING_STREAM, routed_event};
use crate::store::{AssignmentRecord, RoutingStore, StoreError};
use crate::workflow::{
    self, MODE_ASSIGN, MODE_FORWARD, Refusal, RoutingPolicy, STATE_ACCEPTED, STATE_AWAITING,
    STATE_OBJECTED, STATE_TRIAGE,
};
use chrono::{DateTime, Utc};
use pb::routing_service_server::RoutingService;
use petition_auth::{Principal, Role, principal};
use petition_domain::calendar::deadline;
use petition_domain::{Clock, Diversion, TypeOfMatter, limits};
use petition_grpc::convert::{self, ts};
use petition_grpc::reference::Reference;
use petition_proto::v1 as pb;
use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

pub struct RoutingGrpc {
    pub store: Arc<dyn RoutingStore>,
    pub reference: Arc<Reference>,
    pub policy: RoutingPolicy,
    pub clock: Arc<dyn Clock>,
    pub relay_wake: Arc<Notify>,
}

pub fn mode_to_pb(m: Option<&str>) -> pb::HandlingMode {
    match m {
        Some(MODE_FORWARD) => pb::HandlingMode::Forward,
        Some(MODE_ASSIGN) => pb::HandlingMode::Assign,
        _ => pb::HandlingMode::Unspecified,
    }
}

fn state_to_pb(s: &str) -> pb::AssignmentState {
    match s {
        workflow::STATE_AWAITING => pb::AssignmentState::AwaitingAcceptance,
        workflow::STATE_ACCEPTED => pb::AssignmentState::Accepted,
        workflow::STATE_OBJECTED => pb::AssignmentState::Objected,
        workflow::STATE_DIVERTED => pb::AssignmentState::Diverted,
        workflow::STATE_LINKED => pb::AssignmentState::Linked,
        workflow::STATE_TRIAGE => pb::AssignmentState::Triage,
        workflow::STATE_ANSWERED => pb::AssignmentState::Answered,
        workflow::STATE_COMPLETED => pb::AssignmentState::Completed,
        _ => pb::AssignmentState::Unspecified,
    }
}

fn outcome_to_pb(s: &str) -> pb::RouteOutcome {
    match s {
        "sent" => pb::RouteOutcome::Sent,
        "diverted" => pb::RouteOutcome::Diverted,
        "linked" => pb::RouteOutcome::Linked,
        "triage" => pb::RouteOutcome::Triage,
        _ => pb::RouteOutcome::Unspecified,
    }
}

fn internal(e: StoreError) -> Status {
    match e {
        StoreError::Conflict => {
            Status::aborted("the case changed while this request was applied; read it and retry")
        }
        e => {
            tracing::error!(error = %e, "routing store failed");
            Status::internal("storage failure; the request was not completed, retry later")
        }
    }
}

fn refused(r: Refusal) -> Status {
    match r {
        Refusal::Invalid(m) => Status::invalid_argument(m),
        Refusal::WrongState(m) | Refusal::WindowClosed(m) => Status::failed_precondition(m),
    }
}

impl RoutingGrpc {
    fn cx<'a>(&'a self, p: &'a Principal, now: DateTime<Utc>) -> workflow::Ctx<'a> {
        workflow::Ctx {
            calendar: &self.reference.calendar,
            policy: &self.policy,
            now,
            actor: &p.subject,
        }
    }

    /// Due date that orders the inbox: the notice period while awaiting acceptance (Art. 23
    /// ¶3), then the earlier of the reporting deadline and the handling clock.
    fn due(&self, r: &AssignmentRecord) -> Option<DateTime<Utc>> {
        match r.state.as_str() {
            STATE_AWAITING => r.organ_received_at.map(|t| {
                deadline(
                    t,
                    limits::NOTICE_BY_RECEIVING_ORGAN.period,
                    &self.reference.calendar,
                    self.policy.counting,
                )
                .due
            }),
            STATE_ACCEPTED => match (r.report_due, r.handling_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            STATE_TRIAGE => Some(r.route_due),
            _ => None,
        }
    }

    fn bucket(&self, r: &AssignmentRecord, now: DateTime<Utc>) -> pb::InboxBucket {
        if self.due(r).is_some_and(|d| d <= now) {
            return pb::InboxBucket::Overdue;
        }
        match r.state.as_str() {
            STATE_AWAITING => pb::InboxBucket::ToClaim,
            _ => pb::InboxBucket::ToDo,
        }
    }

    fn to_pb(&self, r: &AssignmentRecord) -> pb::Assignment {
        let now = self.clock.now();
        pb::Assignment {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
            organ: r.organ.clone(),
            outcome: outcome_to_pb(&r.outcome) as i32,
            state: state_to_pb(&r.state) as i32,
            mode: mode_to_pb(r.mode.as_deref()) as i32,
            rule: r.rule.clone(),
            notice: r.notice.clone(),
            hops: r.hops.clone(),
            linked_case_number: r.linked_case_number.clone().unwrap_or_default(),
            diversion: convert::diversion_to_pb(r.diversion.as_deref().and_then(Diversion::parse))
                as i32,
            type_of_matter: convert::type_to_pb(TypeOfMatter::parse(&r.type_of_matter)) as i32,
            category: r.category.clone(),
            problem_location: r.problem_location.clone(),
            channel: convert::channel_str_to_pb(&r.channel) as i32,
            forwarding_bureau: r.forwarding_bureau.clone(),
            received_at: Some(ts(r.received_at)),
            route_due: Some(ts(r.route_due)),
            organ_received_at: r.organ_received_at.map(ts),
            objection_due: r.objection_due.map(ts),
            accepted_at: r.accepted_at.map(ts),
            handling_due: r.handling_due.map(ts),
            report_due: r.report_due.map(ts),
            objection_reason: r.objection_reason.clone().unwrap_or_default(),
            flags: Some(pb::CaseFlags {
                group: r.flag_group,
                leapfrog: r.flag_leapfrog,
                repeat: r.flag_repeat,
                ..Default::default()
            }),
            history: r
                .history
                .iter()
                .map(|s| pb::RouteStep {
                    at: DateTime::from_timestamp_micros(s.at_micros).map(ts),
                    from_organ: s.from_organ.clone(),
                    to_organ: s.to_organ.clone(),
                    rule: s.rule.clone(),
                    actor: s.actor.clone(),
                })
                .collect(),
            bucket: self.bucket(r, now) as i32,
            reply_outcome: match r.reply_outcome.as_deref() {
                Some("supported") => pb::ReplyOutcome::Supported,
                Some("explained") => pb::ReplyOutcome::Explained,
                Some("not_supported") => pb::ReplyOutcome::NotSupported,
                _ => pb::ReplyOutcome::Unspecified,
            } as i32,
            replied_at: r.replied_at.map(ts),
            served_at: r.served_at.map(ts),
            extension_days: r.extension_days.unwrap_or_default() as u32,
            extension_reason: r.extension_reason.clone().unwrap_or_default(),
            completion_reported_at: r.completion_reported_at.map(ts),
        }
    }

    /// Art. 30 ¶3: the accused party's organ, and everyone inside it, never sees the case.
    fn is_accused_side(&self, p: &Principal, r: &AssignmentRecord) -> bool {
        r.accused_organ
            .as_deref()
            .is_some_and(|a| self.reference.tree.is_same_or_above(a, &p.org))
    }

    fn is_bureau_of(&self, p: &Principal, r: &AssignmentRecord) -> bool {
        matches!(p.role, Role::Clerk | Role::Supervisor | Role::Leader)
            && self
                .reference
                .tree
                .is_same_or_above(&p.org, &r.forwarding_bureau)
    }

    fn can_see(&self, p: &Principal, r: &AssignmentRecord) -> bool {
        if p.role == Role::Admin {
            return true;
        }
        if self.is_accused_side(p, r) || matches!(p.role, Role::Analyst | Role::Upstream) {
            return false;
        }
        p.org == r.organ || self.is_bureau_of(p, r)
    }

    async fn load(&self, p: &Principal, case_id: &str) -> Result<AssignmentRecord, Status> {
        if case_id.trim().is_empty() {
            return Err(Status::invalid_argument("case_id: required"));
        }
        let r = self
            .store
            .get(case_id.trim())
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("case_id: no routed case {case_id}")))?;
        if !self.can_see(p, &r) {
            // The accused side is told nothing, not even that the case exists.
            if self.is_accused_side(p, &r) {
                return Err(Status::not_found(format!(
                    "case_id: no routed case {case_id}"
                )));
            }
            return Err(Status::permission_denied(format!(
                "case {} is held by {}, outside the reach of {} ({})",
                r.case_number, r.organ, p.org, p.role
            )));
        }
        Ok(r)
    }

    /// A retried request id answers with the case as it stands; reused for another case it is
    /// refused.
    async fn replayed(
        &self,
        request_id: &str,
        case_id: &str,
    ) -> Result<Option<AssignmentRecord>, Status> {
        if request_id.is_empty() {
            return Ok(None);
        }
        match self
            .store
            .applied_request(request_id)
            .await
            .map_err(internal)?
        {
            None => Ok(None),
            Some(c) if c == case_id => Ok(self.store.get(case_id).await.map_err(internal)?),
            Some(c) => Err(Status::already_exists(format!(
                "request_id {request_id:?} was already used for case {c}"
            ))),
        }
    }

    async fn save(
        &self,
        next: AssignmentRecord,
        event: pb::EventEnvelope,
        request_id: &str,
    ) -> Result<Response<pb::Assignment>, Status> {
        let msg = petition_events::to_outbox(ROUTING_STREAM, &event);
        self.store
            .update(&next, &msg, Some(request_id).filter(|r| !r.is_empty()))
            .await
            .map_err(internal)?;
        self.relay_wake.notify_one();
        Ok(Response::new(self.to_pb(&next)))
    }

    fn holder_only(&self, p: &Principal, r: &AssignmentRecord, what: &str) -> Result<(), Status> {
        let staff = matches!(
            p.role,
            Role::Handler | Role::Clerk | Role::Supervisor | Role::Leader
        );
        if p.role == Role::Admin || (staff && p.org == r.organ) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "only staff of {}, which holds case {}, may {what}",
                r.organ, r.case_number
            )))
        }
    }

    fn bureau_only(&self, p: &Principal, r: &AssignmentRecord, what: &str) -> Result<(), Status> {
        if p.role == Role::Admin || self.is_bureau_of(p, r) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "only the forwarding bureau {} may {what}",
                r.forwarding_bureau
            )))
        }
    }

    fn check_organ(&self, field: &str, organ: &str) -> Result<(), Status> {
        if self.reference.tree.get(organ).is_none() {
            return Err(Status::invalid_argument(format!(
                "{field}: organ {organ:?} is not in the organisation tree"
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RoutingService for RoutingGrpc {
    async fn list_inbox(
        &self,
        request: Request<pb::ListInboxRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        let want = pb::InboxBucket::try_from(req.bucket)
            .map_err(|_| Status::invalid_argument("bucket: unknown value"))?;
        let now = self.clock.now();
        let mut items: Vec<AssignmentRecord> = self
            .store
            .held_by(&p.org, &[STATE_AWAITING, STATE_ACCEPTED])
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|r| !self.is_accused_side(&p, r))
            .filter(|r| {
                req.category_prefix.is_empty()
                    || r.category == req.category_prefix
                    || r.category.starts_with(&format!("{}.", req.category_prefix))
            })
            .filter(|r| want == pb::InboxBucket::Unspecified || self.bucket(r, now) == want)
            .collect();
        items.sort_by_key(|r| {
            (
                self.due(r).unwrap_or(DateTime::<Utc>::MAX_UTC),
                r.case_number.clone(),
            )
        });
        Ok(Response::new(pb::ListInboxResponse {
            items: items.iter().map(|r| self.to_pb(r)).collect(),
        }))
    }

    async fn get_assignment(
        &self,
        request: Request<pb::GetAssignmentRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let r = self.load(&p, &request.get_ref().case_id).await?;
        Ok(Response::new(self.to_pb(&r)))
    }

    async fn accept_case(
        &self,
        request: Request<pb::AcceptCaseRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.command(
            &p,
            &req.case_id,
            &req.request_id,
            Gate::Holder,
            "accept it (受理)",
            workflow::accept,
            |r, now| {
                routing_event(
                    r,
                    "case.accepted",
                    now,
                    pb::event_envelope::Payload::CaseAccepted(pb::CaseAccepted {
                        case_id: r.case_id.clone(),
                        case_number: r.case_number.clone(),
                        organ: r.organ.clone(),
                        accepted_at: Some(ts(now)),
                        handling_due: r.handling_due.map(ts),
                    }),
                )
            },
        )
        .await
    }

    async fn object_to_assignment(
        &self,
        request: Request<pb::ObjectToAssignmentRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.command(
            &p,
            &req.case_id,
            &req.request_id,
            Gate::Holder,
            "object to it (异议)",
            |r, cx| workflow::object(r, &req.reason, cx),
            |r, now| {
                routing_event(
                    r,
                    "objection.raised",
                    now,
                    pb::event_envelope::Payload::ObjectionRaised(pb::ObjectionRaised {
                        case_id: r.case_id.clone(),
                        case_number: r.case_number.clone(),
                        organ: r.organ.clone(),
                        reason: req.reason.trim().to_owned(),
                    }),
                )
            },
        )
        .await
    }

    async fn resolve_objection(
        &self,
        request: Request<pb::ResolveObjectionRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        if !req.new_organ.is_empty() {
            self.check_organ("new_organ", &req.new_organ)?;
        }
        self.command(
            &p,
            &req.case_id,
            &req.request_id,
            Gate::Bureau,
            "resolve an objection",
            |r, cx| {
                workflow::resolve_objection(
                    r,
                    req.agree,
                    Some(req.new_organ.as_str()),
                    req.reason.trim(),
                    cx,
                )
            },
            |r, now| {
                // Agreeing with a new organ is a re-routing; anything else is just the answer.
                if req.agree && r.state == STATE_AWAITING {
                    routed_event(r, now)
                } else {
                    routing_event(
                        r,
                        "objection.resolved",
                        now,
                        pb::event_envelope::Payload::ObjectionResolved(pb::ObjectionResolved {
                            case_id: r.case_id.clone(),
                            case_number: r.case_number.clone(),
                            agreed: req.agree,
                            organ: r.organ.clone(),
                        }),
                    )
                }
            },
        )
        .await
    }

    async fn list_triage(
        &self,
        request: Request<pb::ListTriageRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let p = principal(&request)?.clone();
        if !matches!(
            p.role,
            Role::Clerk | Role::Supervisor | Role::Leader | Role::Admin
        ) {
            return Err(Status::permission_denied(format!(
                "role {} does not work the bureau's triage queue",
                p.role
            )));
        }
        let mut items = self
            .store
            .held_by(&p.org, &[STATE_TRIAGE, STATE_OBJECTED])
            .await
            .map_err(internal)?;
        // Objections wait at the forwarding bureau although the objecting organ holds the case.
        items.retain(|r| r.state == STATE_TRIAGE || r.forwarding_bureau == p.org);
        items.sort_by_key(|r| (r.route_due, r.case_number.clone()));
        Ok(Response::new(pb::ListInboxResponse {
            items: items.iter().map(|r| self.to_pb(r)).collect(),
        }))
    }

    async fn route_manually(
        &self,
        request: Request<pb::RouteManuallyRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.check_organ("organ", &req.organ)?;
        let mode = match pb::HandlingMode::try_from(req.mode) {
            Ok(pb::HandlingMode::Forward) => MODE_FORWARD,
            Ok(pb::HandlingMode::Assign) => MODE_ASSIGN,
            _ => {
                return Err(Status::invalid_argument(
                    "mode: forward (转送) or assign (交办)",
                ));
            }
        };
        self.command(
            &p,
            &req.case_id,
            &req.request_id,
            Gate::Bureau,
            "route it by hand",
            |r, cx| workflow::route_manually(r, &req.organ, mode, &req.reason, cx),
            routed_event,
        )
        .await
    }

    async fn transfer_case(
        &self,
        request: Request<pb::TransferCaseRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.check_organ("organ", &req.organ)?;
        self.command(
            &p,
            &req.case_id,
            &req.request_id,
            Gate::Holder,
            "transfer it",
            |r, cx| workflow::transfer(r, &req.organ, &req.reason, cx),
            routed_event,
        )
        .await
    }

    async fn submit_reply(
        &self,
        request: Request<pb::SubmitReplyRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        let outcome = match pb::ReplyOutcome::try_from(req.outcome) {
            Ok(pb::ReplyOutcome::Supported) => "supported",
            Ok(pb::ReplyOutcome::Explained) => "explained",
            Ok(pb::ReplyOutcome::NotSupported) => "not_supported",
            _ => "",
        };
        let service =
            match &req.service {
                None => None,
                Some(s) => {
                    let mode = match pb::ServiceMode::try_from(s.mode) {
                        Ok(pb::ServiceMode::InPerson) => "in_person",
                        Ok(pb::ServiceMode::Post) => "post",
                        Ok(pb::ServiceMode::Other) => "other",
                        _ => {
                            return Err(Status::invalid_argument(
                                "service.mode: in person, post or other (送达方式)",
                            ));
                        }
                    };
                    let served_at = s.served_at.as_ref().and_then(convert::from_ts).ok_or_else(|| {
                    Status::invalid_argument(
                        "service.served_at: required; it starts the review window (Art. 35)",
                    )
                })?;
                    if s.signed && s.refused {
                        return Err(Status::invalid_argument(
                            "service: signed and refused cannot both be true",
                        ));
                    }
                    let view = match pb::PetitionerView::try_from(s.view) {
                        Ok(pb::PetitionerView::Agrees) => "agrees",
                        Ok(pb::PetitionerView::Disagrees) => "disagrees",
                        _ => "no_view",
                    };
                    Some(crate::store::ServiceRecord {
                        mode: mode.into(),
                        served_at_micros: served_at.timestamp_micros(),
                        signed: s.signed,
                        refused: s.refused,
                        view: view.into(),
                    })
                }
            };
        self.command(
            &p,
            &req.case_id,
            &req.request_id,
            Gate::Holder,
            "reply to it",
            |r, cx| {
                workflow::submit_reply(
                    r,
                    workflow::Reply {
                        outcome,
                        text: &req.text,
                        legal_basis: &req.legal_basis,
                        service,
                    },
                    cx,
                )
            },
            |r, now| {
                routing_event(
                    r,
                    "case.answered",
                    now,
                    pb::event_envelope::Payload::CaseAnswered(pb::CaseAnswered {
                        case_id: r.case_id.clone(),
                        case_number: r.case_number.clone(),
                        organ: r.organ.clone(),
                        outcome: req.outcome,
                        replied_at: r.replied_at.map(ts),
                        served_at: r.served_at.map(ts),
                    }),
                )
            },
        )
        .await
    }

    async fn request_extension(
        &self,
        request: Request<pb::RequestExtensionRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.command(
            &p,
            &req.case_id,
            &req.request_id,
            Gate::Holder,
            "ask for an extension",
            |r, cx| workflow::request_extension(r, req.days, &req.reason, cx),
            |r, now| {
                routing_event(
                    r,
                    "extension.requested",
                    now,
                    pb::event_envelope::Payload::ExtensionRequested(pb::ExtensionRequested {
                        case_id: r.case_id.clone(),
                        case_number: r.case_number.clone(),
                        organ: r.organ.clone(),
                        days: req.days,
                        reason: req.reason.trim().to_owned(),
                    }),
                )
            },
        )
        .await
    }

    async fn submit_completion_report(
        &self,
        request: Request<pb::SubmitCompletionReportRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.command(
            &p,
            &req.case_id,
            &req.request_id,
            Gate::Holder,
            "report its completion",
            |r, cx| workflow::submit_completion_report(r, &req.text, cx),
            |r, now| {
                routing_event(
                    r,
                    "completion.reported",
                    now,
                    pb::event_envelope::Payload::CompletionReported(pb::CompletionReported {
                        case_id: r.case_id.clone(),
                        case_number: r.case_number.clone(),
                        organ: r.organ.clone(),
                        reported_at: Some(ts(now)),
                    }),
                )
            },
        )
        .await
    }
}

impl RoutingGrpc {
    /// Every command's path: load, check who may (`gate`), answer a retried request id,
    /// apply `change`, and save the result with the event `event` builds.
    #[allow(clippy::too_many_arguments)]
    async fn command(
        &self,
        p: &Principal,
        case_id: &str,
        request_id: &str,
        gate: Gate,
        what: &str,
        change: impl FnOnce(&AssignmentRecord, workflow::Ctx<'_>) -> Result<AssignmentRecord, Refusal>,
        event: impl FnOnce(&AssignmentRecord, DateTime<Utc>) -> pb::EventEnvelope,
    ) -> Result<Response<pb::Assignment>, Status> {
        let r = self.load(p, case_id).await?;
        match gate {
            Gate::Holder => self.holder_only(p, &r, what)?,
            Gate::Bureau => self.bureau_only(p, &r, what)?,
        }
        if let Some(done) = self.replayed(request_id, &r.case_id).await? {
            return Ok(Response::new(self.to_pb(&done)));
        }
        let now = self.clock.now();
        let next = change(&r, self.cx(p, now)).map_err(refused)?;
        let e = event(&next, now);
        self.save(next, e, request_id).await
    }
}

fn routing_event(
    r: &AssignmentRecord,
    kind: &str,
    now: DateTime<Utc>,
    payload: pb::event_envelope::Payload,
) -> pb::EventEnvelope {
    petition_events::envelope(&r.case_id, kind, crate::consumer::PRODUCER, now, payload)
}

/// Who may issue a command: the organ holding the case, or the bureau that forwarded it.
#[derive(Debug, Clone, Copy)]
enum Gate {
    Holder,
    Bureau,
}
