//! Case status flows back: intake reads routing's and supervision's streams (group `intake`)
//! and records each step in the case's timeline, once per event, so that staff and the
//! petitioner see where the case is. A recusal (回避) it copies, so that the member of staff
//! out of the case finds it nowhere in intake either. In the same transaction a step joins the
//! feed of the peer deployment that sent the case down, and a case routed to an organ a peer
//! serves opens its exchange (DESIGN §5b).

use crate::federation::ExchangeStore;
use crate::store::IntakeStore;
use petition_domain::{Clock, OrgTree};
use petition_events::{Apply, ApplyError, Delivery};
use petition_federation::Federation;
use petition_proto::v1 as pb;
use petition_storage::Tx;
use std::sync::Arc;
use tokio::sync::Notify;

pub struct StepConsumer {
    pub federation: Arc<Federation>,
    pub tree: Arc<OrgTree>,
    pub clock: Arc<dyn Clock>,
    /// told when an exchange opens
    pub deliver: Arc<Notify>,
    /// told when a step joins a peer's feed
    pub feed: Arc<Notify>,
}

#[async_trait::async_trait]
impl Apply for StepConsumer {
    fn wants(&self, d: &Delivery) -> bool {
        petition_grpc::recusal::is_recusal(&d.envelope)
            || crate::events::step(&d.envelope).is_some()
    }

    async fn apply(&self, tx: &mut Tx, d: &Delivery) -> Result<bool, ApplyError> {
        if let Some(changed) = petition_grpc::recusal::apply(tx, &d.envelope)
            .await
            .map_err(ApplyError::store)?
        {
            return Ok(changed);
        }
        let Some((case_id, step)) = crate::events::step(&d.envelope) else {
            return Ok(false);
        };
        let applied = IntakeStore::apply_step(tx, &case_id, &step)
            .await
            .map_err(ApplyError::store)?;
        if !applied {
            return Ok(false);
        }
        tracing::debug!(%case_id, kind = %step.kind, organ = %step.organ, "case step recorded");
        ExchangeStore::append_feed(tx, &case_id, &d.envelope)
            .await
            .map_err(ApplyError::store)?;
        if let Some(pb::event_envelope::Payload::PetitionRouted(r)) = &d.envelope.payload
            && r.outcome == pb::RouteOutcome::Sent as i32
            && let Some(peer) = self.federation.remote(&self.tree, &r.organ)
            && ExchangeStore::open(tx, &case_id, &peer.name, r, self.clock.now())
                .await
                .map_err(ApplyError::store)?
        {
            tracing::info!(case_number = %r.case_number, organ = %r.organ, peer = %peer.name,
                "routed to an organ a peer deployment serves: exchange opened");
        }
        Ok(true)
    }

    fn committed(&self, changed: usize) {
        if changed > 0 {
            self.deliver.notify_one();
            self.feed.notify_waiters();
        }
    }
}
