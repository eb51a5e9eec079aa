//! The read models' rollups, as what one case contributes to them.
//!
//! A case adds one to a handful of monthly cells: its month × registering organ × responsible
//! organ × accused organ, once per dimension (channel, category, location, …), and one row per
//! date basis and role to the scorecards. When an event changes a case, the rollups change by
//! what the case contributes now minus what it contributed before; a batch of events sums those
//! differences and writes each touched cell once. The rollups are therefore always the sum of
//! the contributions of the cases as they stand, which a rebuild computes afresh.

use crate::fact::{Derived, Fact, Mode, Outcome};
use crate::period::Month;
use std::collections::HashMap;

petition_domain::text_enum! {
    /// What a tally row counts by.
    pub enum Dim {
        /// every case once
        All = "all",
        Channel = "channel",
        /// the case's category code as registered (up to three levels)
        Category = "category",
        /// problem location (region code)
        Location = "location",
        /// level-2 category × location, for hot spots
        Cell = "cell",
        AgeBand = "age_band",
        Sex = "sex",
        /// leapfrog, group, repeat
        Flag = "flag",
        /// forward, assign, diverted, linked
        Route = "route",
        /// supervised (督办), urged (催办 and what follows it)
        Notice = "notice",
    }
}

petition_domain::text_enum! {
    /// Which date of a case puts it into a month (DOMAIN.md §8).
    pub enum Basis {
        /// 信访日期
        Petition = "petition",
        /// 登记日期
        Registration = "registration",
        /// 交换日期: first routed to an organ
        Exchange = "exchange",
    }
}

