//! Readiness: whether this process can do its work right now. Each relay and consumer owns a
//! flag and says when it cannot reach Redis or its database; the process is ready when every
//! flag is. Liveness is separate and stays up: a process waiting for Redis to come back must
//! not be killed for it, only taken out of rotation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Debug)]
pub struct Readiness {
    /// component → why it is not ready (`None` = ready)
    components: Mutex<BTreeMap<String, Option<String>>>,
    ready: watch::Sender<bool>,
}

impl Readiness {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            components: Mutex::new(BTreeMap::new()),
            ready: watch::Sender::new(true),
        })
    }

    /// A component that starts not ready ("starting") until it reports otherwise.
    pub fn component(self: &Arc<Self>, name: impl Into<String>) -> ReadinessFlag {
        let name = name.into();
        self.set(&name, Some("starting".into()));
        ReadinessFlag {
            owner: self.clone(),
            name,
        }
    }

    fn set(&self, name: &str, state: Option<String>) {
        let mut c = self.components.lock().unwrap_or_else(|e| e.into_inner());
        // A component being registered is "starting", which is no news.
        let known = c.contains_key(name);
        let changed = c.get(name) != Some(&state);
        match &state {
            Some(reason) if changed && known => {
                tracing::warn!(component = name, %reason, "not ready")
            }
            None if changed && known => tracing::info!(component = name, "ready"),
            _ => {}
        }
        c.insert(name.to_owned(), state);
        let all = c.values().all(Option::is_none);
        drop(c);
        self.ready
            .send_if_modified(|r| std::mem::replace(r, all) != all);
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// The components that are not ready, with their reasons.
    pub fn failing(&self) -> Vec<(String, String)> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|(n, s)| s.clone().map(|r| (n.clone(), r)))
            .collect()
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Waits until every component is ready, or `timeout` passes; returns whether it is.
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        let mut rx = self.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// One component's say in readiness.
#[derive(Debug, Clone)]
pub struct ReadinessFlag {
    owner: Arc<Readiness>,
    name: String,
}

impl ReadinessFlag {
    pub fn ready(&self) {
        self.owner.set(&self.name, None);
    }

    pub fn failing(&self, reason: impl std::fmt::Display) {
        self.owner.set(&self.name, Some(reason.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_only_when_every_component_is() {
        let r = Readiness::new();
        assert!(r.is_ready(), "nothing to wait for");
        let relay = r.component("relay");
        let consumer = r.component("consumer");
        assert!(!r.is_ready());
        relay.ready();
        assert!(!r.is_ready());
        consumer.ready();
        assert!(r.wait_ready(std::time::Duration::from_millis(10)).await);
        consumer.failing("XREADGROUP: connection refused");
        assert!(!r.is_ready());
        assert_eq!(
            r.failing(),
            vec![(
                "consumer".to_owned(),
                "XREADGROUP: connection refused".to_owned()
            )]
        );
        assert!(!r.wait_ready(std::time::Duration::from_millis(10)).await);
        consumer.ready();
        assert!(r.is_ready());
    }
}
