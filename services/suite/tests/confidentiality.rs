//! Where personal data may be, on the suite binary with PostgreSQL and Redis: after the sample
//! petitions have gone through every service, no ID number, phone or address is in the clear in
//! any column of any schema (intake seals them), no petitioner's or accused person's name is in
//! any schema but intake's registry, and nothing of them is in any event on the streams, in any
//! outbox or in any audit log (DOMAIN.md §9; analytics keeps age band and sex at most).

mod common;

use chrono::TimeZone;
use common::Suite;
use petition_auth::Role;
use petition_e2e::{samples, who};
use petition_proto::v1 as pb;

fn found(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn personal_data_is_only_where_the_registry_keeps_it() {
    let now = chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 3, 20, 9, 0, 0)
        .unwrap()
        .to_utc();
    let Some(s) = Suite::postgres_and_redis(now).await else {
        return;
    };
    let all = samples();
    let mut sealed_anywhere: Vec<String> = Vec::new(); // never in the clear, anywhere
    let mut names: Vec<String> = Vec::new(); // only in intake's registry
    for sample in &all {
        for p in &sample.petition.petitioners {
            sealed_anywhere.extend([p.id_number.clone(), p.phone.clone(), p.address.clone()]);
            names.push(p.name.clone());
        }
        if let Some(a) = &sample.petition.accused {
            sealed_anywhere.push(a.name.clone());
        }
        // every sample registers, but for those the rules refuse (a petition not accepted again)
        if let Err(e) = s
            .intake(&sample.principal())
            .await
            .register_petition(sample.request())
            .await
        {
            assert_eq!(
                e.code(),
                tonic::Code::FailedPrecondition,
                "sample {}: {e}",
                sample.sample
            );
        }
    }
    sealed_anywhere.retain(|v| v.chars().count() >= 2);
    // Every registration has gone through analytics, and the chains are linked.
    let mut figures = s.analytics(&who("shanxi.bureau", Role::Admin)).await;
    let registered = s
        .intake(&who("shanxi.bureau", Role::Admin))
        .await
        .list_cases(pb::ListCasesRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases
        .len() as u64;
    assert!(registered > 10, "{registered}");
    let mut counted = 0;
    for _ in 0..800 {
        counted = figures
            .get_situation(pb::SituationRequest {
                period: "2026-03".into(),
                organ: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .cases
            .unwrap_or_default()
            .count;
        if counted == registered {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(counted, registered, "analytics has every case");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await; // one chainer round

    use sqlx::{Connection, Row};
    let mut pg = sqlx::PgConnection::connect(s.database_url().unwrap())
        .await
        .unwrap();
    let columns = sqlx::query(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns \
         WHERE table_schema IN ('intake', 'routing', 'supervision', 'analytics') \
         AND data_type IN ('text', 'bytea', 'character varying', 'jsonb')",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    assert!(
        columns.len() > 50,
        "the schemas are there: {}",
        columns.len()
    );
    let mut leaks = Vec::new();
    let mut cells = 0;
    let mut registry_names = 0;
    for c in &columns {
        let (schema, table, column, kind): (String, String, String, String) =
            (c.get(0), c.get(1), c.get(2), c.get(3));
        let select = if kind == "bytea" {
            format!(
                "SELECT \"{column}\" AS v FROM \"{schema}\".\"{table}\" WHERE \"{column}\" IS NOT NULL"
            )
        } else {
            format!(
                "SELECT convert_to(\"{column}\"::text, 'UTF8') AS v FROM \"{schema}\".\"{table}\" WHERE \"{column}\" IS NOT NULL"
            )
        };
        for row in sqlx::query(sqlx::AssertSqlSafe(select))
            .fetch_all(&mut pg)
            .await
            .unwrap()
        {
            cells += 1;
            let v: Vec<u8> = row.get(0);
            for secret in &sealed_anywhere {
                if found(&v, secret) {
                    leaks.push(format!("{schema}.{table}.{column} holds {secret:?}"));
                }
            }
            // the registry (intake's cases and petitioners) keeps names; nothing else does
            let registry = schema == "intake" && (table == "petitioners" || table == "cases");
            if registry {
                registry_names += names.iter().filter(|n| found(&v, n)).count();
            } else {
                for name in &names {
                    if found(&v, name) {
                        leaks.push(format!("{schema}.{table}.{column} holds the name {name:?}"));
                    }
                }
            }
        }
    }
    assert!(cells > 500, "rows were read: {cells}");
    assert!(
        registry_names >= all.len(),
        "the scan finds the names where the registry keeps them ({registry_names}): it would find them elsewhere"
    );

    // every event on every stream
    let redis = s.redis().unwrap();
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut events = 0;
    for stream in [
        "petition.intake.v1",
        "petition.routing.v1",
        "petition.supervision.v1",
    ] {
        let key = format!("{}{stream}", redis.prefix);
        let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut con)
            .await
            .unwrap();
        for e in entries.ids {
            for v in e.map.values() {
                let bytes: Vec<u8> = redis::from_redis_value(v.clone()).unwrap_or_default();
                events += 1;
                for secret in sealed_anywhere.iter().chain(&names) {
                    if found(&bytes, secret) {
                        leaks.push(format!("an event on {stream} holds {secret:?}"));
                    }
                }
            }
        }
    }
    assert!(events >= registered as usize, "events were read: {events}");
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    s.stop().await;
}
