//! The access policy, table-driven: every RPC of intake, routing, supervision and analytics and
//! the audit log's, called as every role from
//! the organ that holds an accusation (permitted), from an unrelated organ, and from the
//! accused organ and the organs under it. The accusation is against the city bureau; it must
//! reach the city's discipline commission, which reads it, while the accused side learns
//! nothing — not even that it exists (Art. 30 ¶3).
//!
//! The expectations are written here from the rules, not computed by the policy under test.

use chrono::TimeZone;
use petition_auth::Role;
mod common;

use common::Suite;
use petition_e2e::{samples, who};
use petition_proto::v1 as pb;
use tonic::Code;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 3, 11, 12, 0, 0)
        .unwrap()
        .to_utc()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// the organ holding the accusation
    Permitted,
    Unrelated,
    /// the accused organ, or one under it
    Accused,
}

/// What a call came back with; for lists, whether the accusation was in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    Ok,
    Present,
    Absent,
    Code(Code),
}

const PERMITTED: &str = "datong.discipline";
// Outside the accused city bureau's subtree (the Yungang district bureau is under it).
const UNRELATED: &str = "pingcheng.housing";
const ACCUSED_SIDE: [&str; 3] = [
    "datong.bureau",
    "pingcheng.bureau",
    "pingcheng.street.beiguan",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    RegisterPetition,
    GetCase,
    ListCases,
    LookupByQueryCode,
    GetPetitionerHistory,
    ListInbox,
    GetAssignment,
    AcceptCase,
    ObjectToAssignment,
    ResolveObjection,
    ListTriage,
    RouteManually,
    TransferCase,
    SubmitReply,
    RequestExtension,
    SubmitCompletionReport,
    GetTimeline,
    PauseClock,
    DecideExtension,
    RateCase,
    ListNotices,
    ListBacklog,
    RevealPersonalData,
    ExportCases,
    ListDue,
    IssueSupervision,
    ResumeClock,
    RequestReview,
    DecideReview,
    TakeCharge,
    RecordProgress,
    GetSituation,
    GetScorecards,
    GetTrend,
    AnalyticsBacklog,
    DetectHotspots,
    ListClusters,
    RenderReport,
    RecordSuggestion,
    ListSuggestions,
    Rebuild,
    ImportPetitions,
    RekeyPersonalData,
    VerifyAudit,
    ListAudit,
    RecordRecusal,
}

const RPCS: [Rpc; 46] = [
    Rpc::RegisterPetition,
    Rpc::GetCase,
    Rpc::ListCases,
    Rpc::LookupByQueryCode,
    Rpc::GetPetitionerHistory,
    Rpc::ListInbox,
    Rpc::GetAssignment,
    Rpc::AcceptCase,
    Rpc::ObjectToAssignment,
    Rpc::ResolveObjection,
    Rpc::ListTriage,
    Rpc::RouteManually,
    Rpc::TransferCase,
    Rpc::SubmitReply,
    Rpc::RequestExtension,
    Rpc::SubmitCompletionReport,
    Rpc::GetTimeline,
    Rpc::PauseClock,
    Rpc::DecideExtension,
    Rpc::RateCase,
    Rpc::ListNotices,
    Rpc::ListBacklog,
    Rpc::RevealPersonalData,
    Rpc::ExportCases,
    Rpc::ListDue,
    Rpc::IssueSupervision,
    Rpc::ResumeClock,
    Rpc::RequestReview,
    Rpc::DecideReview,
    Rpc::TakeCharge,
    Rpc::RecordProgress,
    Rpc::GetSituation,
    Rpc::GetScorecards,
    Rpc::GetTrend,
    Rpc::AnalyticsBacklog,
    Rpc::DetectHotspots,
    Rpc::ListClusters,
    Rpc::RenderReport,
    Rpc::RecordSuggestion,
    Rpc::ListSuggestions,
    Rpc::Rebuild,
    Rpc::ImportPetitions,
    Rpc::RekeyPersonalData,
    Rpc::VerifyAudit,
    Rpc::ListAudit,
    Rpc::RecordRecusal,
];

