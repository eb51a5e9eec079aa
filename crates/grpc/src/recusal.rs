//! The copy of recusals (回避) that intake, supervision and analytics keep: one reading of
//! routing's events, so that the three apply them alike.

use crate::convert::{RecusalChange, recusal_change};
use petition_proto::v1::EventEnvelope;
use petition_storage::{Tx, recusals};

/// Applies a recusal event to this service's copy, in the consumer's transaction: `None` when
/// `e` is no recusal event, else whether the copy changed (a replayed event changes nothing).
pub async fn apply(tx: &mut Tx, e: &EventEnvelope) -> Result<Option<bool>, sqlx::Error> {
    match recusal_change(e) {
        None => Ok(None),
        Some(RecusalChange::Recorded(case_id, subject, reason, at)) => {
            recusals::record(tx, case_id, subject, reason.as_str(), at)
                .await
                .map(Some)
        }
        Some(RecusalChange::Lifted(case_id, subject, at)) => {
            recusals::lift(tx, case_id, subject, at).await.map(Some)
        }
    }
}

/// Whether `e` changes a copy of the recusals.
pub fn is_recusal(e: &EventEnvelope) -> bool {
    recusal_change(e).is_some()
}
