//! Case status flows back to intake: the handler of the organ holding a case reads the
//! petition it must answer, and the petitioner's query-code view shows the case routed,
//! accepted and answered, with dates — on PostgreSQL + Redis and on the embedded default.

use chrono::TimeZone;
use petition_auth::Role;
mod common;

use common::Suite;
use petition_e2e::{samples, who};
use petition_proto::v1 as pb;

fn beijing(m: u32, d: u32, h: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, m, d, h, 0, 0)
        .unwrap()
        .to_utc()
}

fn day(t: &Option<prost_types::Timestamp>) -> chrono::NaiveDate {
    let t = t.as_ref().expect("a date");
    petition_domain::calendar::local_date(
        chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap(),
    )
}

async fn the_case_travels_and_everyone_sees_where_it_is(s: &Suite) {
    let sample = samples().into_iter().find(|s| s.sample == 1).unwrap();
    let mut clerk = s.intake(&sample.principal()).await;
    let registered = clerk
        .register_petition(sample.request())
        .await
        .unwrap()
        .into_inner();
    let routed = s.routed(&registered.case_id).await;
    assert_eq!(routed.organ, "pingcheng.housing");

    // Intake learns where the case went: status, holder, timeline.
    let case = s
        .case_when(&registered.case_id, |c| {
            c.status == pb::CaseStatus::Routed as i32
        })
        .await;
    assert_eq!(case.holder, "pingcheng.housing");
    assert_eq!(case.holder_name, "平城区住房和城乡建设局");

    // The housing bureau's handler reads what it must answer: the content, the petitioner's
    // name, and personal data masked.
    let handler = who("pingcheng.housing", Role::Handler);
    let mut h = s.intake(&handler).await;
    let seen = h
        .get_case(pb::GetCaseRequest {
            case_id: registered.case_id.clone(),
            case_number: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.content, sample.petition.content);
    assert_eq!(seen.title, sample.petition.title);
    // the family name only: the name is personal data too
    assert_eq!(
        seen.petitioners[0].name,
        petition_domain::identity::mask_name(&sample.petition.petitioners[0].name)
    );
    assert_ne!(
        seen.petitioners[0].name,
        sample.petition.petitioners[0].name
    );
    assert!(seen.petitioners[0].masked);
    assert_eq!(seen.petitioners[0].id_number, "1402**********1017");
    // It finds it in its list too, as an organ that holds it.
    let listed = h
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .cases
            .iter()
            .any(|c| c.id == registered.case_id && c.holder == "pingcheng.housing")
    );

    // Accepted the next day, answered a week later.
    let mut inbox = s.routing(&handler).await;
    s.set_clock(beijing(3, 12, 9)).await;
    inbox
        .accept_case(pb::AcceptCaseRequest {
            case_id: registered.case_id.clone(),
            request_id: "accept".into(),
        })
        .await
        .unwrap();
    s.set_clock(beijing(3, 19, 15)).await;
    inbox
        .submit_reply(pb::SubmitReplyRequest {
            case_id: registered.case_id.clone(),
            outcome: pb::ReplyOutcome::Supported as i32,
            text: "开发商已承诺三个月内办理不动产权证。".into(),
            legal_basis: String::new(),
            service: Some(pb::ServiceRecord {
                mode: pb::ServiceMode::InPerson as i32,
                served_at: Some(petition_e2e::timestamp(beijing(3, 19, 15))),
                signed: true,
                refused: false,
                view: pb::PetitionerView::Agrees as i32,
            }),
            request_id: "reply".into(),
        })
        .await
        .unwrap();
    let answered = s
        .case_when(&registered.case_id, |c| {
            c.status == pb::CaseStatus::Answered as i32
        })
        .await;
    let kinds: Vec<i32> = answered.timeline.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [
            pb::StepKind::Registered as i32,
            pb::StepKind::Routed as i32,
            pb::StepKind::Accepted as i32,
            pb::StepKind::Answered as i32,
        ]
    );

    // The petitioner, by query code: routed → accepted → answered, with dates.
    let view = clerk
        .lookup_by_query_code(pb::LookupByQueryCodeRequest {
            query_code: registered.query_code.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.status, pb::CaseStatus::Answered as i32);
    assert_eq!(view.holder_name, "平城区住房和城乡建设局");
    let steps: Vec<(i32, chrono::NaiveDate)> =
        view.steps.iter().map(|s| (s.kind, day(&s.at))).collect();
    assert_eq!(
        steps,
        [
            (
                pb::StepKind::Registered as i32,
                day(&Some(petition_e2e::timestamp(beijing(3, 11, 12))))
            ),
            (
                pb::StepKind::Routed as i32,
                day(&Some(petition_e2e::timestamp(beijing(3, 11, 12))))
            ),
            (
                pb::StepKind::Accepted as i32,
                chrono::NaiveDate::from_ymd_opt(2026, 3, 12).unwrap()
            ),
            (
                pb::StepKind::Answered as i32,
                chrono::NaiveDate::from_ymd_opt(2026, 3, 19).unwrap()
            ),
        ]
    );
    // 60 days from 03-12 end on 05-11 (a Monday): the petitioner is told the reply's due date.
    assert!(
        view.steps[2].note.contains("2026-05-11") && view.steps[2].note.contains("Art. 34"),
        "{}",
        view.steps[2].note
    );
    assert!(
        view.steps[3].note.contains("supported"),
        "{}",
        view.steps[3].note
    );
    for step in &view.steps {
        assert!(
            !step.note.contains("competent by field"),
            "routing's internal rule is not the petitioner's business: {}",
            step.note
        );
    }
}

#[tokio::test]
async fn on_postgres_and_redis() {
    let Some(s) = Suite::postgres_and_redis(beijing(3, 11, 12)).await else {
        return;
    };
    the_case_travels_and_everyone_sees_where_it_is(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn on_the_embedded_default() {
    let s = Suite::embedded(beijing(3, 11, 12)).await;
    the_case_travels_and_everyone_sees_where_it_is(&s).await;
    s.stop().await;
}
