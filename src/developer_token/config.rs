//! [`DeveloperTokenConfig`]: what a signer puts into its tokens, checked before the first one
//! is signed.

use std::fmt;
use std::time::Duration;

use crate::clock::{system_clock, Clock, SharedClock};
use crate::error::ConfigError;

/// The longest lifetime Apple accepts for a developer token: 15 777 000 s (about 182.6 days).
pub const MAX_LIFETIME: Duration = Duration::from_secs(15_777_000);
/// Default lifetime of Apple Music developer tokens: 180 days, as passport-apple-music.
pub const DEFAULT_APPLE_MUSIC_LIFETIME: Duration = Duration::from_secs(180 * 86_400);
/// Default lifetime of MusicAPI dev tokens: 14 days, as MusicAPI's guide.
pub const DEFAULT_MUSICAPI_LIFETIME: Duration = Duration::from_secs(14 * 86_400);

/// How far in the future a token's `iat` may lie (clock skew between instances).
pub(super) const IAT_LEEWAY: Duration = Duration::from_secs(60);
/// Whose tokens a signer makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Service {
    AppleMusic,
    MusicApi,
    SignInWithApple,
}

/// Default lifetime of a Sign in with Apple client secret: 30 days (Apple allows 6 months).
pub const DEFAULT_CLIENT_SECRET_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

/// Sign in with Apple's issuer, the `aud` of its client secrets.
pub const APPLE_ID_ISSUER: &str = "https://appleid.apple.com";

/// What a signer puts into its tokens, and how long they live. Built into a
/// [`DeveloperTokenSigner`](super::DeveloperTokenSigner) by [`build`](Self::build), which checks every value.
///
/// Defaults: lifetime 180 days (Apple Music) or 14 days (MusicAPI); no `origin` claim; a new
/// token is signed once the current one has less than a tenth of its lifetime left; the
/// system clock.
#[derive(Clone)]
pub struct DeveloperTokenConfig {
    pub(super) service: Service,
    pub(super) issuer: String,
    pub(super) key_id: String,
    pub(super) subject: Option<String>,
    pub(super) audience: Option<String>,
    pub(super) origins: Vec<String>,
    pub(super) lifetime: Duration,
    pub(super) refresh_margin: Option<Duration>,
    pub(super) clock: SharedClock,
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
        self.clock = SharedClock::new(clock);
        self
    }

    /// Shares a clock with the rest of the crate (the strategy's config).
    pub(crate) fn shared_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

impl DeveloperTokenConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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

pub(super) fn check_uuid(what: &'static str, value: &str) -> Result<(), ConfigError> {
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
