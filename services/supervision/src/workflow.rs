//! What supervision does to a case, as pure functions over its file: follow the events of
//! intake and routing (start, meet and stop clocks), fire what is due, and the commands —
//! decide an extension, pause and resume a clock, supervise by hand. The gRPC layer asks the
//! access policy who may; these check what the law allows and when.

use crate::model::{
    CaseFile, CaseStage, Entry, FinalReason, LeaderInCharge, NoticeKind, NoticeRecord,
    ReviewDecision, Satisfaction,
};
use chrono::{DateTime, Datelike, Utc};
use pb::event_envelope::Payload;
use petition_domain::calendar::{HolidayCalendar, local_date};
use petition_domain::clocks::{CaseClock, ClockKind, ClockRefusal, ClockRules, Span, Warning};
use petition_domain::{OrgTree, limits};
use petition_grpc::convert::{from_ts, ts};
use petition_proto::v1 as pb;

/// The actor of what the engine does by itself.
pub const ENGINE: &str = "supervision";

/// Who acts, when, under which rules: what every change needs.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub calendar: &'a HolidayCalendar,
    pub rules: &'a ClockRules,
    pub now: DateTime<Utc>,
    pub actor: &'a str,
}

/// A rule broken by a command, named for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    WrongState(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<ClockRefusal> for Refusal {
    fn from(r: ClockRefusal) -> Self {
        match r {
            ClockRefusal::ExtensionLength(_) | ClockRefusal::ResumeBeforePause { .. } => {
                Refusal::Invalid(r.to_string())
            }
            _ => Refusal::WrongState(r.to_string()),
        }
    }
}

/// A file after a change, with what the change said and sent.
#[derive(Debug, Clone)]
pub struct Change {
    pub file: CaseFile,
    /// the clocks as the store read them, when it knows: those equal to one of them are not
    /// written again. Empty (the workflow never fills it) means write every clock.
    pub read: Vec<CaseClock>,
    pub entries: Vec<Entry>,
    pub notices: Vec<NoticeRecord>,
    pub events: Vec<Payload>,
}

impl Change {
    fn of(file: CaseFile) -> Self {
        Self {
            read: Vec::new(),
            file,
            entries: Vec::new(),
            notices: Vec::new(),
            events: Vec::new(),
        }
    }

    fn note(&mut self, at: DateTime<Utc>, kind: &str, text: String, actor: &str) {
        self.entries.push(Entry {
            at,
            kind: kind.to_owned(),
            text,
            actor: actor.to_owned(),
        });
    }
}

/// Why an event cannot be applied yet: it needs the case, which an earlier event creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotYet(pub &'static str);

