//! `petition.v1.AnalyticsService`: every call scoped by the access policy's figure scope,
//! every answer read from the rollups (figures) or the case facts (lists of cases).

use crate::period::{Month, Months};
use crate::queries::{Figures, store_status};
use crate::store::SuggestionRow;
use crate::tally::Basis;
use pb::analytics_service_server::AnalyticsService;
use petition_auth::{FigureScope, Principal, principal};
use petition_domain::calendar::local_date;
use petition_grpc::convert::ts;
use petition_grpc::denied;
use petition_grpc::reference::LiveCalendar;
use petition_proto::v1 as pb;
use tonic::{Request, Response, Status};

const MAX_TEXT_CHARS: usize = 4_000;

#[derive(Clone)]
pub struct AnalyticsGrpc {
    pub figures: Figures,
    pub calendar: LiveCalendar,
}

fn months(period: &str) -> Result<Months, Status> {
    Months::parse(period).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn basis(v: i32) -> Result<Basis, Status> {
    match pb::DateBasis::try_from(v) {
        Ok(pb::DateBasis::Unspecified | pb::DateBasis::Petition) => Ok(Basis::Petition),
        Ok(pb::DateBasis::Registration) => Ok(Basis::Registration),
        Ok(pb::DateBasis::Exchange) => Ok(Basis::Exchange),
        Err(_) => Err(Status::invalid_argument(format!(
            "basis: {v} is not a date basis (petition 1, registration 2, exchange 3)"
        ))),
    }
}

impl AnalyticsGrpc {
    /// The figure scope of `organ` for `p`: an organ the tree does not know is the request's
    /// mistake, one outside the caller's reach a refusal.
    fn scope(&self, p: &Principal, organ: &str) -> Result<FigureScope, Status> {
        let organ = organ.trim();
        if !organ.is_empty() && self.figures.shared.reference.tree.get(organ).is_none() {
            return Err(Status::invalid_argument(format!(
                "organ: {} is not an organ of the organisation tree",
                petition_domain::validation::shown(organ)
            )));
        }
        self.figures.shared.access.figures(p, organ).map_err(denied)
    }

    /// The scope of a list of cases: the figure scope, and the policy's rule for reading an
    /// organ's lists (a petition bureau's territory is for its desk, not for its handlers).
    fn case_list_scope(&self, p: &Principal, organ: &str) -> Result<FigureScope, Status> {
        self.figures
            .shared
            .access
            .may_read_cases(p)
            .map_err(denied)?;
        let scope = self.scope(p, organ)?;
        if !scope.organ.is_empty() {
            self.figures
                .shared
                .access
                .may_list_for(p, &scope.organ)
                .map_err(denied)?;
        }
        Ok(scope)
    }

    fn this_month(&self) -> Month {
        Month::of(local_date(self.figures.now()))
    }
}

#[tonic::async_trait]
impl AnalyticsService for AnalyticsGrpc {
    async fn get_situation(
        &self,
        request: Request<pb::SituationRequest>,
    ) -> Result<Response<pb::Situation>, Status> {
        let p = principal(&request)?;
        let r = request.get_ref();
        let m = months(&r.period)?;
        let scope = self.scope(p, &r.organ)?;
        Ok(Response::new(self.figures.situation(m, &scope).await?))
    }

    async fn get_scorecards(
        &self,
        request: Request<pb::ScorecardsRequest>,
    ) -> Result<Response<pb::Scorecards>, Status> {
        let p = principal(&request)?;
        let r = request.get_ref();
        let m = months(&r.period)?;
        let b = basis(r.basis)?;
        let scope = self.scope(p, &r.organ)?;
        Ok(Response::new(self.figures.scorecards(m, b, &scope).await?))
    }

    async fn get_trend(
        &self,
        request: Request<pb::TrendRequest>,
    ) -> Result<Response<pb::Trend>, Status> {
        let p = principal(&request)?;
        let r = request.get_ref();
        let last = if r.last_month.trim().is_empty() {
            self.this_month()
        } else {
            Month::parse(r.last_month.trim()).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "last_month: {:?} is not a month; write YYYY-MM",
                    r.last_month
                ))
            })?
        };
        let n = match r.months {
            0 => 12,
            n @ 12..=36 => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "months: {n} is outside 12..36; a trend shows one to three years"
                )));
            }
        };
        let scope = self.scope(p, &r.organ)?;
        Ok(Response::new(pb::Trend {
            points: self.figures.trend(last, n, &scope).await?,
        }))
    }

    async fn list_backlog(
        &self,
        request: Request<pb::AnalyticsBacklogRequest>,
    ) -> Result<Response<pb::AnalyticsBacklog>, Status> {
        let p = principal(&request)?;
        let r = request.get_ref();
        let limit = match r.limit {
            0 => 100,
            n @ 1..=1000 => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "limit: {n} is more than 1000 cases"
                )));
            }
        };
        let scope = self.case_list_scope(p, &r.organ)?;
        Ok(Response::new(self.figures.backlog(&scope, limit).await?))
    }

    async fn detect_hotspots(
        &self,
        request: Request<pb::HotspotsRequest>,
    ) -> Result<Response<pb::Hotspots>, Status> {
        let p = principal(&request)?;
        let r = request.get_ref();
        let month = if r.month.trim().is_empty() {
            self.this_month().plus(-1)
        } else {
            Month::parse(r.month.trim()).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "month: {:?} is not a month; write YYYY-MM",
                    r.month
                ))
            })?
        };
        let scope = self.scope(p, &r.organ)?;
        Ok(Response::new(pb::Hotspots {
            month: month.to_string(),
            hotspots: self.figures.hotspots(month, &scope).await?,
        }))
    }

    async fn list_clusters(
        &self,
        request: Request<pb::ClustersRequest>,
    ) -> Result<Response<pb::Clusters>, Status> {
        let p = principal(&request)?;
        let r = request.get_ref();
        let window = match r.window_days {
            0 => 90,
            n @ 1..=366 => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "window_days: {n} is more than a year (366)"
                )));
            }
        };
        let min = match r.min_cases {
            0 => 3,
            1 => {
                return Err(Status::invalid_argument(
                    "min_cases: a cluster has at least 2 cases",
                ));
            }
            n => n,
        };
        let scope = self.case_list_scope(p, &r.organ)?;
        Ok(Response::new(pb::Clusters {
            clusters: self.figures.clusters(&scope, window, min).await?,
        }))
    }

    type ExportCasesStream = crate::export::CsvStream;

    async fn export_cases(
        &self,
        request: Request<pb::ExportCasesRequest>,
    ) -> Result<Response<Self::ExportCasesStream>, Status> {
        let p = principal(&request)?;
        let r = request.get_ref();
        let m = months(&r.period)?;
        let b = basis(r.basis)?;
        let scope = self.case_list_scope(p, &r.organ)?;
        Ok(Response::new(crate::export::stream(
            self.figures.store.clone(),
            scope,
            m,
            b,
        )))
    }

    async fn render_report(
        &self,
        request: Request<pb::RenderReportRequest>,
    ) -> Result<Response<pb::RenderedReport>, Status> {
        let p = principal(&request)?;
        let r = request.get_ref();
        let m = months(&r.period)?;
        let scope = self.scope(p, &r.organ)?;
        let html = crate::report::render(&self.figures, m, &scope).await?;
        let organ = if scope.organ.is_empty() {
            "all".to_owned()
        } else {
            scope.organ.clone()
        };
        Ok(Response::new(pb::RenderedReport {
            file_name: format!("situation-{organ}-{m}.html").replace("..", "_to_"),
            content_type: "text/html; charset=utf-8".into(),
            content: html.into_bytes(),
        }))
    }

    async fn record_suggestion(
        &self,
        request: Request<pb::RecordSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = principal(&request)?;
        self.figures
            .shared
            .access
            .may_record_suggestions(p)
            .map_err(denied)?;
        let r = request.get_ref();
        for (field, text) in [
            ("addressee", &r.addressee),
            ("title", &r.title),
            ("text", &r.text),
            ("outcome", &r.outcome),
        ] {
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(Status::invalid_argument(format!(
                    "{field}: at most {MAX_TEXT_CHARS} characters"
                )));
            }
        }
        let adoption = match pb::Adoption::try_from(r.adoption) {
            Ok(pb::Adoption::Unspecified) => None,
            Ok(a) => Some(a),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "adoption: {} is not an adoption (pending 1, adopted 2, partly 3, declined 4)",
                    r.adoption
                )));
            }
        };
        let now = self.figures.now();
        let row = if r.id.trim().is_empty() {
            let made_on = if r.made_on.trim().is_empty() {
                local_date(now)
            } else {
                r.made_on.trim().parse().map_err(|_| {
                    Status::invalid_argument(format!(
                        "made_on: {:?} is not a date; write YYYY-MM-DD",
                        r.made_on
                    ))
                })?
            };
            for (field, text) in [
                ("addressee", &r.addressee),
                ("title", &r.title),
                ("text", &r.text),
            ] {
                if text.trim().is_empty() {
                    return Err(Status::invalid_argument(format!(
                        "{field}: required for a new suggestion (Art. 41: suggestions made to the Party committee and government)"
                    )));
                }
            }
            SuggestionRow {
                id: uuid::Uuid::now_v7().to_string(),
                organ: p.org.clone(),
                made_on,
                addressee: r.addressee.trim().to_owned(),
                title: r.title.trim().to_owned(),
                body: r.text.trim().to_owned(),
                adoption: adoption_text(adoption.unwrap_or(pb::Adoption::Pending)).into(),
                outcome: r.outcome.trim().to_owned(),
                recorded_at: now,
            }
        } else {
            let Some(mut old) = self
                .figures
                .store
                .suggestion(r.id.trim())
                .await
                .map_err(store_status)?
            else {
                return Err(Status::not_found("id: no suggestion with that id"));
            };
            if old.organ != p.org && p.role != petition_auth::Role::Admin {
                return Err(Status::not_found("id: no suggestion with that id"));
            }
            let Some(a) = adoption else {
                return Err(Status::invalid_argument(
                    "adoption: required when answering a suggestion (adopted, partly, declined or pending)",
                ));
            };
            old.adoption = adoption_text(a).into();
            old.outcome = r.outcome.trim().to_owned();
            old.recorded_at = now;
            old
        };
        let audit = petition_audit::Entry {
            at: now,
            actor: p.subject.clone(),
            organ: p.org.clone(),
            action: if r.id.trim().is_empty() {
                "suggestion recorded".into()
            } else {
                "suggestion answered".into()
            },
            case_id: String::new(),
            detail: format!("suggestion {}", row.id),
        };
        self.figures
            .store
            .save_suggestion(&row, &audit)
            .await
            .map_err(store_status)?;
        Ok(Response::new(suggestion_to_pb(&row)))
    }

    async fn list_suggestions(
        &self,
        request: Request<pb::ListSuggestionsRequest>,
    ) -> Result<Response<pb::ListSuggestionsResponse>, Status> {
        let p = principal(&request)?;
        let r = request.get_ref();
        let m = months(&r.period)?;
        let scope = self.scope(p, &r.organ)?;
        let rows = self
            .figures
            .store
            .suggestions(m, scope.organs.as_deref())
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListSuggestionsResponse {
            suggestions: rows.iter().map(suggestion_to_pb).collect(),
        }))
    }

    async fn rebuild(
        &self,
        request: Request<pb::RebuildRequest>,
    ) -> Result<Response<pb::RebuildResponse>, Status> {
        let p = principal(&request)?;
        self.figures
            .shared
            .access
            .may_administer(p)
            .map_err(denied)?;
        let started = std::time::Instant::now();
        let (events, cases) = self
            .figures
            .store
            .rebuild(&self.calendar.current())
            .await
            .map_err(store_status)?;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(events, cases, seconds, "analytics read models rebuilt");
        Ok(Response::new(pb::RebuildResponse {
            events,
            cases,
            seconds,
        }))
    }
}

pub fn adoption_text(a: pb::Adoption) -> &'static str {
    match a {
        pb::Adoption::Adopted => "adopted",
        pb::Adoption::Partly => "partly",
        pb::Adoption::Declined => "declined",
        pb::Adoption::Pending | pb::Adoption::Unspecified => "pending",
    }
}

fn adoption_from_text(s: &str) -> pb::Adoption {
    match s {
        "adopted" => pb::Adoption::Adopted,
        "partly" => pb::Adoption::Partly,
        "declined" => pb::Adoption::Declined,
        _ => pb::Adoption::Pending,
    }
}

pub fn suggestion_to_pb(s: &SuggestionRow) -> pb::Suggestion {
    pb::Suggestion {
        id: s.id.clone(),
        organ: s.organ.clone(),
        made_on: s.made_on.to_string(),
        addressee: s.addressee.clone(),
        title: s.title.clone(),
        text: s.body.clone(),
        adoption: adoption_from_text(&s.adoption) as i32,
        outcome: s.outcome.clone(),
        recorded_at: Some(ts(s.recorded_at)),
    }
}
