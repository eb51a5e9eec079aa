//! The chain on both dialects: entries written in transactions are linked in order; a walk
//! finds the first altered, removed or inserted entry, and a chain rewritten consistently is
//! caught by its anchors.

use chrono::{TimeZone, Utc};
use petition_audit::{Entry, Filter, anchor, append, chain_pending, list, verify};
use petition_storage::Db;
use petition_testkit::TestDb;

async fn open(t: &TestDb) -> Db {
    // the audit tables, as every service's schema has them
    t.open("audited", &sqlx::migrate::Migrator::DEFAULT).await
}

fn entry(n: u32, actor: &str, case: &str) -> Entry {
    Entry {
        at: Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, n).unwrap(),
        actor: actor.into(),
        organ: "pingcheng.bureau".into(),
        action: "petition.registered".into(),
        case_id: case.into(),
        detail: format!("event {n}"),
    }
}

async fn written(db: &Db, entries: &[Entry]) {
    let mut tx = db.begin().await.unwrap();
    append(&mut tx, entries).await.unwrap();
    tx.commit().await.unwrap();
}

async fn five_linked(db: &Db) {
    written(db, &[entry(1, "clerk@a", "c1"), entry(2, "clerk@a", "c2")]).await;
    written(db, &[entry(3, "handler@b", "c1")]).await;
    // a transaction that rolls back leaves nothing to audit
    let mut tx = db.begin().await.unwrap();
    append(&mut tx, &[entry(9, "nobody", "c9")]).await.unwrap();
    tx.rollback().await.unwrap();
    written(
        db,
        &[entry(4, "clerk@a", "c1"), entry(5, "handler@b", "c3")],
    )
    .await;
    assert_eq!(chain_pending(db, 3).await.unwrap(), 3);
    assert_eq!(chain_pending(db, 100).await.unwrap(), 2);
    assert_eq!(chain_pending(db, 100).await.unwrap(), 0);
}

async fn tamper(db: &Db, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(db.pool())
        .await
        .unwrap();
}

async fn links_in_order_and_lists_by_case_and_actor(db: Db) {
    five_linked(&db).await;
    let v = verify(&db).await.unwrap();
    assert_eq!((v.entries, v.pending, v.broken), (5, 0, None));
    let c1: Vec<i64> = list(&db, &Filter::Case("c1".into()), 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|l| l.seq)
        .collect();
    assert_eq!(c1, [1, 3, 4]);
    let by_b = list(&db, &Filter::Actor("handler@b".into()), 0, 10)
        .await
        .unwrap();
    assert_eq!(by_b.iter().map(|l| l.seq).collect::<Vec<_>>(), [3, 5]);
    assert_eq!(by_b[1].entry, entry(5, "handler@b", "c3"));
    let after = list(&db, &Filter::Case("c1".into()), 3, 10).await.unwrap();
    assert_eq!(after.len(), 1);
}

async fn an_altered_entry_is_named(db: Db) {
    five_linked(&db).await;
    tamper(
        &db,
        "UPDATE audit_log SET actor = 'someone@else' WHERE seq = 3",
    )
    .await;
    let b = verify(&db).await.unwrap().broken.expect("broken");
    assert_eq!(b.seq, 3);
    assert!(b.reason.contains("altered"), "{b:?}");
}

async fn a_removed_entry_is_named(db: Db) {
    five_linked(&db).await;
    tamper(&db, "DELETE FROM audit_log WHERE seq = 2").await;
    let b = verify(&db).await.unwrap().broken.expect("broken");
    assert_eq!(b.seq, 2);
    assert!(b.reason.contains("missing"), "{b:?}");
}

async fn a_rewritten_chain_is_caught_by_its_anchor(db: Db) {
    five_linked(&db).await;
    assert_eq!(anchor(&db, Utc::now()).await.unwrap().map(|a| a.0), Some(5));
    assert_eq!(
        anchor(&db, Utc::now()).await.unwrap(),
        None,
        "the head has not moved"
    );
    // Someone drops the last two entries and recomputes nothing else: the chain itself holds,
    // the anchor does not.
    tamper(&db, "DELETE FROM audit_log WHERE seq > 3").await;
    let b = verify(&db).await.unwrap().broken.expect("broken");
    assert_eq!(b.seq, 4);
    assert!(b.reason.contains("anchor"), "{b:?}");
}

/// Whoever can write the database can rewrite an entry, recompute every hash after it and
/// drop the anchors kept there: the walk then holds. The head logged before (and shipped off the
/// machine) does not.
async fn a_chain_recomputed_from_the_database_is_caught_by_an_anchor_kept_elsewhere(db: Db) {
    five_linked(&db).await;
    let shipped = anchor(&db, Utc::now()).await.unwrap().expect("the head");
    let links = list(&db, &Filter::Case("c1".into()), 0, 10).await.unwrap();
    assert_eq!(links[0].seq, 1);
    // rewrite entry 1's actor and recompute the chain from there, as an attacker would
    let mut rows = Vec::new();
    for seq in 1..=5 {
        let r = sqlx::query(
            "SELECT at, actor, organ, action, case_id, detail FROM audit_log WHERE seq = $1",
        )
        .bind(seq)
        .fetch_one(db.pool())
        .await
        .unwrap();
        use petition_storage::RowExt;
        rows.push(Entry {
            at: r.time("at").unwrap(),
            actor: if seq == 1 {
                "someone@else".into()
            } else {
                r.text("actor").unwrap()
            },
            organ: r.text("organ").unwrap(),
            action: r.text("action").unwrap(),
            case_id: r.text("case_id").unwrap(),
            detail: r.text("detail").unwrap(),
        });
    }
    let mut prev = petition_audit::GENESIS.to_vec();
    for (i, e) in rows.iter().enumerate() {
        let seq = i as i64 + 1;
        let hash = petition_audit::link_hash(seq, &prev, e);
        sqlx::query("UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(e.actor.clone())
            .bind(prev.clone())
            .bind(hash.clone())
            .bind(seq)
            .execute(db.pool())
            .await
            .unwrap();
        prev = hash;
    }
    tamper(&db, "DELETE FROM audit_anchors").await;
    assert_eq!(
        verify(&db).await.unwrap().broken,
        None,
        "the database alone cannot tell"
    );
    let b = petition_audit::verify_against(&db, &[shipped])
        .await
        .unwrap()
        .broken
        .expect("broken");
    assert_eq!(b.seq, 5);
    assert!(b.reason.contains("the anchor given to verify"), "{b:?}");
}

petition_testkit::dual_dialect!(
    open =>
    a_chain_recomputed_from_the_database_is_caught_by_an_anchor_kept_elsewhere,
    links_in_order_and_lists_by_case_and_actor,
    an_altered_entry_is_named,
    a_removed_entry_is_named,
    a_rewritten_chain_is_caught_by_its_anchor
);
