//! Supervision's events on `petition.supervision.v1`.

use crate::workflow::Change;
use chrono::{DateTime, Utc};
use petition_events::{OutboxMessage, Stream};

pub const PRODUCER: &str = "supervision";

/// The outbox messages of a change: one envelope per event it sent.
pub fn of(c: &Change, now: DateTime<Utc>) -> Vec<OutboxMessage> {
    c.events
        .iter()
        .map(|p| {
            petition_events::to_outbox(
                Stream::Supervision,
                &petition_events::envelope(&c.file.case.case_id, PRODUCER, now, p.clone()),
            )
        })
        .collect()
}
