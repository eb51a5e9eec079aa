//! The override rules file: loaded at start, re-read when its content changes. A bad file is
//! refused whole and the old rules stay.

use petition_domain::routing::RoutingRules;
use petition_grpc::reference::Reference;
use petition_host::StartError;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

pub fn load(path: &Path, reference: &Reference) -> Result<RoutingRules, StartError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        StartError::Config(format!("cannot read routing rules {}: {e}", path.display()))
    })?;
    RoutingRules::from_toml(&text, &reference.tree)
        .map_err(|e| StartError::Config(format!("routing rules {}: {e}", path.display())))
}

/// Comparing content rather than modification times also catches a file that was read
/// half-written: the complete version differs again and is tried again.
pub async fn watch(
    path: PathBuf,
    every: Duration,
    reference: Arc<Reference>,
    rules: Arc<RwLock<RoutingRules>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = std::fs::read_to_string(&path).ok();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if last.as_deref() == Some(text.as_str()) {
            continue;
        }
        match RoutingRules::from_toml(&text, &reference.tree) {
            Ok(new) => {
                tracing::info!(rules = new.len(), path = %path.display(), "routing rules reloaded");
                *rules.write().unwrap_or_else(|e| e.into_inner()) = new;
            }
            Err(e) => tracing::error!(error = %e, path = %path.display(),
                "routing rules not reloaded; keeping the old ones"),
        }
        last = Some(text);
    }
}
