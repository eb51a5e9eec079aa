//! Binding the ports: gRPC (the services, `grpc.health.v1` following readiness, and server
//! reflection that lists exactly what the port serves) and the admin port.

use crate::{Host, Running, StartError};
use axum::extract::Query;
use axum::serve::ListenerExt;
use petition_domain::SimulatedClock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;

const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Methods without a deadline: a client stream the handler reads to its end (an import), and
/// admin calls that take as long as the data they walk (a rebuild, a rekey, an audit walk).
const UNTIMED: [&str; 4] = [
    "/petition.v1.IntakeService/ImportPetitions",
    "/petition.v1.AnalyticsService/Rebuild",
    "/petition.v1.IntakeService/RekeyPersonalData",
    "/petition.v1.AuditService/VerifyAudit",
];

/// A `grpc-timeout` header: digits and a unit (H, M, S, m, u, n).
fn grpc_timeout(v: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr, source })?;
    Ok((listener, bound))
}

/// The descriptors of `services` and what they import, and nothing else: reflection on a port
/// neither lists nor describes a service served elsewhere.
fn descriptors_for(services: &[&str]) -> Result<prost_types::FileDescriptorSet, StartError> {
    use prost::Message;
    let all = prost_types::FileDescriptorSet::decode(petition_proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| StartError::Reflection(e.to_string()))?;
    let mut wanted: Vec<String> = all
        .file
        .iter()
        .filter(|f| {
            f.service.iter().any(|s| {
                let full = format!("{}.{}", f.package(), s.name());
                services.contains(&full.as_str())
            })
        })
        .map(|f| f.name().to_owned())
        .collect();
    let mut i = 0;
    while i < wanted.len() {
        if let Some(f) = all.file.iter().find(|f| f.name() == wanted[i]) {
            for dep in &f.dependency {
                if !wanted.contains(dep) {
                    wanted.push(dep.clone());
                }
            }
        }
        i += 1;
    }
    Ok(prost_types::FileDescriptorSet {
        file: all
            .file
            .into_iter()
            .filter(|f| wanted.iter().any(|w| w == f.name()))
            .collect(),
    })
}

