//! The web console (axum, HTML rendered on the server): the clerk's window, the department's
//! inbox, the supervisor's due board, the director's situation page and the petitioner's
//! page. It calls the services over gRPC with the signed-in person's own token, and shows what
//! they answer: it decides no access itself (Art. 30 ¶3 and every other rule hold because the
//! services hold them). See docs/adr/0017-web-console.md for why the pages are rendered here.

mod board;
mod inbox;
mod intake;
mod page;
mod query;
pub mod session;
mod sign_in;
mod situation;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, SameSite};
use petition_auth::TokenKeys;
use petition_domain::{Clock, OrgTree, Taxonomy};
use session::{Flash, Session, Sessions, User};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// A call the console makes ends within this: a page waits no longer for a service.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where each service answers: one address for the suite, four for services run apart.
#[derive(Clone)]
pub struct Channels {
    pub intake: Channel,
    pub routing: Channel,
    pub supervision: Channel,
    pub analytics: Channel,
}

impl Channels {
    /// Every service at one address (the suite).
    pub fn one(channel: Channel) -> Self {
        Self {
            intake: channel.clone(),
            routing: channel.clone(),
            supervision: channel.clone(),
            analytics: channel,
        }
    }
}

pub struct Console {
    pub grpc: Channels,
    pub tree: Arc<OrgTree>,
    pub taxonomy: Arc<Taxonomy>,
    pub clock: Arc<dyn Clock>,
    /// Under `--dev`: the keys the sign-in page issues a token with, for the organ and role
    /// picked. Without them, people sign in with a token their deployment issued.
    pub dev_keys: Option<Arc<TokenKeys>>,
    /// Whom the petitioner's page calls as. Without it the page says it is not offered here.
    pub portal: Option<Portal>,
    pub sessions: Sessions,
}

impl Console {
    pub fn new(
        grpc: Channels,
        tree: Arc<OrgTree>,
        taxonomy: Arc<Taxonomy>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            grpc,
            tree,
            taxonomy,
            clock,
            dev_keys: None,
            portal: None,
            sessions: Sessions::default(),
        }
    }

    /// The organ's name, or its id when the tree does not know it.
    pub fn organ_name(&self, id: &str) -> String {
        self.tree
            .get(id)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    fn intake(&self) -> petition_proto::v1::intake_service_client::IntakeServiceClient<Channel> {
        petition_proto::v1::intake_service_client::IntakeServiceClient::new(
            self.grpc.intake.clone(),
        )
    }

    fn routing(&self) -> petition_proto::v1::routing_service_client::RoutingServiceClient<Channel> {
        petition_proto::v1::routing_service_client::RoutingServiceClient::new(
            self.grpc.routing.clone(),
        )
    }

    fn supervision(
        &self,
    ) -> petition_proto::v1::supervision_service_client::SupervisionServiceClient<Channel> {
        petition_proto::v1::supervision_service_client::SupervisionServiceClient::new(
            self.grpc.supervision.clone(),
        )
    }

    fn analytics(
        &self,
    ) -> petition_proto::v1::analytics_service_client::AnalyticsServiceClient<Channel> {
        petition_proto::v1::analytics_service_client::AnalyticsServiceClient::new(
            self.grpc.analytics.clone(),
        )
    }
}

/// The petitioner's page calls as a platform the petitioner uses (role upstream), which the
/// services let carry a petitioner's own requests when the query code proves them: with a
/// token the deployment issued, or, where the console runs beside the services and holds
/// their key, with one it issues itself for each call (so it never expires under a long run).
pub enum Portal {
    Token(String),
    Keys(Arc<TokenKeys>, petition_auth::Principal),
}

impl Portal {
    /// The portal's principal at the deployment's top bureau, as the suite issues it.
    pub fn issued(keys: Arc<TokenKeys>, tree: &OrgTree) -> Option<Self> {
        let top = tree
            .organs()
            .filter(|o| o.kind == petition_domain::org::OrgKind::Bureau)
            .min_by_key(|o| o.level.rank())?;
        Some(Portal::Keys(
            keys,
            petition_auth::Principal {
                subject: "console.portal".into(),
                org: top.id.clone(),
                role: petition_auth::Role::Upstream,
                scopes: vec![],
            },
        ))
    }

