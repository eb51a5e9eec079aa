//! Benchmark of the routing decision alone, with 1,000 override rules in front of the field
//! and territory rules: the worst case, where no override matches and every one is tried.
//!
//!   cargo run --release -p petition-e2e --bin routing-decision -- --rules 1000

use clap::Parser;
use hdrhistogram::Histogram;
use petition_domain::routing::{OverrideRule, RoutingInput, RoutingRules, decide};
use petition_domain::{Channel, OrgTree, RegionCode, Taxonomy};
use std::hint::black_box;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    #[arg(long, default_value_t = 200_000)]
    decisions: usize,
}

fn main() {
    let args = Args::parse();
    let tree = OrgTree::from_toml(include_str!("../../../../deploy/config/orgs.toml")).unwrap();
    let tax =
        Taxonomy::from_toml(include_str!("../../../../deploy/config/categories.toml")).unwrap();
    // Rules that look real but never match the inputs below: other regions of the province.
    let rules = RoutingRules::new(
        (0..args.rules)
            .map(|i| OverrideRule {
                id: format!("rule-{i}"),
                category_prefix: Some(format!("{:02}", 1 + i % 10)),
                region_prefix: Some(format!("1403{:02}", i % 100)),
                channel: (i % 3 == 0).then(|| "phone".to_owned()),
                organ: "datong.housing".into(),
            })
            .collect(),
    );
    let inputs: Vec<(String, RegionCode)> = [
        ("01.01", "140213001"),
        ("01.04", "140213002"),
        ("02.01", "140213003"),
        ("08.01", "140213200"),
        ("09.01", "140213001"),
        ("11", "140213"),
        ("01.05", "140213003"),
    ]
    .iter()
    .map(|(c, l)| (c.to_string(), RegionCode::parse(l).unwrap()))
    .collect();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    for i in 0..args.decisions {
        let (category, location) = &inputs[i % inputs.len()];
        let t = Instant::now();
        let d = decide(
            &RoutingInput {
                received_by: "pingcheng.bureau",
                channel: Channel::Online,
                category,
                problem_location: location,
                accused_organ: None,
                open_below: None,
                repeat_of_open: None,
            },
            &tree,
            &tax,
            &rules,
        );
        let elapsed = t.elapsed().as_nanos() as u64;
        black_box(d);
        let _ = hist.record(elapsed);
    }
    let total = started.elapsed();
    println!(
        "routing decision, {} override rules, {} decisions: {:.0} decisions/s, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        rules.len(),
        args.decisions,
        args.decisions as f64 / total.as_secs_f64(),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
}