fn period_clock(
    kind: ClockKind,
    organ: Option<&str>,
    at: DateTime<Utc>,
    rules: &ClockRules,
) -> CaseClock {
    CaseClock::start(
        kind,
        organ.map(str::to_owned),
        at,
        Span::Period(kind.limit(rules).period),
    )
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn meet(file: &mut CaseFile, kind: ClockKind, at: DateTime<Utc>, cx: Ctx<'_>) {
    if let Some(c) = file.clock_mut(kind) {
        c.meet(at, cx.calendar, cx.rules.counting);
    }
}

fn stop(file: &mut CaseFile, kinds: &[ClockKind], at: DateTime<Utc>, cx: Ctx<'_>) {
    for k in kinds {
        if let Some(c) = file.clock_mut(*k) {
            c.stop(at, cx.calendar, cx.rules.counting);
        }
    }
}

/// Applies an event of intake or routing to the case it concerns. `None`: the event changes
/// nothing here.
pub fn on_event(
    file: Option<CaseFile>,
    payload: &Payload,
    occurred_at: DateTime<Utc>,
    cx: Ctx<'_>,
) -> Result<Option<Change>, NotYet> {
    let rules = cx.rules;
    match payload {
        // history from the old system: no clock runs for it
        Payload::PetitionRegistered(r) if r.imported => Ok(None),
        Payload::PetitionRegistered(r) => {
            let received_at = r
                .received_at
                .as_ref()
                .and_then(from_ts)
                .unwrap_or(occurred_at);
            let mut f = file.unwrap_or_else(|| CaseFile::new(&r.case_id, &r.case_number));
            if !f.case.received_by.is_empty() {
                return Ok(None); // seen already
            }
            f.case.received_by = r.received_by.clone();
            f.case.query_code_digest = non_empty(&r.query_code_digest);
            f.case.repeat_of = r
                .flags
                .as_ref()
                .and_then(|fl| non_empty(&fl.repeat_of_case_id));
            f.case.accused_organ = non_empty(&r.accused_organ_id).or(f.case.accused_organ);
            // Routing may have been seen first (the streams are read apart): the forward
            // clock is then met as soon as it starts.
            let mut forward = period_clock(
                ClockKind::Forward,
                Some(f.case.bureau.as_deref().unwrap_or(&r.received_by)),
                received_at,
                rules,
            );
            if f.case.stage != CaseStage::Registered {
                forward.meet(
                    f.case.first_routed_at.unwrap_or(occurred_at),
                    cx.calendar,
                    rules.counting,
                );
            }
            f.start(forward);
            let mut c = Change::of(f);
            c.note(
                received_at,
                "registered",
                format!(
                    "registered by {}; 15 days to forward or assign (Art. 22 ¶1)",
                    r.received_by
                ),
                "intake",
            );
            Ok(Some(c))
        }
        Payload::PetitionRouted(r) => {
            let at = r
                .routed_at
                .as_ref()
                .and_then(from_ts)
                .unwrap_or(occurred_at);
            let mut f = file.unwrap_or_else(|| CaseFile::new(&r.case_id, &r.case_number));
            f.case.accused_organ = f.case.accused_organ.or(non_empty(&r.accused_organ_id));
            f.case.bureau = non_empty(&r.forwarding_bureau).or(f.case.bureau);
            let outcome = pb::RouteOutcome::try_from(r.outcome).unwrap_or_default();
            let mut c;
            if outcome == pb::RouteOutcome::Triage {
                // Still the bureau's to route: its forward clock runs on.
                let bureau = f.case.bureau.clone();
                if let Some(fw) = f.clock_mut(ClockKind::Forward) {
                    fw.organ = bureau.or(fw.organ.take());
                }
                c = Change::of(f);
                c.note(
                    at,
                    "triaged",
                    format!("in the triage queue of {}: {}", r.organ, r.rule),
                    "routing",
                );
                return Ok(Some(c));
            }
            meet(&mut f, ClockKind::Forward, at, cx);
            f.case.first_routed_at = f.case.first_routed_at.or(Some(at));
            stop(
                &mut f,
                &[
                    ClockKind::Notice,
                    ClockKind::Objection,
                    ClockKind::Handling,
                    ClockKind::Report,
                ],
                at,
                cx,
            );
            f.case.holder = Some(r.organ.clone()).filter(|_| outcome != pb::RouteOutcome::Linked);
            let text = match outcome {
                pb::RouteOutcome::Sent => {
                    f.case.stage = CaseStage::Routed;
                    f.start(period_clock(ClockKind::Notice, Some(&r.organ), at, rules));
                    f.start(period_clock(
                        ClockKind::Objection,
                        Some(&r.organ),
                        at,
                        rules,
                    ));
                    if let Some(due) = r.report_due.as_ref().and_then(from_ts) {
                        // The bureau's date is the last day to report; 24:00 Beijing ends it.
                        let last = local_date(due - chrono::Duration::microseconds(1));
                        f.start(CaseClock::start(
                            ClockKind::Report,
                            Some(r.organ.clone()),
                            at,
                            Span::Until(last),
                        ));
                    }
                    format!("sent to {} ({}): {}", r.organ, mode_name(r.mode), r.rule)
                }
                pb::RouteOutcome::Diverted => {
                    f.case.stage = CaseStage::Diverted;
                    format!("diverted to {}: {}", r.organ, r.rule)
                }
                _ => {
                    f.case.stage = CaseStage::Linked;
                    format!("linked to case {}: {}", r.linked_case_number, r.rule)
                }
            };
            c = Change::of(f);
            c.note(at, "routed", text, "routing");
            Ok(Some(c))
        }
        Payload::CaseAccepted(a) => {
            let mut f = file.ok_or(NotYet("case.accepted before the case was routed"))?;
            let at = a
                .accepted_at
                .as_ref()
                .and_then(from_ts)
                .unwrap_or(occurred_at);
            meet(&mut f, ClockKind::Notice, at, cx);
            stop(&mut f, &[ClockKind::Objection], at, cx);
            f.case.holder = Some(a.organ.clone());
            f.case.stage = CaseStage::InHandling;
            let runs = a.handling_due.is_some();
            if runs {
                let mut clock = period_clock(ClockKind::Handling, Some(&a.organ), at, rules);
                // Routing told the organ and the petitioner a provisional day: whatever this
                // calendar counts, the clock does not end before it (ADR 0012).
                if a.handling_due_provisional {
                    clock.floor = a
                        .handling_due
                        .as_ref()
                        .and_then(from_ts)
                        .map(|due| local_date(due - chrono::Duration::microseconds(1)));
                }
                f.start(clock);
            }
            let mut c = Change::of(f);
            c.note(
                at,
                "accepted",
                if runs {
                    format!(
                        "accepted (受理) by {}; 60 days to reply in writing (Art. 34)",
                        a.organ
                    )
                } else {
                    format!("accepted (受理) by {}", a.organ)
                },
                "routing",
            );
            Ok(Some(c))
        }
        Payload::ObjectionRaised(o) => {
            let mut f = file.ok_or(NotYet("objection before the case was routed"))?;
            meet(&mut f, ClockKind::Objection, occurred_at, cx);
            let mut c = Change::of(f);
            c.note(
                occurred_at,
                "objected",
                format!("{} objects (异议): {}", o.organ, o.reason),
                "routing",
            );
            Ok(Some(c))
        }
        Payload::ObjectionResolved(o) => {
            let f = file.ok_or(NotYet("objection answer before the case was routed"))?;
            let mut c = Change::of(f);
            c.note(
                occurred_at,
                "objection_resolved",
                format!(
                    "objection {}; {} holds the case",
                    if o.agreed { "agreed" } else { "refused" },
                    o.organ
                ),
                "routing",
            );
            Ok(Some(c))
        }
        Payload::ExtensionRequested(e) => {
            let mut f = file.ok_or(NotYet("extension request before the case was routed"))?;
            f.case.extension_requested_days = Some(e.days);
            f.case.extension_reason = non_empty(&e.reason);
            let mut c = Change::of(f);
            c.note(
                occurred_at,
                "extension_requested",
                format!(
                    "{} asks to extend handling by {} days: {}",
                    e.organ, e.days, e.reason
                ),
                "routing",
            );
            Ok(Some(c))
        }
        Payload::CaseAnswered(a) => {
            let mut f = file.ok_or(NotYet("answer before the case was routed"))?;
            let replied = a
                .replied_at
                .as_ref()
                .and_then(from_ts)
                .unwrap_or(occurred_at);
            let served = a.served_at.as_ref().and_then(from_ts).unwrap_or(replied);
            meet(&mut f, ClockKind::Handling, replied, cx);
            meet(&mut f, ClockKind::Notice, replied, cx);
            stop(&mut f, &[ClockKind::Objection], replied, cx);
            f.case.stage = CaseStage::Answered;
            f.case.answered_by = Some(a.organ.clone());
            f.case.extension_requested_days = None;
            f.start(period_clock(ClockKind::ReviewRequest, None, served, rules));
            f.start(period_clock(ClockKind::Rating, None, served, rules));
            let mut c = Change::of(f);
            c.note(
                replied,
                "answered",
                format!(
                    "written reply by {}; served {}: 30 days to request review (Art. 35)",
                    a.organ,
                    local_date(served)
                ),
                "routing",
            );
            Ok(Some(c))
        }
        Payload::CompletionReported(r) => {
            let mut f = file.ok_or(NotYet("completion report before the case was routed"))?;
            let at = r
                .reported_at
                .as_ref()
                .and_then(from_ts)
                .unwrap_or(occurred_at);
            meet(&mut f, ClockKind::Report, at, cx);
            let mut c = Change::of(f);
            c.note(
                at,
                "completion_reported",
                format!("completion report (办结报告) from {}", r.organ),
                "routing",
            );
            Ok(Some(c))
        }
        Payload::NoticeIssued(_)
        | Payload::ExtensionDecided(_)
        | Payload::ClockPaused(_)
        | Payload::ClockResumed(_)
        | Payload::CaseRated(_)
        | Payload::ReviewRequested(_)
        | Payload::ReviewDecided(_)
        | Payload::CaseFinal(_)
        | Payload::ClockRecounted(_)
        | Payload::LeaderTookCharge(_)
        | Payload::CaseResolved(_)
        // copied by the consumer before it comes here: a recusal changes no clock
        | Payload::RecusalRecorded(_)
        | Payload::RecusalLifted(_)
        | Payload::PeerProgressed(_) => peer_step(file, payload, occurred_at, cx),
    }
}

/// A step a peer deployment reported on a case we routed to one of its organs, for the clocks
/// we hold for our copy (see `petition_grpc::federation`). Its other steps reach supervision as
/// routing's own events, once routing applied them to our copy.
fn peer_step(
    file: Option<CaseFile>,
    payload: &Payload,
    occurred_at: DateTime<Utc>,
    cx: Ctx<'_>,
) -> Result<Option<Change>, NotYet> {
    let Payload::PeerProgressed(p) = payload else {
        return Ok(None);
    };
    match p.event.as_ref().and_then(|e| e.payload.as_ref()) {
        Some(Payload::ExtensionDecided(e)) if e.approved => {
            peer_extension(file, p, e, occurred_at, cx)
        }
        Some(Payload::CaseRated(r)) => peer_rating(file, p, r, cx),
        _ => Ok(None),
    }
}

/// The petitioner rated the handling at the peer deployment, where they were answered: the
/// rating window we hold closes as rated (not lapsed), with the organ's rating.
fn peer_rating(
    file: Option<CaseFile>,
    p: &pb::PeerProgressed,
    r: &pb::CaseRated,
    cx: Ctx<'_>,
) -> Result<Option<Change>, NotYet> {
    let mut f = file.ok_or(NotYet("a peer's rating before the case was routed"))?;
    if f.case.rated_at.is_some() {
        return Ok(None);
    }
    if f.clock(ClockKind::Rating).is_none() {
        return Err(NotYet("a peer's rating before its reply was applied"));
    }
    let at = r.rated_at.as_ref().and_then(from_ts).unwrap_or(cx.now);
    meet(&mut f, ClockKind::Rating, at, cx);
    f.case.organ_rating = crate::convert::satisfaction_from_pb(r.organ);
    f.case.rated_at = Some(at);
    let mut c = Change::of(f);
    c.note(
        at,
        "rated",
        format!(
            "rated by the petitioner at {}: handling organ {}",
            p.peer,
            c.file
                .case
                .organ_rating
                .map_or("(none)".to_owned(), |s| s.to_string())
        ),
        "peer",
    );
    Ok(Some(c))
}

/// A peer deployment's organ got its extension approved there (Art. 34): the handling clock we
/// hold for our copy runs the same longer period.
fn peer_extension(
    file: Option<CaseFile>,
    p: &pb::PeerProgressed,
    e: &pb::ExtensionDecided,
    occurred_at: DateTime<Utc>,
    cx: Ctx<'_>,
) -> Result<Option<Change>, NotYet> {
    let mut f = file.ok_or(NotYet("a peer's extension before the case was routed"))?;
    let Some(handling) = f.clock_mut(ClockKind::Handling) else {
        return Err(NotYet(
            "a peer's extension before its acceptance was applied",
        ));
    };
    // Once only (the clock says so): a second extension is no extension.
    if handling.extend_by(e.days).is_err() {
        return Ok(None);
    }
    let due = handling.deadline(cx.calendar, cx.rules.counting);
    let mut c = Change::of(f);
    c.note(
        occurred_at,
        "extension_decided",
        format!(
            "{} of {} extended handling by {} days: the reply is due by {} ({}): {}",
            e.organ,
            p.peer,
            e.days,
            due.last_day,
            limits::EXTENSION_ARTICLE,
            e.reason
        ),
        "peer",
    );
    Ok(Some(c))
}

fn mode_name(mode: i32) -> &'static str {
    match pb::HandlingMode::try_from(mode) {
        Ok(pb::HandlingMode::Assign) => "交办",
        _ => "转送",
    }
}

