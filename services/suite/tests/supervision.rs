//! Supervision through its gRPC API on simulated time, on PostgreSQL + Redis and on the
//! embedded default: a case sent to an organ that never tells the petitioner gets a reminder,
//! urging (催办) the day after its last day, and listed supervision (挂牌督办) five working days
//! later, all in that organ's notices, acknowledged with written feedback; a handling clock is
//! extended by the bureau and moved by a pause for a hearing.

use chrono::TimeZone;
use petition_auth::Role;
mod common;

use common::Suite;
use petition_e2e::{samples, who};
use petition_proto::v1 as pb;
use std::time::Duration;

fn beijing(m: u32, d: u32, h: u32, min: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, m, d, h, min, 0)
        .unwrap()
        .to_utc()
}

/// Registers sample 1 (a housing grievance for pingcheng.housing) and waits until it is sent.
async fn routed_case(s: &Suite) -> String {
    let sample = samples().into_iter().find(|s| s.sample == 1).unwrap();
    let mut clerk = s.intake(&sample.principal()).await;
    let reg = clerk
        .register_petition(sample.request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.routed(&reg.case_id).await.organ, "pingcheng.housing");
    reg.case_id
}

fn clock(t: &pb::Timeline, kind: pb::ClockKind) -> Option<&pb::CaseClock> {
    t.clocks.iter().find(|c| c.kind == kind as i32)
}

