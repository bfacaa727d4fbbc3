//! The identity a Sign in with Apple sign-in yields.

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::secret::RefreshToken;

/// A user signed in with their Apple ID, as kept in the session.
///
/// `sub` is stable for the app's team, across devices and re-logins: the account key. The
/// email may be a private relay address; the name arrives only with the user's first
/// authorization of the app (Apple sends it once). The refresh token is not kept in the
/// session: only the sign-in hook sees it ([`refresh_token`](Self::refresh_token)).
#[derive(Clone, Serialize, Deserialize)]
pub struct AppleIdIdentity {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_private_email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    real_user_status: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<PersonName>,
    #[serde(with = "time::serde::timestamp")]
    authenticated_at: OffsetDateTime,
    #[serde(skip)]
    refresh_token: Option<RefreshToken>,
}

impl std::fmt::Debug for AppleIdIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleIdIdentity")
            .field("sub", &self.sub)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("is_private_email", &self.is_private_email)
            .field("real_user_status", &self.real_user_status)
            .field("name", &self.name)
            .field("authenticated_at", &self.authenticated_at)
            .field("refresh_token", &self.refresh_token)
            .finish()
    }
}

/// The user's name, from the first sign-in's `user` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PersonName {
    /// Given name.
    #[serde(rename = "firstName", default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    /// Family name.
    #[serde(rename = "lastName", default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

/// The claims of a checked `id_token` the identity is made of.
#[derive(Deserialize)]
pub(crate) struct IdTokenClaims {
    pub(crate) sub: String,
    #[serde(default)]
    pub(crate) nonce: Option<String>,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default, deserialize_with = "bool_or_string")]
    pub(crate) email_verified: Option<bool>,
    #[serde(default, deserialize_with = "bool_or_string")]
    pub(crate) is_private_email: Option<bool>,
    #[serde(default)]
    pub(crate) real_user_status: Option<u8>,
    #[serde(default)]
    pub(crate) iat: Option<i64>,
}

/// Apple sends booleans as `true` or as the string `"true"`.
pub(crate) fn bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        Some(Either::Bool(b)) => Some(b),
        Some(Either::Text(t)) => match t.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        None => None,
    })
}

/// The `user` field of the first sign-in: `{"name": {"firstName", "lastName"}, "email"}`.
#[derive(Deserialize)]
struct FirstSignIn {
    #[serde(default)]
    name: Option<PersonName>,
}

impl AppleIdIdentity {
    pub(crate) fn from_claims(
        claims: IdTokenClaims,
        user: Option<&str>,
        refresh_token: Option<RefreshToken>,
        now: OffsetDateTime,
    ) -> Self {
        let name = user
            .and_then(|u| serde_json::from_str::<FirstSignIn>(u).ok())
            .and_then(|u| u.name)
            .map(|n| PersonName {
                first: n.first.map(|s| s.chars().take(100).collect()),
                last: n.last.map(|s| s.chars().take(100).collect()),
            });
        Self {
            sub: claims.sub,
            email: claims.email,
            email_verified: claims.email_verified,
            is_private_email: claims.is_private_email,
            real_user_status: claims.real_user_status,
            name,
            // Whole seconds, as the session keeps it: the hook and later requests see the same.
            authenticated_at: now.replace_nanosecond(0).unwrap_or(now),
            refresh_token,
        }
    }

    /// An identity of the Apple ID `sub`, signed in at `authenticated_at` (kept to the whole
    /// second), with nothing else known: for tests (with
    /// `test_util::sign_in`, feature `test-util`) and trusted back doors. Add what the test
    /// needs with the `with_*` methods.
    ///
    /// ```
    /// use actix_apple_music::AppleIdIdentity;
    /// let identity = AppleIdIdentity::new("001234.abcdef", time::OffsetDateTime::now_utc())
    ///     .with_email("x@privaterelay.appleid.com", true);
    /// assert_eq!(identity.email(), Some("x@privaterelay.appleid.com"));
    /// ```
    pub fn new(sub: impl Into<String>, authenticated_at: OffsetDateTime) -> Self {
        Self {
            sub: sub.into(),
            email: None,
            email_verified: None,
            is_private_email: None,
            real_user_status: None,
            name: None,
            authenticated_at: authenticated_at
                .replace_nanosecond(0)
                .unwrap_or(authenticated_at),
            refresh_token: None,
        }
    }

    /// With a verified email, private relay or not.
    pub fn with_email(mut self, email: impl Into<String>, is_private: bool) -> Self {
        self.email = Some(email.into());
        self.email_verified = Some(true);
        self.is_private_email = Some(is_private);
        self
    }

    /// With a name, as Apple sends it at the first authorization.
    pub fn with_name(mut self, first: impl Into<String>, last: impl Into<String>) -> Self {
        self.name = Some(PersonName {
            first: Some(first.into()),
            last: Some(last.into()),
        });
        self
    }

    /// With a refresh token (as the sign-in hook sees it; never kept in the session).
    pub fn with_refresh_token(mut self, token: RefreshToken) -> Self {
        self.refresh_token = Some(token);
        self
    }

    /// The stable user id (`sub`), the same for every app of the team.
    pub fn sub(&self) -> &str {
        &self.sub
    }
    /// The email, when the user shared it (may be a private relay address).
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    /// Whether Apple verified the email.
    pub fn email_verified(&self) -> Option<bool> {
        self.email_verified
    }
    /// Whether the email is a private relay address.
    pub fn is_private_email(&self) -> Option<bool> {
        self.is_private_email
    }
    /// Apple's estimate that this is a real person: `0` unsupported, `1` unknown, `2` likely
    /// real.
    pub fn real_user_status(&self) -> Option<u8> {
        self.real_user_status
    }
    /// The name, when Apple sent it (the user's first authorization of the app only).
    pub fn name(&self) -> Option<&PersonName> {
        self.name.as_ref()
    }
    /// When the user signed in.
    pub fn authenticated_at(&self) -> OffsetDateTime {
        self.authenticated_at
    }
    /// The refresh token of this sign-in, in the sign-in hook only (it is not kept in the
    /// session): store it if the app checks the authorization later.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
}
