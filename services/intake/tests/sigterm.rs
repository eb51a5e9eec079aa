//! SIGTERM, as `docker stop` sends it, to the intake binary on PostgreSQL + Redis: the call in
//! flight is answered, the outbox is flushed, and the process exits 0 within 10 s.

use petition_auth::{Role, TokenKeys};
use petition_proto::v1 as pb;
use petition_testkit::grpc::{bearer, load_request};
use petition_testkit::{ServiceProcess, TestDatabase, TestRedis, require};
use sqlx::Connection;
use std::time::Duration;

#[tokio::test]
async fn sigterm_answers_the_call_in_flight_flushes_the_outbox_and_exits_0() {
    let db = require!(TestDatabase::create());
    let redis = require!(TestRedis::create());
    let mut process = ServiceProcess::spawn(
        env!("CARGO_BIN_EXE_petition-intake"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--dev",
            "--database-url",
            &db.url,
            "--redis-url",
            &redis.url,
            "--stream-prefix",
            &redis.prefix,
        ],
        &[],
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", process.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let clerk = petition_auth::Principal {
        subject: "clerk".into(),
        org: "pingcheng.bureau".into(),
        role: Role::Clerk,
        scopes: vec![],
    };
    let mut c = pb::intake_service_client::IntakeServiceClient::with_interceptor(
        channel,
        bearer(&TokenKeys::dev(), &clerk),
    );
    c.register_petition(load_request(1)).await.unwrap();

    // Hold the district's case-number register, so the next registration waits inside.
    let mut lock = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = lock.begin().await.unwrap();
    sqlx::query("SELECT last_seq FROM intake.case_number_counters FOR UPDATE")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    let call = tokio::spawn(async move { c.register_petition(load_request(2)).await });
    petition_testkit::wait_for_lock_wait(&db.url).await;

    process.sigterm();
    process
        .wait_for_line(|l| l.contains("shutting down"), Duration::from_secs(5))
        .expect("the service heard SIGTERM");
    tx.rollback().await.unwrap();
    let answered = call.await.unwrap().expect("the call in flight is answered");
    assert_eq!(
        answered.into_inner().case_number.len(),
        "140213-2026-000002".len()
    );
    let status = process
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit within 10 s:\n{}", process.log.join("\n")));
    assert!(
        status.success(),
        "exit {status:?}:\n{}",
        process.log.join("\n")
    );

    // Both events reached the stream; nothing is left in the outbox.
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM intake.outbox WHERE published_at IS NULL")
            .fetch_one(&mut lock)
            .await
            .unwrap();
    assert_eq!(unpublished, 0);
    let mut r = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg(format!("{}petition.intake.v1", redis.prefix))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(len, 2);
}
