//! From rollup sums to the figures of the API: shares, breakdowns, top tens, rates and the
//! hot-spot rule. Pure: the sums come in, the messages go out.

use crate::store::Sum;
use crate::tally::{Dim, Score, level};
use petition_domain::{Level, OrgKind, OrgTree, Taxonomy};
use petition_proto::v1 as pb;
use std::collections::BTreeMap;

/// Names for codes: categories, places, organs, channels.
pub struct Labels<'a> {
    pub tree: &'a OrgTree,
    pub taxonomy: &'a Taxonomy,
}

impl Labels<'_> {
    pub fn category(&self, code: &str) -> String {
        self.taxonomy
            .get(code)
            .map_or_else(|| code.to_owned(), |c| c.name.clone())
    }

    /// A region code by the place's name: the street office or township that covers exactly
    /// it, else the district, city or province whose bureau does.
    pub fn location(&self, code: &str) -> String {
        let of = |kind: OrgKind| {
            self.tree
                .organs()
                .find(|o| o.kind == kind && o.region.as_str() == code)
        };
        if let Some(street) = of(OrgKind::Street) {
            return street.name.clone();
        }
        if let Some(bureau) = of(OrgKind::Bureau) {
            return bureau.name.trim_end_matches("信访局").to_owned();
        }
        code.to_owned()
    }

    pub fn organ(&self, id: &str) -> String {
        self.tree
            .get(id)
            .map_or_else(|| id.to_owned(), |o| o.name.clone())
    }

    pub fn level(&self, organ: &str) -> Option<Level> {
        self.tree.get(organ).map(|o| o.level)
    }

    pub fn is_bureau(&self, organ: &str) -> bool {
        self.tree
            .get(organ)
            .is_some_and(|o| o.kind == OrgKind::Bureau)
    }
}

pub fn channel_label(c: &str) -> &'static str {
    match c {
        "visit" => "来访",
        "letter" => "来信",
        "online" => "网上信访",
        "phone" => "来电",
        "fax" => "传真",
        "upstream" => "上级转送/交办",
        _ => "未知",
    }
}

pub fn level_label(l: &str) -> &'static str {
    match l {
        "national" => "国家级",
        "province" => "省级",
        "city" => "市级",
        "district" => "县区级",
        "street" => "乡镇街道",
        _ => "未知",
    }
}

pub fn sex_label(s: &str) -> &'static str {
    match s {
        "male" => "男",
        "female" => "女",
        _ => "未知",
    }
}

/// Counts per key, summed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pair {
    pub cases: u64,
    pub persons: u64,
}

pub fn add(map: &mut BTreeMap<String, Pair>, key: &str, s: &Sum) {
    let e = map.entry(key.to_owned()).or_default();
    e.cases = e.cases.saturating_add_signed(s.cases);
    e.persons = e.persons.saturating_add_signed(s.persons);
}

/// Shares of `total`, largest first (ties by key), at most `top` of them.
pub fn shares(
    map: BTreeMap<String, Pair>,
    total: u64,
    label: impl Fn(&str) -> String,
    top: Option<usize>,
) -> Vec<pb::Share> {
    let mut v: Vec<(String, Pair)> = map.into_iter().filter(|(_, p)| p.cases > 0).collect();
    v.sort_by(|a, b| b.1.cases.cmp(&a.1.cases).then(a.0.cmp(&b.0)));
    if let Some(n) = top {
        v.truncate(n);
    }
    v.into_iter()
        .map(|(key, p)| pb::Share {
            label: label(&key),
            key,
            cases: p.cases,
            persons: p.persons,
            share: ratio(p.cases, total).unwrap_or(0.0),
        })
        .collect()
}

pub fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// The breakdowns of one period's sums (grouped by dim, value, received_by and organ).
pub struct Breakdown {
    pub cases: u64,
    pub persons: u64,
    pub online: u64,
    pub leapfrog: u64,
    pub group: u64,
    pub repeat: u64,
    pub by: BTreeMap<Dim, BTreeMap<String, Pair>>,
    pub l1: BTreeMap<String, Pair>,
    pub l2: BTreeMap<String, Pair>,
    pub l3: BTreeMap<String, Pair>,
    pub level: BTreeMap<String, Pair>,
    pub organ: BTreeMap<String, Pair>,
}

