//! SIGTERM, as `docker stop` sends it, to the intake binary on PostgreSQL + Redis: the call in
//! flight is answered, the outbox is flushed, and the process exits 0 within 10 s.

use petition_auth::Role;
use petition_testkit::grpc::{intake_as, load_request, who};
use petition_testkit::{ServiceProcess, TestDatabase, TestRedis, require};

#[tokio::test]
async fn sigterm_answers_the_call_in_flight_flushes_the_outbox_and_exits_0() {
    let db = require!(TestDatabase::create());
    let redis = require!(TestRedis::create());
    let bin = env!("CARGO_BIN_EXE_petition-intake");
    let mut intake = ServiceProcess::spawn_on(bin, &db, Some(&redis));
    let mut c = intake_as(intake.grpc_addr, &who("pingcheng.bureau", Role::Clerk)).await;
    c.register_petition(load_request(1)).await.unwrap();
    // The district's case-number register is held, so the next registration waits inside.
    let answered = intake
        .terminate_during(
            &db,
            "SELECT * FROM intake.case_number_counters FOR UPDATE",
            async move { c.register_petition(load_request(2)).await },
        )
        .await;
    answered.expect("the call in flight is answered");
    intake.expect_clean_exit();

    // Both events reached the stream; nothing is left in the outbox.
    assert_eq!(petition_testkit::unpublished(&db.url, "intake").await, 0);
    assert_eq!(redis.stream_len("petition.intake.v1").await, 2);
}
