//! What Apple's answers mean: the policy when Apple is away, the check's outcome, the
//! storefront, the developer-token self-check.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Apple Music API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.music.apple.com";
/// Default timeout of one request, body included: 10 seconds.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest response body read: 4 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// What a sign-in does when Apple cannot be asked (timeout, connection failure, `5xx`, a
/// body that is not the expected JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnavailablePolicy {
    /// Refuse the sign-in with `503` (`upstream_error`, `apple_unavailable`). The default.
    #[default]
    FailClosed,
    /// Sign the user in, with the identity marked [`AppleCheck::Unreachable`] and no
    /// storefront. Rate limiting (`429`) and a refused developer token still fail.
    AcceptUnverified,
}

/// What Apple's check of a music user token at sign-in found (the identity keeps it). Stored
/// and shown as `"verified"`, `"unverified"` or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AppleCheck {
    /// `GET /v1/me/storefront` succeeded (`verified`).
    #[serde(rename = "verified")]
    Passed,
    /// Apple could not be asked and the app accepts that
    /// ([`UnavailablePolicy::AcceptUnverified`]; `unverified`).
    #[serde(rename = "unverified")]
    Unreachable,
    /// Checking with Apple is switched off (`off`).
    #[default]
    #[serde(rename = "off")]
    Off,
}

/// The user's Apple Music storefront (country), as `GET /v1/me/storefront` answers it: the
/// crate's counterpart of passport's `userProfile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Storefront {
    /// Apple's storefront ID, e.g. `"us"`.
    pub id: String,
    /// Its name, e.g. `"United States"`.
    pub name: String,
    /// Its default language tag, e.g. `"en-US"`, when Apple sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_language_tag: Option<String>,
}

impl Storefront {
    /// A storefront (for tests and stand-ins).
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            default_language_tag: None,
        }
    }
}

/// The answer of [`AppleMusicApi::check_developer_token`](super::AppleMusicApi::check_developer_token).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeveloperTokenCheck {
    /// Apple accepted the developer token (`GET /v1/test` answered `200`).
    Accepted,
    /// Apple refused it (`401` or `403`).
    Rejected {
        /// The status Apple answered.
        status: u16,
    },
    /// Apple could not be asked, or answered something else.
    Inconclusive {
        /// What happened (never a token).
        cause: String,
    },
}

impl fmt::Display for DeveloperTokenCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeveloperTokenCheck::Accepted => {
                f.write_str("Apple Music accepted the developer token")
            }
            DeveloperTokenCheck::Rejected { status } => write!(
                f,
                "Apple Music refused the developer token (HTTP {status}): check the team ID, \
                 the key ID, the .p8 key and that the key has MusicKit enabled"
            ),
            DeveloperTokenCheck::Inconclusive { cause } => {
                write!(
                    f,
                    "could not check the developer token with Apple Music: {cause}"
                )
            }
        }
    }
}
