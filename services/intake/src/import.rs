//! `ImportPetitions`: the old system's history, brought in chunk by chunk. Each row is checked
//! as a registration would be and gets a case number of ours in the register of the year it was
//! received; its original case number stays as the upstream identifier (`source_system`,
//! `external_ref`), which is what makes a second run import nothing twice. A chunk is one or two
//! transactions of many rows (three statements and one block of case numbers each), not one
//! commit per row. Imported cases are history: their event says so, and neither routing nor
//! supervision takes them up again.

use crate::handlers::{IntakeGrpc, form_from_pb};
use crate::store::{EventBuilder, IntakeStore, Registration, StoreError, StoredFlags};
use chrono::Datelike;
use petition_auth::Principal;
use petition_domain::intake::IntakeContext;
use petition_domain::{CaseStatus, QueryCode};
use petition_grpc::convert::case_status_from_pb;
use petition_proto::v1 as pb;
use prost::Message;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use tonic::Status;

/// The most rows one message may carry: about a megabyte, under gRPC's default message limit.
pub const MAX_IMPORT_CHUNK: usize = 1000;

/// Rows per transaction, with 34 parameters a case: under SQLite's 32,766 parameters a
/// statement, and PostgreSQL's 65,535.
fn rows_per_transaction(store: &IntakeStore) -> usize {
    match store.dialect() {
        petition_storage::Dialect::Postgres => 1000,
        petition_storage::Dialect::Sqlite => 500,
    }
}

/// Writes checked registrations, a transaction per `rows_per_transaction`.
async fn write(store: &IntakeStore, regs: &[Registration]) -> Result<u64, Status> {
    let mut written = 0;
    for batch in regs.chunks(rows_per_transaction(store)) {
        match store.import_all(batch).await {
            Ok(_) => written += batch.len() as u64,
            Err(StoreError::DuplicateKey) => {
                return Err(Status::aborted(
                    "another import of the same source_system wrote some of these cases meanwhile; run the import again: it skips what is in",
                ));
            }
            Err(e @ StoreError::RegisterFull { .. }) => {
                return Err(Status::resource_exhausted(e.to_string()));
            }
            Err(e @ (StoreError::Stopped | StoreError::Unavailable(_))) => {
                return Err(Status::unavailable(e.to_string()));
            }
            Err(e) => return Err(crate::handlers::internal(e)),
        }
    }
    Ok(written)
}

/// A chunk checked and ready to write.
pub(crate) struct Prepared {
    regs: Vec<Registration>,
    already_imported: u64,
    rejected: Vec<pb::ImportRejection>,
}

/// A key taken earlier in the same import: its row, and what it held.
struct Taken {
    row: u64,
    fingerprint: Vec<u8>,
}

/// One row checked far enough to be compared with what is in: its request, its fingerprint.
struct Candidate {
    row: u64,
    original: String,
    status: i32,
    request: pb::RegisterPetitionRequest,
    fingerprint: Vec<u8>,
}

impl IntakeGrpc {
    /// Imports a stream of chunks. The next chunk is read and checked (CPU) while the last one
    /// is written (the database): one write in flight, so the two overlap.
    pub(crate) async fn import_stream(
        &self,
        p: &Principal,
        mut chunks: tonic::Streaming<pb::ImportPetitionsRequest>,
        proven: &tonic::Extensions,
    ) -> Result<pb::ImportPetitionsResponse, Status> {
        let mut out = pb::ImportPetitionsResponse::default();
        // keys taken in this stream: a row repeated in a later chunk is found here, not in
        // the database, where its first copy may not be committed yet
        let mut taken: HashMap<String, Taken> = HashMap::new();
        let mut source: Option<String> = None;
        let mut writing: Option<tokio::task::JoinHandle<Result<u64, Status>>> = None;
        while let Some(chunk) = chunks.message().await? {
            let this = chunk.source_system.trim().to_owned();
            match &source {
                None => {
                    // Imported cases keep the old system's name as their source system: under
                    // mutual TLS that name is proven like an upstream system's.
                    petition_auth::check_source_system(proven, &this)?;
                    source = Some(this)
                }
                Some(s) if *s != this => {
                    return Err(Status::invalid_argument(format!(
                        "source_system: one import is one old system; this one began as {s:?}"
                    )));
                }
                Some(_) => {}
            }
            let prepared = self.prepare(p, chunk, &mut taken).await?;
            out.already_imported += prepared.already_imported;
            out.rejected.extend(prepared.rejected);
            if let Some(w) = writing.take() {
                out.imported += w.await.map_err(|e| Status::internal(e.to_string()))??;
            }
            let (store, wake) = (self.store.clone(), self.shared.relay_wake.clone());
            writing = Some(tokio::spawn(async move {
                let n = write(&store, &prepared.regs).await?;
                wake.notify_one();
                Ok(n)
            }));
        }
        if let Some(w) = writing.take() {
            out.imported += w.await.map_err(|e| Status::internal(e.to_string()))??;
        }
        metrics::counter!("petitions_imported_total").increment(out.imported);
        Ok(out)
    }

