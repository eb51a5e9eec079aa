//! Routes each registered petition as its event arrives (consumer group `routing` on
//! `petition.intake.v1`), in the transaction that holds the processed-event mark and the
//! `petition.routed` event (one per read: see `petition_events::apply`).

use crate::model::AssignmentRecord;
use crate::store::RoutingStore;
use crate::workflow::{self, Registered, RoutingPolicy};
use chrono::{DateTime, Utc};
use petition_domain::routing::{RoutingInput, RoutingRules, decide};
use petition_domain::{Clock, RegionCode};
use petition_events::{Apply, ApplyError, Delivery, HandlerError};
use petition_grpc::convert::{channel_from_pb, from_ts, type_from_pb};
use petition_grpc::reference::Reference;
use petition_proto::v1 as pb;
use petition_storage::Tx;
use std::sync::{Arc, RwLock};

pub struct RoutingConsumer {
    pub reference: Arc<Reference>,
    pub rules: Arc<RwLock<RoutingRules>>,
    pub policy: RoutingPolicy,
    pub clock: Arc<dyn Clock>,
    pub relay_wake: Arc<petition_events::RelayWake>,
}

#[async_trait::async_trait]
impl Apply for RoutingConsumer {
    /// Every new registration; not history imported from the old system, which was routed
    /// there long ago.
    fn wants(&self, d: &Delivery) -> bool {
        matches!(
            &d.envelope.payload,
            Some(pb::event_envelope::Payload::PetitionRegistered(r)) if !r.imported
        ) || matches!(
            &d.envelope.payload,
            Some(pb::event_envelope::Payload::PeerProgressed(p)) if peer_step(p).is_some()
        )
    }

    async fn apply(&self, tx: &mut Tx, d: &Delivery) -> Result<bool, ApplyError> {
        let reg = match &d.envelope.payload {
            Some(pb::event_envelope::Payload::PetitionRegistered(reg)) => reg,
            Some(pb::event_envelope::Payload::PeerProgressed(p)) => {
                return self.apply_peer_step(tx, p).await;
            }
            _ => return Ok(false),
        };
        let location = RegionCode::parse(&reg.problem_location)
            .map_err(|e| HandlerError::Poison(format!("problem_location: {e}")))?;
        let channel = channel_from_pb(reg.channel)
            .ok_or_else(|| HandlerError::Poison("channel unspecified".into()))?;
        let received_at = reg
            .received_at
            .as_ref()
            .and_then(from_ts)
            .ok_or_else(|| HandlerError::Poison("received_at missing".into()))?;
        let flags = reg.flags.clone().unwrap_or_default();
        let accused = Some(reg.accused_organ_id.clone()).filter(|a| !a.is_empty());
        let registered = Registered {
            case_id: reg.case_id.clone(),
            case_number: reg.case_number.clone(),
            received_by: reg.received_by.clone(),
            received_at,
            channel,
            category: reg.category.clone(),
            type_of_matter: type_from_pb(reg.type_of_matter),
            problem_location: reg.problem_location.clone(),
            accused_organ: accused.clone(),
            group: flags.group,
            leapfrog: flags.leapfrog,
            repeat: flags.repeat,
            sent_down: reg.upstream.as_ref().map(|u| workflow::SentDown {
                assigned: u.assigned,
                report_due: u.report_due.as_ref().and_then(from_ts),
            }),
        };
        // A case a peer deployment sent down goes where the peer routed it (its intake checked
        // that we serve that organ), unless that is the accused side of an accusation, which
        // the rules below never choose (Art. 30 ¶3).
        let sent_to = reg.upstream.as_ref().map(|u| u.organ.as_str()).filter(|o| {
            self.reference.tree.get(o).is_some()
                && !accused
                    .as_deref()
                    .is_some_and(|a| self.reference.tree.is_same_or_above(a, o))
        });
        let decision = if let Some(organ) = sent_to {
            let u = reg
                .upstream
                .as_ref()
                .map(|u| (u.assigned, u.case_number.as_str()));
            let (assigned, number) = u.unwrap_or_default();
            petition_domain::routing::RoutingDecision {
                outcome: petition_domain::routing::Outcome::Send {
                    organ: organ.to_owned(),
                    hops: Vec::new(),
                },
                rule: format!(
                    "sent down by {} as its case {number}: {} (DESIGN §5b)",
                    reg.source_system,
                    if assigned {
                        "assigned (交办)"
                    } else {
                        "forwarded (转送)"
                    }
                ),
            }
        } else {
            let rules = self.rules.read().unwrap_or_else(|e| e.into_inner());
            decide(
                &RoutingInput {
                    received_by: &reg.received_by,
                    channel,
                    category: &reg.category,
                    problem_location: &location,
                    accused_organ: accused.as_deref(),
                    open_below: Some(flags.open_below_case_number.as_str())
                        .filter(|s| !s.is_empty()),
                    repeat_of_open: Some(flags.repeat_of_case_number.as_str())
                        .filter(|s| flags.repeat && flags.repeat_of_open && !s.is_empty()),
                },
                &self.reference.tree,
                &self.reference.taxonomy,
                &rules,
            )
        };
        let now = self.clock.now();
        let record = workflow::route_new(
            &registered,
            &decision,
            &self.reference.tree,
            &self.reference.calendar.current(),
            &self.policy,
            now,
        );
        let event = crate::events::routed(&record, now);
        RoutingStore::insert_routed(tx, &record, &event).await?;
        // Counted and logged inside the transaction: a batch that rolls back is applied again
        // one event at a time, so a rare line may repeat; the case is routed once.
        metrics::counter!("petitions_routed_total", "outcome" => record.outcome.as_str())
            .increment(1);
        tracing::info!(case_number = %record.case_number, organ = %record.organ,
            outcome = %record.outcome, rule = %record.rule, "petition routed");
        Ok(true)
    }

