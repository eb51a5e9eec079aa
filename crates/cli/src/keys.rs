//! `petition rekey`: after a data key rotation, move every sealed value to the new key.

use crate::client::{Conn, EXIT_REFUSED, Failure};
use crate::output::{self, Format};
use petition_proto::v1 as pb;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Rotating the data key (PETITION_DATA_KEY):
  1. restart every replica with the new key first and the old one after it (the old one
     keeps working under any id; a bare key was `default`):
       PETITION_DATA_KEY=\"2026-11:<new base64> default:<old base64>\"
  2. petition rekey            # as an admin of the deployment's top bureau
  3. run it again: when it re-seals nothing and reports nothing unreadable (no replica still
     sealed with the old key), restart with the new key alone.
Running it again is harmless: what is current is left alone.

Example:
  export PETITION_TOKEN=$(petition token issue --org shanxi.bureau --role admin)
  petition rekey")]
pub struct Rekey {}

pub async fn rekey(conn: &Conn, _a: &Rekey, format: Format) -> Result<(), Failure> {
    let r = conn
        .intake()
        .rekey_personal_data(pb::RekeyPersonalDataRequest {})
        .await?
        .into_inner();
    if format == Format::Json {
        println!(
            "{}",
            output::json(&r, "petition.v1.RekeyPersonalDataResponse")
        );
    } else {
        print!(
            "{}",
            output::fields(&[
                ("sealed with", r.key_id.clone()),
                ("petitioners re-sealed", r.petitioners_resealed.to_string()),
                ("accusations re-sealed", r.accusations_resealed.to_string()),
                ("already current", r.already_current.to_string()),
                ("unreadable", r.unreadable.to_string()),
            ])
        );
    }
    if r.unreadable > 0 {
        return Err(Failure::new(
            EXIT_REFUSED,
            format!(
                "{} rows hold values no configured data key opens (cases {}): keep the old key configured until they do",
                r.unreadable,
                r.unreadable_cases.join(", ")
            ),
        ));
    }
    Ok(())
}
