//! Conversions between protobuf messages and domain types, shared by every service. Input
//! enums map UNSPECIFIED (and unknown numbers) to `None`, which the caller rejects with the
//! field's name.

use chrono::{DateTime, Utc};
use petition_domain::{
    CaseStatus, Channel, Diversion, IdType, RecusalReason, Sex, StepKind, TypeOfMatter,
};
use petition_proto::v1 as pb;

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn from_ts(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

pub fn channel_from_pb(v: i32) -> Option<Channel> {
    match pb::Channel::try_from(v).ok()? {
        pb::Channel::Unspecified => None,
        pb::Channel::Visit => Some(Channel::Visit),
        pb::Channel::Letter => Some(Channel::Letter),
        pb::Channel::Online => Some(Channel::Online),
        pb::Channel::Phone => Some(Channel::Phone),
        pb::Channel::Fax => Some(Channel::Fax),
        pb::Channel::Upstream => Some(Channel::Upstream),
    }
}

pub fn channel_to_pb(c: Channel) -> pb::Channel {
    match c {
        Channel::Visit => pb::Channel::Visit,
        Channel::Letter => pb::Channel::Letter,
        Channel::Online => pb::Channel::Online,
        Channel::Phone => pb::Channel::Phone,
        Channel::Fax => pb::Channel::Fax,
        Channel::Upstream => pb::Channel::Upstream,
    }
}

pub fn type_to_pb(t: Option<TypeOfMatter>) -> pb::TypeOfMatter {
    match t {
        Some(TypeOfMatter::Suggestion) => pb::TypeOfMatter::Suggestion,
        Some(TypeOfMatter::Accusation) => pb::TypeOfMatter::Accusation,
        Some(TypeOfMatter::Grievance) => pb::TypeOfMatter::Grievance,
        None => pb::TypeOfMatter::Unspecified,
    }
}

pub fn type_from_pb(v: i32) -> Option<TypeOfMatter> {
    match pb::TypeOfMatter::try_from(v).ok()? {
        pb::TypeOfMatter::Unspecified => None,
        pb::TypeOfMatter::Suggestion => Some(TypeOfMatter::Suggestion),
        pb::TypeOfMatter::Accusation => Some(TypeOfMatter::Accusation),
        pb::TypeOfMatter::Grievance => Some(TypeOfMatter::Grievance),
    }
}

/// `None` = handled as a petition (DIVERSION_NONE).
pub fn diversion_to_pb(d: Option<Diversion>) -> pb::Diversion {
    match d {
        None => pb::Diversion::None,
        Some(Diversion::Litigation) => pb::Diversion::Litigation,
        Some(Diversion::Arbitration) => pb::Diversion::Arbitration,
        Some(Diversion::Reconsideration) => pb::Diversion::Reconsideration,
        Some(Diversion::Discipline) => pb::Diversion::Discipline,
    }
}

pub fn diversion_from_pb(v: i32) -> Option<Diversion> {
    match pb::Diversion::try_from(v).ok()? {
        pb::Diversion::Unspecified | pb::Diversion::None => None,
        pb::Diversion::Litigation => Some(Diversion::Litigation),
        pb::Diversion::Arbitration => Some(Diversion::Arbitration),
        pb::Diversion::Reconsideration => Some(Diversion::Reconsideration),
        pb::Diversion::Discipline => Some(Diversion::Discipline),
    }
}

pub fn id_type_from_pb(v: i32) -> Option<IdType> {
    match pb::IdType::try_from(v).ok()? {
        pb::IdType::Unspecified => None,
        pb::IdType::ResidentId => Some(IdType::ResidentId),
        pb::IdType::Passport => Some(IdType::Passport),
        pb::IdType::Other => Some(IdType::Other),
    }
}

pub fn recusal_reason_from_pb(v: i32) -> Option<RecusalReason> {
    match pb::RecusalReason::try_from(v).ok()? {
        pb::RecusalReason::Unspecified => None,
        pb::RecusalReason::Relative => Some(RecusalReason::Relative),
        pb::RecusalReason::Party => Some(RecusalReason::Party),
        pb::RecusalReason::Accused => Some(RecusalReason::Accused),
        pb::RecusalReason::OtherInterest => Some(RecusalReason::OtherInterest),
    }
}

/// What a recusal event asks of a service's copy: record (the case, the member of staff, why,
/// when) or lift (the case, the member of staff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecusalChange<'a> {
    Recorded(&'a str, &'a str, RecusalReason, DateTime<Utc>),
    Lifted(&'a str, &'a str, DateTime<Utc>),
}

/// A recusal event, recorded or lifted; `None` for any other event, or a malformed one.
pub fn recusal_change(e: &pb::EventEnvelope) -> Option<RecusalChange<'_>> {
    match &e.payload {
        Some(pb::event_envelope::Payload::RecusalLifted(l)) => Some(RecusalChange::Lifted(
            &l.case_id,
            &l.subject,
            l.lifted_at.as_ref().and_then(from_ts)?,
        )),
        _ => recusal_of(e).map(|(c, s, r, t)| RecusalChange::Recorded(c, s, r, t)),
    }
}

/// A recusal (回避) event as the services that copy it read it: the case, the member of staff,
/// why, and when. `None` for any other event, or one without a reason or a time.
pub fn recusal_of(e: &pb::EventEnvelope) -> Option<(&str, &str, RecusalReason, DateTime<Utc>)> {
    match &e.payload {
        Some(pb::event_envelope::Payload::RecusalRecorded(r)) => Some((
            r.case_id.as_str(),
            r.subject.as_str(),
            recusal_reason_from_pb(r.reason)?,
            r.recorded_at.as_ref().and_then(from_ts)?,
        )),
        _ => None,
    }
}

