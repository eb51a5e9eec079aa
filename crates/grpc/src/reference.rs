//! Reference data the rules need: the organisation tree, the content taxonomy and the holiday
//! calendar, read from `deploy/config/` (or a directory given at start-up), with the shipped
//! copies built in so a binary runs from anywhere.

use petition_domain::calendar::{CalendarError, HolidayCalendar};
use petition_domain::category::TaxonomyError;
use petition_domain::org::OrgTreeError;
use petition_domain::{OrgTree, Taxonomy};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const BUILTIN_ORGS: &str = include_str!("../../../deploy/config/orgs.toml");
const BUILTIN_CATEGORIES: &str = include_str!("../../../deploy/config/categories.toml");
const BUILTIN_CALENDAR: &str = include_str!("../../../deploy/config/cn-calendar.csv");

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Orgs { path: PathBuf, source: OrgTreeError },
    #[error("{path}: {source}")]
    Categories {
        path: PathBuf,
        source: TaxonomyError,
    },
    #[error("{path}: {source}")]
    Calendar {
        path: PathBuf,
        source: CalendarError,
    },
}

#[derive(Debug, Clone)]
pub struct Reference {
    /// shared with the access policy
    pub tree: Arc<OrgTree>,
    pub taxonomy: Taxonomy,
    pub calendar: HolidayCalendar,
}

impl Reference {
    pub fn builtin() -> Self {
        Self {
            tree: Arc::new(OrgTree::from_toml(BUILTIN_ORGS).expect("shipped orgs.toml is valid")),
            taxonomy: Taxonomy::from_toml(BUILTIN_CATEGORIES)
                .expect("shipped categories.toml is valid"),
            calendar: HolidayCalendar::from_csv(BUILTIN_CALENDAR)
                .expect("shipped cn-calendar.csv is valid"),
        }
    }

    pub fn load(dir: Option<&Path>) -> Result<Self, ReferenceError> {
        let Some(dir) = dir else {
            return Ok(Self::builtin());
        };
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map(|t| (path.clone(), t))
                .map_err(|source| ReferenceError::Read { path, source })
        };
        let (orgs_path, orgs) = read("orgs.toml")?;
        let (cat_path, cats) = read("categories.toml")?;
        let (cal_path, cal) = read("cn-calendar.csv")?;
        Ok(Self {
            tree: Arc::new(
                OrgTree::from_toml(&orgs).map_err(|source| ReferenceError::Orgs {
                    path: orgs_path,
                    source,
                })?,
            ),
            taxonomy: Taxonomy::from_toml(&cats).map_err(|source| ReferenceError::Categories {
                path: cat_path,
                source,
            })?,
            calendar: HolidayCalendar::from_csv(&cal).map_err(|source| {
                ReferenceError::Calendar {
                    path: cal_path,
                    source,
                }
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_matches_the_files_in_deploy_config() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
        let loaded = Reference::load(Some(&dir)).unwrap();
        let builtin = Reference::builtin();
        assert_eq!(loaded.tree.organs().count(), builtin.tree.organs().count());
        assert_eq!(loaded.taxonomy.len(), builtin.taxonomy.len());
    }

    #[test]
    fn a_missing_directory_names_the_file() {
        let err = Reference::load(Some(Path::new("/nonexistent-petition-config"))).unwrap_err();
        assert!(err.to_string().contains("orgs.toml"), "{err}");
    }
}
