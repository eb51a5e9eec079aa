//! What each service does with a peer deployment's step (DESIGN §5b): routing applies the
//! steps that move its copy of the case and start or meet our clocks (acceptance, the written
//! reply, the completion report); intake writes every other step into the timeline itself.
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
