//! Related open cases a leader could take on together (成批化解): the same matter at the same
//! place within a window, or accusations against the same organ. Pure.

use crate::fact::{Derived, Fact};
use petition_grpc::convert::ts;
use petition_proto::v1 as pb;
use std::collections::BTreeMap;

/// Clusters of at least `min` cases, the largest first. A matter cluster is a run of cases of
/// one level-3 category and problem location in which each case came at most `window_days`
/// after the first of the run.
pub fn clusters(open: &[(Fact, Derived)], window_days: u32, min: u32) -> Vec<pb::Cluster> {
    let window = chrono::Duration::days(i64::from(window_days));
    let mut matters: BTreeMap<(&str, &str), Vec<&Fact>> = BTreeMap::new();
    let mut accused: BTreeMap<&str, Vec<&Fact>> = BTreeMap::new();
    for (f, _) in open {
        let Some(r) = f.registered() else { continue };
        matters
            .entry((r.category.as_str(), r.location.as_str()))
            .or_default()
            .push(f);
        if let Some(a) = f.accused() {
            accused.entry(a).or_default().push(f);
        }
    }
    let received = |f: &Fact| f.registered().map(|r| r.received_at).unwrap_or_default();
    let cluster = |kind: pb::ClusterKind, run: &[&Fact], cat: &str, loc: &str, acc: &str| {
        let mut organs: Vec<String> = run
            .iter()
            .filter_map(|f| f.organ())
            .map(str::to_owned)
            .collect();
        organs.sort();
        organs.dedup();
        pb::Cluster {
            kind: kind as i32,
            category: cat.to_owned(),
            location: loc.to_owned(),
            accused_organ: acc.to_owned(),
            first: run.iter().map(|f| received(f)).min().map(ts),
            last: run.iter().map(|f| received(f)).max().map(ts),
            case_numbers: run
                .iter()
                .filter_map(|f| f.registered().map(|r| r.case_number.clone()))
                .collect(),
            organs,
        }
    };
    let mut out = Vec::new();
    for ((cat, loc), mut cases) in matters {
        cases.sort_by_key(|f| (received(f), f.case_id.clone()));
        let mut start = 0;
        while start < cases.len() {
            let end = cases[start..]
                .iter()
                .position(|f| received(f) - received(cases[start]) > window)
                .map_or(cases.len(), |i| start + i);
            if (end - start) as u32 >= min {
                out.push(cluster(
                    pb::ClusterKind::Matter,
                    &cases[start..end],
                    cat,
                    loc,
                    "",
                ));
            }
            start = end;
        }
    }
    for (acc, mut cases) in accused {
        if cases.len() as u32 >= min {
            cases.sort_by_key(|f| (received(f), f.case_id.clone()));
            out.push(cluster(pb::ClusterKind::Accused, &cases, "", "", acc));
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.case_numbers.len()));
    out
}
