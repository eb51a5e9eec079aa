//! Moving personal data to the data key that seals now, after a rotation: every sealed value
//! opened with whichever key sealed it and sealed again, every identity hash computed again,
//! page by page. Rows already current are left alone, so a second run writes nothing and an
//! interrupted run is finished by running it again; registrations meanwhile are sealed with the
//! new key already. When it reports nothing unreadable, the old key can be dropped.

use crate::crypto::PersonalDataCipher;
use crate::store::{IntakeStore, SealedAccusation, SealedPetitioner, StoreError};

/// Rows read and written at a time: one transaction each.
const PAGE: i64 = 500;
/// Case numbers listed as unreadable, at most.
const LISTED: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub key_id: String,
    pub petitioners_resealed: u64,
    pub accusations_resealed: u64,
    pub already_current: u64,
    pub unreadable: u64,
    pub unreadable_cases: Vec<String>,
}

impl Report {
    fn unreadable(&mut self, case_number: Option<String>, case_id: &str) {
        self.unreadable += 1;
        if self.unreadable_cases.len() < LISTED {
            self.unreadable_cases
                .push(case_number.unwrap_or_else(|| case_id.to_owned()));
        }
    }
}

/// One sealed field after re-sealing.
struct Field {
    sealed: Option<Vec<u8>>,
    plain: Option<String>,
    changed: bool,
}

/// A value no configured key opens.
struct Unreadable;

/// What one sealed field becomes: unchanged, re-sealed, or unreadable.
fn reseal(cipher: &PersonalDataCipher, sealed: &Option<Vec<u8>>) -> Result<Field, Unreadable> {
    let Some(s) = sealed else {
        return Ok(Field {
            sealed: None,
            plain: None,
            changed: false,
        });
    };
    let plain = cipher.open(s).map_err(|_| Unreadable)?;
    let changed = !cipher.is_current(s);
    Ok(Field {
        sealed: Some(if changed {
            cipher.seal(&plain)
        } else {
            s.clone()
        }),
        plain: Some(plain),
        changed,
    })
}

/// The petitioner re-sealed and re-hashed under the current key, or `None` if nothing changes.
fn petitioner(
    cipher: &PersonalDataCipher,
    p: &SealedPetitioner,
) -> Result<Option<SealedPetitioner>, Unreadable> {
    let id_number = reseal(cipher, &p.id_number_sealed)?;
    let phone = reseal(cipher, &p.phone_sealed)?;
    let address = reseal(cipher, &p.address_sealed)?;
    let id_hash = match (&p.id_type, &id_number.plain) {
        (Some(t), Some(n)) => Some(cipher.id_hash(t, n)),
        _ => p.id_hash.clone(),
    };
    if !(id_number.changed || phone.changed || address.changed || id_hash != p.id_hash) {
        return Ok(None);
    }
    Ok(Some(SealedPetitioner {
        id_hash,
        id_number_sealed: id_number.sealed,
        phone_sealed: phone.sealed,
        address_sealed: address.sealed,
        ..p.clone()
    }))
}

pub async fn run(store: &IntakeStore, cipher: &PersonalDataCipher) -> Result<Report, StoreError> {
    let mut report = Report {
        key_id: cipher.current_id().to_owned(),
        ..Report::default()
    };
    let mut after: Option<(String, i64)> = None;
    loop {
        let page = store
            .sealed_petitioners(after.as_ref().map(|(c, o)| (c.as_str(), *o)), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.case_id.clone(), last.ordinal));
        let mut changed = Vec::new();
        for p in &page {
            match petitioner(cipher, p) {
                Ok(Some(new)) => changed.push(new),
                Ok(None) => report.already_current += 1,
                Err(Unreadable) => report.unreadable(p.case_number.clone(), &p.case_id),
            }
        }
        store.reseal_petitioners(&changed).await?;
        report.petitioners_resealed += changed.len() as u64;
    }
    let mut after: Option<String> = None;
    loop {
        let page = store.sealed_accusations(after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.case_id.clone());
        let mut changed = Vec::new();
        for a in &page {
            match reseal(cipher, &Some(a.name_sealed.clone())) {
                Ok(Field {
                    sealed: Some(sealed),
                    changed: true,
                    ..
                }) => changed.push(SealedAccusation {
                    name_sealed: sealed,
                    ..a.clone()
                }),
                Ok(_) => report.already_current += 1,
                Err(Unreadable) => report.unreadable(a.case_number.clone(), &a.case_id),
            }
        }
        store.reseal_accusations(&changed).await?;
        report.accusations_resealed += changed.len() as u64;
    }
    tracing::info!(
        target: "audit",
        key_id = %report.key_id,
        petitioners = report.petitioners_resealed,
        accusations = report.accusations_resealed,
        unreadable = report.unreadable,
        "personal data re-sealed under the current data key"
    );
    Ok(report)
}
