//! Intake's events: the one it publishes (`petition.registered`), and the steps it reads from
//! routing's stream to keep each case's status and timeline.

use crate::convert::flags_to_pb;
use crate::store::{CaseBody, StepRecord};
use pb::event_envelope::Payload;
use petition_domain::StepKind;
use petition_domain::intake::ValidPetition;
use petition_events::Stream;
use petition_grpc::convert::{channel_to_pb, diversion_to_pb, from_ts, sex_to_pb, ts, type_to_pb};
use petition_proto::v1 as pb;

pub const PRODUCER: &str = "intake";

/// `petition.registered`, complete but for the case number, which the store draws inside the
/// transaction. No raw personal data leaves intake: only the main petitioner's sex and age band.
/// An `imported` case is history from the old system, which nobody routes or supervises again.
pub fn registered(case: &CaseBody, valid: &ValidPetition, imported: bool) -> pb::EventEnvelope {
    let main = valid.main_petitioner();
    petition_events::envelope(
        &case.id.to_string(),
        PRODUCER,
        case.registered_at,
        Payload::PetitionRegistered(pb::PetitionRegistered {
            case_id: case.id.to_string(),
            case_number: String::new(),
            channel: channel_to_pb(case.channel) as i32,
            received_by: case.received_by.clone(),
            received_at: Some(ts(case.received_at)),
            category: case.category.clone(),
            type_of_matter: type_to_pb(Some(case.type_of_matter)) as i32,
            diversion: diversion_to_pb(case.diversion) as i32,
            problem_location: case.problem_location.clone(),
            people_present: valid.people_present,
            people_affected: valid.people_affected,
            petitioner_count: valid.petitioners.len() as u32,
            main_age_band: main.age_band.unwrap_or_default().to_owned(),
            main_sex: sex_to_pb(main.sex) as i32,
            flags: Some(flags_to_pb(&case.flags)),
            accused_organ_id: case.accused_organ.clone().unwrap_or_default(),
            source_system: case.source_system.clone().unwrap_or_default(),
            external_ref: case.external_ref.clone().unwrap_or_default(),
            query_code_digest: case
                .query_code
                .parse::<petition_domain::QueryCode>()
                .map(|q| q.digest())
                .unwrap_or_default(),
            imported,
            imported_status: if imported {
                petition_grpc::convert::case_status_to_pb(case.status) as i32
            } else {
                pb::CaseStatus::Unspecified as i32
            },
            // set by the handler for a case a peer sent down
            upstream: None,
        }),
    )
}

/// The outbox message of a registration, once its number is drawn.
pub fn with_number(
    mut envelope: pb::EventEnvelope,
    number: &str,
) -> petition_events::OutboxMessage {
    if let Some(Payload::PetitionRegistered(r)) = &mut envelope.payload {
        r.case_number = number.to_owned();
    }
    petition_events::to_outbox(Stream::Intake, &envelope)
}

fn reply_outcome(v: i32) -> &'static str {
    match pb::ReplyOutcome::try_from(v) {
        Ok(pb::ReplyOutcome::Supported) => "supported (支持)",
        Ok(pb::ReplyOutcome::Explained) => "explained (解释说明)",
        Ok(pb::ReplyOutcome::NotSupported) => "not supported (不予支持)",
        _ => "given",
    }
}

fn date(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(from_ts)
        .map(|t| petition_domain::calendar::local_date(t).to_string())
        .unwrap_or_default()
}

/// The last day of a period that lapses at `t` (24:00 Beijing time, which is the next day's
/// 00:00): the day a petitioner reads as "due by".
fn last_day(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(from_ts)
        .map(|t| {
            petition_domain::calendar::local_date(t - chrono::Duration::nanoseconds(1)).to_string()
        })
        .unwrap_or_default()
}

/// What a petitioner is told of a date counted into a year whose holiday arrangement
/// (放假调休) is not loaded yet.
fn provisional_note(provisional: bool, t: &Option<prost_types::Timestamp>) -> String {
    if !provisional {
        return String::new();
    }
    let year = last_day(t).get(..4).unwrap_or_default().to_owned();
    format!(
        "; provisional: the holiday arrangement for {year} is not published yet, and once it is the day may move later, never earlier"
    )
}