/// The rules, as the issue and the law state them.
fn expected(rpc: Rpc, role: Role, org: &str, side: Side) -> Got {
    use Role::*;
    let hidden = side == Side::Accused && role != Upstream;
    // Reach: an admin everything; staff their organ and below (here: the holder); an upstream
    // system what it submitted (not this); an analyst no single case.
    let reaches = match role {
        Admin => true,
        Clerk | Handler | Supervisor | Leader => side == Side::Permitted,
        Analyst | Upstream => false,
    };
    let read = || {
        if role == Analyst {
            Got::Code(Code::PermissionDenied)
        } else if hidden {
            Got::Code(Code::NotFound)
        } else if reaches {
            Got::Ok
        } else {
            Got::Code(Code::PermissionDenied)
        }
    };
    // A command on the diverted accusation: those who may issue it get past the gate and meet
    // the workflow's refusal (it is diverted, so nothing applies), the rest are turned away.
    let command = |may: bool| match read() {
        Got::Ok if may => Got::Code(Code::FailedPrecondition),
        Got::Ok => Got::Code(Code::PermissionDenied),
        other => other,
    };
    // Commands the diverted case would take: sent with a field the workflow refuses (an empty
    // plan or note, a deadline already past), so that those past the gate meet INVALID_ARGUMENT
    // and the case stays as it was for the next cell.
    let refused_input = |may: bool| match command(may) {
        Got::Code(Code::FailedPrecondition) => Got::Code(Code::InvalidArgument),
        other => other,
    };
    // A petition bureau (信访局) of the table; the others are a commission, a department and a
    // street office.
    let bureau = org.ends_with(".bureau");
    let holder = role == Admin
        || (matches!(role, Clerk | Handler | Supervisor | Leader) && side == Side::Permitted);
    match rpc {
        Rpc::RegisterPetition => match role {
            Handler | Analyst => Got::Code(Code::PermissionDenied),
            _ => Got::Ok,
        },
        Rpc::GetCase | Rpc::GetAssignment | Rpc::GetTimeline => read(),
        // analytics' list of cases: an upstream system reads no figures and an analyst no
        // single case; the accused side never finds the accusation (Art. 30 ¶3); a case diverted
        // out of the petition channel is in no responsible organ's figures, only in those of
        // an admin, who sees every organ's
        Rpc::ExportCases => match role {
            Upstream | Analyst => Got::Code(Code::PermissionDenied),
            _ if hidden => Got::Absent,
            Admin => Got::Present,
            _ => Got::Absent,
        },
        // personal data in the clear: those who deal with petitioners, within reach
        // (an admin reaches every case, but sees personal data only of its own organs' cases)
        Rpc::RevealPersonalData => match read() {
            Got::Ok if matches!(role, Clerk | Supervisor | Leader) => Got::Ok,
            Got::Ok if role == Admin && side == Side::Permitted => Got::Ok,
            Got::Ok => Got::Code(Code::PermissionDenied),
            other => other,
        },
        Rpc::ListCases => match role {
            Analyst => Got::Code(Code::PermissionDenied),
            _ if !hidden && reaches => Got::Present,
            _ => Got::Absent,
        },
        Rpc::LookupByQueryCode => {
            if hidden {
                Got::Code(Code::NotFound)
            } else {
                Got::Ok
            }
        }
        Rpc::GetPetitionerHistory => match role {
            Clerk | Supervisor | Leader | Admin if !hidden && reaches => Got::Present,
            Clerk | Supervisor | Leader | Admin => Got::Absent,
            _ => Got::Code(Code::PermissionDenied),
        },
        Rpc::ListInbox => match role {
            Analyst | Upstream => Got::Code(Code::PermissionDenied),
            _ if !hidden && side == Side::Permitted => Got::Present,
            _ => Got::Absent,
        },
        Rpc::ListTriage => match role {
            Clerk | Supervisor | Leader | Admin => Got::Absent,
            _ => Got::Code(Code::PermissionDenied),
        },
        // The petitioner's own request with the query code: carried by a bureau's window, the
        // petitioner's platform or an admin; nothing to rate before a reply is served.
        Rpc::RateCase => match role {
            Handler | Analyst => Got::Code(Code::PermissionDenied),
            _ if hidden => Got::Code(Code::NotFound),
            _ => Got::Code(Code::FailedPrecondition),
        },
        // An organ's own lists: the accusation has no open clock, notice or backlog entry
        // anywhere, so staff see it nowhere and the others may not list at all.
        Rpc::ListNotices | Rpc::ListBacklog => match role {
            Analyst | Upstream => Got::Code(Code::PermissionDenied),
            _ => Got::Absent,
        },
        Rpc::AcceptCase
        | Rpc::PauseClock
        | Rpc::ObjectToAssignment
        | Rpc::TransferCase
        | Rpc::SubmitReply
        | Rpc::RequestExtension
        | Rpc::SubmitCompletionReport => command(holder),
        // The bureau that routed it is the district bureau, on the accused side; only an
        // admin (or a bureau above, not tried here) may act as the routing bureau.
        Rpc::ResolveObjection | Rpc::RouteManually | Rpc::DecideExtension => command(role == Admin),
        Rpc::ResumeClock | Rpc::DecideReview => command(holder),
        // 督办 is the routing bureau's (here on the accused side), or an admin's.
        Rpc::IssueSupervision => refused_input(role == Admin),
        // 包案: a leader within reach, or an admin.
        Rpc::TakeCharge => refused_input(matches!(role, Leader | Admin)),
        // the leader in charge (there is none), the holder's staff, or an admin
        Rpc::RecordProgress => refused_input(holder),
        Rpc::RequestReview => match role {
            Handler | Analyst => Got::Code(Code::PermissionDenied),
            _ if hidden => Got::Code(Code::NotFound),
            _ => Got::Code(Code::FailedPrecondition),
        },
        // What an organ owes: its own staff, those above it, its supervising bureau, an admin.
        // The diverted accusation runs no clock, so it is in nobody's list.
        Rpc::ListDue => match role {
            Analyst | Upstream => Got::Code(Code::PermissionDenied),
            _ => Got::Absent,
        },
        // Figures of the caller's own organ (an admin's: everything): every organ's staff and
        // analysts and admins; an upstream system reads none.
        Rpc::GetSituation
        | Rpc::GetScorecards
        | Rpc::GetTrend
        | Rpc::DetectHotspots
        | Rpc::RenderReport
        | Rpc::ListSuggestions => match role {
            Upstream => Got::Code(Code::PermissionDenied),
            _ => Got::Ok,
        },
        // Lists of single cases from the figures: not an analyst's either.
        Rpc::AnalyticsBacklog | Rpc::ListClusters => match role {
            Upstream | Analyst => Got::Code(Code::PermissionDenied),
            _ => Got::Ok,
        },
        // Suggestions to the Party committee and government (Art. 41): a petition bureau's
        // supervisors and leaders, or an admin.
        Rpc::RecordSuggestion => match role {
            Admin => Got::Ok,
            Supervisor | Leader if bureau => Got::Ok,
            _ => Got::Code(Code::PermissionDenied),
        },
        // An admin's upkeep of one service; bringing history in (an empty import here).
        Rpc::Rebuild | Rpc::ImportPetitions => match role {
            Admin => Got::Ok,
            _ => Got::Code(Code::PermissionDenied),
        },
        // 回避 of another member of staff: a leader or supervisor over the holder (the routing
        // bureau is on the accused side), or an admin.
        Rpc::RecordRecusal => match read() {
            Got::Ok if role == Admin => Got::Ok,
            Got::Ok if matches!(role, Leader | Supervisor) && side == Side::Permitted => Got::Ok,
            Got::Ok => Got::Code(Code::PermissionDenied),
            other => other,
        },
        // Deployment-wide: an admin of the top bureau only, which none of these organs is.
        Rpc::RekeyPersonalData | Rpc::VerifyAudit | Rpc::ListAudit => {
            Got::Code(Code::PermissionDenied)
        }
    }
}

