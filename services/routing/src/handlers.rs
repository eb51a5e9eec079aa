//! `petition.v1.RoutingService`: the department inbox and the bureau's routing desk. Who may
//! see and do what is the access policy's to say; what the law allows and when is the
//! workflow's. Every command takes one path: load, gate, replay, change, save.

use crate::convert::{assignment, mode_from_pb, reply_from_pb, service_mode_from_pb, view_from_pb};
use crate::model::{AssignmentRecord, AssignmentState, ServiceRecord};
use crate::store::{Bucket, InboxQuery, RequestId, RoutingStore, StoreError};
use crate::workflow::{self, Refusal, RoutingPolicy};
use chrono::{DateTime, Utc};
use pb::routing_service_server::RoutingService;
use petition_auth::{CaseFacts, Duty, Principal, principal};
use petition_domain::calendar::HolidayCalendar;
use petition_domain::validation::shown;
use petition_events::OutboxMessage;
use petition_grpc::convert::{from_ts, recusal_reason_from_pb, recusal_reason_to_pb, ts};
use petition_grpc::page::{binding, page_size};
use petition_grpc::{check_input, denied};
use petition_host::Shared;
use petition_proto::v1 as pb;
use tonic::{Request, Response, Status};

const MAX_REASON_CHARS: usize = 2_000;
/// a member of staff's name as a token carries it
const MAX_SUBJECT_CHARS: usize = 200;
const MAX_REPLY_CHARS: usize = 20_000;
const NO_SUCH_CASE: &str = "case_id: no routed case with that id";

pub struct RoutingGrpc {
    pub shared: Shared,
    pub store: RoutingStore,
    pub policy: RoutingPolicy,
}

/// What the access policy needs to know of a routed case.
fn facts(r: &AssignmentRecord) -> CaseFacts<'_> {
    CaseFacts {
        received_by: &r.received_by,
        holder: Some(&r.organ),
        bureau: Some(&r.forwarding_bureau),
        accused_organ: r.accused_organ.as_deref(),
        source_system: None,
        recused: &r.recused,
    }
}

fn internal(e: StoreError) -> Status {
    petition_grpc::store_status(e, "routing")
}

/// The one mapping from a broken rule to a status.
fn refused(r: Refusal) -> Status {
    match r {
        Refusal::Invalid(m) => Status::invalid_argument(m),
        Refusal::WrongState(m) | Refusal::WindowClosed(m) => Status::failed_precondition(m),
    }
}

fn category_prefix(p: &str) -> Result<Option<String>, Status> {
    if p.is_empty() {
        return Ok(None);
    }
    if !p.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(Status::invalid_argument(
            "category_prefix: a category code such as 01 or 01.04 (digits and dots)",
        ));
    }
    Ok(Some(p.to_owned()))
}

/// The member of staff a recusal names, as their token names them.
fn recusal_subject(subject: &str) -> Result<&str, Status> {
    match subject.trim() {
        "" => Err(Status::invalid_argument(
            "subject: required; the member of staff out of the case (回避, Art. 28 ¶3), as their token names them",
        )),
        s => Ok(s),
    }
}

fn cursor(due: i64, case_id: &str) -> String {
    format!("{due}:{case_id}")
}

fn parse_cursor(text: &str) -> Option<(i64, String)> {
    text.split_once(':')
        .and_then(|(d, id)| Some((d.parse().ok()?, id.to_owned())))
}