/// The responsible leader (责任领导) an urging notice is copied to.
pub fn responsible_leader(organ: &str) -> String {
    format!("responsible leader (责任领导) of {organ}")
}

fn notice_text(kind: NoticeKind, clock: &CaseClock, case_number: &str, cx: Ctx<'_>) -> String {
    let limit = clock.kind.limit(cx.rules);
    let dl = clock.deadline(cx.calendar, cx.rules.counting);
    let last = if dl.provisional {
        format!(
            "{} (provisional: {}'s holiday arrangement is not loaded)",
            dl.last_day,
            dl.last_day.year()
        )
    } else {
        dl.last_day.to_string()
    };
    match kind {
        NoticeKind::Reminder => format!(
            "提醒: case {case_number}: the {} ({}) ends on {last}",
            limit.name, limit.article
        ),
        NoticeKind::Urging => format!(
            "催办: case {case_number}: the {} ({}) ended on {last} and is not done; report in writing what was done",
            limit.name, limit.article
        ),
        NoticeKind::Listed => format!(
            "挂牌督办: case {case_number} is still overdue on the {} ({}), last day {last}",
            limit.name, limit.article
        ),
        NoticeKind::Circular => format!(
            "通报: case {case_number} is still overdue on the {} ({}), last day {last}",
            limit.name, limit.article
        ),
        NoticeKind::Supervision => String::new(),
    }
}

