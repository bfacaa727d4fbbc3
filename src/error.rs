//! Configuration errors, shared by every builder of the crate.

use crate::developer_token::KeyError;

/// A setting was missing or wrong. Raised at start-up (by `build`, `from_env`), never per
/// request. Messages quote the offending value (settings are not secrets; keys are never
/// quoted) and say what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting (often an environment variable) is not set.
    #[error("{name} is not set: {expected}")]
    Missing {
        /// The setting or environment variable.
        name: String,
        /// What it should hold.
        expected: String,
    },
    /// A setting has a value of the wrong form.
    #[error("{name} is invalid (got {value:?}): expected {expected}")]
    Invalid {
        /// The setting or environment variable.
        name: String,
        /// The value given.
        value: String,
        /// What it should look like.
        expected: String,
    },
    /// A developer token lifetime above Apple's limit.
    #[error("developer token lifetime of {requested_secs} s is too long: Apple accepts at most {max_secs} s (about 182 days)")]
    LifetimeTooLong {
        /// The lifetime asked for, in seconds.
        requested_secs: u64,
        /// The limit, 15 777 000 s.
        max_secs: u64,
    },
    /// The signing key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The first token could not be signed (a key the crypto backend refuses).
    #[error("could not sign a developer token: {0}")]
    Signing(String),
}

impl ConfigError {
    pub(crate) fn invalid(
        name: impl Into<String>,
        value: &str,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            name: name.into(),
            value: value.chars().take(200).collect(),
            expected: expected.into(),
        }
    }
}

/// Why a sign-in failed: the two families passport-apple-music has, with typed reasons.
///
/// An [`AuthorizationError`] means the user (or the app's verify hook) said no, or the
/// authorization could not run; a [`TokenError`] means the callback request itself was
/// wrong: missing or forged state, a bad `id_token_hint`, a malformed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The user or the app refused, or the authorization could not run. Answered `401`.
    #[error(transparent)]
    Authorization(#[from] AuthorizationError),
    /// The callback request is wrong or forged. Answered `400`.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Apple could not vouch for the token, through no fault of the user's or the token's.
    /// Answered `500` or `503`.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl AuthError {
    /// The family's JSON name: `authorization_error` or `token_error`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::Authorization(_) => "authorization_error",
            AuthError::Token(_) => "token_error",
            AuthError::Upstream(_) => "upstream_error",
        }
    }

    /// The snake_case reason, e.g. `declined` or `state_mismatch`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Authorization(e) => e.reason(),
            AuthError::Token(e) => e.reason(),
            AuthError::Upstream(e) => e.reason(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> actix_web::http::StatusCode {
        match self {
            AuthError::Authorization(_) => actix_web::http::StatusCode::UNAUTHORIZED,
            AuthError::Token(e) => e.status(),
            AuthError::Upstream(e) => e.status(),
        }
    }

    /// How long the client should wait before trying again (the `Retry-After` answered),
    /// for the failures where waiting helps.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            AuthError::Upstream(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// The user or the app refused, or MusicKit could not authorize.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationError {
    /// The user chose not to allow access (`declined`).
    #[error("you chose not to connect your Apple Music account")]
    Declined,
    /// Apple said authorization is unavailable, e.g. no subscription in this region
    /// (`unavailable`).
    #[error("Apple Music authorization is not available for this account or region")]
    Unavailable,
    /// The authorization window was closed before an answer (`popup_closed`).
    #[error("the Apple Music window was closed before you allowed access")]
    PopupClosed,
    /// The browser blocked the authorization window (`popup_blocked`).
    #[error(
        "the browser blocked the Apple Music window; allow pop-ups for this site and try again"
    )]
    PopupBlocked,
    /// No answer came in time (`timed_out`).
    #[error("Apple Music did not answer in time")]
    TimedOut,
    /// MusicKit reported another error (`musickit_error`). The message is the page's, cut to
    /// 200 characters; it came from the browser, so treat it as untrusted text.
    #[error("MusicKit reported an error: {message}")]
    MusicKit {
        /// What the page reported.
        message: String,
    },
    /// Apple Music answered that the account has no Apple Music subscription (`400` with
    /// error code `40015` on `/v1/me/storefront`; `no_subscription`).
    #[error("this Apple ID has no Apple Music subscription")]
    NoSubscription,
    /// The app's verify hook refused the sign-in (`rejected_by_app`).
    #[error("sign-in refused: {reason}")]
    RejectedByApp {
        /// The app's reason, shown to the user.
        reason: String,
    },
}

