//! Recusal (回避, Art. 28 ¶3): a member of staff with a direct interest in a case cannot be
//! given it, see it or act on it. Recorded once in routing, it reaches intake and supervision
//! by routing's stream, and every service then answers that person as if the case did not
//! exist, while their colleagues of the same organ work it as before.

use chrono::TimeZone;
use petition_auth::{Principal, Role};
mod common;

use common::Suite;
use petition_e2e::{samples, who};
use petition_proto::v1 as pb;
use tonic::Code;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 3, 2, 12, 0, 0)
        .unwrap()
        .to_utc()
}

fn person(subject: &str, org: &str, role: Role) -> Principal {
    Principal {
        subject: subject.into(),
        org: org.into(),
        role,
        scopes: vec![],
    }
}

const HOLDER: &str = "pingcheng.housing";

#[tokio::test]
async fn staff_out_of_a_case_find_it_nowhere_and_their_colleagues_work_it() {
    staff_out_of_a_case(Suite::embedded(now()).await).await;
}

#[tokio::test]
async fn staff_out_of_a_case_find_it_nowhere_on_postgres_and_redis() {
    let Some(s) = Suite::postgres_and_redis(now()).await else {
        return;
    };
    staff_out_of_a_case(s).await;
}

async fn staff_out_of_a_case(s: Suite) {
    let sample = samples().into_iter().find(|s| s.sample == 1).unwrap();
    let r = s
        .intake(&sample.principal())
        .await
        .register_petition(sample.request())
        .await
        .unwrap()
        .into_inner();
    let case_id = r.case_id.clone();
    assert_eq!(s.routed(&case_id).await.organ, HOLDER);
    s.case_when(&case_id, |c| c.holder == HOLDER).await;

    // Another petition for the same department, which li stays on.
    let mut other = sample.request();
    other.petitioners[0].id_number = petition_e2e::synthetic_resident_id(7);
    other.petitioners[0].name = "李四".into();
    let other = s
        .intake(&sample.principal())
        .await
        .register_petition(other)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.routed(&other.case_id).await.organ, HOLDER);

    let li = person("handler.li", HOLDER, Role::Handler);
    let zhang = person("handler.zhang", HOLDER, Role::Handler);
    let in_inbox = |p: Principal, id: &str| {
        let s = &s;
        let id = id.to_owned();
        async move {
            s.routing(&p)
                .await
                .list_inbox(pb::ListInboxRequest::default())
                .await
                .unwrap()
                .into_inner()
                .items
                .iter()
                .any(|i| i.case_id == id)
        }
    };
    assert!(in_inbox(li.clone(), &case_id).await && in_inbox(zhang.clone(), &case_id).await);

    let record = |by: Principal, subject: &str, reason: pb::RecusalReason, request_id: &str| {
        let s = &s;
        let req = pb::RecordRecusalRequest {
            case_id: case_id.clone(),
            subject: subject.into(),
            reason: reason as i32,
            request_id: request_id.into(),
            organ: String::new(),
        };
        async move { s.routing(&by).await.record_recusal(req).await }
    };
    // li accepts it (受理) before anyone knows of the interest.
    let li_accept = pb::AcceptCaseRequest {
        case_id: case_id.clone(),
        request_id: "li-accept".into(),
    };
    s.routing(&li)
        .await
        .accept_case(li_accept.clone())
        .await
        .unwrap();

    // A colleague may not take another out of the case; bad input names its field.
    let denied = record(zhang.clone(), "handler.li", pb::RecusalReason::Relative, "")
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let bad = record(
        who(HOLDER, Role::Leader),
        "handler.li",
        pb::RecusalReason::Unspecified,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("reason:"), "{}", bad.message());
    let bad = record(
        who(HOLDER, Role::Leader),
        " ",
        pb::RecusalReason::Relative,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("subject:"), "{}", bad.message());

    // A leader over the case may not take out someone who oversees them.
    let up = s
        .routing(&who(HOLDER, Role::Leader))
        .await
        .record_recusal(pb::RecordRecusalRequest {
            case_id: case_id.clone(),
            subject: "supervisor.zhao".into(),
            reason: pb::RecusalReason::Party as i32,
            request_id: String::new(),
            organ: "pingcheng.bureau".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(up.code(), Code::PermissionDenied, "{up:?}");

    // The organ's leader records it: li is the petitioner's relative.
    let leader = who(HOLDER, Role::Leader);
    let first = record(
        leader.clone(),
        "handler.li",
        pb::RecusalReason::Relative,
        "r-1",
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(first.reason, pb::RecusalReason::Relative as i32);
    let retry = record(
        leader.clone(),
        "handler.li",
        pb::RecusalReason::Relative,
        "r-1",
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(retry, first, "a retry is answered with what the first did");
    let again = record(
        leader.clone(),
        "handler.li",
        pb::RecusalReason::Party,
        "r-2",
    )
    .await
    .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");

    // Intake and supervision learn it from routing's stream.
    let mut li_intake = s.intake(&li).await;
    let get = pb::GetCaseRequest {
        case_id: case_id.clone(),
        case_number: String::new(),
    };
    let mut seen = None;
    for _ in 0..400 {
        let (case, missing) = s.get_case_beside_missing(&li, &case_id).await;
        if case.0 != Code::Ok {
            seen = Some((case, missing));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (hidden, missing) = seen.expect("intake hides the case from li once the recusal arrives");
    assert_eq!(
        hidden, missing,
        "answered exactly as for a case that does not exist"
    );
    let mut li_supervision = s.supervision(&li).await;
    let mut timeline = Ok(());
    for _ in 0..400 {
        timeline = li_supervision
            .get_timeline(pb::GetTimelineRequest {
                case_id: case_id.clone(),
            })
            .await
            .map(drop);
        if timeline.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(timeline.unwrap_err().code(), Code::NotFound);

    // Nowhere for li: not in a list, not by id, not for a command.
    assert!(!in_inbox(li.clone(), &case_id).await);
    assert!(
        in_inbox(li.clone(), &other.case_id).await,
        "li keeps the rest"
    );
    assert!(in_inbox(zhang.clone(), &case_id).await);
    let listed = li_intake
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.cases.iter().all(|c| c.id != case_id));
    assert!(listed.cases.iter().any(|c| c.id == other.case_id));
    let due = |p: Principal, id: &str| {
        let s = &s;
        let id = id.to_owned();
        async move {
            s.supervision(&p)
                .await
                .list_due(pb::ListDueRequest::default())
                .await
                .unwrap()
                .into_inner()
                .items
                .iter()
                .any(|i| i.case_id == id)
        }
    };
    assert!(
        due(zhang.clone(), &case_id).await,
        "the holder owes its acceptance"
    );
    assert!(!due(li.clone(), &case_id).await);
    assert!(due(li.clone(), &other.case_id).await);
    let mut li_routing = s.routing(&li).await;
    for err in [
        li_routing
            .get_assignment(pb::GetAssignmentRequest {
                case_id: case_id.clone(),
            })
            .await
            .unwrap_err(),
        li_routing
            .accept_case(pb::AcceptCaseRequest {
                case_id: case_id.clone(),
                request_id: String::new(),
            })
            .await
            .unwrap_err(),
        // not even by sending again the acceptance li made before
        li_routing.accept_case(li_accept.clone()).await.unwrap_err(),
        li_supervision
            .pause_clock(pb::PauseClockRequest {
                case_id: case_id.clone(),
                clock: pb::ClockKind::Handling as i32,
                reason: "hearing".into(),
                request_id: String::new(),
            })
            .await
            .unwrap_err(),
        li_intake
            .lookup_by_query_code(pb::LookupByQueryCodeRequest {
                query_code: r.query_code.clone(),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        assert!(!err.message().contains(&r.case_number), "{}", err.message());
    }
    // Nor may li take it back, or record anything more on it.
    let again = record(li.clone(), "handler.li", pb::RecusalReason::Party, "")
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);

    // Zhang, of the same organ, works it and reads it whole.
    let held = s
        .routing(&zhang)
        .await
        .get_assignment(pb::GetAssignmentRequest {
            case_id: case_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.state, pb::AssignmentState::Accepted as i32);
    s.intake(&zhang).await.get_case(get.clone()).await.unwrap();

    // A member of staff may also declare their own interest, and then sees it no more.
    let wang = person("handler.wang", HOLDER, Role::Handler);
    record(
        wang.clone(),
        "handler.wang",
        pb::RecusalReason::OtherInterest,
        "w-1",
    )
    .await
    .unwrap();
    let err = s
        .routing(&wang)
        .await
        .get_assignment(pb::GetAssignmentRequest {
            case_id: case_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // and their retry is still answered
    record(
        wang,
        "handler.wang",
        pb::RecusalReason::OtherInterest,
        "w-1",
    )
    .await
    .unwrap();

    // wang's was a mistake: a leader may not lift it; an admin may, saying why. Then wang sees
    // the case again: in routing at once, in intake once it hears of it.
    let lift = |by: Principal, subject: &str, why: &str| {
        let s = &s;
        let req = pb::LiftRecusalRequest {
            case_id: case_id.clone(),
            subject: subject.into(),
            why: why.into(),
            request_id: String::new(),
        };
        async move { s.routing(&by).await.lift_recusal(req).await }
    };
    let not_admin = lift(leader.clone(), "handler.wang", "wrong case")
        .await
        .unwrap_err();
    assert_eq!(not_admin.code(), Code::PermissionDenied);
    let admin = who("shanxi.bureau", Role::Admin);
    let no_why = lift(admin.clone(), "handler.wang", " ").await.unwrap_err();
    assert_eq!(no_why.code(), Code::InvalidArgument);
    assert!(no_why.message().starts_with("why:"), "{}", no_why.message());
    let lifted = lift(admin.clone(), "handler.wang", "recorded for the wrong case")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lifted.reason, pb::RecusalReason::OtherInterest as i32);
    let again = lift(admin.clone(), "handler.wang", "again")
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    let wang = person("handler.wang", HOLDER, Role::Handler);
    s.routing(&wang)
        .await
        .get_assignment(pb::GetAssignmentRequest {
            case_id: case_id.clone(),
        })
        .await
        .unwrap();
    let mut back = false;
    for _ in 0..400 {
        if s.get_case_beside_missing(&wang, &case_id).await.0.0 == Code::Ok {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(back, "intake shows wang the case again");

    // Analytics' case lists leave it out for li too, once it has the copy.
    let mut zhangs = String::new();
    for _ in 0..400 {
        zhangs = s.export(&zhang, "2026-03").await.unwrap();
        if zhangs.contains(&r.case_number) && zhangs.contains(&other.case_number) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(zhangs.contains(&r.case_number), "{zhangs}");
    let mut lis = String::new();
    for _ in 0..400 {
        lis = s.export(&li, "2026-03").await.unwrap();
        if !lis.contains(&r.case_number) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(!lis.contains(&r.case_number), "{lis}");
    assert!(lis.contains(&other.case_number), "{lis}");

    // Both are in routing's audit log, with who recorded them, once the chainer has linked them.
    let mut audit = s.audit(&who("shanxi.bureau", Role::Admin)).await;
    let mut recorded_by = Vec::new();
    for _ in 0..400 {
        let entries = audit
            .list_audit(pb::ListAuditRequest {
                service: "routing".into(),
                case_id: case_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        recorded_by = entries
            .into_iter()
            .filter(|e| e.action == "recusal.recorded")
            .map(|e| e.actor)
            .collect();
        if recorded_by.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(recorded_by, [leader.subject.as_str(), "handler.wang"]);

    // A clerk out of the case who registers the same person on the same matter again makes a
    // repeat (重复信访) as anyone would, but is not told the earlier case's number.
    let bureau_leader = who("pingcheng.bureau", Role::Leader);
    record(bureau_leader, "clerk.sun", pb::RecusalReason::Party, "")
        .await
        .unwrap();
    let sun = person("clerk.sun", "pingcheng.bureau", Role::Clerk);
    let mut flags = None;
    for _ in 0..400 {
        let f = s
            .intake(&sun)
            .await
            .register_petition(sample.request())
            .await
            .unwrap()
            .into_inner()
            .flags
            .unwrap();
        if f.repeat_of_case_number.is_empty() {
            flags = Some(f);
            break;
        }
        // intake has not heard of the recusal yet: that registration is an ordinary repeat
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let flags = flags.expect("intake hears of the recusal");
    assert!(flags.repeat, "{flags:?}");
    let told = s
        .intake(&sample.principal())
        .await
        .register_petition(sample.request())
        .await
        .unwrap()
        .into_inner()
        .flags
        .unwrap();
    assert!(
        told.repeat && !told.repeat_of_case_number.is_empty(),
        "{told:?}"
    );
    s.stop().await;
}