/// What a notice says and to whom; the case and the moment come from the file and context.
struct Draft<'a> {
    organ: &'a str,
    kind: NoticeKind,
    clock: Option<ClockKind>,
    text: String,
    copy_to: String,
    feedback_due: Option<DateTime<Utc>>,
}

fn notice(file: &CaseFile, d: Draft<'_>, cx: Ctx<'_>) -> NoticeRecord {
    let Draft {
        organ,
        kind,
        clock,
        text,
        copy_to,
        feedback_due,
    } = d;
    NoticeRecord {
        notice_id: uuid::Uuid::now_v7().to_string(),
        case_id: file.case.case_id.clone(),
        case_number: file.case.case_number.clone(),
        organ: organ.to_owned(),
        accused_organ: file.case.accused_organ.clone(),
        kind,
        clock,
        text,
        copy_to,
        issued_at: cx.now,
        issued_by: cx.actor.to_owned(),
        feedback_due,
        acknowledged_at: None,
        acknowledged_by: None,
        feedback: None,
    }
}

fn issued(n: &NoticeRecord) -> Payload {
    Payload::NoticeIssued(pb::NoticeIssued {
        case_id: n.case_id.clone(),
        case_number: n.case_number.clone(),
        notice_id: n.notice_id.clone(),
        organ: n.organ.clone(),
        kind: crate::convert::notice_kind_to_pb(n.kind) as i32,
        clock: n
            .clock
            .map_or(pb::ClockKind::Unspecified, crate::convert::clock_kind_to_pb)
            as i32,
        issued_at: Some(ts(n.issued_at)),
    })
}

/// Counts the given open clocks of a case again on a newly loaded calendar, each from the
/// provisional last day it was announced with. A clock whose last day moves gets a timeline
/// line and a `ClockRecounted` event; one whose day stands only loses its provisional mark.
/// `None` when nothing changes.
pub fn recount(file: CaseFile, kinds: &[ClockKind], cx: Ctx<'_>) -> Option<Change> {
    let read = file.clocks.clone();
    let mut c = Change::of(file);
    let mut recounted = Vec::new();
    for kind in kinds {
        let Some(clock) = c.file.clock_mut(*kind) else {
            continue;
        };
        let Some(r) = clock.recount(cx.calendar, cx.rules.counting, cx.now) else {
            continue;
        };
        recounted.push(*kind);
        if r.deadline.last_day == r.previous {
            continue;
        }
        let organ = clock.organ.clone();
        let limit = kind.limit(cx.rules);
        c.note(
            cx.now,
            "clock.recounted",
            format!(
                "the {} ({}) now ends on {}, not {}: counted again with {}'s holiday arrangement loaded{}",
                limit.name,
                limit.article,
                r.deadline.last_day,
                r.previous,
                r.previous.year(),
                if r.deadline.provisional {
                    " (still provisional)"
                } else {
                    ""
                }
            ),
            cx.actor,
        );
        c.events.push(Payload::ClockRecounted(pb::ClockRecounted {
            case_id: c.file.case.case_id.clone(),
            case_number: c.file.case.case_number.clone(),
            clock: crate::convert::clock_kind_to_pb(*kind) as i32,
            organ: organ.unwrap_or_default(),
            previous_last_day: r.previous.to_string(),
            last_day: r.deadline.last_day.to_string(),
            due_at: Some(ts(r.deadline.due)),
            provisional: r.deadline.provisional,
        }));
    }
    if recounted.is_empty() {
        return None;
    }
    // A recounted clock is written even when it equals what was read: its row's provisional
    // mark is derived on write, and must go.
    c.read = read
        .into_iter()
        .filter(|k| !recounted.contains(&k.kind))
        .collect();
    Some(c)
}

