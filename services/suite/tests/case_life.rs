//! A case's whole statutory life through the gRPC API on simulated time, on PostgreSQL +
//! Redis and on the embedded default: registered 2026-02-10 09:00 Beijing, routed, accepted,
//! extended, answered, rated; review requested on the 30th day after service (accepted) and,
//! for a second case, on the 31st (refused naming Art. 35 and the last day allowed);
//! re-examined, final; then a new petition with the same facts refused as 不再受理 naming
//! Art. 36 and the earlier case.

use chrono::TimeZone;
use petition_auth::Role;
mod common;

use common::Suite;
use petition_e2e::{samples, synthetic_resident_id, timestamp, who};
use petition_proto::v1 as pb;

fn beijing(m: u32, d: u32, h: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, m, d, h, 0, 0)
        .unwrap()
        .to_utc()
}

/// Sample 1 (a housing grievance in Pingcheng) received 2026-02-10 09:00, from petitioner `n`
/// (0: the sample's own).
fn petition(n: u64) -> pb::RegisterPetitionRequest {
    let mut r = samples()
        .into_iter()
        .find(|s| s.sample == 1)
        .unwrap()
        .request();
    r.received_at = Some(timestamp(beijing(2, 10, 9)));
    if n > 0 {
        r.petitioners[0].id_number = synthetic_resident_id(n);
        r.petitioners[0].name = format!("信访人{n}");
    }
    r
}

fn clock(t: &pb::Timeline, kind: pb::ClockKind) -> &pb::CaseClock {
    t.clocks
        .iter()
        .find(|c| c.kind == kind as i32)
        .unwrap_or_else(|| panic!("no {kind:?} clock in {:?}", t.clocks))
}

