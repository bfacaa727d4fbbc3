//! The identity a successful Apple Music sign-in yields.

use std::fmt;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::api::{AppleCheck, Storefront};
use crate::secret::MusicUserToken;

/// A signed-in Apple Music user, as kept in the session.
///
/// There is no refresh token: when the music user token ends (about 180 days after sign-in,
/// or earlier if revoked) the user signs in again. `Debug` redacts the token. The developer
/// token the sign-in ran with is not kept (it is public, and the signer has the current one).
#[derive(Clone, Serialize, Deserialize)]
pub struct AppleMusicIdentity {
    #[serde(rename = "mut")]
    music_user_token: MusicUserToken,
    #[serde(rename = "at", with = "time::serde::timestamp")]
    authenticated_at: OffsetDateTime,
    #[serde(rename = "exp", with = "time::serde::timestamp")]
    expires_at: OffsetDateTime,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    restricted: Option<bool>,
    #[serde(rename = "sf", default, skip_serializing_if = "Option::is_none")]
    storefront: Option<Storefront>,
    #[serde(rename = "v", default)]
    verification: AppleCheck,
}

impl AppleMusicIdentity {
    /// An identity signed in at `authenticated_at` whose token is due to end after
    /// `lifetime`. The callback builds these; tests and manual sign-ins may too.
    pub fn new(
        music_user_token: MusicUserToken,
        authenticated_at: OffsetDateTime,
        lifetime: Duration,
        restricted: Option<bool>,
    ) -> Self {
        Self {
            music_user_token,
            authenticated_at,
            expires_at: authenticated_at + lifetime,
            restricted,
            storefront: None,
            verification: AppleCheck::Off,
        }
    }

    /// This identity as proven by Apple, with the user's storefront. Only the crate's own
    /// check with Apple makes one.
    pub(crate) fn verified(mut self, storefront: Storefront) -> Self {
        self.storefront = Some(storefront);
        self.verification = AppleCheck::Passed;
        self
    }

    /// This identity marked as not proven: Apple could not be asked and the app accepts that.
    pub(crate) fn unverified(mut self) -> Self {
        self.storefront = None;
        self.verification = AppleCheck::Unreachable;
        self
    }

    /// The user's storefront, when the sign-in was verified with Apple.
    pub fn storefront(&self) -> Option<&Storefront> {
        self.storefront.as_ref()
    }

    /// What Apple's check of the music user token found at sign-in.
    pub fn apple_check(&self) -> AppleCheck {
        self.verification
    }

    /// The music user token (a secret: send it only to Apple).
    pub fn music_user_token(&self) -> &MusicUserToken {
        &self.music_user_token
    }

    /// When the user signed in.
    pub fn authenticated_at(&self) -> OffsetDateTime {
        self.authenticated_at
    }

    /// When the music user token is due to end (sign-in time plus the configured lifetime).
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// Whether the account is content-restricted (e.g. a child's); `None` when the page did
    /// not learn it.
    pub fn restricted(&self) -> Option<bool> {
        self.restricted
    }

    /// Whether the music user token has reached its end at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }

    /// The two Apple Music API headers of a personalised request, with `developer_token`
    /// (usually the signer's current one) as the bearer.
    pub fn api_headers(
        &self,
        developer_token: &crate::developer_token::DeveloperToken,
    ) -> [(HeaderName, HeaderValue); 2] {
        crate::headers::apple_music_user_headers(developer_token, &self.music_user_token)
    }
}

impl fmt::Debug for AppleMusicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppleMusicIdentity")
            .field("music_user_token", &self.music_user_token)
            .field("authenticated_at", &self.authenticated_at)
            .field("expires_at", &self.expires_at)
            .field("restricted", &self.restricted)
            .field("storefront", &self.storefront)
            .field("apple_check", &self.verification)
            .finish()
    }
}
