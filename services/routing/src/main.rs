use petition_host::Binary;
use petition_routing::{Routing, RoutingArgs};

const BINARY: Binary = Binary::new("petition-routing", "routing", ("127.0.0.1:50052", "127.0.0.1:9465"))
    .about("Petition Pipeline routing: who has authority, and the department inbox. Reads intake's events from Redis (--redis-url).")
    .needing_redis();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    petition_host::main::<RoutingArgs>(&BINARY, |a| vec![Box::new(Routing::from(a))]).await?;
    Ok(())
}
