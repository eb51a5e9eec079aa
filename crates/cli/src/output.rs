//! What a command prints: a table or key/value lines for people (the default), or the reply as
//! canonical protobuf JSON for scripts (`--output json`), field names as in the .proto files.

use comfy_table::{Table, presets};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// tables and lines for people
    Table,
    /// the reply as protobuf JSON, one document per reply
    Json,
}

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(petition_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set built with the protos decodes")
});

/// `message` as JSON; `name` is its full protobuf name, e.g. `petition.v1.Timeline`.
pub fn json<M: prost::Message>(message: &M, name: &str) -> String {
    let descriptor = POOL
        .get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} is in the descriptor set"));
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .expect("a message decodes as its own type");
    let mut out = serde_json::Serializer::pretty(Vec::new());
    dynamic
        .serialize_with_options(
            &mut out,
            &SerializeOptions::new()
                .use_proto_field_name(true)
                .skip_default_fields(false),
        )
        .expect("serializing to memory cannot fail");
    String::from_utf8(out.into_inner()).expect("JSON is UTF-8")
}

/// An instant as the bureau reads it: Beijing time, to the minute.
pub fn when(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| {
            t.with_timezone(&petition_domain::calendar::beijing())
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// The last day a lapse instant (24:00 Beijing) ends, as the law counts it.
pub fn last_day(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| {
            petition_domain::calendar::local_date(t - chrono::Duration::microseconds(1)).to_string()
        })
        .unwrap_or_default()
}

/// An enum value's protobuf name in words: `CASE_STATUS_IN_HANDLING` → `in handling`.
pub fn word(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_lowercase()
        .replace('_', " ")
}

/// A table without borders, like `ls -l`: easy to read and to cut.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header.to_vec());
    t
}

/// `label  value` lines, aligned, skipping empty values.
pub fn fields(rows: &[(&str, String)]) -> String {
    let shown: Vec<_> = rows.iter().filter(|(_, v)| !v.is_empty()).collect();
    let width = shown
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    shown
        .iter()
        .map(|(k, v)| format!("{k:width$}  {v}\n"))
        .collect()
}

/// `yes` for a set flag, nothing otherwise: tables stay quiet.
pub fn mark(on: bool, text: &str) -> String {
    if on { text.to_owned() } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petition_proto::v1 as pb;

    #[test]
    fn json_uses_proto_field_names_enum_names_and_rfc3339_times() {
        let t = pb::Timeline {
            case_number: "140213-2026-000001".into(),
            stage: pb::CaseStage::InHandling as i32,
            clocks: vec![pb::CaseClock {
                due_at: Some(prost_types::Timestamp {
                    seconds: 1_800_000_000,
                    nanos: 0,
                }),
                provisional: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&json(&t, "petition.v1.Timeline")).unwrap();
        assert_eq!(v["case_number"], "140213-2026-000001");
        assert_eq!(v["stage"], "CASE_STAGE_IN_HANDLING");
        assert_eq!(v["clocks"][0]["due_at"], "2027-01-15T08:00:00Z");
        assert_eq!(v["clocks"][0]["provisional"], true);
        // defaults are written too: a script can rely on every field being there
        assert_eq!(v["holder"], "");
    }

    #[test]
    fn times_read_in_beijing() {
        let t = Some(prost_types::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        });
        assert_eq!(when(&t), "2027-01-15 16:00");
        assert_eq!(word("INBOX_BUCKET_TO_CLAIM", "INBOX_BUCKET_"), "to claim");
        assert_eq!(
            fields(&[("case", "1".into()), ("holder", String::new())]),
            "case  1\n"
        );
    }
}
