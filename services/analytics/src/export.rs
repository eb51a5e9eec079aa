//! `ExportCases`: every case of a period as CSV, page by page from the facts, so that a year of
//! a million cases streams in constant memory. No personal data: the columns are the case's
//! codes, dates and outcomes.

use crate::fact::{Derived, Fact};
use crate::period::Months;
use crate::store::AnalyticsStore;
use crate::tally::Basis;
use chrono::{DateTime, Utc};
use petition_auth::FigureScope;
use petition_domain::beijing_time;
use petition_proto::v1 as pb;
use tonic::Status;

pub const HEADER: [&str; 22] = [
    "case_number",
    "channel",
    "received_by",
    "organ",
    "category",
    "type_of_matter",
    "problem_location",
    "age_band",
    "sex",
    "group",
    "leapfrog",
    "repeat",
    "route",
    "received_at",
    "registered_at",
    "routed_at",
    "accepted_at",
    "answered_at",
    "closed_at",
    "handling_due",
    "bureau_rating",
    "organ_rating",
];

const PAGE: u32 = 2000;

/// The export as the gRPC service streams it.
pub type CsvStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::CsvChunk, Status>> + Send>>;

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(beijing_time).unwrap_or_default()
}

pub fn record(f: &Fact) -> Option<Vec<String>> {
    let r = f.registered()?;
    let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
    let (bureau, organ) = f.rating.value.unwrap_or_default();
    Some(vec![
        r.case_number.clone(),
        r.channel.as_str().to_owned(),
        r.received_by.clone(),
        f.organ().unwrap_or_default().to_owned(),
        r.category.clone(),
        r.type_of_matter
            .map(|t| t.as_str())
            .unwrap_or_default()
            .to_owned(),
        r.location.clone(),
        r.age_band.clone().unwrap_or_default(),
        r.sex.map(|s| s.as_str()).unwrap_or_default().to_owned(),
        flag(r.group),
        flag(r.leapfrog),
        flag(r.repeat),
        f.outcome()
            .map(|o| o.as_str())
            .unwrap_or_default()
            .to_owned(),
        when(Some(r.received_at)),
        when(Some(r.registered_at)),
        when(f.routed_at),
        when(f.accepted_at),
        when(f.answered_at),
        when(f.final_at),
        when(f.handling_due),
        bureau.map(|x| x.as_str()).unwrap_or_default().to_owned(),
        organ.map(|x| x.as_str()).unwrap_or_default().to_owned(),
    ])
}

fn csv_bytes(rows: impl IntoIterator<Item = Vec<String>>) -> Result<Vec<u8>, Status> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(&r)
            .map_err(|e| Status::internal(format!("csv: {e}")))?;
    }
    w.into_inner()
        .map_err(|e| Status::internal(format!("csv: {e}")))
}

pub fn stream(
    store: AnalyticsStore,
    scope: FigureScope,
    months: Months,
    basis: Basis,
) -> CsvStream {
    let month_col = match basis {
        Basis::Petition => "received_month",
        Basis::Registration => "registered_month",
        Basis::Exchange => "routed_month",
    };
    let s = async_stream(move |tx| async move {
        let head = csv_bytes([HEADER.iter().map(|h| (*h).to_owned()).collect()])?;
        if tx.send(Ok(pb::CsvChunk { data: head })).await.is_err() {
            return Ok(());
        }
        let mut after: Option<(i64, String)> = None;
        loop {
            let page: Vec<(Fact, Derived)> = store
                .export_page(&scope, month_col, months, after.clone(), PAGE)
                .await
                .map_err(crate::queries::store_status)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = last.registered().map(|r| {
                (
                    petition_storage::micros(r.received_at),
                    last.case_id.clone(),
                )
            });
            let data = csv_bytes(page.iter().filter_map(|(f, _)| record(f)))?;
            if tx.send(Ok(pb::CsvChunk { data })).await.is_err() {
                return Ok(());
            }
            if page.len() < PAGE as usize {
                return Ok(());
            }
        }
    });
    Box::pin(s)
}

/// A stream fed by a task: what the task sends, then its error if it ends with one.
fn async_stream<F, Fut>(
    work: F,
) -> impl futures::Stream<Item = Result<pb::CsvChunk, Status>> + Send + 'static
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::CsvChunk, Status>>) -> Fut,
    Fut: std::future::Future<Output = Result<(), Status>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let fut = work(tx.clone());
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            let _ = tx.send(Err(e)).await;
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
