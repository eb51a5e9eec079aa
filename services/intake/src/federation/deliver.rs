//! Down: each open exchange sent to its peer's intake, and again with backoff until it ends.

use super::store::{EXISTING_CASE, ExchangeRow, ExchangeStore, Exchanges};
use crate::crypto::PersonalDataCipher;
use crate::store::{CaseKey, IntakeStore, StoreError};
use petition_domain::{Clock, OrgTree};
use petition_federation::{ExchangeStatus, Peer, Verdict};
use petition_grpc::convert::ts;
use petition_proto::v1 as pb;
use petition_proto::v1::intake_service_client::IntakeServiceClient;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The most exchanges sent in one round.
const ROUND: i64 = 64;
/// How often the exchange gauges are counted (a count over the whole table).
const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// How long one delivery or one read of the peer may take before it counts as unanswered.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of a peer's intake, with the token the peer issued us on every call.
type PeerClient =
    IntakeServiceClient<tonic::service::interceptor::InterceptedService<Channel, BearerToken>>;

#[derive(Clone)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

/// A lazy channel to the peer: connecting waits for the first call, so a peer that is away at
/// our start costs nothing until a case goes there.
pub fn client(peer: &Peer) -> Result<PeerClient, String> {
    let mut endpoint = Endpoint::from_shared(peer.address.clone())
        .map_err(|e| format!("peer {}: address: {e}", peer.name))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if peer.address.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = &peer.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("peer {}: ca_file {}: {e}", peer.name, ca.display()))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        if let Some(d) = &peer.domain {
            tls = tls.domain_name(d.clone());
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("peer {}: tls: {e}", peer.name))?;
    }
    let token = format!("Bearer {}", peer.token)
        .parse()
        .map_err(|_| format!("peer {}: the token is not valid header text", peer.name))?;
    Ok(IntakeServiceClient::with_interceptor(
        endpoint.connect_lazy(),
        BearerToken(token),
    ))
}

/// Sends each open exchange to its peer, and again with backoff until it ends.
pub struct Deliverer {
    pub store: ExchangeStore,
    pub cases: IntakeStore,
    pub cipher: Arc<PersonalDataCipher>,
    pub settings: Exchanges,
    pub tree: Arc<OrgTree>,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<Notify>,
    clients: Mutex<HashMap<String, PeerClient>>,
}

/// What one attempt came to.
enum Attempt {
    Done(String),
    Retry(String),
    Conflict {
        reason: String,
        ours: Box<pb::ExchangeVersion>,
        theirs: Option<Box<pb::ExchangeVersion>>,
    },
    Refused(String),
}

fn version(
    case_number: &str,
    title: &str,
    category: &str,
    received_at: Option<prost_types::Timestamp>,
    received_by: &str,
    content: &str,
) -> pb::ExchangeVersion {
    pb::ExchangeVersion {
        case_number: case_number.to_owned(),
        title: title.to_owned(),
        category: category.to_owned(),
        received_at,
        received_by: received_by.to_owned(),
        content: content.to_owned(),
    }
}