impl RoutingGrpc {
    fn cx<'a>(
        &'a self,
        calendar: &'a HolidayCalendar,
        p: &'a Principal,
        now: DateTime<Utc>,
    ) -> workflow::Ctx<'a> {
        workflow::Ctx {
            calendar,
            tree: &self.shared.reference.tree,
            policy: &self.policy,
            now,
            actor: &p.subject,
        }
    }

    fn bucket(r: &AssignmentRecord, now: DateTime<Utc>) -> pb::InboxBucket {
        if !workflow::in_inbox(r) {
            return pb::InboxBucket::Done;
        }
        if r.due_at.is_some_and(|d| d <= now) {
            return pb::InboxBucket::Overdue;
        }
        match r.state {
            AssignmentState::AwaitingAcceptance => pb::InboxBucket::ToClaim,
            _ => pb::InboxBucket::ToDo,
        }
    }

    fn to_pb(&self, r: &AssignmentRecord) -> pb::Assignment {
        assignment(
            r,
            Self::bucket(r, self.shared.clock.now()),
            &self.shared.reference.calendar.current(),
        )
    }

    fn check_organ(&self, field: &str, organ: &str) -> Result<(), Status> {
        if self.shared.reference.tree.get(organ).is_none() {
            return Err(Status::invalid_argument(format!(
                "{field}: organ {} is not in the organisation tree",
                shown(organ)
            )));
        }
        Ok(())
    }

    /// The stored case, before any question of who may see it.
    async fn find(&self, p: &Principal, case_id: &str) -> Result<AssignmentRecord, Status> {
        let case_id = petition_grpc::case_id("case_id", case_id)?;
        self.shared.access.may_read_cases(p).map_err(denied)?;
        self.store
            .get(&case_id.to_string())
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_CASE))
    }

    /// Whether `p` may see `r`: for the accused side exactly the answer for a case that does
    /// not exist (Art. 30 ¶3).
    fn visible(&self, p: &Principal, r: &AssignmentRecord) -> Result<(), Status> {
        petition_grpc::case_access(self.shared.access.view(p, &facts(r)), p, NO_SUCH_CASE)
    }

    /// Whether a retry may be answered with the case as it is now (see
    /// `petition_grpc::retry_access`).
    fn retry_visible(&self, p: &Principal, r: &AssignmentRecord) -> Result<(), Status> {
        petition_grpc::retry_access(self.shared.access.view(p, &facts(r)), NO_SUCH_CASE)
    }

    async fn load(&self, p: &Principal, case_id: &str) -> Result<AssignmentRecord, Status> {
        let r = self.find(p, case_id).await?;
        self.visible(p, &r)?;
        Ok(r)
    }

    /// Every command's path: find the case; answer a retry of a request this organ already
    /// applied to it (even when the case has since left its reach: a retried transfer must
    /// succeed); check who may see and who may act (`duty`); apply `change`; save the result
    /// with the event `event` builds.
    async fn command(
        &self,
        p: &Principal,
        case_id: &str,
        request: Option<RequestId<'_>>,
        duty: Duty,
        change: impl Fn(&AssignmentRecord, workflow::Ctx<'_>) -> Result<AssignmentRecord, Refusal>,
        event: impl Fn(&AssignmentRecord, DateTime<Utc>) -> OutboxMessage,
    ) -> Result<Response<pb::Assignment>, Status> {
        // The case before the request id, never after: a first copy of this request committed
        // in between then makes this one's write conflict, and the conflict finds the retry;
        // read after, the case would already be changed and the change refused.
        let r = self.find(p, case_id).await?;
        let applied = match request {
            Some(req) => self.store.applied_request(req).await.map_err(internal)?,
            None => None,
        };
        if applied.as_deref() == Some(r.case_id.as_str()) {
            // Read again: the first copy of this request may have been applied after `r` was
            // read, and the retry is answered with what it did.
            let now = self.find(p, case_id).await?;
            self.retry_visible(p, &now)?;
            return Ok(Response::new(self.to_pb(&now)));
        }
        self.visible(p, &r)?;
        self.shared
            .access
            .may_act(p, &facts(&r), duty)
            .map_err(denied)?;
        if let (Some(req), Some(_)) = (request, applied) {
            return Err(petition_grpc::request_id_reused(req.id, &p.org));
        }
        // The change is a pure function of the record: when the case changed meanwhile (a
        // decision of supervision was applied to it), read it again, check again, and apply
        // the change afresh rather than hand the caller a conflict.
        let mut r = r;
        for _ in 0..5 {
            let now = self.shared.clock.now();
            let calendar = self.shared.reference.calendar.current();
            let next = change(&r, self.cx(&calendar, p, now)).map_err(refused)?;
            let msg = event(&next, now).by(&p.subject, &p.org);
            match self.store.update(&next, &msg, request, now).await {
                Ok(()) => {
                    self.shared.relay_wake.notify_one();
                    return Ok(Response::new(self.to_pb(&next)));
                }
                Err(StoreError::Conflict) => {
                    r = self
                        .store
                        .get(&r.case_id)
                        .await
                        .map_err(internal)?
                        .ok_or_else(|| Status::not_found(NO_SUCH_CASE))?;
                    // The change that got in first may be this request's own twin (a retry
                    // sent before the first answer): then it is answered, not refused.
                    if self
                        .store
                        .applied_to(request, &r.case_id)
                        .await
                        .map_err(internal)?
                    {
                        self.retry_visible(p, &r)?;
                        return Ok(Response::new(self.to_pb(&r)));
                    }
                    self.visible(p, &r)?;
                    self.shared
                        .access
                        .may_act(p, &facts(&r), duty)
                        .map_err(denied)?;
                }
                // A concurrent retry of this very request was applied first: answer as a
                // retry is answered. Any other holder of the id is another request.
                Err(StoreError::DuplicateRequest)
                    if self
                        .store
                        .applied_to(request, &r.case_id)
                        .await
                        .map_err(internal)? =>
                {
                    let now = self.find(p, &r.case_id).await?;
                    self.retry_visible(p, &now)?;
                    return Ok(Response::new(self.to_pb(&now)));
                }
                Err(e) => return Err(internal(e)),
            }
        }
        Err(internal(StoreError::Conflict))
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
        self.shared.access.may_work_inbox(&p).map_err(denied)?;
        let bucket = match pb::InboxBucket::try_from(req.bucket) {
            Ok(pb::InboxBucket::Unspecified) => Bucket::All,
            Ok(pb::InboxBucket::ToClaim) => Bucket::ToClaim,
            Ok(pb::InboxBucket::ToDo) => Bucket::ToDo,
            Ok(pb::InboxBucket::Overdue) => Bucket::Overdue,
            Ok(pb::InboxBucket::Done) => {
                return Err(Status::invalid_argument(
                    "bucket: 已办 (done) cases are in no inbox; read one with GetAssignment",
                ));
            }
            Err(_) => return Err(Status::invalid_argument("bucket: unknown value")),
        };
        let size = page_size(req.page_size);
        let bound = binding(
            &p,
            &pb::ListInboxRequest {
                page_size: 0,
                page_token: String::new(),
                ..req.clone()
            },
        );
        let after = self
            .shared
            .pages
            .after(&bound, &req.page_token, parse_cursor)?;
        let scope = self.shared.access.list_scope(&p);
        let mut items = self
            .store
            .inbox(&InboxQuery {
                organ: p.org.clone(),
                bucket,
                now: self.shared.clock.now(),
                category_prefix: category_prefix(&req.category_prefix)?,
                hidden_accused: scope.hidden_accused,
                recused: scope.recused,
                after,
                limit: size + 1,
            })
            .await
            .map_err(internal)?;
        let next_page_token = self.shared.pages.next_page(&bound, &mut items, size, |r| {
            cursor(
                r.due_at.map_or(i64::MAX, |d| d.timestamp_micros()),
                &r.case_id,
            )
        });
        Ok(Response::new(pb::ListInboxResponse {
            items: items.iter().map(|r| self.to_pb(r)).collect(),
            next_page_token,
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
        check_input(&[], &req.request_id)?;
        self.command(
            &p,
            &req.case_id,
            RequestId::of(&p.org, "AcceptCase", &req.request_id),
            Duty::Holder,
            workflow::accept,
            |r, now| crate::events::accepted(r, &self.shared.reference.calendar.current(), now),
        )
        .await
    }

    async fn object_to_assignment(
        &self,
        request: Request<pb::ObjectToAssignmentRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(
            &[("reason", &req.reason, MAX_REASON_CHARS)],
            &req.request_id,
        )?;
        self.command(
            &p,
            &req.case_id,
            RequestId::of(&p.org, "ObjectToAssignment", &req.request_id),
            Duty::Holder,
            |r, cx| workflow::object(r, &req.reason, cx),
            crate::events::objection_raised,
        )
        .await
    }

    async fn resolve_objection(
        &self,
        request: Request<pb::ResolveObjectionRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(
            &[("reason", &req.reason, MAX_REASON_CHARS)],
            &req.request_id,
        )?;
        if !req.new_organ.is_empty() {
            self.check_organ("new_organ", &req.new_organ)?;
        }
        self.command(
            &p,
            &req.case_id,
            RequestId::of(&p.org, "ResolveObjection", &req.request_id),
            Duty::Bureau,
            |r, cx| {
                workflow::resolve_objection(
                    r,
                    req.agree,
                    Some(req.new_organ.as_str()),
                    req.reason.trim(),
                    cx,
                )
            },
            |r, now| crate::events::objection_resolved(r, req.agree, now),
        )
        .await
    }

    async fn list_triage(
        &self,
        request: Request<pb::ListTriageRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.shared.access.may_triage(&p).map_err(denied)?;
        let size = page_size(req.page_size);
        let bound = binding(&p, &pb::ListTriageRequest::default());
        let after = self
            .shared
            .pages
            .after(&bound, &req.page_token, parse_cursor)?;
        let scope = self.shared.access.list_scope(&p);
        let mut items = self
            .store
            .triage(
                &p.org,
                &scope.hidden_accused,
                scope.recused.as_deref(),
                after,
                size + 1,
            )
            .await
            .map_err(internal)?;
        let next_page_token = self.shared.pages.next_page(&bound, &mut items, size, |r| {
            cursor(r.route_due.timestamp_micros(), &r.case_id)
        });
        Ok(Response::new(pb::ListInboxResponse {
            items: items.iter().map(|r| self.to_pb(r)).collect(),
            next_page_token,
        }))
    }

    async fn route_manually(
        &self,
        request: Request<pb::RouteManuallyRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(
            &[("reason", &req.reason, MAX_REASON_CHARS)],
            &req.request_id,
        )?;
        self.check_organ("organ", &req.organ)?;
        let mode = mode_from_pb(req.mode)
            .ok_or_else(|| Status::invalid_argument("mode: forward (转送) or assign (交办)"))?;
        self.command(
            &p,
            &req.case_id,
            RequestId::of(&p.org, "RouteManually", &req.request_id),
            Duty::Bureau,
            |r, cx| workflow::route_manually(r, &req.organ, mode, &req.reason, cx),
            crate::events::routed,
        )
        .await
    }

    async fn transfer_case(
        &self,
        request: Request<pb::TransferCaseRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(
            &[("reason", &req.reason, MAX_REASON_CHARS)],
            &req.request_id,
        )?;
        self.check_organ("organ", &req.organ)?;
        self.command(
            &p,
            &req.case_id,
            RequestId::of(&p.org, "TransferCase", &req.request_id),
            Duty::Holder,
            |r, cx| workflow::transfer(r, &req.organ, &req.reason, cx),
            crate::events::routed,
        )
        .await
    }

    async fn submit_reply(
        &self,
        request: Request<pb::SubmitReplyRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(
            &[
                ("text", &req.text, MAX_REPLY_CHARS),
                ("legal_basis", &req.legal_basis, MAX_REASON_CHARS),
            ],
            &req.request_id,
        )?;
        let service = match &req.service {
            None => None,
            Some(s) => {
                let mode = service_mode_from_pb(s.mode).ok_or_else(|| {
                    Status::invalid_argument("service.mode: in person, post or other (送达方式)")
                })?;
                let served_at = s.served_at.as_ref().and_then(from_ts).ok_or_else(|| {
                    Status::invalid_argument(
                        "service.served_at: required; it starts the review window (Art. 35)",
                    )
                })?;
                if s.signed && s.refused {
                    return Err(Status::invalid_argument(
                        "service: signed and refused cannot both be true",
                    ));
                }
                Some(ServiceRecord {
                    mode,
                    served_at_micros: served_at.timestamp_micros(),
                    signed: s.signed,
                    refused: s.refused,
                    view: view_from_pb(s.view),
                })
            }
        };
        self.command(
            &p,
            &req.case_id,
            RequestId::of(&p.org, "SubmitReply", &req.request_id),
            Duty::Holder,
            |r, cx| {
                workflow::submit_reply(
                    r,
                    workflow::Reply {
                        outcome: reply_from_pb(req.outcome),
                        text: &req.text,
                        legal_basis: &req.legal_basis,
                        service: service.clone(),
                    },
                    cx,
                )
            },
            crate::events::answered,
        )
        .await
    }

    async fn request_extension(
        &self,
        request: Request<pb::RequestExtensionRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(
            &[("reason", &req.reason, MAX_REASON_CHARS)],
            &req.request_id,
        )?;
        self.command(
            &p,
            &req.case_id,
            RequestId::of(&p.org, "RequestExtension", &req.request_id),
            Duty::Holder,
            |r, cx| workflow::request_extension(r, req.days, &req.reason, cx),
            crate::events::extension_requested,
        )
        .await
    }

    async fn submit_completion_report(
        &self,
        request: Request<pb::SubmitCompletionReportRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("text", &req.text, MAX_REPLY_CHARS)], &req.request_id)?;
        self.command(
            &p,
            &req.case_id,
            RequestId::of(&p.org, "SubmitCompletionReport", &req.request_id),
            Duty::Holder,
            |r, cx| workflow::submit_completion_report(r, &req.text, cx),
            crate::events::completion_reported,
        )
        .await
    }

    async fn record_recusal(
        &self,
        request: Request<pb::RecordRecusalRequest>,
    ) -> Result<Response<pb::Recusal>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(
            &[("subject", &req.subject, MAX_SUBJECT_CHARS)],
            &req.request_id,
        )?;
        let subject = recusal_subject(&req.subject)?;
        let reason = recusal_reason_from_pb(req.reason).ok_or_else(|| {
            Status::invalid_argument(
                "reason: relative (近亲属), party (当事人), accused (被反映人) or other_interest (其他利害关系)",
            )
        })?;
        let organ = match req.organ.trim() {
            "" => p.org.clone(),
            o => {
                self.check_organ("organ", o)?;
                o.to_owned()
            }
        };
        let r = self.find(&p, &req.case_id).await?;
        let answer = |(reason, at): (petition_domain::RecusalReason, DateTime<Utc>)| {
            Response::new(pb::Recusal {
                case_id: r.case_id.clone(),
                subject: subject.to_owned(),
                reason: recusal_reason_to_pb(reason) as i32,
                recorded_at: Some(ts(at)),
            })
        };
        // A retry is answered before anything else: a member of staff who took themselves out
        // of the case no longer sees it, and their retry must still succeed.
        let request = RequestId::of(&p.org, "RecordRecusal", &req.request_id);
        if let Some(req_id) = request
            && let Some(applied) = self.store.applied_request(req_id).await.map_err(internal)?
        {
            return match self
                .store
                .recusal(&applied, subject)
                .await
                .map_err(internal)?
            {
                Some(recorded) if applied == r.case_id => Ok(answer(recorded)),
                _ => Err(petition_grpc::request_id_reused(req_id.id, &p.org)),
            };
        }
        self.visible(&p, &r)?;
        self.shared
            .access
            .may_record_recusal(&p, &facts(&r), subject, &organ)
            .map_err(denied)?;
        let now = self.shared.clock.now();
        let msg = crate::events::recusal_recorded(&r, subject, reason, now).by(&p.subject, &p.org);
        match self
            .store
            .record_recusal(&r.case_id, subject, reason, &msg, request, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                // The first copy of this very request, sent at the same moment, may have
                // recorded it: a retry, answered as one.
                if self
                    .store
                    .applied_to(request, &r.case_id)
                    .await
                    .map_err(internal)?
                    && let Some(stored) = self
                        .store
                        .recusal(&r.case_id, subject)
                        .await
                        .map_err(internal)?
                {
                    return Ok(answer(stored));
                }
                return Err(Status::already_exists(format!(
                    "subject: {} is out of this case already (回避)",
                    shown(subject)
                )));
            }
            // A concurrent retry of this very request got in first: answered as a retry is.
            Err(StoreError::DuplicateRequest) => {
                return match self
                    .store
                    .recusal(&r.case_id, subject)
                    .await
                    .map_err(internal)?
                {
                    Some(stored) => Ok(answer(stored)),
                    None => Err(petition_grpc::request_id_reused(&req.request_id, &p.org)),
                };
            }
            Err(e) => return Err(internal(e)),
        }
        self.shared.relay_wake.notify_one();
        Ok(answer((reason, now)))
    }

    async fn lift_recusal(
        &self,
        request: Request<pb::LiftRecusalRequest>,
    ) -> Result<Response<pb::Recusal>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(
            &[
                ("subject", &req.subject, MAX_SUBJECT_CHARS),
                ("why", &req.why, MAX_REASON_CHARS),
            ],
            &req.request_id,
        )?;
        let subject = recusal_subject(&req.subject)?;
        let why = req.why.trim();
        if why.is_empty() {
            return Err(Status::invalid_argument(
                "why: required; why the recusal (回避) was recorded in error, for the audit log",
            ));
        }
        self.shared.access.may_administer(&p).map_err(denied)?;
        let r = self.find(&p, &req.case_id).await?;
        let retry = || {
            Response::new(pb::Recusal {
                case_id: r.case_id.clone(),
                subject: subject.to_owned(),
                // lifted: what it was is in the audit log
                reason: pb::RecusalReason::Unspecified as i32,
                recorded_at: None,
            })
        };
        let request = RequestId::of(&p.org, "LiftRecusal", &req.request_id);
        if let Some(req_id) = request
            && let Some(applied) = self.store.applied_request(req_id).await.map_err(internal)?
        {
            // the same request only if it lifted this person's recusal from this case
            let same = applied == r.case_id
                && self
                    .store
                    .recusal_lifted(&r.case_id, subject)
                    .await
                    .map_err(internal)?;
            return if same {
                Ok(retry())
            } else {
                Err(petition_grpc::request_id_reused(req_id.id, &p.org))
            };
        }
        self.visible(&p, &r)?;
        let now = self.shared.clock.now();
        let msg = crate::events::recusal_lifted(&r, subject, why, now).by(&p.subject, &p.org);
        match self
            .store
            .lift_recusal(&r.case_id, subject, &msg, request, now)
            .await
        {
            Ok(Some((reason, at))) => {
                self.shared.relay_wake.notify_one();
                Ok(Response::new(pb::Recusal {
                    case_id: r.case_id.clone(),
                    subject: subject.to_owned(),
                    reason: recusal_reason_to_pb(reason) as i32,
                    recorded_at: Some(ts(at)),
                }))
            }
            Ok(None) => {
                // the first copy of this very request, sent at the same moment, may have lifted it
                if self
                    .store
                    .applied_to(request, &r.case_id)
                    .await
                    .map_err(internal)?
                {
                    return Ok(retry());
                }
                Err(Status::not_found(format!(
                    "subject: {} is not out of this case; there is no recusal (回避) to lift",
                    shown(subject)
                )))
            }
            // a concurrent retry of this very request got in first
            Err(StoreError::DuplicateRequest) => Ok(retry()),
            Err(e) => Err(internal(e)),
        }
    }
}
