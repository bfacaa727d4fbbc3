//! Signing, caching, rotating and verifying developer tokens.

use std::fmt;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::error::VerifyError;
use super::inspect::{decode_es256, UnverifiedToken};
use super::key::SigningKey;
use crate::clock::{system_clock, Clock, SharedClock};
use crate::error::ConfigError;

/// The longest lifetime Apple accepts for a developer token: 15 777 000 s (about 182.6 days).
pub const MAX_LIFETIME: Duration = Duration::from_secs(15_777_000);
/// Default lifetime of Apple Music developer tokens: 180 days, as passport-apple-music.
pub const DEFAULT_APPLE_MUSIC_LIFETIME: Duration = Duration::from_secs(180 * 86_400);
/// Default lifetime of MusicAPI dev tokens: 14 days, as MusicAPI's guide.
pub const DEFAULT_MUSICAPI_LIFETIME: Duration = Duration::from_secs(14 * 86_400);

/// How far in the future a token's `iat` may lie (clock skew between instances).
const IAT_LEEWAY: Duration = Duration::from_secs(60);
/// Longest token string the verifier looks at; real ones are 300–600 bytes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    AppleMusic,
    MusicApi,
    SignInWithApple,
}

/// Default lifetime of a Sign in with Apple client secret: 30 days (Apple allows 6 months).
pub const DEFAULT_CLIENT_SECRET_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

/// Sign in with Apple's issuer, the `aud` of its client secrets.
pub const APPLE_ID_ISSUER: &str = "https://appleid.apple.com";

/// What a signer puts into its tokens, and how long they live. Built into a
/// [`DeveloperTokenSigner`] by [`build`](Self::build), which checks every value.
///
/// Defaults: lifetime 180 days (Apple Music) or 14 days (MusicAPI); no `origin` claim; a new
/// token is signed once the current one has less than a tenth of its lifetime left; the
/// system clock.
#[derive(Clone)]
pub struct DeveloperTokenConfig {
    service: Service,
    issuer: String,
    key_id: String,
    subject: Option<String>,
    audience: Option<String>,
    origins: Vec<String>,
    lifetime: Duration,
    refresh_margin: Option<Duration>,
    clock: SharedClock,
}

impl fmt::Debug for DeveloperTokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeveloperTokenConfig")
            .field("service", &self.service)
            .field("issuer", &self.issuer)
            .field("key_id", &self.key_id)
            .field("subject", &self.subject)
            .field("origins", &self.origins)
            .field("lifetime", &self.lifetime)
            .field("refresh_margin", &self.refresh_margin)
            .finish_non_exhaustive()
    }
}

impl DeveloperTokenConfig {
    /// Apple Music developer tokens: `iss` is your 10-character Team ID, `kid` the
    /// 10-character ID of your MusicKit key.
    pub fn apple_music(team_id: impl Into<String>, key_id: impl Into<String>) -> Self {
        Self::new(
            Service::AppleMusic,
            team_id.into(),
            key_id.into(),
            DEFAULT_APPLE_MUSIC_LIFETIME,
        )
    }

    /// MusicAPI dev tokens (sent as `Authorization: DevToken …`): `iss` is your client ID (a
    /// UUID), `kid` the key ID MusicAPI's dashboard gave for your public key.
    pub fn musicapi(client_id: impl Into<String>, key_id: impl Into<String>) -> Self {
        Self::new(
            Service::MusicApi,
            client_id.into(),
            key_id.into(),
            DEFAULT_MUSICAPI_LIFETIME,
        )
    }

    /// Sign in with Apple client secrets (the `client_secret` of the token endpoint): `iss` is
    /// your Team ID, `kid` the ID of a key with Sign in with Apple enabled (it may be the
    /// MusicKit key), `sub` your Services ID (the client ID), `aud` Apple's issuer
    /// ([`APPLE_ID_ISSUER`]; see [`audience`](Self::audience)). Default lifetime 30 days.
    pub fn sign_in_with_apple(
        team_id: impl Into<String>,
        key_id: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        let mut config = Self::new(
            Service::SignInWithApple,
            team_id.into(),
            key_id.into(),
            DEFAULT_CLIENT_SECRET_LIFETIME,
        );
        config.subject = Some(client_id.into());
        config.audience = Some(APPLE_ID_ISSUER.into());
        config
    }

    /// Sign in with Apple only: the `aud` claim, the issuer the secret is for (default
    /// [`APPLE_ID_ISSUER`]; a stand-in's issuer in tests).
    pub fn audience(mut self, issuer: impl Into<String>) -> Self {
        self.audience = Some(issuer.into());
        self
    }

    fn new(service: Service, issuer: String, key_id: String, lifetime: Duration) -> Self {
        Self {
            service,
            issuer,
            key_id,
            subject: None,
            audience: None,
            origins: Vec::new(),
            lifetime,
            refresh_margin: None,
            clock: system_clock(),
        }
    }

    /// How long each token is valid; at most [`MAX_LIFETIME`].
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The `origin` claim: the web origins (`https://host[:port]`) allowed to use the token.
    /// Apple checks a request's `Origin` header against it. Empty (the default) leaves the
    /// claim out.
    pub fn origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// MusicAPI only: the `sub` claim, one user's UUID, limiting the token to that user.
    pub fn subject(mut self, user_uuid: impl Into<String>) -> Self {
        self.subject = Some(user_uuid.into());
        self
    }