struct Case {
    id: String,
    number: String,
    query_code: String,
}

fn list_has<T>(r: Result<tonic::Response<T>, tonic::Status>, has: impl Fn(&T) -> bool) -> Got {
    match r {
        Ok(r) if has(r.get_ref()) => Got::Present,
        Ok(_) => Got::Absent,
        Err(e) => Got::Code(e.code()),
    }
}

fn unit<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Got {
    match r {
        Ok(_) => Got::Ok,
        Err(e) => Got::Code(e.code()),
    }
}

async fn call(s: &Suite, rpc: Rpc, org: &str, role: Role, case: &Case, n: u64) -> Got {
    let mut p = who(org, role);
    if role == Role::Upstream {
        p.subject = "datong.12345".into();
    }
    let mut intake = s.intake(&p).await;
    let mut routing = s.routing(&p).await;
    let mut supervision = s.supervision(&p).await;
    let id = case.id.clone();
    match rpc {
        Rpc::RegisterPetition => {
            let mut req = samples()
                .into_iter()
                .find(|s| s.sample == 4)
                .unwrap()
                .request();
            req.received_by = org.into();
            req.petitioners[0].id_number = petition_e2e::synthetic_resident_id(n);
            if role == Role::Upstream {
                req.channel = pb::Channel::Upstream as i32;
                req.source_system = p.subject.clone();
                req.external_ref = format!("ACCESS-{n}");
            }
            unit(intake.register_petition(req).await)
        }
        Rpc::GetCase => unit(
            intake
                .get_case(pb::GetCaseRequest {
                    case_id: String::new(),
                    case_number: case.number.clone(),
                })
                .await,
        ),
        Rpc::ExportCases => match s.export(&p, "2026-03").await {
            Ok(csv) if csv.contains(&case.number) => Got::Present,
            Ok(_) => Got::Absent,
            Err(e) => Got::Code(e.code()),
        },
        Rpc::RevealPersonalData => unit(
            intake
                .reveal_personal_data(pb::RevealPersonalDataRequest {
                    case_id: String::new(),
                    case_number: case.number.clone(),
                    purpose: "the access table".into(),
                })
                .await,
        ),
        Rpc::ListCases => list_has(
            intake.list_cases(pb::ListCasesRequest::default()).await,
            |l| l.cases.iter().any(|c| c.id == id),
        ),
        Rpc::LookupByQueryCode => unit(
            intake
                .lookup_by_query_code(pb::LookupByQueryCodeRequest {
                    query_code: case.query_code.clone(),
                })
                .await,
        ),
        Rpc::GetPetitionerHistory => list_has(
            intake
                .get_petitioner_history(pb::GetPetitionerHistoryRequest {
                    id_type: pb::IdType::ResidentId as i32,
                    id_number: "140213198304157577".into(),
                    ..Default::default()
                })
                .await,
            |l| l.cases.iter().any(|c| c.id == id),
        ),
        Rpc::ListInbox => list_has(
            routing.list_inbox(pb::ListInboxRequest::default()).await,
            |l| l.items.iter().any(|i| i.case_id == id),
        ),
        Rpc::GetAssignment => unit(
            routing
                .get_assignment(pb::GetAssignmentRequest { case_id: id })
                .await,
        ),
        Rpc::AcceptCase => unit(
            routing
                .accept_case(pb::AcceptCaseRequest {
                    case_id: id,
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::ObjectToAssignment => unit(
            routing
                .object_to_assignment(pb::ObjectToAssignmentRequest {
                    case_id: id,
                    reason: "not ours".into(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::ResolveObjection => unit(
            routing
                .resolve_objection(pb::ResolveObjectionRequest {
                    case_id: id,
                    agree: false,
                    new_organ: String::new(),
                    reason: "it stays".into(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::ListTriage => list_has(
            routing.list_triage(pb::ListTriageRequest::default()).await,
            |l| l.items.iter().any(|i| i.case_id == id),
        ),
        Rpc::RouteManually => unit(
            routing
                .route_manually(pb::RouteManuallyRequest {
                    case_id: id,
                    organ: "shanxi.discipline".into(),
                    mode: pb::HandlingMode::Forward as i32,
                    reason: "by hand".into(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::TransferCase => unit(
            routing
                .transfer_case(pb::TransferCaseRequest {
                    case_id: id,
                    organ: "shanxi.discipline".into(),
                    reason: "the province".into(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::SubmitReply => unit(
            routing
                .submit_reply(pb::SubmitReplyRequest {
                    case_id: id,
                    outcome: pb::ReplyOutcome::Explained as i32,
                    text: "意见".into(),
                    legal_basis: String::new(),
                    service: Some(pb::ServiceRecord {
                        mode: pb::ServiceMode::InPerson as i32,
                        served_at: Some(petition_e2e::timestamp(now())),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::RequestExtension => unit(
            routing
                .request_extension(pb::RequestExtensionRequest {
                    case_id: id,
                    days: 10,
                    reason: "records".into(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::GetTimeline => unit(
            supervision
                .get_timeline(pb::GetTimelineRequest { case_id: id })
                .await,
        ),
        Rpc::PauseClock => unit(
            supervision
                .pause_clock(pb::PauseClockRequest {
                    case_id: id,
                    clock: pb::ClockKind::Handling as i32,
                    reason: "hearing".into(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::DecideExtension => unit(
            supervision
                .decide_extension(pb::DecideExtensionRequest {
                    case_id: id,
                    approve: true,
                    reason: "granted".into(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::RateCase => unit(
            supervision
                .rate_case(pb::RateCaseRequest {
                    case_number: case.number.clone(),
                    query_code: case.query_code.clone(),
                    bureau: pb::Satisfaction::Satisfied as i32,
                    organ: pb::Satisfaction::Satisfied as i32,
                    reason: String::new(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::ListNotices => list_has(
            supervision
                .list_notices(pb::ListNoticesRequest::default())
                .await,
            |l| l.notices.iter().any(|n| n.case_id == id),
        ),
        Rpc::ListBacklog => list_has(
            supervision
                .list_backlog(pb::ListBacklogRequest::default())
                .await,
            |l| l.items.iter().any(|i| i.case_id == id),
        ),
        Rpc::ListDue => list_has(
            supervision.list_due(pb::ListDueRequest::default()).await,
            |l| l.items.iter().any(|i| i.case_id == id),
        ),
        Rpc::IssueSupervision => unit(
            supervision
                .issue_supervision(pb::IssueSupervisionRequest {
                    case_id: id,
                    text: "督办".into(),
                    feedback_due: Some(petition_e2e::timestamp(now() - chrono::Duration::days(1))),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::ResumeClock => unit(
            supervision
                .resume_clock(pb::ResumeClockRequest {
                    case_id: id,
                    clock: pb::ClockKind::Handling as i32,
                    reason: "hearing done".into(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::RequestReview => unit(
            supervision
                .request_review(pb::RequestReviewRequest {
                    case_number: case.number.clone(),
                    query_code: case.query_code.clone(),
                    reason: "not satisfied".into(),
                    request_id: String::new(),
                })
                .await,
        ),
        Rpc::DecideReview => unit(
            supervision
                .decide_review(pb::DecideReviewRequest {
                    case_id: id,
                    decision: pb::ReviewDecision::Uphold as i32,
                    opinion: "维持".into(),
                    ..Default::default()
                })
                .await,
        ),
        Rpc::TakeCharge => unit(
            supervision
                .take_charge(pb::TakeChargeRequest {
                    case_id: id,
                    plan: String::new(),
                    target_date: "2026-04-30".into(),
                    ..Default::default()
                })
                .await,
        ),
        Rpc::RecordProgress => unit(
            supervision
                .record_progress(pb::RecordProgressRequest {
                    case_id: id,
                    note: String::new(),
                    ..Default::default()
                })
                .await,
        ),
        Rpc::GetSituation => unit(
            s.analytics(&p)
                .await
                .get_situation(pb::SituationRequest {
                    period: "2026-03".into(),
                    organ: String::new(),
                })
                .await,
        ),
        Rpc::GetScorecards => unit(
            s.analytics(&p)
                .await
                .get_scorecards(pb::ScorecardsRequest {
                    period: "2026-03".into(),
                    ..Default::default()
                })
                .await,
        ),
        Rpc::GetTrend => unit(
            s.analytics(&p)
                .await
                .get_trend(pb::TrendRequest::default())
                .await,
        ),
        Rpc::AnalyticsBacklog => unit(
            s.analytics(&p)
                .await
                .list_backlog(pb::AnalyticsBacklogRequest::default())
                .await,
        ),
        Rpc::DetectHotspots => unit(
            s.analytics(&p)
                .await
                .detect_hotspots(pb::HotspotsRequest::default())
                .await,
        ),
        Rpc::ListClusters => unit(
            s.analytics(&p)
                .await
                .list_clusters(pb::ClustersRequest::default())
                .await,
        ),
        Rpc::RenderReport => unit(
            s.analytics(&p)
                .await
                .render_report(pb::RenderReportRequest {
                    period: "2026-03".into(),
                    organ: String::new(),
                })
                .await,
        ),
        Rpc::RecordSuggestion => unit(
            s.analytics(&p)
                .await
                .record_suggestion(pb::RecordSuggestionRequest {
                    addressee: "区委区政府".into(),
                    title: "关于物业纠纷的建议".into(),
                    text: "建议".into(),
                    ..Default::default()
                })
                .await,
        ),
        Rpc::ListSuggestions => unit(
            s.analytics(&p)
                .await
                .list_suggestions(pb::ListSuggestionsRequest {
                    period: "2026-03".into(),
                    organ: String::new(),
                })
                .await,
        ),
        Rpc::Rebuild => unit(s.analytics(&p).await.rebuild(pb::RebuildRequest {}).await),
        Rpc::ImportPetitions => unit(
            intake
                .import_petitions(tokio_stream::iter(Vec::<pb::ImportPetitionsRequest>::new()))
                .await,
        ),
        Rpc::RekeyPersonalData => unit(
            intake
                .rekey_personal_data(pb::RekeyPersonalDataRequest {})
                .await,
        ),
        Rpc::VerifyAudit => unit(
            s.audit(&p)
                .await
                .verify_audit(pb::VerifyAuditRequest::default())
                .await,
        ),
        Rpc::ListAudit => unit(
            s.audit(&p)
                .await
                .list_audit(pb::ListAuditRequest {
                    service: "intake".into(),
                    case_id: id,
                    ..Default::default()
                })
                .await,
        ),
        Rpc::RecordRecusal => unit(
            routing
                .record_recusal(pb::RecordRecusalRequest {
                    case_id: id,
                    // someone else each time: a recusal recorded twice is ALREADY_EXISTS
                    subject: format!("staff.{n}"),
                    reason: pb::RecusalReason::Relative as i32,
                    request_id: String::new(),
                    organ: String::new(),
                })
                .await,
        ),
        Rpc::SubmitCompletionReport => unit(
            routing
                .submit_completion_report(pb::SubmitCompletionReportRequest {
                    case_id: id,
                    text: "办结".into(),
                    request_id: String::new(),
                })
                .await,
        ),
    }
}

#[tokio::test]
async fn every_rpc_as_every_role_from_a_permitted_an_unrelated_and_an_accused_organ() {
    let s = Suite::embedded(now()).await;
    // An accusation against the city bureau, received at the district bureau's window.
    let sample = samples().into_iter().find(|s| s.sample == 7).unwrap();
    let mut req = sample.request();
    req.accused = Some(pb::Accused {
        name: "市信访局某处长".into(),
        organ_id: "datong.bureau".into(),
    });
    let r = s
        .intake(&sample.principal())
        .await
        .register_petition(req)
        .await
        .unwrap()
        .into_inner();
    let case = Case {
        id: r.case_id.clone(),
        number: r.case_number.clone(),
        query_code: r.query_code.clone(),
    };

    // It reaches the city's discipline commission, which reads it — accuser and all.
    let routed = s.routed(&case.id).await;
    assert_eq!(routed.organ, PERMITTED, "{}", routed.rule);
    assert_eq!(routed.outcome, pb::RouteOutcome::Diverted as i32);
    assert!(routed.rule.contains("Art. 30"), "{}", routed.rule);
    s.case_when(&case.id, |c| c.holder == PERMITTED).await;
    // Supervision follows it too, held by the same organ.
    let mut admin = s.supervision(&who("shanxi.bureau", Role::Admin)).await;
    for _ in 0..400 {
        match admin
            .get_timeline(pb::GetTimelineRequest {
                case_id: case.id.clone(),
            })
            .await
        {
            Ok(t) if t.get_ref().holder == PERMITTED => break,
            _ => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
        }
    }
    let read = s
        .intake(&who(PERMITTED, Role::Clerk))
        .await
        .get_case(pb::GetCaseRequest {
            case_id: case.id.clone(),
            case_number: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.content, sample.petition.content);
    assert!(
        read.petitioners[0].masked,
        "GetCase masks personal data for everyone"
    );
    assert_eq!(read.accused.as_ref().unwrap().organ_id, "datong.bureau");
    let clear = s
        .intake(&who(PERMITTED, Role::Clerk))
        .await
        .reveal_personal_data(pb::RevealPersonalDataRequest {
            case_id: case.id.clone(),
            case_number: String::new(),
            purpose: "checking the accuser's identity".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(clear.petitioners[0].id_number, "140213198304157577");

    // Analytics has counted it.
    let mut counted = Got::Absent;
    for _ in 0..400 {
        counted = call(&s, Rpc::ExportCases, "shanxi.bureau", Role::Admin, &case, 0).await;
        if counted == Got::Present {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        counted,
        Got::Present,
        "analytics lists the accusation for an admin"
    );

    let mut organs: Vec<(&str, Side)> =
        vec![(PERMITTED, Side::Permitted), (UNRELATED, Side::Unrelated)];
    organs.extend(ACCUSED_SIDE.map(|o| (o, Side::Accused)));
    let mut wrong = Vec::new();
    let mut calls = 0;
    let mut n = 10_000;
    for rpc in RPCS {
        for role in Role::ALL {
            for (org, side) in &organs {
                n += 1;
                let got = call(&s, rpc, org, role, &case, n).await;
                let want = expected(rpc, role, org, *side);
                calls += 1;
                if got != want {
                    wrong.push(format!(
                        "{rpc:?} as {role} of {org}: got {got:?}, want {want:?}"
                    ));
                }
            }
        }
    }
    assert_eq!(calls, RPCS.len() * 7 * 5);
    assert!(
        wrong.is_empty(),
        "{} of {calls} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Nothing the accused side was told names the case.
    let (err, missing) = s
        .get_case_beside_missing(&who("pingcheng.street.beiguan", Role::Clerk), &case.id)
        .await;
    assert_eq!(
        err, missing,
        "answered exactly as for a case that does not exist"
    );
    let mut yungang = s.routing(&who(UNRELATED, Role::Handler)).await;
    let denied = yungang
        .get_assignment(pb::GetAssignmentRequest {
            case_id: case.id.clone(),
        })
        .await
        .unwrap_err();
    for secret in [case.number.as_str(), PERMITTED, "pingcheng.bureau"] {
        assert!(!denied.message().contains(secret), "{}", denied.message());
    }
    s.stop().await;
}