/// Fires every warning of the file due by `cx.now`: notices to the organs that owe, and the
/// end of the petitioner's windows. `None` when nothing was due.
pub fn fire(file: CaseFile, cx: Ctx<'_>) -> Option<Change> {
    let mut c = Change::of(file);
    for i in 0..c.file.clocks.len() {
        let fired = c.file.clocks[i].fire(cx.now, cx.rules, cx.calendar);
        for (at, warning) in fired {
            let clock = c.file.clocks[i].clone();
            match (NoticeKind::of_warning(warning), clock.organ.as_deref()) {
                (Some(kind), Some(organ)) => {
                    let copy_to = match kind {
                        NoticeKind::Reminder => String::new(),
                        _ => responsible_leader(organ),
                    };
                    let text = notice_text(kind, &clock, &c.file.case.case_number, cx);
                    let n = notice(
                        &c.file,
                        Draft {
                            organ,
                            kind,
                            clock: Some(clock.kind),
                            text: text.clone(),
                            copy_to,
                            feedback_due: None,
                        },
                        cx,
                    );
                    c.events.push(issued(&n));
                    c.notices.push(n);
                    c.note(
                        at,
                        &format!("notice.{kind}"),
                        format!("to {organ}: {text}"),
                        ENGINE,
                    );
                }
                _ => {
                    let limit = clock.kind.limit(cx.rules);
                    let text = match (warning, clock.kind) {
                        (Warning::WindowClosed, ClockKind::Rating) => format!(
                            "the {} closed unrated: counted as not rated, never as satisfied",
                            limit.name
                        ),
                        (Warning::WindowClosed, _) => {
                            format!("the {} ({}) closed unused", limit.name, limit.article)
                        }
                        _ => format!("the {} ({}): {warning}", limit.name, limit.article),
                    };
                    let lapsed_stage = match clock.kind {
                        ClockKind::ReviewRequest => Some(CaseStage::Answered),
                        ClockKind::ReexaminationRequest => Some(CaseStage::ReviewDecided),
                        _ => None,
                    };
                    if warning == Warning::WindowClosed && lapsed_stage == Some(c.file.case.stage) {
                        // No review or re-examination requested in time: the last opinion
                        // is final (超期未申请复查/复核).
                        c.file.case.stage = CaseStage::Final;
                        c.file.case.final_reason = Some(FinalReason::WindowLapsed);
                        c.events.push(final_event(&c.file, at));
                    }
                    c.note(at, "window_closed", text, ENGINE);
                }
            }
        }
    }
    (!c.entries.is_empty()).then_some(c)
}

/// The holder's extension request, approved (the handling clock moves) or refused, with the
/// reason the petitioner is told (Art. 34).
pub fn decide_extension(
    file: &CaseFile,
    approve: bool,
    reason: &str,
    cx: Ctx<'_>,
) -> Result<Change, Refusal> {
    let Some(days) = file.case.extension_requested_days else {
        return Err(Refusal::WrongState(format!(
            "no extension was requested for case {}; the holder requests one first (RequestExtension, Art. 34)",
            file.case.case_number
        )));
    };
    if reason.trim().is_empty() {
        return Err(Refusal::Invalid(
            "reason: required; the petitioner is told why (Art. 34)".into(),
        ));
    }
    let mut f = file.clone();
    let handling = f.clock_mut(ClockKind::Handling).ok_or_else(|| {
        Refusal::WrongState("the handling clock (Art. 34) is not running for this case".into())
    })?;
    if approve {
        let before = (handling.state, handling.stage);
        handling.extend_by(days)?;
        // Approved after even the extended end: still overdue, and what was sent stays sent.
        if !handling
            .deadline(cx.calendar, cx.rules.counting)
            .is_open_at(cx.now)
        {
            (handling.state, handling.stage) = before;
        }
    }
    let due = handling.deadline(cx.calendar, cx.rules.counting);
    let organ = handling.organ.clone().unwrap_or_default();
    f.case.extension_requested_days = None;
    f.case.extension_reason = None;
    let mut c = Change::of(f);
    c.note(
        cx.now,
        "extension_decided",
        if approve {
            format!(
                "extension of {days} days approved: the reply is due by {} ({}): {reason}",
                due.last_day,
                limits::EXTENSION_ARTICLE
            )
        } else {
            format!(
                "extension of {days} days refused: the reply is due by {}: {reason}",
                due.last_day
            )
        },
        cx.actor,
    );
    c.events
        .push(Payload::ExtensionDecided(pb::ExtensionDecided {
            case_id: c.file.case.case_id.clone(),
            case_number: c.file.case.case_number.clone(),
            approved: approve,
            days,
            reason: reason.trim().to_owned(),
            handling_due: Some(ts(due.due)),
            handling_due_provisional: due.provisional,
            organ,
        }));
    Ok(c)
}

pub fn pause(
    file: &CaseFile,
    kind: ClockKind,
    reason: &str,
    cx: Ctx<'_>,
) -> Result<Change, Refusal> {
    if reason.trim().is_empty() {
        return Err(Refusal::Invalid(
            "reason: required; a pause is audited (a hearing 听证, or waiting on the petitioner's material)".into(),
        ));
    }
    let mut f = file.clone();
    let clock = f
        .clock_mut(kind)
        .ok_or_else(|| Refusal::WrongState(format!("clock: this case runs no {kind} clock")))?;
    clock.pause(cx.now, cx.calendar, cx.rules.counting)?;
    let mut c = Change::of(f);
    c.note(
        cx.now,
        "clock.paused",
        format!("the {kind} clock stands still: {}", reason.trim()),
        cx.actor,
    );
    c.events.push(Payload::ClockPaused(pb::ClockPaused {
        case_id: c.file.case.case_id.clone(),
        case_number: c.file.case.case_number.clone(),
        clock: crate::convert::clock_kind_to_pb(kind) as i32,
        reason: reason.trim().to_owned(),
        paused_at: Some(ts(cx.now)),
    }));
    Ok(c)
}

