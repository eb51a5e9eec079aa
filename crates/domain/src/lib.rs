//! The rules of letters-and-visits work (信访) that every service shares, free of I/O.
//!
//! Each module holds one body of rules; article numbers refer to the 2022 《信访工作条例》.

pub mod text_enum;

pub mod calendar;
pub mod case;
pub mod case_number;
pub mod category;
pub mod channel;
pub mod clock;
pub mod clocks;
pub mod identity;
pub mod intake;
pub mod limits;
pub mod org;
pub mod query_code;
pub mod recusal;
pub mod region;
pub mod routing;
pub mod validation;

pub use calendar::beijing_time;
pub use case::{CaseStatus, StepKind};
pub use case_number::CaseNumber;
pub use category::{Category, Diversion, Taxonomy, TypeOfMatter};
pub use channel::Channel;
pub use clock::{Clock, FixedClock, SimulatedClock, SystemClock};
pub use identity::{IdType, ResidentId, Sex};
pub use org::{Level, OrgKind, OrgTree, Organ};
pub use query_code::QueryCode;
pub use recusal::RecusalReason;
pub use region::RegionCode;
pub use text_enum::UnknownValue;
pub use validation::Violation;
