//! Developer-token costs: `cargo bench --bench developer_token`.

use actix_apple_music::developer_token::{DeveloperTokenConfig, DeveloperTokenSigner, SigningKey};
use divan::{black_box, Bencher};

fn main() {
    divan::main();
}

fn signer() -> DeveloperTokenSigner {
    DeveloperTokenConfig::apple_music("TEAMID1234", "KEYID56789")
        .origins(["https://app.example"])
        .build(SigningKey::generate())
        .unwrap()
}

/// Signing one token (what passport-apple-music does on every login).
#[divan::bench]
fn sign_one_token(bencher: Bencher<'_, '_>) {
    let signer = signer();
    bencher.bench(|| signer.sign_fresh().unwrap());
}

/// `token()` on a warm cache (the hot path of every login page).
#[divan::bench]
fn token_warm_cache(bencher: Bencher<'_, '_>) {
    let signer = signer();
    bencher.bench(|| black_box(signer.token()));
}

/// Verifying the current token: the constant-time fast path.
#[divan::bench]
fn verify_fast_path(bencher: Bencher<'_, '_>) {
    let signer = signer();
    let token = signer.token().as_str().to_owned();
    bencher.bench(|| signer.verify(black_box(&token)).unwrap());
}

/// Verifying a token the cache does not hold (another instance's): ECDSA verification.
#[divan::bench]
fn verify_slow_path(bencher: Bencher<'_, '_>) {
    let key_pem_signer = signer();
    let key = key_pem_signer.signing_key().clone();
    // Another origin claim: the token differs from the cached one even with a deterministic
    // (RFC 6979) signer such as RustCrypto's.
    let other_instance = DeveloperTokenConfig::apple_music("TEAMID1234", "KEYID56789")
        .origins(["https://other.example"])
        .build(key)
        .unwrap();
    let token = other_instance.token().as_str().to_owned();
    bencher.bench(|| key_pem_signer.verify(black_box(&token)).unwrap());
}

/// Baseline for `token_warm_cache`: cloning an `Arc<str>` and reading the clock, the least a
/// cached token can cost.
#[divan::bench]
fn baseline_arc_clone_and_clock(bencher: Bencher<'_, '_>) {
    let token: std::sync::Arc<str> = std::sync::Arc::from("x".repeat(400));
    bencher.bench(|| (black_box(token.clone()), time::OffsetDateTime::now_utc()));
}
