//! The provider's signing keys (a JWKS, fetched, cached, refreshed on an unknown `kid`) and
//! the `id_token` check.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use subtle::ConstantTimeEq;

use super::error::AppleIdError;
use super::identity::IdTokenClaims;
use crate::http::{Limits, Outgoing};

/// How often an unknown `kid` may trigger a new fetch of the keys.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(10);
/// How long a failed fetch of the keys is remembered: sign-ins meanwhile are answered
/// "unavailable" at once instead of each asking the keys endpoint again.
const REMEMBER_FAILURE: Duration = Duration::from_secs(5);
/// Clock skew accepted on `exp` and `iat`.
const LEEWAY_SECS: u64 = 60;
/// Longest `id_token` looked at.
const MAX_ID_TOKEN_LEN: usize = 16 * 1024;

/// What an `id_token` must match.
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) now: i64,
}

/// The provider's JWKS: fetched on first use, refreshed once when a token names a key it does
/// not hold (at most every 10 s), bounded in size and time.
pub(crate) struct KeyCache {
    client: Outgoing,
    url: String,
    timeout: Duration,
    max_bytes: usize,
    keys: Mutex<Option<Arc<JwkSet>>>,
    last_refresh: Mutex<Option<Instant>>,
    /// When the last fetch failed, and why (cleared by a fetch that works).
    last_failure: Mutex<Option<(Instant, String)>>,
}

impl KeyCache {
    pub(crate) fn new(client: Outgoing, url: String, timeout: Duration, max_bytes: usize) -> Self {
        Self {
            client,
            url,
            timeout,
            max_bytes,
            keys: Mutex::new(None),
            last_refresh: Mutex::new(None),
            last_failure: Mutex::new(None),
        }
    }

    /// The failure of the last fetch, if it was within [`REMEMBER_FAILURE`].
    fn recent_failure(&self) -> Option<String> {
        let failure = self.last_failure.lock().unwrap();
        failure
            .as_ref()
            .filter(|(at, _)| at.elapsed() < REMEMBER_FAILURE)
            .map(|(_, detail)| detail.clone())
    }

    async fn fetch(&self) -> Result<Arc<JwkSet>, AppleIdError> {
        if let Some(detail) = self.recent_failure() {
            return Err(AppleIdError::Unavailable {
                detail: format!("{detail} (a few seconds ago; not asked again yet)"),
            });
        }
        let result = self.fetch_now().await;
        *self.last_failure.lock().unwrap() = match &result {
            Err(AppleIdError::Unavailable { detail }) => Some((Instant::now(), detail.clone())),
            _ => None,
        };
        result
    }

    async fn fetch_now(&self) -> Result<Arc<JwkSet>, AppleIdError> {
        let unavailable = |detail: String| AppleIdError::Unavailable { detail };
        let request = oauth2::http::Request::builder()
            .method("GET")
            .uri(&self.url)
            .header("accept", "application/json")
            .body(Vec::new())
            .map_err(|e| unavailable(format!("the keys URL does not make a request: {e}")))?;
        let answer = self
            .client
            .exchange(request, Limits::new(self.timeout, self.max_bytes))
            .await
            .map_err(|e| unavailable(format!("the keys endpoint could not be reached: {e}")))?;
        if !answer.status().is_success() {
            return Err(unavailable(format!(
                "the keys endpoint answered {}",
                answer.status().as_u16()
            )));
        }
        let set = serde_json::from_slice::<JwkSet>(answer.body())
            .map_err(|_| unavailable("the keys answer is not a JWKS".into()))?;
        let set = Arc::new(set);
        *self.keys.lock().unwrap() = Some(set.clone());
        Ok(set)
    }

