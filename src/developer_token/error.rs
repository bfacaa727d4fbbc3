//! Why a developer token was refused, and the limits every decoder shares.

use time::OffsetDateTime;

pub(crate) const MAX_TOKEN_LEN: usize = 4096;

/// Why a token was refused by [`DeveloperTokenSigner::verify`](super::DeveloperTokenSigner::verify).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a JWT: wrong number of parts, bad base64, bad JSON, or too long.
    #[error("not a well-formed developer token")]
    Malformed,
    /// The header names an algorithm other than ES256 (`none`, `HS256`, …).
    #[error("algorithm `{alg}` refused: developer tokens are ES256")]
    UnsupportedAlgorithm {
        /// The `alg` the header named (cut to 16 characters).
        alg: String,
    },
    /// The header's `kid` is missing or not this signer's key ID.
    #[error("the token's key ID is not this app's")]
    KeyIdMismatch,
    /// The `iss` claim is not this signer's Team ID / client ID.
    #[error("the token's issuer is not this app's")]
    IssuerMismatch,
    /// The signature does not verify with this signer's public key (another key, or a changed
    /// header or payload).
    #[error("the token's signature does not verify")]
    InvalidSignature,
    /// `exp` has passed.
    #[error("the token expired at {expired_at}")]
    Expired {
        /// When it expired.
        expired_at: OffsetDateTime,
    },
    /// `iat` lies in the future (beyond 60 s of leeway).
    #[error("the token claims to be issued in the future ({issued_at})")]
    IssuedInFuture {
        /// The claimed issue time.
        issued_at: OffsetDateTime,
    },
}
