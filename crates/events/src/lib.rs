//! Events between services: stream and group names, a transactional outbox written in the same
//! transaction as the state change, a relay that publishes it (Redis Streams, or the in-process
//! bus of the embedded default), and a consumer runner with groups, acknowledgement, reclaim,
//! dead letters and idempotent apply. Delivery is at least once; effects are exactly once.

pub mod apply;
pub mod inproc;
pub mod outbox;
pub mod processed;
pub mod redis_bus;
pub mod relay;
pub mod streams;

use petition_proto::v1::{EventEnvelope, TraceContext, event_envelope};
use prost::Message;
use tracing::Instrument;
use uuid::Uuid;

pub use apply::{Apply, ApplyError, Transactional};
pub use inproc::InProcessBus;
pub use outbox::{Actor, EntryId, EventSink, Outbox, OutboxMessage, OutboxRow, Published};
pub use redis_bus::{ConsumerConfig, RedisSink, run_redis_consumer};
pub use relay::{Relay, RelayConfig, RelayWake};
pub use streams::{Stream, event_type, group};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored outbox row: {0}")]
    Corrupt(#[from] petition_storage::Corrupt),
    #[error("in-process subscriber of group {0:?} has stopped")]
    SubscriberGone(String),
    #[error("{0}")]
    Other(String),
}

/// What a handler says about an event it could not apply.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Try again later (the message stays pending and is reclaimed).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed: goes to the dead-letter stream at once.
    #[error("poison: {0}")]
    Poison(String),
    /// What the handler needs (its database) cannot be reached: the event stays where it is,
    /// the consumer pauses and says it is not ready, and no delivery is counted against it —
    /// an outage must not send good events to the dead-letter stream.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl HandlerError {
    /// The error for a failed store call: unavailable when, somewhere down its sources, the
    /// database could not be reached; transient otherwise.
    pub fn from_store(e: impl std::error::Error + 'static) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if let Some(db) = s.downcast_ref::<sqlx::Error>()
                && petition_storage::is_unavailable(db)
            {
                return HandlerError::Unavailable(e.to_string());
            }
            source = s.source();
        }
        HandlerError::Transient(e.to_string())
    }
}

/// One delivery of an event to a consumer group.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub stream: String,
    /// the consumer group it is delivered to
    pub group: String,
    /// the bus carrying it: `redis`, or `in_process` for the embedded default, as
    /// OpenTelemetry's messaging conventions name it
    pub bus: &'static str,
    /// the Redis entry id, or the outbox sequence in-process
    pub entry_id: String,
    pub envelope: EventEnvelope,
    /// how many times this entry has been handed out, this time included
    pub attempt: u64,
}

/// A batch stopped part-way: the first `applied` deliveries are applied, the rest are not (or
/// not for certain), and `error` says why.
#[derive(Debug)]
pub struct BatchError {
    pub applied: usize,
    pub error: HandlerError,
}

#[async_trait::async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError>;

    /// Applies the deliveries of one read, in order. Under load a read returns many entries,
    /// and a handler that applies them together (one transaction, one commit: see
    /// [`Transactional`]) keeps its latency as the rate grows; idle, a read returns one, so
    /// the batch size follows the backlog by itself. After an error the runner acknowledges
    /// the `applied` prefix and hands the rest to `handle` one at a time, so that one bad
    /// event costs its batch time, never its neighbours' effects; a handler may therefore
    /// leave a failed batch half done only where a second apply changes nothing. The default
    /// applies one at a time.
    async fn handle_batch(&self, batch: &[Delivery]) -> Result<(), BatchError> {
        for (applied, d) in batch.iter().enumerate() {
            if let Err(error) = self.handle(d).instrument(d.span()).await {
                return Err(BatchError { applied, error });
            }
        }
        Ok(())
    }
}

/// Builds an envelope stamped with a fresh UUIDv7, the time, and the current span's trace
/// context, so that the trace follows the event through the stream. The type comes from the
/// payload.
pub fn envelope(
    case_id: &str,
    producer: &str,
    occurred_at: chrono::DateTime<chrono::Utc>,
    payload: event_envelope::Payload,
) -> EventEnvelope {
    let (traceparent, tracestate) = petition_telemetry::current_trace_context();
    EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        case_id: case_id.to_owned(),
        r#type: event_type(&payload).to_owned(),
        occurred_at: Some(petition_proto::Timestamp {
            seconds: occurred_at.timestamp(),
            nanos: occurred_at.timestamp_subsec_nanos() as i32,
        }),
        producer: producer.to_owned(),
        trace: Some(TraceContext {
            traceparent,
            tracestate,
        }),
        payload: Some(payload),
    }
}

/// The outbox row for an envelope.
pub fn to_outbox(stream: Stream, envelope: &EventEnvelope) -> OutboxMessage {
    OutboxMessage {
        event_id: Uuid::parse_str(&envelope.event_id).unwrap_or_else(|_| Uuid::now_v7()),
        stream: stream.as_str().to_owned(),
        payload: envelope.encode_to_vec(),
        actor: outbox::Actor::default(),
    }
}

impl Delivery {
    /// The consumer span of this delivery, parented on the producer's trace, so that one
    /// petition's trace follows it through every stream even when it is applied in a batch.
    pub fn span(&self) -> tracing::Span {
        let span = tracing::info_span!(
            "event.consume",
            otel.name = %format!("{} consume", self.stream),
            messaging.system = self.bus,
            messaging.destination.name = %self.stream,
            messaging.consumer.group.name = %self.group,
            messaging.message.id = %self.envelope.event_id,
            event.r#type = %self.envelope.r#type,
        );
        if let Some(t) = &self.envelope.trace {
            petition_telemetry::set_remote_parent(&span, &t.traceparent, &t.tracestate);
        }
        span
    }
}
