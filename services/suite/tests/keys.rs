//! Key rotation, as an operator does it on the suite binary: tokens and personal data made
//! under the old keys keep working once new keys lead the rings; `rekey` moves the sealed data
//! and the identity hashes to the new data key; then the old keys are dropped, the old token
//! is refused naming its key, and everything sealed before still opens — the petitioner is
//! still recognised as coming back (重复信访).

mod common;

use base64::Engine;
use common::Suite;
use petition_auth::{Principal, Role, TokenKeys};
use petition_e2e::{bearer, connect, load_request, synthetic_resident_id, who};
use petition_proto::v1 as pb;
use tonic::Code;

const TOKEN_OLD: &str = "token-2026-05-token-2026-05-token-2026-05";
const TOKEN_NEW: &str = "token-2026-11-token-2026-11-token-2026-11";

fn data_key(n: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([n; 32])
}

struct Keys {
    token: String,
    data: String,
}

impl Keys {
    fn env(&self) -> [(&str, &str); 2] {
        [
            ("PETITION_TOKEN_KEY", self.token.as_str()),
            ("PETITION_DATA_KEY", self.data.as_str()),
        ]
    }

    fn signer(&self) -> TokenKeys {
        TokenKeys::parse(&self.token).unwrap()
    }
}

fn intake(
    s: &Suite,
    keys: &TokenKeys,
    p: &Principal,
) -> impl Future<Output = petition_e2e::IntakeClient> {
    let addr = s.grpc_addr;
    let bearer = bearer(keys, p);
    async move {
        pb::intake_service_client::IntakeServiceClient::with_interceptor(
            connect(addr).await,
            bearer,
        )
    }
}

async fn resident_id(c: &mut petition_e2e::IntakeClient, case_id: &str) -> String {
    let case = c
        .reveal_personal_data(pb::RevealPersonalDataRequest {
            case_id: case_id.into(),
            case_number: String::new(),
            purpose: "checking the rotation".into(),
        })
        .await
        .expect("reveal_personal_data")
        .into_inner();
    case.petitioners[0].id_number.clone()
}

async fn rotate_and_retire(mut s: Suite, before: Keys) {
    let clerk = who("pingcheng.bureau", Role::Clerk);
    let old_signer = before.signer();
    let mut old_clerk = intake(&s, &old_signer, &clerk).await;
    let first = old_clerk
        .register_petition(load_request(41))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.flags.unwrap().repeat);
    assert_eq!(
        resident_id(&mut old_clerk, &first.case_id).await,
        synthetic_resident_id(41)
    );

    // Rotation: the new keys lead, the old ones stay to verify and to open.
    let rotated = Keys {
        token: format!("2026-11:{TOKEN_NEW} 2026-05:{TOKEN_OLD}"),
        data: format!("d-2026-11:{} d-2026-05:{}", data_key(2), data_key(1)),
    };
    s.restart_production(&rotated.env(), rotated.signer());
    let mut old_clerk = intake(&s, &old_signer, &clerk).await;
    assert_eq!(
        resident_id(&mut old_clerk, &first.case_id).await,
        synthetic_resident_id(41),
        "a token and a sealed field made before the rotation still work"
    );
    let mut new_clerk = intake(&s, &s.token_keys, &clerk).await;
    let second = new_clerk
        .register_petition(load_request(41))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second.flags.unwrap().repeat_of_case_number,
        first.case_number,
        "the petitioner hashed under the old key is recognised"
    );

    // Re-sealing is deployment-wide: a district admin may not; the top organ's admin may.
    let denied = intake(&s, &s.token_keys, &who("pingcheng.bureau", Role::Admin))
        .await
        .rekey_personal_data(pb::RekeyPersonalDataRequest {})
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied}");
    let mut top = intake(&s, &s.token_keys, &who("shanxi.bureau", Role::Admin)).await;
    let r = top
        .rekey_personal_data(pb::RekeyPersonalDataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.key_id, "d-2026-11");
    assert_eq!((r.petitioners_resealed, r.unreadable), (1, 0), "{r:?}");
    assert_eq!(
        r.already_current, 1,
        "the second registration was sealed with the new key"
    );
    let again = top
        .rekey_personal_data(pb::RekeyPersonalDataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.petitioners_resealed, again.already_current),
        (0, 2),
        "a second run writes nothing"
    );

    // Retirement: only the new keys.
    let after = Keys {
        token: format!("2026-11:{TOKEN_NEW}"),
        data: format!("d-2026-11:{}", data_key(2)),
    };
    s.restart_production(&after.env(), after.signer());
    let err = intake(&s, &old_signer, &clerk)
        .await
        .get_case(pb::GetCaseRequest {
            case_id: first.case_id.clone(),
            case_number: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("\"2026-05\""), "{err}");
    let mut new_clerk = intake(&s, &s.token_keys, &clerk).await;
    assert_eq!(
        resident_id(&mut new_clerk, &first.case_id).await,
        synthetic_resident_id(41),
        "after rekey the old data key is not needed"
    );
    let third = new_clerk
        .register_petition(load_request(41))
        .await
        .unwrap()
        .into_inner();
    assert!(third.flags.unwrap().repeat, "re-hashed under the new key");
    s.stop().await;
}

fn first_keys() -> Keys {
    Keys {
        token: format!("2026-05:{TOKEN_OLD}"),
        data: format!("d-2026-05:{}", data_key(1)),
    }
}

#[tokio::test]
async fn rotation_on_the_embedded_default() {
    let k = first_keys();
    let s = Suite::production_embedded(&k.env(), k.signer());
    rotate_and_retire(s, k).await;
}

#[tokio::test]
async fn rotation_on_postgres_and_redis() {
    let k = first_keys();
    let Some(s) = Suite::production_postgres_and_redis(&k.env(), k.signer()).await else {
        return;
    };
    rotate_and_retire(s, k).await;
}
