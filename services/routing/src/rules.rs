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

/// Reads the rules again when the file changes; a bad file is refused whole, keeping the old.
pub async fn watch(
    path: PathBuf,
    every: Duration,
    reference: Arc<Reference>,
    rules: Arc<RwLock<RoutingRules>>,
    stop: watch::Receiver<bool>,
) {
    let shown = path.display().to_string();
    petition_host::files::watch_file(
        path,
        every,
        stop,
        move |text| match RoutingRules::from_toml(text, &reference.tree) {
            Ok(new) => {
                tracing::info!(rules = new.len(), path = %shown, "routing rules reloaded");
                *rules.write().unwrap_or_else(|e| e.into_inner()) = new;
            }
            Err(e) => tracing::error!(error = %e, path = %shown,
                "routing rules not reloaded; keeping the old ones"),
        },
    )
    .await
}