impl AuthorizationError {
    /// The snake_case reason.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthorizationError::Declined => "declined",
            AuthorizationError::Unavailable => "unavailable",
            AuthorizationError::PopupClosed => "popup_closed",
            AuthorizationError::PopupBlocked => "popup_blocked",
            AuthorizationError::TimedOut => "timed_out",
            AuthorizationError::MusicKit { .. } => "musickit_error",
            AuthorizationError::NoSubscription => "no_subscription",
            AuthorizationError::RejectedByApp { .. } => "rejected_by_app",
        }
    }

    /// Maps a callback's `error=` value: a reason name yields that reason, `access_denied`
    /// yields [`Declined`](Self::Declined), anything else [`MusicKit`](Self::MusicKit).
    pub fn from_callback_error(value: &str) -> Self {
        match value {
            "declined" | "access_denied" => AuthorizationError::Declined,
            "unavailable" => AuthorizationError::Unavailable,
            "popup_closed" => AuthorizationError::PopupClosed,
            "popup_blocked" => AuthorizationError::PopupBlocked,
            "timed_out" => AuthorizationError::TimedOut,
            other => AuthorizationError::MusicKit {
                message: other.chars().take(200).collect(),
            },
        }
    }
}

/// The callback request is missing something, or carries something forged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No `code`, or an empty one (`missing_code`).
    #[error("the sign-in answer carried no music user token")]
    MissingCode,
    /// The `code` is longer than the configured maximum (`code_too_long`).
    #[error("the music user token is longer than {max} bytes")]
    CodeTooLong {
        /// The maximum accepted length.
        max: usize,
    },
    /// The request has no `state` (`missing_state`).
    #[error("the sign-in answer carried no state")]
    MissingState,
    /// The session holds no pending login, or another one (`state_mismatch`): a replay,
    /// another browser's answer, or a lost session.
    #[error("this sign-in answer does not belong to a login started in this browser")]
    StateMismatch,
    /// A return to the `redirect` page's return page that does not carry the hand-back
    /// value of this browser's login, or carries another one (`handback_mismatch`): a return
    /// this browser did not get from Apple, e.g. a page on another site that navigated a
    /// window of ours to the return page with its own token in the fragment.
    #[error("this return to the site does not belong to a login started in this browser")]
    HandbackMismatch,
    /// The pending login is older than the state lifetime (`state_expired`).
    #[error("the sign-in took too long; please start again")]
    StateExpired,
    /// No `id_token_hint` (`missing_id_token_hint`).
    #[error("the sign-in answer carried no developer token")]
    MissingIdTokenHint,
    /// The `id_token_hint` is not a valid developer token this app signed
    /// (`invalid_id_token_hint`).
    #[error("the sign-in answer carried a developer token this app did not issue ({0})")]
    InvalidIdTokenHint(#[source] crate::developer_token::VerifyError),
    /// Apple Music refused the music user token (`403` on `/v1/me/storefront`): expired,
    /// revoked, or not a token at all (`rejected_by_apple`).
    #[error("Apple Music did not accept this sign-in; please sign in again")]
    RejectedByApple,
    /// The request body did not arrive in time (`request_timeout`, answered `408`).
    #[error("the sign-in request did not arrive in time")]
    RequestTimeout,
    /// A parameter given twice, not UTF-8, an oversized body, an undecodable fragment
    /// (`malformed_request`).
    #[error("malformed sign-in request: {detail}")]
    MalformedRequest {
        /// What was wrong (never a token).
        detail: String,
    },
}

