//! Signing, caching, rotating and verifying developer tokens.

use std::fmt;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::config::{check_uuid, DeveloperTokenConfig, Service, IAT_LEEWAY};
use super::error::VerifyError;
use super::inspect::{decode_es256, UnverifiedToken};
use super::key::SigningKey;
use super::token::{DeveloperToken, DeveloperTokenClaims};
use crate::error::ConfigError;

impl DeveloperTokenConfig {
    /// Checks the settings, signs the first token and answers the signer.
    pub fn build(self, key: SigningKey) -> Result<DeveloperTokenSigner, ConfigError> {
        self.validate()?;
        let margin = self
            .refresh_margin
            .unwrap_or(self.lifetime / 10)
            .min(self.lifetime / 2);
        let header = Header {
            kid: Some(self.key_id.clone()),
            ..Header::new(Algorithm::ES256)
        };
        let inner = SignerInner {
            key,
            header,
            margin,
            config: self,
            tokens: ArcSwap::from_pointee(TokenPair::default()),
            rotating: Mutex::new(()),
        };
        let now = inner.config.clock.now();
        let first = inner
            .sign_at(now, inner.config.subject.as_deref())
            .map_err(|e| ConfigError::Signing(e.to_string()))?;
        inner.tokens.store(Arc::new(TokenPair {
            current: Some(first),
            previous: None,
        }));
        Ok(DeveloperTokenSigner {
            inner: Arc::new(inner),
        })
    }
}

#[derive(Default)]
struct TokenPair {
    current: Option<DeveloperToken>,
    previous: Option<DeveloperToken>,
}

struct SignerInner {
    key: SigningKey,
    config: DeveloperTokenConfig,
    header: Header,
    margin: Duration,
    tokens: ArcSwap<TokenPair>,
    rotating: Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

impl SignerInner {
    fn sign_at(
        &self,
        now: OffsetDateTime,
        subject: Option<&str>,
    ) -> Result<DeveloperToken, jsonwebtoken::errors::Error> {
        let iat = now.unix_timestamp();
        let exp = iat + self.config.lifetime.as_secs() as i64;
        let origin = (!self.config.origins.is_empty()).then(|| self.config.origins.clone());
        let claims = Claims {
            iss: self.config.issuer.clone(),
            iat,
            exp,
            sub: subject.map(str::to_owned),
            origin,
            aud: self.config.audience.clone(),
        };
        let jwt = jsonwebtoken::encode(&self.header, &claims, &self.key.encoding)?;
        Ok(DeveloperToken::new(
            jwt,
            self.claims_from(claims),
            self.margin,
        ))
    }

    fn claims_from(&self, claims: Claims) -> DeveloperTokenClaims {
        DeveloperTokenClaims {
            key_id: self.config.key_id.clone(),
            issuer: claims.iss,
            subject: claims.sub,
            origins: claims.origin.unwrap_or_default(),
            issued_at: from_unix(claims.iat),
            expires_at: from_unix(claims.exp),
        }
    }
}

fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Signs developer tokens, caches the current one, rotates it before it expires, and verifies
/// tokens it (or another instance with the same key and IDs) issued.
///
/// Cheap to clone (an `Arc`); share one per app. Made by [`DeveloperTokenConfig::build`].
///
/// # Rotation
///
/// [`token`](Self::token) answers the cached token until the current time reaches its expiry
/// minus the refresh margin (a tenth of the lifetime by default); the first call after that
/// signs a new one while the other threads keep getting the old one. The replaced token stays
/// valid for [`verify`](Self::verify) until its own `exp`.
///
/// # Verification
///
/// [`verify`](Self::verify) first compares the string, in constant time, with the current and
/// previous cached tokens; a match only needs its expiry checked. Anything else goes through
/// the full check: ES256 signature against this key's public half, `kid`, `iss`, `exp` and
/// `iat` (60 s of leeway for skewed clocks).
#[derive(Clone)]
pub struct DeveloperTokenSigner {
    inner: Arc<SignerInner>,
}

impl fmt::Debug for DeveloperTokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeveloperTokenSigner")
            .field("config", &self.inner.config)
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl DeveloperTokenSigner {
    /// The current token, signing a new one first if the current one is within the refresh
    /// margin of its end. Safe to call from many threads; on the warm path it costs an atomic
    /// load, a clock read and an `Arc` clone.
    pub fn token(&self) -> DeveloperToken {
        let now = self.inner.config.clock.now();
        {
            let pair = self.inner.tokens.load();
            if let Some(current) = &pair.current {
                if current.0.serves_at(now) {
                    self.report_seconds_left(current, now);
                    return current.clone();
                }
            }
        }
        let token = self.rotate(now);
        self.report_seconds_left(&token, now);
        token
    }

    /// Sets the gauge of the seconds left on the token in use (see [`crate::audit`]).
    fn report_seconds_left(&self, token: &DeveloperToken, now: OffsetDateTime) {
        let gauge = match self.inner.config.service {
            Service::SignInWithApple => crate::audit::CLIENT_SECRET_SECONDS_LEFT,
            Service::AppleMusic | Service::MusicApi => crate::audit::DEVELOPER_TOKEN_SECONDS_LEFT,
        };
        metrics::gauge!(gauge).set((token.expires_at() - now).whole_seconds() as f64);
    }

    #[cold]
    fn rotate(&self, now: OffsetDateTime) -> DeveloperToken {
        let _guard = match self.inner.rotating.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => {
                // Someone else is signing. The current token is still good unless expired.
                let pair = self.inner.tokens.load();
                if let Some(current) = pair.current.as_ref().filter(|t| now < t.expires_at()) {
                    return current.clone();
                }
                self.inner
                    .rotating
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
            }
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
        };
        let pair = self.inner.tokens.load_full();
        if let Some(current) = pair.current.as_ref().filter(|t| t.0.serves_at(now)) {
            return current.clone(); // another thread rotated while we waited
        }
        match self
            .inner
            .sign_at(now, self.inner.config.subject.as_deref())
        {
            Ok(fresh) => {
                let previous = pair.current.clone().filter(|t| now < t.expires_at());
                self.inner.tokens.store(Arc::new(TokenPair {
                    current: Some(fresh.clone()),
                    previous,
                }));
                tracing::debug!(
                    "signed a new developer token, valid until {}",
                    fresh.expires_at()
                );
                fresh
            }
            Err(e) => {
                // Cannot happen with a key that signed at start-up; keep serving what we have.
                tracing::error!("could not sign a new developer token: {e}");
                pair.current
                    .clone()
                    .expect("the signer holds a token from start-up")
            }
        }
    }

