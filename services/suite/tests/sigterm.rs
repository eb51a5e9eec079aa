//! SIGTERM to the all-in-one suite (PostgreSQL, in-process bus): the call in flight is
//! answered, every outbox is flushed — the registration reaches routing and routing's answer
//! reaches intake — and the process exits 0 within 10 s.

use petition_auth::Role;
use petition_testkit::grpc::{intake_as, load_request, who};
use petition_testkit::{ServiceProcess, TestDatabase, count, require};

#[tokio::test]
async fn sigterm_answers_the_call_in_flight_flushes_every_outbox_and_exits_0() {
    let db = require!(TestDatabase::create());
    let mut suite = ServiceProcess::spawn_on(env!("CARGO_BIN_EXE_petition-suite"), &db, None);
    let mut c = intake_as(suite.grpc_addr, &who("pingcheng.bureau", Role::Clerk)).await;
    c.register_petition(load_request(1)).await.unwrap();
    let held = "SELECT * FROM intake.case_number_counters FOR UPDATE";
    let answered = suite
        .terminate_during(&db, held, async move {
            c.register_petition(load_request(2)).await
        })
        .await
        .expect("the call in flight is answered")
        .into_inner();
    suite.expect_clean_exit();

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
        assert_eq!(count(&db.url, sql).await, want, "{sql}");
    }
    let routed_back = format!(
        "SELECT count(*) FROM intake.cases WHERE case_number = '{}' AND holder IS NOT NULL",
        answered.case_number
    );
    assert_eq!(
        count(&db.url, &routed_back).await,
        1,
        "routing's answer reached intake before the exit"
    );
}
