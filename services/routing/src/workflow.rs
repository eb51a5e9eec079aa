//! What routing does to a case, as pure functions over the record: route a registered petition,
//! accept, object, resolve an objection, route by hand, transfer, reply, extend, report. The
//! gRPC layer asks the access policy who may; these check what the law allows and when.

use crate::model::{
    AssignmentRecord, AssignmentState, HandlingMode, ReplyOutcome, RouteOutcome, ServiceRecord,
    Step,
};
use chrono::{DateTime, Duration, Utc};
use petition_domain::calendar::{CountingPolicy, Deadline, HolidayCalendar, deadline, local_date};
use petition_domain::routing::{Outcome, RoutingDecision};
use petition_domain::{Channel, OrgTree, TypeOfMatter, limits};

#[derive(Debug, Clone)]
pub struct RoutingPolicy {
    /// Group, repeat and leapfrog petitions are assigned (交办) rather than forwarded (转送).
    pub assign_group: bool,
    pub assign_repeat: bool,
    pub assign_leapfrog: bool,
    /// The reporting deadline the bureau sets on an assignment.
    pub report_days: i64,
    pub counting: CountingPolicy,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        Self {
            assign_group: true,
            assign_repeat: true,
            assign_leapfrog: true,
            report_days: 30,
            counting: CountingPolicy::default(),
        }
    }
}

/// A rule broken by a command, named for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    WrongState(String),
    #[error("{0}")]
    WindowClosed(String),
    #[error("{0}")]
    Invalid(String),
}

/// Who acts, when, and under which counting rules and tree: what every command needs.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub calendar: &'a HolidayCalendar,
    pub tree: &'a OrgTree,
    pub policy: &'a RoutingPolicy,
    pub now: DateTime<Utc>,
    pub actor: &'a str,
}

/// What routing knows of the registration it routes.
#[derive(Debug, Clone)]
pub struct Registered {
    pub case_id: String,
    pub case_number: String,
    pub received_by: String,
    pub received_at: DateTime<Utc>,
    pub channel: Channel,
    pub category: String,
    pub type_of_matter: Option<TypeOfMatter>,
    pub problem_location: String,
    pub accused_organ: Option<String>,
    pub group: bool,
    pub leapfrog: bool,
    pub repeat: bool,
    /// sent down by a peer deployment, which chose the organ and how (DESIGN §5b)
    pub sent_down: Option<SentDown>,
}

/// How a peer deployment routed the case it sent down: this deployment routes it so, and
/// owes the completion report by the peer's date, not one of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDown {
    pub assigned: bool,
    pub report_due: Option<DateTime<Utc>>,
}

fn step(at: DateTime<Utc>, from: &str, to: &str, rule: &str, actor: &str) -> Step {
    Step {
        at_micros: at.timestamp_micros(),
        from_organ: from.to_owned(),
        to_organ: to.to_owned(),
        rule: rule.to_owned(),
        actor: actor.to_owned(),
    }
}

/// The bureau that routes: the receiving organ if it is a bureau, else the bureau of the
/// problem's territory — never one on the accused side of an accusation (Art. 30 ¶3), which
/// could not see the case it routes.
pub fn forwarding_bureau(tree: &OrgTree, reg: &Registered) -> String {
    let location = petition_domain::RegionCode::parse(&reg.problem_location).ok();
    petition_domain::routing::routing_bureau(
        tree,
        &reg.received_by,
        location.as_ref(),
        reg.accused_organ.as_deref(),
    )
}

fn mode_for(reg: &Registered, policy: &RoutingPolicy) -> HandlingMode {
    if let Some(down) = &reg.sent_down {
        return if down.assigned {
            HandlingMode::Assign
        } else {
            HandlingMode::Forward
        };
    }
    let assign = (policy.assign_group && reg.group)
        || (policy.assign_repeat && reg.repeat)
        || (policy.assign_leapfrog && reg.leapfrog);
    if assign {
        HandlingMode::Assign
    } else {
        HandlingMode::Forward
    }
}

