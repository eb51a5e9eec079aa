//! Registrations are written in batches. A case number is drawn without gaps (ADR 0002): the
//! draw holds its register's counter row until commit, so concurrent registrations of one
//! register queue behind one another, each holding the lock for its own round trips and
//! commit. Under load that queue, not the work, sets the latency. The registrar is the queue
//! made explicit: one task writes what has arrived since its last commit in one transaction,
//! which draws each register's numbers once. Idle, a batch is one registration and nothing
//! waits for it to fill; under load the batch grows with the backlog, up to `max_batch`.

use crate::store::{IntakeStore, Registration, StoreError};
use petition_events::RelayWake;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

struct Job {
    registration: Registration,
    reply: oneshot::Sender<Result<String, StoreError>>,
}

/// Hands registrations to the writing task. Cloned into every request handler; the task ends
/// when the last clone is dropped, after answering everything it was given, so a graceful
/// shutdown that drains its requests drains the registrar too.
#[derive(Clone)]
pub struct Registrar {
    jobs: mpsc::Sender<Job>,
}

impl Registrar {
    /// `wake` is the outbox relay's: woken once per commit, not once per registration in it.
    pub fn start(store: IntakeStore, max_batch: usize, wake: Arc<RelayWake>) -> Self {
        let (jobs, rx) = mpsc::channel(max_batch.max(1) * 4);
        tokio::spawn(run(store, rx, max_batch.max(1), wake));
        Self { jobs }
    }

    /// Registers one case, in whatever batch it lands in; returns its case number.
    pub async fn register(&self, registration: Registration) -> Result<String, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                registration,
                reply,
            })
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }
}

async fn run(
    store: IntakeStore,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    wake: Arc<RelayWake>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        // A caller that gave up (its deadline passed, it hung up) is not registered behind
        // its back: it was told the call failed, and may send it again.
        let jobs: Vec<Job> = std::mem::take(&mut batch)
            .into_iter()
            .filter(|j| !j.reply.is_closed())
            .collect();
        if jobs.is_empty() {
            continue;
        }
        metrics::histogram!("intake_registration_batch_size").record(jobs.len() as f64);
        if jobs.len() == 1 {
            one_at_a_time(&store, jobs, &wake).await;
            continue;
        }
        let regs: Vec<Registration> = jobs.iter().map(|j| j.registration.clone()).collect();
        match store.register_all(&regs).await {
            Ok(numbers) => {
                wake.notify_one();
                for (job, number) in jobs.into_iter().zip(numbers) {
                    let _ = job.reply.send(Ok(number));
                }
            }
            // The database is away: every registration of the batch would wait its turn for
            // the same answer, one pool timeout after another. They all get it now.
            Err(StoreError::Database(e)) if petition_storage::is_unavailable(&e) => {
                let reason = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(StoreError::Unavailable(reason.clone())));
                }
            }
            // Nothing of the batch was written: each goes again alone, so that a duplicate
            // idempotency key or a full register answers its own request only.
            Err(e) => {
                tracing::debug!(error = %e, size = jobs.len(), "registration batch failed; registering one at a time");
                one_at_a_time(&store, jobs, &wake).await;
            }
        }
    }
}

async fn one_at_a_time(store: &IntakeStore, jobs: Vec<Job>, wake: &RelayWake) {
    for job in jobs {
        let result = store.register_all(&[job.registration]).await;
        if result.is_ok() {
            wake.notify_one();
        }
        let _ = job.reply.send(result.map(|mut n| n.remove(0)));
    }
}
