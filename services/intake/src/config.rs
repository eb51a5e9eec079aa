//! Reference data the rules need: the organisation tree and the content taxonomy, read from
//! `deploy/config/` (or a directory given at start-up), with the shipped copies built in so the
//! binary runs from anywhere.

use petition_domain::category::TaxonomyError;
use petition_domain::org::OrgTreeError;
use petition_domain::{OrgTree, Taxonomy};
use std::path::{Path, PathBuf};

const BUILTIN_ORGS: &str = include_str!("../../../deploy/config/orgs.toml");
const BUILTIN_CATEGORIES: &str = include_str!("../../../deploy/config/categories.toml");

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
}

#[derive(Debug, Clone)]
pub struct Reference {
    pub tree: OrgTree,
    pub taxonomy: Taxonomy,
}

impl Reference {
    pub fn builtin() -> Self {
        Self {
            tree: OrgTree::from_toml(BUILTIN_ORGS).expect("shipped orgs.toml is valid"),
            taxonomy: Taxonomy::from_toml(BUILTIN_CATEGORIES)
                .expect("shipped categories.toml is valid"),
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
        Ok(Self {
            tree: OrgTree::from_toml(&orgs).map_err(|source| ReferenceError::Orgs {
                path: orgs_path,
                source,
            })?,
            taxonomy: Taxonomy::from_toml(&cats).map_err(|source| ReferenceError::Categories {
                path: cat_path,
                source,
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
