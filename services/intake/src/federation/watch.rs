//! Up: a peer's feed of the steps of the cases we sent it, pulled and applied here once each.

use super::deliver::client;
use super::store::{Applied, ExchangeStore};
use petition_domain::{Clock, OrgTree};
use petition_events::RelayWake;
use petition_federation::{Federation, Peer};
use petition_proto::v1 as pb;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Pulls each peer's feed of the steps of the cases we sent it, and applies them here.
pub struct Watcher {
    pub store: ExchangeStore,
    pub peer: Peer,
    pub federation: Arc<Federation>,
    pub tree: Arc<OrgTree>,
    pub clock: Arc<dyn Clock>,
    pub relay: Arc<RelayWake>,
}

impl Watcher {
    /// Until `stop`: read the feed from our cursor; when the peer goes away, connect again
    /// with backoff, from the cursor, so no step is missed and none applied twice.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // Present from the start, so that a peer never reached raises its alert too.
        metrics::gauge!("federation_watch_connected", "peer" => self.peer.name.clone()).set(0.0);
        metrics::counter!("federation_watch_errors_total", "peer" => self.peer.name.clone())
            .increment(0);
        let mut failures = 0u32;
        loop {
            let result = tokio::select! {
                _ = stop.changed() => return,
                r = self.follow() => r,
            };
            if let Err(e) = result {
                failures = failures.saturating_add(1);
                metrics::counter!("federation_watch_errors_total", "peer" => self.peer.name.clone())
                    .increment(1);
                tracing::warn!(peer = %self.peer.name, error = %e,
                    "the peer's steps could not be read; connecting again");
            }
            let wait = petition_federation::backoff(
                failures.saturating_sub(1),
                Duration::from_millis(250),
                Duration::from_secs(10),
            );
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One step, applied; a step whose exchange has not heard back from its delivery is
    /// asked again for a while (the answer is usually milliseconds away), then given up on
    /// until the stream is read again.
    async fn apply(&self, p: &pb::CaseProgress) -> Result<Applied, String> {
        let served = |organ: &str| {
            self.federation
                .remote(&self.tree, organ)
                .is_some_and(|peer| peer.name == self.peer.name)
        };
        for _ in 0..100 {
            let applied = self
                .store
                .apply_progress(&self.peer.name, p, served, self.clock.now())
                .await
                .map_err(|e| e.to_string())?;
            if applied != Applied::Wait {
                return Ok(applied);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "case {}: its exchange has not heard back from its delivery; steps wait",
            p.external_ref
        ))
    }

    async fn follow(&self) -> Result<(), String> {
        let since = self
            .store
            .cursor(&self.peer.name)
            .await
            .map_err(|e| e.to_string())?;
        let mut client = client(&self.peer)?;
        let mut stream = client
            .watch_cases(pb::WatchCasesRequest {
                since: since.try_into().unwrap_or_default(),
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        metrics::gauge!("federation_watch_connected", "peer" => self.peer.name.clone()).set(1.0);
        let result = loop {
            match stream.message().await {
                Ok(Some(p)) => match self.apply(&p).await {
                    Ok(Applied::Published) => self.relay.notify_one(),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                },
                Ok(None) => break Ok(()),
                Err(s) => break Err(format!("{:?}: {}", s.code(), s.message())),
            }
        };
        metrics::gauge!("federation_watch_connected", "peer" => self.peer.name.clone()).set(0.0);
        result
    }
}
