//! Tracing to stdout, OpenTelemetry export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, W3C trace
//! context across gRPC metadata and event envelopes, Prometheus metrics on an admin port, and
//! the process's readiness.

pub mod readiness;

pub use readiness::{Readiness, ReadinessFlag};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            _ => Err(format!("log format must be pretty or json, got {s:?}")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("cannot install the Prometheus recorder: {0}")]
    Metrics(String),
}

/// Keeps the tracer provider alive; dropping it flushes pending spans.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber once per process; later calls (several services in one
/// process, or tests) reuse it.
pub fn init(
    service_name: &str,
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if PROVIDER.get().is_some() {
        return Ok(TelemetryGuard { provider: None });
    }
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    // Without an endpoint we still want real trace ids, so that trace context travels through
    // the streams and shows up in logs even when nothing collects spans.
    let provider = match otlp_endpoint.filter(|e| !e.is_empty()) {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.to_owned())
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            SdkTracerProvider::builder()
                .with_resource(resource)
                .with_batch_exporter(exporter)
                .build()
        }
        None => SdkTracerProvider::builder().with_resource(resource).build(),
    };
    let provider = PROVIDER.get_or_init(|| provider).clone();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("petition-pipeline"));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = match format {
        // Logs go to standard error, leaving standard output to what a command prints.
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        // Colours only for a person at a terminal: escape codes make a log file unreadable.
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // A test harness may already have installed a subscriber; that is fine.
    let _ = installed;
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// For tests and tools: an OpenTelemetry-aware subscriber without output, so that spans have
/// trace ids.
pub fn init_for_tests() {
    // Dropping the guard would shut the provider down, after which spans get no trace ids.
    if let Ok(guard) = init("petition-test", LogFormat::Pretty, None) {
        std::mem::forget(guard);
    }
}

/// W3C `traceparent`/`tracestate` of the current span; empty strings when there is none.
pub fn current_trace_context() -> (String, String) {
    let cx = Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    (
        carrier.remove("traceparent").unwrap_or_default(),
        carrier.remove("tracestate").unwrap_or_default(),
    )
}

/// Makes `span` a child of the trace named by `traceparent`, if it names one.
pub fn set_remote_parent(span: &Span, traceparent: &str, tracestate: &str) {
    if traceparent.is_empty() {
        return;
    }
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if !tracestate.is_empty() {
        carrier.insert("tracestate".to_owned(), tracestate.to_owned());
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(cx);
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut http::HeaderMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Client side: puts the current span's trace context into outgoing gRPC headers.
pub fn inject_into_headers(headers: &mut http::HeaderMap) {
    let cx = Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut MetadataInjector(headers));
}

/// What tonic answers INTERNAL for a request body that breaks gRPC's framing: the client's
/// mistake, which it must fix rather than retry.
const CLIENT_FRAMING_ERRORS: [&str; 3] = [
    "Unexpected EOF decoding stream",
    "Missing request message",
    "protocol error: received message with invalid compression flag",
];

/// Turns tonic's INTERNAL for a broken request frame into INVALID_ARGUMENT, in place.
fn framing_error_is_invalid_argument(response: &mut Response) {
    let headers = response.headers_mut();
    if headers.get("grpc-status").and_then(|v| v.to_str().ok()) != Some("13") {
        return;
    }
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    if CLIENT_FRAMING_ERRORS.iter().any(|e| message.starts_with(e)) {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static(
                "the request is not a complete gRPC message; send one length-prefixed protobuf message",
            ),
        );
    }
}

/// Server side, for every gRPC call: a span parented on the caller's trace context, the RPC
/// rate, latency and error metrics, and INVALID_ARGUMENT for broken request frames.
pub async fn grpc_middleware(request: Request, next: Next) -> Response {
    let method = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "grpc.request",
        otel.name = %method,
        rpc.system = "grpc",
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    let _ = span.set_parent(parent);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    framing_error_is_invalid_argument(&mut response);
    // Errors travel as trailers-only responses, so grpc-status is in the headers; a missing
    // header means the call went on to send trailers with OK.
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_owned();
    span.record("rpc.grpc.status_code", code.as_str());
    // Only the methods we serve name a series: any path a client sends would otherwise make
    // one of its own, without bound.
    let method = if method.starts_with("/petition.v1.") || method.starts_with("/grpc.") {
        method
    } else {
        "other".to_owned()
    };
    let labels = [("method", method), ("code", code)];
    metrics::counter!("rpc_requests_total", &labels).increment(1);
    metrics::histogram!("rpc_duration_seconds", &labels[..1])
        .record(started.elapsed().as_secs_f64());
    response
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> Result<PrometheusHandle, TelemetryError> {
    if let Some(h) = PROMETHEUS.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            // up to the 30 s request deadline, so that a slow tail is not all in +Inf
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ])
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    Ok(PROMETHEUS.get_or_init(|| handle).clone())
}

/// The admin port: `/metrics` (Prometheus text), `/healthz` and `/livez` (liveness: the
/// process answers), `/readyz` (200 when every relay and consumer can reach what it needs,
/// else 503 naming what cannot), plus whatever `extra` routes the service adds.
pub fn admin_router(
    handle: PrometheusHandle,
    readiness: std::sync::Arc<Readiness>,
    extra: axum::Router,
) -> axum::Router {
    use axum::http::StatusCode;
    let live = || async { "ok" };
    let scraped = readiness.clone();
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let h = handle.clone();
                let r = scraped.clone();
                async move {
                    // Readiness as a number too, read at the scrape: an alert needs it in the
                    // series, not only behind /readyz's status code.
                    let failing = r.failing();
                    metrics::gauge!("service_ready").set(if failing.is_empty() {
                        1.0
                    } else {
                        0.0
                    });
                    metrics::gauge!("service_not_ready_components").set(failing.len() as f64);
                    h.render()
                }
            }),
        )
        .route("/healthz", axum::routing::get(live))
        .route("/livez", axum::routing::get(live))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let r = readiness.clone();
                async move {
                    let failing = r.failing();
                    if failing.is_empty() {
                        (StatusCode::OK, "ready\n".to_owned())
                    } else {
                        let lines: String = failing
                            .iter()
                            .map(|(c, why)| format!("{c}: {why}\n"))
                            .collect();
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready\n{lines}"),
                        )
                    }
                }
            }),
        )
        .merge(extra)
}

/// Serves the admin router until `shutdown` resolves.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // As on the gRPC port: a reply written in pieces must not wait for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

pub fn local_addr(listener: &tokio::net::TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_carries_its_trace_across_a_carrier() {
        init_for_tests();
        let outer = tracing::info_span!("producer");
        let (tp, _) = outer.in_scope(current_trace_context);
        assert!(tp.starts_with("00-"), "traceparent {tp:?}");
        let trace_id = tp.split('-').nth(1).unwrap().to_owned();

        let inner = tracing::info_span!("consumer");
        set_remote_parent(&inner, &tp, "");
        let (tp2, _) = inner.in_scope(current_trace_context);
        assert_eq!(tp2.split('-').nth(1).unwrap(), trace_id);
        assert_ne!(tp2, tp, "the consumer span has its own span id");
    }

    #[test]
    fn a_call_without_trace_context_starts_a_trace() {
        init_for_tests();
        let span = tracing::info_span!("grpc.request");
        let parent = TraceContextPropagator::new().extract(&HashMap::<String, String>::new());
        let _ = span.set_parent(parent);
        let (tp, _) = span.in_scope(current_trace_context);
        assert!(tp.starts_with("00-"), "{tp:?}");
    }

    #[test]
    fn log_format_parses() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