/// The timeline step a routing event records, with the case it belongs to; `None` for events
/// that are no step of a case.
pub fn step(envelope: &pb::EventEnvelope) -> Option<(String, StepRecord)> {
    let at = envelope.occurred_at.as_ref().and_then(from_ts)?;
    let step = |kind: StepKind, organ: &str, note: String, public_note: String| StepRecord {
        event_id: envelope.event_id.clone(),
        at,
        kind,
        organ: organ.to_owned(),
        note,
        public_note,
        bureau: None,
    };
    let (case_id, s) = match envelope.payload.as_ref()? {
        Payload::PetitionRouted(r) => {
            let kind = match pb::RouteOutcome::try_from(r.outcome) {
                Ok(pb::RouteOutcome::Sent) => StepKind::Routed,
                Ok(pb::RouteOutcome::Diverted) => StepKind::Diverted,
                Ok(pb::RouteOutcome::Linked) => StepKind::Linked,
                Ok(pb::RouteOutcome::Triage) => StepKind::Triaged,
                _ => return None,
            };
            let mut s = step(kind, &r.organ, r.rule.clone(), r.notice.clone());
            s.bureau = Some(r.forwarding_bureau.clone()).filter(|b| !b.is_empty());
            (&r.case_id, s)
        }
        Payload::CaseAccepted(a) => {
            let due = last_day(&a.handling_due);
            let public = if due.is_empty() {
                String::new()
            } else {
                format!(
                    "a written reply is due by {due} (Art. 34){}",
                    provisional_note(a.handling_due_provisional, &a.handling_due)
                )
            };
            (
                &a.case_id,
                step(StepKind::Accepted, &a.organ, public.clone(), public),
            )
        }
        Payload::ObjectionRaised(o) => (
            &o.case_id,
            step(
                StepKind::Objected,
                &o.organ,
                o.reason.clone(),
                String::new(),
            ),
        ),
        Payload::ObjectionResolved(o) => (
            &o.case_id,
            step(
                StepKind::ObjectionResolved,
                &o.organ,
                if o.agreed {
                    "objection agreed"
                } else {
                    "objection refused"
                }
                .into(),
                String::new(),
            ),
        ),
        Payload::ExtensionRequested(e) => {
            let note = format!(
                "an extension of {} days was requested: {}",
                e.days, e.reason
            );
            (
                &e.case_id,
                step(StepKind::ExtensionRequested, &e.organ, note.clone(), note),
            )
        }
        Payload::CaseAnswered(a) => {
            let mut note = format!(
                "written reply (信访处理意见书): {}; served {}",
                reply_outcome(a.outcome),
                date(&a.served_at)
            );
            // The reply itself, for the petitioner to read with the query code.
            if !a.text.trim().is_empty() {
                note.push_str(&format!("\n{}", a.text.trim()));
            }
            if !a.legal_basis.trim().is_empty() {
                note.push_str(&format!("\nlegal basis (依据): {}", a.legal_basis.trim()));
            }
            (
                &a.case_id,
                step(StepKind::Answered, &a.organ, note.clone(), note),
            )
        }
        Payload::CompletionReported(c) => (
            &c.case_id,
            step(
                StepKind::CompletionReported,
                &c.organ,
                "completion report (办结报告)".into(),
                String::new(),
            ),
        ),
        Payload::ExtensionDecided(e) => {
            let note = if e.approved {
                format!(
                    "handling extended by {} days: a written reply is due by {} (Art. 34){}: {}",
                    e.days,
                    last_day(&e.handling_due),
                    provisional_note(e.handling_due_provisional, &e.handling_due),
                    e.reason
                )
            } else {
                format!("the extension was refused: {}", e.reason)
            };
            (
                &e.case_id,
                step(StepKind::ExtensionDecided, &e.organ, note.clone(), note),
            )
        }
        Payload::CaseRated(r) => (
            &r.case_id,
            step(
                StepKind::Rated,
                &r.handling_organ,
                "rated by the petitioner (满意度评价)".into(),
                "your rating was recorded".into(),
            ),
        ),
        Payload::ReviewRequested(r) => {
            let (kind, what, article) = match pb::ReviewLevel::try_from(r.level) {
                Ok(pb::ReviewLevel::Reexamination) => (
                    StepKind::ReexaminationRequested,
                    "re-examination (复核)",
                    "Art. 36",
                ),
                _ => (StepKind::ReviewRequested, "review (复查)", "Art. 35"),
            };
            let note = format!(
                "{what} requested of {}; its opinion is due by {} ({article}){}",
                r.organ,
                last_day(&r.opinion_due),
                provisional_note(r.opinion_due_provisional, &r.opinion_due)
            );
            (&r.case_id, step(kind, &r.organ, note.clone(), note))
        }
        Payload::ReviewDecided(r) => {
            let reexamined = matches!(
                pb::ReviewLevel::try_from(r.level),
                Ok(pb::ReviewLevel::Reexamination)
            );
            let decision = match pb::ReviewDecision::try_from(r.decision) {
                Ok(pb::ReviewDecision::Uphold) => "upheld (维持)",
                Ok(pb::ReviewDecision::Change) => "changed (变更)",
                Ok(pb::ReviewDecision::Redo) => "to be handled again (重新办理)",
                _ => "decided",
            };
            let note = if reexamined {
                format!(
                    "re-examination opinion (复核意见) of {}: {decision}; final, the same matter is not accepted again (Art. 36)",
                    r.organ
                )
            } else {
                format!(
                    "review opinion (复查意见) of {}: {decision}; served {}: 30 days to request re-examination (Art. 36)",
                    r.organ,
                    date(&r.served_at)
                )
            };
            let kind = if reexamined {
                StepKind::Reexamined
            } else {
                StepKind::ReviewDecided
            };
            (&r.case_id, step(kind, &r.organ, note.clone(), note))
        }
        Payload::CaseFinal(f) => {
            // A re-examined case is final with its opinion's step; this marks the others.
            if f.reason == pb::FinalReason::Reexamined as i32 {
                return None;
            }
            let note = "final: no review or re-examination was requested in time".to_owned();
            (&f.case_id, step(StepKind::Closed, "", note.clone(), note))
        }
        Payload::ClockRecounted(c) => {
            // What the petitioner waits for, or may still do, is told; the organs' internal
            // periods only to staff. The holder stays as it is (no organ on the step).
            let what = match pb::ClockKind::try_from(c.clock) {
                Ok(pb::ClockKind::Handling) => Some("the written reply is due by"),
                Ok(pb::ClockKind::ReviewOpinion) => Some("the review opinion (复查意见) is due by"),
                Ok(pb::ClockKind::ReexaminationOpinion) => {
                    Some("the re-examination opinion (复核意见) is due by")
                }
                Ok(pb::ClockKind::ReviewRequest) => Some("review (复查) may be requested until"),
                Ok(pb::ClockKind::ReexaminationRequest) => {
                    Some("re-examination (复核) may be requested until")
                }
                Ok(pb::ClockKind::Rating) => Some("the handling may be rated until"),
                _ => None,
            };
            let year = c.previous_last_day.get(..4).unwrap_or_default();
            let why = format!(
                "counted again once the holiday arrangement for {year} was loaded (was {}){}",
                c.previous_last_day,
                if c.provisional {
                    "; still provisional: it runs into a year not yet published"
                } else {
                    ""
                }
            );
            let public = what
                .map(|w| format!("{w} {}: {why}", c.last_day))
                .unwrap_or_default();
            let note = format!(
                "{} period of {} now ends on {}: {why}",
                pb::ClockKind::try_from(c.clock)
                    .map(|k| k.as_str_name())
                    .unwrap_or("clock"),
                if c.organ.is_empty() {
                    "the petitioner"
                } else {
                    &c.organ
                },
                c.last_day
            );
            (&c.case_id, step(StepKind::DeadlineMoved, "", note, public))
        }
        Payload::PetitionRegistered(_)
        | Payload::NoticeIssued(_)
        | Payload::ClockPaused(_)
        | Payload::ClockResumed(_)
        | Payload::LeaderTookCharge(_)
        | Payload::CaseResolved(_)
        | Payload::RecusalRecorded(_)
        | Payload::RecusalLifted(_)
        | Payload::PeerProgressed(_) => return None,
    };
    Some((case_id.clone(), s))
}
