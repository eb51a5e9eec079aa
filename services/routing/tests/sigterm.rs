//! SIGTERM to the routing binary on PostgreSQL + Redis: the command in flight is answered, the
//! outbox is flushed, and the process exits 0 within 10 s.

use petition_auth::{Role, TokenKeys};
use petition_events::Stream;
use petition_proto::v1 as pb;
use petition_testkit::grpc::{bearer, timestamp};
use petition_testkit::{ServiceProcess, TestDatabase, TestRedis, require};
use prost::Message;
use sqlx::Connection;
use std::time::Duration;

/// Intake's event for a housing petition, put on the stream as intake would.
async fn registered(redis: &TestRedis, case_id: &str) {
    let envelope = petition_events::envelope(
        case_id,
        "intake",
        chrono::Utc::now(),
        pb::event_envelope::Payload::PetitionRegistered(pb::PetitionRegistered {
            case_id: case_id.into(),
            case_number: "140213-2026-000001".into(),
            channel: pb::Channel::Online as i32,
            received_by: "pingcheng.bureau".into(),
            received_at: Some(timestamp(chrono::Utc::now())),
            category: "01.01".into(),
            type_of_matter: pb::TypeOfMatter::Grievance as i32,
            problem_location: "140213001".into(),
            ..Default::default()
        }),
    );
    let mut r = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(format!("{}{}", redis.prefix, Stream::Intake))
        .arg("*")
        .arg("event")
        .arg(envelope.encode_to_vec())
        .arg("event_id")
        .arg(&envelope.event_id)
        .query_async(&mut r)
        .await
        .unwrap();
}

#[tokio::test]
async fn sigterm_answers_the_command_in_flight_flushes_the_outbox_and_exits_0() {
    let db = require!(TestDatabase::create());
    let redis = require!(TestRedis::create());
    let mut process = ServiceProcess::spawn(
        env!("CARGO_BIN_EXE_petition-routing"),
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
    let case_id = uuid::Uuid::now_v7().to_string();
    registered(&redis, &case_id).await;
    let mut lock = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for _ in 0..400 {
        let routed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM routing.assignments WHERE case_id = $1")
                .bind(&case_id)
                .fetch_one(&mut lock)
                .await
                .unwrap();
        if routed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Hold the case's row, so that accepting it waits inside.
    let mut tx = lock.begin().await.unwrap();
    sqlx::query("SELECT version FROM routing.assignments WHERE case_id = $1 FOR UPDATE")
        .bind(&case_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", process.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let handler = petition_auth::Principal {
        subject: "handler".into(),
        org: "pingcheng.housing".into(),
        role: Role::Handler,
        scopes: vec![],
    };
    let mut c = pb::routing_service_client::RoutingServiceClient::with_interceptor(
        channel,
        bearer(&TokenKeys::dev(), &handler),
    );
    let id = case_id.clone();
    let call = tokio::spawn(async move {
        c.accept_case(pb::AcceptCaseRequest {
            case_id: id,
            request_id: "accept".into(),
        })
        .await
    });
    petition_testkit::wait_for_lock_wait(&db.url).await;

    process.sigterm();
    process
        .wait_for_line(|l| l.contains("shutting down"), Duration::from_secs(5))
        .expect("the service heard SIGTERM");
    tx.rollback().await.unwrap();
    let accepted = call
        .await
        .unwrap()
        .expect("the command in flight is answered");
    assert_eq!(
        accepted.into_inner().state,
        pb::AssignmentState::Accepted as i32
    );
    let status = process
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit within 10 s:\n{}", process.log.join("\n")));
    assert!(
        status.success(),
        "exit {status:?}:\n{}",
        process.log.join("\n")
    );

    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM routing.outbox WHERE published_at IS NULL")
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
        .arg(format!("{}{}", redis.prefix, Stream::Routing))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(len, 2, "routed, then accepted");
}