pub fn resume(
    file: &CaseFile,
    kind: ClockKind,
    reason: &str,
    cx: Ctx<'_>,
) -> Result<Change, Refusal> {
    let mut f = file.clone();
    let clock = f
        .clock_mut(kind)
        .ok_or_else(|| Refusal::WrongState(format!("clock: this case runs no {kind} clock")))?;
    let days = clock.resume(cx.now, cx.calendar, cx.rules.counting)?;
    let due = clock.deadline(cx.calendar, cx.rules.counting);
    let mut c = Change::of(f);
    c.note(
        cx.now,
        "clock.resumed",
        format!(
            "the {kind} clock runs again after {days} days; last day now {}{}",
            due.last_day,
            if reason.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", reason.trim())
            }
        ),
        cx.actor,
    );
    c.events.push(Payload::ClockResumed(pb::ClockResumed {
        case_id: c.file.case.case_id.clone(),
        case_number: c.file.case.case_number.clone(),
        clock: crate::convert::clock_kind_to_pb(kind) as i32,
        paused_days: days,
        due_at: Some(ts(due.due)),
        due_provisional: due.provisional,
    }));
    Ok(c)
}

/// 督办 by hand (Art. 40): a written notice to the organ holding the case, which answers in
/// writing by `feedback_due`.
pub fn supervise(
    file: &CaseFile,
    text: &str,
    feedback_due: DateTime<Utc>,
    cx: Ctx<'_>,
) -> Result<Change, Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::Invalid(
            "text: required; what the organ is to do (督办, Art. 40)".into(),
        ));
    }
    if feedback_due <= cx.now {
        return Err(Refusal::Invalid(format!(
            "feedback_due: must be after now ({})",
            petition_domain::beijing_time(cx.now)
        )));
    }
    let Some(organ) = file.case.holder.clone() else {
        return Err(Refusal::WrongState(format!(
            "case {} is held by no organ yet; route it first",
            file.case.case_number
        )));
    };
    let mut c = Change::of(file.clone());
    let n = notice(
        &c.file,
        Draft {
            organ: &organ,
            kind: NoticeKind::Supervision,
            clock: None,
            text: text.trim().to_owned(),
            copy_to: responsible_leader(&organ),
            feedback_due: Some(feedback_due),
        },
        cx,
    );
    c.note(
        cx.now,
        "notice.supervision",
        format!("督办 to {organ}: {}", text.trim()),
        cx.actor,
    );
    c.events.push(issued(&n));
    c.notices.push(n);
    Ok(c)
}

fn final_event(f: &CaseFile, at: DateTime<Utc>) -> Payload {
    Payload::CaseFinal(pb::CaseFinal {
        case_id: f.case.case_id.clone(),
        case_number: f.case.case_number.clone(),
        reason: match f.case.final_reason {
            Some(FinalReason::Reexamined) => pb::FinalReason::Reexamined,
            Some(FinalReason::WindowLapsed) => pb::FinalReason::WindowLapsed,
            None => pb::FinalReason::Unspecified,
        } as i32,
        final_at: Some(ts(at)),
    })
}

/// The petitioner's rating of the bureau and of the handling organ.
#[derive(Debug, Clone)]
pub struct Rating<'a> {
    pub bureau: Satisfaction,
    pub organ: Satisfaction,
    pub reason: &'a str,
}

/// 满意度评价: once, within the rating window; dissatisfied needs a reason.
pub fn rate(file: &CaseFile, rating: Rating<'_>, cx: Ctx<'_>) -> Result<Change, Refusal> {
    let k = &file.case;
    let Some(window) = file.clock(ClockKind::Rating) else {
        return Err(Refusal::WrongState(format!(
            "case {}: no written reply has been served yet, so there is nothing to rate",
            k.case_number
        )));
    };
    if let Some(at) = k.rated_at {
        return Err(Refusal::WrongState(format!(
            "case {} was rated already, on {}",
            k.case_number,
            local_date(at)
        )));
    }
    let dl = window.deadline(cx.calendar, cx.rules.counting);
    if !dl.is_open_at(cx.now) {
        return Err(Refusal::WrongState(format!(
            "the rating window (满意度评价, {} days from service of the reply) ended on {}; the case counts as not rated",
            cx.rules.rating_days, dl.last_day
        )));
    }
    let dissatisfied = [rating.bureau, rating.organ].contains(&Satisfaction::Dissatisfied);
    if dissatisfied && rating.reason.trim().is_empty() {
        return Err(Refusal::Invalid(
            "reason: required when dissatisfied (不满意)".into(),
        ));
    }
    let mut f = file.clone();
    meet(&mut f, ClockKind::Rating, cx.now, cx);
    f.case.bureau_rating = Some(rating.bureau);
    f.case.organ_rating = Some(rating.organ);
    f.case.rating_reason = non_empty(rating.reason);
    f.case.rated_at = Some(cx.now);
    let mut c = Change::of(f);
    c.note(
        cx.now,
        "rated",
        format!(
            "rated by the petitioner: bureau {}, handling organ {}{}",
            rating.bureau,
            rating.organ,
            non_empty(rating.reason).map_or(String::new(), |r| format!(": {r}"))
        ),
        cx.actor,
    );
    c.events.push(Payload::CaseRated(pb::CaseRated {
        case_id: k.case_id.clone(),
        case_number: k.case_number.clone(),
        bureau: crate::convert::satisfaction_to_pb(rating.bureau) as i32,
        organ: crate::convert::satisfaction_to_pb(rating.organ) as i32,
        bureau_organ: k.bureau.clone().unwrap_or_default(),
        handling_organ: k.answered_by.clone().unwrap_or_default(),
        rated_at: Some(ts(cx.now)),
    }));
    Ok(c)
}

/// Which request the petitioner is in time for: review after the reply, re-examination
/// after the review.
struct Level {
    pb: pb::ReviewLevel,
    window: ClockKind,
    opinion: ClockKind,
    next: CaseStage,
    name: &'static str,
    article: &'static str,
}

