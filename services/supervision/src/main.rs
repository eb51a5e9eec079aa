use petition_host::Binary;
use petition_supervision::{Supervision, SupervisionArgs};

const BINARY: Binary = Binary::new("petition-supervision", "supervision", ("127.0.0.1:50053", "127.0.0.1:9466"))
    .about("Petition Pipeline supervision: every statutory clock, warnings, urging and extensions. Reads intake's and routing's events from Redis (--redis-url).")
    .needing_redis();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    petition_host::main::<SupervisionArgs>(&BINARY, |a| vec![Box::new(Supervision::from(a))])
        .await?;
    Ok(())
}
