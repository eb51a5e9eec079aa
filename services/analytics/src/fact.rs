//! One row per case: what analytics knows of it, folded from every event of every stream.
//!
//! The three streams arrive through three consumers, in no order relative to each other, and a
//! rebuild replays the stored events in yet another order (by case). So every field is a
//! merge that does not care about order: the first instant of a kind (min), the latest of a
//! kind by (instant, event id) (max), a count, or a flag that is only ever set. The fields
//! derived from others (the limits, the months) are computed after folding, from the merged
//! fields alone. Folding a case's events in any order gives the same row, which is what makes
//! the incrementally kept read models and a rebuild equal.

use chrono::{DateTime, Utc};
use petition_domain::calendar::{self, CountingPolicy, HolidayCalendar, local_date};
use petition_domain::{Channel, Sex, TypeOfMatter, limits};
use petition_grpc::convert::{channel_from_pb, from_ts, type_from_pb};
use petition_proto::v1::{self as pb, EventEnvelope, event_envelope::Payload};

use crate::period::Month;

petition_domain::text_enum! {
    /// Where routing sent a case last.
    pub enum Outcome {
        /// to the organ with authority
        Sent = "sent",
        /// 诉访分离
        Diverted = "diverted",
        /// joined to an open case
        Linked = "linked",
        /// the bureau's triage queue
        Triage = "triage",
    }
}

petition_domain::text_enum! {
    pub enum Mode {
        /// 转送
        Forward = "forward",
        /// 交办
        Assign = "assign",
    }
}

petition_domain::text_enum! {
    /// 满意度评价
    pub enum Rating {
        Satisfied = "satisfied",
        BasicallySatisfied = "basically_satisfied",
        Dissatisfied = "dissatisfied",
    }
}

impl Rating {
    pub fn from_pb(v: i32) -> Option<Self> {
        match pb::Satisfaction::try_from(v).ok()? {
            pb::Satisfaction::Satisfied => Some(Rating::Satisfied),
            pb::Satisfaction::BasicallySatisfied => Some(Rating::BasicallySatisfied),
            pb::Satisfaction::Dissatisfied => Some(Rating::Dissatisfied),
            pb::Satisfaction::Unspecified => None,
        }
    }

    /// 满意 and 基本满意 count as satisfied.
    pub fn is_satisfied(self) -> bool {
        !matches!(self, Rating::Dissatisfied)
    }
}

/// A value kept with the instant that set it: the latest wins, and between two of the same
/// instant the greater value, so that the outcome never depends on the order events arrive in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest<T> {
    /// microseconds since the epoch
    pub at: i64,
    pub value: Option<T>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest { at: 0, value: None }
    }
}

impl<T: Ord> Latest<T> {
    fn offer(&mut self, at: DateTime<Utc>, value: T) {
        let at = at.timestamp_micros();
        let newer = match &self.value {
            None => true,
            Some(v) => at > self.at || (at == self.at && value > *v),
        };
        if newer {
            self.at = at;
            self.value = Some(value);
        }
    }
}

fn min_time(slot: &mut Option<DateTime<Utc>>, t: DateTime<Utc>) {
    if slot.is_none_or(|s| t < s) {
        *slot = Some(t);
    }
}

fn max_time(slot: &mut Option<DateTime<Utc>>, t: DateTime<Utc>) {
    if slot.is_none_or(|s| t > s) {
        *slot = Some(t);
    }
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// What the registration says; absent until it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub case_number: String,
    pub channel: Channel,
    pub received_by: String,
    pub received_at: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    pub category: String,
    pub type_of_matter: Option<TypeOfMatter>,
    pub location: String,
    pub people_present: u32,
    pub petitioner_count: u32,
    pub age_band: Option<String>,
    pub sex: Option<Sex>,
    pub group: bool,
    pub leapfrog: bool,
    pub repeat: bool,
    pub repeat_of: Option<String>,
    /// history from the old system (ImportPetitions): counted, never worked
    pub imported: bool,
}