/// Registers each of `ns`, waits for routing, accepts on 02-11 and answers on Mon 03-23
/// (served the same day), extending case 0 on the way: the cases as supervision sees them
/// then. The clock only moves forward, so the cases walk their steps together.
async fn answered_cases(
    s: &Suite,
    ns: &[u64],
) -> Vec<(pb::RegisterPetitionResponse, pb::Timeline)> {
    let clerk = who("pingcheng.bureau", Role::Clerk);
    s.set_clock(beijing(2, 10, 9) + chrono::Duration::minutes(5))
        .await;
    let mut registered = Vec::new();
    for &n in ns {
        let reg = s
            .intake(&clerk)
            .await
            .register_petition(petition(n))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(s.routed(&reg.case_id).await.organ, "pingcheng.housing");
        registered.push((n, reg));
    }
    let handler = who("pingcheng.housing", Role::Handler);
    let mut inbox = s.routing(&handler).await;
    s.set_clock(beijing(2, 11, 10)).await;
    for (n, reg) in &registered {
        inbox
            .accept_case(pb::AcceptCaseRequest {
                case_id: reg.case_id.clone(),
                request_id: format!("accept-{n}"),
            })
            .await
            .unwrap();
        // 60 days from Wed 02-11 end on Sun 04-12: the reply is due Mon 04-13 (Art. 34).
        let t = s
            .timeline_when(&reg.case_id, |t| {
                t.clocks
                    .iter()
                    .any(|c| c.kind == pb::ClockKind::Handling as i32)
            })
            .await;
        assert_eq!(clock(&t, pb::ClockKind::Handling).last_day, "2026-04-13");
        assert_eq!(
            clock(&t, pb::ClockKind::Forward).last_day,
            "2026-02-25",
            "15 days from 02-10 (Art. 22)"
        );
    }
    {
        let (_, reg) = registered
            .iter()
            .find(|(n, _)| *n == 0)
            .expect("case 0 is the one extended");
        // Extended: the holder asks, the bureau approves, the petitioner is told why.
        s.set_clock(beijing(2, 20, 10)).await;
        inbox
            .request_extension(pb::RequestExtensionRequest {
                case_id: reg.case_id.clone(),
                days: 30,
                reason: "a survey of the building is needed".into(),
                request_id: "ext".into(),
            })
            .await
            .unwrap();
        s.timeline_when(&reg.case_id, |t| t.extension_requested_days == 30)
            .await;
        let t = s
            .supervision(&who("pingcheng.bureau", Role::Supervisor))
            .await
            .decide_extension(pb::DecideExtensionRequest {
                case_id: reg.case_id.clone(),
                approve: true,
                reason: "the survey takes four weeks".into(),
                request_id: "ext-ok".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(clock(&t, pb::ClockKind::Handling).last_day, "2026-05-13");
    }
    s.set_clock(beijing(3, 23, 10)).await;
    let mut answered = Vec::new();
    for (n, reg) in registered {
        inbox
            .submit_reply(pb::SubmitReplyRequest {
                case_id: reg.case_id.clone(),
                outcome: pb::ReplyOutcome::Explained as i32,
                text: "the repairs are the developer's duty; the bureau has ordered them".into(),
                legal_basis: "《物业管理条例》".into(),
                service: Some(pb::ServiceRecord {
                    mode: pb::ServiceMode::InPerson as i32,
                    served_at: Some(timestamp(beijing(3, 23, 10))),
                    signed: true,
                    refused: false,
                    view: pb::PetitionerView::Disagrees as i32,
                }),
                request_id: format!("reply-{n}"),
            })
            .await
            .unwrap();
        let t = s
            .timeline_when(&reg.case_id, |t| t.stage == pb::CaseStage::Answered as i32)
            .await;
        answered.push((reg, t));
    }
    answered
}

async fn a_case_lives_to_the_end_and_is_not_accepted_again(s: &Suite) {
    // The second case, served the same day, has its petitioner come on day 31.
    let mut cases = answered_cases(s, &[0, 7]).await;
    let (b, _) = cases.pop().expect("case 7");
    let (a, t) = cases.pop().expect("case 0");
    // Served Mon 03-23: review may be requested until day 30, Wed 04-22 (Art. 35); the rating
    // window runs 7 days, to Mon 03-30.
    assert_eq!(
        clock(&t, pb::ClockKind::ReviewRequest).last_day,
        "2026-04-22"
    );
    assert_eq!(clock(&t, pb::ClockKind::ReviewRequest).article, "Art. 35");
    assert_eq!(clock(&t, pb::ClockKind::Rating).last_day, "2026-03-30");
    assert_eq!(
        clock(&t, pb::ClockKind::Handling).state,
        pb::ClockState::Met as i32
    );
    assert_eq!(t.rating, pb::RatingState::Awaiting as i32);
    assert_eq!(t.answered_by, "pingcheng.housing");

    // The petitioner reads the written reply itself, with the query code.
    let window = who("pingcheng.bureau", Role::Clerk);
    let mut intake = s.intake(&window).await;
    let seen = intake
        .lookup_by_query_code(pb::LookupByQueryCodeRequest {
            query_code: a.query_code.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let reply = seen
        .steps
        .iter()
        .find(|st| st.kind == pb::StepKind::Answered as i32)
        .expect("the answered step");
    assert!(
        reply.note.contains("the repairs are the developer's duty")
            && reply.note.contains("《物业管理条例》"),
        "{}",
        reply.note
    );

    // The window checks a petition before saving it: the same petitioner on the same matter
    // is a repeat of the open case, and nothing is kept.
    let cases = |intake: &mut petition_e2e::IntakeClient| {
        let mut intake = intake.clone();
        async move {
            intake
                .list_cases(pb::ListCasesRequest::default())
                .await
                .unwrap()
                .into_inner()
                .cases
                .len()
        }
    };
    let before = cases(&mut intake).await;
    let mut again = petition(0);
    again.validate_only = true;
    let checked = intake.register_petition(again).await.unwrap().into_inner();
    assert_eq!(
        (checked.case_number.as_str(), checked.query_code.as_str()),
        ("", "")
    );
    let flags = checked.flags.unwrap_or_default();
    assert!(flags.repeat && flags.repeat_of_open, "{flags:?}");
    assert_eq!(flags.repeat_of_case_number, a.case_number);
    assert_eq!(cases(&mut intake).await, before);

    // Rated at the bureau's window with the query code.
    let mut desk = s.supervision(&window).await;
    s.set_clock(beijing(3, 25, 10)).await;
    let rate = |code: &str, organ: pb::Satisfaction, reason: &str, id: &str| pb::RateCaseRequest {
        case_number: a.case_number.clone(),
        query_code: code.into(),
        bureau: pb::Satisfaction::Satisfied as i32,
        organ: organ as i32,
        reason: reason.into(),
        request_id: id.into(),
    };
    let wrong = desk
        .rate_case(rate(
            "2345-6789-ABCD",
            pb::Satisfaction::Satisfied,
            "",
            "r0",
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::PermissionDenied, "{wrong}");
    let no_reason = desk
        .rate_case(rate(
            &a.query_code,
            pb::Satisfaction::Dissatisfied,
            "",
            "r1",
        ))
        .await
        .unwrap_err();
    assert_eq!(no_reason.code(), tonic::Code::InvalidArgument);
    assert!(no_reason.message().starts_with("reason:"), "{no_reason}");
    let rated = desk
        .rate_case(rate(
            &a.query_code,
            pb::Satisfaction::Dissatisfied,
            "the repairs have not started",
            "r2",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rated.rating, pb::RatingState::Rated as i32);
    assert_eq!(
        (rated.bureau_rating, rated.organ_rating),
        (
            pb::Satisfaction::Satisfied as i32,
            pb::Satisfaction::Dissatisfied as i32
        )
    );
    let twice = desk
        .rate_case(rate(&a.query_code, pb::Satisfaction::Satisfied, "", "r3"))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), tonic::Code::FailedPrecondition, "{twice}");

    // Day 30 for the first, at 15:00: accepted, to the organ one level up.
    s.set_clock(beijing(4, 22, 15)).await;
    let review = |reg: &pb::RegisterPetitionResponse, id: &str| pb::RequestReviewRequest {
        case_number: reg.case_number.clone(),
        query_code: reg.query_code.clone(),
        reason: "the reply ignores the leak in the roof".into(),
        request_id: id.into(),
    };
    let t = desk
        .request_review(review(&a, "review-a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.stage, pb::CaseStage::ReviewRequested as i32);
    assert_eq!(t.holder, "datong.housing");
    let opinion = clock(&t, pb::ClockKind::ReviewOpinion);
    assert_eq!(
        (opinion.organ.as_str(), opinion.last_day.as_str()),
        ("datong.housing", "2026-05-22")
    );

    // Day 31 for the second: refused, naming the article and the last day allowed.
    s.set_clock(beijing(4, 23, 9)).await;
    let late = desk
        .request_review(review(&b, "review-b"))
        .await
        .unwrap_err();
    assert_eq!(late.code(), tonic::Code::FailedPrecondition, "{late}");
    assert!(
        late.message().contains("Art. 35") && late.message().contains("2026-04-22"),
        "{late}"
    );
    // Its window closed unused: the reply is final (超期未申请复查).
    let tb = s
        .timeline_when(&b.case_id, |t| t.stage == pb::CaseStage::Final as i32)
        .await;
    assert_eq!(tb.final_reason, pb::FinalReason::WindowLapsed as i32);
    assert_eq!(
        tb.rating,
        pb::RatingState::Expired as i32,
        "never counted as satisfied"
    );

    // The city housing bureau reviews and upholds; the re-examination window runs from its
    // service, Wed 05-06: to Fri 06-05 (Art. 36).
    s.set_clock(beijing(5, 6, 10)).await;
    let city = who("datong.housing", Role::Handler);
    let t = s
        .supervision(&city)
        .await
        .decide_review(pb::DecideReviewRequest {
            case_id: a.case_id.clone(),
            decision: pb::ReviewDecision::Uphold as i32,
            opinion: "the district's reply stands; the roof is the developer's to repair".into(),
            served_at: None,
            request_id: "review-opinion".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.stage, pb::CaseStage::ReviewDecided as i32);
    assert_eq!(
        clock(&t, pb::ClockKind::ReexaminationRequest).last_day,
        "2026-06-05"
    );

    // Re-examination, by the organ above the reviewer, then final.
    s.set_clock(beijing(5, 20, 10)).await;
    let t = desk
        .request_review(review(&a, "reexamination-a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.stage, pb::CaseStage::ReexaminationRequested as i32);
    assert_eq!(t.holder, "shanxi.bureau");
    assert_eq!(
        clock(&t, pb::ClockKind::ReexaminationOpinion).article,
        "Art. 36"
    );
    s.set_clock(beijing(6, 1, 10)).await;
    let t = s
        .supervision(&who("shanxi.bureau", Role::Leader))
        .await
        .decide_review(pb::DecideReviewRequest {
            case_id: a.case_id.clone(),
            decision: pb::ReviewDecision::Uphold as i32,
            opinion: "upheld on re-examination".into(),
            served_at: None,
            request_id: "reexamination-opinion".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.stage, pb::CaseStage::Final as i32);
    assert_eq!(t.final_reason, pb::FinalReason::Reexamined as i32);
    let again = desk
        .request_review(review(&a, "third-time"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    assert!(again.message().contains("Art. 36"), "{again}");

    // Intake learns the case is closed; the petitioner's view shows the steps.
    s.case_when(&a.case_id, |c| c.status == pb::CaseStatus::Closed as i32)
        .await;
    let view = s
        .intake(&window)
        .await
        .lookup_by_query_code(pb::LookupByQueryCodeRequest {
            query_code: a.query_code.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<i32> = view.steps.iter().map(|s| s.kind).collect();
    for k in [
        pb::StepKind::ExtensionDecided,
        pb::StepKind::Answered,
        pb::StepKind::ReviewRequested,
        pb::StepKind::ReviewDecided,
        pb::StepKind::ReexaminationRequested,
        pb::StepKind::Reexamined,
    ] {
        assert!(kinds.contains(&(k as i32)), "{k:?} missing from {kinds:?}");
    }

    // The same facts again: not accepted, naming the article and the earlier case.
    s.set_clock(beijing(6, 10, 10)).await;
    let mut same = petition(0);
    same.received_at = Some(timestamp(beijing(6, 10, 9)));
    let refused = s
        .intake(&window)
        .await
        .register_petition(same)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");
    assert!(
        refused.message().contains("不再受理")
            && refused.message().contains("Art. 36")
            && refused.message().contains(&a.case_number),
        "{refused}"
    );
    // Another petitioner's petition on the same matter is a petition of its own.
    let mut other = petition(11);
    other.received_at = Some(timestamp(beijing(6, 10, 9)));
    s.intake(&window)
        .await
        .register_petition(other)
        .await
        .unwrap();
}

#[tokio::test]
async fn on_postgres_and_redis() {
    let Some(s) = Suite::postgres_and_redis(beijing(2, 10, 9)).await else {
        return;
    };
    a_case_lives_to_the_end_and_is_not_accepted_again(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn on_the_embedded_default() {
    let s = Suite::embedded(beijing(2, 10, 9)).await;
    a_case_lives_to_the_end_and_is_not_accepted_again(&s).await;
    s.stop().await;
}
