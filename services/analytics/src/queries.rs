//! The figures themselves: situation, scorecards, trend, hot spots, backlog and clusters for a
//! period and a scope the caller was already granted. The gRPC handlers and the report both
//! read them here.

use crate::figures::{self, Labels};
use crate::period::{Month, Months};
use crate::store::{AnalyticsStore, StoreError, Sum};
use crate::tally::{Basis, Dim, Role};
use chrono::{DateTime, Utc};
use petition_auth::FigureScope;
use petition_grpc::convert::ts;
use petition_host::Shared;
use petition_proto::v1 as pb;
use std::collections::BTreeMap;
use tonic::Status;

#[derive(Clone)]
pub struct Figures {
    pub shared: Shared,
    pub store: AnalyticsStore,
    /// a case repeated this many times is a backlog case (积案)
    pub backlog_repeats: u32,
}

/// The status for a failed store call: unavailable when the database cannot be reached, the
/// service's own failure otherwise (logged, never described to the caller).
pub fn store_status(e: StoreError) -> Status {
    if let StoreError::Database(db) = &e
        && petition_storage::is_unavailable(db)
    {
        return Status::unavailable("the analytics database cannot be reached; retry later");
    }
    tracing::error!(error = %e, "analytics store failed");
    Status::internal("storage failure; retry later")
}

impl Figures {
    pub fn labels(&self) -> Labels<'_> {
        Labels {
            tree: &self.shared.reference.tree,
            taxonomy: &self.shared.reference.taxonomy,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
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
