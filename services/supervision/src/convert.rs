//! Between supervision's types and protobuf.

use crate::model::{
    CaseFile, CaseStage, Entry, FinalReason, NoticeKind, NoticeRecord, ReviewDecision, Satisfaction,
};
use petition_domain::calendar::HolidayCalendar;
use petition_domain::clocks::{CaseClock, ClockKind, ClockRules, ClockState};
use petition_grpc::convert::ts;
use petition_proto::v1 as pb;

pub fn clock_kind_to_pb(k: ClockKind) -> pb::ClockKind {
    match k {
        ClockKind::Forward => pb::ClockKind::Forward,
        ClockKind::Notice => pb::ClockKind::Notice,
        ClockKind::Objection => pb::ClockKind::Objection,
        ClockKind::Handling => pb::ClockKind::Handling,
        ClockKind::Report => pb::ClockKind::Report,
        ClockKind::ReviewRequest => pb::ClockKind::ReviewRequest,
        ClockKind::ReviewOpinion => pb::ClockKind::ReviewOpinion,
        ClockKind::ReexaminationRequest => pb::ClockKind::ReexaminationRequest,
        ClockKind::ReexaminationOpinion => pb::ClockKind::ReexaminationOpinion,
        ClockKind::Rating => pb::ClockKind::Rating,
    }
}

/// `None` for UNSPECIFIED or an unknown number: the caller's mistake.
pub fn clock_kind_from_pb(v: i32) -> Option<ClockKind> {
    let k = pb::ClockKind::try_from(v).ok()?;
    ClockKind::ALL
        .iter()
        .copied()
        .find(|c| clock_kind_to_pb(*c) == k)
}

pub fn clock_state_to_pb(s: ClockState) -> pb::ClockState {
    match s {
        ClockState::Running => pb::ClockState::Running,
        ClockState::Paused => pb::ClockState::Paused,
        ClockState::Overdue => pb::ClockState::Overdue,
        ClockState::Met => pb::ClockState::Met,
        ClockState::Lapsed => pb::ClockState::Lapsed,
        ClockState::Stopped => pb::ClockState::Stopped,
    }
}

pub fn notice_kind_to_pb(k: NoticeKind) -> pb::NoticeKind {
    match k {
        NoticeKind::Reminder => pb::NoticeKind::Reminder,
        NoticeKind::Urging => pb::NoticeKind::Urging,
        NoticeKind::Listed => pb::NoticeKind::Listed,
        NoticeKind::Circular => pb::NoticeKind::Circular,
        NoticeKind::Supervision => pb::NoticeKind::Supervision,
    }
}

pub fn clock_to_pb(
    c: &CaseClock,
    now: chrono::DateTime<chrono::Utc>,
    calendar: &HolidayCalendar,
    rules: &ClockRules,
) -> pb::CaseClock {
    let limit = c.kind.limit(rules);
    let dl = c.deadline(calendar, rules.counting);
    pb::CaseClock {
        kind: clock_kind_to_pb(c.kind) as i32,
        name: limit.name.to_owned(),
        article: limit.article.to_owned(),
        organ: c.organ.clone().unwrap_or_default(),
        started_at: Some(ts(c.started_at)),
        last_day: dl.last_day.to_string(),
        due_at: Some(ts(dl.due)),
        state: clock_state_to_pb(c.state) as i32,
        late: c.is_late(now, calendar, rules.counting),
        extension_days: c.extension_days,
        paused_days: c.paused_days + c.paused_days_late,
        paused_since: c.paused_since.map(ts),
        ended_at: c.ended_at.map(ts),
        // an ended clock is judged and done: only an open one waits for a year
        provisional: dl.provisional && c.state.is_open(),
    }
}

pub fn notice_to_pb(n: &NoticeRecord) -> pb::Notice {
    pb::Notice {
        notice_id: n.notice_id.clone(),
        case_id: n.case_id.clone(),
        case_number: n.case_number.clone(),
        organ: n.organ.clone(),
        kind: notice_kind_to_pb(n.kind) as i32,
        clock: n.clock.map_or(pb::ClockKind::Unspecified, clock_kind_to_pb) as i32,
        text: n.text.clone(),
        copy_to: n.copy_to.clone(),
        issued_at: Some(ts(n.issued_at)),
        issued_by: n.issued_by.clone(),
        feedback_due: n.feedback_due.map(ts),
        acknowledged_at: n.acknowledged_at.map(ts),
        acknowledged_by: n.acknowledged_by.clone().unwrap_or_default(),
        feedback: n.feedback.clone().unwrap_or_default(),
    }
}

pub fn entry_to_pb(e: &Entry) -> pb::TimelineEntry {
    pb::TimelineEntry {
        at: Some(ts(e.at)),
        kind: e.kind.clone(),
        text: e.text.clone(),
        actor: e.actor.clone(),
    }
}

pub fn satisfaction_to_pb(s: Satisfaction) -> pb::Satisfaction {
    match s {
        Satisfaction::Satisfied => pb::Satisfaction::Satisfied,
        Satisfaction::BasicallySatisfied => pb::Satisfaction::BasicallySatisfied,
        Satisfaction::Dissatisfied => pb::Satisfaction::Dissatisfied,
    }
}

