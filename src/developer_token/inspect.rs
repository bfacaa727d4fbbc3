//! Reading a token without trusting it (for `inspect` and for typed refusals).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::sync::LazyLock;
use time::OffsetDateTime;

use super::error::{VerifyError, MAX_TOKEN_LEN};
use super::SigningKey;

/// A JWT's header and claims, decoded but **not verified**. For showing what a token says
/// (the `developer-token inspect` command) and for deciding why a token is refused.
#[derive(Debug, Clone)]
pub struct UnverifiedToken {
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl UnverifiedToken {
    /// Splits and decodes a compact JWT. Refuses anything that is not three base64url parts
    /// whose first two are JSON objects, and anything longer than 4096 bytes.
    pub fn parse(token: &str) -> Result<Self, VerifyError> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        Ok(Self {
            header: decode_object(header)?,
            claims: decode_object(claims)?,
        })
    }

    /// The header (`alg`, `kid`, `typ`, …).
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The claims (`iss`, `iat`, `exp`, `origin`, `sub`, …).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The header's `alg`.
    pub fn algorithm(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// The header's `kid`.
    pub fn key_id(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// `iss`.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// `iat` as a time.
    pub fn issued_at(&self) -> Option<OffsetDateTime> {
        self.time_claim("iat")
    }

    /// `exp` as a time.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.time_claim("exp")
    }

    fn time_claim(&self, name: &str) -> Option<OffsetDateTime> {
        let secs = self.claims.get(name)?.as_i64()?;
        OffsetDateTime::from_unix_timestamp(secs).ok()
    }

    /// Checks only the ES256 signature of `token` against `key`'s public half; no claim is
    /// checked. Use [`DeveloperTokenSigner::verify`](super::DeveloperTokenSigner::verify) to
    /// accept a token.
    pub fn verify_signature(token: &str, key: &SigningKey) -> Result<(), VerifyError> {
        Self::parse(token)?.require_es256()?;
        decode_es256::<Value>(token.trim(), key).map(|_| ())
    }

    /// Refuses any `alg` but ES256 (`none`, `HS256`, …), naming it (cut to 16 characters).
    pub(crate) fn require_es256(&self) -> Result<(), VerifyError> {
        match self.algorithm() {
            Some("ES256") => Ok(()),
            other => Err(VerifyError::UnsupportedAlgorithm {
                alg: other.unwrap_or("(none)").chars().take(16).collect(),
            }),
        }
    }
}

/// Signature-only validation: claims are checked by the caller against its own clock.
static SIGNATURE_ONLY: LazyLock<Validation> = LazyLock::new(|| {
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    validation
});

/// Checks the ES256 signature of `token` with `key` and decodes its claims as `T`.
pub(crate) fn decode_es256<T: DeserializeOwned>(
    token: &str,
    key: &SigningKey,
) -> Result<T, VerifyError> {
    jsonwebtoken::decode::<T>(token, &key.decoding, &SIGNATURE_ONLY)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::InvalidSignature,
            _ => VerifyError::Malformed,
        })
}

fn decode_object(part: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VerifyError::Malformed),
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// A well-formed compact JWT of exactly `len` bytes (the signature is not decoded).
    fn token_of(len: usize) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        let claims = URL_SAFE_NO_PAD.encode(br#"{"x":1}"#);
        let signature = "s".repeat(len - header.len() - claims.len() - 2);
        format!("{header}.{claims}.{signature}")
    }

    #[test]
    fn a_token_is_read_up_to_4096_bytes_and_never_empty() {
        assert!(matches!(
            UnverifiedToken::parse(""),
            Err(VerifyError::Malformed)
        ));
        assert!(matches!(
            UnverifiedToken::parse("   "),
            Err(VerifyError::Malformed)
        ));
        let at_limit = token_of(MAX_TOKEN_LEN);
        assert_eq!(at_limit.len(), MAX_TOKEN_LEN);
        assert!(UnverifiedToken::parse(&at_limit).is_ok(), "4096 bytes read");
        let over = format!("{at_limit}x");
        assert!(matches!(
            UnverifiedToken::parse(&over),
            Err(VerifyError::Malformed)
        ));
        assert!(UnverifiedToken::parse(&token_of(100)).is_ok());
    }
}
