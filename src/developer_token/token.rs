//! [`DeveloperToken`] and its checked [`DeveloperTokenClaims`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

/// The checked claims of a developer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperTokenClaims {
    pub(super) key_id: String,
    pub(super) issuer: String,
    pub(super) subject: Option<String>,
    pub(super) origins: Vec<String>,
    pub(super) issued_at: OffsetDateTime,
    pub(super) expires_at: OffsetDateTime,
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

pub(super) struct TokenData {
    pub(super) jwt: Box<str>,
    pub(super) claims: DeveloperTokenClaims,
    pub(super) refresh_at: OffsetDateTime,
}

impl TokenData {
    /// Whether the cache may hand this token out at `now`: before its refresh time, and not
    /// issued after `now` (beyond the skew leeway) — a clock moved back, as when an
    /// authenticator hands its own clock to the strategy, gets a token of its own time.
    pub(super) fn serves_at(&self, now: OffsetDateTime) -> bool {
        now < self.refresh_at && self.claims.issued_at <= now + super::config::IAT_LEEWAY
    }
}

/// A signed developer token. Cloning it clones an `Arc`.
///
/// Developer tokens are handed to browsers, but they let anyone call Apple Music API in the
/// app's name until they expire, so `Debug` shows only the times, never the token.
#[derive(Clone)]
pub struct DeveloperToken(pub(super) Arc<TokenData>);

impl DeveloperToken {
    pub(super) fn new(jwt: String, claims: DeveloperTokenClaims, margin: Duration) -> Self {
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
