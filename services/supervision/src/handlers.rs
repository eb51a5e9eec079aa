//! `petition.v1.SupervisionService`: the clocks of a case, what an organ owes, the notices it
//! was sent, and the commands of supervision. Who may is the access policy's to say; what the
//! law allows and when is the workflow's. Every command takes one path: load, gate, replay,
//! change, save.

use crate::convert::{clock_kind_from_pb, clock_to_pb, entry_to_pb, notice_to_pb};
use crate::model::CaseFile;
use crate::settled::Settled;
use crate::store::{DueFilter, DueQuery, NoticeQuery, StoreError, SupervisionStore};
use crate::workflow::{self, Change, Ctx, Refusal};
use chrono::{DateTime, Days, Utc};
use pb::supervision_service_server::SupervisionService;
use petition_auth::{CaseFacts, Duty, Principal, principal};
use petition_domain::calendar::{HolidayCalendar, local_date};
use petition_domain::clocks::{ClockRules, ClockState};
use petition_domain::validation::shown;
use petition_grpc::convert::from_ts;
use petition_grpc::page::{binding, page_size};
use petition_grpc::{check_input, denied};
use petition_host::Shared;
use petition_proto::v1 as pb;
use petition_storage::requests::RequestId;
use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

const MAX_TEXT_CHARS: usize = 2_000;
const NO_SUCH_CASE: &str = "case_id: no case with that id is under supervision";

/// Who approves a holder's extension (Art. 34 leaves it to configuration here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExtensionApprover {
    /// the petition bureau that routes the case
    #[default]
    Bureau,
    /// leaders or supervisors of an organ above the holder
    Superior,
}

/// The notices a command wrote, handed from `apply` to its handler.
#[derive(Clone)]
struct Written(Vec<crate::model::NoticeRecord>);

pub struct SupervisionGrpc {
    pub shared: Shared,
    pub store: SupervisionStore,
    pub calendar: Settled,
    pub rules: ClockRules,
    pub approver: ExtensionApprover,
    /// a case repeated this many times is a backlog case (积案)
    pub backlog_repeats: u32,
    pub engine_wake: Arc<Notify>,
}

fn facts(f: &CaseFile) -> CaseFacts<'_> {
    CaseFacts {
        received_by: &f.case.received_by,
        holder: f.case.holder.as_deref(),
        bureau: f.case.bureau.as_deref(),
        accused_organ: f.case.accused_organ.as_deref(),
        source_system: None,
        recused: &f.recused,
    }
}

fn internal(e: StoreError) -> Status {
    petition_grpc::store_status(e, "supervision")
}

/// The one mapping from a broken rule to a status.
fn refused(r: Refusal) -> Status {
    match r {
        Refusal::Invalid(m) => Status::invalid_argument(m),
        Refusal::WrongState(m) => Status::failed_precondition(m),
    }
}

fn parse_cursor(text: &str) -> Option<(i64, String)> {
    text.split_once('|')
        .and_then(|(d, id)| Some((d.parse().ok()?, id.to_owned())))
}

fn clock_field(v: i32) -> Result<petition_domain::clocks::ClockKind, Status> {
    clock_kind_from_pb(v).ok_or_else(|| {
        Status::invalid_argument(
            "clock: one of the clock kinds (handling, review_opinion, …), not unspecified",
        )
    })
}

