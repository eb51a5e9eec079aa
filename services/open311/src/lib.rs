//! An Open311 GeoReport v2 facade over intake (HTTP and JSON, axum): the way 12345 hotlines
//! and city platforms that speak Open311 register petitions and follow them, without gRPC.
//! Each call carries the platform's API key (`api_key`, or the `X-Api-Key` header), which intake
//! checks: the key names the platform, which registers under its own name and sees only what
//! it sent. The facade decides nothing itself; it maps fields and statuses (see `map`) and
//! passes intake's answers on, a refusal as GeoReport's `[{code, description}]`.
//! The OpenAPI document is `openapi.yaml`, served at `/open311/v2/openapi.yaml`.

pub mod map;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use petition_domain::{Clock, Taxonomy};
use petition_proto::v1 as pb;
use petition_proto::v1::intake_service_client::IntakeServiceClient;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// The OpenAPI 3 document of this facade.
pub const OPENAPI: &str = include_str!("../openapi.yaml");

/// The most requests one `service_request_id` list may name.
const MAX_IDS: usize = 50;
/// How far back a list reaches when no start_date is given (GeoReport's default).
const DEFAULT_DAYS: i64 = 90;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Facade {
    pub intake: IntakeServiceClient<Channel>,
    pub taxonomy: Arc<Taxonomy>,
    pub clock: Arc<dyn Clock>,
}

/// A refusal in GeoReport's shape.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    description: String,
}

impl Failure {
    fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            status,
            description: description.into(),
        }
    }

    fn bad(e: map::Invalid) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.0)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!([{ "code": self.status.as_u16(), "description": self.description }]);
        (self.status, Json(body)).into_response()
    }
}

/// Intake's answer, as the HTTP status a GeoReport client expects; the message is intake's,
/// which names the field and the rule.
impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        let status = match s.code() {
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, s.message().to_owned())
    }
}

type Shared = State<Arc<Facade>>;

pub fn router(facade: Arc<Facade>) -> axum::Router {
    axum::Router::new()
        .route("/open311/v2/openapi.yaml", get(openapi))
        .route("/open311/v2/services.json", get(services))
        .route("/open311/v2/services/{file}", get(definition))
        .route(
            "/open311/v2/requests.json",
            get(list_requests).post(post_request),
        )
        .route("/open311/v2/requests/{file}", get(one_request))
        .fallback(|| async {
            Failure::new(
                StatusCode::NOT_FOUND,
                "no such resource; GET /open311/v2/openapi.yaml describes this API",
            )
        })
        .with_state(facade)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI)
}

fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

/// A parameter as sent, empty or not: an empty date or status is a mistake, not an absence.
fn given<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim())
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// `{name}.json`: the only format served.
fn json_file(path: Result<Path<String>, PathRejection>, what: &str) -> Result<String, Failure> {
    let Path(file) = path.map_err(|e| Failure::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    file.strip_suffix(".json")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Failure::new(
                StatusCode::NOT_FOUND,
                format!("{what}: ask for {what}.json; only JSON is served"),
            )
        })
}

/// The platform's API key: the `X-Api-Key` header, or `api_key` among the parameters.
fn api_key(headers: &HeaderMap, given: Option<&str>) -> Result<String, Failure> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .or(given)
        .map(str::to_owned)
        .ok_or_else(|| {
            Failure::new(
                StatusCode::UNAUTHORIZED,
                "api_key: required, the key your jurisdiction issued (or the X-Api-Key header)",
            )
        })
}

/// A gRPC request to intake in the platform's name.
fn call<T>(key: &str, message: T) -> Result<tonic::Request<T>, Failure> {
    let mut r = tonic::Request::new(message);
    let value = format!("ApiKey {key}").parse().map_err(|_| {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            "api_key: not a key this jurisdiction issued",
        )
    })?;
    r.metadata_mut().insert("authorization", value);
    r.set_timeout(CALL_TIMEOUT);
    Ok(r)
}

async fn services(State(f): Shared) -> Json<Vec<map::Service>> {
    Json(map::services(&f.taxonomy))
}

async fn definition(
    State(f): Shared,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<map::Definition>, Failure> {
    let code = json_file(path, "service_code")?;
    if f.taxonomy.get(&code).is_none() {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!(
                "service_code: {} is no service here; GET services.json lists them",
                map::shown(&code)
            ),
        ));
    }
    Ok(Json(map::definition(&code)))
}

async fn post_request(
    State(f): Shared,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Failure> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: a request is sent as application/x-www-form-urlencoded (GeoReport v2)",
        ));
    }
    let posted = map::Posted::from_pairs(serde_urlencoded::from_bytes(&body).unwrap_or_default());
    let key = api_key(&headers, posted.api_key())?;
    let registration = map::registration(&posted, &f.taxonomy).map_err(Failure::bad)?;
    let answer = f
        .intake
        .clone()
        .register_petition(call(&key, registration)?)
        .await?
        .into_inner();
    // A resend of the same ticket is answered as the first time, without creating anything.
    let status = if answer.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(vec![map::created(&answer)])).into_response())
}

