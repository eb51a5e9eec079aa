//! Property tests ("fuzz") of what `crates/auth` reads from outside: bearer tokens, key rings
//! and role names. Anything is refused with a reason or accepted, never a panic; a token
//! altered anywhere never passes as another principal.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p petition-auth -E 'test(fuzz)'` runs it longer.

use petition_auth::{Principal, Role, TokenKeys, keyring};
use proptest::prelude::*;

fn clerk() -> Principal {
    Principal {
        subject: "clerk@pingcheng.bureau".into(),
        org: "pingcheng.bureau".into(),
        role: Role::Clerk,
        scopes: vec![],
    }
}

proptest! {
    #[test]
    fn fuzz_tokens_never_panic(s in "\\PC{0,300}", dots in "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}") {
        let keys = TokenKeys::dev().with_audience(Some("pingcheng".into()));
        prop_assert!(keys.verify(&s).is_err());
        prop_assert!(keys.verify(&dots).is_err());
    }

    #[test]
    fn fuzz_an_altered_token_never_passes_as_someone_else(at in any::<prop::sample::Index>(), c in "[A-Za-z0-9_.-]") {
        let keys = TokenKeys::dev();
        let token = keys.issue(&clerk(), chrono::Duration::hours(1));
        let mut chars: Vec<char> = token.chars().collect();
        let i = at.index(chars.len());
        chars[i] = c.chars().next().unwrap();
        let altered: String = chars.into_iter().collect();
        // base64's spare bits may change without changing the bytes: then it is the same token
        if let Ok(p) = keys.verify(&altered) {
            prop_assert_eq!(p, clerk());
        }
    }

    #[test]
    fn fuzz_key_rings_and_roles(s in "\\PC{0,200}") {
        let _ = keyring::parse(&s, |k| Ok(k.as_bytes().to_vec()));
        let _ = TokenKeys::parse(&s);
        let _ = s.parse::<Role>();
    }
}