impl TokenError {
    /// The snake_case reason.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::MissingCode => "missing_code",
            TokenError::CodeTooLong { .. } => "code_too_long",
            TokenError::MissingState => "missing_state",
            TokenError::StateMismatch => "state_mismatch",
            TokenError::HandbackMismatch => "handback_mismatch",
            TokenError::StateExpired => "state_expired",
            TokenError::RequestTimeout => "request_timeout",
            TokenError::MissingIdTokenHint => "missing_id_token_hint",
            TokenError::InvalidIdTokenHint(_) => "invalid_id_token_hint",
            TokenError::MalformedRequest { .. } => "malformed_request",
            TokenError::RejectedByApple => "rejected_by_apple",
        }
    }

    /// `408` for [`RequestTimeout`](Self::RequestTimeout), `400` otherwise.
    pub fn status(&self) -> actix_web::http::StatusCode {
        match self {
            TokenError::RequestTimeout => actix_web::http::StatusCode::REQUEST_TIMEOUT,
            _ => actix_web::http::StatusCode::BAD_REQUEST,
        }
    }

    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        TokenError::MalformedRequest {
            detail: detail.into(),
        }
    }
}

/// The longest `Retry-After` the crate passes on to a client: one hour. A longer wait asked by
/// Apple is cut to this.
pub const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Apple Music API could not vouch for a token, and neither the user nor the token is to
/// blame. The JSON body says `"error": "upstream_error"` with one of these reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// Apple answered `401`: it refused **the developer token**. A configuration fault
    /// (team ID, key ID, `.p8` key, MusicKit not enabled for the key), answered `500`
    /// (`developer_token_rejected`).
    #[error("Apple Music refused this app's developer token: check the team ID, the key ID, the .p8 key and that the key has MusicKit enabled")]
    DeveloperTokenRejected,
    /// Apple answered `429`. Answered `503` with `Retry-After` (`rate_limited`).
    #[error("Apple Music is rate limiting this app; please try again shortly")]
    RateLimited {
        /// Apple's `Retry-After`, when it sent one.
        retry_after: Option<std::time::Duration>,
    },
    /// The store that records spent login states could not be asked, so the state could not
    /// be spent safely. Answered `503` with `Retry-After: 5` (`session_store_unavailable`).
    #[error("the sign-in could not be recorded ({detail}); please try again shortly")]
    StateStoreUnavailable {
        /// What went wrong (never a state).
        detail: String,
    },
    /// Apple could not be asked: a timeout, a connection failure, a `5xx`, a redirect or a
    /// body that is not the expected JSON. Answered `503` (`apple_unavailable`).
    #[error("Apple Music could not be reached ({detail}); please try again shortly")]
    AppleUnavailable {
        /// What went wrong (never a token).
        detail: String,
    },
}

impl UpstreamError {
    /// The snake_case reason.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::DeveloperTokenRejected => "developer_token_rejected",
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::AppleUnavailable { .. } => "apple_unavailable",
            UpstreamError::StateStoreUnavailable { .. } => "session_store_unavailable",
        }
    }

    /// The `Retry-After` answered: Apple's own when it rate limits (30 s when it gave none,
    /// at most [`MAX_RETRY_AFTER`]), 5 s when it or the state store could not be reached,
    /// none for a refused developer token (waiting will not fix the configuration).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            UpstreamError::DeveloperTokenRejected => None,
            UpstreamError::RateLimited { retry_after } => Some(
                retry_after
                    .unwrap_or(std::time::Duration::from_secs(30))
                    .min(MAX_RETRY_AFTER),
            ),
            UpstreamError::AppleUnavailable { .. }
            | UpstreamError::StateStoreUnavailable { .. } => {
                Some(std::time::Duration::from_secs(5))
            }
        }
    }

    /// `500` for a refused developer token (the app's configuration), `503` otherwise.
    pub fn status(&self) -> actix_web::http::StatusCode {
        match self {
            UpstreamError::DeveloperTokenRejected => {
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl actix_web::ResponseError for AuthError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.status()
    }

    /// Without the request at hand this answers JSON; the mounted routes choose JSON or
    /// HTML by the request's `Accept` header.
    fn error_response(&self) -> actix_web::HttpResponse {
        crate::response::auth_error_json(self)
    }
}
