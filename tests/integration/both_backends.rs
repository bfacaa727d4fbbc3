//! With both crypto backends enabled (cargo unifies features, so an app can end up there),
//! jsonwebtoken cannot choose a provider by itself and panics on first use. The crate installs
//! one before its first key is used; this test binary proves signing and verifying still work.
//! Run by `.ci/run` as `cargo test --all-features`.

use actix_apple_music::developer_token::{DeveloperTokenConfig, SigningKey};

#[test]
fn signing_and_verifying_work_with_both_backends_enabled() {
    let signer = DeveloperTokenConfig::apple_music("TEAMID1234", "KEYID56789")
        .build(SigningKey::generate())
        .unwrap();
    let other = DeveloperTokenConfig::apple_music("TEAMID1234", "KEYID56789")
        .build(SigningKey::generate())
        .unwrap();
    assert!(signer.verify(signer.token().as_str()).is_ok());
    assert!(signer.verify(other.token().as_str()).is_err());
}
