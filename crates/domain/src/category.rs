//! The content taxonomy (内容分类): type of matter and diversion to a legal channel.

use serde::Deserialize;
use std::collections::BTreeMap;

crate::text_enum! {
    /// Art. 29-31: the type of matter decides the route and whether a statutory clock runs.
    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum TypeOfMatter {
        /// 建议意见类 (Art. 29): no statutory time limit
        Suggestion = "suggestion",
        /// 检举控告类 (Art. 30)
        Accusation = "accusation",
        /// 申诉求决类 (Art. 31)
        Grievance = "grievance",
    }
}

crate::text_enum! {
    /// A legal channel a matter is diverted to (诉访分离, Art. 28 ¶2, Art. 31(1)-(4)).
    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Diversion {
        Litigation = "litigation",
        Arbitration = "arbitration",
        Reconsideration = "reconsideration",
        Discipline = "discipline",
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Category {
    pub code: String,
    pub name: String,
    #[serde(rename = "type")]
    pub type_of_matter: TypeOfMatter,
    pub divert: Option<Diversion>,
}

#[derive(Debug, thiserror::Error)]
pub enum TaxonomyError {
    #[error("categories file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("category {0:?} appears twice")]
    Duplicate(String),
    #[error("category {code:?} has parent {parent:?}, which is not defined")]
    MissingParent { code: String, parent: String },
    #[error("category code {0:?} must be one to three dot-separated two-digit levels")]
    BadCode(String),
}

/// The three-level content taxonomy, keyed by code (`01`, `01.04`, `01.04.02`).
#[derive(Debug, Clone, Default)]
pub struct Taxonomy {
    categories: BTreeMap<String, Category>,
}

#[derive(Deserialize)]
struct TaxonomyFile {
    category: Vec<Category>,
}

impl Taxonomy {
    pub fn from_toml(text: &str) -> Result<Self, TaxonomyError> {
        let file: TaxonomyFile = toml::from_str(text)?;
        let mut categories = BTreeMap::new();
        for c in file.category {
            let levels: Vec<&str> = c.code.split('.').collect();
            let well_formed = levels.len() <= 3
                && levels
                    .iter()
                    .all(|l| l.len() == 2 && l.bytes().all(|b| b.is_ascii_digit()));
            if !well_formed {
                return Err(TaxonomyError::BadCode(c.code));
            }
            if categories.contains_key(&c.code) {
                return Err(TaxonomyError::Duplicate(c.code));
            }
            categories.insert(c.code.clone(), c);
        }
        for code in categories.keys() {
            if let Some((parent, _)) = code.rsplit_once('.')
                && !categories.contains_key(parent)
            {
                return Err(TaxonomyError::MissingParent {
                    code: code.clone(),
                    parent: parent.to_owned(),
                });
            }
        }
        Ok(Self { categories })
    }

    pub fn get(&self, code: &str) -> Option<&Category> {
        self.categories.get(code)
    }

    /// Every category, by code (a parent before its children).
    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.categories.values()
    }

    pub fn len(&self) -> usize {
        self.categories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../deploy/config/categories.toml");

    #[test]
    fn loads_the_shipped_taxonomy() {
        let t = Taxonomy::from_toml(SAMPLE).unwrap();
        assert!(t.len() >= 20);
        let c = t.get("02.03").unwrap();
        assert_eq!(c.type_of_matter, TypeOfMatter::Grievance);
        assert_eq!(c.divert, Some(Diversion::Arbitration));
        assert_eq!(
            t.get("11").unwrap().type_of_matter,
            TypeOfMatter::Suggestion
        );
        assert_eq!(t.get("01.01").unwrap().divert, None);
    }

    #[test]
    fn rejects_orphans_and_duplicates() {
        let orphan = "[[category]]\ncode = \"01.01\"\nname = \"x\"\ntype = \"grievance\"\n";
        assert!(matches!(
            Taxonomy::from_toml(orphan),
            Err(TaxonomyError::MissingParent { .. })
        ));
        let dup = "[[category]]\ncode = \"01\"\nname = \"x\"\ntype = \"grievance\"\n\
                   [[category]]\ncode = \"01\"\nname = \"y\"\ntype = \"grievance\"\n";
        assert!(matches!(
            Taxonomy::from_toml(dup),
            Err(TaxonomyError::Duplicate(_))
        ));
        let bad = "[[category]]\ncode = \"1\"\nname = \"x\"\ntype = \"grievance\"\n";
        assert!(matches!(
            Taxonomy::from_toml(bad),
            Err(TaxonomyError::BadCode(_))
        ));
    }
}
