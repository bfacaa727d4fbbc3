//! The identity a successful Apple Music sign-in yields.

use std::fmt;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::apple_music_api::{AppleCheck, Storefront};
use crate::secret::MusicUserToken;

/// A signed-in Apple Music user, as kept in the session.
///
/// There is no refresh token: when the music user token ends (about 180 days after sign-in,
/// or earlier if revoked) the user signs in again. `Debug` redacts the token. The developer
/// token the sign-in ran with is not kept (it is public, and the signer has the current one).
///
/// It is stored compactly (it may live in a cookie): a versioned array
/// `[1, token, signed-in, ends, restricted (0 unknown, 1 no, 2 yes), check (0 off, 1 passed,
/// 2 unreachable), storefront id, name, language]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "Stored", try_from = "Stored")]
pub struct AppleMusicIdentity {
    music_user_token: MusicUserToken,
    authenticated_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    restricted: Option<bool>,
    storefront: Option<Storefront>,
    apple_check: AppleCheck,
}

/// The stored form of an identity (version 1): `[1, token, at, exp, restricted, check,
/// storefront id, name, language]`.
#[derive(Serialize, Deserialize)]
struct Stored(
    u8,
    MusicUserToken,
    i64,
    i64,
    u8,
    u8,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl From<AppleMusicIdentity> for Stored {
    fn from(identity: AppleMusicIdentity) -> Self {
        let check = match identity.apple_check {
            AppleCheck::Off => 0,
            AppleCheck::Passed => 1,
            AppleCheck::Unreachable => 2,
        };
        let restricted = match identity.restricted {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        };
        let (id, name, language) = match identity.storefront {
            Some(sf) => (Some(sf.id), Some(sf.name), sf.default_language_tag),
            None => (None, None, None),
        };
        Stored(
            1,
            identity.music_user_token,
            identity.authenticated_at.unix_timestamp(),
            identity.expires_at.unix_timestamp(),
            restricted,
            check,
            id,
            name,
            language,
        )
    }
}

impl TryFrom<Stored> for AppleMusicIdentity {
    type Error = String;

    fn try_from(stored: Stored) -> Result<Self, String> {
        let Stored(version, token, at, exp, restricted, check, id, name, language) = stored;
        if version != 1 {
            return Err(format!("identity version {version} is unknown"));
        }
        let time = |secs: i64| {
            OffsetDateTime::from_unix_timestamp(secs).map_err(|_| "a time out of range".to_owned())
        };
        let apple_check = match check {
            0 => AppleCheck::Off,
            1 => AppleCheck::Passed,
            2 => AppleCheck::Unreachable,
            _ => return Err("an unknown check outcome".into()),
        };
        let restricted = match restricted {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return Err("an unknown restriction".into()),
        };
        let storefront = match (id, name) {
            (Some(id), Some(name)) => Some(Storefront {
                id,
                name,
                default_language_tag: language,
            }),
            _ => None,
        };
        Ok(Self {
            music_user_token: token,
            authenticated_at: time(at)?,
            expires_at: time(exp)?,
            restricted,
            storefront,
            apple_check,
        })
    }
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
            apple_check: AppleCheck::Off,
        }
    }

    /// This identity as proven by Apple, with the user's storefront. Only the crate's own
    /// check with Apple makes one.
    pub(crate) fn verified(mut self, storefront: Storefront) -> Self {
        self.storefront = Some(storefront);
        self.apple_check = AppleCheck::Passed;
        self
    }

    /// This identity marked as not proven: Apple could not be asked and the app accepts that.
    pub(crate) fn unverified(mut self) -> Self {
        self.storefront = None;
        self.apple_check = AppleCheck::Unreachable;
        self
    }

    /// The user's storefront, when the sign-in was verified with Apple.
    pub fn storefront(&self) -> Option<&Storefront> {
        self.storefront.as_ref()
    }

    /// What Apple's check of the music user token found at sign-in.
    pub fn apple_check(&self) -> AppleCheck {
        self.apple_check
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
            .field("apple_check", &self.apple_check)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> AppleMusicIdentity {
        AppleMusicIdentity::new(
            MusicUserToken::new("tok"),
            OffsetDateTime::from_unix_timestamp(1_000).unwrap(),
            Duration::from_secs(60),
            Some(true),
        )
        .verified(Storefront::new("us", "United States"))
    }

    #[test]
    fn the_stored_form_is_a_compact_versioned_array_that_reads_back() {
        let json = serde_json::to_string(&identity()).unwrap();
        assert_eq!(json, r#"[1,"tok",1000,1060,2,1,"us","United States",null]"#);
        let back: AppleMusicIdentity = serde_json::from_str(&json).unwrap();
        assert_eq!(back.music_user_token().secret(), "tok");
        assert_eq!(back.expires_at().unix_timestamp(), 1060);
        assert_eq!(back.restricted(), Some(true));
        assert_eq!(back.apple_check(), AppleCheck::Passed);
        assert_eq!(back.storefront().unwrap().id, "us");
    }

    #[test]
    fn unknown_versions_and_codes_do_not_read() {
        assert!(
            serde_json::from_str::<AppleMusicIdentity>(r#"[2,"t",1,2,0,0,null,null,null]"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<AppleMusicIdentity>(r#"[1,"t",1,2,0,9,null,null,null]"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<AppleMusicIdentity>(r#"[1,"t",1,2,7,0,null,null,null]"#)
                .is_err()
        );
    }
}
