//! What supervision keeps of a case: where it stands, who holds it, its clocks, its timeline
//! and the notices sent about it — states as enums, text only at the row boundary.

use chrono::{DateTime, Utc};
use petition_domain::clocks::{CaseClock, ClockKind, Warning};

petition_domain::text_enum! {
    /// Where a case stands in supervision's eyes, through review and re-examination to the
    /// end (DOMAIN.md §4: the overdue and window-lapsed transitions are explicit).
    pub enum CaseStage {
        Registered = "registered",
        Routed = "routed",
        Diverted = "diverted",
        Linked = "linked",
        InHandling = "in_handling",
        /// the written reply is served: the review and rating windows run
        Answered = "answered",
        /// 复查 requested of the organ one level up (Art. 35)
        ReviewRequested = "review_requested",
        /// 复查意见 given: the re-examination window runs
        ReviewDecided = "review_decided",
        /// 复核 requested (Art. 36)
        ReexaminationRequested = "reexamination_requested",
        /// re-examined, or a window lapsed unused
        Final = "final",
    }
}

petition_domain::text_enum! {
    /// 满意度评价 (DOMAIN.md §7).
    pub enum Satisfaction {
        Satisfied = "satisfied",
        BasicallySatisfied = "basically_satisfied",
        Dissatisfied = "dissatisfied",
    }
}

petition_domain::text_enum! {
    /// A review or re-examination opinion.
    pub enum ReviewDecision {
        /// 维持
        Uphold = "uphold",
        /// 变更
        Change = "change",
        /// 撤销并责令重新办理
        Redo = "redo",
    }
}

petition_domain::text_enum! {
    /// Why a case is final.
    pub enum FinalReason {
        /// no review or re-examination requested within its window
        WindowLapsed = "window_lapsed",
        /// 复核: the same matter is not accepted again (Art. 36 ¶3)
        Reexamined = "reexamined",
    }
}

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
    pub stage: CaseStage,
    /// when routing first sent, diverted or linked it (the forward clock's end)
    pub first_routed_at: Option<DateTime<Utc>>,
    pub extension_requested_days: Option<u32>,
    pub extension_reason: Option<String>,
    /// SHA-256 of the petitioner's query code, from intake
    pub query_code_digest: Option<String>,
    /// the organ whose written reply review looks at
    pub answered_by: Option<String>,
    pub bureau_rating: Option<Satisfaction>,
    pub organ_rating: Option<Satisfaction>,
    pub rating_reason: Option<String>,
    pub rated_at: Option<DateTime<Utc>>,
    pub final_reason: Option<FinalReason>,
    /// the earlier case of the same petitioner and matter, from intake's repeat flag
    pub repeat_of: Option<String>,
    /// 包案
    pub leader: Option<LeaderInCharge>,
    /// 积案 flagged by hand
    pub backlog_flag: bool,
    /// 化解 recorded: the case has left the backlog
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub petitioner_confirmed: bool,
    pub version: i64,
}

/// 包案: the leader who took personal charge of a case (Art. 18 ¶2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInCharge {
    pub leader: String,
    pub organ: String,
    pub plan: String,
    pub target_day: chrono::NaiveDate,
    pub taken_at: DateTime<Utc>,
}

/// A case with its clocks: what every change reads and writes whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFile {
    pub case: SupervisedCase,
    pub clocks: Vec<CaseClock>,
    /// the staff who are out of the case (回避, Art. 28 ¶3): read with it for the access
    /// policy, kept in `recusals`, never written back from here
    pub recused: Vec<String>,
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
                stage: CaseStage::Registered,
                first_routed_at: None,
                extension_requested_days: None,
                extension_reason: None,
                query_code_digest: None,
                answered_by: None,
                bureau_rating: None,
                organ_rating: None,
                rating_reason: None,
                rated_at: None,
                final_reason: None,
                repeat_of: None,
                leader: None,
                backlog_flag: false,
                resolved_at: None,
                resolution: None,
                petitioner_confirmed: false,
                version: 0,
            },
            clocks: Vec::new(),
            recused: Vec::new(),
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
