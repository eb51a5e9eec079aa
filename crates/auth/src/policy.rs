//! The one access policy. Every read and write of every service asks it; no service decides
//! access on its own.
//!
//! Scope by role: an admin reaches everything; staff (clerk, handler, supervisor, leader) their
//! own organ and the organs below it; an upstream system what it submitted; an analyst no
//! single case (aggregates only). A case is within an organ's reach when the organ received it,
//! holds it now (it was forwarded, assigned or diverted there), or is the bureau that sent it.
//!
//! Art. 30 ¶3 comes first: when a case is an accusation, the accused organ and every organ
//! under it see nothing of it — not its content, not that it exists. Services answer such a
//! caller exactly as they answer for a case that does not exist.
//!
//! Recusal (回避, Art. 28 ¶3) is answered the same way: a member of staff recorded as having a
//! direct interest in a case sees nothing of it, whatever their role and organ.

use crate::{Principal, Role};
use petition_domain::OrgTree;
use std::sync::Arc;

/// What the policy needs to know of a case, whichever service holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaseFacts<'a> {
    /// the organ that registered it
    pub received_by: &'a str,
    /// the organ that holds it now, once routed
    pub holder: Option<&'a str>,
    /// the bureau that routes it (routing's forwarding bureau)
    pub bureau: Option<&'a str>,
    /// the accused party's organ, for accusations only (Art. 30 ¶3)
    pub accused_organ: Option<&'a str>,
    /// the upstream system that submitted it
    pub source_system: Option<&'a str>,
    /// the staff who are out of it (回避, Art. 28 ¶3), by subject
    pub recused: &'a [String],
}

/// How far a principal reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Everything,
    OrganAndBelow(String),
    Submitted(String),
    /// figures only, no single case
    Aggregates,
}

/// What a principal may see of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseView {
    Visible {
        /// petitioners' identity and contact data in the clear, or masked
        personal_data: bool,
    },
    /// An existing case outside the caller's reach: PERMISSION_DENIED, naming nothing of it.
    OutOfReach,
    /// Art. 30 ¶3: the caller is on the accused side and must not learn the case exists:
    /// answered as if it did not.
    Hidden,
}

/// Who may issue a command on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// the organ holding the case: accept, object, transfer, reply, extend, report
    Holder,
    /// the bureau that routes it: resolve objections, route by hand, supervise (督办)
    Bureau,
    /// leaders and supervisors of an organ above the holder (上一级机关): approve what the
    /// holder may not approve for itself
    Superior,
}

/// A refusal, in words that name only the caller's own organ and role and the request's
/// fields — never another organ's case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Which cases a figure (a count, a rate, a chart) may count for the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FigureScope {
    /// the organ whose figures they are; empty: everywhere
    pub organ: String,
    /// `None`: any organ; otherwise only cases registered by or the responsibility of one of these
    pub organs: Option<Vec<String>>,
    /// never an accusation against one of these organs (Art. 30 ¶3): not even as a number
    pub hidden_accused: Vec<String>,
    /// lists of cases leave out those this person is out of (回避, Art. 28 ¶3); figures,
    /// which name no case, count them
    pub recused: Option<String>,
}

/// How to narrow a list to what the caller may see, in SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListScope {
    /// `None`: any organ; otherwise only cases received by, held by or routed by one of these
    pub organs: Option<Vec<String>>,
    /// only what this upstream system submitted
    pub source_system: Option<String>,
    /// never an accusation against one of these organs: the caller's own and those above it
    pub hidden_accused: Vec<String>,
    /// never a case this person is out of (回避, Art. 28 ¶3)
    pub recused: Option<String>,
    /// the caller sees no single case at all
    pub nothing: bool,
}

#[derive(Debug, Clone)]
pub struct AccessPolicy {
    tree: Arc<OrgTree>,
}

impl AccessPolicy {
    pub fn new(tree: Arc<OrgTree>) -> Self {
        Self { tree }
    }

    pub fn tree(&self) -> &OrgTree {
        &self.tree
    }

    pub fn scope(&self, p: &Principal) -> Scope {
        match p.role {
            Role::Admin => Scope::Everything,
            Role::Upstream => Scope::Submitted(p.subject.clone()),
            Role::Analyst => Scope::Aggregates,
            Role::Clerk | Role::Handler | Role::Supervisor | Role::Leader => {
                Scope::OrganAndBelow(p.org.clone())
            }
        }
    }

