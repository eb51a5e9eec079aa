//! The connection to the services: one gRPC channel, the bearer token on every call, and the
//! exit code each failure means.

use petition_proto::v1 as pb;
use std::path::PathBuf;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// TLS to a suite that serves it: the CA that signed its certificate, and the client
/// certificate of an upstream system where mutual TLS is on.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// the CA certificate (PEM) that signed the suite's certificate: connect over TLS
    #[arg(long, env = "PETITION_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// this client's certificate (PEM), for mutual TLS (an upstream system)
    #[arg(
        long,
        env = "PETITION_TLS_CLIENT_CERT",
        global = true,
        requires = "tls_client_key"
    )]
    pub tls_client_cert: Option<PathBuf>,
    /// its private key (PEM)
    #[arg(
        long,
        env = "PETITION_TLS_CLIENT_KEY",
        global = true,
        requires = "tls_client_cert"
    )]
    pub tls_client_key: Option<PathBuf>,
    /// the name the suite's certificate is for, when not the host of --addr
    #[arg(long, env = "PETITION_TLS_DOMAIN", global = true)]
    pub tls_domain: Option<String>,
}

impl TlsArgs {
    fn client_config(&self) -> Result<Option<ClientTlsConfig>, Failure> {
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| Failure::usage(format!("{flag} {}: {e}", path.display())))
        };
        let Some(ca) = &self.tls_ca else {
            if self.tls_client_cert.is_some() {
                return Err(Failure::usage(
                    "--tls-client-cert: give --tls-ca (PETITION_TLS_CA) too, to connect over TLS",
                ));
            }
            return Ok(None);
        };
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--tls-ca", ca)?));
        if let (Some(cert), Some(key)) = (&self.tls_client_cert, &self.tls_client_key) {
            config = config.identity(Identity::from_pem(
                read("--tls-client-cert", cert)?,
                read("--tls-client-key", key)?,
            ));
        }
        if let Some(domain) = &self.tls_domain {
            config = config.domain_name(domain.clone());
        }
        Ok(Some(config))
    }
}

/// What went wrong, with the process exit code it means (documented in `--help`).
#[derive(Debug)]
pub struct Failure {
    pub exit: u8,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub const EXIT_INTERNAL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_AUTH: u8 = 3;
pub const EXIT_NOT_FOUND: u8 = 4;
pub const EXIT_REFUSED: u8 = 5;
pub const EXIT_UNAVAILABLE: u8 = 6;
pub const EXIT_WAIT: u8 = 7;

impl Failure {
    pub fn new(exit: u8, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    /// A mistake on this command line that clap cannot see (a file that does not parse, say).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(EXIT_USAGE, message)
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        let (exit, what, hint) = match s.code() {
            Code::Unauthenticated if s.message().contains("client certificate") => (
                EXIT_AUTH,
                "not signed in",
                "\n  give --tls-client-cert and --tls-client-key (PETITION_TLS_CLIENT_CERT, PETITION_TLS_CLIENT_KEY): the certificate issued to this system",
            ),
            Code::Unauthenticated => (
                EXIT_AUTH,
                "not signed in",
                "\n  set PETITION_TOKEN or --token (see `petition token issue --help`)",
            ),
            Code::PermissionDenied => (EXIT_AUTH, "not allowed", ""),
            Code::NotFound => (EXIT_NOT_FOUND, "not found", ""),
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::OutOfRange => (EXIT_REFUSED, "refused", ""),
            Code::Unavailable | Code::DeadlineExceeded => (
                EXIT_UNAVAILABLE,
                "unavailable",
                "\n  is the suite running? it listens on PETITION_ADDR (default 127.0.0.1:50051)",
            ),
            Code::ResourceExhausted => (EXIT_UNAVAILABLE, "busy or full", ""),
            Code::Aborted => (EXIT_UNAVAILABLE, "interrupted", "\n  run the command again"),
            _ => (EXIT_INTERNAL, "the service failed", ""),
        };
        Failure::new(exit, format!("{what}: {}{hint}", s.message()))
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;
pub type Intake = pb::intake_service_client::IntakeServiceClient<Authed>;
pub type Routing = pb::routing_service_client::RoutingServiceClient<Authed>;
pub type Supervision = pb::supervision_service_client::SupervisionServiceClient<Authed>;
pub type Analytics = pb::analytics_service_client::AnalyticsServiceClient<Authed>;
pub type Audit = pb::audit_service_client::AuditServiceClient<Authed>;

/// A connection to the suite, or to the services behind one address.
pub struct Conn {
    channel: Channel,
    bearer: Bearer,
}

impl Conn {
    /// Connects lazily: a service that is down is reported by the first call, with its code.
    pub fn open(addr: &str, token: Option<&str>, tls: &TlsArgs) -> Result<Self, Failure> {
        let scheme = if tls.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        let url = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("{scheme}://{addr}")
        };
        let mut endpoint = Endpoint::from_shared(url).map_err(|e| {
            Failure::usage(format!(
                "--addr (PETITION_ADDR): {addr:?} is not an address: {e}"
            ))
        })?;
        if let Some(config) = tls.client_config()? {
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| Failure::usage(format!("--tls-ca: {e}")))?;
        }
        // No overall timeout: an import streams for as long as its segment takes.
        let channel = endpoint
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let bearer = match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => Bearer(None),
            Some(t) => Bearer(Some(format!("Bearer {t}").parse().map_err(|_| {
                Failure::usage("--token (PETITION_TOKEN): not a token (printable ASCII only)")
            })?)),
        };
        Ok(Self { channel, bearer })
    }

    /// The bare channel, for services that take no token (health).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn audit(&self) -> Audit {
        pb::audit_service_client::AuditServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer.clone(),
        )
    }

    pub fn intake(&self) -> Intake {
        pb::intake_service_client::IntakeServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer.clone(),
        )
        // an import's answer lists every rejected row of a segment
        .max_decoding_message_size(64 << 20)
    }

    pub fn routing(&self) -> Routing {
        pb::routing_service_client::RoutingServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer.clone(),
        )
    }

    pub fn supervision(&self) -> Supervision {
        pb::supervision_service_client::SupervisionServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer.clone(),
        )
    }

    pub fn analytics(&self) -> Analytics {
        pb::analytics_service_client::AnalyticsServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer.clone(),
        )
        // a yearly report carries its charts inline
        .max_decoding_message_size(64 << 20)
    }

    /// The case a command names: its id as given, or the id of a case number (what people
    /// read off a receipt), looked up in intake.
    pub async fn case_id(&self, case: &str) -> Result<String, Failure> {
        let case = case.trim();
        if uuid::Uuid::parse_str(case).is_ok() {
            return Ok(case.to_owned());
        }
        let found = self
            .intake()
            .get_case(pb::GetCaseRequest {
                case_id: String::new(),
                case_number: case.to_owned(),
            })
            .await?;
        Ok(found.into_inner().id)
    }

    /// The case number of a case given by id or number (what the petitioner's requests take).
    pub async fn case_number(&self, case: &str) -> Result<String, Failure> {
        let case = case.trim();
        if uuid::Uuid::parse_str(case).is_err() {
            return Ok(case.to_owned());
        }
        let found = self
            .intake()
            .get_case(pb::GetCaseRequest {
                case_id: case.to_owned(),
                case_number: String::new(),
            })
            .await?;
        Ok(found.into_inner().case_number)
    }
}

/// The id a command is applied under: the one given (`--request-id`, so that a script that
/// retries after a lost answer is applied once), or a fresh one.
pub fn request_id(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