pub fn recusal_reason_to_pb(r: RecusalReason) -> pb::RecusalReason {
    match r {
        RecusalReason::Relative => pb::RecusalReason::Relative,
        RecusalReason::Party => pb::RecusalReason::Party,
        RecusalReason::Accused => pb::RecusalReason::Accused,
        RecusalReason::OtherInterest => pb::RecusalReason::OtherInterest,
    }
}

pub fn id_type_to_pb(t: Option<IdType>) -> pb::IdType {
    match t {
        Some(IdType::ResidentId) => pb::IdType::ResidentId,
        Some(IdType::Passport) => pb::IdType::Passport,
        Some(IdType::Other) => pb::IdType::Other,
        None => pb::IdType::Unspecified,
    }
}

pub fn sex_to_pb(s: Option<Sex>) -> pb::Sex {
    match s {
        Some(Sex::Male) => pb::Sex::Male,
        Some(Sex::Female) => pb::Sex::Female,
        None => pb::Sex::Unspecified,
    }
}

/// `None` for unspecified.
pub fn case_status_from_pb(v: i32) -> Option<CaseStatus> {
    match pb::CaseStatus::try_from(v).ok()? {
        pb::CaseStatus::Unspecified => None,
        pb::CaseStatus::Registered => Some(CaseStatus::Registered),
        pb::CaseStatus::Routed => Some(CaseStatus::Routed),
        pb::CaseStatus::Diverted => Some(CaseStatus::Diverted),
        pb::CaseStatus::Linked => Some(CaseStatus::Linked),
        pb::CaseStatus::InHandling => Some(CaseStatus::InHandling),
        pb::CaseStatus::Answered => Some(CaseStatus::Answered),
        pb::CaseStatus::Closed => Some(CaseStatus::Closed),
    }
}

pub fn case_status_to_pb(s: CaseStatus) -> pb::CaseStatus {
    match s {
        CaseStatus::Registered => pb::CaseStatus::Registered,
        CaseStatus::Routed => pb::CaseStatus::Routed,
        CaseStatus::Diverted => pb::CaseStatus::Diverted,
        CaseStatus::Linked => pb::CaseStatus::Linked,
        CaseStatus::InHandling => pb::CaseStatus::InHandling,
        CaseStatus::Answered => pb::CaseStatus::Answered,
        CaseStatus::Closed => pb::CaseStatus::Closed,
    }
}

pub fn step_kind_to_pb(k: StepKind) -> pb::StepKind {
    match k {
        StepKind::Registered => pb::StepKind::Registered,
        StepKind::Routed => pb::StepKind::Routed,
        StepKind::Diverted => pb::StepKind::Diverted,
        StepKind::Linked => pb::StepKind::Linked,
        StepKind::Triaged => pb::StepKind::Triaged,
        StepKind::Accepted => pb::StepKind::Accepted,
        StepKind::Objected => pb::StepKind::Objected,
        StepKind::ObjectionResolved => pb::StepKind::ObjectionResolved,
        StepKind::ExtensionRequested => pb::StepKind::ExtensionRequested,
        StepKind::Answered => pb::StepKind::Answered,
        StepKind::CompletionReported => pb::StepKind::CompletionReported,
        StepKind::ExtensionDecided => pb::StepKind::ExtensionDecided,
        StepKind::Rated => pb::StepKind::Rated,
        StepKind::ReviewRequested => pb::StepKind::ReviewRequested,
        StepKind::ReviewDecided => pb::StepKind::ReviewDecided,
        StepKind::ReexaminationRequested => pb::StepKind::ReexaminationRequested,
        StepKind::Reexamined => pb::StepKind::Reexamined,
        StepKind::Closed => pb::StepKind::Closed,
        StepKind::DeadlineMoved => pb::StepKind::DeadlineMoved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_and_unspecified_is_none() {
        for c in Channel::ALL {
            assert_eq!(channel_from_pb(channel_to_pb(*c) as i32), Some(*c));
        }
        assert_eq!(channel_from_pb(0), None);
        assert_eq!(channel_from_pb(99), None);
    }

    #[test]
    fn timestamps_round_trip() {
        let t = DateTime::from_timestamp(1_772_400_000, 123_000_000).unwrap();
        assert_eq!(from_ts(&ts(t)), Some(t));
        assert_eq!(
            from_ts(&prost_types::Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
    }

    #[test]
    fn enums_round_trip() {
        for t in TypeOfMatter::ALL {
            assert_eq!(type_from_pb(type_to_pb(Some(*t)) as i32), Some(*t));
        }
        for d in Diversion::ALL {
            assert_eq!(
                diversion_from_pb(diversion_to_pb(Some(*d)) as i32),
                Some(*d)
            );
        }
        for i in IdType::ALL {
            assert_eq!(id_type_from_pb(id_type_to_pb(Some(*i)) as i32), Some(*i));
        }
        let statuses: std::collections::HashSet<i32> = CaseStatus::ALL
            .iter()
            .map(|s| case_status_to_pb(*s) as i32)
            .collect();
        assert_eq!(statuses.len(), CaseStatus::ALL.len());
        assert!(!statuses.contains(&0));
        let steps: std::collections::HashSet<i32> = StepKind::ALL
            .iter()
            .map(|s| step_kind_to_pb(*s) as i32)
            .collect();
        assert_eq!(steps.len(), StepKind::ALL.len());
    }
}
