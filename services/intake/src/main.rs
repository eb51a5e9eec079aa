use petition_host::Binary;
use petition_intake::{Intake, IntakeArgs};

const BINARY: Binary = Binary::new(
    "petition-intake",
    "intake",
    ("127.0.0.1:50051", "127.0.0.1:9464"),
)
.about("Petition Pipeline intake: registers petitions from every channel.");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    petition_host::main::<IntakeArgs>(&BINARY, |a| vec![Box::new(Intake::from(a))]).await?;
    Ok(())
}
