//! Registrations are written in batches. A case number is drawn without gaps (ADR 0002): the
//! draw holds its register's counter row until commit, so concurrent registrations of one
//! register queue behind one another, each holding the lock for its own round trips and
//! commit. Under load that queue, not the work, sets the latency. The registrar is the queue
//! made explicit: one task writes what has arrived since its last commit in one transaction,
//! which draws each register's numbers once. Idle, a batch is one registration and nothing
//! waits for it to fill; under load the batch grows with the backlog, up to `max_batch`.

use crate::store::{IntakeStore, Registration, StoreError};
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
    pub fn start(store: IntakeStore, max_batch: usize) -> Self {
        let (jobs, rx) = mpsc::channel(max_batch.max(1) * 4);
        tokio::spawn(run(store, rx, max_batch.max(1)));
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

async fn run(store: IntakeStore, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let jobs = std::mem::take(&mut batch);
        metrics::histogram!("intake_registration_batch_size").record(jobs.len() as f64);
        if let [_] = &jobs[..] {
            for job in jobs {
                let result = store.register_all(&[job.registration]).await;
                let _ = job.reply.send(result.map(|mut n| n.remove(0)));
            }
            continue;
        }
        let regs: Vec<Registration> = jobs.iter().map(|j| j.registration.clone()).collect();
        match store.register_all(&regs).await {
            Ok(numbers) => {
                for (job, number) in jobs.into_iter().zip(numbers) {
                    let _ = job.reply.send(Ok(number));
                }
            }
            // Nothing of the batch was written: each goes again alone, so that a duplicate
            // idempotency key or a full register answers its own request only.
            Err(e) => {
                tracing::debug!(error = %e, size = jobs.len(), "registration batch failed; registering one at a time");
                for job in jobs {
                    let result = store.register_all(&[job.registration]).await;
                    let _ = job.reply.send(result.map(|mut n| n.remove(0)));
                }
            }
        }
    }
}