    /// Checks one message's rows: each becomes a registration, a key imported before with
    /// the same content, or a rejection with its reason — a key imported before with other
    /// content among them (the first import stands).
    async fn prepare(
        &self,
        p: &Principal,
        chunk: pb::ImportPetitionsRequest,
        taken: &mut HashMap<String, Taken>,
    ) -> Result<Prepared, Status> {
        let source = chunk.source_system.trim().to_owned();
        if source.is_empty() {
            return Err(Status::invalid_argument(
                "source_system: the old system's name, under which each case keeps its original number",
            ));
        }
        if !source.bytes().all(|b| b.is_ascii_graphic()) || source.len() > 64 {
            return Err(Status::invalid_argument(
                "source_system: printable ASCII without spaces, at most 64 characters",
            ));
        }
        if chunk.petitions.len() > MAX_IMPORT_CHUNK {
            return Err(Status::invalid_argument(format!(
                "petitions: at most {MAX_IMPORT_CHUNK} a message, not {}",
                chunk.petitions.len()
            )));
        }
        let mut prepared = Prepared {
            regs: Vec::with_capacity(chunk.petitions.len()),
            already_imported: 0,
            rejected: Vec::new(),
        };
        let mut candidates = Vec::with_capacity(chunk.petitions.len());
        for h in chunk.petitions {
            let original = h.original_case_number.trim().to_owned();
            let Some(mut request) = h.petition else {
                prepared
                    .rejected
                    .push(rejection(h.row, &original, "petition: required".into()));
                continue;
            };
            if original.is_empty() {
                prepared.rejected.push(rejection(
                    h.row,
                    &original,
                    "case_number: required; the old system's number keeps the case findable and makes a re-run import it once".into(),
                ));
                continue;
            }
            request.source_system = source.clone();
            request.external_ref = original.clone();
            let fingerprint = Sha256::digest(request.encode_to_vec()).to_vec();
            candidates.push(Candidate {
                row: h.row,
                original,
                status: h.status,
                request,
                fingerprint,
            });
        }
        let refs: Vec<String> = candidates
            .iter()
            .map(|c| c.original.clone())
            .filter(|r| !taken.contains_key(r))
            .collect();
        let in_database = self
            .store
            .registered_refs(&source, &refs)
            .await
            .map_err(crate::handlers::internal)?;
        let now = self.shared.clock.now();
        for c in candidates {
            // Imported before, or earlier in this import: once is enough — unless the content
            // differs, which someone must look at.
            if let Some(first) = taken.get(&c.original) {
                if first.fingerprint == c.fingerprint {
                    prepared.already_imported += 1;
                } else {
                    prepared.rejected.push(rejection(
                        c.row,
                        &c.original,
                        format!(
                            "case_number: {} is also on row {} with other content; the first stands",
                            c.original, first.row
                        ),
                    ));
                }
                continue;
            }
            if let Some(fingerprint) = in_database.get(&c.original) {
                if *fingerprint == c.fingerprint {
                    prepared.already_imported += 1;
                } else {
                    prepared.rejected.push(rejection(
                        c.row,
                        &c.original,
                        format!(
                            "case_number: {} was imported before with other content; the first import stands",
                            c.original
                        ),
                    ));
                }
                continue;
            }
            let (row, original, fingerprint) = (c.row, c.original.clone(), c.fingerprint.clone());
            match self.historical(p, c, now) {
                Ok(reg) => {
                    taken.insert(original, Taken { row, fingerprint });
                    prepared.regs.push(reg);
                }
                Err(reason) => prepared.rejected.push(rejection(row, &original, reason)),
            }
        }
        Ok(prepared)
    }

    /// One historical row as a registration, or why it is refused (the field and the rule).
    fn historical(
        &self,
        p: &Principal,
        c: Candidate,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Registration, String> {
        let req = c.request;
        let fingerprint = c.fingerprint;
        if req.received_at.is_none() {
            return Err(
                "received_at: required for history: when the old system received it".into(),
            );
        }
        // An unknown organ is for validation to name; a known one must be within reach.
        if self
            .shared
            .reference
            .tree
            .get(req.received_by.trim())
            .is_some()
        {
            self.shared
                .access
                .may_import_for(p, req.received_by.trim())
                .map_err(|d| d.0)?;
        }
        let status = match c.status {
            0 => CaseStatus::Closed,
            v => case_status_from_pb(v).ok_or("status: one of the case statuses")?,
        };
        if status.is_open() {
            return Err(format!(
                "status: {status} is not history; a case still open in the old system is registered (petition register) so it is routed and supervised here"
            ));
        }
        let form = form_from_pb(&req).map_err(|s| s.message().to_owned())?;
        let valid = petition_domain::intake::validate(
            &form,
            &IntakeContext {
                tree: &self.shared.reference.tree,
                taxonomy: &self.shared.reference.taxonomy,
                policy: &self.rules,
                now,
            },
        )
        .map_err(|v| {
            v.into_iter()
                // the file calls it case_number
                .map(|v| match v.field.as_str() {
                    "external_ref" => format!("case_number: {}", v.rule),
                    field => format!("{field}: {}", v.rule),
                })
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        // The old system's own decisions stand: repeat petitions are not worked out again
        // across years of history.
        let flags = StoredFlags {
            group: valid.group,
            leapfrog: valid.leapfrog,
            ..StoredFlags::default()
        };
        let query_code = QueryCode::generate(&mut rand::rng());
        let mut case = self.new_case(p, &valid, &query_code, fingerprint, flags, now);
        case.body.status = status;
        // Numbered in the register of the year it was received, as it would have been.
        case.register_year = petition_domain::calendar::local_date(valid.received_at).year();
        let envelope = crate::events::registered(&case.body, &valid, true);
        let event = EventBuilder {
            event_id: uuid::Uuid::parse_str(&envelope.event_id)
                .map_err(|e| format!("event id: {e}"))?,
            build: {
                let (subject, organ) = (p.subject.clone(), p.org.clone());
                std::sync::Arc::new(move |number: &str| {
                    crate::events::with_number(envelope.clone(), number).by(&subject, &organ)
                })
            },
        };
        Ok(Registration { case, event })
    }
}

fn rejection(row: u64, original: &str, reason: String) -> pb::ImportRejection {
    pb::ImportRejection {
        row,
        original_case_number: original.to_owned(),
        reason,
    }
}
