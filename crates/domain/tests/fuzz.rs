//! Property tests ("fuzz") of every parser of the domain: whatever text comes in — typed at a
//! window, sent by an upstream system, edited into a configuration file — it is accepted or
//! refused with a reason, never a panic; and what is valid survives a round trip.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p petition-domain -E 'test(fuzz)'` runs a longer
//! fuzz than CI's default of 256 cases a property.

use chrono::NaiveDate;
use petition_domain::calendar::HolidayCalendar;
use petition_domain::identity::check_digit;
use petition_domain::routing::RoutingRules;
use petition_domain::{CaseNumber, OrgTree, QueryCode, RegionCode, ResidentId, Taxonomy};
use proptest::prelude::*;

const ORGS: &str = include_str!("../../../deploy/config/orgs.toml");
const CATEGORIES: &str = include_str!("../../../deploy/config/categories.toml");
const CALENDAR: &str = include_str!("../../../deploy/config/cn-calendar.csv");
const RULES: &str = include_str!("../../../deploy/config/routing-rules.toml");

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
}

/// A valid resident ID: a region, a birth date, a sequence, its check character.
fn resident_id() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["140213", "140202", "110101", "440305"]),
        1900i32..=2025,
        1u32..=12,
        1u32..=28,
        0u32..1000,
    )
        .prop_map(|(region, y, m, d, seq)| {
            let first17 = format!("{region}{y:04}{m:02}{d:02}{seq:03}");
            format!("{first17}{}", check_digit(first17.as_bytes()))
        })
}

/// `text` with a few characters inserted, removed or replaced: near-misses of a valid file.
fn mutated(text: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..8).prop_map(
        move |edits| {
            let mut chars: Vec<char> = text.chars().collect();
            for (at, c, how) in edits {
                if chars.is_empty() {
                    chars.push(c);
                    continue;
                }
                let i = at.index(chars.len());
                match how {
                    0 => chars.insert(i, c),
                    1 => {
                        chars.remove(i);
                    }
                    _ => chars[i] = c,
                }
            }
            chars.into_iter().collect()
        },
    )
}

proptest! {
    #[test]
    fn fuzz_resident_ids_never_panic(s in "\\PC{0,40}") {
        let _ = ResidentId::parse(&s, today());
    }

    #[test]
    fn fuzz_valid_resident_ids_parse_and_any_one_digit_changed_is_refused(
        id in resident_id(),
        at in 0usize..17,
        by in 1u8..10,
    ) {
        let parsed = ResidentId::parse(&id, today()).expect("a valid identity parses");
        prop_assert_eq!(parsed.as_str(), id.as_str());
        let mut bytes = id.clone().into_bytes();
        bytes[at] = b'0' + (bytes[at] - b'0' + by) % 10;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(ResidentId::parse(&changed, today()).is_err(), "{} accepted", changed);
    }

    #[test]
    fn fuzz_region_codes(s in "\\PC{0,14}", digits in "[0-9]{6}|[0-9]{9}") {
        let _ = RegionCode::parse(&s);
        let parsed = RegionCode::parse(&digits);
        prop_assert_eq!(parsed.is_ok(), !digits.starts_with("00"));
        if let Ok(r) = parsed {
            prop_assert_eq!(r.as_str(), digits.as_str());
            prop_assert!(digits.starts_with(r.prefix()));
        }
    }

    #[test]
    fn fuzz_case_numbers_and_query_codes(
        s in "\\PC{0,30}",
        region in "[1-9][0-9]{5}",
        year in 2000i32..=2099,
        seq in 1u64..=999_999,
    ) {
        let _ = s.parse::<CaseNumber>();
        let _ = s.parse::<QueryCode>();
        let n = CaseNumber::new(&region, year, seq).expect("a valid case number");
        let again: CaseNumber = n.to_string().parse().expect("its text parses");
        prop_assert_eq!(again, n);
    }

    #[test]
    fn fuzz_configuration_files_refuse_rather_than_panic(
        orgs in mutated(ORGS),
        categories in mutated(CATEGORIES),
        calendar in mutated(CALENDAR),
        rules in mutated(RULES),
        noise in "\\PC{0,200}",
    ) {
        let _ = Taxonomy::from_toml(&categories);
        let _ = Taxonomy::from_toml(&noise);
        let _ = HolidayCalendar::from_csv(&calendar);
        let _ = HolidayCalendar::from_csv(&noise);
        let tree = OrgTree::from_toml(ORGS).expect("the shipped tree");
        let _ = RoutingRules::from_toml(&rules, &tree);
        let _ = RoutingRules::from_toml(&noise, &tree);
        if let Ok(t) = OrgTree::from_toml(&orgs) {
            // a tree that loads answers questions about itself without panicking
            for o in t.organs() {
                let _ = t.chain(&o.id);
                let _ = t.discipline_over(&o.id);
            }
        }
        let _ = OrgTree::from_toml(&noise);
    }
}