pub fn breakdown(sums: &[Sum], labels: &Labels<'_>) -> Breakdown {
    let mut b = Breakdown {
        cases: 0,
        persons: 0,
        online: 0,
        leapfrog: 0,
        group: 0,
        repeat: 0,
        by: BTreeMap::new(),
        l1: BTreeMap::new(),
        l2: BTreeMap::new(),
        l3: BTreeMap::new(),
        level: BTreeMap::new(),
        organ: BTreeMap::new(),
    };
    for s in sums {
        add(b.by.entry(s.dim).or_default(), &s.value, s);
        match s.dim {
            Dim::All => {
                b.cases = b.cases.saturating_add_signed(s.cases);
                b.persons = b.persons.saturating_add_signed(s.persons);
                let lvl = labels.level(&s.received_by).map_or("", |l| l.as_str());
                add(&mut b.level, lvl, s);
                if !s.organ.is_empty() {
                    add(&mut b.organ, &s.organ, s);
                }
            }
            Dim::Category => {
                for (n, map) in [(1, &mut b.l1), (2, &mut b.l2), (3, &mut b.l3)] {
                    if let Some(code) = level(&s.value, n) {
                        add(map, code, s);
                    }
                }
            }
            Dim::Channel if s.value == "online" => {
                b.online = b.online.saturating_add_signed(s.cases)
            }
            Dim::Flag => {
                let slot = match s.value.as_str() {
                    "leapfrog" => &mut b.leapfrog,
                    "group" => &mut b.group,
                    _ => &mut b.repeat,
                };
                *slot = slot.saturating_add_signed(s.cases);
            }
            _ => {}
        }
    }
    b
}

impl Breakdown {
    pub fn count(&self, dim: Dim, value: &str) -> u64 {
        self.by
            .get(&dim)
            .and_then(|m| m.get(value))
            .map_or(0, |p| p.cases)
    }
}

pub fn figure(count: u64, previous: u64, year_ago: u64) -> Option<pb::Figure> {
    Some(pb::Figure {
        count,
        previous,
        year_ago,
    })
}

pub fn rate(n: i64, d: i64) -> Option<pb::Rate> {
    let (n, d) = (n.max(0) as u64, d.max(0) as u64);
    Some(pb::Rate {
        numerator: n,
        denominator: d,
        value: ratio(n, d),
    })
}

pub fn scorecard(organ: &str, bureau: bool, s: &Score, labels: &Labels<'_>) -> pb::Scorecard {
    pb::Scorecard {
        organ: organ.to_owned(),
        organ_name: labels.organ(organ),
        bureau,
        cases: s.cases.max(0) as u64,
        timely_acceptance: rate(s.timely_num, s.timely_den),
        on_time_completion: rate(s.on_time_num, s.on_time_den),
        rated: rate(s.rated, s.answered),
        satisfied: rate(s.satisfied, s.rated),
        repeat: rate(s.repeats, s.cases),
        leader_resolution: rate(s.leader_resolved, s.leader),
    }
}

/// The documented hot-spot rule (analytics.proto, `Hotspot`): the numbers behind a cell, and
/// whether it is hot.
#[derive(Debug, Clone, PartialEq)]
pub struct Heat {
    pub mean: f64,
    pub sigma: f64,
    pub z: f64,
    pub hot: bool,
}

pub const HOT_MIN_CASES: u64 = 5;
pub const HOT_Z: f64 = 3.0;

pub fn heat(cases: u64, history: &[u64]) -> Heat {
    let n = history.len().max(1) as f64;
    let mean = history.iter().sum::<u64>() as f64 / n;
    let var = history
        .iter()
        .map(|h| (*h as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let sigma = var.sqrt().max(mean.sqrt()).max(1.0);
    let z = (cases as f64 - mean) / sigma;
    Heat {
        mean,
        sigma,
        z,
        hot: cases >= HOT_MIN_CASES && z >= HOT_Z,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_hot_only_well_above_its_own_history() {
        // steady at 4 a month: 12 is z = (12 - 4) / 2 = 4, hot
        let steady = [4u64; 12];
        let h = heat(12, &steady);
        assert_eq!((h.mean, h.sigma), (4.0, 2.0));
        assert!(h.hot && (h.z - 4.0).abs() < 1e-9);
        // 10 is z = 3 exactly: hot at the edge; 9 is not
        assert!(heat(10, &steady).hot);
        assert!(!heat(9, &steady).hot);
        // a new cell with no history needs at least 5 cases
        assert!(!heat(4, &[0; 12]).hot);
        assert!(heat(5, &[0; 12]).hot);
        // a noisy history widens sigma past the Poisson floor
        let noisy = [0, 20, 0, 20, 0, 20, 0, 20, 0, 20, 0, 20];
        let h = heat(30, &noisy);
        assert_eq!(h.sigma, 10.0);
        assert!(!h.hot);
    }
}
