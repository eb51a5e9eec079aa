//! Property tests ("fuzz") of page tokens, which clients send back as they please: anything but
//! a token issued for the same caller and filter is refused with INVALID_ARGUMENT, never a
//! panic; issued tokens give their cursor back.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p petition-grpc -E 'test(fuzz)'` runs it longer.

use petition_grpc::page::PageTokens;
use proptest::prelude::*;

proptest! {
    #[test]
    fn fuzz_page_tokens(
        s in "\\PC{0,200}",
        cursor in "\\PC{0,80}",
        binding in prop::collection::vec(any::<u8>(), 0..64),
        other in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let t = PageTokens::new(b"secret-secret-secret-secret-secret");
        let e = t.decode(&binding, &s).expect_err("not a token this service issued");
        prop_assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let token = t.encode(&binding, &cursor);
        prop_assert_eq!(t.decode(&binding, &token).unwrap(), cursor);
        if other != binding {
            prop_assert!(t.decode(&other, &token).is_err());
        }
    }
}