impl SupervisionGrpc {
    fn cx<'a>(
        &'a self,
        calendar: &'a HolidayCalendar,
        p: &'a Principal,
        now: DateTime<Utc>,
    ) -> Ctx<'a> {
        Ctx {
            calendar,
            rules: &self.rules,
            now,
            actor: &p.subject,
        }
    }

    fn timeline_pb(&self, f: &CaseFile, entries: &[crate::model::Entry]) -> pb::Timeline {
        let now = self.shared.clock.now();
        let calendar = self.calendar.current();
        pb::Timeline {
            case_id: f.case.case_id.clone(),
            case_number: f.case.case_number.clone(),
            holder: f.case.holder.clone().unwrap_or_default(),
            clocks: f
                .clocks
                .iter()
                .map(|c| clock_to_pb(c, now, &calendar, &self.rules))
                .collect(),
            entries: entries.iter().map(entry_to_pb).collect(),
            extension_requested_days: f.case.extension_requested_days.unwrap_or_default(),
            extension_reason: f.case.extension_reason.clone().unwrap_or_default(),
            stage: crate::convert::stage_to_pb(f.case.stage) as i32,
            rating: crate::convert::rating_state(f) as i32,
            bureau_rating: f.case.bureau_rating.map_or(
                pb::Satisfaction::Unspecified,
                crate::convert::satisfaction_to_pb,
            ) as i32,
            organ_rating: f.case.organ_rating.map_or(
                pb::Satisfaction::Unspecified,
                crate::convert::satisfaction_to_pb,
            ) as i32,
            rating_reason: f.case.rating_reason.clone().unwrap_or_default(),
            final_reason: crate::convert::final_reason_to_pb(f.case.final_reason) as i32,
            answered_by: f.case.answered_by.clone().unwrap_or_default(),
            leader: f.case.leader.as_ref().map(crate::convert::leader_to_pb),
            backlog_flag: f.case.backlog_flag,
            resolved_at: f.case.resolved_at.map(petition_grpc::convert::ts),
            resolution: f.case.resolution.clone().unwrap_or_default(),
            petitioner_confirmed: f.case.petitioner_confirmed,
        }
    }

    async fn respond(&self, f: &CaseFile) -> Result<Response<pb::Timeline>, Status> {
        let entries = self
            .store
            .timeline(&f.case.case_id)
            .await
            .map_err(internal)?;
        Ok(Response::new(self.timeline_pb(f, &entries)))
    }

    async fn find(&self, p: &Principal, case_id: &str) -> Result<CaseFile, Status> {
        let id = petition_grpc::case_id("case_id", case_id)?;
        self.shared.access.may_read_cases(p).map_err(denied)?;
        self.store
            .load(&id.to_string())
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_CASE))
    }

    /// Whether a retry may be answered with the case as it is now (see
    /// `petition_grpc::retry_access`).
    fn retry_visible(&self, p: &Principal, f: &CaseFile) -> Result<(), Status> {
        petition_grpc::retry_access(self.shared.access.view(p, &facts(f)), NO_SUCH_CASE)
    }

    /// For the accused side exactly the answer for a case that does not exist (Art. 30 ¶3).
    fn visible(&self, p: &Principal, f: &CaseFile) -> Result<(), Status> {
        petition_grpc::case_access(self.shared.access.view(p, &facts(f)), p, NO_SUCH_CASE)
    }

    /// Every command's path: find the case; answer a retry this organ already applied;
    /// check who may see and act; apply `change`; save it with its events.
    async fn command(
        &self,
        method: &'static str,
        p: &Principal,
        case_id: &str,
        request_id: &str,
        duty: Duty,
        change: impl Fn(&CaseFile, Ctx<'_>) -> Result<Change, Refusal>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let access = self.shared.access.clone();
        self.command_gated(
            method,
            p,
            case_id,
            request_id,
            |f| access.may_act(p, &facts(f), duty),
            change,
        )
        .await
    }

    /// `command` with its own question to the access policy.
    async fn command_gated(
        &self,
        method: &'static str,
        p: &Principal,
        case_id: &str,
        request_id: &str,
        gate: impl Fn(&CaseFile) -> Result<(), petition_auth::Denied>,
        change: impl Fn(&CaseFile, Ctx<'_>) -> Result<Change, Refusal>,
    ) -> Result<Response<pb::Timeline>, Status> {
        // The case before the request id, never after: a first copy of this request committed
        // in between then makes this one's write conflict, and the conflict finds the retry;
        // read after, the case would already be changed and the change refused.
        let f = self.find(p, case_id).await?;
        let request = RequestId::of(&p.org, method, request_id);
        let applied = match request {
            Some(req) => self.store.applied_request(req).await.map_err(internal)?,
            None => None,
        };
        if applied.as_deref() == Some(f.case.case_id.as_str()) {
            // Read again: the first copy of this request may have been applied after `f` was
            // read, and the retry is answered with what it did.
            let now = self.find(p, case_id).await?;
            self.retry_visible(p, &now)?;
            return self.respond(&now).await;
        }
        self.visible(p, &f)?;
        gate(&f).map_err(denied)?;
        if let (Some(req), Some(_)) = (request, applied) {
            return Err(petition_grpc::request_id_reused(req.id, &p.org));
        }
        self.apply(
            p,
            f,
            request,
            |f| {
                self.visible(p, f)?;
                gate(f).map_err(denied)
            },
            &change,
        )
        .await
    }

    /// Applies `change` to `f` and saves it. The change is a pure function of the file, so
    /// when the case changed meanwhile (the engine fired one of its clocks, an event arrived)
    /// the file is read again, `check`ed again, and the change applied afresh — the caller does
    /// not see a conflict that is nobody's business but the service's.
    async fn apply(
        &self,
        p: &Principal,
        mut f: CaseFile,
        request: Option<RequestId<'_>>,
        check: impl Fn(&CaseFile) -> Result<(), Status>,
        change: &impl Fn(&CaseFile, Ctx<'_>) -> Result<Change, Refusal>,
    ) -> Result<Response<pb::Timeline>, Status> {
        for _ in 0..5 {
            let now = self.shared.clock.now();
            let calendar = self.calendar.current();
            let c = change(&f, self.cx(&calendar, p, now)).map_err(refused)?;
            let msgs: Vec<_> = crate::events::of(&c, now)
                .into_iter()
                .map(|m| m.by(&p.subject, &p.org))
                .collect();
            match self
                .store
                .save(f.case.version, &c, &msgs, request, now, &calendar)
                .await
            {
                Ok(()) => {
                    self.shared.relay_wake.notify_one();
                    self.engine_wake.notify_one();
                    let mut r = self.respond(&c.file).await?;
                    // What this request wrote, for a handler that answers with it (not sent).
                    r.extensions_mut().insert(Written(c.notices));
                    return Ok(r);
                }
                Err(StoreError::Conflict) => {
                    f = self
                        .store
                        .load(&f.case.case_id)
                        .await
                        .map_err(internal)?
                        .ok_or_else(|| Status::not_found(NO_SUCH_CASE))?;
                    // The change that got in first may be this request's own twin (a retry
                    // sent before the first answer): then it is answered, not refused.
                    if self
                        .store
                        .applied_to(request, &f.case.case_id)
                        .await
                        .map_err(internal)?
                    {
                        self.retry_visible(p, &f)?;
                        return self.respond(&f).await;
                    }
                    check(&f)?;
                }
                // A concurrent retry of this very request was applied first: answer as a
                // retry is answered. Any other holder of the id is another request.
                Err(StoreError::DuplicateRequest)
                    if self
                        .store
                        .applied_to(request, &f.case.case_id)
                        .await
                        .map_err(internal)? =>
                {
                    let now = self
                        .store
                        .load(&f.case.case_id)
                        .await
                        .map_err(internal)?
                        .ok_or_else(|| Status::not_found(NO_SUCH_CASE))?;
                    self.retry_visible(p, &now)?;
                    return self.respond(&now).await;
                }
                Err(e) => return Err(internal(e)),
            }
        }
        Err(internal(StoreError::Conflict))
    }

    /// The petitioner's own request, carried by a bureau's window or the petitioner's
    /// platform with the query code: find the case by number, check the code, answer a retry,
    /// apply `change`, save.
    async fn petitioners_request(
        &self,
        method: &'static str,
        p: &Principal,
        case_number: &str,
        query_code: &str,
        request_id: &str,
        change: impl Fn(&CaseFile, Ctx<'_>) -> Result<Change, Refusal>,
    ) -> Result<Response<pb::Timeline>, Status> {
        const NO_SUCH_NUMBER: &str = "case_number: no case with that number is under supervision";
        self.shared
            .access
            .may_act_for_petitioner(p)
            .map_err(denied)?;
        let code: petition_domain::QueryCode = query_code
            .parse()
            .map_err(|e| Status::invalid_argument(format!("query_code: {e}")))?;
        let id = self
            .store
            .case_id_of(case_number.trim())
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_NUMBER))?;
        let f = self
            .store
            .load(&id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_NUMBER))?;
        let access = &self.shared.access;
        if access.is_accused_side(p, f.case.accused_organ.as_deref())
            || access.is_recused(p, &facts(&f))
        {
            return Err(Status::not_found(NO_SUCH_NUMBER));
        }
        if f.case.query_code_digest.as_deref() != Some(code.digest().as_str()) {
            return Err(Status::permission_denied(
                "query_code: it is not the query code (查询码) of this case",
            ));
        }
        let request = RequestId::of(&p.org, method, request_id);
        if let Some(req) = request
            && let Some(applied) = self.store.applied_request(req).await.map_err(internal)?
        {
            if applied == f.case.case_id {
                let now = self
                    .store
                    .load(&applied)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| Status::not_found(NO_SUCH_NUMBER))?;
                return self.respond(&now).await;
            }
            return Err(petition_grpc::request_id_reused(req.id, &p.org));
        }
        self.apply(p, f, request, |_| Ok(()), &change).await
    }

    /// The organs a list covers: the one asked for, and with `within` those it covers.
    fn list_organs(&self, p: &Principal, organ: &str, within: bool) -> Result<Vec<String>, Status> {
        let organ = self.list_organ(p, organ)?;
        if !within {
            return Ok(vec![organ]);
        }
        self.shared.access.list_reach(p, &organ).map_err(denied)
    }

    /// The organ a list is for: the one asked for, within the caller's reach, or the caller's.
    fn list_organ(&self, p: &Principal, organ: &str) -> Result<String, Status> {
        let organ = if organ.trim().is_empty() {
            p.org.clone()
        } else {
            organ.trim().to_owned()
        };
        if self.shared.reference.tree.get(&organ).is_none() {
            return Err(Status::invalid_argument(format!(
                "organ: {} is not in the organisation tree",
                shown(&organ)
            )));
        }
        self.shared.access.may_list_for(p, &organ).map_err(denied)?;
        Ok(organ)
    }
}

