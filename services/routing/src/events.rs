//! Routing's events on `petition.routing.v1`, built from the record as it now stands.

use crate::convert::{mode_to_pb, outcome_to_pb};
use crate::model::AssignmentRecord;
use chrono::{DateTime, Utc};
use pb::event_envelope::Payload;
use petition_events::{OutboxMessage, Stream};
use petition_grpc::convert::{diversion_to_pb, ts, type_to_pb};
use petition_proto::v1 as pb;

pub const PRODUCER: &str = "routing";

fn event(r: &AssignmentRecord, now: DateTime<Utc>, payload: Payload) -> OutboxMessage {
    petition_events::to_outbox(
        Stream::Routing,
        &petition_events::envelope(&r.case_id, PRODUCER, now, payload),
    )
}

/// `petition.routed`: whenever a case is routed or re-routed (automatically, by hand, after
/// an upheld objection, or transferred).
pub fn routed(r: &AssignmentRecord, now: DateTime<Utc>) -> OutboxMessage {
    event(
        r,
        now,
        Payload::PetitionRouted(pb::PetitionRouted {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
            organ: r.organ.clone(),
            outcome: outcome_to_pb(r.outcome) as i32,
            mode: mode_to_pb(r.mode) as i32,
            diversion: diversion_to_pb(r.diversion) as i32,
            rule: r.rule.clone(),
            hops: r.hops.clone(),
            linked_case_number: r.linked_case_number.clone().unwrap_or_default(),
            routed_at: Some(ts(now)),
            report_due: r.report_due.map(ts),
            type_of_matter: type_to_pb(r.type_of_matter) as i32,
            notice: r.notice.clone(),
            forwarding_bureau: r.forwarding_bureau.clone(),
            accused_organ_id: r.accused_organ.clone().unwrap_or_default(),
        }),
    )
}

/// `calendar` says whether the handling period was counted into a year it lacks.
pub fn accepted(
    r: &AssignmentRecord,
    calendar: &petition_domain::calendar::HolidayCalendar,
    now: DateTime<Utc>,
) -> OutboxMessage {
    event(
        r,
        now,
        Payload::CaseAccepted(pb::CaseAccepted {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
            organ: r.organ.clone(),
            accepted_at: Some(ts(now)),
            handling_due: r.handling_due.map(ts),
            handling_due_provisional: r
                .handling_due
                .is_some_and(|d| calendar.is_provisional_due(d)),
        }),
    )
}

pub fn objection_raised(r: &AssignmentRecord, now: DateTime<Utc>) -> OutboxMessage {
    event(
        r,
        now,
        Payload::ObjectionRaised(pb::ObjectionRaised {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
            organ: r.organ.clone(),
            reason: r.objection_reason.clone().unwrap_or_default(),
        }),
    )
}

/// The bureau's answer: agreeing with a new organ re-routes the case; anything else is the
/// answer alone.
pub fn objection_resolved(r: &AssignmentRecord, agreed: bool, now: DateTime<Utc>) -> OutboxMessage {
    if agreed && r.state == crate::model::AssignmentState::AwaitingAcceptance {
        return routed(r, now);
    }
    event(
        r,
        now,
        Payload::ObjectionResolved(pb::ObjectionResolved {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
            agreed,
            organ: r.organ.clone(),
        }),
    )
}

pub fn answered(r: &AssignmentRecord, now: DateTime<Utc>) -> OutboxMessage {
    event(
        r,
        now,
        Payload::CaseAnswered(pb::CaseAnswered {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
            organ: r.organ.clone(),
            outcome: crate::convert::reply_to_pb(r.reply_outcome) as i32,
            replied_at: r.replied_at.map(ts),
            served_at: r.served_at.map(ts),
            text: r.reply_text.clone().unwrap_or_default(),
            legal_basis: r.legal_basis.clone().unwrap_or_default(),
        }),
    )
}

pub fn extension_requested(r: &AssignmentRecord, now: DateTime<Utc>) -> OutboxMessage {
    event(
        r,
        now,
        Payload::ExtensionRequested(pb::ExtensionRequested {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
            organ: r.organ.clone(),
            days: r.extension_days.unwrap_or_default() as u32,
            reason: r.extension_reason.clone().unwrap_or_default(),
        }),
    )
}

pub fn completion_reported(r: &AssignmentRecord, now: DateTime<Utc>) -> OutboxMessage {
    event(
        r,
        now,
        Payload::CompletionReported(pb::CompletionReported {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
            organ: r.organ.clone(),
            reported_at: Some(ts(now)),
        }),
    )
}

/// `subject` is out of the case (回避): every service that holds it hides it from them.
pub fn recusal_recorded(
    r: &AssignmentRecord,
    subject: &str,
    reason: petition_domain::RecusalReason,
    now: DateTime<Utc>,
) -> OutboxMessage {
    event(
        r,
        now,
        Payload::RecusalRecorded(pb::RecusalRecorded {
            case_id: r.case_id.clone(),
            subject: subject.to_owned(),
            reason: petition_grpc::convert::recusal_reason_to_pb(reason) as i32,
            recorded_at: Some(ts(now)),
        }),
    )
}

/// An admin lifted `subject`'s recusal, recorded in error.
pub fn recusal_lifted(
    r: &AssignmentRecord,
    subject: &str,
    why: &str,
    now: DateTime<Utc>,
) -> OutboxMessage {
    event(
        r,
        now,
        Payload::RecusalLifted(pb::RecusalLifted {
            case_id: r.case_id.clone(),
            subject: subject.to_owned(),
            why: why.to_owned(),
            lifted_at: Some(ts(now)),
        }),
    )
}