/// The date that orders the inbox: the notice period while awaiting acceptance (Art. 23 ¶3),
/// then the earlier of the reporting deadline and the handling clock; for the bureau, the
/// forwarding period of what waits in triage or on an objection (Art. 22).
pub fn due(
    r: &AssignmentRecord,
    calendar: &HolidayCalendar,
    counting: CountingPolicy,
) -> Option<DateTime<Utc>> {
    match r.state {
        AssignmentState::AwaitingAcceptance => r.organ_received_at.map(|t| {
            deadline(
                t,
                limits::NOTICE_BY_RECEIVING_ORGAN.period,
                calendar,
                counting,
            )
            .due
        }),
        AssignmentState::Accepted => match (r.report_due, r.handling_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        AssignmentState::Triage | AssignmentState::Objected => Some(r.route_due),
        // 交办: the completion report (办结报告) is still owed after the reply
        AssignmentState::Answered if r.mode == Some(HandlingMode::Assign) => r.report_due,
        AssignmentState::Diverted
        | AssignmentState::Linked
        | AssignmentState::Answered
        | AssignmentState::Completed => None,
    }
}

/// Whether the organ holding `r` still has work on it, and so finds it in its inbox: a case
/// to accept, to handle, diverted to it, or assigned (交办) and still owing its completion
/// report. The store's inbox query says the same in SQL.
pub fn in_inbox(r: &AssignmentRecord) -> bool {
    match r.state {
        AssignmentState::AwaitingAcceptance
        | AssignmentState::Accepted
        | AssignmentState::Diverted => true,
        AssignmentState::Answered => r.mode == Some(HandlingMode::Assign),
        AssignmentState::Objected
        | AssignmentState::Triage
        | AssignmentState::Linked
        | AssignmentState::Completed => false,
    }
}

/// Every change ends here: a new version, and the due date of the state it reached.
fn finish(mut n: AssignmentRecord, cx: Ctx<'_>) -> AssignmentRecord {
    n.version += 1;
    n.due_at = due(&n, cx.calendar, cx.policy.counting);
    n
}

fn send_to(
    r: &mut AssignmentRecord,
    organ: &str,
    mode: HandlingMode,
    now: DateTime<Utc>,
    calendar: &HolidayCalendar,
    policy: &RoutingPolicy,
) {
    r.organ = organ.to_owned();
    r.outcome = RouteOutcome::Sent;
    r.state = AssignmentState::AwaitingAcceptance;
    r.mode = Some(mode);
    r.organ_received_at = Some(now);
    r.objection_due = Some(deadline(now, limits::OBJECTION.period, calendar, policy.counting).due);
    r.report_due = (mode == HandlingMode::Assign).then(|| now + Duration::days(policy.report_days));
    r.accepted_at = None;
    r.handling_due = None;
    r.objection_reason = None;
}

/// An accusation never goes to the accused organ or any organ under it (Art. 30 ¶3).
fn refuse_accused_side(r: &AssignmentRecord, organ: &str, tree: &OrgTree) -> Result<(), Refusal> {
    match r.accused_organ.as_deref() {
        Some(a) if tree.is_same_or_above(a, organ) => Err(Refusal::Invalid(format!(
            "organ: {organ} is the accused party's organ or under it; an accusation never goes there (Art. 30 ¶3)"
        ))),
        _ => Ok(()),
    }
}

/// Routes a registered petition by the decision the domain made.
pub fn route_new(
    reg: &Registered,
    decision: &RoutingDecision,
    tree: &OrgTree,
    calendar: &HolidayCalendar,
    policy: &RoutingPolicy,
    now: DateTime<Utc>,
) -> AssignmentRecord {
    let bureau = forwarding_bureau(tree, reg);
    let mut r = AssignmentRecord::blank(&reg.case_id, &reg.case_number, reg.received_at);
    r.received_by = reg.received_by.clone();
    r.organ = bureau.clone();
    r.rule = decision.rule.clone();
    r.type_of_matter = reg.type_of_matter;
    r.category = reg.category.clone();
    r.problem_location = reg.problem_location.clone();
    r.channel = reg.channel;
    r.forwarding_bureau = bureau.clone();
    r.accused_organ = reg.accused_organ.clone();
    r.flag_group = reg.group;
    r.flag_leapfrog = reg.leapfrog;
    r.flag_repeat = reg.repeat;
    r.route_due = deadline(
        reg.received_at,
        limits::FORWARD_OR_ASSIGN.period,
        calendar,
        policy.counting,
    )
    .due;
    match &decision.outcome {
        Outcome::Send { organ, hops } => {
            send_to(&mut r, organ, mode_for(reg, policy), now, calendar, policy);
            if let Some(due) = reg.sent_down.as_ref().and_then(|d| d.report_due)
                && r.mode == Some(HandlingMode::Assign)
            {
                r.report_due = Some(due);
            }
            r.hops = hops.clone();
            let mut from = reg.received_by.clone();
            for hop in hops {
                r.history.push(step(
                    now,
                    &from,
                    hop,
                    "leapfrog (越级): back to the competent level (Art. 20)",
                    "routing",
                ));
                from = hop.clone();
            }
            r.history
                .push(step(now, &from, organ, &decision.rule, "routing"));
        }
        Outcome::Divert {
            organ,
            channel,
            notice,
        } => {
            r.organ = organ.clone();
            r.outcome = RouteOutcome::Diverted;
            r.state = AssignmentState::Diverted;
            r.diversion = Some(*channel);
            r.notice = notice.clone();
            r.organ_received_at = Some(now);
            r.history.push(step(
                now,
                &reg.received_by,
                organ,
                &decision.rule,
                "routing",
            ));
        }
        Outcome::Link {
            case_number,
            notice,
        } => {
            r.outcome = RouteOutcome::Linked;
            r.state = AssignmentState::Linked;
            r.linked_case_number = Some(case_number.clone());
            r.notice = notice.clone();
            r.history.push(step(
                now,
                &reg.received_by,
                &bureau,
                &decision.rule,
                "routing",
            ));
        }
        Outcome::Triage { bureau } => {
            r.organ = bureau.clone();
            r.outcome = RouteOutcome::Triage;
            r.state = AssignmentState::Triage;
            r.history.push(step(
                now,
                &reg.received_by,
                bureau,
                &decision.rule,
                "routing",
            ));
        }
    }
    r.due_at = due(&r, calendar, policy.counting);
    r
}

/// Whether accepting this case starts the 60-day handling clock: only grievances handled as
/// petitions (Art. 31(6), Art. 34), never suggestions or diverted matters.
pub fn runs_handling_clock(r: &AssignmentRecord) -> bool {
    r.type_of_matter == Some(TypeOfMatter::Grievance) && r.diversion.is_none()
}

/// 受理.
pub fn accept(r: &AssignmentRecord, cx: Ctx<'_>) -> Result<AssignmentRecord, Refusal> {
    if r.state != AssignmentState::AwaitingAcceptance {
        return Err(Refusal::WrongState(format!(
            "case {} is {}, not awaiting acceptance (待领)",
            r.case_number, r.state
        )));
    }
    let mut n = r.clone();
    n.state = AssignmentState::Accepted;
    n.accepted_at = Some(cx.now);
    n.handling_due = runs_handling_clock(r).then(|| {
        deadline(
            cx.now,
            limits::HANDLING.period,
            cx.calendar,
            cx.policy.counting,
        )
        .due
    });
    n.history.push(step(
        cx.now,
        &r.organ,
        &r.organ,
        "accepted (受理)",
        cx.actor,
    ));
    Ok(finish(n, cx))
}

/// The objection window (Art. 23 ¶3: 5 working days from the organ's receipt).
pub fn objection_window(
    r: &AssignmentRecord,
    calendar: &HolidayCalendar,
    policy: &RoutingPolicy,
) -> Option<Deadline> {
    r.organ_received_at
        .map(|t| deadline(t, limits::OBJECTION.period, calendar, policy.counting))
}

/// 异议: the holder says it is not competent, with reasons, within the window.
pub fn object(
    r: &AssignmentRecord,
    reason: &str,
    cx: Ctx<'_>,
) -> Result<AssignmentRecord, Refusal> {
    if reason.trim().is_empty() {
        return Err(Refusal::Invalid(
            "reason: an objection (异议) states why the organ is not competent (Art. 23 ¶3)".into(),
        ));
    }
    if !matches!(
        r.state,
        AssignmentState::AwaitingAcceptance | AssignmentState::Accepted
    ) {
        return Err(Refusal::WrongState(format!(
            "case {} is {}; only a case sent to this organ can be objected to",
            r.case_number, r.state
        )));
    }
    let counted = objection_window(r, cx.calendar, cx.policy)
        .ok_or_else(|| Refusal::WrongState("the case was never received by an organ".into()))?;
    // A window never closes before the day the organ was told, though a newly loaded holiday
    // calendar would count it shorter (docs/adr/0012-provisional-deadlines.md).
    let window = match r.objection_due {
        Some(told) if told > counted.due => {
            Deadline::on(local_date(told - Duration::microseconds(1)), false)
        }
        _ => counted,
    };
    if !window.is_open_at(cx.now) {
        return Err(Refusal::WindowClosed(format!(
            "the objection period of 5 working days ({}) ended with {} (Asia/Shanghai); the organ must handle the case",
            limits::OBJECTION.article,
            window.last_day
        )));
    }
    let mut n = r.clone();
    n.state = AssignmentState::Objected;
    n.objection_reason = Some(reason.trim().to_owned());
    n.history.push(step(
        cx.now,
        &r.organ,
        &r.forwarding_bureau,
        &format!("objection (异议): {}", reason.trim()),
        cx.actor,
    ));
    Ok(finish(n, cx))
}

/// The forwarding bureau's answer to an objection: agree and send elsewhere, or refuse.
pub fn resolve_objection(
    r: &AssignmentRecord,
    agree: bool,
    new_organ: Option<&str>,
    reason: &str,
    cx: Ctx<'_>,
) -> Result<AssignmentRecord, Refusal> {
    if r.state != AssignmentState::Objected {
        return Err(Refusal::WrongState(format!(
            "case {} has no objection pending (it is {})",
            r.case_number, r.state
        )));
    }
    let mut n = r.clone();
    if !agree {
        // The case stays, and its clocks with it: the objection changed nothing.
        n.state = if r.accepted_at.is_some() {
            AssignmentState::Accepted
        } else {
            AssignmentState::AwaitingAcceptance
        };
        n.history.push(step(
            cx.now,
            &r.forwarding_bureau,
            &r.organ,
            &format!("objection refused: {reason}"),
            cx.actor,
        ));
        return Ok(finish(n, cx));
    }
    match new_organ.filter(|o| !o.is_empty()) {
        Some(organ) => {
            if organ == r.organ {
                return Err(Refusal::Invalid(format!(
                    "new_organ: {organ} is the organ that objected"
                )));
            }
            refuse_accused_side(r, organ, cx.tree)?;
            let mode = r.mode.unwrap_or(HandlingMode::Forward);
            send_to(&mut n, organ, mode, cx.now, cx.calendar, cx.policy);
            n.history.push(step(
                cx.now,
                &r.organ,
                organ,
                &format!("objection agreed, re-routed: {reason}"),
                cx.actor,
            ));
        }
        None => {
            n.organ = r.forwarding_bureau.clone();
            n.outcome = RouteOutcome::Triage;
            n.state = AssignmentState::Triage;
            n.history.push(step(
                cx.now,
                &r.organ,
                &r.forwarding_bureau,
                &format!("objection agreed, back to triage: {reason}"),
                cx.actor,
            ));
        }
    }
    Ok(finish(n, cx))
}

/// A clerk routes a triaged case (or re-routes any not yet accepted) by hand.
pub fn route_manually(
    r: &AssignmentRecord,
    organ: &str,
    mode: HandlingMode,
    reason: &str,
    cx: Ctx<'_>,
) -> Result<AssignmentRecord, Refusal> {
    if reason.trim().is_empty() {
        return Err(Refusal::Invalid(
            "reason: say why the case goes there".into(),
        ));
    }
    if !matches!(
        r.state,
        AssignmentState::Triage | AssignmentState::AwaitingAcceptance
    ) {
        return Err(Refusal::WrongState(format!(
            "case {} is {}; only triaged or unaccepted cases are routed by hand",
            r.case_number, r.state
        )));
    }
    refuse_accused_side(r, organ, cx.tree)?;
    let mut n = r.clone();
    send_to(&mut n, organ, mode, cx.now, cx.calendar, cx.policy);
    n.rule = format!("routed by hand: {}", reason.trim());
    n.history
        .push(step(cx.now, &r.organ, organ, &n.rule.clone(), cx.actor));
    Ok(finish(n, cx))
}

/// The holder passes the case to another organ or level, with a reason; the new organ's
/// receipt opens its own windows.
pub fn transfer(
    r: &AssignmentRecord,
    organ: &str,
    reason: &str,
    cx: Ctx<'_>,
) -> Result<AssignmentRecord, Refusal> {
    if reason.trim().is_empty() {
        return Err(Refusal::Invalid(
            "reason: say why the case is transferred".into(),
        ));
    }
    if organ == r.organ {
        return Err(Refusal::Invalid(format!(
            "organ: the case is already at {organ}"
        )));
    }
    refuse_accused_side(r, organ, cx.tree)?;
    if !matches!(
        r.state,
        AssignmentState::AwaitingAcceptance | AssignmentState::Accepted
    ) {
        return Err(Refusal::WrongState(format!(
            "case {} is {}; only a case being handled can be transferred",
            r.case_number, r.state
        )));
    }
    let mut n = r.clone();
    let mode = r.mode.unwrap_or(HandlingMode::Forward);
    send_to(&mut n, organ, mode, cx.now, cx.calendar, cx.policy);
    n.rule = format!("transferred by {}: {}", r.organ, reason.trim());
    n.history
        .push(step(cx.now, &r.organ, organ, &n.rule.clone(), cx.actor));
    Ok(finish(n, cx))
}

/// The written opinion (Art. 32) with its service record (送达).
#[derive(Debug, Clone)]
pub struct Reply<'a> {
    pub outcome: Option<ReplyOutcome>,
    pub text: &'a str,
    pub legal_basis: &'a str,
    pub service: Option<ServiceRecord>,
}

