//! Configuration files a running service reads again when they change: the routing rules and
//! the holiday calendar. A file is compared by content, not modification time, which also
//! catches one read half-written: the complete version differs again and is tried again.

use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// Calls `changed` with the file's text each time it differs from the text last seen (the
/// content at the start counts as seen), looking every `every`, until `stop`. A file that
/// cannot be read is skipped until it can; what a bad file means is `changed`'s to say.
pub async fn watch_file(
    path: PathBuf,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut changed: impl FnMut(&str) + Send,
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
        changed(&text);
        last = Some(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sees each new content once, and not the content it started with.
    #[tokio::test(start_paused = true)]
    async fn each_new_content_is_seen_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "one").unwrap();
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(watch_file(
            path.clone(),
            Duration::from_secs(2),
            stop,
            move |t| seen_tx.send(t.to_owned()).unwrap(),
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            seen.try_recv().is_err(),
            "the starting content is not a change"
        );
        std::fs::write(&path, "two").unwrap();
        assert_eq!(seen.recv().await.unwrap(), "two");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(seen.try_recv().is_err(), "seen once");
        std::fs::remove_file(&path).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        std::fs::write(&path, "three").unwrap();
        assert_eq!(seen.recv().await.unwrap(), "three");
        stop_tx.send(true).unwrap();
        task.await.unwrap();
    }
}