pub(crate) async fn serve(mut host: Host) -> Result<Running, StartError> {
    // Relays start only now, after every consumer of this process has subscribed.
    for relay in &host.relays {
        let stop = host.stop_work.subscribe();
        host.workers.push(tokio::spawn(relay.clone().run(stop)));
    }
    // Each service's audit log: chained here, served on this port.
    let chains: Vec<_> =
        std::mem::take(&mut *host.audited.lock().unwrap_or_else(|e| e.into_inner()));
    for (schema, db) in &chains {
        let stop = host.stop_work.subscribe();
        host.workers.push(tokio::spawn(petition_audit::run_chainer(
            db.clone(),
            schema,
            crate::audit::CHAIN_EVERY,
            crate::audit::ANCHOR_EVERY,
            stop,
        )));
    }
    if !chains.is_empty() {
        let grpc = crate::audit::AuditGrpc {
            chains: Arc::new(chains),
            policy: host.policy.clone(),
        };
        let auth = host.auth();
        host.add_service(
            petition_proto::v1::audit_service_server::AuditServiceServer::with_interceptor(
                grpc, auth,
            ),
        );
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    let mut names: Vec<String> = host.served.iter().map(|s| s.to_string()).collect();
    names.extend([HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA].map(String::from));
    let ours = descriptors_for(&host.served)?;
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        names
            .iter()
            .fold(b, |b, n| b.with_service_name(n.clone()))
            .register_file_descriptor_set(ours.clone())
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .map_err(|e| StartError::Reflection(e.to_string()))?;
    let v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .map_err(|e| StartError::Reflection(e.to_string()))?;
    let mut routes = std::mem::take(&mut host.routes);
    routes
        .add_service(health_service)
        .add_service(v1)
        .add_service(v1alpha);
    let here = names.join(", ");
    let timeout = host.cfg.request_timeout;
    let router = routes
        .routes()
        .into_axum_router()
        .fallback(move |req: axum::extract::Request| {
            let here = here.clone();
            async move {
                let method = req.uri().path().trim_start_matches('/').to_owned();
                tonic::Status::unimplemented(format!(
                    "{method} is not served on this port; it serves {here}"
                ))
                .into_http::<axum::body::Body>()
            }
        })
        // A call not answered within the configured time (or the client's grpc-timeout, if
        // shorter) is answered DEADLINE_EXCEEDED. Its handler runs on in a task of its own, so
        // what it does it finishes or rolls back whole, as after a lost connection; the answer
        // says so. The timer stops when the answer begins, so a server stream (an export, a
        // health watch) runs as long as it takes; a client stream (an import) and the long
        // admin calls are not timed. Inside the telemetry layer, so a cut call is counted.
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                let method = req.uri().path().to_owned();
                if UNTIMED.contains(&method.as_str()) {
                    return next.run(req).await;
                }
                let limit = req
                    .headers()
                    .get("grpc-timeout")
                    .and_then(|v| grpc_timeout(v.to_str().ok()?))
                    .map_or(timeout, |client| client.min(timeout));
                // in the call's span: its trace goes on into the events it writes
                let call = tokio::spawn(
                    tracing::Instrument::instrument(next.run(req), tracing::Span::current()),
                );
                match tokio::time::timeout(limit, call).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(e)) => {
                        tracing::error!(%method, error = %e, "call failed");
                        tonic::Status::internal("the call failed; its log says more")
                            .into_http::<axum::body::Body>()
                    }
                    Err(_) => {
                        tracing::warn!(%method, ?limit, "call not answered within its deadline");
                        tonic::Status::deadline_exceeded(format!(
                            "{}: not answered within {} ms; it may still complete: read before trying again, or retry with the same request_id",
                            method.trim_start_matches('/'),
                            limit.as_millis()
                        ))
                        .into_http::<axum::body::Body>()
                    }
                }
            },
        ))
        .layer(axum::middleware::from_fn(
            petition_telemetry::grpc_middleware,
        ));

    // Calls in flight, so that a shutdown waits for them but not for idle client connections
    // (a city platform keeps its channel open for days).
    let in_flight = InFlight::new();
    let router = {
        let in_flight = in_flight.clone();
        router.layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let guard = in_flight.enter();
                async move {
                    let response = next.run(req).await;
                    drop(guard);
                    response
                }
            },
        ))
    };
    let (stop_serving, stop_rx) = watch::channel(false);
    let (listener, grpc_addr) = bind(host.cfg.listen).await?;
    let admin = match host.cfg.admin_listen {
        Some(addr) => {
            let (listener, bound) = bind(addr).await?;
            let prometheus = petition_telemetry::prometheus()?;
            let router = petition_telemetry::admin_router(
                prometheus,
                host.readiness.clone(),
                std::mem::take(&mut host.admin_routes),
            );
            let task = tokio::spawn(async move {
                let never = std::future::pending::<()>();
                if let Err(e) = petition_telemetry::serve_admin(listener, router, never).await {
                    tracing::error!(error = %e, "admin server failed");
                }
            });
            Some((bound, task))
        }
        None => None,
    };

    // Health follows readiness: NOT_SERVING while a relay or consumer cannot reach Redis or
    // the database, SERVING again when they can.
    let served = host.served.clone();
    let ready = host.readiness.wait_ready(host.cfg.ready_timeout).await;
    if !ready {
        tracing::warn!(failing = ?host.readiness.failing(), "starting while not ready");
    }
    set_all(&health, &served, ready).await;
    {
        let health = health.clone();
        let served = served.clone();
        let mut ready_rx = host.readiness.subscribe();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                let changed = tokio::select! {
                    changed = ready_rx.changed() => changed.is_ok(),
                    _ = stop.changed() => false,
                };
                if !changed || *stop.borrow() {
                    return;
                }
                let ready = *ready_rx.borrow_and_update();
                set_all(&health, &served, ready).await;
            }
        });
    }

    let mut stop = stop_rx;
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let server = match host.tls_config.clone() {
        None => tokio::spawn(async move {
            let listener = listener.tap_io(|tcp| {
                // Replies written in several pieces must not wait for a delayed ACK.
                let _ = tcp.set_nodelay(true);
            });
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(stopping)
                .await
            {
                tracing::error!(error = %e, "gRPC server failed");
            }
        }),
        Some(config) => {
            let listener = crate::tls::TlsListener::new(listener, config).map_err(|source| {
                StartError::Listen {
                    addr: grpc_addr,
                    source,
                }
            })?;
            // The certificate the connection proved goes with each call to the access check.
            let router = router.layer(axum::middleware::from_fn(
                |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
                    let client = req
                        .extensions()
                        .get::<axum::extract::ConnectInfo<crate::tls::TlsPeer>>()
                        .and_then(|peer| peer.0.client.clone());
                    if let Some(c) = client {
                        req.extensions_mut().insert(c);
                    }
                    next.run(req).await
                },
            ));
            tokio::spawn(async move {
                let service = router.into_make_service_with_connect_info::<crate::tls::TlsPeer>();
                if let Err(e) = axum::serve(listener, service)
                    .with_graceful_shutdown(stopping)
                    .await
                {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            })
        }
    };
    let tls = match &host.cfg.tls {
        None => "off",
        Some(t) if t.client_ca.is_some() => "mutual",
        Some(_) => "on",
    };
    match &admin {
        Some((admin_addr, _)) => {
            tracing::info!(%grpc_addr, %admin_addr, services = ?served, tls, "serving")
        }
        None => tracing::info!(%grpc_addr, services = ?served, "serving; no admin port"),
    }
    Ok(Running {
        grpc_addr,
        admin_addr: admin.as_ref().map(|a| a.0),
        token_keys: host.tokens,
        readiness: host.readiness,
        clock: host.clock,
        outboxes: host.outboxes,
        sim_clock: host.sim_clock,
        stop_serving,
        in_flight,
        stop_work: host.stop_work,
        server,
        admin: admin.map(|a| a.1),
        health,
        served,
        relays: host.relays,
        workers: host.workers,
        _data_lock: host.data_lock,
    })
}

