//! What each service does with a peer deployment's step (DESIGN §5b): routing applies the
//! steps that move its copy of the case and start or meet our clocks (acceptance, the written
//! reply, the completion report); supervision applies an extension the peer approved and the
//! petitioner's rating there to the clocks we hold; intake writes every step routing does not
//! apply into the timeline.
//! One list, so that no step is applied twice and none is dropped.

use petition_proto::v1::event_envelope::Payload;

/// Whether routing applies this step of a peer's to our copy (and our timeline then hears of
/// it through routing's own event).
pub fn routing_applies(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::CaseAccepted(_) | Payload::CaseAnswered(_) | Payload::CompletionReported(_)
    )
}

/// Whether supervision applies this step of a peer's to the clocks it holds for our copy: an
/// approved extension (Art. 34) lengthens the handling period the peer's organ owes; the
/// petitioner's rating there closes the rating window we hold, rated, not lapsed.
pub fn supervision_applies(payload: &Payload) -> bool {
    matches!(payload, Payload::ExtensionDecided(e) if e.approved)
        || matches!(payload, Payload::CaseRated(_))
}