    fn token(&self) -> String {
        match self {
            Portal::Token(t) => t.clone(),
            Portal::Keys(keys, p) => keys.issue(p, chrono::Duration::minutes(5)),
        }
    }
}

/// A gRPC request in the name of whoever holds `token`.
fn call<T>(token: &str, message: T) -> Result<tonic::Request<T>, Problem> {
    let mut r = tonic::Request::new(message);
    let value = format!("Bearer {}", token.trim())
        .parse()
        .map_err(|_| Problem::SignIn)?;
    r.metadata_mut().insert("authorization", value);
    r.set_timeout(CALL_TIMEOUT);
    Ok(r)
}

/// The session of this request, as the session layer found or made it.
#[derive(Clone)]
pub struct Visit {
    pub id: String,
    pub session: Session,
}

impl Visit {
    /// The signed-in person, or the way to the sign-in page.
    fn user(&self) -> Result<&User, Problem> {
        self.session.user.as_ref().ok_or(Problem::SignIn)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Visit {
    type Rejection = Problem;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Visit>()
            .cloned()
            .ok_or(Problem::SignIn)
    }
}

/// A form as posted: its fields in order, repeated ones included (a petition's petitioners).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .collect()
    }
}

/// The posted form of `visit`, once its form token is the session's (CSRF).
fn checked(
    visit: &Visit,
    form: axum_extra::extract::Form<Vec<(String, String)>>,
) -> Result<Fields, Problem> {
    let fields = Fields(form.0);
    if visit.session.csrf_matches(fields.get("csrf")) {
        Ok(fields)
    } else {
        Err(Problem::Csrf)
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum Problem {
    /// not signed in, or the token is no longer accepted
    SignIn,
    /// a form without this session's form token
    Csrf,
    /// the service's answer, shown as it gave it
    Api(tonic::Status),
    Input(String),
}

impl From<tonic::Status> for Problem {
    fn from(s: tonic::Status) -> Self {
        if s.code() == tonic::Code::Unauthenticated {
            tracing::info!(reason = %s.message(), "a console session's token was refused");
            return Problem::SignIn;
        }
        Problem::Api(s)
    }
}

impl Problem {
    /// The HTTP status and the words a person reads for this refusal.
    fn told(&self) -> (StatusCode, String) {
        use tonic::Code;
        match self {
            Problem::SignIn => (StatusCode::UNAUTHORIZED, "请先登录 (sign in first)".into()),
            Problem::Csrf => (
                StatusCode::FORBIDDEN,
                "表单已过期或来源不明 (the form's token does not match this session): reload the page and send it again".into(),
            ),
            Problem::Input(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Problem::Api(s) => {
                let status = match s.code() {
                    Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
                    Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => {
                        StatusCode::CONFLICT
                    }
                    Code::PermissionDenied => StatusCode::FORBIDDEN,
                    Code::NotFound => StatusCode::NOT_FOUND,
                    Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
                    Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    _ => StatusCode::BAD_GATEWAY,
                };
                let words = match s.code() {
                    Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                        "服务暂不可用，请稍后再试 (the service did not answer in time)".to_owned()
                    }
                    Code::Internal | Code::Unknown | Code::DataLoss => {
                        tracing::error!(error = %s.message(), "a service failed a console call");
                        "服务出错 (the service failed); the error is in its log".to_owned()
                    }
                    _ => s.message().to_owned(),
                };
                (status, words)
            }
        }
    }

    /// The words a person reads.
    fn flash_words(&self) -> String {
        self.told().1
    }

    /// As a one-time message for the next page.
    fn flash(&self) -> Flash {
        Flash::Refused(self.flash_words())
    }
}

/// Set on a response that sends a person to sign in: the session layer then forgets whoever
/// was signed in on it (a token the services refuse is not kept).
#[derive(Clone, Copy)]
struct SignedOut;

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        if matches!(self, Problem::SignIn) {
            let mut r = Redirect::to("/sign-in").into_response();
            r.extensions_mut().insert(SignedOut);
            return r;
        }
        let (status, words) = self.told();
        (status, page::problem(status, &words)).into_response()
    }
}

