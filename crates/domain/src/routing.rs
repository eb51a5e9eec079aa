//! The routing decision (Art. 22, 28-31): who has authority over a registered petition, and by
//! which path. Pure: the routing service feeds it the intake event and acts on the answer. Every
//! decision names the rule that made it, so a clerk can see why.

use crate::category::{Diversion, Taxonomy, TypeOfMatter};
use crate::channel::Channel;
use crate::org::{Competence, OrgKind, OrgTree, Organ};
use crate::region::RegionCode;
use serde::Deserialize;

/// An ordered override from configuration: category prefix × region prefix × channel → organ.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OverrideRule {
    pub id: String,
    #[serde(default)]
    pub category_prefix: Option<String>,
    #[serde(default)]
    pub region_prefix: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    pub organ: String,
}

impl OverrideRule {
    fn matches(&self, category: &str, location: &RegionCode, channel: Channel) -> bool {
        let cat = self.category_prefix.as_deref().is_none_or(|p| {
            category == p
                || (category.starts_with(p) && category.as_bytes().get(p.len()) == Some(&b'.'))
        });
        let region = self
            .region_prefix
            .as_deref()
            .is_none_or(|p| location.as_str().starts_with(p));
        let chan = self
            .channel
            .as_deref()
            .is_none_or(|c| c == channel.as_str());
        cat && region && chan
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("routing rules file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("rule {rule:?} sends to organ {organ:?}, which is not in the organisation tree")]
    UnknownOrgan { rule: String, organ: String },
    #[error("rule {rule:?} names channel {channel:?}, which is not a channel")]
    UnknownChannel { rule: String, channel: String },
}

/// Override rules in the order they are tried; the first match wins.
#[derive(Debug, Clone, Default)]
pub struct RoutingRules {
    rules: Vec<OverrideRule>,
}

#[derive(Deserialize)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<OverrideRule>,
}

impl RoutingRules {
    pub fn new(rules: Vec<OverrideRule>) -> Self {
        Self { rules }
    }

