//! Idempotent apply: a consumer records each event id it has applied in the same transaction as
//! the effect, so a redelivered event changes nothing.

use petition_domain::{Clock, SystemClock};
use petition_storage::{Tx, micros};

/// True the first time `event_id` is seen by `group`; false for a redelivery, in which case the
/// caller skips the effect (and still commits and acknowledges). The mark's time is the wall
/// clock's: it only decides when the mark may be purged.
pub async fn first_time(tx: &mut Tx, group: &str, event_id: &str) -> Result<bool, sqlx::Error> {
    let at = SystemClock.now();
    let r = sqlx::query(
        "INSERT INTO processed_events (consumer_group, event_id, processed_at) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(group)
    .bind(event_id)
    .bind(micros(at))
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}
