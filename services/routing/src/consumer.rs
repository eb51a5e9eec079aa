//! Routes each registered petition as its event arrives (consumer group `routing` on
//! `petition.intake.v1`), in the transaction that holds the processed-event mark and the
//! `petition.routed` event (one per read: see `petition_events::apply`).

use crate::model::AssignmentRecord;
use crate::store::RoutingStore;
use crate::workflow::{self, Registered, RoutingPolicy};
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
        )
    }

    async fn apply(&self, tx: &mut Tx, d: &Delivery) -> Result<bool, ApplyError> {
        let Some(pb::event_envelope::Payload::PetitionRegistered(reg)) = &d.envelope.payload else {
            return Ok(false);
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
        };
        let decision = {
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