pub fn submit_reply(
    r: &AssignmentRecord,
    reply: Reply<'_>,
    cx: Ctx<'_>,
) -> Result<AssignmentRecord, Refusal> {
    let Some(outcome) = reply.outcome else {
        return Err(Refusal::Invalid(
            "outcome: 支持 supported, 解释说明 explained or 不予支持 not supported (Art. 32)"
                .into(),
        ));
    };
    if reply.text.trim().is_empty() {
        return Err(Refusal::Invalid(
            "text: the written opinion (信访处理意见书) is required".into(),
        ));
    }
    // The review window (Art. 35) runs from service: an answer without its date of service
    // would leave the petitioner's 30 days without a start.
    let Some(service) = &reply.service else {
        return Err(Refusal::Invalid(
            "service: required; the date the opinion was served (送达) starts the 30-day review window (Art. 35)"
                .into(),
        ));
    };
    if service.served_at_micros > cx.now.timestamp_micros() {
        return Err(Refusal::Invalid(
            "service.served_at: service (送达) cannot lie in the future".into(),
        ));
    }
    if r.state != AssignmentState::Accepted {
        return Err(Refusal::WrongState(format!(
            "case {} is {}; a reply follows acceptance (受理)",
            r.case_number, r.state
        )));
    }
    let accepted = r.accepted_at.unwrap_or(r.received_at);
    if service.served_at_micros < accepted.timestamp_micros() {
        return Err(Refusal::Invalid(format!(
            "service.served_at: the opinion cannot be served (送达) before the case was accepted (受理) on {}",
            petition_domain::beijing_time(accepted)
        )));
    }
    let mut n = r.clone();
    n.state = AssignmentState::Answered;
    n.reply_outcome = Some(outcome);
    n.reply_text = Some(reply.text.trim().to_owned());
    n.legal_basis = Some(reply.legal_basis.trim().to_owned()).filter(|b| !b.is_empty());
    n.served_at = reply
        .service
        .as_ref()
        .and_then(|s| DateTime::from_timestamp_micros(s.served_at_micros));
    n.service_record = reply.service;
    n.replied_at = Some(cx.now);
    n.history.push(step(
        cx.now,
        &r.organ,
        &r.organ,
        &format!("written opinion: {outcome}"),
        cx.actor,
    ));
    Ok(finish(n, cx))
}

