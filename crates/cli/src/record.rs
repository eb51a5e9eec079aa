//! A petition as an old petition system exports it, one JSON object per line (the shape of
//! `tests/e2e/sample-petitions.jsonl`): what `petition register --file` and `petition import`
//! read, and what the end-to-end tests send. It lives once, here.

use chrono::{DateTime, FixedOffset};
use petition_proto::v1 as pb;
use serde::Deserialize;

/// One petition as the old system exports it.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub channel: String,
    pub received_by: String,
    pub received_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub petitioners: Vec<RecordPetitioner>,
    pub category: String,
    pub problem_location: String,
    pub title: String,
    pub content: String,
    #[serde(default = "one")]
    pub people_present: u32,
    #[serde(default = "one")]
    pub people_affected: u32,
    #[serde(default)]
    pub representatives: u32,
    #[serde(default)]
    pub accused: Option<RecordAccused>,
    #[serde(default)]
    pub source_system: String,
    #[serde(default)]
    pub external_ref: String,
    /// the old system's case number, for `petition import`
    #[serde(default)]
    pub case_number: String,
    /// where the case ended in the old system, for `petition import`: registered, routed,
    /// in_handling, answered, closed, diverted or linked (default closed)
    #[serde(default)]
    pub status: String,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecordPetitioner {
    pub name: String,
    #[serde(default)]
    pub id_type: String,
    #[serde(default)]
    pub id_number: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub address: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecordAccused {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub organ_id: String,
}

impl Record {
    pub fn request(&self) -> pb::RegisterPetitionRequest {
        pb::RegisterPetitionRequest {
            // an unknown channel stays unspecified, and intake names the field
            channel: self
                .channel
                .parse::<petition_domain::Channel>()
                .map(|c| petition_grpc::convert::channel_to_pb(c) as i32)
                .unwrap_or_default(),
            received_by: self.received_by.clone(),
            // a record without a date was received now: a window registers on receipt
            received_at: Some(
                self.received_at
                    .map_or_else(chrono::Utc::now, |t| t.to_utc()),
            )
            .map(|t| prost_types::Timestamp {
                seconds: t.timestamp(),
                nanos: t.timestamp_subsec_nanos() as i32,
            }),
            petitioners: self
                .petitioners
                .iter()
                .map(|p| pb::PetitionerInput {
                    name: p.name.clone(),
                    id_type: match p.id_type.as_str() {
                        "" | "resident_id" => pb::IdType::ResidentId,
                        _ => pb::IdType::Other,
                    } as i32,
                    id_number: p.id_number.clone(),
                    phone: p.phone.clone(),
                    address: p.address.clone(),
                    is_main: false,
                })
                .collect(),
            category: self.category.clone(),
            problem_location: self.problem_location.clone(),
            title: self.title.clone(),
            content: self.content.clone(),
            people_present: self.people_present,
            people_affected: self.people_affected,
            representatives: self.representatives,
            accused: self.accused.as_ref().map(|a| pb::Accused {
                name: a.name.clone(),
                organ_id: a.organ_id.clone(),
            }),
            source_system: self.source_system.clone(),
            external_ref: self.external_ref.clone(),
            upstream: None,
            validate_only: false,
        }
    }
}
