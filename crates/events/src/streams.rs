//! Where events travel: the streams, the consumer groups that read them, and each event's type,
//! named once here so that no service imports another to read its stream.

use petition_proto::v1::event_envelope::Payload;

petition_domain::text_enum! {
    /// A stream of events, versioned by its name; additive changes only.
    pub enum Stream {
        /// intake's registrations
        Intake = "petition.intake.v1",
        /// routing's decisions and the department inbox's steps
        Routing = "petition.routing.v1",
        /// supervision's clocks, urging and ratings
        Supervision = "petition.supervision.v1",
    }
}

/// Consumer groups, named after the consuming service.
pub mod group {
    pub const INTAKE: &str = "intake";
    pub const ROUTING: &str = "routing";
    pub const SUPERVISION: &str = "supervision";
    pub const ANALYTICS: &str = "analytics";
}

/// The envelope's `type`, derived from the payload so that the two can never disagree.
pub fn event_type(payload: &Payload) -> &'static str {
    match payload {
        Payload::PetitionRegistered(_) => "petition.registered",
        Payload::PetitionRouted(_) => "petition.routed",
        Payload::CaseAccepted(_) => "case.accepted",
        Payload::ObjectionRaised(_) => "objection.raised",
        Payload::ObjectionResolved(_) => "objection.resolved",
        Payload::CaseAnswered(_) => "case.answered",
        Payload::ExtensionRequested(_) => "extension.requested",
        Payload::CompletionReported(_) => "completion.reported",
        Payload::NoticeIssued(_) => "notice.issued",
        Payload::ExtensionDecided(_) => "extension.decided",
        Payload::ClockPaused(_) => "clock.paused",
        Payload::ClockResumed(_) => "clock.resumed",
        Payload::CaseRated(_) => "case.rated",
        Payload::ReviewRequested(_) => "review.requested",
        Payload::ReviewDecided(_) => "review.decided",
        Payload::CaseFinal(_) => "case.final",
        Payload::ClockRecounted(_) => "clock.recounted",
        Payload::LeaderTookCharge(_) => "leader.took_charge",
        Payload::CaseResolved(_) => "case.resolved",
        Payload::RecusalRecorded(_) => "recusal.recorded",
        Payload::RecusalLifted(_) => "recusal.lifted",
        Payload::PeerProgressed(_) => "peer.progressed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_versioned() {
        for s in Stream::ALL {
            assert!(s.as_str().starts_with("petition.") && s.as_str().ends_with(".v1"));
            assert_eq!(s.as_str().parse::<Stream>().unwrap(), *s);
        }
    }
}