    fn committed(&self, _changed: usize) {
        self.relay_wake.notify_one();
    }
}

/// The step of a peer's event that routing applies to our copy; `None` for the steps intake
/// only writes into the timeline.
fn peer_step(p: &pb::PeerProgressed) -> Option<(String, workflow::PeerStep, DateTime<Utc>)> {
    use pb::event_envelope::Payload;
    let payload = p.event.as_ref()?.payload.as_ref()?;
    if !petition_grpc::federation::routing_applies(payload) {
        return None;
    }
    match payload {
        Payload::CaseAccepted(a) => Some((
            a.organ.clone(),
            workflow::PeerStep::Accepted,
            a.accepted_at.as_ref().and_then(from_ts)?,
        )),
        Payload::CaseAnswered(a) => Some((
            a.organ.clone(),
            workflow::PeerStep::Answered {
                outcome: crate::convert::reply_from_pb(a.outcome),
                served_at: a.served_at.as_ref().and_then(from_ts)?,
            },
            a.replied_at.as_ref().and_then(from_ts)?,
        )),
        Payload::CompletionReported(c) => Some((
            c.organ.clone(),
            workflow::PeerStep::CompletionReported,
            c.reported_at.as_ref().and_then(from_ts)?,
        )),
        _ => None,
    }
}

impl RoutingConsumer {
    /// A peer deployment's organ accepted, answered or reported on a case we routed to it:
    /// our copy takes the step with the peer's date, and our events tell supervision and
    /// intake, as a local organ's step would.
    async fn apply_peer_step(
        &self,
        tx: &mut Tx,
        p: &pb::PeerProgressed,
    ) -> Result<bool, ApplyError> {
        let Some((organ, step, at)) = peer_step(p) else {
            return Ok(false);
        };
        let calendar = self.reference.calendar.current();
        let actor = format!("peer:{}", p.peer);
        let cx = workflow::Ctx {
            calendar: &calendar,
            tree: &self.reference.tree,
            policy: &self.policy,
            now: at,
            actor: &actor,
        };
        let mut early = false;
        let mut refused = None;
        let changed =
            RoutingStore::apply_with_event(tx, &p.case_id, |r| {
                match workflow::peer_step(
                    r,
                    &organ,
                    p.moved_within_peer,
                    &step,
                    &p.peer_case_number,
                    cx,
                ) {
                    Ok(workflow::PeerApplied::Changed(next)) => {
                        let msg = match step {
                            workflow::PeerStep::Accepted => {
                                crate::events::accepted(&next, &calendar, at)
                            }
                            workflow::PeerStep::Answered { .. } => {
                                crate::events::answered(&next, at)
                            }
                            workflow::PeerStep::CompletionReported => {
                                crate::events::completion_reported(&next, at)
                            }
                        };
                        Some((*next, msg.by(&actor, &organ)))
                    }
                    Ok(workflow::PeerApplied::Already) => None,
                    Ok(workflow::PeerApplied::Early) => {
                        early = true;
                        None
                    }
                    Err(e) => {
                        refused = Some(e.to_string());
                        None
                    }
                }
            })
            .await?;
        if early {
            // Its predecessor is still on its way (another consumer holds it): the event stays
            // pending and comes back, so the steps apply in the peer's order.
            return Err(HandlerError::Transient(format!(
                "case {}: the peer's earlier step has not been applied yet",
                p.case_number
            ))
            .into());
        }
        if let Some(why) = refused {
            return Err(HandlerError::Poison(format!(
                "case {}: the step {} reported cannot apply: {why}",
                p.case_number, p.peer
            ))
            .into());
        }
        if changed {
            tracing::info!(case_number = %p.case_number, peer = %p.peer, %organ, ?step,
                "a peer's step applied");
        }
        Ok(changed)
    }
}

