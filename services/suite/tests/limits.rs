//! Limits on the suite binary: a principal calling faster than its limit is told to wait
//! (RESOURCE_EXHAUSTED with RetryInfo) while others are served; a call stuck past the request
//! deadline is answered DEADLINE_EXCEEDED instead of hanging, and the service keeps serving.

mod common;

use common::Suite;
use petition_auth::Role;
use petition_e2e::who;
use petition_proto::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

fn args(extra: &[&str]) -> Vec<String> {
    extra.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn a_principal_over_its_limit_waits_and_others_do_not() {
    // 20 a minute: bursts of 2, then one every 3 s
    let s = Suite::embedded_args(&args(&["--rate-limit-per-minute", "20"]));
    let mut clerk = s.intake(&who("pingcheng.bureau", Role::Clerk)).await;
    for n in 0..2 {
        clerk
            .list_cases(pb::ListCasesRequest::default())
            .await
            .unwrap_or_else(|e| panic!("call {n}: {e}"));
    }
    let over = clerk
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over}");
    assert!(over.message().contains("20 calls a minute"), "{over}");
    let wait = over
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo says how long to wait");
    assert!(
        wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_secs(3),
        "{wait:?}"
    );
    // another person of the same organ is not held up by the first
    let mut colleague = s
        .intake(&petition_auth::Principal {
            subject: "clerk.li@pingcheng.bureau".into(),
            ..who("pingcheng.bureau", Role::Clerk)
        })
        .await;
    colleague
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap();
    s.stop().await;
}

#[tokio::test]
async fn a_stuck_call_is_answered_at_its_deadline() {
    let Some(s) = Suite::postgres_and_redis_args(&args(&["--request-timeout-secs", "1"])).await
    else {
        return;
    };
    let mut clerk = s.intake(&who("pingcheng.bureau", Role::Clerk)).await;
    clerk
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap();
    // Something holds intake's cases table: the read cannot finish.
    use sqlx::Connection;
    let mut holder = sqlx::PgConnection::connect(s.database_url().unwrap())
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE intake.cases IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let stuck = clerk
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(stuck.code(), Code::DeadlineExceeded, "{stuck}");
    assert!(stuck.message().contains("1000 ms"), "{stuck}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    clerk
        .list_cases(pb::ListCasesRequest::default())
        .await
        .expect("served again once the table is free");
    s.stop().await;
}