const REVIEW: Level = Level {
    pb: pb::ReviewLevel::Review,
    window: ClockKind::ReviewRequest,
    opinion: ClockKind::ReviewOpinion,
    next: CaseStage::ReviewRequested,
    name: "review (复查)",
    article: "Art. 35",
};

const REEXAMINATION: Level = Level {
    pb: pb::ReviewLevel::Reexamination,
    window: ClockKind::ReexaminationRequest,
    opinion: ClockKind::ReexaminationOpinion,
    next: CaseStage::ReexaminationRequested,
    name: "re-examination (复核)",
    article: "Art. 36",
};

/// A request after its window: the article and the last day that was allowed.
fn late(level: &Level, window: &CaseClock, cx: Ctx<'_>) -> Refusal {
    Refusal::WrongState(format!(
        "{} must be requested within 30 days of receiving the opinion ({}); it was served on {}, so the last allowed day was {}",
        level.name,
        level.article,
        local_date(window.started_at),
        window.last_day(cx.calendar, cx.rules.counting)
    ))
}

/// The petitioner asks the organ one level up to review the reply (复查, Art. 35) or, after
/// the review, to re-examine it (复核, Art. 36), each within 30 days of the last opinion's
/// service. A late request is refused naming the article and the last day allowed.
pub fn request_review(
    file: &CaseFile,
    reason: &str,
    tree: &OrgTree,
    cx: Ctx<'_>,
) -> Result<Change, Refusal> {
    let k = &file.case;
    let (level, reviewed) = match k.stage {
        CaseStage::Answered => (REVIEW, k.answered_by.clone()),
        CaseStage::ReviewDecided => (REEXAMINATION, k.holder.clone()),
        CaseStage::Final if k.final_reason == Some(FinalReason::Reexamined) => {
            return Err(Refusal::WrongState(format!(
                "不再受理 (Art. 36 ¶3): case {} was re-examined (复核); the decision is final",
                k.case_number
            )));
        }
        CaseStage::Final => {
            // A window lapsed unused: say which, and its last day.
            let level = if file.clock(ClockKind::ReexaminationRequest).is_some() {
                REEXAMINATION
            } else {
                REVIEW
            };
            return Err(match file.clock(level.window) {
                Some(w) => late(&level, w, cx),
                None => Refusal::WrongState(format!("case {} is final", k.case_number)),
            });
        }
        CaseStage::ReviewRequested | CaseStage::ReexaminationRequested => {
            return Err(Refusal::WrongState(format!(
                "case {}: a request is already with {}; its opinion comes first",
                k.case_number,
                k.holder.as_deref().unwrap_or_default()
            )));
        }
        _ => {
            return Err(Refusal::WrongState(format!(
                "case {}: no written reply has been served yet; review is of a written reply (Art. 35)",
                k.case_number
            )));
        }
    };
    if reason.trim().is_empty() {
        return Err(Refusal::Invalid(
            "reason: required; the facts and reasons of the request".into(),
        ));
    }
    let window = file.clock(level.window).ok_or_else(|| {
        Refusal::WrongState(format!(
            "case {}: no {} window runs",
            k.case_number, level.name
        ))
    })?;
    if !window
        .deadline(cx.calendar, cx.rules.counting)
        .is_open_at(cx.now)
    {
        return Err(late(&level, window, cx));
    }
    let reviewed = reviewed.unwrap_or_default();
    let Some(reviewer) = tree.parent(&reviewed).map(|o| o.id.clone()) else {
        return Err(Refusal::WrongState(format!(
            "no organ above {reviewed} in the organisation tree to take the {}",
            level.name
        )));
    };
    let mut f = file.clone();
    meet(&mut f, level.window, cx.now, cx);
    let opinion = period_clock(level.opinion, Some(&reviewer), cx.now, cx.rules);
    let due = opinion.deadline(cx.calendar, cx.rules.counting);
    f.start(opinion);
    f.case.holder = Some(reviewer.clone());
    f.case.stage = level.next;
    let mut c = Change::of(f);
    c.note(
        cx.now,
        level.next.as_str(),
        format!(
            "{} requested of {reviewer}; its opinion is due by {} ({}): {}",
            level.name,
            due.last_day,
            level.article,
            reason.trim()
        ),
        cx.actor,
    );
    c.events.push(Payload::ReviewRequested(pb::ReviewRequested {
        case_id: k.case_id.clone(),
        case_number: k.case_number.clone(),
        level: level.pb as i32,
        organ: reviewer,
        requested_at: Some(ts(cx.now)),
        opinion_due: Some(ts(due.due)),
        opinion_due_provisional: due.provisional,
    }));
    Ok(c)
}