    /// Parses and checks rules against the tree, so a bad reload is refused whole.
    pub fn from_toml(text: &str, tree: &OrgTree) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text)?;
        for r in &file.rule {
            if tree.get(&r.organ).is_none() {
                return Err(RulesError::UnknownOrgan {
                    rule: r.id.clone(),
                    organ: r.organ.clone(),
                });
            }
            if let Some(c) = &r.channel
                && c.parse::<Channel>().is_err()
            {
                return Err(RulesError::UnknownChannel {
                    rule: r.id.clone(),
                    channel: c.clone(),
                });
            }
        }
        Ok(Self { rules: file.rule })
    }

    pub fn first_match(
        &self,
        category: &str,
        location: &RegionCode,
        channel: Channel,
    ) -> Option<&OverrideRule> {
        self.rules
            .iter()
            .find(|r| r.matches(category, location, channel))
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// What routing knows of a registered petition (from `PetitionRegistered`).
#[derive(Debug, Clone)]
pub struct RoutingInput<'a> {
    pub received_by: &'a str,
    pub channel: Channel,
    pub category: &'a str,
    pub problem_location: &'a RegionCode,
    /// the accused person's own organ, for accusations (Art. 30)
    pub accused_organ: Option<&'a str>,
    /// Art. 19 ¶3: the same matter is open at a lower organ
    pub open_below: Option<&'a str>,
    /// repeat of a case still open (并单)
    pub repeat_of_open: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 诉访分离: to a legal channel's organ, with a written notice saying where and why.
    Divert {
        organ: String,
        channel: Diversion,
        notice: String,
    },
    /// To the organ with authority; the bureau then forwards (转送) or assigns (交办).
    /// `hops` lists the bureaux a leapfrog petition passes on the way down.
    Send { organ: String, hops: Vec<String> },
    /// Not accepted again: linked to a case already open (Art. 19 ¶3, or a repeat merged).
    Link { case_number: String, notice: String },
    /// Nothing matched: the bureau's manual triage queue.
    Triage { bureau: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingDecision {
    pub outcome: Outcome,
    /// why, in words a clerk reads
    pub rule: String,
}

fn diversion_notice(channel: Diversion, organ: &Organ) -> String {
    let (what, article) = match channel {
        Diversion::Litigation => (
            "a matter for the courts or procuratorate (涉法涉诉)",
            "Art. 31(1)",
        ),
        Diversion::Arbitration => ("a dispute for arbitration (仲裁)", "Art. 31(2)"),
        Diversion::Reconsideration => (
            "a matter for administrative reconsideration (行政复议)",
            "Art. 31(4)",
        ),
        Diversion::Discipline => (
            "an accusation for discipline inspection (纪检监察)",
            "Art. 30",
        ),
    };
    format!(
        "Your petition concerns {what}; by {article} and Art. 28 ¶2 it is handled by {} ({}) through that procedure.",
        organ.name, organ.id
    )
}

/// The bureaux a leapfrog petition passes on the way down to the competent level: the receiving
/// organ's level excluded, the competent organ's own level's bureau included.
fn hops(
    tree: &OrgTree,
    receiving: &Organ,
    competent: &Organ,
    location: &RegionCode,
) -> Vec<String> {
    let mut bureaux: Vec<&Organ> = tree
        .organs()
        .filter(|o| {
            o.kind == OrgKind::Bureau
                && o.region.contains(location)
                && o.level.rank() > receiving.level.rank()
                && o.level.rank()
                    <= competent
                        .level
                        .rank()
                        .min(crate::org::Level::District.rank())
        })
        .collect();
    bureaux.sort_by_key(|o| o.level.rank());
    bureaux.into_iter().map(|o| o.id.clone()).collect()
}

pub fn decide(
    input: &RoutingInput<'_>,
    tree: &OrgTree,
    taxonomy: &Taxonomy,
    rules: &RoutingRules,
) -> RoutingDecision {
    let receiving = tree.get(input.received_by);
    let is_accusation = taxonomy
        .get(input.category)
        .is_some_and(|c| c.type_of_matter == TypeOfMatter::Accusation);
    let accused = input.accused_organ.filter(|_| is_accusation);
    // Art. 30 ¶3: an accusation naming the accused party's organ goes to the discipline organ
    // with authority over it, before anything else — a link to an earlier case or an override
    // rule — could leave it where the accused side sees it.
    if let Some(accused) = accused {
        return accusation(input, tree, taxonomy, accused);
    }
    if let Some(number) = input.open_below {
        return RoutingDecision {
            outcome: Outcome::Link {
                case_number: number.to_owned(),
                notice: format!(
                    "The same matter is being handled under case {number}; by Art. 19 ¶3 it is not accepted again at this level. You will be informed of that case's outcome."
                ),
            },
            rule: format!("Art. 19 ¶3: same matter open below as {number}"),
        };
    }
    if let Some(number) = input.repeat_of_open {
        return RoutingDecision {
            outcome: Outcome::Link {
                case_number: number.to_owned(),
                notice: format!(
                    "This petition repeats case {number}, which is still being handled; it has been added to that case."
                ),
            },
            rule: format!("repeat (重复信访): merged into open case {number}"),
        };
    }
    let send = |organ: &Organ, rule: String| {
        let hops = receiving
            .map(|r| hops(tree, r, organ, input.problem_location))
            .unwrap_or_default();
        RoutingDecision {
            outcome: Outcome::Send {
                organ: organ.id.clone(),
                hops,
            },
            rule,
        }
    };
    if let Some(r) = rules.first_match(input.category, input.problem_location, input.channel)
        && let Some(organ) = tree.get(&r.organ)
    {
        return send(organ, format!("override rule {}", r.id));
    }
    match tree.competent_organ(taxonomy, input.category, input.problem_location) {
        Competence::Diverted { organ, channel } => RoutingDecision {
            outcome: Outcome::Divert {
                organ: organ.id.clone(),
                channel,
                notice: diversion_notice(channel, organ),
            },
            rule: format!(
                "category {} is diverted to {} (诉访分离, Art. 28 ¶2)",
                input.category, channel
            ),
        },
        Competence::Field { organ, field } => send(
            organ,
            format!(
                "competent by field {field} and territory {} (Art. 5: 属地管理、分级负责)",
                organ.region
            ),
        ),
        Competence::Unmatched => triage(input, tree, "no organ is competent for the category here"),
    }
}

/// The accusation rule: to the discipline organ with authority over the accused organ, or,
/// when the tree has none, to the triage queue of the nearest bureau outside the accused's
/// side — never to the accused or any organ under it.
fn accusation(
    input: &RoutingInput<'_>,
    tree: &OrgTree,
    taxonomy: &Taxonomy,
    accused: &str,
) -> RoutingDecision {
    let Some(organ) = tree.discipline_over(accused) else {
        let bureau = triage_bureau(input, tree, Some(accused));
        return RoutingDecision {
            rule: format!(
                "Art. 30 ¶3: the organisation tree has no discipline organ with authority over \
                 the accused {accused}: waits in {bureau}'s triage queue"
            ),
            outcome: Outcome::Triage { bureau },
        };
    };
    let rule = format!(
        "accusation against {accused}: to {}, the discipline organ with authority over it \
         (Art. 30 ¶3: never to the accused or an organ under it)",
        organ.id
    );
    let outcome = match taxonomy.get(input.category).and_then(|c| c.divert) {
        Some(channel) => Outcome::Divert {
            organ: organ.id.clone(),
            channel,
            notice: diversion_notice(channel, organ),
        },
        None => Outcome::Send {
            organ: organ.id.clone(),
            hops: Vec::new(),
        },
    };
    RoutingDecision { outcome, rule }
}

/// The bureau whose triage queue takes what no rule routes, and which routes the case (its
/// forwarding bureau): the receiving organ if it is a bureau, else the bureau of the problem's
/// territory — moved up the tree past any bureau on the accused's side.
pub fn routing_bureau(
    tree: &OrgTree,
    received_by: &str,
    location: Option<&RegionCode>,
    accused: Option<&str>,
) -> String {
    let first = match tree.get(received_by) {
        Some(o) if o.kind == OrgKind::Bureau => o.id.clone(),
        _ => location
            .and_then(|l| tree.bureau_for(l))
            .map(|b| b.id.clone())
            .unwrap_or_else(|| received_by.to_owned()),
    };
    let Some(accused) = accused else {
        return first;
    };
    let outside = |o: &&Organ| o.kind == OrgKind::Bureau && !tree.is_same_or_above(accused, &o.id);
    tree.chain(&first)
        .into_iter()
        .find(outside)
        .or_else(|| tree.organs().filter(outside).min_by_key(|o| o.level.rank()))
        .map(|o| o.id.clone())
        .unwrap_or(first)
}

fn triage_bureau(input: &RoutingInput<'_>, tree: &OrgTree, accused: Option<&str>) -> String {
    routing_bureau(
        tree,
        input.received_by,
        Some(input.problem_location),
        accused,
    )
}

fn triage(input: &RoutingInput<'_>, tree: &OrgTree, why: &str) -> RoutingDecision {
    let bureau = triage_bureau(input, tree, None);
    RoutingDecision {
        rule: format!("{why}: waits in {bureau}'s triage queue"),
        outcome: Outcome::Triage { bureau },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> (OrgTree, Taxonomy) {
        (
            OrgTree::from_toml(include_str!("../../../deploy/config/orgs.toml")).unwrap(),
            Taxonomy::from_toml(include_str!("../../../deploy/config/categories.toml")).unwrap(),
        )
    }

    struct Row {
        sample: u32,
        received_by: &'static str,
        channel: Channel,
        category: &'static str,
        location: &'static str,
        accused: Option<&'static str>,
        open_below: Option<&'static str>,
        want: Outcome,
    }

    fn send(organ: &str, hops: &[&str]) -> Outcome {
        Outcome::Send {
            organ: organ.into(),
            hops: hops.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn divert(organ: &str, channel: Diversion) -> (String, Diversion) {
        (organ.into(), channel)
    }

    #[test]
    fn the_twelve_samples_end_where_their_expect_says() {
        let (tree, tax) = fixtures();
        let rules = RoutingRules::default();
        let rows = [
            Row {
                sample: 1,
                received_by: "pingcheng.bureau",
                channel: Channel::Visit,
                category: "01.01",
                location: "140213001",
                accused: None,
                open_below: None,
                want: send("pingcheng.housing", &[]),
            },
            Row {
                sample: 2,
                received_by: "pingcheng.bureau",
                channel: Channel::Visit,
                category: "01.04",
                location: "140213002",
                accused: None,
                open_below: None,
                want: send("pingcheng.expropriation", &[]),
            },
            Row {
                sample: 3,
                received_by: "pingcheng.bureau",
                channel: Channel::Online,
                category: "02.01",
                location: "140213003",
                accused: None,
                open_below: None,
                want: send("pingcheng.hrss", &[]),
            },
            Row {
                sample: 4,
                received_by: "pingcheng.bureau",
                channel: Channel::Phone,
                category: "03.01",
                location: "140213003",
                accused: None,
                open_below: None,
                want: send("pingcheng.finance", &[]),
            },
            Row {
                sample: 8,
                received_by: "pingcheng.bureau",
                channel: Channel::Online,
                category: "11",
                location: "140213",
                accused: None,
                open_below: None,
                want: Outcome::Triage {
                    bureau: "pingcheng.bureau".into(),
                },
            },
            Row {
                sample: 9,
                received_by: "datong.bureau",
                channel: Channel::Visit,
                category: "01.01",
                location: "140213001",
                accused: None,
                open_below: Some("140213-2026-000001"),
                want: Outcome::Link {
                    case_number: "140213-2026-000001".into(),
                    notice: String::new(),
                },
            },
            Row {
                sample: 11,
                received_by: "pingcheng.bureau",
                channel: Channel::Online,
                category: "01.05",
                location: "140213003",
                accused: None,
                open_below: None,
                want: send("pingcheng.street.xinhuajie", &[]),
            },
            Row {
                sample: 12,
                received_by: "pingcheng.bureau",
                channel: Channel::Upstream,
                category: "02.02",
                location: "140213",
                accused: None,
                open_below: None,
                want: send("pingcheng.hrss", &[]),
            },
        ];
        for r in rows {
            let loc = RegionCode::parse(r.location).unwrap();
            let d = decide(
                &RoutingInput {
                    received_by: r.received_by,
                    channel: r.channel,
                    category: r.category,
                    problem_location: &loc,
                    accused_organ: r.accused,
                    open_below: r.open_below,
                    repeat_of_open: None,
                },
                &tree,
                &tax,
                &rules,
            );
            match (&d.outcome, &r.want) {
                (
                    Outcome::Link { case_number, .. },
                    Outcome::Link {
                        case_number: want, ..
                    },
                ) => {
                    assert_eq!(case_number, want, "sample {}", r.sample);
                }
                (got, want) => assert_eq!(got, want, "sample {}: {}", r.sample, d.rule),
            }
            assert!(!d.rule.is_empty());
        }
        for (sample, category, location, want) in [
            (
                5,
                "08.01",
                "140213200",
                divert("pingcheng.politics_law", Diversion::Litigation),
            ),
            (
                6,
                "02.03",
                "140213001",
                divert("pingcheng.arbitration", Diversion::Arbitration),
            ),
            (
                7,
                "09.01",
                "140213001",
                divert("pingcheng.discipline", Diversion::Discipline),
            ),
        ] {
            let loc = RegionCode::parse(location).unwrap();
            let d = decide(
                &RoutingInput {
                    received_by: "pingcheng.bureau",
                    channel: Channel::Letter,
                    category,
                    problem_location: &loc,
                    accused_organ: (sample == 7).then_some("pingcheng.street.beiguan"),
                    open_below: None,
                    repeat_of_open: None,
                },
                &tree,
                &tax,
                &rules,
            );
            let Outcome::Divert {
                organ,
                channel,
                notice,
            } = d.outcome
            else {
                panic!("sample {sample}: {:?}", d.outcome);
            };
            assert_eq!((organ, channel), want, "sample {sample}");
            assert!(notice.contains("Art."), "{notice}");
        }
    }

    #[test]
    fn a_leapfrog_visit_goes_down_to_the_competent_level_with_every_hop() {
        let (tree, tax) = fixtures();
        let loc = RegionCode::parse("140213002").unwrap();
        let d = decide(
            &RoutingInput {
                received_by: "shanxi.bureau",
                channel: Channel::Visit,
                category: "01.04",
                problem_location: &loc,
                accused_organ: None,
                open_below: None,
                repeat_of_open: None,
            },
            &tree,
            &tax,
            &RoutingRules::default(),
        );
        assert_eq!(
            d.outcome,
            send(
                "pingcheng.expropriation",
                &["datong.bureau", "pingcheng.bureau"]
            )
        );
    }

    #[test]
    fn an_accusation_never_goes_to_the_accused_organ() {
        let (tree, tax) = fixtures();
        let loc = RegionCode::parse("140213001").unwrap();
        // Even an override that points at the accused street office is overruled (Art. 30 ¶3).
        let rules = RoutingRules::new(vec![OverrideRule {
            id: "beiguan-everything".into(),
            category_prefix: None,
            region_prefix: Some("140213001".into()),
            channel: None,
            organ: "pingcheng.street.beiguan".into(),
        }]);
        let d = decide(
            &RoutingInput {
                received_by: "pingcheng.bureau",
                channel: Channel::Letter,
                category: "09.01",
                problem_location: &loc,
                accused_organ: Some("pingcheng.street.beiguan"),
                open_below: None,
                repeat_of_open: None,
            },
            &tree,
            &tax,
            &rules,
        );
        assert!(
            matches!(d.outcome, Outcome::Divert { ref organ, channel: Diversion::Discipline, .. } if organ == "pingcheng.discipline"),
            "{d:?}"
        );
        assert!(d.rule.contains("Art. 30"), "{}", d.rule);
    }

    #[test]
    fn an_accusation_against_a_city_organ_goes_to_the_city_commission() {
        let (tree, tax) = fixtures();
        let loc = RegionCode::parse("140213").unwrap();
        let accuse = |accused: &'static str, tree: &OrgTree| {
            decide(
                &RoutingInput {
                    received_by: "pingcheng.bureau",
                    channel: Channel::Letter,
                    category: "09.01",
                    problem_location: &loc,
                    accused_organ: Some(accused),
                    open_below: None,
                    repeat_of_open: None,
                },
                tree,
                &tax,
                &RoutingRules::default(),
            )
        };
        let d = accuse("datong.bureau", &tree);
        assert!(
            matches!(d.outcome, Outcome::Divert { ref organ, .. } if organ == "datong.discipline"),
            "the district commission cannot judge a city organ: {d:?}"
        );
        // A tree without the city commission: the case waits for a person, at a bureau that
        // is not under the accused (the receiving district bureau is).
        let text = include_str!("../../../deploy/config/orgs.toml")
            .replace(
                "id = \"datong.discipline\"",
                "id = \"datong.discipline.gone\"",
            )
            .replace(
                "parent = \"datong.discipline\"",
                "parent = \"datong.discipline.gone\"",
            )
            .replace(
                "kind = \"discipline\"\nlevel = \"city\"",
                "kind = \"legal\"\nlevel = \"city\"",
            );
        let bare = OrgTree::from_toml(&text).unwrap();
        let d = accuse("datong.bureau", &bare);
        assert_eq!(
            d.outcome,
            Outcome::Triage {
                bureau: "shanxi.bureau".into()
            },
            "{}",
            d.rule
        );
        assert!(d.rule.contains("Art. 30"), "{}", d.rule);
        // A repeat, even of an open case, is no way around it: it is not linked to a case the
        // accused side can see.
        let d = decide(
            &RoutingInput {
                received_by: "pingcheng.bureau",
                channel: Channel::Letter,
                category: "09.01",
                problem_location: &loc,
                accused_organ: Some("datong.bureau"),
                open_below: Some("140213-2026-000001"),
                repeat_of_open: Some("140213-2026-000001"),
            },
            &tree,
            &tax,
            &RoutingRules::default(),
        );
        assert!(
            matches!(d.outcome, Outcome::Divert { ref organ, .. } if organ == "datong.discipline"),
            "{d:?}"
        );
        assert_eq!(
            routing_bureau(&tree, "pingcheng.bureau", Some(&loc), Some("datong.bureau")),
            "shanxi.bureau",
            "the district bureau under the accused city bureau does not route it"
        );
        // Not an accusation: the accused organ plays no part.
        let mut input = RoutingInput {
            received_by: "pingcheng.bureau",
            channel: Channel::Letter,
            category: "01.01",
            problem_location: &RegionCode::parse("140213001").unwrap(),
            accused_organ: Some("pingcheng.housing"),
            open_below: None,
            repeat_of_open: None,
        };
        let d = decide(&input, &tree, &tax, &RoutingRules::default());
        assert_eq!(d.outcome, send("pingcheng.housing", &[]));
        input.accused_organ = None;
        assert_eq!(
            decide(&input, &tree, &tax, &RoutingRules::default()).outcome,
            d.outcome
        );
    }

    #[test]
    fn override_rules_match_in_order_by_category_region_and_channel() {
        let (tree, tax) = fixtures();
        let text = r#"
            [[rule]]
            id = "phone-housing-to-city"
            category_prefix = "01"
            channel = "phone"
            organ = "datong.housing"

            [[rule]]
            id = "beiguan-property"
            category_prefix = "01.05"
            region_prefix = "140213001"
            organ = "pingcheng.housing"
        "#;
        let rules = RoutingRules::from_toml(text, &tree).unwrap();
        assert_eq!(rules.len(), 2);
        let decide_for = |channel: Channel, category: &str, location: &str| {
            let loc = RegionCode::parse(location).unwrap();
            decide(
                &RoutingInput {
                    received_by: "pingcheng.bureau",
                    channel,
                    category,
                    problem_location: &loc,
                    accused_organ: None,
                    open_below: None,
                    repeat_of_open: None,
                },
                &tree,
                &tax,
                &rules,
            )
        };
        let d = decide_for(Channel::Phone, "01.05", "140213001");
        assert_eq!(d.outcome, send("datong.housing", &[]));
        assert_eq!(d.rule, "override rule phone-housing-to-city");
        let d = decide_for(Channel::Online, "01.05", "140213001");
        assert_eq!(d.outcome, send("pingcheng.housing", &[]));
        let d = decide_for(Channel::Online, "01.05", "140213002");
        assert_eq!(
            d.outcome,
            send("pingcheng.street.nanguan", &[]),
            "no rule: field and territory"
        );
        assert!(d.rule.contains("Art. 5"), "{}", d.rule);
    }

    #[test]
    fn bad_rules_are_refused_whole() {
        let (tree, _) = fixtures();
        let unknown = "[[rule]]\nid = \"x\"\norgan = \"nowhere\"\n";
        assert!(matches!(
            RoutingRules::from_toml(unknown, &tree),
            Err(RulesError::UnknownOrgan { .. })
        ));
        let channel = "[[rule]]\nid = \"x\"\nchannel = \"pigeon\"\norgan = \"pingcheng.hrss\"\n";
        assert!(matches!(
            RoutingRules::from_toml(channel, &tree),
            Err(RulesError::UnknownChannel { .. })
        ));
    }

    #[test]
    fn a_repeat_of_an_open_case_is_merged_not_handled_twice() {
        let (tree, tax) = fixtures();
        let loc = RegionCode::parse("140213001").unwrap();
        let d = decide(
            &RoutingInput {
                received_by: "pingcheng.bureau",
                channel: Channel::Online,
                category: "01.01",
                problem_location: &loc,
                accused_organ: None,
                open_below: None,
                repeat_of_open: Some("140213-2026-000001"),
            },
            &tree,
            &tax,
            &RoutingRules::default(),
        );
        assert!(
            matches!(d.outcome, Outcome::Link { ref case_number, .. } if case_number == "140213-2026-000001")
        );
    }
}

#[cfg(test)]
mod shipped_rules {
    #[test]
    fn the_shipped_rules_file_parses() {
        let tree =
            crate::OrgTree::from_toml(include_str!("../../../deploy/config/orgs.toml")).unwrap();
        let rules = super::RoutingRules::from_toml(
            include_str!("../../../deploy/config/routing-rules.toml"),
            &tree,
        )
        .unwrap();
        assert!(
            rules.is_empty(),
            "the shipped file only documents the format"
        );
    }
}