/// Art. 34: at most 30 days, once, with a reason, while the handling clock runs.
/// Supervision's decision on the holder's extension request (Art. 34): approved, the handling
/// clock ends at supervision's date; refused, the request is withdrawn. `None` when the case
/// has no request pending (a redelivered or stale decision).
pub fn extension_decided(
    r: &AssignmentRecord,
    approved: bool,
    handling_due: Option<DateTime<Utc>>,
    reason: &str,
    cx: Ctx<'_>,
) -> Option<AssignmentRecord> {
    if r.state != AssignmentState::Accepted || r.extension_days.is_none() {
        return None;
    }
    let mut n = r.clone();
    let text = if approved {
        n.handling_due = handling_due.or(n.handling_due);
        format!(
            "extension approved: the reply is due by {} ({}): {reason}",
            n.handling_due
                .map(
                    |d| petition_domain::calendar::local_date(d - Duration::microseconds(1))
                        .to_string()
                )
                .unwrap_or_default(),
            limits::EXTENSION_ARTICLE
        )
    } else {
        n.extension_days = None;
        n.extension_reason = None;
        format!("extension refused: {reason}")
    };
    n.history
        .push(step(cx.now, &r.organ, &r.organ, &text, cx.actor));
    Some(finish(n, cx))
}

/// The dates of an assignment that supervision's recount on a newly loaded holiday calendar
/// may move: routing keeps them to order the inbox and to check the objection window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecountedDate {
    /// the forwarding period (Art. 22), while the bureau holds the case
    Route,
    /// the objection window (Art. 23 ¶3)
    Objection,
    /// the handling period (Art. 34)
    Handling,
}

/// A date counted into a year the calendar lacked now ends at `due`. A recount only moves a
/// date later, so an earlier or equal `due` is a stale event (the case moved on and its date
/// was counted afresh): nothing changes.
pub fn recounted(
    r: &AssignmentRecord,
    which: RecountedDate,
    due: DateTime<Utc>,
    cx: Ctx<'_>,
) -> Option<AssignmentRecord> {
    let held = match which {
        RecountedDate::Route => Some(r.route_due),
        RecountedDate::Objection => r.objection_due,
        RecountedDate::Handling => r.handling_due,
    };
    if held.is_none_or(|d| d >= due) {
        return None;
    }
    let mut n = r.clone();
    let what = match which {
        RecountedDate::Route => {
            n.route_due = due;
            "the forwarding period (Art. 22)"
        }
        RecountedDate::Objection => {
            n.objection_due = Some(due);
            "the objection period (Art. 23 ¶3)"
        }
        RecountedDate::Handling => {
            n.handling_due = Some(due);
            "the handling period (Art. 34)"
        }
    };
    n.history.push(step(
        cx.now,
        &r.organ,
        &r.organ,
        &format!(
            "{what} now ends on {}: counted again with the year's holiday arrangement loaded",
            local_date(due - Duration::microseconds(1))
        ),
        cx.actor,
    ));
    Some(finish(n, cx))
}

/// The handling clock stood still in supervision (a hearing, waiting on material) and now
/// ends at `handling_due`. `None` when routing runs no handling clock for the case.
pub fn handling_moved(
    r: &AssignmentRecord,
    handling_due: Option<DateTime<Utc>>,
    paused_days: u32,
    cx: Ctx<'_>,
) -> Option<AssignmentRecord> {
    let due = handling_due?;
    if r.state != AssignmentState::Accepted
        || r.handling_due.is_none()
        || r.handling_due == Some(due)
    {
        return None;
    }
    let mut n = r.clone();
    n.handling_due = Some(due);
    n.history.push(step(
        cx.now,
        &r.organ,
        &r.organ,
        &format!(
            "the handling clock stood still {paused_days} days: the reply is due by {}",
            petition_domain::calendar::local_date(due - Duration::microseconds(1))
        ),
        cx.actor,
    ));
    Some(finish(n, cx))
}