async fn get_case(f: &Facade, key: &str, number: &str) -> Result<pb::Case, Failure> {
    // Anything but a case number names no request: not found, as GeoReport has it.
    if number.parse::<petition_domain::CaseNumber>().is_err() {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!(
                "service_request_id: no request {}; ids look like 140213-2026-000123",
                map::shown(number)
            ),
        ));
    }
    Ok(f.intake
        .clone()
        .get_case(call(
            key,
            pb::GetCaseRequest {
                case_number: number.to_owned(),
                ..Default::default()
            },
        )?)
        .await
        .map_err(|s| match s.code() {
            // Another platform's request is no request to this one: not found, the same
            // answer as a number nobody used, so that numbers cannot be probed.
            tonic::Code::PermissionDenied => Failure::new(
                StatusCode::NOT_FOUND,
                format!("service_request_id: no request {}", map::shown(number)),
            ),
            _ => Failure::from(s),
        })?
        .into_inner())
}

async fn one_request(
    State(f): Shared,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<map::Request>>, Failure> {
    let number = json_file(path, "service_request_id")?;
    let q = pairs(query.as_deref());
    let key = api_key(&headers, param(&q, "api_key"))?;
    let extensions = extensions(&q)?;
    let case = get_case(&f, &key, &number).await?;
    Ok(Json(vec![map::request(&case, &f.taxonomy, extensions)]))
}

/// `extensions=true` adds a request's history; anything but true or false is a mistake.
fn extensions(q: &[(String, String)]) -> Result<bool, Failure> {
    match given(q, "extensions") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            format!("extensions: true or false, got {}", map::shown(v)),
        )),
    }
}

fn number(q: &[(String, String)], name: &str, default: u32, max: u32) -> Result<u32, Failure> {
    match given(q, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{name}: a whole number from 1 to {max}, got {}",
                        map::shown(v)
                    ),
                )
            }),
    }
}

async fn list_requests(
    State(f): Shared,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<map::Request>>, Failure> {
    let q = pairs(query.as_deref());
    let key = api_key(&headers, param(&q, "api_key"))?;
    let extensions = extensions(&q)?;
    let date = |name: &str| match given(&q, name) {
        Some(v) => map::parse_w3c(name, v).map(Some).map_err(Failure::bad),
        None => Ok(None),
    };
    let end = date("end_date")?.unwrap_or_else(|| f.clock.now());
    let start = date("start_date")?.unwrap_or(end - chrono::Duration::days(DEFAULT_DAYS));
    let statuses = match given(&q, "status") {
        None => Vec::new(),
        Some(s) => map::statuses(s).map_err(Failure::bad)?,
    };
    let code = param(&q, "service_code").unwrap_or_default().to_owned();
    // Each page before the one asked for is read to find where it starts: a hundred at most.
    let page = number(&q, "page", 1, 100)?;
    let page_size = number(&q, "page_size", 50, 500)?;
    // By id: the other filters are ignored, as GeoReport says (checked all the same: a
    // mistake in them is still the client's to hear of).
    if let Some(ids) = param(&q, "service_request_id") {
        let ids: Vec<&str> = ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if ids.len() > MAX_IDS {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                format!("service_request_id: at most {MAX_IDS} ids, comma-separated"),
            ));
        }
        let mut found = Vec::new();
        for id in ids {
            match get_case(&f, &key, id).await {
                Ok(c) => found.push(map::request(&c, &f.taxonomy, extensions)),
                // one the platform did not send, or none by that number: not listed
                Err(e) if e.status == StatusCode::NOT_FOUND => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(Json(found));
    }
    // A window that ends before it starts holds nothing; nor does a service there is none of.
    if start > end || (!code.is_empty() && f.taxonomy.get(&code).is_none()) {
        return Ok(Json(Vec::new()));
    }
    let mut token = String::new();
    for n in 1..=page {
        let list = f
            .intake
            .clone()
            .list_cases(call(
                &key,
                pb::ListCasesRequest {
                    category_prefix: code.clone(),
                    received_from: Some(petition_grpc::convert::ts(start)),
                    received_to: Some(petition_grpc::convert::ts(end)),
                    page_size,
                    page_token: token.clone(),
                    statuses: statuses.iter().map(|s| *s as i32).collect(),
                    ..Default::default()
                },
            )?)
            .await?
            .into_inner();
        if n == page {
            return Ok(Json(
                list.cases
                    .iter()
                    .map(|c| map::summary(c, &f.taxonomy))
                    .collect(),
            ));
        }
        if list.next_page_token.is_empty() {
            break;
        }
        token = list.next_page_token;
    }
    Ok(Json(Vec::new()))
}
