//! Between supervision's types and protobuf.

use crate::model::{Entry, NoticeKind, NoticeRecord};
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
        paused_days: c.paused_days,
        paused_since: c.paused_since.map(ts),
        ended_at: c.ended_at.map(ts),
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
}
