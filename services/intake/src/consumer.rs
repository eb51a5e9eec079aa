//! Case status flows back: intake reads routing's and supervision's streams (group `intake`)
//! and records each step in the case's timeline, once per event, so that staff and the
//! petitioner see where the case is. A recusal (回避) it copies, so that the member of staff
//! out of the case finds it nowhere in intake either.

use crate::store::IntakeStore;
use petition_events::{Apply, ApplyError, Delivery};
use petition_storage::Tx;

pub struct StepConsumer;

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
        if applied {
            tracing::debug!(%case_id, kind = %step.kind, organ = %step.organ, "case step recorded");
        }
        Ok(applied)
    }
}