pub fn request_extension(
    r: &AssignmentRecord,
    days: u32,
    reason: &str,
    cx: Ctx<'_>,
) -> Result<AssignmentRecord, Refusal> {
    if days == 0 || days > limits::MAX_EXTENSION_DAYS {
        return Err(Refusal::Invalid(format!(
            "days: an extension is 1 to {} days ({})",
            limits::MAX_EXTENSION_DAYS,
            limits::EXTENSION_ARTICLE
        )));
    }
    if reason.trim().is_empty() {
        return Err(Refusal::Invalid(
            "reason: the petitioner is told why the handling is extended (Art. 34)".into(),
        ));
    }
    if r.state != AssignmentState::Accepted || r.handling_due.is_none() {
        return Err(Refusal::WrongState(format!(
            "case {} runs no handling clock to extend (it is {})",
            r.case_number, r.state
        )));
    }
    if r.extension_days.is_some() {
        return Err(Refusal::WrongState(format!(
            "case {} was already extended once; Art. 34 allows one extension",
            r.case_number
        )));
    }
    if r.handling_due.is_some_and(|d| d <= cx.now) {
        return Err(Refusal::WindowClosed(format!(
            "the 60-day handling period of case {} has already lapsed; an extension is asked for before it ends",
            r.case_number
        )));
    }
    let mut n = r.clone();
    n.extension_days = Some(i64::from(days));
    n.extension_reason = Some(reason.trim().to_owned());
    n.history.push(step(
        cx.now,
        &r.organ,
        &r.organ,
        &format!("extension of {days} days requested: {}", reason.trim()),
        cx.actor,
    ));
    Ok(finish(n, cx))
}

/// 办结报告 for an assigned (交办) case, once the reply is out.
pub fn submit_completion_report(
    r: &AssignmentRecord,
    text: &str,
    cx: Ctx<'_>,
) -> Result<AssignmentRecord, Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::Invalid(
            "text: the completion report (办结报告) is required".into(),
        ));
    }
    if r.mode != Some(HandlingMode::Assign) {
        return Err(Refusal::WrongState(format!(
            "case {} was forwarded (转送), not assigned (交办); no completion report is due",
            r.case_number
        )));
    }
    if r.state != AssignmentState::Answered {
        return Err(Refusal::WrongState(format!(
            "case {} is {}; the completion report follows the written opinion",
            r.case_number, r.state
        )));
    }
    let mut n = r.clone();
    n.state = AssignmentState::Completed;
    n.completion_report = Some(text.trim().to_owned());
    n.completion_reported_at = Some(cx.now);
    n.history.push(step(
        cx.now,
        &r.organ,
        &r.forwarding_bureau,
        "completion report (办结报告)",
        cx.actor,
    ));
    Ok(finish(n, cx))
}

/// A step a peer deployment's organ took on a case we routed to it (DESIGN §5b), applied to
/// our copy with the peer's date, so that our clocks see what the organ did and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerStep {
    Accepted,
    Answered {
        outcome: Option<ReplyOutcome>,
        served_at: DateTime<Utc>,
    },
    CompletionReported,
}

impl PeerStep {
    /// The state the step brings the case to: a record already there, or past it, has had it.
    fn reaches(&self) -> AssignmentState {
        match self {
            PeerStep::Accepted => AssignmentState::Accepted,
            PeerStep::Answered { .. } => AssignmentState::Answered,
            PeerStep::CompletionReported => AssignmentState::Completed,
        }
    }
}

fn progress_rank(s: AssignmentState) -> Option<u8> {
    match s {
        AssignmentState::AwaitingAcceptance => Some(0),
        AssignmentState::Accepted => Some(1),
        AssignmentState::Answered => Some(2),
        AssignmentState::Completed => Some(3),
        _ => None,
    }
}

/// What a peer's step does to our copy.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerApplied {
    Changed(Box<AssignmentRecord>),
    /// had already: a step sent again, or one the case went past
    Already,
    /// the step before it has not arrived yet: try again later
    Early,
}

