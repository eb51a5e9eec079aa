//! Property tests ("fuzz") of event envelopes as consumers read them off a stream: any bytes
//! decode or are refused (and the consumer sends them to the dead-letter stream, see
//! `bus.rs`), never a panic; a truncated envelope never decodes as a different event.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p petition-events -E 'test(fuzz)'` runs it longer.

use petition_proto::v1 as pb;
use proptest::prelude::*;
use prost::Message;

fn envelope(case: &str) -> pb::EventEnvelope {
    petition_events::envelope(
        case,
        "intake",
        chrono::Utc::now(),
        pb::event_envelope::Payload::CaseAccepted(pb::CaseAccepted {
            organ: "pingcheng.housing".into(),
            ..Default::default()
        }),
    )
}

proptest! {
    #[test]
    fn fuzz_envelopes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = pb::EventEnvelope::decode(bytes.as_slice());
    }

    #[test]
    fn fuzz_truncated_and_flipped_envelopes(case in "[a-f0-9-]{1,36}", cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let full = envelope(&case).encode_to_vec();
        let n = cut.index(full.len());
        if let Ok(e) = pb::EventEnvelope::decode(&full[..n]) {
            // a prefix that decodes is missing fields, not carrying another case's
            prop_assert!(e.case_id.is_empty() || case.starts_with(&e.case_id));
        }
        let mut flipped = full.clone();
        flipped[n] ^= flip;
        let _ = pb::EventEnvelope::decode(flipped.as_slice());
    }
}