    /// Whether `p` sits on the accused side of an accusation against `accused`: the accused
    /// organ itself or any organ under it. An upstream system is a platform, not staff of the
    /// organ its token names, and it already holds what it submitted.
    pub fn is_accused_side(&self, p: &Principal, accused: Option<&str>) -> bool {
        p.role != Role::Upstream && accused.is_some_and(|a| self.tree.is_same_or_above(a, &p.org))
    }

    /// Whether `p` is out of the case (回避). An upstream system is a platform, not a person
    /// with an interest.
    pub fn is_recused(&self, p: &Principal, case: &CaseFacts<'_>) -> bool {
        p.role != Role::Upstream && case.recused.contains(&p.subject)
    }

    /// Recording that `subject`, of `subject_organ`, is out of a case `p` sees (回避, Art. 28
    /// ¶3): the member of staff themselves; a leader or supervisor over the case (of the
    /// holding organ, an organ above it or the bureau that routes it) for staff of their own
    /// organ or one below it — never for those above them, who oversee them; or an admin.
    pub fn may_record_recusal(
        &self,
        p: &Principal,
        case: &CaseFacts<'_>,
        subject: &str,
        subject_organ: &str,
    ) -> Result<(), Denied> {
        let over = |o: Option<&str>| o.is_some_and(|o| self.tree.is_same_or_above(&p.org, o));
        if p.role == Role::Admin
            || (p.role.is_staff() && p.subject == subject && p.org == subject_organ)
            || (matches!(p.role, Role::Leader | Role::Supervisor)
                && (over(case.holder) || over(case.bureau))
                && self.tree.is_same_or_above(&p.org, subject_organ))
        {
            Ok(())
        } else {
            Err(Denied(format!(
                "only the member of staff themselves, a leader or supervisor over the case for staff of their own organ or one below it, or an admin records a recusal (回避); {} ({}) may not for this one",
                p.org, p.role
            )))
        }
    }

    fn reaches(&self, p: &Principal, case: &CaseFacts<'_>) -> bool {
        match self.scope(p) {
            Scope::Everything => true,
            Scope::Aggregates => false,
            Scope::Submitted(subject) => case.source_system == Some(subject.as_str()),
            Scope::OrganAndBelow(org) => [Some(case.received_by), case.holder, case.bureau]
                .into_iter()
                .flatten()
                .any(|o| self.tree.is_same_or_above(&org, o)),
        }
    }

    pub fn view(&self, p: &Principal, case: &CaseFacts<'_>) -> CaseView {
        if self.is_accused_side(p, case.accused_organ) || self.is_recused(p, case) {
            return CaseView::Hidden;
        }
        if !self.reaches(p, case) {
            return CaseView::OutOfReach;
        }
        CaseView::Visible {
            personal_data: p.may_see_personal_data(),
        }
    }

    /// Whether `p` may issue a command that is `duty`'s to issue. Assumes the case is visible.
    pub fn may_act(&self, p: &Principal, case: &CaseFacts<'_>, duty: Duty) -> Result<(), Denied> {
        if p.role == Role::Admin {
            return Ok(());
        }
        match duty {
            Duty::Holder if p.role.is_staff() && case.holder == Some(p.org.as_str()) => Ok(()),
            Duty::Holder => Err(Denied(format!(
                "only staff of the organ holding the case may do this; {} ({}) does not hold it",
                p.org, p.role
            ))),
            Duty::Bureau
                if p.role.is_bureau_desk()
                    && case
                        .bureau
                        .is_some_and(|b| self.tree.is_same_or_above(&p.org, b)) =>
            {
                Ok(())
            }
            Duty::Bureau => Err(Denied(format!(
                "only the bureau that routes the case may do this; {} ({}) does not",
                p.org, p.role
            ))),
            Duty::Superior
                if matches!(p.role, Role::Leader | Role::Supervisor)
                    && case
                        .holder
                        .is_some_and(|h| h != p.org && self.tree.is_same_or_above(&p.org, h)) =>
            {
                Ok(())
            }
            Duty::Superior => Err(Denied(format!(
                "only a leader or supervisor of an organ above the holder may do this; {} ({}) is not one",
                p.org, p.role
            ))),
        }
    }