    /// Signs a new token outside the cache (the cache keeps its own). For tests and benches
    /// (feature `test-util`); apps want [`token`](Self::token).
    #[cfg(feature = "test-util")]
    pub fn sign_fresh(&self) -> Result<DeveloperToken, ConfigError> {
        let now = self.inner.config.clock.now();
        self.inner
            .sign_at(now, self.inner.config.subject.as_deref())
            .map_err(|e| ConfigError::Signing(e.to_string()))
    }

    /// Signs a one-off MusicAPI token for one user (`sub` = `user_uuid`), outside the cache.
    pub fn sign_for_subject(&self, user_uuid: &str) -> Result<DeveloperToken, ConfigError> {
        if self.inner.config.service != Service::MusicApi {
            return Err(ConfigError::invalid(
                "subject",
                user_uuid,
                "no `sub` claim: Apple Music developer tokens do not take one",
            ));
        }
        check_uuid("subject (user UUID)", user_uuid)?;
        let now = self.inner.config.clock.now();
        self.inner
            .sign_at(now, Some(user_uuid))
            .map_err(|e| ConfigError::Signing(e.to_string()))
    }

    /// Checks that `token` is a developer token this signer's key and IDs issued and that it
    /// is still valid now. Answers its claims, or why it was refused.
    pub fn verify(&self, token: &str) -> Result<DeveloperTokenClaims, VerifyError> {
        let now = self.inner.config.clock.now();
        {
            let pair = self.inner.tokens.load();
            for cached in [&pair.current, &pair.previous].into_iter().flatten() {
                if bool::from(cached.as_str().as_bytes().ct_eq(token.as_bytes())) {
                    return if now < cached.expires_at() {
                        Ok(cached.0.claims.clone())
                    } else {
                        Err(VerifyError::Expired {
                            expired_at: cached.expires_at(),
                        })
                    };
                }
            }
        }
        self.verify_slow(token, now)
    }

    fn verify_slow(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<DeveloperTokenClaims, VerifyError> {
        let unverified = UnverifiedToken::parse(token)?;
        unverified.require_es256()?;
        if unverified.key_id() != Some(self.inner.config.key_id.as_str()) {
            return Err(VerifyError::KeyIdMismatch);
        }
        let claims: Claims = decode_es256(token.trim(), &self.inner.key)?;
        if claims.iss != self.inner.config.issuer {
            return Err(VerifyError::IssuerMismatch);
        }
        let issued_at = from_unix(claims.iat);
        let expires_at = from_unix(claims.exp);
        if now >= expires_at {
            return Err(VerifyError::Expired {
                expired_at: expires_at,
            });
        }
        if issued_at > now + IAT_LEEWAY {
            return Err(VerifyError::IssuedInFuture { issued_at });
        }
        Ok(self.inner.claims_from(claims))
    }

    /// The lifetime of the tokens this signer issues.
    pub fn lifetime(&self) -> Duration {
        self.inner.config.lifetime
    }

    /// The key ID (`kid`) this signer puts in its headers.
    pub fn key_id(&self) -> &str {
        &self.inner.config.key_id
    }

    /// The issuer (`iss`): the Team ID, or the MusicAPI client ID.
    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.inner.key
    }
}