#[tonic::async_trait]
impl SupervisionService for SupervisionGrpc {
    async fn get_timeline(
        &self,
        request: Request<pb::GetTimelineRequest>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let p = principal(&request)?.clone();
        let f = self.find(&p, &request.get_ref().case_id).await?;
        self.visible(&p, &f)?;
        self.respond(&f).await
    }

    async fn list_due(
        &self,
        request: Request<pb::ListDueRequest>,
    ) -> Result<Response<pb::ListDueResponse>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        let filter = match pb::DueBucket::try_from(req.bucket) {
            Ok(pb::DueBucket::Unspecified) => DueFilter::All,
            Ok(pb::DueBucket::DueSoon) => DueFilter::DueSoon,
            Ok(pb::DueBucket::Overdue) => DueFilter::Overdue,
            Ok(pb::DueBucket::Paused) => DueFilter::Paused,
            Ok(pb::DueBucket::Running) => {
                return Err(Status::invalid_argument(
                    "bucket: running is shown on output only; ask for every open clock (unspecified)",
                ));
            }
            Err(_) => return Err(Status::invalid_argument("bucket: unknown value")),
        };
        let organs = self.list_organs(&p, &req.organ, req.within)?;
        let size = page_size(req.page_size);
        let bound = binding(
            &p,
            &pb::ListDueRequest {
                organ: organs.join(","),
                page_size: 0,
                page_token: String::new(),
                ..req.clone()
            },
        );
        let after = self
            .shared
            .pages
            .after(&bound, &req.page_token, parse_cursor)?;
        let now = self.shared.clock.now();
        let soon = local_date(now)
            .checked_add_days(Days::new(self.rules.reminder_days.into()))
            .map_or(now, petition_domain::calendar::end_of_local_day);
        let mut rows = self
            .store
            .due(&DueQuery {
                organs,
                filter,
                now,
                soon_until: soon,
                hidden_accused: self.shared.access.list_scope(&p).hidden_accused,
                recused: self.shared.access.list_scope(&p).recused,
                after,
                limit: size + 1,
            })
            .await
            .map_err(internal)?;
        let next_page_token = self.shared.pages.next_page(&bound, &mut rows, size, |r| {
            format!(
                "{}|{}:{}",
                r.due_at.timestamp_micros(),
                r.case_id,
                r.clock.kind
            )
        });
        let calendar = self.calendar.current();
        let items = rows
            .iter()
            .map(|r| {
                let bucket = match r.clock.state {
                    ClockState::Paused => pb::DueBucket::Paused,
                    _ if r.due_at <= now || r.clock.state == ClockState::Overdue => {
                        pb::DueBucket::Overdue
                    }
                    _ if r.due_at <= soon => pb::DueBucket::DueSoon,
                    _ => pb::DueBucket::Running,
                };
                pb::DueItem {
                    case_id: r.case_id.clone(),
                    case_number: r.case_number.clone(),
                    clock: Some(clock_to_pb(&r.clock, now, &calendar, &self.rules)),
                    bucket: bucket as i32,
                }
            })
            .collect();
        Ok(Response::new(pb::ListDueResponse {
            items,
            next_page_token,
        }))
    }

    async fn list_notices(
        &self,
        request: Request<pb::ListNoticesRequest>,
    ) -> Result<Response<pb::ListNoticesResponse>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        let organs = self.list_organs(&p, &req.organ, req.within)?;
        let size = page_size(req.page_size);
        let bound = binding(
            &p,
            &pb::ListNoticesRequest {
                organ: organs.join(","),
                page_size: 0,
                page_token: String::new(),
                ..req.clone()
            },
        );
        let after = self
            .shared
            .pages
            .after(&bound, &req.page_token, parse_cursor)?;
        let mut rows = self
            .store
            .notices(&NoticeQuery {
                organs,
                only_unacknowledged: req.only_unacknowledged,
                hidden_accused: self.shared.access.list_scope(&p).hidden_accused,
                recused: self.shared.access.list_scope(&p).recused,
                after,
                limit: size + 1,
            })
            .await
            .map_err(internal)?;
        let next_page_token = self.shared.pages.next_page(&bound, &mut rows, size, |n| {
            format!("{}|{}", n.issued_at.timestamp_micros(), n.notice_id)
        });
        Ok(Response::new(pb::ListNoticesResponse {
            notices: rows.iter().map(notice_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn acknowledge_notice(
        &self,
        request: Request<pb::AcknowledgeNoticeRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(
            &[("feedback", &req.feedback, MAX_TEXT_CHARS)],
            &req.request_id,
        )?;
        let id = uuid::Uuid::parse_str(req.notice_id.trim()).map_err(|_| {
            Status::invalid_argument(format!(
                "notice_id: {} is not a notice id (a UUID)",
                shown(&req.notice_id)
            ))
        })?;
        const NO_SUCH_NOTICE: &str = "notice_id: no notice with that id";
        let mut n = self
            .store
            .notice(&id.to_string())
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(NO_SUCH_NOTICE))?;
        // The accused side never learns of a notice about an accusation (Art. 30 ¶3), nor a
        // member of staff out of its case (回避) of any notice about it.
        let recused = self.store.recused(&n.case_id).await.map_err(internal)?;
        let access = &self.shared.access;
        if access.is_accused_side(&p, n.accused_organ.as_deref())
            || access.is_recused(
                &p,
                &CaseFacts {
                    recused: &recused,
                    ..CaseFacts::default()
                },
            )
        {
            return Err(Status::not_found(NO_SUCH_NOTICE));
        }
        self.shared
            .access
            .may_answer_for(&p, &n.organ)
            .map_err(denied)?;
        if let Some(req_id) = RequestId::of(&p.org, "AcknowledgeNotice", &req.request_id)
            && let Some(applied) = self.store.applied_request(req_id).await.map_err(internal)?
        {
            if applied == n.notice_id {
                return Ok(Response::new(notice_to_pb(&n)));
            }
            return Err(petition_grpc::request_id_reused(&req.request_id, &p.org));
        }
        if n.acknowledged_at.is_some() {
            return Err(Status::failed_precondition(format!(
                "notice {} was acknowledged already, by {}",
                n.notice_id,
                n.acknowledged_by.as_deref().unwrap_or_default()
            )));
        }
        if req.feedback.trim().is_empty() {
            return Err(Status::invalid_argument(
                "feedback: required; the organ answers in writing what it did (Art. 40)",
            ));
        }
        let now = self.shared.clock.now();
        n.acknowledged_at = Some(now);
        n.acknowledged_by = Some(p.subject.clone());
        n.feedback = Some(req.feedback.trim().to_owned());
        self.store
            .acknowledge(
                &n,
                RequestId::of(&p.org, "AcknowledgeNotice", &req.request_id),
                now,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict => Status::failed_precondition(format!(
                    "notice {} was acknowledged already",
                    n.notice_id
                )),
                e => internal(e),
            })?;
        Ok(Response::new(notice_to_pb(&n)))
    }

    async fn issue_supervision(
        &self,
        request: Request<pb::IssueSupervisionRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("text", &req.text, MAX_TEXT_CHARS)], &req.request_id)?;
        let due = req.feedback_due.as_ref().and_then(from_ts).ok_or_else(|| {
            Status::invalid_argument(
                "feedback_due: required; when the organ answers in writing (Art. 40)",
            )
        })?;
        let response = self
            .command(
                "IssueSupervision",
                &p,
                &req.case_id,
                &req.request_id,
                Duty::Bureau,
                |f, cx| workflow::supervise(f, &req.text, due, cx),
            )
            .await?;
        // The notice this request wrote; for a retry, the newest this issuer wrote on the case.
        if let Some(Written(notices)) = response.extensions().get::<Written>()
            && let Some(n) = notices.first()
        {
            return Ok(Response::new(notice_to_pb(n)));
        }
        let case = response.into_inner();
        self.store
            .latest_notice(
                &case.case_id,
                crate::model::NoticeKind::Supervision,
                &p.subject,
            )
            .await
            .map_err(internal)?
            .map(|n| Response::new(notice_to_pb(&n)))
            .ok_or_else(|| petition_grpc::request_id_reused(&req.request_id, &p.org))
    }

    async fn decide_extension(
        &self,
        request: Request<pb::DecideExtensionRequest>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("reason", &req.reason, MAX_TEXT_CHARS)], &req.request_id)?;
        let duty = match self.approver {
            ExtensionApprover::Bureau => Duty::Bureau,
            ExtensionApprover::Superior => Duty::Superior,
        };
        self.command(
            "DecideExtension",
            &p,
            &req.case_id,
            &req.request_id,
            duty,
            |f, cx| workflow::decide_extension(f, req.approve, &req.reason, cx),
        )
        .await
    }

    async fn rate_case(
        &self,
        request: Request<pb::RateCaseRequest>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("reason", &req.reason, MAX_TEXT_CHARS)], &req.request_id)?;
        let pick = |field: &str, v: i32| {
            crate::convert::satisfaction_from_pb(v).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "{field}: satisfied (满意), basically satisfied (基本满意) or dissatisfied (不满意)"
                ))
            })
        };
        let rating = workflow::Rating {
            bureau: pick("bureau", req.bureau)?,
            organ: pick("organ", req.organ)?,
            reason: &req.reason,
        };
        self.petitioners_request(
            "RateCase",
            &p,
            &req.case_number,
            &req.query_code,
            &req.request_id,
            |f, cx| workflow::rate(f, rating.clone(), cx),
        )
        .await
    }

    async fn request_review(
        &self,
        request: Request<pb::RequestReviewRequest>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("reason", &req.reason, MAX_TEXT_CHARS)], &req.request_id)?;
        let tree = &self.shared.reference.tree;
        self.petitioners_request(
            "RequestReview",
            &p,
            &req.case_number,
            &req.query_code,
            &req.request_id,
            |f, cx| workflow::request_review(f, &req.reason, tree, cx),
        )
        .await
    }

    async fn decide_review(
        &self,
        request: Request<pb::DecideReviewRequest>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("opinion", &req.opinion, 20_000)], &req.request_id)?;
        let decision = crate::convert::decision_from_pb(req.decision).ok_or_else(|| {
            Status::invalid_argument("decision: uphold (维持), change (变更) or redo (重新办理)")
        })?;
        let served = req.served_at.as_ref().map(|t| {
            from_ts(t).ok_or_else(|| Status::invalid_argument("served_at: not a valid instant"))
        });
        let served = served.transpose()?;
        self.command(
            "DecideReview",
            &p,
            &req.case_id,
            &req.request_id,
            Duty::Holder,
            |f, cx| workflow::decide_review(f, decision, &req.opinion, served, cx),
        )
        .await
    }

    async fn take_charge(
        &self,
        request: Request<pb::TakeChargeRequest>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("plan", &req.plan, MAX_TEXT_CHARS)], &req.request_id)?;
        let day = chrono::NaiveDate::parse_from_str(req.target_date.trim(), "%Y-%m-%d").map_err(
            |_| {
                Status::invalid_argument(format!(
                    "target_date: {} is not a date (YYYY-MM-DD)",
                    shown(&req.target_date)
                ))
            },
        )?;
        let access = self.shared.access.clone();
        let organ = p.org.clone();
        self.command_gated(
            "TakeCharge",
            &p,
            &req.case_id,
            &req.request_id,
            |_| access.may_take_charge(&p),
            |f, cx| workflow::take_charge(f, &req.plan, day, req.add_to_backlog, &organ, cx),
        )
        .await
    }

    async fn record_progress(
        &self,
        request: Request<pb::RecordProgressRequest>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("note", &req.note, MAX_TEXT_CHARS)], &req.request_id)?;
        let access = self.shared.access.clone();
        self.command_gated(
            "RecordProgress",
            &p,
            &req.case_id,
            &req.request_id,
            |f| {
                access.may_record_progress(
                    &p,
                    &facts(f),
                    f.case.leader.as_ref().map(|l| l.leader.as_str()),
                )
            },
            |f, cx| {
                workflow::record_progress(f, &req.note, req.resolved, req.petitioner_confirmed, cx)
            },
        )
        .await
    }

    async fn list_backlog(
        &self,
        request: Request<pb::ListBacklogRequest>,
    ) -> Result<Response<pb::ListBacklogResponse>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        self.shared.access.may_work_inbox(&p).map_err(denied)?;
        let scope = self.shared.access.list_scope(&p);
        if scope.nothing || scope.source_system.is_some() {
            return Err(Status::permission_denied(format!(
                "role {} has no backlog to read",
                p.role
            )));
        }
        let size = page_size(req.page_size);
        let bound = binding(&p, &pb::ListBacklogRequest::default());
        let after = self
            .shared
            .pages
            .after(&bound, &req.page_token, |t| Some(t.to_owned()))?;
        let mut rows = self
            .store
            .backlog(&crate::store::BacklogQuery {
                organs: scope.organs,
                hidden_accused: scope.hidden_accused,
                recused: scope.recused,
                min_repeats: self.backlog_repeats,
                now: self.shared.clock.now(),
                after,
                limit: size + 1,
            })
            .await
            .map_err(internal)?;
        let next_page_token = self
            .shared
            .pages
            .next_page(&bound, &mut rows, size, |r| r.case.case_id.clone());
        Ok(Response::new(pb::ListBacklogResponse {
            items: rows
                .iter()
                .map(|r| pb::BacklogItem {
                    case_id: r.case.case_id.clone(),
                    case_number: r.case.case_number.clone(),
                    holder: r.case.holder.clone().unwrap_or_default(),
                    overdue: r.overdue,
                    repeats: r.repeats,
                    flagged: r.case.backlog_flag,
                    leader: r.case.leader.as_ref().map(crate::convert::leader_to_pb),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn pause_clock(
        &self,
        request: Request<pb::PauseClockRequest>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("reason", &req.reason, MAX_TEXT_CHARS)], &req.request_id)?;
        let kind = clock_field(req.clock)?;
        self.command(
            "PauseClock",
            &p,
            &req.case_id,
            &req.request_id,
            Duty::Holder,
            |f, cx| workflow::pause(f, kind, &req.reason, cx),
        )
        .await
    }

    async fn resume_clock(
        &self,
        request: Request<pb::ResumeClockRequest>,
    ) -> Result<Response<pb::Timeline>, Status> {
        let p = principal(&request)?.clone();
        let req = request.into_inner();
        check_input(&[("reason", &req.reason, MAX_TEXT_CHARS)], &req.request_id)?;
        let kind = clock_field(req.clock)?;
        self.command(
            "ResumeClock",
            &p,
            &req.case_id,
            &req.request_id,
            Duty::Holder,
            |f, cx| workflow::resume(f, kind, &req.reason, cx),
        )
        .await
    }
}