/// A route: where the case went, how, and who sent it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub organ: Option<String>,
    pub outcome: Outcome,
    pub mode: Option<Mode>,
    pub bureau: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fact {
    pub case_id: String,
    pub registration: Option<Registration>,
    /// for accusations (Art. 30 ¶3): known from the registration or the route
    pub accused_organ: Option<String>,
    /// the first time it was sent to an organ (交换日期)
    pub routed_at: Option<DateTime<Utc>>,
    pub route: Latest<Route>,
    /// the organ an upheld objection moved the case to (异议成立)
    pub reassigned: Latest<String>,
    /// 受理: first, and by whom last
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by: Latest<String>,
    /// the handling limit's lapse instant, moved by extensions, pauses and recounts: only ever
    /// later (Art. 34; ADR 0012)
    pub handling_due: Option<DateTime<Utc>>,
    pub extended: bool,
    pub objections: u32,
    /// the first written reply
    pub answered_at: Option<DateTime<Utc>>,
    pub rating: Latest<(Option<Rating>, Option<Rating>)>,
    pub reviews: u32,
    pub final_at: Option<DateTime<Utc>>,
    /// 催办, 挂牌督办 and 通报 notices
    pub urged: u32,
    /// 督办 by hand (Art. 40)
    pub supervised: u32,
    /// 包案
    pub leader_at: Option<DateTime<Utc>>,
    pub leader_organ: Latest<String>,
    pub backlog_flag: bool,
    /// 化解
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Fact {
    pub fn new(case_id: &str) -> Self {
        Fact {
            case_id: case_id.to_owned(),
            ..Fact::default()
        }
    }

    /// Merges one event into the row. Returns false for an event that says nothing analytics
    /// keeps (a reminder, a pause).
    pub fn apply(&mut self, e: &EventEnvelope) -> bool {
        let Some(payload) = &e.payload else {
            return false;
        };
        let at = e.occurred_at.as_ref().and_then(from_ts).unwrap_or_default();
        let t =
            |ts: &Option<petition_proto::Timestamp>| ts.as_ref().and_then(from_ts).unwrap_or(at);
        match payload {
            Payload::PetitionRegistered(r) => {
                let flags = r.flags.clone().unwrap_or_default();
                let Some(channel) = channel_from_pb(r.channel) else {
                    return false;
                };
                self.registration = Some(Registration {
                    case_number: r.case_number.clone(),
                    channel,
                    received_by: r.received_by.clone(),
                    received_at: t(&r.received_at),
                    registered_at: at,
                    category: r.category.clone(),
                    type_of_matter: type_from_pb(r.type_of_matter),
                    location: r.problem_location.clone(),
                    people_present: r.people_present,
                    petitioner_count: r.petitioner_count,
                    age_band: nonempty(&r.main_age_band),
                    sex: match pb::Sex::try_from(r.main_sex) {
                        Ok(pb::Sex::Male) => Some(Sex::Male),
                        Ok(pb::Sex::Female) => Some(Sex::Female),
                        _ => None,
                    },
                    group: flags.group,
                    leapfrog: flags.leapfrog,
                    repeat: flags.repeat,
                    repeat_of: nonempty(&flags.repeat_of_case_id),
                    imported: r.imported,
                });
                self.accused(&r.accused_organ_id);
            }
            Payload::PetitionRouted(r) => {
                let outcome = match pb::RouteOutcome::try_from(r.outcome) {
                    Ok(pb::RouteOutcome::Sent) => Outcome::Sent,
                    Ok(pb::RouteOutcome::Diverted) => Outcome::Diverted,
                    Ok(pb::RouteOutcome::Linked) => Outcome::Linked,
                    _ => Outcome::Triage,
                };
                let routed = t(&r.routed_at);
                if outcome == Outcome::Sent {
                    min_time(&mut self.routed_at, routed);
                }
                self.accused(&r.accused_organ_id);
                self.route.offer(
                    routed,
                    Route {
                        organ: nonempty(&r.organ),
                        outcome,
                        mode: match pb::HandlingMode::try_from(r.mode) {
                            Ok(pb::HandlingMode::Forward) => Some(Mode::Forward),
                            Ok(pb::HandlingMode::Assign) => Some(Mode::Assign),
                            _ => None,
                        },
                        bureau: nonempty(&r.forwarding_bureau),
                    },
                );
            }
            Payload::ObjectionRaised(_) => self.objections += 1,
            // The objection was upheld: the case moved to another organ. Kept apart from the
            // routes, so that the route's mode and bureau never depend on which came first.
            Payload::ObjectionResolved(o) if o.agreed && !o.organ.is_empty() => {
                self.reassigned.offer(at, o.organ.clone());
            }
            Payload::CaseAccepted(a) => {
                let when = t(&a.accepted_at);
                min_time(&mut self.accepted_at, when);
                self.accepted_by.offer(when, a.organ.clone());
                if let Some(due) = a.handling_due.as_ref().and_then(from_ts) {
                    max_time(&mut self.handling_due, due);
                }
            }
            Payload::ExtensionDecided(x) => {
                if x.approved {
                    self.extended = true;
                    if let Some(due) = x.handling_due.as_ref().and_then(from_ts) {
                        max_time(&mut self.handling_due, due);
                    }
                }
            }
            Payload::ClockResumed(c) if c.clock == pb::ClockKind::Handling as i32 => {
                if let Some(due) = c.due_at.as_ref().and_then(from_ts) {
                    max_time(&mut self.handling_due, due);
                }
            }
            Payload::ClockRecounted(c) if c.clock == pb::ClockKind::Handling as i32 => {
                if let Some(due) = c.due_at.as_ref().and_then(from_ts) {
                    max_time(&mut self.handling_due, due);
                }
            }
            Payload::CaseAnswered(a) => min_time(&mut self.answered_at, t(&a.replied_at)),
            Payload::CaseRated(r) => self.rating.offer(
                t(&r.rated_at),
                (Rating::from_pb(r.bureau), Rating::from_pb(r.organ)),
            ),
            Payload::ReviewRequested(_) => self.reviews += 1,
            Payload::CaseFinal(f) => min_time(&mut self.final_at, t(&f.final_at)),
            Payload::NoticeIssued(n) => match pb::NoticeKind::try_from(n.kind) {
                Ok(pb::NoticeKind::Urging | pb::NoticeKind::Listed | pb::NoticeKind::Circular) => {
                    self.urged += 1
                }
                Ok(pb::NoticeKind::Supervision) => self.supervised += 1,
                _ => return false,
            },
            Payload::LeaderTookCharge(l) => {
                let when = t(&l.taken_at);
                min_time(&mut self.leader_at, when);
                self.leader_organ.offer(when, l.organ.clone());
                self.backlog_flag |= l.backlog;
            }
            Payload::CaseResolved(r) => min_time(&mut self.resolved_at, t(&r.resolved_at)),
            _ => return false,
        }
        true
    }

    /// Intake and routing name the same accused organ; should two events ever differ, the
    /// least id stays, whatever order they came in.
    fn accused(&mut self, organ: &str) {
        if !organ.is_empty() && self.accused_organ.as_deref().is_none_or(|a| organ < a) {
            self.accused_organ = Some(organ.to_owned());
        }
    }

    /// Whether the case counts in any figure: its registration has arrived.
    pub fn registered(&self) -> Option<&Registration> {
        self.registration.as_ref()
    }

    /// The accused organ, for accusations only.
    pub fn accused_organ(&self) -> Option<&str> {
        self.accused_organ.as_deref()
    }

    /// The responsible organ (责任单位): the organ that accepted it, else the one it was last
    /// sent to.
    pub fn organ(&self) -> Option<&str> {
        let routed = self
            .route
            .value
            .as_ref()
            .filter(|r| r.outcome == Outcome::Sent)
            .and_then(|r| r.organ.as_deref());
        let reassigned = self
            .reassigned
            .value
            .as_deref()
            .filter(|_| routed.is_none() || self.reassigned.at > self.route.at);
        self.accepted_by.value.as_deref().or(reassigned).or(routed)
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.route.value.as_ref().map(|r| r.outcome)
    }

    /// Worked here: registered in the pipeline, not brought from the old system.
    pub fn is_live(&self) -> bool {
        self.registration.as_ref().is_some_and(|r| !r.imported)
    }

    /// Still to be handled: live, not diverted or joined elsewhere, not final, not resolved.
    pub fn is_open(&self) -> bool {
        self.is_live()
            && self.final_at.is_none()
            && self.resolved_at.is_none()
            && !matches!(self.outcome(), Some(Outcome::Diverted | Outcome::Linked))
    }

    /// 人次: the people present at a visit, otherwise the petitioners named, at least one.
    pub fn persons(&self) -> u32 {
        self.registration.as_ref().map_or(0, |r| {
            if r.people_present > 0 {
                r.people_present
            } else {
                r.petitioner_count.max(1)
            }
        })
    }

    /// The derived limits and months: functions of the merged fields and the calendar only.
    pub fn derive(&self, cal: &HolidayCalendar) -> Derived {
        let policy = CountingPolicy::default();
        let due = |start: DateTime<Utc>, l: limits::StatutoryLimit| {
            calendar::deadline(start, l.period, cal, policy).due
        };
        let reg = self.registration.as_ref();
        Derived {
            received_month: reg.map(|r| Month::of(local_date(r.received_at))),
            registered_month: reg.map(|r| Month::of(local_date(r.registered_at))),
            routed_month: self.routed_at.map(|t| Month::of(local_date(t))),
            route_due: reg
                .filter(|r| !r.imported)
                .map(|r| due(r.received_at, limits::FORWARD_OR_ASSIGN)),
            accept_due: self
                .routed_at
                .map(|t| due(t, limits::NOTICE_BY_RECEIVING_ORGAN)),
        }
    }
}

/// What follows from a fact and the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    pub received_month: Option<Month>,
    pub registered_month: Option<Month>,
    pub routed_month: Option<Month>,
    /// the bureau's 15 days to forward or assign (Art. 22 ¶1)
    pub route_due: Option<DateTime<Utc>>,
    /// the receiving organ's 15 days to decide on acceptance and say so (Art. 23 ¶3)
    pub accept_due: Option<DateTime<Utc>>,
}
