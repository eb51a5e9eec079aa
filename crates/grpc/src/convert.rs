//! Conversions between protobuf messages and domain types, shared by every service.

use chrono::{DateTime, Utc};
use petition_domain::{Channel, Diversion, TypeOfMatter};
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

/// From the stored text form; unknown text maps to UNSPECIFIED.
pub fn channel_str_to_pb(s: &str) -> pb::Channel {
    s.parse::<Channel>()
        .map(channel_to_pb)
        .unwrap_or(pb::Channel::Unspecified)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_and_unspecified_is_none() {
        for c in Channel::ALL {
            assert_eq!(channel_from_pb(channel_to_pb(c) as i32), Some(c));
            assert_eq!(channel_str_to_pb(c.as_str()), channel_to_pb(c));
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
    fn types_round_trip() {
        for t in [
            TypeOfMatter::Suggestion,
            TypeOfMatter::Accusation,
            TypeOfMatter::Grievance,
        ] {
            assert_eq!(type_from_pb(type_to_pb(Some(t)) as i32), Some(t));
        }
    }
}
