//! GeoReport v2 in terms of the pipeline, as pure functions: a category is a service, a POSTed
//! request is a registration at intake under the platform's own name and ticket number, and a
//! case is a service request with its status and, as an extension, its history.

use chrono::{DateTime, FixedOffset, Utc};
use petition_domain::{CaseStatus, Taxonomy};
use petition_grpc::convert::{case_status_from_pb, from_ts};
use petition_proto::v1 as pb;
use serde::Serialize;
use std::collections::BTreeMap;

/// A client's mistake, named by the GeoReport field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(s: impl Into<String>) -> Invalid {
    Invalid(s.into())
}

/// services.json: one service per category of the taxonomy.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Service {
    pub service_code: String,
    pub service_name: String,
    pub description: String,
    pub metadata: bool,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub keywords: String,
    pub group: String,
}

pub fn services(taxonomy: &Taxonomy) -> Vec<Service> {
    taxonomy
        .categories()
        .map(|c| {
            let top = c.code.split('.').next().unwrap_or_default();
            Service {
                service_code: c.code.clone(),
                service_name: c.name.clone(),
                description: format!(
                    "{} ({}): petitions of this category go to the organ competent for it",
                    c.name, c.code
                ),
                // every service takes the attributes of its definition
                metadata: true,
                // a request is registered at once and answered with its number
                kind: "realtime",
                keywords: c.type_of_matter.as_str().to_owned(),
                group: taxonomy
                    .get(top)
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct AttributeValue {
    pub key: String,
    pub name: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Attribute {
    pub variable: bool,
    pub code: &'static str,
    pub datatype: &'static str,
    pub required: bool,
    pub datatype_description: String,
    pub order: u32,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<AttributeValue>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Definition {
    pub service_code: String,
    pub attributes: Vec<Attribute>,
}

/// The channels a platform may say a petition reached it by.
const CHANNELS: [(&str, &str); 4] = [
    ("online", "网上信访"),
    ("phone", "电话 (12345)"),
    ("letter", "来信"),
    ("visit", "来访"),
];

/// The attributes every service takes (GeoReport `attribute[code]`).
pub fn definition(code: &str) -> Definition {
    let text = |code, order, required, description: &str, datatype_description: &str| Attribute {
        variable: true,
        code,
        datatype: "string",
        required,
        datatype_description: datatype_description.into(),
        order,
        description: description.into(),
        values: Vec::new(),
    };
    Definition {
        service_code: code.to_owned(),
        attributes: vec![
            text(
                "external_ref",
                1,
                true,
                "your ticket number: a request sent again with the same number is answered with the same service_request_id",
                "at most 64 printable characters",
            ),
            text(
                "title",
                2,
                false,
                "a short title (标题); the first words of the description when left out",
                "at most 100 characters",
            ),
            text(
                "id_number",
                3,
                false,
                "the petitioner's resident identity card number (居民身份证号码)",
                "18 characters, the last a digit or X",
            ),
            Attribute {
                variable: true,
                code: "channel",
                datatype: "singlevaluelist",
                required: false,
                datatype_description: "one key of values; online when left out".into(),
                order: 4,
                description: "how the petition reached you (信访形式)".into(),
                values: CHANNELS
                    .iter()
                    .map(|(k, n)| AttributeValue {
                        key: (*k).into(),
                        name: (*n).into(),
                    })
                    .collect(),
            },
        ],
    }
}

/// A POSTed request's fields, as sent (form-encoded, `attribute[code]` for attributes).
#[derive(Debug, Default, Clone)]
pub struct Posted {
    pub fields: BTreeMap<String, String>,
}

impl Posted {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self {
            fields: pairs.into_iter().collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn attribute(&self, code: &str) -> Option<&str> {
        self.get(&format!("attribute[{code}]"))
    }

    pub fn api_key(&self) -> Option<&str> {
        self.get("api_key")
    }
}

/// The registration a POSTed request asks for. Intake checks the rest (the name, the ID
/// number, the place) and names the field it refuses.
pub fn registration(
    posted: &Posted,
    taxonomy: &Taxonomy,
) -> Result<pb::RegisterPetitionRequest, Invalid> {
    let code = posted
        .get("service_code")
        .ok_or_else(|| invalid("service_code: required; GET services.json lists them"))?;
    if taxonomy.get(code).is_none() {
        return Err(invalid(format!(
            "service_code: {} is no service here; GET services.json lists them",
            shown(code)
        )));
    }
    let place = posted.get("address_id").ok_or_else(|| {
        invalid(
            "address_id: required, the region code (6 or 9 digits, GB/T 2260) of the problem's place; lat/long or address_string alone cannot be placed",
        )
    })?;
    let description = posted
        .get("description")
        .ok_or_else(|| invalid("description: required, the petition's content (信访事项)"))?;
    let external_ref = posted.attribute("external_ref").ok_or_else(|| {
        invalid("attribute[external_ref]: required, your ticket number, which makes a resend safe")
    })?;
    let name = format!(
        "{}{}",
        posted.get("last_name").unwrap_or_default(),
        posted.get("first_name").unwrap_or_default()
    );
    if name.is_empty() {
        return Err(invalid(
            "first_name, last_name: the petitioner's name (信访人姓名) is required",
        ));
    }
    let channel = match posted.attribute("channel").unwrap_or("online") {
        "online" => pb::Channel::Online,
        "phone" => pb::Channel::Phone,
        "letter" => pb::Channel::Letter,
        "visit" => pb::Channel::Visit,
        other => {
            return Err(invalid(format!(
                "attribute[channel]: {} is none of online, phone, letter, visit",
                shown(other)
            )));
        }
    };
    let title = posted
        .attribute("title")
        .map(str::to_owned)
        .unwrap_or_else(|| description.chars().take(30).collect());
    let id_number = posted.attribute("id_number").unwrap_or_default().to_owned();
    for field in ["lat", "long"] {
        if let Some(v) = posted.get(field)
            && v.parse::<f64>().map_or(true, |x| !x.is_finite())
        {
            return Err(invalid(format!("{field}: {} is not a number", shown(v))));
        }
    }
    Ok(pb::RegisterPetitionRequest {
        channel: channel as i32,
        // the organ the platform's key names, its own name, and the time of receipt (now):
        // intake fills them in, so that a resend is the same request
        received_by: String::new(),
        received_at: None,
        petitioners: vec![pb::PetitionerInput {
            name,
            id_type: if id_number.is_empty() {
                pb::IdType::Unspecified
            } else {
                pb::IdType::ResidentId
            } as i32,
            id_number,
            phone: posted.get("phone").unwrap_or_default().to_owned(),
            address: posted.get("address_string").unwrap_or_default().to_owned(),
            is_main: true,
        }],
        category: code.to_owned(),
        problem_location: place.to_owned(),
        title,
        content: description.to_owned(),
        people_present: 1,
        people_affected: 1,
        source_system: String::new(),
        external_ref: external_ref.to_owned(),
        ..Default::default()
    })
}

/// A value from the client, cut short and quoted, for a message.
pub fn shown(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    format!("{cut:?}")
}

/// The answer to a POST.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Created {
    pub service_request_id: String,
    pub service_notice: String,
}

pub fn created(r: &pb::RegisterPetitionResponse) -> Created {
    Created {
        service_request_id: r.case_number.clone(),
        service_notice: format!(
            "registered (登记) as case {}; the petitioner follows it with the query code (查询码) {}",
            r.case_number, r.query_code
        ),
    }
}

/// GeoReport's two states: a case is closed once it is final, diverted to another channel or
/// joined to an open one.
pub fn open_or_closed(status: Option<CaseStatus>) -> &'static str {
    match status {
        Some(CaseStatus::Closed | CaseStatus::Diverted | CaseStatus::Linked) => "closed",
        _ => "open",
    }
}

/// The statuses a GeoReport status filter means.
pub fn statuses(filter: &str) -> Result<Vec<pb::CaseStatus>, Invalid> {
    match filter {
        "open" => Ok(vec![
            pb::CaseStatus::Registered,
            pb::CaseStatus::Routed,
            pb::CaseStatus::InHandling,
            pb::CaseStatus::Answered,
        ]),
        "closed" => Ok(vec![
            pb::CaseStatus::Closed,
            pb::CaseStatus::Diverted,
            pb::CaseStatus::Linked,
        ]),
        other => Err(invalid(format!(
            "status: {} is neither open nor closed",
            shown(other)
        ))),
    }
}

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8")
}

/// W3C date-time, Beijing time, as GeoReport writes them.
pub fn w3c(t: &Option<prost_types::Timestamp>) -> Option<String> {
    t.as_ref().and_then(from_ts).map(|t| {
        t.with_timezone(&beijing())
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    })
}

/// A date-time a client sent (W3C, with an offset; a bare date is Beijing's midnight).
pub fn parse_w3c(field: &str, v: &str) -> Result<DateTime<Utc>, Invalid> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.to_utc());
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|d| d.and_local_timezone(beijing()).single())
        .map(|t| t.to_utc())
        .ok_or_else(|| {
            invalid(format!(
                "{field}: {} is no W3C date-time such as 2026-11-28T09:00:00+08:00",
                shown(v)
            ))
        })
}

/// One update of a request's history (the extension GeoReport clients know as notes).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Update {
    pub datetime: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub agency: String,
    pub description: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Extended {
    /// the case's own status, finer than open or closed
    pub case_status: String,
    pub updates: Vec<Update>,
}

/// A service request as GeoReport shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Request {
    pub service_request_id: String,
    pub status: &'static str,
    pub status_notes: String,
    pub service_name: String,
    pub service_code: String,
    pub description: String,
    pub agency_responsible: String,
    pub service_notice: String,
    pub requested_datetime: Option<String>,
    pub updated_datetime: Option<String>,
    pub address: String,
    pub address_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_attributes: Option<Extended>,
}

