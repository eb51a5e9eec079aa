//! Where a case stands as a whole, and the steps of its timeline, as intake shows them to staff
//! and to the petitioner (Art. 21: the petitioner can query the handling of the petition).

crate::text_enum! {
    /// A case's status across every service, from registration to closure.
    pub enum CaseStatus {
        /// 已登记: registered, not yet sent anywhere (also while in the bureau's triage queue)
        Registered = "registered",
        /// sent (转送/交办) to the organ with authority, awaiting its acceptance
        Routed = "routed",
        /// 诉访分离: handed to a legal or discipline channel with a written notice
        Diverted = "diverted",
        /// not accepted again: joined to a case already open (Art. 19 ¶3, repeat)
        Linked = "linked",
        /// 受理: accepted by the holder, being handled
        InHandling = "in_handling",
        /// the written opinion (信访处理意见书) is out
        Answered = "answered",
        Closed = "closed",
    }
}

impl CaseStatus {
    /// A repeat petition links only to cases not yet closed.
    pub fn is_open(self) -> bool {
        self != CaseStatus::Closed
    }
}

crate::text_enum! {
    /// One step of a case's timeline.
    pub enum StepKind {
        Registered = "registered",
        /// to an organ (also after a transfer, a manual route or an upheld objection)
        Routed = "routed",
        Diverted = "diverted",
        Linked = "linked",
        /// no rule matched: the bureau routes it by hand
        Triaged = "triaged",
        Accepted = "accepted",
        /// 异议: the holder says it is not competent
        Objected = "objected",
        ObjectionResolved = "objection_resolved",
        ExtensionRequested = "extension_requested",
        Answered = "answered",
        /// 办结报告 of an assigned (交办) case
        CompletionReported = "completion_reported",
        /// the extension was approved or refused, with the reason (Art. 34)
        ExtensionDecided = "extension_decided",
        /// 满意度评价
        Rated = "rated",
        /// 复查 requested of the organ one level up (Art. 35)
        ReviewRequested = "review_requested",
        /// 复查意见
        ReviewDecided = "review_decided",
        /// 复核 requested (Art. 36)
        ReexaminationRequested = "reexamination_requested",
        /// 复核意见: final, and the same matter is not accepted again (Art. 36 ¶3)
        Reexamined = "reexamined",
        /// final: no review or re-examination was requested in time
        Closed = "closed",
        /// a date counted into a year whose holidays were not loaded, counted again (later)
        DeadlineMoved = "deadline_moved",
    }
}

impl StepKind {
    /// The case status after this step, given the status before it.
    pub fn status_after(self, before: CaseStatus) -> CaseStatus {
        self.sets_status().unwrap_or(before)
    }

    /// The status this step gives the case, or `None` for a step that leaves it as it was.
    pub fn sets_status(self) -> Option<CaseStatus> {
        match self {
            StepKind::Registered | StepKind::Triaged => Some(CaseStatus::Registered),
            StepKind::Routed => Some(CaseStatus::Routed),
            StepKind::Diverted => Some(CaseStatus::Diverted),
            StepKind::Linked => Some(CaseStatus::Linked),
            StepKind::Accepted => Some(CaseStatus::InHandling),
            StepKind::Answered => Some(CaseStatus::Answered),
            StepKind::Reexamined | StepKind::Closed => Some(CaseStatus::Closed),
            StepKind::Objected
            | StepKind::ObjectionResolved
            | StepKind::ExtensionRequested
            | StepKind::ExtensionDecided
            | StepKind::Rated
            | StepKind::ReviewRequested
            | StepKind::ReviewDecided
            | StepKind::ReexaminationRequested
            | StepKind::CompletionReported
            | StepKind::DeadlineMoved => None,
        }
    }

    /// Steps the petitioner sees through the query code. Objections and the bureau's internal
    /// answers stay inside the administration; an extension is told to the petitioner with its
    /// reason (Art. 34).
    pub fn shown_to_petitioner(self) -> bool {
        !matches!(
            self,
            StepKind::Triaged
                | StepKind::Objected
                | StepKind::ObjectionResolved
                | StepKind::CompletionReported
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_life_of_a_case() {
        let mut s = CaseStatus::Registered;
        for (step, want) in [
            (StepKind::Triaged, CaseStatus::Registered),
            (StepKind::Routed, CaseStatus::Routed),
            (StepKind::Objected, CaseStatus::Routed),
            (StepKind::ObjectionResolved, CaseStatus::Routed),
            (StepKind::Accepted, CaseStatus::InHandling),
            (StepKind::ExtensionRequested, CaseStatus::InHandling),
            (StepKind::Answered, CaseStatus::Answered),
            (StepKind::CompletionReported, CaseStatus::Answered),
            (StepKind::Rated, CaseStatus::Answered),
            (StepKind::ReviewRequested, CaseStatus::Answered),
            (StepKind::ReviewDecided, CaseStatus::Answered),
            (StepKind::ReexaminationRequested, CaseStatus::Answered),
            (StepKind::Reexamined, CaseStatus::Closed),
        ] {
            s = step.status_after(s);
            assert_eq!(s, want, "after {step}");
        }
        assert!(!s.is_open() && CaseStatus::Answered.is_open());
    }

    #[test]
    fn the_petitioner_sees_the_outward_steps_only() {
        let shown: Vec<StepKind> = StepKind::ALL
            .iter()
            .copied()
            .filter(|k| k.shown_to_petitioner())
            .collect();
        assert!(shown.contains(&StepKind::Routed) && shown.contains(&StepKind::Answered));
        assert!(!shown.contains(&StepKind::Objected));
    }
}