/// The number of calls being answered, and a way to wait until there are none.
#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<(std::sync::atomic::AtomicUsize, tokio::sync::Notify)>);

pub(crate) struct InFlightGuard(InFlight);

impl InFlight {
    fn new() -> Self {
        Self::default()
    }

    fn enter(&self) -> InFlightGuard {
        self.0.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// Returns once no call is in flight.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.0.0.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.0.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.0.0.1.notify_waiters();
        }
    }
}

async fn set_all(
    health: &tonic_health::server::HealthReporter,
    served: &[&'static str],
    ready: bool,
) {
    let status = if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for name in served {
        health.set_service_status(*name, status).await;
    }
    health.set_service_status("", status).await;
}

/// `GET /clock` and `POST /clock/advance?days=&hours=&minutes=&seconds=` (or `?to=` an RFC 3339
/// instant) for a `--dev-clock` run: where simulated time stands, and moving it forward.
pub(crate) fn clock_routes(clock: Arc<SimulatedClock>) -> axum::Router {
    use axum::http::StatusCode;
    use petition_domain::Clock;
    let now = clock.clone();
    axum::Router::new()
        .route(
            "/clock",
            axum::routing::get(move || {
                let c = now.clone();
                async move { format!("{}\n", c.now().to_rfc3339()) }
            }),
        )
        .route(
            "/clock/advance",
            axum::routing::post(move |Query(q): Query<HashMap<String, String>>| {
                let c = clock.clone();
                async move {
                    if let Some(to) = q.get("to") {
                        if q.len() > 1 {
                            return (
                                StatusCode::BAD_REQUEST,
                                "to: give either an instant or a step (days, hours, minutes, seconds), not both\n".to_owned(),
                            );
                        }
                        // An offset's '+' typed into a URL unencoded arrives as a space.
                        let at = match crate::args::parse_instant(&to.replace(' ', "+")) {
                            Ok(at) => at.to_utc(),
                            Err(e) => return (StatusCode::BAD_REQUEST, format!("to: {e}\n")),
                        };
                        return moved(c.advance_to(at));
                    }
                    let mut by = chrono::Duration::zero();
                    for (unit, value) in &q {
                        let Ok(n) = value.parse::<i64>() else {
                            return (
                                StatusCode::BAD_REQUEST,
                                format!("{unit}: {value:?} is not a whole number\n"),
                            );
                        };
                        let step = match unit.as_str() {
                            "days" => chrono::Duration::try_days(n),
                            "hours" => chrono::Duration::try_hours(n),
                            "minutes" => chrono::Duration::try_minutes(n),
                            "seconds" => chrono::Duration::try_seconds(n),
                            other => {
                                return (
                                    StatusCode::BAD_REQUEST,
                                    format!("{other}: use days, hours, minutes or seconds\n"),
                                );
                            }
                        };
                        match step.and_then(|s| by.checked_add(&s)) {
                            Some(b) => by = b,
                            None => {
                                return (
                                    StatusCode::BAD_REQUEST,
                                    format!("{unit}: out of range\n"),
                                );
                            }
                        }
                    }
                    moved(c.advance(by))
                }
            }),
        )
}

/// The answer to a move of the simulated clock: where it stands now, or why it did not move.
fn moved(
    r: Result<chrono::DateTime<chrono::Utc>, petition_domain::clock::ClockError>,
) -> (axum::http::StatusCode, String) {
    match r {
        Ok(now) => {
            tracing::info!(%now, "simulated clock moved forward");
            (
                axum::http::StatusCode::OK,
                format!("{}\n", now.to_rfc3339()),
            )
        }
        Err(e) => (axum::http::StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}
