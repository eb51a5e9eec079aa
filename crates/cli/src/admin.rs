//! Commands for the admin port (HTTP, default 127.0.0.1:9464): the simulated clock of a
//! `--dev-clock` suite, and the holiday calendar.

use crate::client::{EXIT_REFUSED, EXIT_UNAVAILABLE, Failure};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(clap::Subcommand, Debug)]
pub enum ClockCommand {
    /// Where simulated time stands.
    #[command(after_help = "Example:\n  petition clock show")]
    Show,
    /// Move simulated time forward (a suite started with --dev --dev-clock only).
    #[command(after_help = "\
Example:
  # fifteen days later: limits lapse, urging fires
  petition clock advance --days 15
  # to the morning of a chosen day, Beijing time
  petition clock advance --to 2026-03-18T09:00:00+08:00")]
    Advance {
        /// Days forward
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
        days: i64,
        /// Hours forward
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
        hours: i64,
        /// Minutes forward
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
        minutes: i64,
        /// Move to this instant (RFC 3339) instead of by a step
        #[arg(long, value_parser = crate::register::parse_instant, conflicts_with_all = ["days", "hours", "minutes"])]
        to: Option<chrono::DateTime<chrono::FixedOffset>>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum CalendarCommand {
    /// The years the holiday calendar covers and the days left.
    #[command(after_help = "Example:\n  petition calendar show")]
    Show,
    /// Read cn-calendar.csv again (after adding next year's 放假调休 arrangement); a malformed
    /// file is refused with its line and the loaded calendar stays.
    #[command(after_help = "Example:\n  petition calendar reload")]
    Reload,
}

/// One plain HTTP request: the status and the body, or why no answer came.
pub(crate) async fn http(
    method: hyper::Method,
    uri: hyper::Uri,
) -> Result<(hyper::StatusCode, String), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).trim().to_owned()))
}

/// One call to the admin port: the body of a 2xx answer, or a failure with the server's words.
async fn call(admin: &str, method: hyper::Method, path: &str) -> Result<String, Failure> {
    let base = if admin.contains("://") {
        admin.to_owned()
    } else {
        format!("http://{admin}")
    };
    let uri: hyper::Uri = format!("{}{path}", base.trim_end_matches('/'))
        .parse()
        .map_err(|e| Failure::usage(format!("--admin (PETITION_ADMIN): {admin:?}: {e}")))?;
    let (status, text) = http(method, uri).await.map_err(|e| {
        Failure::new(
            EXIT_UNAVAILABLE,
            format!(
                "the admin port {admin} does not answer: {e}\n  is the suite running? set PETITION_ADMIN to its --admin-listen address"
            ),
        )
    })?;
    if status.is_success() {
        Ok(text)
    } else if status == hyper::StatusCode::NOT_FOUND && path.starts_with("/clock") {
        Err(Failure::new(
            EXIT_REFUSED,
            "this suite runs on real time: start it with --dev --dev-clock <instant> to move time",
        ))
    } else {
        Err(Failure::new(EXIT_REFUSED, format!("refused: {text}")))
    }
}

pub async fn clock(admin: &str, cmd: &ClockCommand) -> Result<(), Failure> {
    let out = match cmd {
        ClockCommand::Show => call(admin, hyper::Method::GET, "/clock").await?,
        ClockCommand::Advance { to: Some(at), .. } => {
            // in UTC: a '+' of an offset would read as a space in a query string
            let at = at
                .to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            call(
                admin,
                hyper::Method::POST,
                &format!("/clock/advance?to={at}"),
            )
            .await?
        }
        ClockCommand::Advance {
            days,
            hours,
            minutes,
            to: None,
        } => {
            if days + hours + minutes == 0 {
                return Err(Failure::usage(
                    "clock advance: give --days, --hours or --minutes (a step forward), or --to an instant",
                ));
            }
            call(
                admin,
                hyper::Method::POST,
                &format!("/clock/advance?days={days}&hours={hours}&minutes={minutes}"),
            )
            .await?
        }
    };
    println!("{out}");
    Ok(())
}

pub async fn calendar(admin: &str, cmd: &CalendarCommand) -> Result<(), Failure> {
    let out = match cmd {
        CalendarCommand::Show => call(admin, hyper::Method::GET, "/calendar").await?,
        CalendarCommand::Reload => call(admin, hyper::Method::POST, "/calendar/reload").await?,
    };
    println!("{out}");
    Ok(())
}