    /// The key named `kid` (or the only key, when the token names none).
    async fn key_for(&self, kid: Option<&str>) -> Result<Jwk, JwsError> {
        let cached = self.keys.lock().unwrap().clone();
        let set = match cached {
            Some(set) => set,
            None => self.fetch().await.map_err(JwsError::from_fetch)?,
        };
        if let Some(key) = find(&set, kid) {
            return Ok(key);
        }
        // Unknown key: the provider may have rotated. Refresh once (not more often than
        // every 10 s, so forged tokens cannot make us hammer the endpoint).
        let may_refresh = {
            let mut last = self.last_refresh.lock().unwrap();
            let ok = last.is_none_or(|at| at.elapsed() >= REFRESH_AT_MOST_EVERY);
            if ok {
                *last = Some(Instant::now());
            }
            ok
        };
        if may_refresh {
            let set = self.fetch().await.map_err(JwsError::from_fetch)?;
            if let Some(key) = find(&set, kid) {
                return Ok(key);
            }
        } else if let Some(detail) = self.recent_failure() {
            // The keys could not be refreshed: the key may well be Apple's newest.
            return Err(JwsError::KeysUnavailable(detail));
        }
        Err(JwsError::UnknownKey)
    }

    /// Verifies a JWS of the provider: the signature with the provider's key named by `kid`,
    /// the algorithm pinned to that key's, `iss`, `aud` and the `required` claims. Answers the
    /// claims; `exp` and `iat` are the caller's to check (against its clock).
    pub(crate) async fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        required: &[&str],
    ) -> Result<serde_json::Value, JwsError> {
        if token.len() > MAX_ID_TOKEN_LEN {
            return Err(JwsError::TooLong);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwsError::NotJws)?;
        if has_crit(token) {
            // Extensions that must be understood: this verifier understands none.
            return Err(JwsError::Invalid);
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        let algorithm = algorithm_of(&key).ok_or(JwsError::UnusableKey)?;
        if header.alg != algorithm {
            return Err(JwsError::WrongAlgorithm);
        }
        let decoding = DecodingKey::from_jwk(&key).map_err(|_| JwsError::UnusableKey)?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(required);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = false; // the caller's, against its clock
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidAudience => JwsError::WrongAudience,
                    ErrorKind::InvalidIssuer => JwsError::WrongIssuer,
                    ErrorKind::InvalidSignature => JwsError::BadSignature,
                    ErrorKind::MissingRequiredClaim(_) => JwsError::MissingClaim,
                    _ => JwsError::Invalid,
                }
            })?;
        Ok(data.claims)
    }

    /// Checks `id_token`: [`verify`](Self::verify), then `exp`, `iat` and `nonce`.
    pub(crate) async fn check(
        &self,
        id_token: &str,
        expected: &Expected<'_>,
    ) -> Result<IdTokenClaims, AppleIdError> {
        let invalid = |detail: &str| AppleIdError::InvalidIdToken {
            detail: detail.into(),
        };
        let claims = self
            .verify(
                id_token,
                expected.issuer,
                expected.audience,
                &["exp", "iss", "aud", "sub"],
            )
            .await
            .map_err(|e| match e {
                JwsError::WrongAudience => AppleIdError::WrongAudience,
                JwsError::WrongIssuer => AppleIdError::WrongIssuer,
                JwsError::KeysUnavailable(detail) => AppleIdError::Unavailable { detail },
                other => invalid(other.detail()),
            })?;
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        if exp.saturating_add(LEEWAY_SECS as i64) <= expected.now {
            return Err(AppleIdError::IdTokenExpired);
        }
        let nbf = claims.get("nbf").and_then(serde_json::Value::as_i64);
        if nbf.is_some_and(|nbf| nbf > expected.now.saturating_add(LEEWAY_SECS as i64)) {
            return Err(AppleIdError::IdTokenExpired);
        }
        // Several audiences: the token must say it was issued to us (`azp`).
        if let Some(serde_json::Value::Array(audiences)) = claims.get("aud") {
            let azp = claims.get("azp").and_then(serde_json::Value::as_str);
            if audiences.len() > 1 && azp != Some(expected.audience) {
                return Err(AppleIdError::WrongAudience);
            }
        }
        if claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid("its subject is empty"));
        }
        let claims: IdTokenClaims = serde_json::from_value(claims)
            .map_err(|_| invalid("its claims are not the expected ones"))?;
        if claims
            .iat
            .is_some_and(|iat| iat > expected.now.saturating_add(LEEWAY_SECS as i64))
        {
            return Err(AppleIdError::IdTokenExpired);
        }
        let nonce_ok = claims
            .nonce
            .as_deref()
            .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected.nonce.as_bytes())));
        if !nonce_ok {
            return Err(AppleIdError::NonceMismatch);
        }
        Ok(claims)
    }
}

