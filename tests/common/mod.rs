//! Helpers shared by the integration tests.
#![allow(dead_code)]

use p256::pkcs8::{EncodePrivateKey, LineEnding};

/// A fresh P-256 key as PKCS#8 PEM (what Apple's `.p8` files hold).
pub fn fresh_pkcs8_pem() -> String {
    let key = p256::SecretKey::random(&mut rand_core::OsRng);
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

/// A fresh P-256 key as SEC1 PEM (what `openssl ecparam -genkey -noout` writes).
pub fn fresh_sec1_pem() -> String {
    let key = p256::SecretKey::random(&mut rand_core::OsRng);
    key.to_sec1_pem(LineEnding::LF).unwrap().to_string()
}

/// The path of a committed test key.
pub fn key_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

pub const TEAM_ID: &str = "TEAMID1234";
pub const KEY_ID: &str = "KEYID56789";
