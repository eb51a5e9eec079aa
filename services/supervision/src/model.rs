//! What supervision keeps of a case: where it stands, who holds it, its clocks, its timeline
//! and the notices sent about it — states as enums, text only at the row boundary.

use chrono::{DateTime, Utc};
use petition_domain::CaseStatus;
use petition_domain::clocks::{CaseClock, ClockKind, Warning};

petition_domain::text_enum! {
    /// A notice to an organ about a case (DOMAIN.md §6).
    pub enum NoticeKind {
        /// 提醒, before the last day
        Reminder = "reminder",
        /// 催办, the day after the last day, copied to the responsible leader
        Urging = "urging",
        /// 挂牌督办
        Listed = "listed",
        /// 通报
        Circular = "circular",
        /// 督办 issued by hand (Art. 40)
        Supervision = "supervision",
    }
}

impl NoticeKind {
    /// The notice a clock's warning sends, if it sends one.
    pub fn of_warning(w: Warning) -> Option<Self> {
        match w {
            Warning::Reminder => Some(NoticeKind::Reminder),
            Warning::Urging => Some(NoticeKind::Urging),
            Warning::Listed => Some(NoticeKind::Listed),
            Warning::Circular => Some(NoticeKind::Circular),
            Warning::WindowClosed => None,
        }
    }
}

/// One case as supervision follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisedCase {
    pub case_id: String,
    pub case_number: String,
    /// the organ that registered it (empty until the registration is seen)
    pub received_by: String,
    pub bureau: Option<String>,
    /// the organ that owes the handling now
    pub holder: Option<String>,
    pub accused_organ: Option<String>,
    pub stage: CaseStatus,
    /// when routing first sent, diverted or linked it (the forward clock's end)
    pub first_routed_at: Option<DateTime<Utc>>,
    pub extension_requested_days: Option<u32>,
    pub extension_reason: Option<String>,
    pub version: i64,
}

/// A case with its clocks: what every change reads and writes whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFile {
    pub case: SupervisedCase,
    pub clocks: Vec<CaseClock>,
}

impl CaseFile {
    pub fn new(case_id: &str, case_number: &str) -> Self {
        Self {
            case: SupervisedCase {
                case_id: case_id.to_owned(),
                case_number: case_number.to_owned(),
                received_by: String::new(),
                bureau: None,
                holder: None,
                accused_organ: None,
                stage: CaseStatus::Registered,
                first_routed_at: None,
                extension_requested_days: None,
                extension_reason: None,
                version: 0,
            },
            clocks: Vec::new(),
        }
    }

    pub fn clock(&self, kind: ClockKind) -> Option<&CaseClock> {
        self.clocks.iter().find(|c| c.kind == kind)
    }

    pub fn clock_mut(&mut self, kind: ClockKind) -> Option<&mut CaseClock> {
        self.clocks.iter_mut().find(|c| c.kind == kind)
    }

    /// Starts `clock`, replacing an earlier clock of its kind (stopped first, so a re-routed
    /// case owes the new holder a fresh period).
    pub fn start(&mut self, clock: CaseClock) {
        self.clocks.retain(|c| c.kind != clock.kind);
        self.clocks.push(clock);
    }
}

/// One line of a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub text: String,
    pub actor: String,
}

/// A notice sent to an organ, and its acknowledgment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRecord {
    pub notice_id: String,
    pub case_id: String,
    pub case_number: String,
    pub organ: String,
    pub accused_organ: Option<String>,
    pub kind: NoticeKind,
    pub clock: Option<ClockKind>,
    pub text: String,
    pub copy_to: String,
    pub issued_at: DateTime<Utc>,
    pub issued_by: String,
    pub feedback_due: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub feedback: Option<String>,
}
