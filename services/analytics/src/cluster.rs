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
        if let Some(a) = f.accused_organ() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::Registration;
    use chrono::{DateTime, TimeZone, Utc};
    use petition_domain::Channel;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap() + chrono::Duration::days(i64::from(d))
    }

    fn case(
        n: u32,
        category: &str,
        location: &str,
        at: DateTime<Utc>,
        accused: Option<&str>,
    ) -> (Fact, Derived) {
        let mut f = Fact::new(&format!("c{n:03}"));
        f.registration = Some(Registration {
            case_number: format!("140213-2026-{n:06}"),
            channel: Channel::Visit,
            received_by: "pingcheng.bureau".into(),
            received_at: at,
            registered_at: at,
            category: category.into(),
            type_of_matter: None,
            location: location.into(),
            people_present: 1,
            petitioner_count: 1,
            age_band: None,
            sex: None,
            group: false,
            leapfrog: false,
            repeat: false,
            repeat_of: None,
            imported: false,
        });
        f.accused_organ = accused.map(str::to_owned);
        let d = Derived {
            received_month: None,
            registered_month: None,
            routed_month: None,
            route_due: None,
            accept_due: None,
        };
        (f, d)
    }

    #[test]
    fn a_matter_at_a_place_within_the_window_is_one_cluster() {
        let open = vec![
            case(1, "01.04", "140213002", day(0), None),
            case(2, "01.04", "140213002", day(30), None),
            case(3, "01.04", "140213002", day(90), None),
            // day 91 is past the window of the run that began on day 0: a new run of one
            case(4, "01.04", "140213002", day(91), None),
            // the same matter elsewhere, and another matter here
            case(5, "01.04", "140213001", day(10), None),
            case(6, "01.01", "140213002", day(10), None),
            // accusations against one organ, wherever they come from
            case(7, "09.01", "140213001", day(5), Some("pingcheng.housing")),
            case(8, "09.01", "140213003", day(200), Some("pingcheng.housing")),
            case(9, "09.01", "140213002", day(300), Some("pingcheng.housing")),
        ];
        let c = clusters(&open, 90, 3);
        assert_eq!(c.len(), 2, "{c:?}");
        let matter = c
            .iter()
            .find(|c| c.kind == pb::ClusterKind::Matter as i32)
            .unwrap();
        assert_eq!(
            matter.case_numbers,
            [
                "140213-2026-000001",
                "140213-2026-000002",
                "140213-2026-000003"
            ]
        );
        assert_eq!(
            (matter.category.as_str(), matter.location.as_str()),
            ("01.04", "140213002")
        );
        let accused = c
            .iter()
            .find(|c| c.kind == pb::ClusterKind::Accused as i32)
            .unwrap();
        assert_eq!(accused.accused_organ, "pingcheng.housing");
        assert_eq!(accused.case_numbers.len(), 3);
        // four cases are needed now: none is big enough
        assert!(clusters(&open, 90, 4).is_empty());
    }
}
