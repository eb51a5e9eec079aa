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
use std::collections::HashSet;
use tonic::Status;

/// The most rows one message may carry: about a megabyte, under gRPC's default message limit.
pub const MAX_IMPORT_CHUNK: usize = 1000;

/// Rows per transaction, with 33 parameters a case: under SQLite's 32,766 parameters a
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

impl IntakeGrpc {
    /// Imports a stream of chunks. The next chunk is read and checked (CPU) while the last one
    /// is written (the database): one write in flight, so the two overlap.
    pub(crate) async fn import_stream(
        &self,
        p: &Principal,
        mut chunks: tonic::Streaming<pb::ImportPetitionsRequest>,
    ) -> Result<pb::ImportPetitionsResponse, Status> {
        let mut out = pb::ImportPetitionsResponse::default();
        // keys taken in this stream: a row repeated in a later chunk is found here, not in
        // the database, where its first copy may not be committed yet
        let mut taken: HashSet<String> = HashSet::new();
        let mut writing: Option<tokio::task::JoinHandle<Result<u64, Status>>> = None;
        while let Some(chunk) = chunks.message().await? {
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

    /// Checks one message's rows: each becomes a registration, a key seen before, or a
    /// rejection with its reason.
    async fn prepare(
        &self,
        p: &Principal,
        chunk: pb::ImportPetitionsRequest,
        taken: &mut HashSet<String>,
    ) -> Result<Prepared, Status> {
        let source = chunk.source_system.trim().to_owned();
        if source.is_empty() {
            return Err(Status::invalid_argument(
                "source_system: the old system's name, under which each case keeps its original number",
            ));
        }
        if chunk.petitions.len() > MAX_IMPORT_CHUNK {
            return Err(Status::invalid_argument(format!(
                "petitions: at most {MAX_IMPORT_CHUNK} a message, not {}",
                chunk.petitions.len()
            )));
        }
        let refs: Vec<String> = chunk
            .petitions
            .iter()
            .map(|h| h.original_case_number.trim().to_owned())
            .filter(|r| !r.is_empty() && !taken.contains(r))
            .collect();
        let in_database = self
            .store
            .registered_refs(&source, &refs)
            .await
            .map_err(crate::handlers::internal)?;
        let now = self.shared.clock.now();
        let mut prepared = Prepared {
            regs: Vec::with_capacity(chunk.petitions.len()),
            already_imported: 0,
            rejected: Vec::new(),
        };
        for h in chunk.petitions {
            let (original, row) = (h.original_case_number.trim().to_owned(), h.row);
            let reject = |reason: String| pb::ImportRejection {
                row,
                original_case_number: original.clone(),
                reason,
            };
            if original.is_empty() {
                prepared.rejected.push(reject(
                    "original_case_number: required; it keeps the case findable under the old system's number and makes a re-run import it once".into(),
                ));
                continue;
            }
            // Imported before, or twice in this import: once is enough.
            if in_database.contains(&original) || taken.contains(&original) {
                prepared.already_imported += 1;
                continue;
            }
            match self.historical(p, &source, h, now) {
                Ok(reg) => {
                    taken.insert(original);
                    prepared.regs.push(reg);
                }
                Err(reason) => prepared.rejected.push(reject(reason)),
            }
        }
        Ok(prepared)
    }

    /// One historical row as a registration, or why it is refused (the field and the rule).
    fn historical(
        &self,
        p: &Principal,
        source: &str,
        h: pb::HistoricalPetition,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Registration, String> {
        let mut req = h.petition.ok_or("petition: required")?;
        req.source_system = source.to_owned();
        req.external_ref = h.original_case_number.trim().to_owned();
        self.shared
            .access
            .may_import_for(p, req.received_by.trim())
            .map_err(|d| d.0)?;
        let status = match h.status {
            0 => CaseStatus::Closed,
            v => case_status_from_pb(v).ok_or("status: one of the case statuses")?,
        };
        let fingerprint = Sha256::digest(req.encode_to_vec()).to_vec();
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
                .map(|v| format!("{}: {}", v.field, v.rule))
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
            build: std::sync::Arc::new(move |number: &str| {
                crate::events::with_number(envelope.clone(), number)
            }),
        };
        Ok(Registration { case, event })
    }
}
