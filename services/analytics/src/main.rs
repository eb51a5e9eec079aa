use petition_analytics::{Analytics, AnalyticsArgs};
use petition_host::Binary;

const BINARY: Binary = Binary::new("petition-analytics", "analytics", ("127.0.0.1:50054", "127.0.0.1:9467"))
    .about("Petition Pipeline analytics: situation analysis, scorecards, hot spots and the yearly report. Reads every stream from Redis (--redis-url).")
    .needing_redis();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    petition_host::main::<AnalyticsArgs>(&BINARY, |a| vec![Box::new(Analytics::from(a))]).await?;
    Ok(())
}
