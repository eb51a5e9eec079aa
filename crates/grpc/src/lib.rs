//! What every service's gRPC face shares: conversions between protobuf and domain types, the
//! reference data, signed page tokens, and the statuses for invalid input and refused access.

pub mod convert;
pub mod federation;
pub mod page;
pub mod recusal;
pub mod reference;

pub use page::PageTokens;

/// INVALID_ARGUMENT naming every bad field, with `google.rpc.BadRequest` details.
pub fn invalid_argument(violations: &[(String, String)]) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let summary = violations
        .iter()
        .map(|(f, r)| format!("{f}: {r}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for (f, r) in violations {
        details.add_bad_request_violation(f.clone(), r.clone());
    }
    tonic::Status::with_error_details(tonic::Code::InvalidArgument, summary, details)
}

/// INVALID_ARGUMENT for the domain's violations.
pub fn invalid(violations: Vec<petition_domain::Violation>) -> tonic::Status {
    let pairs: Vec<(String, String)> = violations.into_iter().map(|v| (v.field, v.rule)).collect();
    invalid_argument(&pairs)
}

/// A case id from a request: required, and a UUID as intake issues them, so that a malformed id
/// is the caller's mistake (INVALID_ARGUMENT) in every service, never a lookup that finds
/// nothing.
pub fn case_id(field: &str, text: &str) -> Result<uuid::Uuid, tonic::Status> {
    let text = text.trim();
    if text.is_empty() {
        return Err(tonic::Status::invalid_argument(format!(
            "{field}: required"
        )));
    }
    uuid::Uuid::parse_str(text).map_err(|_| {
        tonic::Status::invalid_argument(format!(
            "{field}: {} is not a case id (a UUID)",
            petition_domain::validation::shown(text)
        ))
    })
}

/// The longest client request id a service keeps.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// A command's free text `(field, value, max chars)` and its request id, checked before
/// anything else looks at them: every bad field named at once.
pub fn check_input(texts: &[(&str, &str, usize)], request_id: &str) -> Result<(), tonic::Status> {
    use petition_domain::validation::{Violation, check_text};
    let mut v: Vec<Violation> = Vec::new();
    for (field, value, max) in texts {
        check_text(&mut v, field, value, *max);
    }
    if request_id.chars().count() > MAX_REQUEST_ID_CHARS
        || !request_id.bytes().all(|b| b.is_ascii_graphic())
    {
        v.push(Violation::new(
            "request_id",
            format!("printable ASCII without spaces, at most {MAX_REQUEST_ID_CHARS} characters"),
        ));
    }
    if v.is_empty() {
        Ok(())
    } else {
        Err(invalid(v))
    }
}

/// ALREADY_EXISTS for a request id the caller's organ already used for another request: the
/// one wording every service gives.
pub fn request_id_reused(request_id: &str, organ: &str) -> tonic::Status {
    tonic::Status::already_exists(format!(
        "request_id {}: already used by {organ} for another request; send a new request_id for a new request",
        petition_domain::validation::shown(request_id)
    ))
}

/// PERMISSION_DENIED for a refusal of the access policy.
pub fn denied(d: petition_auth::Denied) -> tonic::Status {
    tonic::Status::permission_denied(d.0)
}

/// The status for a store's failure: a conflict the caller resolves by reading again, a
/// request id another request took first, or the service's own failure (logged, never
/// described to the caller).
pub fn store_status(e: petition_storage::StoreError, service: &'static str) -> tonic::Status {
    use petition_storage::StoreError;
    match e {
        StoreError::Conflict => tonic::Status::aborted(
            "the case changed while this request was applied; read it and retry",
        ),
        StoreError::DuplicateRequest => tonic::Status::already_exists(
            "request_id: taken, by this organ's request to another method or by a concurrent \
             retry applied first; read the case, and send a new request_id for a new request",
        ),
        e => {
            tracing::error!(error = %e, service, "store failed");
            tonic::Status::internal("storage failure; the request was not completed, retry later")
        }
    }
}

/// What a caller learns of a case the access policy answered for: for the accused side
/// exactly the answer for a case that does not exist (Art. 30 ¶3, `not_found`); for one out
/// of reach a refusal that names only the caller.
/// Whether a retry of a request `p`'s organ already applied may be answered with the case as
/// it is now: yes even when the case has since left the caller's reach (a retried transfer
/// must succeed), never when it is hidden from the caller (the accused side of an accusation,
/// a member of staff out of the case): then exactly the answer for a case that does not exist.
pub fn retry_access(
    view: petition_auth::CaseView,
    not_found: &'static str,
) -> Result<(), tonic::Status> {
    match view {
        petition_auth::CaseView::Hidden => Err(tonic::Status::not_found(not_found)),
        _ => Ok(()),
    }
}

pub fn case_access(
    view: petition_auth::CaseView,
    p: &petition_auth::Principal,
    not_found: &'static str,
) -> Result<(), tonic::Status> {
    match view {
        petition_auth::CaseView::Visible { .. } => Ok(()),
        petition_auth::CaseView::Hidden => Err(tonic::Status::not_found(not_found)),
        petition_auth::CaseView::OutOfReach => Err(tonic::Status::permission_denied(format!(
            "this case is outside the reach of {} ({})",
            p.org, p.role
        ))),
    }
}
