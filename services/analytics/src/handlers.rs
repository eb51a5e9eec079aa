//! `petition.v1.AnalyticsService`: every call scoped by the access policy's figure scope,
//! every answer read from the rollups (figures) or the case facts (lists of cases).

use crate::figures::{self, Labels};
use crate::period::{Month, Months};
use crate::store::{AnalyticsStore, StoreError, SuggestionRow, Sum};
use crate::tally::{Basis, Dim, Role, level};
use chrono::{DateTime, Utc};
use pb::analytics_service_server::AnalyticsService;
use petition_auth::{FigureScope, Principal, principal};
use petition_domain::calendar::local_date;
use petition_grpc::convert::ts;
use petition_grpc::denied;
use petition_grpc::reference::LiveCalendar;
use petition_host::Shared;
use petition_proto::v1 as pb;
use std::collections::BTreeMap;
use std::pin::Pin;
use tonic::{Request, Response, Status};

const MAX_TEXT_CHARS: usize = 4_000;

#[derive(Clone)]
pub struct AnalyticsGrpc {
    pub shared: Shared,
    pub store: AnalyticsStore,
    pub calendar: LiveCalendar,
    /// a case repeated this many times is a backlog case (积案)
    pub backlog_repeats: u32,
}

pub fn store_status(e: StoreError) -> Status {
    if let StoreError::Database(db) = &e
        && petition_storage::is_unavailable(db)
    {
        return Status::unavailable("the analytics database cannot be reached; retry later");
    }
    tracing::error!(error = %e, "analytics store failed");
    Status::internal("storage failure; retry later")
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
    fn labels(&self) -> Labels<'_> {
        Labels {
            tree: &self.shared.reference.tree,
            taxonomy: &self.shared.reference.taxonomy,
        }
    }

    /// The figure scope of `organ` for `p`: an organ the tree does not know is the request's
    /// mistake, one outside the caller's reach a refusal.
    fn scope(&self, p: &Principal, organ: &str) -> Result<FigureScope, Status> {
        let organ = organ.trim();
        if !organ.is_empty() && self.shared.reference.tree.get(organ).is_none() {
            return Err(Status::invalid_argument(format!(
                "organ: {} is not an organ of the organisation tree",
                petition_domain::validation::shown(organ)
            )));
        }
        self.shared.access.figures(p, organ).map_err(denied)
    }

    /// The scope of a list of cases: the figure scope, and the policy's rule for reading an
    /// organ's lists (a petition bureau's territory is for its desk, not for its handlers).
    fn case_list_scope(&self, p: &Principal, organ: &str) -> Result<FigureScope, Status> {
        self.shared.access.may_read_cases(p).map_err(denied)?;
        let scope = self.scope(p, organ)?;
        if !scope.organ.is_empty() {
            self.shared
                .access
                .may_list_for(p, &scope.organ)
                .map_err(denied)?;
        }
        Ok(scope)
    }

    fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    fn this_month(&self) -> Month {
        Month::of(local_date(self.now()))
    }

    /// The situation of `m` within `scope`: the pure part of `GetSituation` and the report.
    pub async fn situation(&self, m: Months, scope: &FigureScope) -> Result<pb::Situation, Status> {
        let labels = self.labels();
        let all_dims = Dim::ALL;
        let sums = self
            .store
            .sums(m, scope, all_dims, &["received_by", "organ"])
            .await
            .map_err(store_status)?;
        let now = figures::breakdown(&sums, &labels);
        let few = [Dim::All, Dim::Channel, Dim::Flag];
        let prev = figures::breakdown(
            &self
                .store
                .sums(m.previous(), scope, &few, &[])
                .await
                .map_err(store_status)?,
            &labels,
        );
        let ago = figures::breakdown(
            &self
                .store
                .sums(m.year_ago(), scope, &few, &[])
                .await
                .map_err(store_status)?,
            &labels,
        );
        let total = now.cases;
        let dim = |d: Dim| now.by.get(&d).cloned().unwrap_or_default();
        let notice = |v: &str| now.count(Dim::Notice, v);
        Ok(pb::Situation {
            period: m.to_string(),
            from_month: m.first.to_string(),
            to_month: m.last.to_string(),
            organ: scope.organ.clone(),
            cases: figures::figure(now.cases, prev.cases, ago.cases),
            persons: figures::figure(now.persons, prev.persons, ago.persons),
            online: figures::figure(now.online, prev.online, ago.online),
            online_share: figures::ratio(now.online, total).unwrap_or(0.0),
            leapfrog: figures::figure(now.leapfrog, prev.leapfrog, ago.leapfrog),
            group: figures::figure(now.group, prev.group, ago.group),
            repeat: figures::figure(now.repeat, prev.repeat, ago.repeat),
            by_channel: figures::shares(
                dim(Dim::Channel),
                total,
                |c| figures::channel_label(c).to_owned(),
                None,
            ),
            by_category_l1: figures::shares(now.l1.clone(), total, |c| labels.category(c), None),
            by_category_l2: figures::shares(now.l2.clone(), total, |c| labels.category(c), None),
            by_category_l3: figures::shares(now.l3.clone(), total, |c| labels.category(c), None),
            by_location: figures::shares(dim(Dim::Location), total, |c| labels.location(c), None),
            by_level: figures::shares(
                now.level.clone(),
                total,
                |l| figures::level_label(l).to_owned(),
                None,
            ),
            by_age_band: figures::shares(
                dim(Dim::AgeBand),
                total,
                |b| {
                    if b.is_empty() {
                        "未知".into()
                    } else {
                        format!("{b}岁")
                    }
                },
                None,
            ),
            by_sex: figures::shares(
                dim(Dim::Sex),
                total,
                |s| figures::sex_label(s).to_owned(),
                None,
            ),
            hot_issues: figures::shares(
                dim(Dim::Category),
                total,
                |c| labels.category(c),
                Some(10),
            ),
            most_complained: figures::shares(
                now.organ.clone(),
                total,
                |o| labels.organ(o),
                Some(10),
            ),
            forwarded: now.count(Dim::Route, "forward"),
            assigned: now.count(Dim::Route, "assign"),
            diverted: now.count(Dim::Route, "diverted"),
            linked: now.count(Dim::Route, "linked"),
            supervised: notice("supervised"),
            urged: notice("urged"),
        })
    }

    pub async fn scorecards(
        &self,
        m: Months,
        b: Basis,
        scope: &FigureScope,
    ) -> Result<pb::Scorecards, Status> {
        let labels = self.labels();
        let scores = self
            .store
            .scores(m, b, scope, self.now())
            .await
            .map_err(store_status)?;
        let in_scope = |o: &str| {
            scope
                .organs
                .as_ref()
                .is_none_or(|v| v.iter().any(|x| x == o))
        };
        let mut bureaux = Vec::new();
        let mut organs = Vec::new();
        let mut keys: Vec<&(Role, String)> = scores.keys().collect();
        keys.sort();
        for k in keys {
            let (role, organ) = k;
            if !in_scope(organ) {
                continue;
            }
            let s = &scores[k];
            match role {
                Role::Registrar if labels.is_bureau(organ) => {
                    bureaux.push(figures::scorecard(organ, true, s, &labels))
                }
                Role::Registrar => {}
                Role::Responsible => organs.push(figures::scorecard(organ, false, s, &labels)),
            }
        }
        Ok(pb::Scorecards {
            period: m.to_string(),
            basis: match b {
                Basis::Petition => pb::DateBasis::Petition,
                Basis::Registration => pb::DateBasis::Registration,
                Basis::Exchange => pb::DateBasis::Exchange,
            } as i32,
            bureaux,
            organs,
        })
    }

    pub async fn trend(
        &self,
        last: Month,
        n: u32,
        scope: &FigureScope,
    ) -> Result<Vec<pb::TrendPoint>, Status> {
        let m = Months {
            first: last.plus(1 - n as i32),
            last,
        };
        let sums = self
            .store
            .sums(m, scope, &[Dim::All, Dim::Channel, Dim::Flag], &["month"])
            .await
            .map_err(store_status)?;
        let mut points: BTreeMap<i64, pb::TrendPoint> = m
            .iter()
            .map(|mo| {
                (
                    mo.key(),
                    pb::TrendPoint {
                        month: mo.to_string(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        for s in &sums {
            let Some(p) = points.get_mut(&s.month) else {
                continue;
            };
            let n = s.cases.max(0) as u64;
            match (s.dim, s.value.as_str()) {
                (Dim::All, _) => {
                    p.cases += n;
                    p.persons += s.persons.max(0) as u64;
                }
                (Dim::Channel, "online") => p.online += n,
                (Dim::Flag, "leapfrog") => p.leapfrog += n,
                (Dim::Flag, "group") => p.group += n,
                (Dim::Flag, "repeat") => p.repeat += n,
                _ => {}
            }
        }
        Ok(points.into_values().collect())
    }

    pub async fn hotspots(
        &self,
        month: Month,
        scope: &FigureScope,
    ) -> Result<Vec<pb::Hotspot>, Status> {
        let labels = self.labels();
        let m = Months {
            first: month.plus(-12),
            last: month,
        };
        let sums: Vec<Sum> = self
            .store
            .sums(m, scope, &[Dim::Cell], &["month"])
            .await
            .map_err(store_status)?;
        let mut cells: BTreeMap<String, [u64; 13]> = BTreeMap::new();
        for s in sums {
            let Some(mo) = Month::from_key(s.month) else {
                continue;
            };
            if let Ok(i) = usize::try_from(mo.since(m.first))
                && i < 13
            {
                let slot = &mut cells.entry(s.value).or_default()[i];
                *slot = slot.saturating_add_signed(s.cases);
            }
        }
        let mut out = Vec::new();
        for (cell, counts) in cells {
            let (history, now) = counts.split_at(12);
            let h = figures::heat(now[0], history);
            if !h.hot {
                continue;
            }
            let (category, location) = cell.split_once('|').unwrap_or((&cell, ""));
            out.push(pb::Hotspot {
                category: category.to_owned(),
                category_label: labels.category(category),
                location: location.to_owned(),
                location_label: labels.location(location),
                cases: now[0],
                mean: h.mean,
                sigma: h.sigma,
                z: h.z,
                history: history.to_vec(),
            });
        }
        out.sort_by(|a, b| b.z.total_cmp(&a.z));
        Ok(out)
    }

    pub async fn backlog(
        &self,
        scope: &FigureScope,
        limit: u32,
    ) -> Result<pb::AnalyticsBacklog, Status> {
        let labels = self.labels();
        let now = self.now();
        let b = self
            .store
            .backlog(
                scope,
                now,
                i64::from(self.backlog_repeats),
                i64::from(limit),
            )
            .await
            .map_err(store_status)?;
        let mut by_organ: Vec<pb::OrganCount> = b
            .by_organ
            .into_iter()
            .map(|(organ, count)| pb::OrganCount {
                organ_name: labels.organ(&organ),
                organ,
                count: count.max(0) as u64,
            })
            .collect();
        by_organ.sort_by(|a, b| b.count.cmp(&a.count).then(a.organ.cmp(&b.organ)));
        let cases = b
            .cases
            .iter()
            .filter_map(|(f, repeats)| {
                let reg = f.registered()?;
                Some(pb::BacklogCase {
                    case_id: f.case_id.clone(),
                    case_number: reg.case_number.clone(),
                    organ: f.organ().unwrap_or_default().to_owned(),
                    category: reg.category.clone(),
                    problem_location: reg.location.clone(),
                    received_at: Some(ts(reg.received_at)),
                    handling_due: f.handling_due.map(ts),
                    overdue: f.answered_at.is_none() && f.handling_due.is_some_and(|d| d < now),
                    repeats: (*repeats).max(0) as u32,
                    flagged: f.backlog_flag,
                    leader: f.leader_at.is_some(),
                })
            })
            .collect();
        Ok(pb::AnalyticsBacklog {
            total: b.total.max(0) as u64,
            by_organ,
            cases,
        })
    }

    pub async fn clusters(
        &self,
        scope: &FigureScope,
        window_days: u32,
        min_cases: u32,
    ) -> Result<Vec<pb::Cluster>, Status> {
        let open = self
            .store
            .facts_where(
                scope,
                |q| {
                    q.push(" AND is_open = 1");
                },
                None,
            )
            .await
            .map_err(store_status)?;
        Ok(crate::cluster::clusters(&open, window_days, min_cases))
    }
}

pub type CsvStream = Pin<Box<dyn futures::Stream<Item = Result<pb::CsvChunk, Status>> + Send>>;

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
        Ok(Response::new(self.situation(m, &scope).await?))
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
        Ok(Response::new(self.scorecards(m, b, &scope).await?))
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
            points: self.trend(last, n, &scope).await?,
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
        Ok(Response::new(self.backlog(&scope, limit).await?))
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
            hotspots: self.hotspots(month, &scope).await?,
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
            clusters: self.clusters(&scope, window, min).await?,
        }))
    }

    type ExportCasesStream = CsvStream;

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
            self.store.clone(),
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
        let html = crate::report::render(self, m, &scope).await?;
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
        self.shared
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
        let now = self.now();
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
        self.store
            .save_suggestion(&row)
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
        self.shared.access.may_administer(p).map_err(denied)?;
        let started = std::time::Instant::now();
        let (events, cases) = self
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

/// How the category levels of a code read ("01.04" → "城乡建设 / 房屋征收与补偿").
pub fn category_path(labels: &Labels<'_>, code: &str) -> String {
    (1..=3)
        .filter_map(|n| level(code, n))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|c| labels.category(c))
        .collect::<Vec<_>>()
        .join(" / ")
}
