//! The holiday calendar of a running host: read again when its file changes, or on
//! `POST /calendar/reload` on the admin port; `GET /calendar` and the gauge
//! `petition_calendar_days_left` say how long it still covers, so that the next year's
//! arrangement is loaded before deadlines run into it. A calendar about to end does not make
//! the host unready: deadlines past it are still counted, marked provisional.

use axum::Json;
use axum::http::StatusCode;
use chrono::NaiveDate;
use petition_domain::Clock;
use petition_domain::calendar::local_date;
use petition_grpc::reference::{LiveCalendar, ReferenceError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long before its end a calendar is said to run out. The State Council's notice comes
/// in November or December and a 60-day handling period reaches two months ahead: with less
/// than this left, new handling deadlines are already provisional.
pub const WARN_DAYS: i64 = 60;

/// What `GET /calendar` answers.
#[derive(Debug, serde::Serialize)]
pub struct Coverage {
    pub first_year: Option<i32>,
    pub last_year: Option<i32>,
    /// 31 December of the last year
    pub covered_until: Option<NaiveDate>,
    /// days from today (Beijing) to `covered_until`; negative once past it
    pub days_left: Option<i64>,
    /// the file it is read from; none for the built-in copy
    pub file: Option<String>,
    /// said when fewer than `WARN_DAYS` remain
    pub warning: Option<String>,
}

pub fn coverage(calendar: &LiveCalendar, today: NaiveDate) -> Coverage {
    let now = calendar.current();
    let until = now.covered_until();
    let days_left = until.map(|u| (u - today).num_days());
    let file = calendar.path().map(|p| p.display().to_string());
    let warning = match (until, days_left) {
        (Some(until), Some(left)) if left < WARN_DAYS => Some(format!(
            "the holiday calendar ends on {until} ({left} days from today): deadlines counted past it are provisional until the next year's arrangement (放假调休) is added to {}",
            file.as_deref().unwrap_or(
                "a cn-calendar.csv in --config-dir (the built-in copy cannot be changed)"
            )
        )),
        _ => None,
    };
    Coverage {
        first_year: now.years().map(|y| y.0),
        last_year: now.years().map(|y| y.1),
        covered_until: until,
        days_left,
        file,
        warning,
    }
}

pub(crate) fn routes(calendar: LiveCalendar, clock: Arc<dyn Clock>) -> axum::Router {
    let (read, reload) = (calendar.clone(), calendar);
    let (c1, c2) = (clock.clone(), clock);
    axum::Router::new()
        .route(
            "/calendar",
            axum::routing::get(move || async move { Json(coverage(&read, local_date(c1.now()))) }),
        )
        .route(
            "/calendar/reload",
            axum::routing::post(move || async move {
                match reload.reload() {
                    Ok(_) => Ok(Json(coverage(&reload, local_date(c2.now())))),
                    Err(e @ ReferenceError::NoCalendarFile) => {
                        Err((StatusCode::CONFLICT, format!("{e}\n")))
                    }
                    Err(e @ ReferenceError::Read { .. }) => {
                        Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")))
                    }
                    Err(e) => Err((
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("{e}; the loaded calendar stays\n"),
                    )),
                }
            }),
        )
}

/// Keeps the days-left gauge current (a day passes, a year is loaded) and, when the calendar
/// comes from a file, loads the file when it changes.
pub(crate) async fn keep(
    calendar: LiveCalendar,
    clock: Arc<dyn Clock>,
    poll: Duration,
    stop: watch::Receiver<bool>,
) {
    let gauge = {
        let (calendar, clock, mut stop) = (calendar.clone(), clock, stop.clone());
        async move {
            let mut loaded = calendar.subscribe();
            let mut warned_on = None;
            loop {
                let today = local_date(clock.now());
                let c = coverage(&calendar, today);
                if let Some(d) = c.days_left {
                    metrics::gauge!("petition_calendar_days_left").set(d as f64);
                }
                // Once a day while it lasts: loud enough for an operator, not a flood.
                if let Some(w) = &c.warning
                    && warned_on != Some(today)
                {
                    tracing::warn!("{w}");
                    warned_on = Some(today);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    _ = loaded.changed() => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    let Some(path) = calendar.path().map(|p| p.to_owned()) else {
        return gauge.await;
    };
    let shown = path.display().to_string();
    let watcher = crate::files::watch_file(path, poll, stop, move |text| {
        if let Err(e) = calendar.load_text(text) {
            tracing::error!(error = %e, path = %shown,
                "holiday calendar not reloaded; keeping the loaded one");
        }
    });
    tokio::join!(gauge, watcher);
}
