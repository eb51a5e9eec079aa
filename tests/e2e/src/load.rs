//! The closed-loop driver the load tools share: `n` clients each send `RegisterPetition` back
//! to back for a warm-up and then a measured window, and the latencies of the calls that began
//! and ended inside the window go into one histogram.

use crate::{Bearer, load_request};
use hdrhistogram::Histogram;
use petition_proto::v1 as pb;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub type Client = pb::intake_service_client::IntakeServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

/// What one measured window saw; latencies in microseconds.
pub struct Run {
    pub clients: usize,
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub hist: Histogram<u64>,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q`, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// `n` clients over `clients` (shared connections, round robin), each registering petitions
/// numbered from `seq` until the window closes.
pub async fn drive(
    clients: Vec<Client>,
    n: usize,
    warmup: Duration,
    measure: Duration,
    seq: Arc<AtomicU64>,
) -> Run {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut client = clients[i % clients.len()].clone();
            let seq = seq.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                let (mut ok, mut errors) = (0u64, 0u64);
                loop {
                    if Instant::now() >= end {
                        break;
                    }
                    let req = load_request(seq.fetch_add(1, Ordering::Relaxed));
                    let t = Instant::now();
                    let r = client.register_petition(req).await;
                    let done = Instant::now();
                    if t >= measure_from && done <= end {
                        match r {
                            Ok(_) => {
                                ok += 1;
                                let _ = hist.record(done.duration_since(t).as_micros() as u64);
                            }
                            Err(e) => {
                                errors += 1;
                                if errors <= 3 {
                                    eprintln!("error: {e}");
                                }
                            }
                        }
                    }
                }
                (ok, errors, hist)
            })
        })
        .collect();
    let mut total = Run {
        clients: n,
        ok: 0,
        errors: 0,
        elapsed: measure,
        hist: Histogram::new(3).expect("histogram"),
    };
    for t in tasks {
        let (ok, errors, hist) = t.await.expect("client task");
        total.ok += ok;
        total.errors += errors;
        total.hist.add(hist).expect("same histogram bounds");
    }
    total
}
