//! Intake's records as protobuf: the staff view of a case (personal data masked unless the
//! caller's role needs it), the list summary, and the petitioner's view by query code.

use crate::crypto::PersonalDataCipher;
use crate::store::{CaseRecord, StepRecord, StoredFlags};
use petition_domain::identity::{mask_address, mask_id_number, mask_name, mask_phone};
use petition_domain::{OrgTree, QueryCode};
use petition_grpc::convert::{
    case_status_to_pb, channel_to_pb, diversion_to_pb, id_type_to_pb, sex_to_pb, step_kind_to_pb,
    ts, type_to_pb,
};
use petition_proto::v1 as pb;

pub fn flags_to_pb(f: &StoredFlags) -> pb::CaseFlags {
    pb::CaseFlags {
        group: f.group,
        leapfrog: f.leapfrog,
        repeat: f.repeat,
        repeat_of_case_id: f.repeat_of_case_id.clone().unwrap_or_default(),
        repeat_of_case_number: f.repeat_of_case_number.clone().unwrap_or_default(),
        first_at_organ: f.first_at_organ,
        open_below: f.open_below_case_number.is_some(),
        open_below_case_number: f.open_below_case_number.clone().unwrap_or_default(),
        repeat_of_open: f.repeat_of_open,
    }
}

/// Stored codes are canonical; show them grouped as the petitioner's slip does.
pub fn shown_query_code(stored: &str) -> String {
    stored
        .parse::<QueryCode>()
        .map(|q| q.to_string())
        .unwrap_or_else(|_| stored.to_owned())
}

fn organ_name(tree: &OrgTree, id: &str) -> String {
    tree.get(id)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| id.to_owned())
}

pub struct View<'a> {
    pub tree: &'a OrgTree,
    pub cipher: &'a PersonalDataCipher,
}

impl View<'_> {
    fn petitioners(&self, case: &CaseRecord, reveal: bool) -> Vec<pb::Petitioner> {
        // The reveal is in the audit log already: the handler records it before calling this.
        let open = |sealed: &Option<Vec<u8>>, mask: fn(&str) -> String| -> String {
            let plain = sealed
                .as_deref()
                .map(|s| {
                    self.cipher
                        .open(s)
                        .unwrap_or_else(|_| "<unreadable>".into())
                })
                .unwrap_or_default();
            if reveal || plain.is_empty() {
                plain
            } else {
                mask(&plain)
            }
        };
        case.petitioners
            .iter()
            .map(|sp| pb::Petitioner {
                name: if reveal {
                    sp.name.clone()
                } else {
                    mask_name(&sp.name)
                },
                id_type: id_type_to_pb(sp.id_type) as i32,
                id_number: open(&sp.id_number_sealed, mask_id_number),
                phone: open(&sp.phone_sealed, mask_phone),
                address: open(&sp.address_sealed, mask_address),
                is_main: sp.is_main,
                sex: sex_to_pb(sp.sex) as i32,
                age_band: sp.age_band.clone().unwrap_or_default(),
                masked: !reveal,
            })
            .collect()
    }

    fn step(&self, s: &StepRecord, public: bool) -> pb::CaseStep {
        pb::CaseStep {
            at: Some(ts(s.at)),
            kind: step_kind_to_pb(s.kind) as i32,
            organ: s.organ.clone(),
            organ_name: organ_name(self.tree, &s.organ),
            note: if public {
                s.public_note.clone()
            } else {
                s.note.clone()
            },
        }
    }

    /// The staff view; `reveal` says whether personal data is shown in the clear.
    pub fn case(&self, case: &CaseRecord, reveal: bool) -> pb::Case {
        let c = &case.body;
        let accused = (c.accused_name_sealed.is_some() || c.accused_organ.is_some()).then(|| {
            let name = c
                .accused_name_sealed
                .as_deref()
                .map(|s| self.cipher.open(s).unwrap_or_default())
                .unwrap_or_default();
            pb::Accused {
                name: if reveal { name } else { mask_name(&name) },
                organ_id: c.accused_organ.clone().unwrap_or_default(),
            }
        });
        pb::Case {
            id: c.id.to_string(),
            case_number: case.case_number.clone(),
            channel: channel_to_pb(c.channel) as i32,
            received_by: c.received_by.clone(),
            received_at: Some(ts(c.received_at)),
            registered_at: Some(ts(c.registered_at)),
            category: c.category.clone(),
            type_of_matter: type_to_pb(Some(c.type_of_matter)) as i32,
            diversion: diversion_to_pb(c.diversion) as i32,
            problem_location: c.problem_location.clone(),
            title: c.title.clone(),
            content: c.content.clone(),
            people_present: c.people_present as u32,
            people_affected: c.people_affected as u32,
            representatives: c.representatives as u32,
            petitioners: self.petitioners(case, reveal),
            accused,
            source_system: c.source_system.clone().unwrap_or_default(),
            external_ref: c.external_ref.clone().unwrap_or_default(),
            flags: Some(flags_to_pb(&c.flags)),
            status: case_status_to_pb(case.status) as i32,
            registered_by: c.registered_by.clone(),
            holder: case.holder.clone().unwrap_or_default(),
            holder_name: case
                .holder
                .as_deref()
                .map(|h| organ_name(self.tree, h))
                .unwrap_or_default(),
            timeline: case.steps.iter().map(|s| self.step(s, false)).collect(),
            // the handler reads them from the exchange tables
            upstream: None,
            exchange: None,
        }
    }

    /// The petitioner's view (Art. 21): where the case is and what was done, with dates, and
    /// no one's personal data.
    /// The steps a platform that sent the case sees (an upstream system passes them on to the
    /// petitioner or the public): those the petitioner is told of, with the public notes.
    pub fn public_timeline(&self, case: &CaseRecord) -> Vec<pb::CaseStep> {
        case.steps
            .iter()
            .filter(|s| s.kind.shown_to_petitioner())
            .map(|s| self.step(s, true))
            .collect()
    }

    pub fn lookup(&self, case: &CaseRecord) -> pb::LookupByQueryCodeResponse {
        pb::LookupByQueryCodeResponse {
            case_number: case.case_number.clone(),
            status: case_status_to_pb(case.status) as i32,
            received_at: Some(ts(case.body.received_at)),
            registered_at: Some(ts(case.body.registered_at)),
            received_by_name: organ_name(self.tree, &case.body.received_by),
            title: case.body.title.clone(),
            holder_name: case
                .holder
                .as_deref()
                .map(|h| organ_name(self.tree, h))
                .unwrap_or_default(),
            steps: case
                .steps
                .iter()
                .filter(|s| s.kind.shown_to_petitioner())
                .map(|s| self.step(s, true))
                .collect(),
        }
    }
}

pub fn summary(case: &CaseRecord) -> pb::CaseSummary {
    let c = &case.body;
    pb::CaseSummary {
        id: c.id.to_string(),
        case_number: case.case_number.clone(),
        channel: channel_to_pb(c.channel) as i32,
        received_by: c.received_by.clone(),
        received_at: Some(ts(c.received_at)),
        category: c.category.clone(),
        problem_location: c.problem_location.clone(),
        title: c.title.clone(),
        flags: Some(flags_to_pb(&c.flags)),
        status: case_status_to_pb(case.status) as i32,
        holder: case.holder.clone().unwrap_or_default(),
    }
}