type Shared = State<Arc<Console>>;

pub fn router(console: Arc<Console>) -> axum::Router {
    axum::Router::new()
        .route("/", get(sign_in::home))
        .route("/sign-in", get(sign_in::page).post(sign_in::with_token))
        .route("/sign-in/dev", post(sign_in::dev))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/register", get(intake::form).post(intake::submit))
        .route("/register/receipt", get(intake::receipt))
        .route("/check/resident-id", post(intake::check_resident_id))
        .route("/inbox", get(inbox::inbox))
        .route("/cases/{id}", get(inbox::case))
        .route("/cases/{id}/{action}", post(inbox::act))
        .route("/board", get(board::board))
        .route("/situation", get(situation::situation))
        .route("/situation/report", get(situation::report))
        .route("/query", get(query::ask).post(query::look_up))
        .route("/query/case", get(query::case))
        .route("/query/rate", post(query::rate))
        .route("/query/review", post(query::review))
        .route("/static/console.css", get(page::css))
        .route("/static/console.js", get(page::js))
        .route("/livez", get(|| async { "ok" }))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                page::problem(StatusCode::NOT_FOUND, "没有这个页面 (no such page)"),
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            with_session,
        ))
        .with_state(console)
}

/// Finds or makes the request's session, refuses a cross-site form post, and sets the cookie
/// and the headers that keep pages out of frames and scripts to this console's own.
async fn with_session(State(c): Shared, mut request: Request, next: Next) -> Response {
    // The style sheet, the script and the health check need no session: a probe every few
    // seconds should not make one each time.
    let path = request.uri().path();
    if path.starts_with("/static/") || path == "/livez" {
        return next.run(request).await;
    }
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(request.headers());
    let given = jar.get(session::COOKIE).map(|k| k.value().to_owned());
    // A form posted from another site: SameSite=Strict keeps our cookie off it, and the
    // Origin header, which browsers send on every POST, says where it came from. (The
    // referrer policy is same-origin, not no-referrer: under no-referrer browsers send
    // `Origin: null` even for our own forms.)
    // Behind a proxy the browser's host is the one the proxy forwards.
    let host = request
        .headers()
        .get("x-forwarded-host")
        .or_else(|| request.headers().get(header::HOST));
    if request.method() == Method::POST
        && let Some(origin) = request.headers().get(header::ORIGIN)
        && !same_origin(origin, host)
    {
        return Problem::Csrf.into_response();
    }
    let (id, session, new) = c.sessions.open(given.as_deref(), chrono::Utc::now());
    request.extensions_mut().insert(Visit {
        id: id.clone(),
        session,
    });
    let mut response = next.run(request).await;
    if response.extensions().get::<SignedOut>().is_some() {
        c.sessions.update(&id, |s| s.user = None);
    }
    let headers = response.headers_mut();
    if new && !headers.contains_key(header::SET_COOKIE) {
        let cookie = session_cookie(id);
        if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn same_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(|h| h.to_str())) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

/// The session cookie: never readable by scripts, never sent over plain HTTP to another host
/// than this one (browsers treat localhost as secure), never sent with another site's request.
pub fn session_cookie(id: String) -> Cookie<'static> {
    Cookie::build((session::COOKIE, id))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .build()
}

/// Back to `to` with a one-time message.
fn back(c: &Console, visit: &Visit, to: &str, flash: Flash) -> Response {
    c.sessions.update(&visit.id, |s| s.flash = Some(flash));
    Redirect::to(to).into_response()
}

/// A fresh idempotency key for a form: sending the same form twice (a double click, a
/// reload) is answered once by the service.
fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