/// `None` for UNSPECIFIED or an unknown number.
pub fn satisfaction_from_pb(v: i32) -> Option<Satisfaction> {
    match pb::Satisfaction::try_from(v).ok()? {
        pb::Satisfaction::Satisfied => Some(Satisfaction::Satisfied),
        pb::Satisfaction::BasicallySatisfied => Some(Satisfaction::BasicallySatisfied),
        pb::Satisfaction::Dissatisfied => Some(Satisfaction::Dissatisfied),
        pb::Satisfaction::Unspecified => None,
    }
}

pub fn decision_to_pb(d: ReviewDecision) -> pb::ReviewDecision {
    match d {
        ReviewDecision::Uphold => pb::ReviewDecision::Uphold,
        ReviewDecision::Change => pb::ReviewDecision::Change,
        ReviewDecision::Redo => pb::ReviewDecision::Redo,
    }
}

pub fn decision_from_pb(v: i32) -> Option<ReviewDecision> {
    match pb::ReviewDecision::try_from(v).ok()? {
        pb::ReviewDecision::Uphold => Some(ReviewDecision::Uphold),
        pb::ReviewDecision::Change => Some(ReviewDecision::Change),
        pb::ReviewDecision::Redo => Some(ReviewDecision::Redo),
        pb::ReviewDecision::Unspecified => None,
    }
}

pub fn stage_to_pb(s: CaseStage) -> pb::CaseStage {
    match s {
        CaseStage::Registered => pb::CaseStage::Registered,
        CaseStage::Routed => pb::CaseStage::Routed,
        CaseStage::Diverted => pb::CaseStage::Diverted,
        CaseStage::Linked => pb::CaseStage::Linked,
        CaseStage::InHandling => pb::CaseStage::InHandling,
        CaseStage::Answered => pb::CaseStage::Answered,
        CaseStage::ReviewRequested => pb::CaseStage::ReviewRequested,
        CaseStage::ReviewDecided => pb::CaseStage::ReviewDecided,
        CaseStage::ReexaminationRequested => pb::CaseStage::ReexaminationRequested,
        CaseStage::Final => pb::CaseStage::Final,
    }
}

pub fn final_reason_to_pb(r: Option<FinalReason>) -> pb::FinalReason {
    match r {
        Some(FinalReason::WindowLapsed) => pb::FinalReason::WindowLapsed,
        Some(FinalReason::Reexamined) => pb::FinalReason::Reexamined,
        None => pb::FinalReason::Unspecified,
    }
}

pub fn leader_to_pb(l: &crate::model::LeaderInCharge) -> pb::LeaderInCharge {
    pb::LeaderInCharge {
        leader: l.leader.clone(),
        organ: l.organ.clone(),
        plan: l.plan.clone(),
        target_date: l.target_day.to_string(),
        taken_at: Some(ts(l.taken_at)),
    }
}

/// Awaiting, rated, or expired (never counted as satisfied); not yet before the reply.
pub fn rating_state(f: &CaseFile) -> pb::RatingState {
    if f.case.rated_at.is_some() {
        return pb::RatingState::Rated;
    }
    match f.clock(ClockKind::Rating).map(|c| c.state) {
        None => pb::RatingState::NotYet,
        Some(ClockState::Lapsed) => pb::RatingState::Expired,
        Some(_) => pb::RatingState::Awaiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clock_kind_round_trips_and_unspecified_is_refused() {
        for k in ClockKind::ALL {
            assert_eq!(clock_kind_from_pb(clock_kind_to_pb(*k) as i32), Some(*k));
        }
        assert_eq!(clock_kind_from_pb(0), None);
        assert_eq!(clock_kind_from_pb(99), None);
    }

    /// The timeline and the due list show a handling deadline counted into 2027, a year the
    /// loaded calendar does not cover, as provisional; one within 2026 as final.
    #[test]
    fn a_clock_past_the_calendar_shows_as_provisional() {
        use chrono::TimeZone;
        let calendar =
            HolidayCalendar::from_csv(include_str!("../../../deploy/config/cn-calendar.csv"))
                .unwrap();
        let rules = ClockRules::default();
        let shown = |y, m, d| {
            let start = petition_domain::calendar::beijing()
                .with_ymd_and_hms(y, m, d, 9, 0, 0)
                .unwrap()
                .with_timezone(&chrono::Utc);
            let clock = CaseClock::start(
                ClockKind::Handling,
                Some("pingcheng.housing".into()),
                start,
                petition_domain::clocks::Span::Period(ClockKind::Handling.limit(&rules).period),
            );
            let pb = clock_to_pb(&clock, start, &calendar, &rules);
            (pb.last_day, pb.provisional)
        };
        assert_eq!(shown(2026, 11, 27), ("2027-01-26".to_owned(), true));
        assert_eq!(shown(2026, 3, 2), ("2026-05-06".to_owned(), false));
    }
}