fn status_word(v: i32) -> String {
    pb::CaseStatus::try_from(v)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("CASE_STATUS_")
                .to_lowercase()
        })
        .unwrap_or_default()
}

fn service_name(taxonomy: &Taxonomy, code: &str) -> String {
    taxonomy
        .get(code)
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

/// A whole case, with its history when `extensions` is asked for.
pub fn request(c: &pb::Case, taxonomy: &Taxonomy, extensions: bool) -> Request {
    let last = c.timeline.last();
    let kind = |v: i32| {
        pb::StepKind::try_from(v)
            .map(|k| {
                k.as_str_name()
                    .trim_start_matches("STEP_KIND_")
                    .to_lowercase()
            })
            .unwrap_or_default()
    };
    Request {
        service_request_id: c.case_number.clone(),
        status: open_or_closed(case_status_from_pb(c.status)),
        status_notes: last.map(|s| s.note.clone()).unwrap_or_default(),
        service_name: service_name(taxonomy, &c.category),
        service_code: c.category.clone(),
        description: c.content.clone(),
        agency_responsible: c.holder_name.clone(),
        service_notice: String::new(),
        requested_datetime: w3c(&c.received_at),
        updated_datetime: last
            .and_then(|s| w3c(&s.at))
            .or_else(|| w3c(&c.registered_at)),
        address: String::new(),
        address_id: c.problem_location.clone(),
        extended_attributes: extensions.then(|| Extended {
            case_status: status_word(c.status),
            updates: c
                .timeline
                .iter()
                .map(|s| Update {
                    datetime: w3c(&s.at).unwrap_or_default(),
                    kind: kind(s.kind),
                    agency: s.organ_name.clone(),
                    description: s.note.clone(),
                })
                .collect(),
        }),
    }
}

/// A case from a list: what a summary holds.
pub fn summary(c: &pb::CaseSummary, taxonomy: &Taxonomy) -> Request {
    Request {
        service_request_id: c.case_number.clone(),
        status: open_or_closed(case_status_from_pb(c.status)),
        status_notes: status_word(c.status),
        service_name: service_name(taxonomy, &c.category),
        service_code: c.category.clone(),
        description: c.title.clone(),
        agency_responsible: c.holder.clone(),
        service_notice: String::new(),
        requested_datetime: w3c(&c.received_at),
        updated_datetime: None,
        address: String::new(),
        address_id: c.problem_location.clone(),
        extended_attributes: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taxonomy() -> Taxonomy {
        Taxonomy::from_toml(include_str!("../../../deploy/config/categories.toml")).unwrap()
    }

    fn posted(pairs: &[(&str, &str)]) -> Posted {
        Posted::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    const GOOD: [(&str, &str); 7] = [
        ("service_code", "01.01"),
        ("address_id", "140213001"),
        ("description", "楼顶漏水，物业不修"),
        ("first_name", "敏"),
        ("last_name", "赵"),
        ("attribute[external_ref]", "12345-0001"),
        ("attribute[channel]", "phone"),
    ];

    #[test]
    fn every_category_is_a_service_in_its_group() {
        let t = taxonomy();
        let s = services(&t);
        assert_eq!(s.len(), t.len());
        let leak = s.iter().find(|s| s.service_code == "01.01").unwrap();
        assert_eq!(leak.group, t.get("01").unwrap().name);
        assert!(s.iter().all(|s| s.metadata && s.kind == "realtime"));
    }

    #[test]
    fn a_request_becomes_a_registration_under_the_platforms_ticket() {
        let r = registration(&posted(&GOOD), &taxonomy()).unwrap();
        assert_eq!(r.category, "01.01");
        assert_eq!(r.problem_location, "140213001");
        assert_eq!(r.external_ref, "12345-0001");
        assert_eq!(r.petitioners[0].name, "赵敏", "surname first");
        assert_eq!(r.channel, pb::Channel::Phone as i32);
        assert_eq!(r.title, "楼顶漏水，物业不修");
        assert!(r.source_system.is_empty() && r.received_by.is_empty());
        assert!(
            r.received_at.is_none(),
            "intake's now, after the fingerprint"
        );
    }

    #[test]
    fn what_is_missing_or_wrong_is_named() {
        let t = taxonomy();
        let without = |field: &str| {
            let pairs: Vec<_> = GOOD.iter().copied().filter(|(k, _)| *k != field).collect();
            registration(&posted(&pairs), &t).unwrap_err().0
        };
        assert!(without("service_code").starts_with("service_code"));
        assert!(without("address_id").starts_with("address_id"));
        assert!(without("description").starts_with("description"));
        assert!(without("attribute[external_ref]").starts_with("attribute[external_ref]"));
        let mut bad: Vec<_> = GOOD.to_vec();
        bad[0] = ("service_code", "99.99");
        assert!(
            registration(&posted(&bad), &t)
                .unwrap_err()
                .0
                .contains("no service")
        );
        bad = GOOD.to_vec();
        bad[6] = ("attribute[channel]", "pigeon");
        assert!(
            registration(&posted(&bad), &t)
                .unwrap_err()
                .0
                .starts_with("attribute[channel]")
        );
        assert!(statuses("pending").is_err());
        assert!(
            parse_w3c("start_date", "yesterday")
                .unwrap_err()
                .0
                .starts_with("start_date")
        );
    }

    #[test]
    fn dates_read_and_write_in_beijing_time() {
        let t = parse_w3c("start_date", "2026-11-28").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T16:00:00+00:00");
        assert_eq!(
            w3c(&Some(petition_grpc::convert::ts(t))).unwrap(),
            "2026-11-28T00:00:00+08:00"
        );
        assert_eq!(
            parse_w3c("end_date", "2026-11-28T09:00:00Z")
                .unwrap()
                .to_rfc3339(),
            "2026-11-28T09:00:00+00:00"
        );
    }
}