impl Deliverer {
    pub fn new(
        store: ExchangeStore,
        cases: IntakeStore,
        cipher: Arc<PersonalDataCipher>,
        settings: Exchanges,
        tree: Arc<OrgTree>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            cases,
            cipher,
            settings,
            tree,
            clock,
            wake,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, peer: &Peer) -> Result<PeerClient, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&peer.name) {
            return Ok(c.clone());
        }
        let c = client(peer)?;
        clients.insert(peer.name.clone(), c.clone());
        Ok(c)
    }

    /// Until `stop`: whatever is due, then a wait until the next is due, a new exchange wakes
    /// it, or a second passes (another replica may have opened or moved one).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut counted: Option<std::time::Instant> = None;
        loop {
            let next = match self.round().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "exchanges could not be read; trying again");
                    Duration::from_secs(1)
                }
            };
            if counted.is_none_or(|t| t.elapsed() >= GAUGE_EVERY) {
                self.gauges().await;
                counted = Some(std::time::Instant::now());
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(next) => {}
            }
        }
    }

    async fn gauges(&self) {
        if let Ok(counts) = self.store.counts().await {
            for s in ExchangeStatus::ALL {
                let n = counts
                    .iter()
                    .find(|(k, _)| k == s.as_str())
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("federation_exchanges", "status" => s.as_str()).set(n as f64);
            }
        }
    }

    /// Attempts what is due, all at once (the peer's intake writes concurrent registrations in
    /// one transaction); returns how long to wait for the next.
    async fn round(&self) -> Result<Duration, StoreError> {
        let now = self.clock.now();
        let due = self.store.due(now, ROUND).await?;
        let busy = due.len() as i64 == ROUND;
        for done in futures::future::join_all(due.into_iter().map(|row| self.deliver(row))).await {
            done?;
        }
        if busy {
            return Ok(Duration::ZERO);
        }
        let wait = match self.store.next_due().await? {
            Some(t) => (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO),
            None => Duration::from_secs(1),
        };
        Ok(wait.min(Duration::from_secs(1)))
    }

    async fn deliver(&self, mut row: ExchangeRow) -> Result<(), StoreError> {
        let attempt = match self.settings.federation.peer(&row.peer) {
            Some(peer) => self.attempt(peer, &row).await,
            None => Attempt::Retry(format!(
                "peer {} is not in the peers file any more; restore it, or route the case again",
                row.peer
            )),
        };
        let now = self.clock.now();
        row.attempts += 1;
        row.next_attempt_at = now;
        let outcome = match attempt {
            Attempt::Done(number) => {
                row.status = ExchangeStatus::Done;
                row.reason.clear();
                row.peer_case_number = Some(number);
                "done"
            }
            Attempt::Retry(why) => {
                row.status = ExchangeStatus::Retrying;
                row.reason = why;
                let wait = petition_federation::backoff(
                    (row.attempts - 1).try_into().unwrap_or(u32::MAX),
                    self.settings.retry_base,
                    self.settings.retry_cap,
                );
                row.next_attempt_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
                "retry"
            }
            Attempt::Conflict {
                reason,
                ours,
                theirs,
            } => {
                row.status = ExchangeStatus::Conflict;
                row.reason = reason;
                row.ours = Some(*ours);
                row.theirs = theirs.map(|t| *t);
                "conflict"
            }
            Attempt::Refused(why) => {
                row.status = ExchangeStatus::Failed;
                row.reason = why;
                "failed"
            }
        };
        metrics::counter!("federation_exchange_attempts_total", "outcome" => outcome).increment(1);
        if self.store.record(&row, now).await? {
            tracing::info!(case_number = %row.case_number, peer = %row.peer, status = %row.status,
                attempts = row.attempts, reason = %row.reason, "exchange attempted");
        }
        Ok(())
    }

    /// What we send: the petition as registered here, personal data opened for the peer (the
    /// organ it goes to must reach the petitioner; the channel is the peers' own, authenticated
    /// and, across machines, TLS), under our name and case number.
    async fn request(&self, row: &ExchangeRow) -> Result<pb::RegisterPetitionRequest, String> {
        let id = uuid::Uuid::parse_str(&row.case_id).map_err(|e| e.to_string())?;
        let case = self
            .cases
            .get_case(&CaseKey::Id(id))
            .await
            .map_err(|e| format!("the case could not be read here: {e}"))?
            .ok_or("the case is not in this intake")?;
        let open = |v: &Option<Vec<u8>>| -> Result<String, String> {
            v.as_ref().map_or(Ok(String::new()), |s| {
                self.cipher
                    .open(s)
                    .map_err(|e| format!("personal data could not be opened: {e}"))
            })
        };
        let mut petitioners = Vec::new();
        for p in &case.petitioners {
            petitioners.push(pb::PetitionerInput {
                name: p.name.clone(),
                id_type: p
                    .id_type
                    .map_or(0, |t| petition_grpc::convert::id_type_to_pb(Some(t)) as i32),
                id_number: open(&p.id_number_sealed)?,
                phone: open(&p.phone_sealed)?,
                address: open(&p.address_sealed)?,
                is_main: p.is_main,
            });
        }
        let c = &case.body;
        let accused = match (&c.accused_organ, &c.accused_name_sealed) {
            (None, None) => None,
            (organ, name) => Some(pb::Accused {
                name: open(name)?,
                organ_id: organ.clone().unwrap_or_default(),
            }),
        };
        // It arrives at the bureau of the organ's territory, from above (上级转送/交办).
        let received_by = self
            .tree
            .get(&row.organ)
            .and_then(|o| self.tree.bureau_for(&o.region))
            .map(|b| b.id.clone())
            .unwrap_or_else(|| row.organ.clone());
        let mut upstream = row.upstream.clone();
        upstream.leapfrog = c.flags.leapfrog;
        Ok(pb::RegisterPetitionRequest {
            channel: pb::Channel::Upstream as i32,
            received_by,
            received_at: Some(ts(c.received_at)),
            petitioners,
            category: c.category.clone(),
            problem_location: c.problem_location.clone(),
            title: c.title.clone(),
            content: c.content.clone(),
            people_present: c.people_present.try_into().unwrap_or_default(),
            people_affected: c.people_affected.try_into().unwrap_or_default(),
            representatives: c.representatives.try_into().unwrap_or_default(),
            accused,
            source_system: self.settings.federation.name.clone(),
            external_ref: case.case_number.clone(),
            upstream: Some(upstream),
            validate_only: false,
        })
    }

    async fn attempt(&self, peer: &Peer, row: &ExchangeRow) -> Attempt {
        let req = match self.request(row).await {
            Ok(r) => r,
            Err(why) => return Attempt::Retry(why),
        };
        let mut client = match self.client(peer) {
            Ok(c) => c,
            Err(why) => return Attempt::Refused(why),
        };
        let mut call = tonic::Request::new(req.clone());
        call.set_timeout(PEER_TIMEOUT);
        match client.register_petition(call).await {
            Ok(r) => Attempt::Done(r.into_inner().case_number),
            Err(s) => match petition_federation::verdict(s.code()) {
                Verdict::Retry => Attempt::Retry(format!(
                    "{} did not answer: {:?}: {}",
                    peer.name,
                    s.code(),
                    s.message()
                )),
                Verdict::Refused => Attempt::Refused(format!(
                    "{} refused it: {:?}: {}",
                    peer.name,
                    s.code(),
                    s.message()
                )),
                Verdict::Conflict => {
                    let held = s
                        .metadata()
                        .get(EXISTING_CASE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let theirs = match held {
                        Some(number) => self.theirs(&mut client, &number).await.map(Box::new),
                        None => None,
                    };
                    // What we sent, beside what the peer holds, for the person who decides.
                    let ours = version(
                        &req.external_ref,
                        &req.title,
                        &req.category,
                        req.received_at,
                        &req.received_by,
                        &req.content,
                    );
                    Attempt::Conflict {
                        reason: format!("{}: {}", peer.name, s.message()),
                        ours: Box::new(ours),
                        theirs,
                    }
                }
            },
        }
    }

    /// The peer's version of the case that holds our key.
    async fn theirs(&self, client: &mut PeerClient, number: &str) -> Option<pb::ExchangeVersion> {
        let mut call = tonic::Request::new(pb::GetCaseRequest {
            case_number: number.to_owned(),
            ..Default::default()
        });
        call.set_timeout(PEER_TIMEOUT);
        let c = client.get_case(call).await.ok()?.into_inner();
        Some(version(
            &c.case_number,
            &c.title,
            &c.category,
            c.received_at,
            &c.received_by,
            &c.content,
        ))
    }
}
