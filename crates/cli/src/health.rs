//! `petition health`: asks a service's `grpc.health.v1` whether it serves, for a container's
//! health check or an operator at 3 a.m. Exit 0 when it does; 6 when it does not or cannot be
//! reached in time.

use crate::client::{Conn, EXIT_UNAVAILABLE, Failure};
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  petition health                                   # the whole process (empty service name)
  petition health --service petition.v1.IntakeService
  # a container's health check, on the port it serves
  petition health --addr 127.0.0.1:50051 --timeout 3
  # an HTTP service (the Open311 facade): any 2xx answer is serving
  petition health --http http://127.0.0.1:8311/open311/v2/services.json")]
pub struct Health {
    /// the gRPC service to ask about; empty: the process as a whole
    #[arg(long, default_value = "")]
    pub service: String,
    /// seconds to wait for the answer
    #[arg(long, default_value_t = 3)]
    pub timeout: u64,
    /// ask an HTTP service instead: GET this URL, serving when it answers 2xx
    #[arg(long, conflicts_with = "service")]
    pub http: Option<String>,
}

pub async fn run(conn: &Conn, a: &Health) -> Result<(), Failure> {
    if let Some(url) = &a.http {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| Failure::usage(format!("--http: {url:?}: {e}")))?;
        let asked = tokio::time::timeout(
            Duration::from_secs(a.timeout),
            crate::admin::http(hyper::Method::GET, uri),
        )
        .await
        .map_err(|_| {
            Failure::new(
                EXIT_UNAVAILABLE,
                format!("unavailable: no answer within {} s", a.timeout),
            )
        })?;
        return match asked {
            Ok((status, _)) if status.is_success() => {
                println!("{url}: serving");
                Ok(())
            }
            Ok((status, body)) => Err(Failure::new(
                EXIT_UNAVAILABLE,
                format!("{url}: {status}: {body}"),
            )),
            Err(e) => Err(Failure::new(EXIT_UNAVAILABLE, format!("{url}: {e}"))),
        };
    }
    let mut client = HealthClient::new(conn.channel());
    let ask = client.check(tonic_health::pb::HealthCheckRequest {
        service: a.service.clone(),
    });
    let answer = tokio::time::timeout(Duration::from_secs(a.timeout), ask)
        .await
        .map_err(|_| {
            Failure::new(
                EXIT_UNAVAILABLE,
                format!("unavailable: no answer within {} s", a.timeout),
            )
        })??
        .into_inner();
    let name = if a.service.is_empty() {
        "the process"
    } else {
        a.service.as_str()
    };
    match ServingStatus::try_from(answer.status) {
        Ok(ServingStatus::Serving) => {
            println!("{name}: serving");
            Ok(())
        }
        Ok(s) => Err(Failure::new(
            EXIT_UNAVAILABLE,
            format!("{name}: {}", s.as_str_name().to_lowercase()),
        )),
        Err(_) => Err(Failure::new(
            EXIT_UNAVAILABLE,
            format!("{name}: unknown status {}", answer.status),
        )),
    }
}