    /// Sign the next token once the current one has less than this left. Default: a tenth
    /// of the lifetime (18 days for 180-day tokens). Clamped to half the lifetime.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = Some(margin);
        self
    }

    /// Where the signer reads the time. Tests pass a [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Shares a clock with the rest of the crate (the strategy's config).
    pub(crate) fn shared_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

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

    fn validate(&self) -> Result<(), ConfigError> {
        match self.service {
            Service::AppleMusic => {
                check_apple_id("team ID", &self.issuer)?;
                check_apple_id("key ID", &self.key_id)?;
                if self.subject.is_some() {
                    return Err(ConfigError::invalid(
                        "subject",
                        self.subject.as_deref().unwrap_or_default(),
                        "no `sub` claim: Apple Music developer tokens do not take one",
                    ));
                }
            }
            Service::SignInWithApple => {
                check_apple_id("team ID", &self.issuer)?;
                check_apple_id("key ID", &self.key_id)?;
                let client = self.subject.as_deref().unwrap_or_default();
                if client.is_empty()
                    || client.len() > 255
                    || !client.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(ConfigError::invalid(
                        "client ID",
                        client,
                        "your Services ID, such as com.example.web (visible ASCII)",
                    ));
                }
                let aud = self.audience.as_deref().unwrap_or_default();
                if url::Url::parse(aud).is_err() {
                    return Err(ConfigError::invalid(
                        "client secret audience",
                        aud,
                        "the issuer URL, such as https://appleid.apple.com",
                    ));
                }
            }
            Service::MusicApi => {
                check_uuid("client ID", &self.issuer)?;
                let ok = !self.key_id.is_empty()
                    && self.key_id.len() <= 128
                    && self.key_id.bytes().all(|b| b.is_ascii_graphic());
                if !ok {
                    return Err(ConfigError::invalid(
                        "key ID",
                        &self.key_id,
                        "the key ID from MusicAPI's account settings (1–128 visible ASCII characters)",
                    ));
                }
                if let Some(sub) = &self.subject {
                    check_uuid("subject (user UUID)", sub)?;
                }
            }
        }
        if self.lifetime > MAX_LIFETIME {
            return Err(ConfigError::LifetimeTooLong {
                requested_secs: self.lifetime.as_secs(),
                max_secs: MAX_LIFETIME.as_secs(),
            });
        }
        if self.lifetime < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "developer token lifetime",
                &format!("{:?}", self.lifetime),
                "at least 1 second",
            ));
        }
        for origin in &self.origins {
            check_origin(origin)?;
        }
        Ok(())
    }
}

fn check_apple_id(what: &'static str, value: &str) -> Result<(), ConfigError> {
    let ok = value.len() == 10
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            what,
            value,
            "10 upper-case letters or digits, as shown in Apple's developer account",
        ))
    }
}

fn check_uuid(what: &'static str, value: &str) -> Result<(), ConfigError> {
    uuid::Uuid::try_parse(value).map(|_| ()).map_err(|_| {
        ConfigError::invalid(
            what,
            value,
            "a UUID such as 2cf82db3-4064-4235-8253-16994eb51773",
        )
    })
}

pub(crate) fn check_origin(origin: &str) -> Result<(), ConfigError> {
    let expected = "a web origin such as https://app.example or http://localhost:8080 (scheme, host and optional port; no path)";
    let url =
        url::Url::parse(origin).map_err(|_| ConfigError::invalid("origin", origin, expected))?;
    let is_origin = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.origin().ascii_serialization() == origin.trim_end_matches('/');
    if is_origin {
        Ok(())
    } else {
        Err(ConfigError::invalid("origin", origin, expected))
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
                if now < current.0.refresh_at {
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
        if let Some(current) = pair.current.as_ref().filter(|t| now < t.0.refresh_at) {
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

    /// Signs a new token outside the cache (the cache keeps its own). For tools and tests;
    /// apps want [`token`](Self::token).
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

/// The checked claims of a developer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperTokenClaims {
    key_id: String,
    issuer: String,
    subject: Option<String>,
    origins: Vec<String>,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl DeveloperTokenClaims {
    /// The header's `kid`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    /// `iss`: Team ID or MusicAPI client ID.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// `sub` (MusicAPI user UUID), if any.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    /// `origin`, empty when absent.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }
    /// `iat`.
    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }
    /// `exp`.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
}

struct TokenData {
    jwt: Box<str>,
    claims: DeveloperTokenClaims,
    refresh_at: OffsetDateTime,
}

/// A signed developer token. Cloning it clones an `Arc`.
///
/// Developer tokens are handed to browsers, but they let anyone call Apple Music API in the
/// app's name until they expire, so `Debug` shows only the times, never the token.
#[derive(Clone)]
pub struct DeveloperToken(Arc<TokenData>);

impl DeveloperToken {
    fn new(jwt: String, claims: DeveloperTokenClaims, margin: Duration) -> Self {
        let refresh_at = claims.expires_at - margin;
        Self(Arc::new(TokenData {
            jwt: jwt.into_boxed_str(),
            claims,
            refresh_at,
        }))
    }

    /// The compact JWT.
    pub fn as_str(&self) -> &str {
        &self.0.jwt
    }
    /// When it was issued (`iat`).
    pub fn issued_at(&self) -> OffsetDateTime {
        self.0.claims.issued_at
    }
    /// When it expires (`exp`).
    pub fn expires_at(&self) -> OffsetDateTime {
        self.0.claims.expires_at
    }
    /// Its claims.
    pub fn claims(&self) -> &DeveloperTokenClaims {
        &self.0.claims
    }
}

impl fmt::Debug for DeveloperToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeveloperToken")
            .field("issued_at", &self.issued_at())
            .field("expires_at", &self.expires_at())
            .field("jwt", &"[redacted]")
            .finish()
    }
}