/// The reviewing organ's written opinion. A review opens the window for re-examination from
/// its service; a re-examination is final (Art. 36).
pub fn decide_review(
    file: &CaseFile,
    decision: ReviewDecision,
    opinion: &str,
    served_at: Option<DateTime<Utc>>,
    cx: Ctx<'_>,
) -> Result<Change, Refusal> {
    let k = &file.case;
    let level = match k.stage {
        CaseStage::ReviewRequested => REVIEW,
        CaseStage::ReexaminationRequested => REEXAMINATION,
        _ => {
            return Err(Refusal::WrongState(format!(
                "case {}: no review or re-examination is waiting for an opinion",
                k.case_number
            )));
        }
    };
    if opinion.trim().is_empty() {
        return Err(Refusal::Invalid(
            "opinion: required; the written review or re-examination opinion".into(),
        ));
    }
    let served = served_at.unwrap_or(cx.now);
    if served > cx.now {
        return Err(Refusal::Invalid(format!(
            "served_at: {} is in the future",
            petition_domain::beijing_time(served)
        )));
    }
    let requested = file.clock(level.opinion).map(|c| c.started_at);
    if requested.is_some_and(|r| served < r) {
        return Err(Refusal::Invalid(
            "served_at: before the request it answers".into(),
        ));
    }
    let organ = k.holder.clone().unwrap_or_default();
    let mut f = file.clone();
    meet(&mut f, level.opinion, cx.now, cx);
    let text;
    if level.pb == pb::ReviewLevel::Review {
        f.case.stage = CaseStage::ReviewDecided;
        f.start(period_clock(
            ClockKind::ReexaminationRequest,
            None,
            served,
            cx.rules,
        ));
        text = format!(
            "review opinion (复查意见) of {organ}: {decision}; served {}: 30 days to request re-examination (Art. 36): {}",
            local_date(served),
            opinion.trim()
        );
    } else {
        f.case.stage = CaseStage::Final;
        f.case.final_reason = Some(FinalReason::Reexamined);
        text = format!(
            "re-examination opinion (复核意见) of {organ}: {decision}; final, the same matter is not accepted again (Art. 36 ¶3): {}",
            opinion.trim()
        );
    }
    let mut c = Change::of(f);
    c.note(cx.now, "review_decided", text, cx.actor);
    c.events.push(Payload::ReviewDecided(pb::ReviewDecided {
        case_id: k.case_id.clone(),
        case_number: k.case_number.clone(),
        level: level.pb as i32,
        organ,
        decision: crate::convert::decision_to_pb(decision) as i32,
        decided_at: Some(ts(cx.now)),
        served_at: Some(ts(served)),
    }));
    if c.file.case.stage == CaseStage::Final {
        c.events.push(final_event(&c.file, cx.now));
    }
    Ok(c)
}

/// 包案: a leader takes personal charge, with a plan and a target date; the case may be put in
/// the backlog by hand at the same time.
pub fn take_charge(
    file: &CaseFile,
    plan: &str,
    target_day: chrono::NaiveDate,
    add_to_backlog: bool,
    organ: &str,
    cx: Ctx<'_>,
) -> Result<Change, Refusal> {
    if plan.trim().is_empty() {
        return Err(Refusal::Invalid(
            "plan: required; how the leader will resolve the case".into(),
        ));
    }
    if target_day < local_date(cx.now) {
        return Err(Refusal::Invalid(format!(
            "target_date: {target_day} is already past (today is {} in Beijing)",
            local_date(cx.now)
        )));
    }
    if file.case.resolved_at.is_some() {
        return Err(Refusal::WrongState(format!(
            "case {} was resolved (化解) already",
            file.case.case_number
        )));
    }
    if let Some(l) = &file.case.leader
        && l.leader != cx.actor
    {
        return Err(Refusal::WrongState(format!(
            "case {}: {} ({}) is in charge already",
            file.case.case_number, l.leader, l.organ
        )));
    }
    let mut f = file.clone();
    f.case.leader = Some(LeaderInCharge {
        leader: cx.actor.to_owned(),
        organ: organ.to_owned(),
        plan: plan.trim().to_owned(),
        target_day,
        taken_at: cx.now,
    });
    f.case.backlog_flag |= add_to_backlog;
    let case_id = f.case.case_id.clone();
    let case_number = f.case.case_number.clone();
    let mut c = Change::of(f);
    c.events
        .push(Payload::LeaderTookCharge(pb::LeaderTookCharge {
            case_id,
            case_number,
            organ: organ.to_owned(),
            target_date: target_day.to_string(),
            backlog: add_to_backlog,
            taken_at: Some(ts(cx.now)),
        }));
    c.note(
        cx.now,
        "leader.in_charge",
        format!(
            "包案: {} of {organ} takes charge, to resolve by {target_day}: {}{}",
            cx.actor,
            plan.trim(),
            if add_to_backlog {
                "; listed as a backlog case (积案)"
            } else {
                ""
            }
        ),
        cx.actor,
    );
    Ok(c)
}

/// A progress note; with `resolved`, the resolution (化解) that takes the case out of the
/// backlog — only with the petitioner's confirmation or a final decision.
pub fn record_progress(
    file: &CaseFile,
    note: &str,
    resolved: bool,
    petitioner_confirmed: bool,
    cx: Ctx<'_>,
) -> Result<Change, Refusal> {
    if note.trim().is_empty() {
        return Err(Refusal::Invalid("note: required".into()));
    }
    let k = &file.case;
    if k.resolved_at.is_some() {
        return Err(Refusal::WrongState(format!(
            "case {} was resolved (化解) already",
            k.case_number
        )));
    }
    if resolved && !petitioner_confirmed && k.stage != CaseStage::Final {
        return Err(Refusal::WrongState(format!(
            "case {} leaves the backlog only with the petitioner's confirmation or a final decision; neither is recorded",
            k.case_number
        )));
    }
    let mut f = file.clone();
    if resolved {
        f.case.resolved_at = Some(cx.now);
        f.case.resolution = Some(note.trim().to_owned());
        f.case.petitioner_confirmed = petitioner_confirmed;
    }
    let mut c = Change::of(f);
    if resolved {
        c.events.push(Payload::CaseResolved(pb::CaseResolved {
            case_id: k.case_id.clone(),
            case_number: k.case_number.clone(),
            petitioner_confirmed,
            resolved_at: Some(ts(cx.now)),
        }));
    }
    c.note(
        cx.now,
        if resolved { "resolved" } else { "progress" },
        if resolved {
            format!(
                "化解: {}{}",
                note.trim(),
                if petitioner_confirmed {
                    " (confirmed by the petitioner)"
                } else {
                    " (the decision is final)"
                }
            )
        } else {
            note.trim().to_owned()
        },
        cx.actor,
    );
    Ok(c)
}