/// Why a JWS of the provider did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwsError {
    TooLong,
    NotJws,
    UnknownKey,
    UnusableKey,
    WrongAlgorithm,
    BadSignature,
    WrongAudience,
    WrongIssuer,
    MissingClaim,
    Invalid,
    /// The provider's keys could not be fetched (not the token's fault).
    KeysUnavailable(String),
}

impl JwsError {
    fn from_fetch(e: AppleIdError) -> Self {
        match e {
            AppleIdError::Unavailable { detail } => JwsError::KeysUnavailable(detail),
            other => JwsError::KeysUnavailable(other.to_string()),
        }
    }

    /// What was wrong, in words (never the token).
    pub(crate) fn detail(&self) -> &str {
        match self {
            JwsError::TooLong => "too long",
            JwsError::NotJws => "not a signed JWT",
            JwsError::UnknownKey => "signed with a key the provider does not list",
            JwsError::UnusableKey => "the provider's key has no usable algorithm",
            JwsError::WrongAlgorithm => "signed with another algorithm than its key's",
            JwsError::BadSignature => "bad signature",
            JwsError::WrongAudience => "for another client",
            JwsError::WrongIssuer => "from another issuer",
            JwsError::MissingClaim => "a required claim is missing",
            JwsError::Invalid => "does not verify",
            JwsError::KeysUnavailable(_) => "the provider's keys could not be fetched",
        }
    }
}

/// Whether the JWS header names a `crit` parameter.
fn has_crit(token: &str) -> bool {
    use base64::Engine;
    let Some(header) = token.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|header| header.get("crit").is_some())
}

fn find(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}

/// The algorithm a key is for: its `alg`, or what its type implies (RSA → RS256, EC P-256 →
/// ES256, EC P-384 → ES384). Never an HMAC algorithm: a JWKS holds public keys.
fn algorithm_of(key: &Jwk) -> Option<Algorithm> {
    let alg = match key.common.key_algorithm {
        Some(alg) => Algorithm::from_str(&alg.to_string()).ok()?,
        None => match &key.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return None,
            },
            _ => return None,
        },
    };
    (!matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)).then_some(alg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(value: serde_json::Value) -> Jwk {
        serde_json::from_value(value).unwrap()
    }

    fn ec(crv: &str, kid: &str) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "crv": crv, "x": "AAAA", "y": "AAAA", "kid": kid})
    }

    #[test]
    fn a_key_without_alg_is_for_what_its_type_implies_and_never_for_hmac() {
        let rsa = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        assert_eq!(algorithm_of(&jwk(rsa.clone())), Some(Algorithm::RS256));
        assert_eq!(algorithm_of(&jwk(ec("P-256", "a"))), Some(Algorithm::ES256));
        assert_eq!(algorithm_of(&jwk(ec("P-384", "a"))), Some(Algorithm::ES384));
        let ed = serde_json::json!({"kty": "OKP", "crv": "X25519", "x": "AAAA"});
        assert_eq!(algorithm_of(&jwk(ed)), None, "no signing algorithm");
        // A stated `alg` wins over the type; an HMAC one is refused.
        let mut stated = rsa.clone();
        stated["alg"] = "PS256".into();
        assert_eq!(algorithm_of(&jwk(stated)), Some(Algorithm::PS256));
        let hmac = serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"});
        assert_eq!(algorithm_of(&jwk(hmac)), None);
    }

    #[test]
    fn a_token_without_kid_uses_the_only_key_and_no_key_of_several() {
        let one = JwkSet {
            keys: vec![jwk(ec("P-256", "k1"))],
        };
        let two = JwkSet {
            keys: vec![jwk(ec("P-256", "k1")), jwk(ec("P-256", "k2"))],
        };
        let kid_of = |key: Option<Jwk>| key.and_then(|k| k.common.key_id);
        assert_eq!(kid_of(find(&one, None)), Some("k1".into()));
        assert_eq!(kid_of(find(&two, None)), None, "which of the two?");
        assert_eq!(kid_of(find(&two, Some("k2"))), Some("k2".into()));
        assert_eq!(kid_of(find(&one, Some("k2"))), None);
        let none = JwkSet { keys: vec![] };
        assert_eq!(kid_of(find(&none, None)), None);
    }
}
