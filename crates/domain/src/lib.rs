//! The rules of letters-and-visits work (信访) that every service shares, free of I/O.
//!
//! Each module holds one body of rules; article numbers refer to the 2022 《信访工作条例》.

pub mod calendar;
pub mod case_number;
pub mod category;
pub mod channel;
pub mod clock;
pub mod identity;
pub mod intake;
pub mod limits;
pub mod org;
pub mod query_code;
pub mod region;
pub mod routing;

pub use case_number::CaseNumber;
pub use category::{Category, Diversion, Taxonomy, TypeOfMatter};
pub use channel::Channel;
pub use clock::{Clock, FixedClock, SystemClock};
pub use identity::{IdType, ResidentId, Sex};
pub use org::{Level, OrgKind, OrgTree, Organ};
pub use query_code::QueryCode;
pub use region::RegionCode;