/// The organ's notices once there are `n`, newest first.
async fn notices_when(s: &Suite, organ: &str, n: usize) -> Vec<pb::Notice> {
    let mut c = s.supervision(&who(organ, Role::Handler)).await;
    let mut last = Vec::new();
    for _ in 0..400 {
        last = c
            .list_notices(pb::ListNoticesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .notices;
        if last.len() >= n {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{organ} never had {n} notices: {last:?}");
}

async fn an_organ_that_misses_a_limit_is_urged_then_listed(s: &Suite) {
    let case_id = routed_case(s).await;
    // Routed on Mon 03-02: the housing bureau tells the petitioner in writing within 15 days
    // (Art. 23 ¶3), so by Tue 03-17.
    let t = s
        .timeline_when(&case_id, |t| {
            clock(t, pb::ClockKind::Notice).is_some()
                && clock(t, pb::ClockKind::Forward)
                    .is_some_and(|c| c.state == pb::ClockState::Met as i32)
        })
        .await;
    let notice = clock(&t, pb::ClockKind::Notice).unwrap();
    assert_eq!(notice.last_day, "2026-03-17");
    assert_eq!(notice.article, "Art. 23 ¶3");
    assert_eq!(notice.organ, "pingcheng.housing");
    let forward = clock(&t, pb::ClockKind::Forward).unwrap();
    assert_eq!(
        (forward.article.as_str(), forward.late),
        ("Art. 22 ¶1", false)
    );
    assert!(
        t.entries.iter().any(|e| e.kind == "routed"),
        "{:?}",
        t.entries
    );

    // Three days before: a reminder. Due soon in the organ's list, nothing overdue.
    s.set_clock(beijing(3, 14, 0, 1)).await;
    let reminded = notices_when(s, "pingcheng.housing", 1).await;
    assert_eq!(reminded[0].kind, pb::NoticeKind::Reminder as i32);
    let mut housing = s
        .supervision(&who("pingcheng.housing", Role::Handler))
        .await;
    let due = |bucket: pb::DueBucket| pb::ListDueRequest {
        bucket: bucket as i32,
        ..Default::default()
    };
    let soon = housing
        .list_due(due(pb::DueBucket::DueSoon))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(
        soon.iter().any(|i| i.case_id == case_id
            && i.clock.as_ref().unwrap().kind == pb::ClockKind::Notice as i32),
        "{soon:?}"
    );
    // The last day is still open at 23:59 Beijing on 03-17 …
    s.set_clock(beijing(3, 17, 23, 59)).await;
    s.scanned(beijing(3, 17, 23, 59)).await;
    let overdue = housing
        .list_due(due(pb::DueBucket::Overdue))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(overdue.iter().all(|i| i.case_id != case_id), "{overdue:?}");

    // … and urged (催办) the day after, copied to the responsible leader.
    s.set_clock(beijing(3, 18, 0, 1)).await;
    let urged = notices_when(s, "pingcheng.housing", 2).await;
    let urging = &urged[0];
    assert_eq!(urging.kind, pb::NoticeKind::Urging as i32);
    assert_eq!(urging.clock, pb::ClockKind::Notice as i32);
    assert_eq!(urging.case_id, case_id);
    assert!(
        urging.text.contains("催办") && urging.text.contains("2026-03-17"),
        "{}",
        urging.text
    );
    assert!(urging.copy_to.contains("责任领导") && urging.copy_to.contains("pingcheng.housing"));
    let overdue = housing
        .list_due(due(pb::DueBucket::Overdue))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(
        overdue.iter().any(|i| i.case_id == case_id
            && i.bucket == pb::DueBucket::Overdue as i32
            && i.clock.as_ref().unwrap().late),
        "{overdue:?}"
    );

    // The bureau's due board reads what the organs of its territory owe, and their notices;
    // its own list alone holds none of them, and a department cannot read the bureau's.
    let mut bureau = s
        .supervision(&who("pingcheng.bureau", Role::Supervisor))
        .await;
    let board = |within: bool| pb::ListDueRequest {
        bucket: pb::DueBucket::Overdue as i32,
        within,
        ..Default::default()
    };
    let own = bureau.list_due(board(false)).await.unwrap().into_inner();
    assert!(own.items.iter().all(|i| i.case_id != case_id), "{own:?}");
    let all = bureau.list_due(board(true)).await.unwrap().into_inner();
    assert!(
        all.items.iter().any(|i| i.case_id == case_id
            && i.clock.as_ref().unwrap().organ == "pingcheng.housing"),
        "{all:?}"
    );
    let sent = bureau
        .list_notices(pb::ListNoticesRequest {
            within: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        sent.notices
            .iter()
            .any(|n| n.case_id == case_id && n.kind == pb::NoticeKind::Urging as i32),
        "{sent:?}"
    );
    let refused = housing
        .list_due(pb::ListDueRequest {
            organ: "pingcheng.bureau".into(),
            within: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // Five working days after 03-17 (18, 19, 20, 23, 24): listed supervision at the end of
    // Tue 03-24, not a moment before.
    s.set_clock(beijing(3, 24, 23, 0)).await;
    s.scanned(beijing(3, 24, 23, 0)).await;
    assert_eq!(notices_when(s, "pingcheng.housing", 2).await.len(), 2);
    s.set_clock(beijing(3, 25, 0, 1)).await;
    let all = notices_when(s, "pingcheng.housing", 3).await;
    let listed = &all[0];
    assert_eq!(listed.kind, pb::NoticeKind::Listed as i32);
    assert!(listed.text.contains("挂牌督办"), "{}", listed.text);
    assert_eq!(all.len(), 3, "each warning once: {all:?}");

    // The organ acknowledges with its written feedback (Art. 40), once.
    let ack = pb::AcknowledgeNoticeRequest {
        notice_id: urging.notice_id.clone(),
        feedback: "notice served on the petitioner on 03-18; we apologise for the delay".into(),
        request_id: "ack-1".into(),
    };
    let done = housing
        .acknowledge_notice(ack.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.acknowledged_by, "handler@pingcheng.housing");
    assert!(done.acknowledged_at.is_some() && done.feedback.starts_with("notice served"));
    assert_eq!(
        housing.acknowledge_notice(ack).await.unwrap().into_inner(),
        done,
        "a retry is answered, not applied twice"
    );
    let again = housing
        .acknowledge_notice(pb::AcknowledgeNoticeRequest {
            notice_id: urging.notice_id.clone(),
            feedback: "again".into(),
            request_id: "ack-2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again}");
    let empty = housing
        .acknowledge_notice(pb::AcknowledgeNoticeRequest {
            notice_id: listed.notice_id.clone(),
            feedback: " ".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert!(empty.message().starts_with("feedback:"), "{empty}");
    let other = s
        .supervision(&who("pingcheng.hrss", Role::Handler))
        .await
        .acknowledge_notice(pb::AcknowledgeNoticeRequest {
            notice_id: listed.notice_id.clone(),
            feedback: "not ours".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::PermissionDenied, "{other}");
    // The bureau above reads the housing bureau's notices; the acknowledgment shows.
    let seen = s
        .supervision(&who("pingcheng.bureau", Role::Supervisor))
        .await
        .list_notices(pb::ListNoticesRequest {
            organ: "pingcheng.housing".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notices;
    assert!(
        seen.iter()
            .any(|n| n.notice_id == urging.notice_id && n.acknowledged_at.is_some())
    );
    // 督办 by hand (Art. 40): the bureau writes to the holder, with a date for its answer.
    let mut bureau = s
        .supervision(&who("pingcheng.bureau", Role::Supervisor))
        .await;
    let supervise = pb::IssueSupervisionRequest {
        case_id: case_id.clone(),
        text: "report by 03-31 why the petitioner was not told".into(),
        feedback_due: Some(petition_e2e::timestamp(beijing(3, 31, 17, 0))),
        request_id: "duban-1".into(),
    };
    let handwritten = bureau
        .issue_supervision(supervise.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(handwritten.kind, pb::NoticeKind::Supervision as i32);
    assert_eq!(handwritten.organ, "pingcheng.housing");
    assert_eq!(handwritten.issued_by, "supervisor@pingcheng.bureau");
    assert!(handwritten.feedback_due.is_some() && handwritten.copy_to.contains("责任领导"));
    assert_eq!(
        bureau
            .issue_supervision(supervise.clone())
            .await
            .unwrap()
            .into_inner()
            .notice_id,
        handwritten.notice_id,
        "a retry answers with the notice the first request wrote"
    );
    let by_handler = housing
        .issue_supervision(supervise.clone())
        .await
        .unwrap_err();
    assert_eq!(
        by_handler.code(),
        tonic::Code::PermissionDenied,
        "{by_handler}"
    );
    let undated = bureau
        .issue_supervision(pb::IssueSupervisionRequest {
            feedback_due: None,
            request_id: "duban-2".into(),
            ..supervise
        })
        .await
        .unwrap_err();
    assert_eq!(undated.code(), tonic::Code::InvalidArgument);
    assert!(undated.message().starts_with("feedback_due:"), "{undated}");
    assert_eq!(
        notices_when(s, "pingcheng.housing", 4).await[0].notice_id,
        handwritten.notice_id
    );

    let t = s.timeline_when(&case_id, |_| true).await;
    for kind in [
        "notice.reminder",
        "notice.urging",
        "notice.listed",
        "notice.acknowledged",
        "notice.supervision",
    ] {
        assert!(
            t.entries.iter().any(|e| e.kind == kind),
            "{kind}: {:?}",
            t.entries
        );
    }
}

async fn the_bureau_extends_and_a_hearing_moves_the_handling_clock(s: &Suite) {
    let case_id = routed_case(s).await;
    let handler = who("pingcheng.housing", Role::Handler);
    let mut inbox = s.routing(&handler).await;
    // Accepted Tue 03-03: day 60 is Sat 05-02, in the May Day holiday: the reply is due Wed
    // 05-06 (Art. 34).
    s.set_clock(beijing(3, 3, 9, 0)).await;
    inbox
        .accept_case(pb::AcceptCaseRequest {
            case_id: case_id.clone(),
            request_id: "accept".into(),
        })
        .await
        .unwrap();
    let t = s
        .timeline_when(&case_id, |t| clock(t, pb::ClockKind::Handling).is_some())
        .await;
    assert_eq!(
        clock(&t, pb::ClockKind::Handling).unwrap().last_day,
        "2026-05-06"
    );
    assert_eq!(
        clock(&t, pb::ClockKind::Notice).unwrap().state,
        pb::ClockState::Met as i32
    );

    // A hearing from Tue 03-10 to Fri 03-20: ten days stand still; 05-02 + 10 = Tue 05-12.
    let mut sup = s.supervision(&handler).await;
    s.set_clock(beijing(3, 10, 9, 0)).await;
    let paused = sup
        .pause_clock(pb::PauseClockRequest {
            case_id: case_id.clone(),
            clock: pb::ClockKind::Handling as i32,
            reason: "hearing (听证) with the developer".into(),
            request_id: "pause".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        clock(&paused, pb::ClockKind::Handling).unwrap().state,
        pb::ClockState::Paused as i32
    );
    let refused = sup
        .pause_clock(pb::PauseClockRequest {
            case_id: case_id.clone(),
            clock: pb::ClockKind::Handling as i32,
            reason: "twice".into(),
            request_id: "pause-2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");
    s.set_clock(beijing(3, 20, 17, 0)).await;
    let resumed = sup
        .resume_clock(pb::ResumeClockRequest {
            case_id: case_id.clone(),
            clock: pb::ClockKind::Handling as i32,
            reason: "hearing closed".into(),
            request_id: "resume".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let h = clock(&resumed, pb::ClockKind::Handling).unwrap();
    assert_eq!((h.paused_days, h.last_day.as_str()), (10, "2026-05-12"));
    // Routing's inbox follows the moved date.
    let moved = petition_e2e::timestamp(beijing(5, 13, 0, 0));
    let mut followed = false;
    for _ in 0..400 {
        let a = inbox
            .get_assignment(pb::GetAssignmentRequest {
                case_id: case_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if a.handling_due.as_ref() == Some(&moved) {
            followed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(followed, "routing's handling date follows the pause");

    // The holder asks for 30 more days; the bureau approves; the reply is due 30 days after
    // the moved end: Thu 06-11.
    inbox
        .request_extension(pb::RequestExtensionRequest {
            case_id: case_id.clone(),
            days: 30,
            reason: "an expert valuation is needed".into(),
            request_id: "ext".into(),
        })
        .await
        .unwrap();
    s.timeline_when(&case_id, |t| t.extension_requested_days == 30)
        .await;
    let decide = pb::DecideExtensionRequest {
        case_id: case_id.clone(),
        approve: true,
        reason: "the valuation takes a month".into(),
        request_id: "decide".into(),
    };
    let not_yours = sup.decide_extension(decide.clone()).await.unwrap_err();
    assert_eq!(
        not_yours.code(),
        tonic::Code::PermissionDenied,
        "{not_yours}"
    );
    let mut bureau = s
        .supervision(&who("pingcheng.bureau", Role::Supervisor))
        .await;
    let decided = bureau
        .decide_extension(decide.clone())
        .await
        .unwrap()
        .into_inner();
    let h = clock(&decided, pb::ClockKind::Handling).unwrap();
    assert_eq!((h.extension_days, h.last_day.as_str()), (30, "2026-06-11"));
    assert_eq!(decided.extension_requested_days, 0);
    // Routing learns it: the holder's inbox orders the case by the moved date.
    let moved = petition_e2e::timestamp(beijing(6, 12, 0, 0));
    let mut seen = None;
    for _ in 0..400 {
        let a = inbox
            .get_assignment(pb::GetAssignmentRequest {
                case_id: case_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if a.handling_due.as_ref() == Some(&moved) {
            seen = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let a = seen.expect("routing's handling date follows the approved extension");
    assert!(
        a.history
            .iter()
            .any(|h| h.rule.contains("extension approved")),
        "{:?}",
        a.history
    );
    // A retry is answered; a second decision has nothing to decide.
    assert_eq!(
        bureau
            .decide_extension(decide.clone())
            .await
            .unwrap()
            .into_inner()
            .clocks,
        decided.clocks
    );
    let twice = bureau
        .decide_extension(pb::DecideExtensionRequest {
            request_id: "decide-2".into(),
            ..decide
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), tonic::Code::FailedPrecondition, "{twice}");
    assert!(twice.message().contains("Art. 34"), "{twice}");
}

async fn leaders_take_charge_of_the_backlog_until_it_is_resolved(s: &Suite) {
    let case_id = routed_case(s).await;
    let handler = who("pingcheng.housing", Role::Handler);
    s.set_clock(beijing(3, 3, 9, 0)).await;
    s.routing(&handler)
        .await
        .accept_case(pb::AcceptCaseRequest {
            case_id: case_id.clone(),
            request_id: "accept".into(),
        })
        .await
        .unwrap();
    s.timeline_when(&case_id, |t| clock(t, pb::ClockKind::Handling).is_some())
        .await;
    let bureau = who("pingcheng.bureau", Role::Leader);
    let mut desk = s.supervision(&bureau).await;
    let backlog = |d: &mut petition_e2e::SupervisionClient| {
        let mut d = d.clone();
        async move {
            d.list_backlog(pb::ListBacklogRequest::default())
                .await
                .unwrap()
                .into_inner()
                .items
        }
    };
    assert!(backlog(&mut desk).await.is_empty(), "in time: no backlog");

    // The same petitioner comes back three times on the same matter while it is open.
    let sample = samples().into_iter().find(|s| s.sample == 1).unwrap();
    for day in [10, 11, 12] {
        s.set_clock(beijing(3, day, 12, 0)).await;
        let mut again = sample.request();
        again.received_at = Some(petition_e2e::timestamp(beijing(3, day, 9, 0)));
        let r = s
            .intake(&sample.principal())
            .await
            .register_petition(again)
            .await
            .unwrap()
            .into_inner();
        assert!(r.flags.unwrap().repeat);
    }
    let mut items = Vec::new();
    for _ in 0..400 {
        items = backlog(&mut desk).await;
        if !items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        (
            items[0].case_id.as_str(),
            items[0].repeats,
            items[0].overdue
        ),
        (case_id.as_str(), 3, false)
    );

    // Past the handling limit (05-06) it is overdue too.
    s.set_clock(beijing(5, 7, 9, 0)).await;
    let items = backlog(&mut desk).await;
    assert!(items[0].overdue && items[0].leader.is_none(), "{items:?}");

    // 包案: a handler may not take charge; the housing bureau's leader does.
    let take = pb::TakeChargeRequest {
        case_id: case_id.clone(),
        plan: "meet the petitioner and the developer together".into(),
        target_date: "2026-05-31".into(),
        add_to_backlog: false,
        request_id: "charge".into(),
    };
    let refused = s
        .supervision(&handler)
        .await
        .take_charge(take.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    let leader = who("pingcheng.housing", Role::Leader);
    let mut lead = s.supervision(&leader).await;
    let t = lead.take_charge(take).await.unwrap().into_inner();
    let l = t.leader.unwrap();
    assert_eq!(
        (l.leader.as_str(), l.target_date.as_str()),
        ("leader@pingcheng.housing", "2026-05-31")
    );
    assert_eq!(
        backlog(&mut desk).await[0]
            .leader
            .as_ref()
            .map(|l| l.organ.as_str()),
        Some("pingcheng.housing"),
        "the backlog names its owner"
    );

    // Progress; a resolution needs the petitioner's confirmation (or a final decision).
    let progress =
        |note: &str, resolved: bool, confirmed: bool, id: &str| pb::RecordProgressRequest {
            case_id: case_id.clone(),
            note: note.into(),
            resolved,
            petitioner_confirmed: confirmed,
            request_id: id.into(),
        };
    lead.record_progress(progress("met both parties on 05-08", false, false, "p1"))
        .await
        .unwrap();
    let early = lead
        .record_progress(progress("repairs agreed", true, false, "p2"))
        .await
        .unwrap_err();
    assert_eq!(early.code(), tonic::Code::FailedPrecondition, "{early}");
    let done = lead
        .record_progress(progress(
            "repairs done; the petitioner signed off",
            true,
            true,
            "p3",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(done.resolved_at.is_some() && done.petitioner_confirmed);
    assert!(
        backlog(&mut desk).await.is_empty(),
        "resolved: off the backlog"
    );
    assert!(done.entries.iter().any(|e| e.kind == "leader.in_charge"));
    assert!(done.entries.iter().any(|e| e.kind == "resolved"));

    // Analytics followed the same case through every stream: three repeats in March, and the
    // housing bureau's one leader-owned case resolved (包案化解率 1/1).
    let mut figures = s.analytics(&bureau).await;
    let mut seen = (0, (0, 0));
    for _ in 0..400 {
        let march = figures
            .get_situation(pb::SituationRequest {
                period: "2026-03".into(),
                organ: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let cards = figures
            .get_scorecards(pb::ScorecardsRequest {
                period: "2026".into(),
                organ: String::new(),
                basis: pb::DateBasis::Petition as i32,
            })
            .await
            .unwrap()
            .into_inner();
        let housing = cards
            .organs
            .iter()
            .find(|c| c.organ == "pingcheng.housing")
            .and_then(|c| c.leader_resolution)
            .map_or((0, 0), |r| (r.numerator, r.denominator));
        seen = (march.repeat.unwrap_or_default().count, housing);
        if seen == (3, (1, 1)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        seen,
        (3, (1, 1)),
        "repeats in March, 包案化解 of the housing bureau"
    );
}

#[tokio::test]
async fn backlog_on_postgres_and_redis() {
    let Some(s) = Suite::postgres_and_redis(beijing(3, 2, 10, 0)).await else {
        return;
    };
    leaders_take_charge_of_the_backlog_until_it_is_resolved(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn backlog_on_the_embedded_default() {
    let s = Suite::embedded(beijing(3, 2, 10, 0)).await;
    leaders_take_charge_of_the_backlog_until_it_is_resolved(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn urging_on_postgres_and_redis() {
    let Some(s) = Suite::postgres_and_redis(beijing(3, 2, 10, 0)).await else {
        return;
    };
    an_organ_that_misses_a_limit_is_urged_then_listed(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn urging_on_the_embedded_default() {
    let s = Suite::embedded(beijing(3, 2, 10, 0)).await;
    an_organ_that_misses_a_limit_is_urged_then_listed(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn extension_and_pause_on_postgres_and_redis() {
    let Some(s) = Suite::postgres_and_redis(beijing(3, 2, 10, 0)).await else {
        return;
    };
    the_bureau_extends_and_a_hearing_moves_the_handling_clock(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn extension_and_pause_on_the_embedded_default() {
    let s = Suite::embedded(beijing(3, 2, 10, 0)).await;
    the_bureau_extends_and_a_hearing_moves_the_handling_clock(&s).await;
    s.stop().await;
}
