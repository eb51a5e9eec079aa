//! Reference data the rules need: the organisation tree, the content taxonomy and the holiday
//! calendar, read from `deploy/config/` (or a directory given at start-up), with the shipped
//! copies built in so a binary runs from anywhere.

use chrono::{Datelike, NaiveDate};
use petition_domain::calendar::{CalendarError, HolidayCalendar};
use petition_domain::category::TaxonomyError;
use petition_domain::org::OrgTreeError;
use petition_domain::{OrgTree, Taxonomy};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

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
    #[error(
        "the holiday calendar is the built-in copy; start with --config-dir to load one from a file"
    )]
    NoCalendarFile,
}

#[derive(Debug, Clone)]
pub struct Reference {
    /// shared with the access policy
    pub tree: Arc<OrgTree>,
    pub taxonomy: Taxonomy,
    pub calendar: LiveCalendar,
}

/// The holiday calendar as loaded now. The State Council publishes each year's arrangement in
/// November or December, so a running deployment takes the new year without a restart: the
/// file is read again when it changes or on an admin call, and the calendar is replaced whole.
/// Whoever counts takes `current()` once per decision, so a decision never mixes two calendars;
/// whoever keeps counted dates subscribes, to count them again.
#[derive(Clone)]
pub struct LiveCalendar {
    inner: Arc<LiveInner>,
}

struct LiveInner {
    now: watch::Sender<Arc<HolidayCalendar>>,
    path: Option<PathBuf>,
    /// the years a provisional deadline was counted into, each logged once
    warned: Mutex<HashSet<i32>>,
}

impl std::fmt::Debug for LiveCalendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCalendar")
            .field("years", &self.current().years())
            .field("path", &self.inner.path)
            .finish()
    }
}

/// What a load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarLoaded {
    /// first and last year now covered
    pub years: (i32, i32),
    /// false when the file held what was loaded already
    pub changed: bool,
}

impl LiveCalendar {
    /// A calendar read from `path` (`None`: the built-in copy, which nothing reloads).
    pub fn new(calendar: HolidayCalendar, path: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(LiveInner {
                now: watch::Sender::new(Arc::new(calendar)),
                path,
                warned: Mutex::new(HashSet::new()),
            }),
        }
    }

    pub fn current(&self) -> Arc<HolidayCalendar> {
        self.inner.now.borrow().clone()
    }

    /// Sees every calendar loaded after this call.
    pub fn subscribe(&self) -> watch::Receiver<Arc<HolidayCalendar>> {
        self.inner.now.subscribe()
    }

    /// The file it is read from.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Makes the calendar in `text` current, if it parses and keeps every year loaded now;
    /// otherwise the loaded one stays and the error names the line and the reason.
    pub fn load_text(&self, text: &str) -> Result<CalendarLoaded, CalendarError> {
        let new = HolidayCalendar::from_csv(text)?;
        new.may_replace(&self.current())?;
        let years = new.years().ok_or(CalendarError::Empty)?;
        let changed = self.inner.now.send_if_modified(|now| {
            if **now == new {
                return false;
            }
            *now = Arc::new(new);
            true
        });
        if changed {
            // a year newly covered may fall short again later only through another load
            self.inner
                .warned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|y| *y > years.1);
            tracing::info!(
                first_year = years.0,
                last_year = years.1,
                "holiday calendar loaded"
            );
        }
        Ok(CalendarLoaded { years, changed })
    }

    /// Reads the file again (see `load_text`).
    pub fn reload(&self) -> Result<CalendarLoaded, ReferenceError> {
        let path = self
            .inner
            .path
            .clone()
            .ok_or(ReferenceError::NoCalendarFile)?;
        let text = std::fs::read_to_string(&path).map_err(|source| ReferenceError::Read {
            path: path.clone(),
            source,
        })?;
        self.load_text(&text)
            .map_err(|source| ReferenceError::Calendar { path, source })
    }

    /// Says, once per year, that a deadline was counted into a year the calendar lacks: the
    /// warning an operator acts on by loading that year's arrangement.
    pub fn note_provisional(&self, last_day: NaiveDate) {
        let year = last_day.year();
        let fresh = self
            .inner
            .warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(year);
        if fresh {
            tracing::warn!(
                year,
                file = %self.path().map_or("the built-in cn-calendar.csv (start with --config-dir to load another)".into(), |p| p.display().to_string()),
                "a deadline runs into {year}, whose holiday arrangement (放假调休) is not loaded: it is provisional until the year is added to the calendar file"
            );
        }
    }
}