petition_domain::text_enum! {
    /// Whose scorecard a row counts for.
    pub enum Role {
        /// the organ that registered the case (a bureau's card)
        Registrar = "registrar",
        /// the responsible organ (责任单位)
        Responsible = "responsible",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TallyKey {
    pub month: i64,
    pub received_by: String,
    /// the responsible organ; empty while there is none
    pub organ: String,
    /// empty unless an accusation
    pub accused: String,
    pub dim: Dim,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub cases: i64,
    pub persons: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScoreKey {
    pub basis: Basis,
    pub month: i64,
    pub role: Role,
    pub organ: String,
    pub accused: String,
}

/// The counters behind the six rates of a scorecard (their definitions are in
/// analytics.proto's `Scorecard`). The parts that grow with time alone — a case that simply
/// passes its limit — are added when asked, from the cases themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Score {
    pub cases: i64,
    pub timely_num: i64,
    pub timely_den: i64,
    pub on_time_num: i64,
    pub on_time_den: i64,
    pub answered: i64,
    pub rated: i64,
    pub satisfied: i64,
    pub repeats: i64,
    pub leader: i64,
    pub leader_resolved: i64,
}

impl Score {
    pub const COLUMNS: [&'static str; 11] = [
        "cases",
        "timely_num",
        "timely_den",
        "on_time_num",
        "on_time_den",
        "answered",
        "rated",
        "satisfied",
        "repeats",
        "leader",
        "leader_resolved",
    ];

    pub fn values(&self) -> [i64; 11] {
        [
            self.cases,
            self.timely_num,
            self.timely_den,
            self.on_time_num,
            self.on_time_den,
            self.answered,
            self.rated,
            self.satisfied,
            self.repeats,
            self.leader,
            self.leader_resolved,
        ]
    }

    pub fn from_values(v: [i64; 11]) -> Self {
        let [
            cases,
            timely_num,
            timely_den,
            on_time_num,
            on_time_den,
            answered,
            rated,
            satisfied,
            repeats,
            leader,
            leader_resolved,
        ] = v;
        Score {
            cases,
            timely_num,
            timely_den,
            on_time_num,
            on_time_den,
            answered,
            rated,
            satisfied,
            repeats,
            leader,
            leader_resolved,
        }
    }

    pub fn add(&mut self, o: &Score, sign: i64) {
        let mut v = self.values();
        for (a, b) in v.iter_mut().zip(o.values()) {
            *a += sign * b;
        }
        *self = Score::from_values(v);
    }

    pub fn is_zero(&self) -> bool {
        self.values().iter().all(|v| *v == 0)
    }
}

/// Everything one case adds to the rollups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contribution {
    pub tallies: Vec<(TallyKey, Counts)>,
    pub scores: Vec<(ScoreKey, Score)>,
}

/// The level-2 code of a category code (`01.04.02` → `01.04`), or the code itself when shorter.
pub fn level(code: &str, level: usize) -> Option<&str> {
    let mut ends = code.match_indices('.').map(|(i, _)| i);
    let parts = code.split('.').count();
    if parts < level {
        return None;
    }
    match ends.nth(level - 1) {
        Some(i) => Some(&code[..i]),
        None => Some(code),
    }
}

pub fn contribution(f: &Fact, d: &Derived) -> Contribution {
    let mut c = Contribution::default();
    let Some(reg) = f.registered() else {
        return c;
    };
    let organ = f.organ().unwrap_or_default().to_owned();
    let accused = f.accused_organ().unwrap_or_default().to_owned();
    if let Some(month) = d.received_month {
        let counts = Counts {
            cases: 1,
            persons: i64::from(f.persons()),
        };
        let mut add = |dim: Dim, value: &str| {
            c.tallies.push((
                TallyKey {
                    month: month.key(),
                    received_by: reg.received_by.clone(),
                    organ: organ.clone(),
                    accused: accused.clone(),
                    dim,
                    value: value.to_owned(),
                },
                counts,
            ));
        };
        add(Dim::All, "");
        add(Dim::Channel, reg.channel.as_str());
        add(Dim::Category, &reg.category);
        add(Dim::Location, &reg.location);
        if let Some(l2) = level(&reg.category, 2) {
            add(Dim::Cell, &format!("{l2}|{}", reg.location));
        }
        add(Dim::AgeBand, reg.age_band.as_deref().unwrap_or(""));
        add(Dim::Sex, reg.sex.map_or("", |s| s.as_str()));
        for (on, name) in [
            (reg.leapfrog, "leapfrog"),
            (reg.group, "group"),
            (reg.repeat, "repeat"),
        ] {
            if on {
                add(Dim::Flag, name);
            }
        }
        let route = f.route.value.as_ref();
        let how = match (route.map(|r| r.outcome), f.routed_at.is_some()) {
            (Some(Outcome::Diverted), _) => Some("diverted"),
            (Some(Outcome::Linked), _) => Some("linked"),
            (_, true) => match route.and_then(|r| r.mode) {
                Some(Mode::Assign) => Some("assign"),
                _ => Some("forward"),
            },
            _ => None,
        };
        if let Some(how) = how {
            add(Dim::Route, how);
        }
        if f.supervised > 0 {
            add(Dim::Notice, "supervised");
        }
        if f.urged > 0 {
            add(Dim::Notice, "urged");
        }
    }
    for basis in Basis::ALL {
        let Some(month) = month_on(d, *basis) else {
            continue;
        };
        let key = |role: Role, organ: &str| ScoreKey {
            basis: *basis,
            month: month.key(),
            role,
            organ: organ.to_owned(),
            accused: accused.clone(),
        };
        c.scores.push((
            key(Role::Registrar, &reg.received_by),
            score(f, d, Role::Registrar),
        ));
        if !organ.is_empty() {
            c.scores.push((
                key(Role::Responsible, &organ),
                score(f, d, Role::Responsible),
            ));
        }
    }
    c
}

fn score(f: &Fact, d: &Derived, role: Role) -> Score {
    let reg = f.registered().expect("scored cases are registered");
    let b = i64::from;
    let (timely_den, timely_num) = match role {
        Role::Registrar => (
            f.routed_at.is_some(),
            f.routed_at
                .zip(d.route_due)
                .is_some_and(|(r, due)| r <= due),
        ),
        Role::Responsible => (
            f.accepted_at.is_some(),
            f.accepted_at
                .zip(d.accept_due)
                .is_some_and(|(a, due)| a <= due),
        ),
    };
    let answered = f.answered_at.is_some();
    let on_time = f
        .answered_at
        .is_some_and(|a| f.handling_due.is_none_or(|due| a <= due));
    let (bureau, organ) = f.rating.value.unwrap_or_default();
    let rating = match role {
        Role::Registrar => bureau,
        Role::Responsible => organ,
    };
    let leader = f.leader_at.is_some();
    Score {
        cases: 1,
        timely_num: b(timely_num),
        timely_den: b(timely_den),
        on_time_num: b(on_time),
        on_time_den: b(answered),
        answered: b(answered),
        rated: b(answered && rating.is_some()),
        satisfied: b(answered && rating.is_some_and(|r| r.is_satisfied())),
        repeats: b(reg.repeat),
        leader: b(leader),
        leader_resolved: b(leader && f.resolved_at.is_some()),
    }
}

/// The tally and score cells a batch changes, each with its difference.
pub type Cells = (Vec<(TallyKey, Counts)>, Vec<(ScoreKey, Score)>);

/// The differences a batch makes to the rollups, summed per cell.
#[derive(Debug, Default)]
pub struct Deltas {
    pub tallies: HashMap<TallyKey, Counts>,
    pub scores: HashMap<ScoreKey, Score>,
}

impl Deltas {
    pub fn add(&mut self, c: &Contribution, sign: i64) {
        for (k, v) in &c.tallies {
            let e = self.tallies.entry(k.clone()).or_default();
            e.cases += sign * v.cases;
            e.persons += sign * v.persons;
        }
        for (k, v) in &c.scores {
            self.scores.entry(k.clone()).or_default().add(v, sign);
        }
    }

    /// The cells that change, in key order (so that concurrent writers lock rows in one order).
    pub fn into_sorted(self) -> Cells {
        let mut t: Vec<_> = self
            .tallies
            .into_iter()
            .filter(|(_, v)| v.cases != 0 || v.persons != 0)
            .collect();
        t.sort_by(|a, b| a.0.cmp(&b.0));
        let mut s: Vec<_> = self
            .scores
            .into_iter()
            .filter(|(_, v)| !v.is_zero())
            .collect();
        s.sort_by(|a, b| a.0.cmp(&b.0));
        (t, s)
    }
}

/// The month a case falls in on `basis`.
pub fn month_on(d: &Derived, basis: Basis) -> Option<Month> {
    match basis {
        Basis::Petition => d.received_month,
        Basis::Registration => d.registered_month,
        Basis::Exchange => d.routed_month,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_levels() {
        assert_eq!(level("01.04.02", 1), Some("01"));
        assert_eq!(level("01.04.02", 2), Some("01.04"));
        assert_eq!(level("01.04.02", 3), Some("01.04.02"));
        assert_eq!(level("01.04", 3), None);
        assert_eq!(level("01", 1), Some("01"));
    }
}