    /// Whether `bureau` is a petition bureau that supervises `organ` (Art. 14: 督促检查): an
    /// organ of its territory at its level or below (属地管理).
    pub fn supervises(&self, bureau: &str, organ: &str) -> bool {
        match (self.tree.get(bureau), self.tree.get(organ)) {
            (Some(b), Some(o)) => {
                b.kind == petition_domain::OrgKind::Bureau
                    && o.level.rank() >= b.level.rank()
                    && b.region.contains(&o.region)
            }
            _ => false,
        }
    }

    /// Reading an organ's lists (what it owes, the notices it was sent): its own staff, the
    /// staff of the organs above it, the petition bureau that supervises it, or an admin.
    pub fn may_list_for(&self, p: &Principal, organ: &str) -> Result<(), Denied> {
        match self.scope(p) {
            Scope::Everything => Ok(()),
            Scope::OrganAndBelow(org) if self.tree.is_same_or_above(&org, organ) => Ok(()),
            Scope::OrganAndBelow(org)
                if p.role.is_bureau_desk() && self.supervises(&org, organ) =>
            {
                Ok(())
            }
            Scope::OrganAndBelow(org) => Err(Denied(format!(
                "organ: {org} ({}) reads the lists of {org}, the organs below it and, for a petition bureau, the organs of its territory only",
                p.role
            ))),
            Scope::Submitted(_) | Scope::Aggregates => Err(Denied(format!(
                "role {} has no organ's lists to read",
                p.role
            ))),
        }
    }