impl Reference {
    pub fn builtin() -> Self {
        Self {
            tree: Arc::new(OrgTree::from_toml(BUILTIN_ORGS).expect("shipped orgs.toml is valid")),
            taxonomy: Taxonomy::from_toml(BUILTIN_CATEGORIES)
                .expect("shipped categories.toml is valid"),
            calendar: LiveCalendar::new(
                HolidayCalendar::from_csv(BUILTIN_CALENDAR)
                    .expect("shipped cn-calendar.csv is valid"),
                None,
            ),
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
            calendar: LiveCalendar::new(
                HolidayCalendar::from_csv(&cal).map_err(|source| ReferenceError::Calendar {
                    path: cal_path.clone(),
                    source,
                })?,
                Some(cal_path),
            ),
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

    /// A directory of its own holding the shipped files, for a test to change.
    fn config_copy() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("orgs.toml", BUILTIN_ORGS),
            ("categories.toml", BUILTIN_CATEGORIES),
            ("cn-calendar.csv", BUILTIN_CALENDAR),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_new_year_loads_and_a_malformed_file_keeps_the_old_calendar() {
        let dir = config_copy();
        let file = dir.path().join("cn-calendar.csv");
        let r = Reference::load(Some(dir.path())).unwrap();
        let mut seen = r.calendar.subscribe();
        assert_eq!(r.calendar.current().years(), Some((2022, 2026)));
        // Unchanged: nothing to tell subscribers.
        assert_eq!(
            r.calendar.reload().unwrap(),
            CalendarLoaded {
                years: (2022, 2026),
                changed: false
            }
        );
        assert!(!seen.has_changed().unwrap());
        let fixture = include_str!("../../../tests/fixtures/calendar-2027-fixture.csv");
        std::fs::write(&file, format!("{BUILTIN_CALENDAR}\n{fixture}")).unwrap();
        assert_eq!(r.calendar.reload().unwrap().years, (2022, 2027));
        assert!(seen.has_changed().unwrap());
        assert_eq!(seen.borrow_and_update().years(), Some((2022, 2027)));
        // A malformed line: refused with its number and reason; 2027 stays loaded.
        let bad = format!("{BUILTIN_CALENDAR}\n{fixture}\n2028-01-01,holiday,元旦\n");
        std::fs::write(&file, &bad).unwrap();
        let err = r.calendar.reload().unwrap_err().to_string();
        let line = 1 + bad.lines().position(|l| l.starts_with("2028")).unwrap();
        assert!(err.contains(&format!("line {line}:")), "{err}");
        assert!(err.contains("kind off or workday"), "{err}");
        assert!(err.contains("cn-calendar.csv"), "{err}");
        assert_eq!(r.calendar.current().years(), Some((2022, 2027)));
        // A file cut short: refused, it would drop loaded years.
        std::fs::write(&file, fixture).unwrap();
        assert!(
            r.calendar
                .reload()
                .unwrap_err()
                .to_string()
                .contains("covers 2027")
        );
        assert!(!seen.has_changed().unwrap());
    }

    #[test]
    fn the_built_in_calendar_has_no_file_to_reload() {
        let r = Reference::builtin();
        assert!(matches!(
            r.calendar.reload(),
            Err(ReferenceError::NoCalendarFile)
        ));
    }

    #[test]
    fn a_missing_directory_names_the_file() {
        let err = Reference::load(Some(Path::new("/nonexistent-petition-config"))).unwrap_err();
        assert!(err.to_string().contains("orgs.toml"), "{err}");
    }
}
