//! Routes each registered petition as its event arrives (consumer group `routing` on
//! `petition.intake.v1`), in one transaction with the processed-event mark and the
//! `petition.routed` event.

use crate::store::{AssignmentRecord, RoutingStore};
use crate::workflow::{self, Registered, RoutingPolicy};
use petition_domain::routing::{RoutingInput, RoutingRules, decide};
use petition_domain::{Clock, RegionCode};
use petition_events::{Delivery, EventHandler, HandlerError};
use petition_grpc::convert::{self, from_ts};
use petition_grpc::reference::Reference;
use petition_proto::v1 as pb;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

pub const GROUP: &str = "routing";
pub const ROUTING_STREAM: &str = "petition.routing.v1";
pub const PRODUCER: &str = "routing";

pub struct RoutingConsumer {
    pub store: Arc<dyn RoutingStore>,
    pub reference: Arc<Reference>,
    pub rules: Arc<RwLock<RoutingRules>>,
    pub policy: RoutingPolicy,
    pub clock: Arc<dyn Clock>,
    pub relay_wake: Arc<Notify>,
}

/// The `petition.routed` event for a record as it now stands.
pub fn routed_event(r: &AssignmentRecord, now: chrono::DateTime<chrono::Utc>) -> pb::EventEnvelope {
    let outcome = match r.outcome.as_str() {
        "sent" => pb::RouteOutcome::Sent,
        "diverted" => pb::RouteOutcome::Diverted,
        "linked" => pb::RouteOutcome::Linked,
        "triage" => pb::RouteOutcome::Triage,
        _ => pb::RouteOutcome::Unspecified,
    };
    petition_events::envelope(
        &r.case_id,
        "petition.routed",
        PRODUCER,
        now,
        pb::event_envelope::Payload::PetitionRouted(pb::PetitionRouted {
            case_id: r.case_id.clone(),
            case_number: r.case_number.clone(),
            organ: r.organ.clone(),
            outcome: outcome as i32,
            mode: crate::service::mode_to_pb(r.mode.as_deref()) as i32,
            diversion: convert::diversion_to_pb(
                r.diversion
                    .as_deref()
                    .and_then(petition_domain::Diversion::parse),
            ) as i32,
            rule: r.rule.clone(),
            hops: r.hops.clone(),
            linked_case_number: r.linked_case_number.clone().unwrap_or_default(),
            routed_at: Some(convert::ts(now)),
            report_due: r.report_due.map(convert::ts),
            type_of_matter: convert::type_to_pb(petition_domain::TypeOfMatter::parse(
                &r.type_of_matter,
            )) as i32,
        }),
    )
}

#[async_trait::async_trait]
impl EventHandler for RoutingConsumer {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        let Some(pb::event_envelope::Payload::PetitionRegistered(reg)) = &d.envelope.payload else {
            return Ok(());
        };
        let location = RegionCode::parse(&reg.problem_location)
            .map_err(|e| HandlerError::Poison(format!("problem_location: {e}")))?;
        let channel = convert::channel_from_pb(reg.channel)
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
            channel: channel.as_str().to_owned(),
            category: reg.category.clone(),
            type_of_matter: convert::type_from_pb(reg.type_of_matter),
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
                        .filter(|s| flags.repeat && !s.is_empty()),
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
            &self.reference.calendar,
            &self.policy,
            now,
        );
        let event = petition_events::to_outbox(ROUTING_STREAM, &routed_event(&record, now));
        let fresh = self
            .store
            .insert_routed(GROUP, &d.envelope.event_id, &record, &event)
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        if fresh {
            self.relay_wake.notify_one();
            metrics::counter!("petitions_routed_total", "outcome" => record.outcome.clone())
                .increment(1);
            tracing::info!(case_number = %record.case_number, organ = %record.organ,
                outcome = %record.outcome, rule = %record.rule, "petition routed");
        }
        Ok(())
    }
}
