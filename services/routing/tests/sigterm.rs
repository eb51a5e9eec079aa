//! SIGTERM to the routing binary on PostgreSQL + Redis: the command in flight is answered, the
//! outbox is flushed, and the process exits 0 within 10 s.

use petition_auth::Role;
use petition_events::Stream;
use petition_proto::v1 as pb;
use petition_testkit::grpc::{routing_as, timestamp, who};
use petition_testkit::{ServiceProcess, TestDatabase, TestRedis, count, require};
use prost::Message;
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
    let bin = env!("CARGO_BIN_EXE_petition-routing");
    let mut process = ServiceProcess::spawn_on(bin, &db, Some(&redis));
    let case_id = uuid::Uuid::now_v7().to_string();
    registered(&redis, &case_id).await;
    let routed = format!("SELECT count(*) FROM routing.assignments WHERE case_id = '{case_id}'");
    for _ in 0..400 {
        if count(&db.url, &routed).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The case's row is held, so that accepting it waits inside.
    let mut c = routing_as(process.grpc_addr, &who("pingcheng.housing", Role::Handler)).await;
    let id = case_id.clone();
    let accepted = process
        .terminate_during(
            &db,
            &format!("SELECT * FROM routing.assignments WHERE case_id = '{case_id}' FOR UPDATE"),
            async move {
                c.accept_case(pb::AcceptCaseRequest {
                    case_id: id,
                    request_id: "accept".into(),
                })
                .await
            },
        )
        .await
        .expect("the command in flight is answered");
    assert_eq!(
        accepted.into_inner().state,
        pb::AssignmentState::Accepted as i32
    );
    process.expect_clean_exit();

    assert_eq!(petition_testkit::unpublished(&db.url, "routing").await, 0);
    assert_eq!(
        redis.stream_len(Stream::Routing.as_str()).await,
        2,
        "routed, then accepted"
    );
}