/// Applies supervision's decisions about the cases routing holds (consumer group `routing` on
/// `petition.supervision.v1`): an approved extension, a pause for a hearing, or a recount on a
/// newly loaded holiday calendar moves a date in the inbox.
pub struct DecisionConsumer {
    pub reference: Arc<Reference>,
    pub policy: RoutingPolicy,
    pub clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl Apply for DecisionConsumer {
    fn wants(&self, d: &Delivery) -> bool {
        use pb::event_envelope::Payload;
        match &d.envelope.payload {
            Some(Payload::ExtensionDecided(_)) => true,
            Some(Payload::ClockResumed(c)) => c.clock == pb::ClockKind::Handling as i32,
            Some(Payload::ClockRecounted(c)) => recounted_date(c.clock).is_some(),
            _ => false,
        }
    }

    async fn apply(&self, tx: &mut Tx, d: &Delivery) -> Result<bool, ApplyError> {
        let calendar = self.reference.calendar.current();
        let cx = workflow::Ctx {
            calendar: &calendar,
            tree: &self.reference.tree,
            policy: &self.policy,
            now: self.clock.now(),
            actor: "supervision",
        };
        type Change<'a> =
            Box<dyn FnOnce(&AssignmentRecord) -> Option<AssignmentRecord> + Send + 'a>;
        let (case_id, change): (&str, Change<'_>) = match &d.envelope.payload {
            Some(pb::event_envelope::Payload::ExtensionDecided(e)) => {
                let due = e.handling_due.as_ref().and_then(from_ts);
                (
                    &e.case_id,
                    Box::new(move |r| {
                        workflow::extension_decided(r, e.approved, due, &e.reason, cx)
                    }),
                )
            }
            // A hearing moved the handling clock: the inbox orders by the moved date.
            Some(pb::event_envelope::Payload::ClockResumed(c))
                if c.clock == pb::ClockKind::Handling as i32 =>
            {
                let due = c.due_at.as_ref().and_then(from_ts);
                (
                    &c.case_id,
                    Box::new(move |r| workflow::handling_moved(r, due, c.paused_days, cx)),
                )
            }
            // The calendar gained the year a date was counted into.
            Some(pb::event_envelope::Payload::ClockRecounted(c)) => {
                let (Some(which), Some(due)) =
                    (recounted_date(c.clock), c.due_at.as_ref().and_then(from_ts))
                else {
                    return Ok(false);
                };
                (
                    &c.case_id,
                    Box::new(move |r| workflow::recounted(r, which, due, cx)),
                )
            }
            _ => return Ok(false),
        };
        Ok(RoutingStore::apply_decision(tx, case_id, change).await?)
    }
}

/// Which date of an assignment a recounted supervision clock is.
fn recounted_date(clock: i32) -> Option<workflow::RecountedDate> {
    match pb::ClockKind::try_from(clock).ok()? {
        pb::ClockKind::Forward => Some(workflow::RecountedDate::Route),
        pb::ClockKind::Objection => Some(workflow::RecountedDate::Objection),
        pb::ClockKind::Handling => Some(workflow::RecountedDate::Handling),
        _ => None,
    }
}