/// Applies a peer's step by the same rules a local organ's would follow (`cx.now` is the
/// peer's date). `organ` must be the organ we routed the case to.
pub fn peer_step(
    r: &AssignmentRecord,
    organ: &str,
    moved_within_peer: bool,
    what: &PeerStep,
    peer_case_number: &str,
    cx: Ctx<'_>,
) -> Result<PeerApplied, Refusal> {
    // The peer moved the case to another of its organs (an objection agreed, a transfer): our
    // copy follows, so that the clocks we hold name the organ that owes them.
    let moved;
    let r = if r.organ != organ && moved_within_peer {
        let mut m = r.clone();
        m.history.push(step(
            cx.now,
            &r.organ,
            organ,
            "moved by the peer deployment inside its own organs",
            cx.actor,
        ));
        m.organ = organ.to_owned();
        moved = m;
        &moved
    } else {
        r
    };
    if r.organ != organ {
        return Err(Refusal::WrongState(format!(
            "case {} is held by {}, not {organ}, which reported the step",
            r.case_number, r.organ
        )));
    }
    let (Some(now), Some(wanted)) = (progress_rank(r.state), progress_rank(what.reaches())) else {
        return Err(Refusal::WrongState(format!(
            "case {} is {}; a peer's step does not apply",
            r.case_number, r.state
        )));
    };
    if now >= wanted {
        return Ok(PeerApplied::Already);
    }
    if now + 1 < wanted {
        return Ok(PeerApplied::Early);
    }
    let next = match what {
        PeerStep::Accepted => accept(r, cx)?,
        PeerStep::Answered { outcome, served_at } => {
            let text = format!(
                "written opinion (信访处理意见书) issued by {organ} in its deployment's case {peer_case_number}"
            );
            submit_reply(
                r,
                Reply {
                    outcome: *outcome,
                    text: &text,
                    legal_basis: "",
                    service: Some(ServiceRecord {
                        mode: crate::model::ServiceMode::Other,
                        served_at_micros: served_at.timestamp_micros(),
                        signed: false,
                        refused: false,
                        view: crate::model::PetitionerView::NoView,
                    }),
                },
                cx,
            )?
        }
        PeerStep::CompletionReported => submit_completion_report(
            r,
            &format!(
                "completion report (办结报告) filed by {organ} in its deployment's case {peer_case_number}"
            ),
            cx,
        )?,
    };
    Ok(PeerApplied::Changed(Box::new(next)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use petition_domain::Taxonomy;
    use petition_domain::routing::{RoutingInput, RoutingRules, decide};

    fn tree() -> OrgTree {
        OrgTree::from_toml(include_str!("../../../deploy/config/orgs.toml")).unwrap()
    }

    pub(super) fn tree_ref() -> &'static OrgTree {
        static TREE: std::sync::OnceLock<OrgTree> = std::sync::OnceLock::new();
        TREE.get_or_init(tree)
    }

    fn calendar() -> HolidayCalendar {
        HolidayCalendar::from_csv(include_str!("../../../deploy/config/cn-calendar.csv")).unwrap()
    }

    fn beijing(m: u32, d: u32, h: u32) -> DateTime<Utc> {
        chrono::FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, m, d, h, 0, 0)
            .unwrap()
            .to_utc()
    }

    fn registered(category: &str, group: bool) -> Registered {
        Registered {
            case_id: "c1".into(),
            case_number: "140213-2026-000001".into(),
            received_by: "pingcheng.bureau".into(),
            received_at: beijing(3, 2, 9),
            channel: Channel::Visit,
            category: category.into(),
            type_of_matter: Some(TypeOfMatter::Grievance),
            problem_location: "140213001".into(),
            accused_organ: None,
            group,
            leapfrog: false,
            repeat: false,
            sent_down: None,
        }
    }

    fn routed(reg: &Registered) -> AssignmentRecord {
        let tree = tree();
        let tax =
            Taxonomy::from_toml(include_str!("../../../deploy/config/categories.toml")).unwrap();
        let loc = petition_domain::RegionCode::parse(&reg.problem_location).unwrap();
        let d = decide(
            &RoutingInput {
                received_by: &reg.received_by,
                channel: petition_domain::Channel::Visit,
                category: &reg.category,
                problem_location: &loc,
                accused_organ: reg.accused_organ.as_deref(),
                open_below: None,
                repeat_of_open: None,
            },
            &tree,
            &tax,
            &RoutingRules::default(),
        );
        route_new(
            reg,
            &d,
            &tree,
            &calendar(),
            &RoutingPolicy::default(),
            beijing(3, 2, 10),
        )
    }

    fn cx<'a>(cal: &'a HolidayCalendar, policy: &'a RoutingPolicy, now: DateTime<Utc>) -> Ctx<'a> {
        Ctx {
            calendar: cal,
            tree: tree_ref(),
            policy,
            now,
            actor: "handler",
        }
    }

    #[test]
    fn a_routed_case_carries_its_deadlines_and_mode() {
        let r = routed(&registered("01.01", false));
        assert_eq!(r.organ, "pingcheng.housing");
        assert_eq!(r.state, AssignmentState::AwaitingAcceptance);
        assert_eq!(r.mode, Some(HandlingMode::Forward));
        assert!(r.report_due.is_none());
        // Art. 22: 15 days from Mon 03-02 → Tue 03-17, 24:00 Beijing.
        assert_eq!(r.route_due, beijing(3, 18, 0));
        // Art. 23 ¶3: 5 working days from 03-02 → Mon 03-09.
        assert_eq!(r.objection_due, Some(beijing(3, 10, 0)));
        let g = routed(&registered("01.01", true));
        assert_eq!(
            g.mode,
            Some(HandlingMode::Assign),
            "a group petition is assigned"
        );
        assert_eq!(g.report_due, Some(beijing(3, 2, 10) + Duration::days(30)));
    }

    #[test]
    fn a_case_sent_down_keeps_the_peers_mode_and_report_date() {
        let mut reg = registered("01.01", false);
        let due = beijing(4, 30, 0);
        reg.sent_down = Some(SentDown {
            assigned: true,
            report_due: Some(due),
        });
        let r = routed(&reg);
        assert_eq!(r.mode, Some(HandlingMode::Assign));
        assert_eq!(
            r.report_due,
            Some(due),
            "owed to the peer by the peer's date"
        );
        reg.sent_down = Some(SentDown {
            assigned: false,
            report_due: None,
        });
        reg.group = true; // our own rule would assign a group petition: the peer's choice holds
        let f = routed(&reg);
        assert_eq!(f.mode, Some(HandlingMode::Forward));
        assert!(f.report_due.is_none());
    }

    #[test]
    fn a_peers_steps_apply_in_order_with_the_peers_dates_and_once() {
        let cal = calendar();
        let policy = RoutingPolicy::default();
        let r = routed(&registered("01.01", true));
        let (accepted_at, replied_at) = (beijing(3, 4, 10), beijing(3, 20, 15));
        let answered = PeerStep::Answered {
            outcome: Some(ReplyOutcome::Supported),
            served_at: replied_at,
        };
        let changed = |x: PeerApplied| match x {
            PeerApplied::Changed(n) => *n,
            other => panic!("not applied: {other:?}"),
        };
        // The reply before the acceptance waits for it.
        assert_eq!(
            peer_step(
                &r,
                "pingcheng.housing",
                false,
                &answered,
                "140213-2026-000007",
                cx(&cal, &policy, replied_at)
            ),
            Ok(PeerApplied::Early)
        );
        let a = changed(
            peer_step(
                &r,
                "pingcheng.housing",
                false,
                &PeerStep::Accepted,
                "140213-2026-000007",
                cx(&cal, &policy, accepted_at),
            )
            .unwrap(),
        );
        assert_eq!(a.state, AssignmentState::Accepted);
        assert_eq!(
            a.accepted_at,
            Some(accepted_at),
            "the peer's date, not ours"
        );
        assert!(
            a.handling_due.is_some(),
            "the handling clock runs from the peer's acceptance"
        );
        // Sent again: already had.
        assert_eq!(
            peer_step(
                &a,
                "pingcheng.housing",
                false,
                &PeerStep::Accepted,
                "140213-2026-000007",
                cx(&cal, &policy, accepted_at)
            ),
            Ok(PeerApplied::Already)
        );
        let b = changed(
            peer_step(
                &a,
                "pingcheng.housing",
                false,
                &answered,
                "140213-2026-000007",
                cx(&cal, &policy, replied_at),
            )
            .unwrap(),
        );
        assert_eq!(b.replied_at, Some(replied_at));
        assert_eq!(b.served_at, Some(replied_at));
        assert!(
            b.reply_text
                .as_deref()
                .unwrap()
                .contains("140213-2026-000007")
        );
        let c = changed(
            peer_step(
                &b,
                "pingcheng.housing",
                false,
                &PeerStep::CompletionReported,
                "140213-2026-000007",
                cx(&cal, &policy, replied_at),
            )
            .unwrap(),
        );
        assert_eq!(c.state, AssignmentState::Completed);
        assert_eq!(c.completion_reported_at, Some(replied_at));
        // Another organ's step does not move a case it does not hold.
        assert!(matches!(
            peer_step(
                &r,
                "pingcheng.civil",
                false,
                &PeerStep::Accepted,
                "x",
                cx(&cal, &policy, accepted_at)
            ),
            Err(Refusal::WrongState(_))
        ));
        // Unless the peer moved the case to that organ inside its own deployment: the copy
        // follows, and the step applies.
        let moved = changed(
            peer_step(
                &r,
                "pingcheng.civil",
                true,
                &PeerStep::Accepted,
                "x",
                cx(&cal, &policy, accepted_at),
            )
            .unwrap(),
        );
        assert_eq!(moved.organ, "pingcheng.civil");
        assert_eq!(moved.state, AssignmentState::Accepted);
        assert_eq!(
            moved.history.last().map(|s| s.to_organ.as_str()),
            Some("pingcheng.civil")
        );
    }

    #[test]
    fn accepting_starts_the_clock_only_for_grievances_handled_as_petitions() {
        let (cal, policy) = (calendar(), RoutingPolicy::default());
        let r = routed(&registered("01.01", false));
        let a = accept(&r, cx(&cal, &policy, beijing(3, 3, 9))).unwrap();
        assert_eq!(a.state, AssignmentState::Accepted);
        assert_eq!(a.version, r.version + 1);
        // 60 days from 03-03 end on 05-02, inside Labour Day: rolled to Wed 05-06.
        assert_eq!(a.handling_due, Some(beijing(5, 7, 0)));
        assert!(matches!(
            accept(&a, cx(&cal, &policy, beijing(3, 3, 9))),
            Err(Refusal::WrongState(_))
        ));
        let mut suggestion = r.clone();
        suggestion.type_of_matter = Some(TypeOfMatter::Suggestion);
        let s = accept(&suggestion, cx(&cal, &policy, beijing(3, 3, 9))).unwrap();
        assert_eq!(
            s.handling_due, None,
            "Art. 29: no statutory limit for suggestions"
        );
    }

    #[test]
    fn objections_need_reasons_and_an_open_window() {
        let (cal, policy) = (calendar(), RoutingPolicy::default());
        let r = routed(&registered("01.01", false));
        assert!(matches!(
            object(&r, "  ", cx(&cal, &policy, beijing(3, 3, 9))),
            Err(Refusal::Invalid(_))
        ));
        assert!(object(&r, "not ours", cx(&cal, &policy, beijing(3, 9, 23))).is_ok());
        let late = object(&r, "not ours", cx(&cal, &policy, beijing(3, 10, 0)));
        assert!(
            matches!(late, Err(Refusal::WindowClosed(ref m)) if m.contains("2026-03-09")),
            "{late:?}"
        );
    }

    /// A window the organ was told ends later than the loaded calendar counts stays open to
    /// the told day; a recount moves a date only later, and a stale one changes nothing.
    #[test]
    fn a_told_window_stands_and_a_recount_only_moves_dates_later() {
        let (cal, policy) = (calendar(), RoutingPolicy::default());
        let mut r = routed(&registered("01.01", false));
        // Counted today the window ends with 03-09; the organ was told 03-11.
        r.objection_due = Some(beijing(3, 12, 0));
        assert!(object(&r, "not ours", cx(&cal, &policy, beijing(3, 11, 23))).is_ok());
        let late = object(&r, "not ours", cx(&cal, &policy, beijing(3, 12, 0)));
        assert!(
            matches!(late, Err(Refusal::WindowClosed(ref m)) if m.contains("2026-03-11")),
            "{late:?}"
        );
        let at = beijing(3, 3, 9);
        let moved = recounted(
            &r,
            RecountedDate::Objection,
            beijing(3, 13, 0),
            cx(&cal, &policy, at),
        )
        .unwrap();
        assert_eq!(moved.objection_due, Some(beijing(3, 13, 0)));
        assert_eq!(moved.version, r.version + 1);
        let said = &moved.history.last().unwrap().rule;
        assert!(
            said.contains("objection period") && said.contains("2026-03-12"),
            "{said}"
        );
        for (which, due) in [
            (RecountedDate::Objection, beijing(3, 12, 0)),
            (RecountedDate::Objection, beijing(3, 10, 0)),
            // no handling clock runs before acceptance
            (RecountedDate::Handling, beijing(5, 1, 0)),
        ] {
            assert_eq!(
                recounted(&r, which, due, cx(&cal, &policy, at)),
                None,
                "{which:?}"
            );
        }
    }

    #[test]
    fn the_bureau_refuses_or_agrees() {
        let (cal, policy) = (calendar(), RoutingPolicy::default());
        let r = routed(&registered("01.01", false));
        let o = object(&r, "not ours", cx(&cal, &policy, beijing(3, 3, 9))).unwrap();
        let refused = resolve_objection(
            &o,
            false,
            None,
            "it is yours",
            cx(&cal, &policy, beijing(3, 4, 9)),
        )
        .unwrap();
        assert_eq!(
            (refused.state, refused.organ.as_str()),
            (AssignmentState::AwaitingAcceptance, "pingcheng.housing")
        );
        let moved = resolve_objection(
            &o,
            true,
            Some("pingcheng.civil"),
            "civil affairs",
            cx(&cal, &policy, beijing(3, 4, 9)),
        )
        .unwrap();
        assert_eq!(moved.organ, "pingcheng.civil");
        assert_eq!(
            moved.organ_received_at,
            Some(beijing(3, 4, 9)),
            "a new receipt, a new window"
        );
        let back = resolve_objection(
            &o,
            true,
            None,
            "unclear",
            cx(&cal, &policy, beijing(3, 4, 9)),
        )
        .unwrap();
        assert_eq!(
            (back.state, back.organ.as_str()),
            (AssignmentState::Triage, "pingcheng.bureau")
        );
        assert!(matches!(
            resolve_objection(&r, true, None, "x", cx(&cal, &policy, beijing(3, 4, 9))),
            Err(Refusal::WrongState(_))
        ));
    }

    #[test]
    fn manual_routing_never_reaches_the_accused_organ() {
        let (cal, policy) = (calendar(), RoutingPolicy::default());
        let mut reg = registered("09.01", false);
        reg.accused_organ = Some("pingcheng.street.beiguan".into());
        let mut r = routed(&reg);
        r.state = AssignmentState::Triage;
        let err = route_manually(
            &r,
            "pingcheng.street.beiguan",
            HandlingMode::Forward,
            "x",
            cx(&cal, &policy, beijing(3, 3, 9)),
        );
        assert!(matches!(err, Err(Refusal::Invalid(ref m)) if m.contains("Art. 30")));
        let ok = route_manually(
            &r,
            "pingcheng.discipline",
            HandlingMode::Assign,
            "discipline",
            cx(&cal, &policy, beijing(3, 3, 9)),
        )
        .unwrap();
        assert_eq!(ok.mode, Some(HandlingMode::Assign));
        assert!(ok.report_due.is_some());
    }
}

