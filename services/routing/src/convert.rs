//! Routing's records and enums as protobuf, and the request enums back.

use crate::model::{
    AssignmentRecord, AssignmentState, HandlingMode, PetitionerView, ReplyOutcome, RouteOutcome,
    ServiceMode,
};
use chrono::DateTime;
use petition_grpc::convert::{channel_to_pb, diversion_to_pb, ts, type_to_pb};
use petition_proto::v1 as pb;

pub fn mode_to_pb(m: Option<HandlingMode>) -> pb::HandlingMode {
    match m {
        Some(HandlingMode::Forward) => pb::HandlingMode::Forward,
        Some(HandlingMode::Assign) => pb::HandlingMode::Assign,
        None => pb::HandlingMode::Unspecified,
    }
}

pub fn mode_from_pb(v: i32) -> Option<HandlingMode> {
    match pb::HandlingMode::try_from(v).ok()? {
        pb::HandlingMode::Forward => Some(HandlingMode::Forward),
        pb::HandlingMode::Assign => Some(HandlingMode::Assign),
        pb::HandlingMode::Unspecified => None,
    }
}

pub fn outcome_to_pb(o: RouteOutcome) -> pb::RouteOutcome {
    match o {
        RouteOutcome::Sent => pb::RouteOutcome::Sent,
        RouteOutcome::Diverted => pb::RouteOutcome::Diverted,
        RouteOutcome::Linked => pb::RouteOutcome::Linked,
        RouteOutcome::Triage => pb::RouteOutcome::Triage,
    }
}

pub fn state_to_pb(s: AssignmentState) -> pb::AssignmentState {
    match s {
        AssignmentState::AwaitingAcceptance => pb::AssignmentState::AwaitingAcceptance,
        AssignmentState::Accepted => pb::AssignmentState::Accepted,
        AssignmentState::Objected => pb::AssignmentState::Objected,
        AssignmentState::Diverted => pb::AssignmentState::Diverted,
        AssignmentState::Linked => pb::AssignmentState::Linked,
        AssignmentState::Triage => pb::AssignmentState::Triage,
        AssignmentState::Answered => pb::AssignmentState::Answered,
        AssignmentState::Completed => pb::AssignmentState::Completed,
    }
}

pub fn reply_to_pb(o: Option<ReplyOutcome>) -> pb::ReplyOutcome {
    match o {
        Some(ReplyOutcome::Supported) => pb::ReplyOutcome::Supported,
        Some(ReplyOutcome::Explained) => pb::ReplyOutcome::Explained,
        Some(ReplyOutcome::NotSupported) => pb::ReplyOutcome::NotSupported,
        None => pb::ReplyOutcome::Unspecified,
    }
}

pub fn reply_from_pb(v: i32) -> Option<ReplyOutcome> {
    match pb::ReplyOutcome::try_from(v).ok()? {
        pb::ReplyOutcome::Supported => Some(ReplyOutcome::Supported),
        pb::ReplyOutcome::Explained => Some(ReplyOutcome::Explained),
        pb::ReplyOutcome::NotSupported => Some(ReplyOutcome::NotSupported),
        pb::ReplyOutcome::Unspecified => None,
    }
}

pub fn service_mode_from_pb(v: i32) -> Option<ServiceMode> {
    match pb::ServiceMode::try_from(v).ok()? {
        pb::ServiceMode::InPerson => Some(ServiceMode::InPerson),
        pb::ServiceMode::Post => Some(ServiceMode::Post),
        pb::ServiceMode::Other => Some(ServiceMode::Other),
        pb::ServiceMode::Unspecified => None,
    }
}

/// An unspecified view is recorded as no view expressed.
pub fn view_from_pb(v: i32) -> PetitionerView {
    match pb::PetitionerView::try_from(v) {
        Ok(pb::PetitionerView::Agrees) => PetitionerView::Agrees,
        Ok(pb::PetitionerView::Disagrees) => PetitionerView::Disagrees,
        _ => PetitionerView::NoView,
    }
}

/// The assignment as a client sees it; `bucket` is computed for `now`.
/// `calendar` marks the dates counted into a year it does not cover.
pub fn assignment(
    r: &AssignmentRecord,
    bucket: pb::InboxBucket,
    calendar: &petition_domain::calendar::HolidayCalendar,
) -> pb::Assignment {
    pb::Assignment {
        case_id: r.case_id.clone(),
        case_number: r.case_number.clone(),
        organ: r.organ.clone(),
        outcome: outcome_to_pb(r.outcome) as i32,
        state: state_to_pb(r.state) as i32,
        mode: mode_to_pb(r.mode) as i32,
        rule: r.rule.clone(),
        notice: r.notice.clone(),
        hops: r.hops.clone(),
        linked_case_number: r.linked_case_number.clone().unwrap_or_default(),
        diversion: diversion_to_pb(r.diversion) as i32,
        type_of_matter: type_to_pb(r.type_of_matter) as i32,
        category: r.category.clone(),
        problem_location: r.problem_location.clone(),
        channel: channel_to_pb(r.channel) as i32,
        forwarding_bureau: r.forwarding_bureau.clone(),
        received_at: Some(ts(r.received_at)),
        route_due: Some(ts(r.route_due)),
        organ_received_at: r.organ_received_at.map(ts),
        objection_due: r.objection_due.map(ts),
        accepted_at: r.accepted_at.map(ts),
        handling_due: r.handling_due.map(ts),
        report_due: r.report_due.map(ts),
        route_due_provisional: calendar.is_provisional_due(r.route_due),
        objection_due_provisional: r
            .objection_due
            .is_some_and(|d| calendar.is_provisional_due(d)),
        handling_due_provisional: r
            .handling_due
            .is_some_and(|d| calendar.is_provisional_due(d)),
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
        bucket: bucket as i32,
        reply_outcome: reply_to_pb(r.reply_outcome) as i32,
        replied_at: r.replied_at.map(ts),
        served_at: r.served_at.map(ts),
        extension_days: r.extension_days.unwrap_or_default() as u32,
        extension_reason: r.extension_reason.clone().unwrap_or_default(),
        completion_reported_at: r.completion_reported_at.map(ts),
    }
}
