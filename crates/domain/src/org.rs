//! The organisation tree: petition bureaux, competent organs, legal-channel and discipline
//! organs, with the region each serves and the fields it is competent for (Art. 5: 属地管理、
//! 分级负责，谁主管、谁负责).

use crate::category::{Diversion, Taxonomy};
use crate::region::RegionCode;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    National,
    Province,
    City,
    District,
    Street,
}

impl Level {
    /// 0 for national down to 4 for street: the distance between two levels is a difference.
    pub fn rank(self) -> i32 {
        match self {
            Level::National => 0,
            Level::Province => 1,
            Level::City => 2,
            Level::District => 3,
            Level::Street => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::National => "national",
            Level::Province => "province",
            Level::City => "city",
            Level::District => "district",
            Level::Street => "street",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    /// 信访局
    Bureau,
    /// 责任单位
    Department,
    /// 街道办事处 / 乡镇人民政府
    Street,
    /// an organ of a legal channel (court, political-legal committee, arbitration, review)
    Legal,
    /// 纪检监察
    Discipline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organ {
    pub id: String,
    pub name: String,
    pub kind: OrgKind,
    pub level: Level,
    pub region: RegionCode,
    pub parent: Option<String>,
    pub fields: Vec<String>,
}

#[derive(Deserialize)]
struct OrganRow {
    id: String,
    name: String,
    kind: OrgKind,
    level: Level,
    region: String,
    parent: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
}

#[derive(Deserialize)]
struct OrgFile {
    org: Vec<OrganRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum OrgTreeError {
    #[error("organisation file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("organ {0:?} appears twice")]
    Duplicate(String),
    #[error("organ {id:?}: {source}")]
    Region {
        id: String,
        source: crate::region::InvalidRegionCode,
    },
    #[error("organ {id:?} names parent {parent:?}, which is not in the tree")]
    MissingParent { id: String, parent: String },
    #[error("the parent chain of organ {0:?} loops")]
    Cycle(String),
}

/// How the competent organ was found; kept so a clerk can see why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Competence<'a> {
    /// 诉访分离: the legal channel's organ for the problem's territory.
    Diverted {
        organ: &'a Organ,
        channel: Diversion,
    },
    /// The most local organ competent for the field.
    Field { organ: &'a Organ, field: &'a str },
    /// Nobody matches: the bureau's manual triage queue.
    Unmatched,
}

impl<'a> Competence<'a> {
    pub fn organ(&self) -> Option<&'a Organ> {
        match self {
            Competence::Diverted { organ, .. } | Competence::Field { organ, .. } => Some(organ),
            Competence::Unmatched => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct OrgTree {
    organs: BTreeMap<String, Organ>,
}

impl OrgTree {
    pub fn from_toml(text: &str) -> Result<Self, OrgTreeError> {
        let file: OrgFile = toml::from_str(text)?;
        let mut organs = BTreeMap::new();
        for row in file.org {
            if organs.contains_key(&row.id) {
                return Err(OrgTreeError::Duplicate(row.id));
            }
            let region = RegionCode::parse(&row.region).map_err(|source| OrgTreeError::Region {
                id: row.id.clone(),
                source,
            })?;
            organs.insert(
                row.id.clone(),
                Organ {
                    id: row.id,
                    name: row.name,
                    kind: row.kind,
                    level: row.level,
                    region,
                    parent: row.parent,
                    fields: row.fields,
                },
            );
        }
        let tree = Self { organs };
        for organ in tree.organs.values() {
            if let Some(parent) = &organ.parent
                && !tree.organs.contains_key(parent)
            {
                return Err(OrgTreeError::MissingParent {
                    id: organ.id.clone(),
                    parent: parent.clone(),
                });
            }
            let mut seen = 0;
            let mut cur = organ;
            while let Some(p) = cur.parent.as_deref().and_then(|p| tree.organs.get(p)) {
                seen += 1;
                if seen > tree.organs.len() {
                    return Err(OrgTreeError::Cycle(organ.id.clone()));
                }
                cur = p;
            }
        }
        Ok(tree)
    }

    pub fn get(&self, id: &str) -> Option<&Organ> {
        self.organs.get(id)
    }

    pub fn organs(&self) -> impl Iterator<Item = &Organ> {
        self.organs.values()
    }

    /// The organ one level up (上一级机关), who reviews (复查) its decisions.
    pub fn parent(&self, id: &str) -> Option<&Organ> {
        self.get(id)?.parent.as_deref().and_then(|p| self.get(p))
    }

    /// Whether `ancestor` is `id` or sits above it in the parent chain.
    pub fn is_same_or_above(&self, ancestor: &str, id: &str) -> bool {
        let mut cur = self.get(id);
        while let Some(o) = cur {
            if o.id == ancestor {
                return true;
            }
            cur = o.parent.as_deref().and_then(|p| self.get(p));
        }
        false
    }

    /// `id` and every organ above it, nearest first: the organs that must not learn of an
    /// accusation against `id`'s side are exactly those whose chain passes through the accused.
    pub fn chain(&self, id: &str) -> Vec<&Organ> {
        let mut out = Vec::new();
        let mut cur = self.get(id);
        while let Some(o) = cur {
            out.push(o);
            cur = o.parent.as_deref().and_then(|p| self.get(p));
        }
        out
    }

    /// `id` and every organ below it.
    pub fn within<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Organ> + 'a {
        self.organs
            .values()
            .filter(move |o| self.is_same_or_above(id, &o.id))
    }

    /// The discipline inspection organ (纪检监察) with authority over `accused`: the commission
    /// of the accused's own level and region (the district's for a street office), never one
    /// that sits under the accused. A discipline organ accused goes to the one above it.
    pub fn discipline_over(&self, accused: &str) -> Option<&Organ> {
        let a = self.get(accused)?;
        let outside = |o: &&Organ| o.id != a.id && !self.is_same_or_above(&a.id, &o.id);
        if a.kind == OrgKind::Discipline {
            return self
                .chain(&a.id)
                .into_iter()
                .skip(1)
                .find(|o| o.kind == OrgKind::Discipline && outside(o));
        }
        let level = match a.level {
            Level::Street => Level::District,
            l => l,
        };
        self.organs
            .values()
            .filter(|o| o.kind == OrgKind::Discipline && o.level == level)
            .filter(|o| o.region.contains(&a.region))
            .filter(outside)
            .max_by_key(|o| (o.region.depth(), std::cmp::Reverse(o.id.clone())))
    }

    /// Whether some organ of the tree serves a region that contains `location`.
    pub fn covers(&self, location: &RegionCode) -> bool {
        self.organs.values().any(|o| o.region.contains(location))
    }

    /// The most local petition bureau whose region contains `location`.
    pub fn bureau_for(&self, location: &RegionCode) -> Option<&Organ> {
        self.organs
            .values()
            .filter(|o| o.kind == OrgKind::Bureau && o.region.contains(location))
            .max_by_key(|o| o.region.depth())
    }

    /// The organ with authority over a matter of `category` at `location`: a diverted category
    /// goes to the legal or discipline organ of the territory; otherwise the organ whose fields
    /// hold the longest prefix of the category, the most local region first.
    pub fn competent_organ<'a>(
        &'a self,
        taxonomy: &Taxonomy,
        category: &str,
        location: &RegionCode,
    ) -> Competence<'a> {
        let divert = taxonomy.get(category).and_then(|c| c.divert);
        let eligible = |o: &Organ| match divert {
            Some(_) => matches!(o.kind, OrgKind::Legal | OrgKind::Discipline),
            None => matches!(
                o.kind,
                OrgKind::Department | OrgKind::Street | OrgKind::Legal
            ),
        };
        let best = self
            .organs
            .values()
            .filter(|o| eligible(o) && o.region.contains(location))
            .filter_map(|o| {
                o.fields
                    .iter()
                    .filter(|f| is_category_prefix(f, category))
                    .max_by_key(|f| f.len())
                    .map(|f| (o, f.as_str()))
            })
            // Most local first, then the most specific field; the id breaks ties stably.
            .max_by(|(a, fa), (b, fb)| {
                (a.region.depth(), fa.len(), std::cmp::Reverse(&a.id)).cmp(&(
                    b.region.depth(),
                    fb.len(),
                    std::cmp::Reverse(&b.id),
                ))
            });
        match (best, divert) {
            (Some((organ, _)), Some(channel)) => Competence::Diverted { organ, channel },
            (Some((organ, field)), None) => Competence::Field { organ, field },
            (None, _) => Competence::Unmatched,
        }
    }
}

/// `01` is a prefix of `01.04` and of `01`, but not of `010` or `01.0`.
fn is_category_prefix(field: &str, category: &str) -> bool {
    category == field
        || (category.starts_with(field) && category.as_bytes().get(field.len()) == Some(&b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_tree() -> (OrgTree, Taxonomy) {
        (
            OrgTree::from_toml(include_str!("../../../deploy/config/orgs.toml")).unwrap(),
            Taxonomy::from_toml(include_str!("../../../deploy/config/categories.toml")).unwrap(),
        )
    }

    fn competent(category: &str, location: &str) -> Option<String> {
        let (tree, tax) = sample_tree();
        tree.competent_organ(&tax, category, &RegionCode::parse(location).unwrap())
            .organ()
            .map(|o| o.id.clone())
    }

    #[test]
    fn competent_organs_of_the_sample_petitions() {
        let table = [
            ("01.01", "140213001", Some("pingcheng.housing")),
            ("01.04", "140213002", Some("pingcheng.expropriation")),
            ("02.01", "140213003", Some("pingcheng.hrss")),
            ("03.01", "140213003", Some("pingcheng.finance")),
            ("08.01", "140213200", Some("pingcheng.politics_law")),
            ("02.03", "140213001", Some("pingcheng.arbitration")),
            ("09.01", "140213001", Some("pingcheng.discipline")),
            ("11", "140213", None),
            ("01.05", "140213003", Some("pingcheng.street.xinhuajie")),
            ("02.02", "140213", Some("pingcheng.hrss")),
            ("01.01", "140214", Some("yungang.housing")),
            ("08.03", "140213", Some("pingcheng.reconsideration")),
        ];
        for (cat, loc, want) in table {
            assert_eq!(competent(cat, loc).as_deref(), want, "{cat} at {loc}");
        }
    }

    #[test]
    fn diversion_is_reported() {
        let (tree, tax) = sample_tree();
        let c = tree.competent_organ(&tax, "08.02", &RegionCode::parse("140213").unwrap());
        assert!(matches!(
            c,
            Competence::Diverted {
                channel: Diversion::Litigation,
                ..
            }
        ));
    }

    #[test]
    fn bureaux_and_ancestry() {
        let (tree, _) = sample_tree();
        let loc = RegionCode::parse("140213002").unwrap();
        assert_eq!(tree.bureau_for(&loc).unwrap().id, "pingcheng.bureau");
        assert!(tree.covers(&loc));
        assert!(!tree.covers(&RegionCode::parse("110105").unwrap()));
        assert!(tree.is_same_or_above("datong.bureau", "pingcheng.street.beiguan"));
        assert!(!tree.is_same_or_above("pingcheng.bureau", "datong.bureau"));
        assert_eq!(tree.parent("pingcheng.bureau").unwrap().id, "datong.bureau");
    }

    #[test]
    fn discipline_commissions_with_authority() {
        let (tree, _) = sample_tree();
        let over = |a: &str| tree.discipline_over(a).map(|o| o.id.clone());
        // A street office and a district department: the district's commission.
        assert_eq!(
            over("pingcheng.street.beiguan").as_deref(),
            Some("pingcheng.discipline")
        );
        assert_eq!(
            over("pingcheng.housing").as_deref(),
            Some("pingcheng.discipline")
        );
        // A city organ: the city's, never the district's, which cannot judge it.
        assert_eq!(over("datong.bureau").as_deref(), Some("datong.discipline"));
        assert_eq!(over("datong.housing").as_deref(), Some("datong.discipline"));
        // A commission accused: the one above it.
        assert_eq!(
            over("pingcheng.discipline").as_deref(),
            Some("datong.discipline")
        );
        assert_eq!(over("shanxi.bureau").as_deref(), Some("shanxi.discipline"));
        assert_eq!(over("shanxi.discipline"), None);
        assert_eq!(over("nowhere"), None);
        let chain: Vec<&str> = tree
            .chain("pingcheng.street.beiguan")
            .iter()
            .map(|o| o.id.as_str())
            .collect();
        assert_eq!(
            chain,
            [
                "pingcheng.street.beiguan",
                "pingcheng.bureau",
                "datong.bureau",
                "shanxi.bureau"
            ]
        );
        assert!(
            tree.within("datong.bureau")
                .any(|o| o.id == "pingcheng.street.beiguan")
        );
        assert!(
            !tree
                .within("datong.bureau")
                .any(|o| o.id == "datong.discipline")
        );
    }

    #[test]
    fn rejects_broken_trees() {
        let missing = "[[org]]\nid = \"a\"\nname = \"A\"\nkind = \"bureau\"\nlevel = \"city\"\nregion = \"140200\"\nparent = \"zz\"\n";
        assert!(matches!(
            OrgTree::from_toml(missing),
            Err(OrgTreeError::MissingParent { .. })
        ));
        let cycle = "[[org]]\nid = \"a\"\nname = \"A\"\nkind = \"bureau\"\nlevel = \"city\"\nregion = \"140200\"\nparent = \"b\"\n\
                     [[org]]\nid = \"b\"\nname = \"B\"\nkind = \"bureau\"\nlevel = \"city\"\nregion = \"140200\"\nparent = \"a\"\n";
        assert!(matches!(
            OrgTree::from_toml(cycle),
            Err(OrgTreeError::Cycle(_))
        ));
        let region = "[[org]]\nid = \"a\"\nname = \"A\"\nkind = \"bureau\"\nlevel = \"city\"\nregion = \"14\"\n";
        assert!(matches!(
            OrgTree::from_toml(region),
            Err(OrgTreeError::Region { .. })
        ));
    }

    #[test]
    fn category_prefixes_respect_level_boundaries() {
        assert!(is_category_prefix("01", "01.04"));
        assert!(is_category_prefix("01.04", "01.04"));
        assert!(!is_category_prefix("01.0", "01.04"));
        assert!(!is_category_prefix("01", "010"));
    }
}