    /// `organ` and every organ it covers — those below it and, for a petition bureau, the
    /// organs of its territory — that `p` may read the lists of: a bureau's due board reads
    /// them at once. `organ` itself must be within `p`'s reach.
    pub fn list_reach(&self, p: &Principal, organ: &str) -> Result<Vec<String>, Denied> {
        self.may_list_for(p, organ)?;
        let mut out: Vec<String> = self
            .tree
            .organs()
            .filter(|o| {
                o.id == organ
                    || self.tree.is_same_or_above(organ, &o.id)
                    || self.supervises(organ, &o.id)
            })
            .filter(|o| self.may_list_for(p, &o.id).is_ok())
            .map(|o| o.id.clone())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Carrying the petitioner's own request — a rating, a request for review — with the
    /// petitioner's query code: a bureau's window (clerk, supervisor, leader), the platform
    /// the petitioner uses (upstream), or an admin. The code, not the caller's reach, is what
    /// shows the petitioner's standing; the services check it.
    pub fn may_act_for_petitioner(&self, p: &Principal) -> Result<(), Denied> {
        if p.role.is_bureau_desk() || matches!(p.role, Role::Upstream | Role::Admin) {
            Ok(())
        } else {
            Err(Denied(format!(
                "role {} does not take petitioners' requests; a bureau's window or the petitioner's platform does",
                p.role
            )))
        }
    }

    /// 包案: a leader takes personal charge of a case within reach (Art. 18 ¶2).
    pub fn may_take_charge(&self, p: &Principal) -> Result<(), Denied> {
        if matches!(p.role, Role::Leader | Role::Admin) {
            Ok(())
        } else {
            Err(Denied(format!(
                "only a leader takes personal charge of a case (包案); {} ({}) is not one",
                p.org, p.role
            )))
        }
    }

    /// Recording progress on a case, or its resolution (化解): the leader in charge of it, the
    /// staff of the organ holding it, or an admin.
    pub fn may_record_progress(
        &self,
        p: &Principal,
        case: &CaseFacts<'_>,
        leader_in_charge: Option<&str>,
    ) -> Result<(), Denied> {
        if p.role == Role::Admin
            || leader_in_charge == Some(p.subject.as_str())
            || (p.role.is_staff() && case.holder == Some(p.org.as_str()))
        {
            Ok(())
        } else {
            Err(Denied(format!(
                "only the leader in charge or staff of the organ holding the case record its progress; {} ({}) is neither",
                p.org, p.role
            )))
        }
    }

    /// Answering a notice sent to `organ`: its own staff, or an admin.
    pub fn may_answer_for(&self, p: &Principal, organ: &str) -> Result<(), Denied> {
        if p.role == Role::Admin || (p.role.is_staff() && p.org == organ) {
            Ok(())
        } else {
            Err(Denied(format!(
                "only staff of the organ a notice was sent to acknowledge it; {} ({}) is not",
                p.org, p.role
            )))
        }
    }

    /// What a list may show `p`.
    pub fn list_scope(&self, p: &Principal) -> ListScope {
        let hidden_accused = if p.role == Role::Upstream {
            Vec::new()
        } else {
            self.tree
                .chain(&p.org)
                .into_iter()
                .map(|o| o.id.clone())
                .collect()
        };
        let mut s = ListScope {
            hidden_accused,
            recused: (p.role != Role::Upstream).then(|| p.subject.clone()),
            ..ListScope::default()
        };
        match self.scope(p) {
            Scope::Everything => {}
            Scope::Aggregates => s.nothing = true,
            Scope::Submitted(subject) => s.source_system = Some(subject),
            Scope::OrganAndBelow(org) => {
                s.organs = Some(self.tree.within(&org).map(|o| o.id.clone()).collect());
            }
        }
        s
    }

    /// Registration (登记): bureau desk staff for organs within their reach, an upstream system
    /// under its own name, an admin for anyone.
    pub fn may_register(
        &self,
        p: &Principal,
        received_by: &str,
        source_system: &str,
    ) -> Result<(), Denied> {
        let source_system = source_system.trim();
        match p.role {
            Role::Admin => Ok(()),
            Role::Upstream if source_system == p.subject => Ok(()),
            Role::Upstream => Err(Denied(format!(
                "source_system: an upstream system registers under its own name {:?}",
                p.subject
            ))),
            Role::Clerk | Role::Supervisor | Role::Leader if !source_system.is_empty() => {
                Err(Denied(
                    "source_system: only an upstream system (role upstream) registers under a \
                     source_system; staff leave it empty"
                        .into(),
                ))
            }
            Role::Clerk | Role::Supervisor | Role::Leader => {
                // Unknown organs fall through to validation, which names the field.
                if received_by.is_empty()
                    || self.tree.get(received_by).is_none()
                    || self.tree.is_same_or_above(&p.org, received_by)
                {
                    Ok(())
                } else {
                    Err(Denied(format!(
                        "received_by: staff of {} register only petitions received by {} or an organ below it",
                        p.org, p.org
                    )))
                }
            }
            Role::Handler | Role::Analyst => Err(Denied(format!(
                "role {} may not register petitions (登记 is for bureau clerks and upstream systems)",
                p.role
            ))),
        }
    }

    /// Federation (DESIGN §5b): a case comes down with the organ a peer routed it to, and its
    /// steps go back up, only for a peer deployment (role upstream), under its own name.
    pub fn may_federate(&self, p: &Principal, what: &str) -> Result<(), Denied> {
        if p.role == Role::Upstream {
            Ok(())
        } else {
            Err(Denied(format!(
                "{what}: only a peer deployment (role upstream) does this; {} is {}",
                p.subject, p.role
            )))
        }
    }

    /// Who lists and retries the exchanges of cases routed to peer deployments: supervisors,
    /// leaders and admins, for the bureaus within their reach (`None`: every bureau). The
    /// list is then narrowed by `list_scope`'s `hidden_accused`, as every list is.
    pub fn exchange_reach(&self, p: &Principal) -> Result<Option<Vec<String>>, Denied> {
        match p.role {
            Role::Admin => Ok(None),
            Role::Supervisor | Role::Leader => Ok(Some(
                self.tree.within(&p.org).map(|o| o.id.clone()).collect(),
            )),
            _ => Err(Denied(format!(
                "role {} does not manage exchanges with peer deployments; a supervisor, leader or admin of the routing bureau does",
                p.role
            ))),
        }
    }

    /// Bringing the old system's history in: an admin, once per import.
    pub fn may_import(&self, p: &Principal) -> Result<(), Denied> {
        if p.role == Role::Admin {
            Ok(())
        } else {
            Err(Denied(format!(
                "role {} may not import history; ImportPetitions is for an admin of the registering organs",
                p.role
            )))
        }
    }

    /// Each imported case: registered by the admin's organ or one below it.
    pub fn may_import_for(&self, p: &Principal, received_by: &str) -> Result<(), Denied> {
        if p.role == Role::Admin && self.tree.is_same_or_above(&p.org, received_by) {
            Ok(())
        } else {
            Err(Denied(format!(
                "received_by: an admin of {} imports the cases of {} and the organs below it only",
                p.org, p.org
            )))
        }
    }

    /// Looking a petitioner up by identity is a reveal of personal data.
    pub fn may_look_up_petitioners(&self, p: &Principal) -> Result<(), Denied> {
        if p.may_see_personal_data() {
            Ok(())
        } else {
            Err(Denied(format!(
                "role {} may not look petitioners up by identity",
                p.role
            )))
        }
    }

    /// Working a bureau's triage queue.
    pub fn may_triage(&self, p: &Principal) -> Result<(), Denied> {
        if p.role.is_bureau_desk() || p.role == Role::Admin {
            Ok(())
        } else {
            Err(Denied(format!(
                "role {} does not work the bureau's triage queue",
                p.role
            )))
        }
    }

    /// Working an organ's inbox: its staff, or an admin.
    pub fn may_work_inbox(&self, p: &Principal) -> Result<(), Denied> {
        if p.role.is_staff() || p.role == Role::Admin {
            Ok(())
        } else {
            Err(Denied(format!(
                "role {} has no inbox; the inbox is for the staff of an organ",
                p.role
            )))
        }
    }

    /// Reading the figures of `organ` (the caller's own when empty): an organ's staff and
    /// analysts read their own organ's and those below it, a petition bureau's also those of
    /// the organs of its territory; an admin reads any organ's, or everything's. An upstream
    /// system reads no figures: it is a platform, not an organ of this deployment.
    pub fn figures(&self, p: &Principal, organ: &str) -> Result<FigureScope, Denied> {
        let ListScope {
            hidden_accused,
            recused,
            ..
        } = self.list_scope(p);
        let reach = |organ: &str| -> Vec<String> {
            self.tree
                .organs()
                .filter(|o| {
                    self.tree.is_same_or_above(organ, &o.id) || self.supervises(organ, &o.id)
                })
                .map(|o| o.id.clone())
                .collect()
        };
        if !organ.is_empty() && self.tree.get(organ).is_none() {
            return Err(Denied(format!(
                "organ: {organ:?} is not an organ of the organisation tree"
            )));
        }
        match p.role {
            Role::Upstream => Err(Denied(
                "role upstream reads no figures; an organ's staff, an analyst or an admin does"
                    .into(),
            )),
            Role::Admin if organ.is_empty() => Ok(FigureScope {
                hidden_accused,
                recused,
                ..FigureScope::default()
            }),
            Role::Admin => Ok(FigureScope {
                organ: organ.to_owned(),
                organs: Some(reach(organ)),
                hidden_accused,
                recused,
            }),
            _ => {
                let organ = if organ.is_empty() {
                    p.org.as_str()
                } else {
                    organ
                };
                if !reach(&p.org).iter().any(|o| o == organ) {
                    return Err(Denied(format!(
                        "organ: {} ({}) reads the figures of {}, the organs below it and, for a petition bureau, the organs of its territory only",
                        p.org, p.role, p.org
                    )));
                }
                Ok(FigureScope {
                    organ: organ.to_owned(),
                    organs: Some(reach(organ)),
                    hidden_accused,
                    recused,
                })
            }
        }
    }

    /// Keeping the register of suggestions to the Party committee and government (Art. 41):
    /// a petition bureau's supervisors and leaders, or an admin.
    pub fn may_record_suggestions(&self, p: &Principal) -> Result<(), Denied> {
        let bureau = self
            .tree
            .get(&p.org)
            .is_some_and(|o| o.kind == petition_domain::OrgKind::Bureau);
        if p.role == Role::Admin || (bureau && matches!(p.role, Role::Supervisor | Role::Leader)) {
            Ok(())
        } else {
            Err(Denied(format!(
                "only a petition bureau's supervisors and leaders record suggestions; {} ({}) is not one",
                p.org, p.role
            )))
        }
    }

    /// Rebuilding a service's read models: an admin.
    pub fn may_administer(&self, p: &Principal) -> Result<(), Denied> {
        if p.role == Role::Admin {
            Ok(())
        } else {
            Err(Denied(format!(
                "only an admin may do this; {} is {}",
                p.subject, p.role
            )))
        }
    }

    /// Deployment-wide upkeep that touches every organ's records (re-sealing personal data
    /// under a new key): an admin of an organ at the top of the tree, not one of a department.
    pub fn may_maintain_deployment(&self, p: &Principal) -> Result<(), Denied> {
        self.may_administer(p)?;
        // The top bureau, not any organ without a parent: a court or a discipline commission
        // at the top of its own chain sees nothing of the petitions' records.
        let top_bureau = self
            .tree
            .get(&p.org)
            .is_some_and(|o| o.kind == petition_domain::OrgKind::Bureau && o.parent.is_none());
        if !top_bureau {
            return Err(Denied(format!(
                "only an admin of the deployment's top bureau (信访局) may do this; {} is not it",
                p.org
            )));
        }
        Ok(())
    }

    /// Personal data in the clear, for a case `p` sees: the roles that deal with petitioners
    /// (clerk, supervisor, leader) where they reach, and an admin of the top bureau or of an
    /// organ over the case's registering or holding organ — not an admin elsewhere, who reaches
    /// every case only to keep the system running.
    pub fn may_reveal(&self, p: &Principal, case: &CaseFacts<'_>) -> Result<(), Denied> {
        if !p.may_see_personal_data() {
            return Err(Denied(format!(
                "role {} does not see petitioners' personal data; a clerk, supervisor, leader or admin within reach does",
                p.role
            )));
        }
        if p.role != Role::Admin || self.may_maintain_deployment(p).is_ok() {
            return Ok(());
        }
        let over =
            |organ: Option<&str>| organ.is_some_and(|o| self.tree.is_same_or_above(&p.org, o));
        if over(Some(case.received_by)) || over(case.holder) {
            Ok(())
        } else {
            Err(Denied(format!(
                "an admin of {} sees personal data of the cases of its own organs only",
                p.org
            )))
        }
    }

    /// Reading single cases at all.
    pub fn may_read_cases(&self, p: &Principal) -> Result<(), Denied> {
        if p.role == Role::Analyst {
            Err(Denied(
                "role analyst sees aggregates only, not individual cases".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_reach_an_organ_its_subordinates_and_a_bureau_its_territory() {
        let p = policy();
        let staff = |org: &str, role: Role| Principal {
            subject: format!("someone@{org}"),
            org: org.into(),
            role,
            scopes: vec![],
        };
        let bureau = staff("pingcheng.bureau", Role::Leader);
        let s = p.figures(&bureau, "").unwrap();
        assert_eq!(s.organ, "pingcheng.bureau");
        let organs = s.organs.unwrap();
        // its territory's departments report to the city's, yet the district bureau reads them
        assert!(
            organs.iter().any(|o| o == "pingcheng.housing"),
            "{organs:?}"
        );
        assert!(!organs.iter().any(|o| o == "datong.housing"), "{organs:?}");
        assert!(p.figures(&bureau, "pingcheng.housing").is_ok());
        let e = p.figures(&bureau, "datong.bureau").unwrap_err();
        assert!(
            e.0.starts_with("organ: pingcheng.bureau (leader) reads the figures"),
            "{e}"
        );
        // a department reads its own, not its bureau's
        let dept = staff("pingcheng.housing", Role::Analyst);
        assert!(p.figures(&dept, "pingcheng.bureau").is_err());
        assert_eq!(p.figures(&dept, "").unwrap().organ, "pingcheng.housing");
        assert!(p.figures(&staff("x", Role::Upstream), "").is_err());
        // accusations against the caller's chain are hidden even as numbers
        assert!(
            p.figures(&dept, "")
                .unwrap()
                .hidden_accused
                .contains(&"pingcheng.housing".to_owned())
        );
        let admin = staff("pingcheng.bureau", Role::Admin);
        assert_eq!(p.figures(&admin, "").unwrap().organs, None);
        assert!(p.figures(&admin, "no.such.organ").is_err());
    }

    #[test]
    fn only_an_admin_imports_and_only_within_reach() {
        let p = policy();
        let admin = |org: &str| Principal {
            subject: format!("admin@{org}"),
            org: org.into(),
            role: Role::Admin,
            scopes: vec![],
        };
        assert!(p.may_import(&admin("pingcheng.bureau")).is_ok());
        let clerk = Principal {
            role: Role::Clerk,
            ..admin("pingcheng.bureau")
        };
        assert!(p.may_import(&clerk).unwrap_err().0.contains("role clerk"));
        assert!(
            p.may_import_for(&admin("datong.bureau"), "pingcheng.bureau")
                .is_ok()
        );
        assert!(
            p.may_import_for(&admin("pingcheng.bureau"), "datong.bureau")
                .unwrap_err()
                .0
                .contains("received_by")
        );
    }

    fn policy() -> AccessPolicy {
        AccessPolicy::new(Arc::new(
            OrgTree::from_toml(include_str!("../../../deploy/config/orgs.toml")).unwrap(),
        ))
    }

    fn who(org: &str, role: Role) -> Principal {
        Principal {
            subject: format!("{role}@{org}"),
            org: org.into(),
            role,
            scopes: vec![],
        }
    }

    /// An accusation against the city bureau, registered at the district bureau, held by the
    /// city's discipline commission.
    fn accusation() -> CaseFacts<'static> {
        CaseFacts {
            received_by: "pingcheng.bureau",
            holder: Some("datong.discipline"),
            bureau: Some("pingcheng.bureau"),
            accused_organ: Some("datong.bureau"),
            source_system: None,
            recused: &[],
        }
    }

    #[test]
    fn staff_out_of_a_case_see_nothing_of_it_whatever_their_role() {
        let p = policy();
        let recused = ["leader@pingcheng.housing".to_owned()];
        let case = CaseFacts {
            received_by: "pingcheng.bureau",
            holder: Some("pingcheng.housing"),
            bureau: Some("pingcheng.bureau"),
            recused: &recused,
            ..CaseFacts::default()
        };
        let out = who("pingcheng.housing", Role::Leader);
        assert_eq!(p.view(&out, &case), CaseView::Hidden);
        assert_eq!(
            p.list_scope(&out).recused.as_deref(),
            Some(out.subject.as_str())
        );
        // Their colleagues of the same organ and role by another name still see it.
        let mut colleague = out.clone();
        colleague.subject = "leader2@pingcheng.housing".into();
        assert!(matches!(
            p.view(&colleague, &case),
            CaseView::Visible { .. }
        ));
        // An upstream system is a platform, never out of a case.
        let mut platform = who("datong.bureau", Role::Upstream);
        platform.subject = "leader@pingcheng.housing".into();
        assert!(!p.is_recused(&platform, &case));
        assert_eq!(p.list_scope(&platform).recused, None);
    }

    #[test]
    fn a_recusal_is_recorded_by_the_person_a_leader_over_the_case_or_an_admin() {
        let p = policy();
        let case = CaseFacts {
            received_by: "pingcheng.bureau",
            holder: Some("pingcheng.housing"),
            bureau: Some("pingcheng.bureau"),
            ..CaseFacts::default()
        };
        let may = |by: &Principal, subject: &str, organ: &str| {
            p.may_record_recusal(by, &case, subject, organ).is_ok()
        };
        let handler = who("pingcheng.housing", Role::Handler);
        let housing = "pingcheng.housing";
        assert!(
            may(&handler, &handler.subject, housing),
            "one's own interest"
        );
        assert!(
            !may(&handler, "clerk@pingcheng.housing", housing),
            "a colleague's"
        );
        for (org, role) in [
            ("pingcheng.housing", Role::Leader),
            ("pingcheng.housing", Role::Supervisor),
            ("pingcheng.finance", Role::Admin),
        ] {
            assert!(
                may(&who(org, role), "handler.li", housing),
                "{role} of {org}"
            );
        }
        for (org, role) in [
            ("pingcheng.housing", Role::Clerk),
            ("pingcheng.education", Role::Leader),
            ("pingcheng.bureau", Role::Analyst),
            ("pingcheng.bureau", Role::Upstream),
            // over the case, but not over the department's staff
            ("pingcheng.bureau", Role::Supervisor),
            ("datong.bureau", Role::Leader),
        ] {
            assert!(
                !may(&who(org, role), "handler.li", housing),
                "{role} of {org}"
            );
        }
        // Never those who oversee the recorder; the city bureau's supervisor, over the routing
        // bureau, for the district bureau's clerk.
        let leader = who("pingcheng.housing", Role::Leader);
        assert!(!may(&leader, "supervisor.zhao", "datong.bureau"));
        let city = who("datong.bureau", Role::Supervisor);
        assert!(may(&city, "clerk.sun", "pingcheng.bureau"));
    }

    #[test]
    fn the_accused_side_sees_nothing_and_the_holder_reads_it() {
        let p = policy();
        let case = accusation();
        for org in [
            "datong.bureau",
            "pingcheng.bureau",
            "pingcheng.street.beiguan",
            "yungang.bureau",
        ] {
            for role in [Role::Clerk, Role::Handler, Role::Leader, Role::Admin] {
                assert_eq!(
                    p.view(&who(org, role), &case),
                    CaseView::Hidden,
                    "{org} {role}"
                );
            }
        }
        assert_eq!(
            p.view(&who("datong.discipline", Role::Handler), &case),
            CaseView::Visible {
                personal_data: false
            }
        );
        assert_eq!(
            p.view(&who("shanxi.discipline", Role::Leader), &case),
            CaseView::Visible {
                personal_data: true
            },
            "the commission above the holder"
        );
        assert_eq!(
            p.view(&who("shanxi.bureau", Role::Clerk), &case),
            CaseView::Visible {
                personal_data: true
            },
            "the province is above the receiving bureau and not under the accused"
        );
        assert_eq!(
            p.view(&who("pingcheng.housing", Role::Handler), &case),
            CaseView::OutOfReach
        );
        assert_eq!(
            p.view(&who("datong.discipline", Role::Analyst), &case),
            CaseView::OutOfReach
        );
        assert!(
            p.may_act(
                &who("datong.discipline", Role::Handler),
                &case,
                Duty::Holder
            )
            .is_ok()
        );
        let err = p
            .may_act(
                &who("shanxi.discipline", Role::Handler),
                &case,
                Duty::Holder,
            )
            .unwrap_err();
        assert!(
            !err.0.contains("datong.discipline"),
            "names no other organ: {err}"
        );
    }

    #[test]
    fn lists_hide_accusations_against_the_caller_and_everything_above_it() {
        let p = policy();
        let s = p.list_scope(&who("pingcheng.street.beiguan", Role::Clerk));
        assert_eq!(
            s.hidden_accused,
            [
                "pingcheng.street.beiguan",
                "pingcheng.bureau",
                "datong.bureau",
                "shanxi.bureau"
            ]
        );
        assert_eq!(
            s.organs.as_deref(),
            Some(&["pingcheng.street.beiguan".to_owned()][..])
        );
        let up = Principal {
            role: Role::Upstream,
            ..who("datong.bureau", Role::Upstream)
        };
        let s = p.list_scope(&up);
        assert!(s.hidden_accused.is_empty() && s.source_system.is_some());
        assert!(
            p.list_scope(&who("pingcheng.bureau", Role::Analyst))
                .nothing
        );
    }

    #[test]
    fn registration_rules() {
        let p = policy();
        let clerk = who("pingcheng.bureau", Role::Clerk);
        assert!(p.may_register(&clerk, "pingcheng.bureau", "").is_ok());
        assert!(
            p.may_register(&clerk, "pingcheng.street.beiguan", "")
                .is_ok()
        );
        assert!(p.may_register(&clerk, "yungang.bureau", "").is_err());
        let err = p
            .may_register(&clerk, "pingcheng.bureau", "datong.12345")
            .unwrap_err();
        assert!(err.0.starts_with("source_system:"), "{err}");
        let mut up = who("datong.bureau", Role::Upstream);
        up.subject = "datong.12345".into();
        assert!(
            p.may_register(&up, "pingcheng.bureau", "datong.12345")
                .is_ok()
        );
        assert!(p.may_register(&up, "pingcheng.bureau", "other").is_err());
        assert!(
            p.may_register(
                &who("pingcheng.housing", Role::Handler),
                "pingcheng.housing",
                ""
            )
            .is_err()
        );
    }

    #[test]
    fn deployment_upkeep_is_for_the_top_organs_admin_alone() {
        let p = policy();
        assert!(
            p.may_maintain_deployment(&who("shanxi.bureau", Role::Admin))
                .is_ok()
        );
        let district = p
            .may_maintain_deployment(&who("pingcheng.bureau", Role::Admin))
            .unwrap_err();
        assert!(district.0.contains("top bureau"), "{district:?}");
        for other_top in ["datong.court", "shanxi.discipline"] {
            assert!(
                p.may_maintain_deployment(&who(other_top, Role::Admin))
                    .is_err(),
                "{other_top} heads its own chain, not the deployment"
            );
        }
        assert!(
            p.may_maintain_deployment(&who("shanxi.bureau", Role::Leader))
                .is_err()
        );
    }
}
