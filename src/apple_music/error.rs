//! Why an Apple Music sign-in failed: the families passport-apple-music has, with typed
//! reasons. The flow's own failures (state, request, the app's hook) are
//! [`FlowError`](crate::FlowError)s.

use std::borrow::Cow;

use crate::strategy::{FailureKind, StrategyError, MAX_RETRY_AFTER};

/// Why the Apple Music strategy refused a sign-in.
///
/// An [`AuthorizationError`] means the user said no, or the authorization could not run; a
/// [`TokenError`] means the callback carried something wrong (a bad `id_token_hint`, a token
/// Apple refused); an [`UpstreamError`] means Apple could not vouch for the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppleMusicError {
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

impl StrategyError for AppleMusicError {
    fn kind(&self) -> FailureKind {
        match self {
            AppleMusicError::Authorization(_) => FailureKind::Authorization,
            AppleMusicError::Token(_) => FailureKind::Token,
            AppleMusicError::Upstream(_) => FailureKind::Upstream,
        }
    }

    fn reason(&self) -> &str {
        match self {
            AppleMusicError::Authorization(e) => e.reason(),
            AppleMusicError::Token(e) => e.reason(),
            AppleMusicError::Upstream(e) => e.reason(),
        }
    }

    fn status(&self) -> actix_web::http::StatusCode {
        match self {
            AppleMusicError::Upstream(e) => e.status(),
            other => other.kind().default_status(),
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            AppleMusicError::Upstream(e) => e.retry_after(),
            _ => None,
        }
    }

    fn title(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
            AppleMusicError::Authorization(_) => "Apple Music sign-in did not complete",
            AppleMusicError::Token(TokenError::RejectedByApple) => {
                "Apple Music did not accept this sign-in"
            }
            AppleMusicError::Token(_) => "This sign-in link is not valid",
            AppleMusicError::Upstream(_) => "Apple Music could not check the sign-in",
        })
    }
}

/// The user refused, or MusicKit could not authorize.
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

/// The callback carries something missing, wrong or forged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No music user token (wire field `code`), or an empty one (`missing_code`).
    #[error("the sign-in answer carried no music user token")]
    MissingUserToken,
    /// The music user token is longer than the configured maximum (`code_too_long`).
    #[error("the music user token is longer than {max} bytes")]
    UserTokenTooLong {
        /// The maximum accepted length.
        max: usize,
    },
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
    /// An undecodable fragment or a bad `restricted` value (`malformed_request`).
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
            TokenError::MissingUserToken => "missing_code",
            TokenError::UserTokenTooLong { .. } => "code_too_long",
            TokenError::MissingIdTokenHint => "missing_id_token_hint",
            TokenError::InvalidIdTokenHint(_) => "invalid_id_token_hint",
            TokenError::MalformedRequest { .. } => "malformed_request",
            TokenError::RejectedByApple => "rejected_by_apple",
        }
    }

    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        TokenError::MalformedRequest {
            detail: detail.into(),
        }
    }
}

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
        }
    }

    /// The `Retry-After` answered: Apple's own when it rate limits (30 s when it gave none,
    /// at most [`MAX_RETRY_AFTER`]), 5 s when it could not be reached,
    /// none for a refused developer token (waiting will not fix the configuration).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            UpstreamError::DeveloperTokenRejected => None,
            UpstreamError::RateLimited { retry_after } => Some(
                retry_after
                    .unwrap_or(std::time::Duration::from_secs(30))
                    .min(MAX_RETRY_AFTER),
            ),
            UpstreamError::AppleUnavailable { .. } => Some(std::time::Duration::from_secs(5)),
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

impl actix_web::ResponseError for AppleMusicError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        StrategyError::status(self)
    }

    /// Without the request at hand this answers JSON; the mounted routes choose JSON or
    /// HTML by the request's `Accept` header.
    fn error_response(&self) -> actix_web::HttpResponse {
        crate::respond::failure_json(self)
    }
}
