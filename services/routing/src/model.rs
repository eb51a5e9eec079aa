//! What routing knows of a case: where it is, why, and until when — with its states, modes and
//! outcomes as enums, mapped to text only at the row boundary.

use chrono::{DateTime, Utc};
use petition_domain::{Channel, Diversion, TypeOfMatter};
use serde::{Deserialize, Serialize};

petition_domain::text_enum! {
    /// Where a case stands in the inbox of the organ holding it.
    pub enum AssignmentState {
        /// 待领: sent, not yet accepted
        AwaitingAcceptance = "awaiting_acceptance",
        /// 待办: accepted, being handled
        Accepted = "accepted",
        /// 异议 pending the forwarding bureau's answer
        Objected = "objected",
        /// handed to a legal or discipline channel (诉访分离)
        Diverted = "diverted",
        /// joined to an open case
        Linked = "linked",
        /// nothing matched: waits in the bureau's triage queue
        Triage = "triage",
        /// the written opinion is out
        Answered = "answered",
        /// 交办: the completion report is in
        Completed = "completed",
    }
}

petition_domain::text_enum! {
    /// How the bureau sends a case (Art. 22).
    pub enum HandlingMode {
        /// 转送
        Forward = "forward",
        /// 交办: with a reporting deadline and a completion report (办结报告)
        Assign = "assign",
    }
}

petition_domain::text_enum! {
    /// What routing decided.
    pub enum RouteOutcome {
        Sent = "sent",
        Diverted = "diverted",
        Linked = "linked",
        Triage = "triage",
    }
}

petition_domain::text_enum! {
    /// Outcomes of a written opinion (Art. 32).
    pub enum ReplyOutcome {
        /// 支持
        Supported = "supported",
        /// 解释说明
        Explained = "explained",
        /// 不予支持
        NotSupported = "not_supported",
    }
}

petition_domain::text_enum! {
    /// 送达方式: how the written opinion reached the petitioner.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ServiceMode {
        InPerson = "in_person",
        Post = "post",
        Other = "other",
    }
}

petition_domain::text_enum! {
    /// What the petitioner said on receiving the opinion.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum PetitionerView {
        Agrees = "agrees",
        Disagrees = "disagrees",
        NoView = "no_view",
    }
}

/// One move of the case between organs, with why and who.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub at_micros: i64,
    pub from_organ: String,
    pub to_organ: String,
    pub rule: String,
    pub actor: String,
}

/// 送达: its date starts the window to request review (Art. 35).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub mode: ServiceMode,
    pub served_at_micros: i64,
    pub signed: bool,
    pub refused: bool,
    pub view: PetitionerView,
}

/// One case as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRecord {
    pub case_id: String,
    pub case_number: String,
    /// the organ that registered it
    pub received_by: String,
    /// the organ that holds it now
    pub organ: String,
    pub outcome: RouteOutcome,
    pub state: AssignmentState,
    pub mode: Option<HandlingMode>,
    pub rule: String,
    pub notice: String,
    pub hops: Vec<String>,
    pub linked_case_number: Option<String>,
    pub diversion: Option<Diversion>,
    pub type_of_matter: Option<TypeOfMatter>,
    pub category: String,
    pub problem_location: String,
    pub channel: Channel,
    pub forwarding_bureau: String,
    /// for accusations only (Art. 30 ¶3)
    pub accused_organ: Option<String>,
    pub flag_group: bool,
    pub flag_leapfrog: bool,
    pub flag_repeat: bool,
    pub received_at: DateTime<Utc>,
    pub route_due: DateTime<Utc>,
    pub organ_received_at: Option<DateTime<Utc>>,
    pub objection_due: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub handling_due: Option<DateTime<Utc>>,
    pub report_due: Option<DateTime<Utc>>,
    /// what orders the inbox (see `workflow::due`); `None` when nothing is due
    pub due_at: Option<DateTime<Utc>>,
    pub objection_reason: Option<String>,
    pub history: Vec<Step>,
    pub version: i64,
    pub reply_outcome: Option<ReplyOutcome>,
    pub reply_text: Option<String>,
    pub legal_basis: Option<String>,
    pub service_record: Option<ServiceRecord>,
    pub replied_at: Option<DateTime<Utc>>,
    pub served_at: Option<DateTime<Utc>>,
    pub extension_days: Option<i64>,
    pub extension_reason: Option<String>,
    pub completion_report: Option<String>,
    pub completion_reported_at: Option<DateTime<Utc>>,
    /// the staff who are out of the case (回避, Art. 28 ¶3): read with it, kept in `recusals`
    pub recused: Vec<String>,
}

impl AssignmentRecord {
    /// A record of a case not yet routed anywhere: the start of `workflow::route_new`.
    pub fn blank(case_id: &str, case_number: &str, at: DateTime<Utc>) -> Self {
        Self {
            case_id: case_id.to_owned(),
            case_number: case_number.to_owned(),
            received_by: String::new(),
            organ: String::new(),
            outcome: RouteOutcome::Triage,
            state: AssignmentState::Triage,
            mode: None,
            rule: String::new(),
            notice: String::new(),
            hops: Vec::new(),
            linked_case_number: None,
            diversion: None,
            type_of_matter: None,
            category: String::new(),
            problem_location: String::new(),
            channel: Channel::Visit,
            forwarding_bureau: String::new(),
            accused_organ: None,
            flag_group: false,
            flag_leapfrog: false,
            flag_repeat: false,
            received_at: at,
            route_due: at,
            organ_received_at: None,
            objection_due: None,
            accepted_at: None,
            handling_due: None,
            report_due: None,
            due_at: None,
            objection_reason: None,
            history: Vec::new(),
            version: 1,
            reply_outcome: None,
            reply_text: None,
            legal_basis: None,
            service_record: None,
            replied_at: None,
            served_at: None,
            extension_days: None,
            extension_reason: None,
            completion_report: None,
            completion_reported_at: None,
            recused: Vec::new(),
        }
    }
}
