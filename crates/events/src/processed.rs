//! Idempotent apply: a consumer records each event id it has applied in the same transaction as
//! the effect, so a redelivered event changes nothing.

use petition_domain::{Clock, SystemClock};
use petition_storage::{Sql, Tx, micros};
use std::collections::HashSet;

/// True the first time `event_id` is seen by `group`; false for a redelivery, in which case the
/// caller skips the effect (and still commits and acknowledges).
pub async fn first_time(tx: &mut Tx, group: &str, event_id: &str) -> Result<bool, sqlx::Error> {
    Ok(!first_times(tx, group, [event_id]).await?.is_empty())
}

/// Marks a batch's event ids in one statement and returns those `group` sees for the first
/// time; an id twice in the batch (a relay that published a row again) is returned once, so
/// that its effect happens once. The mark's time is the wall clock's: it only decides when the
/// mark may be purged.
pub async fn first_times<'a>(
    tx: &mut Tx,
    group: &str,
    event_ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashSet<String>, sqlx::Error> {
    let at = micros(SystemClock.now());
    let ids: Vec<&str> = event_ids.into_iter().collect();
    let mut fresh = HashSet::with_capacity(ids.len());
    // Three parameters a row: 300 rows stay far below SQLite's 32,766.
    for chunk in ids.chunks(300) {
        let mut q = Sql::new(
            "INSERT INTO processed_events (consumer_group, event_id, processed_at) VALUES ",
        );
        for (i, id) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" })
                .bind(group.to_owned())
                .push(", ")
                .bind((*id).to_owned())
                .push(", ")
                .bind(at)
                .push(")");
        }
        q.push(" ON CONFLICT DO NOTHING RETURNING event_id");
        for row in q.build().fetch_all(&mut **tx).await? {
            fresh.insert(sqlx::Row::try_get::<String, _>(&row, "event_id")?);
        }
    }
    Ok(fresh)
}