#[cfg(test)]
mod after_acceptance {
    use super::*;
    use crate::model::{PetitionerView, ServiceMode};
    use chrono::TimeZone;

    fn cal() -> HolidayCalendar {
        HolidayCalendar::from_csv(include_str!("../../../deploy/config/cn-calendar.csv")).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 0).unwrap()
    }

    fn accepted(mode: HandlingMode) -> AssignmentRecord {
        AssignmentRecord {
            case_id: "c".into(),
            case_number: "140213-2026-000001".into(),
            organ: "pingcheng.housing".into(),
            state: AssignmentState::Accepted,
            mode: Some(mode),
            type_of_matter: Some(TypeOfMatter::Grievance),
            forwarding_bureau: "pingcheng.bureau".into(),
            accused_organ: Some("pingcheng.street.beiguan".into()),
            accepted_at: Some(now() - Duration::days(5)),
            handling_due: Some(now() + Duration::days(55)),
            version: 3,
            ..AssignmentRecord::blank("c", "140213-2026-000001", now())
        }
    }

    fn cx<'a>(cal: &'a HolidayCalendar, policy: &'a RoutingPolicy, at: DateTime<Utc>) -> Ctx<'a> {
        Ctx {
            calendar: cal,
            tree: super::tests::tree_ref(),
            policy,
            now: at,
            actor: "handler",
        }
    }

    #[test]
    fn extension_edges() {
        let (cal, p) = (cal(), RoutingPolicy::default());
        let r = accepted(HandlingMode::Forward);
        assert!(matches!(
            request_extension(&r, 0, "x", cx(&cal, &p, now())),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            request_extension(&r, 31, "x", cx(&cal, &p, now())),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            request_extension(&r, 30, " ", cx(&cal, &p, now())),
            Err(Refusal::Invalid(_))
        ));
        let e = request_extension(&r, 30, "records at the city", cx(&cal, &p, now())).unwrap();
        assert_eq!(e.extension_days, Some(30));
        assert!(matches!(
            request_extension(&e, 5, "again", cx(&cal, &p, now())),
            Err(Refusal::WrongState(_))
        ));
        let lapsed = r.handling_due.unwrap();
        assert!(matches!(
            request_extension(&r, 10, "late", cx(&cal, &p, lapsed)),
            Err(Refusal::WindowClosed(_))
        ));
        let mut suggestion = r.clone();
        suggestion.handling_due = None;
        assert!(matches!(
            request_extension(&suggestion, 10, "x", cx(&cal, &p, now())),
            Err(Refusal::WrongState(_))
        ));
    }

    #[test]
    fn reply_then_report() {
        let (cal, p) = (cal(), RoutingPolicy::default());
        let r = accepted(HandlingMode::Assign);
        let reply = |outcome: &str| Reply {
            outcome: outcome.parse().ok(),
            text: "意见",
            legal_basis: "",
            service: Some(ServiceRecord {
                mode: ServiceMode::InPerson,
                served_at_micros: now().timestamp_micros(),
                signed: false,
                refused: true,
                view: PetitionerView::Disagrees,
            }),
        };
        assert!(matches!(
            submit_reply(&r, reply("maybe"), cx(&cal, &p, now())),
            Err(Refusal::Invalid(_))
        ));
        let mut future = reply("supported");
        future.service.as_mut().unwrap().served_at_micros += 3_600_000_000;
        assert!(matches!(
            submit_reply(&r, future, cx(&cal, &p, now())),
            Err(Refusal::Invalid(_))
        ));
        let mut unserved = reply("supported");
        unserved.service = None;
        assert!(matches!(
            submit_reply(&r, unserved, cx(&cal, &p, now())),
            Err(Refusal::Invalid(m)) if m.starts_with("service: required")
        ));
        let mut early = reply("supported");
        early.service.as_mut().unwrap().served_at_micros =
            r.accepted_at.unwrap().timestamp_micros() - 1;
        assert!(matches!(
            submit_reply(&r, early, cx(&cal, &p, now())),
            Err(Refusal::Invalid(m)) if m.starts_with("service.served_at: the opinion cannot be served")
        ));
        let mut at_acceptance = reply("supported");
        at_acceptance.service.as_mut().unwrap().served_at_micros =
            r.accepted_at.unwrap().timestamp_micros();
        assert!(submit_reply(&r, at_acceptance, cx(&cal, &p, now())).is_ok());
        let a = submit_reply(&r, reply("not_supported"), cx(&cal, &p, now())).unwrap();
        assert_eq!(a.state, AssignmentState::Answered);
        assert_eq!(a.served_at, Some(now()));
        assert!(matches!(
            submit_reply(&a, reply("supported"), cx(&cal, &p, now())),
            Err(Refusal::WrongState(_))
        ));
        let done = submit_completion_report(&a, "办结", cx(&cal, &p, now())).unwrap();
        assert_eq!(done.state, AssignmentState::Completed);
        assert!(matches!(
            submit_completion_report(&r, "early", cx(&cal, &p, now())),
            Err(Refusal::WrongState(_))
        ));
    }

    #[test]
    fn transfers() {
        let (cal, p) = (cal(), RoutingPolicy::default());
        let r = accepted(HandlingMode::Forward);
        assert!(matches!(
            transfer(&r, "pingcheng.housing", "x", cx(&cal, &p, now())),
            Err(Refusal::Invalid(_))
        ));
        assert!(
            matches!(transfer(&r, "pingcheng.street.beiguan", "x", cx(&cal, &p, now())), Err(Refusal::Invalid(ref m)) if m.contains("Art. 30"))
        );
        let t = transfer(&r, "datong.housing", "city project", cx(&cal, &p, now())).unwrap();
        assert_eq!(
            (t.organ.as_str(), t.state),
            ("datong.housing", AssignmentState::AwaitingAcceptance)
        );
        assert_eq!(t.accepted_at, None, "the new organ accepts anew");
        assert_eq!(t.organ_received_at, Some(now()));
    }
}
