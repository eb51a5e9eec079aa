//! SIGTERM to the all-in-one suite (PostgreSQL, in-process bus): the call in flight is
//! answered, every outbox is flushed — the registration reaches routing and routing's answer
//! reaches intake — and the process exits 0 within 10 s.

use petition_auth::{Role, TokenKeys};
use petition_proto::v1 as pb;
use petition_testkit::grpc::{bearer, load_request};
use petition_testkit::{ServiceProcess, TestDatabase, require};
use sqlx::Connection;
use std::time::Duration;

#[tokio::test]
async fn sigterm_answers_the_call_in_flight_flushes_every_outbox_and_exits_0() {
    let db = require!(TestDatabase::create());
    let mut process = ServiceProcess::spawn(
        env!("CARGO_BIN_EXE_petition-suite"),
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
        .expect("the suite heard SIGTERM");
    tx.rollback().await.unwrap();
    let answered = call
        .await
        .unwrap()
        .expect("the call in flight is answered")
        .into_inner();
    let status = process
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit within 10 s:\n{}", process.log.join("\n")));
    assert!(
        status.success(),
        "exit {status:?}:\n{}",
        process.log.join("\n")
    );

    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for (sql, want) in [
        (
            "SELECT count(*) FROM intake.outbox WHERE published_at IS NULL",
            0,
        ),
        (
            "SELECT count(*) FROM routing.outbox WHERE published_at IS NULL",
            0,
        ),
        ("SELECT count(*) FROM routing.assignments", 2),
    ] {
        let got: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
        assert_eq!(got, want, "{sql}");
    }
    let holder: Option<String> =
        sqlx::query_scalar("SELECT holder FROM intake.cases WHERE case_number = $1")
            .bind(&answered.case_number)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert!(
        holder.is_some(),
        "routing's answer reached intake before the exit"
    );
}
