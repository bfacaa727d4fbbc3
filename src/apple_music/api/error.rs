//! [`ApiError`](super::ApiError): Apple Music API's failure statuses, typed.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::types::UnavailablePolicy;
use crate::apple_music::error::{AppleMusicError, AuthorizationError, TokenError, UpstreamError};

/// A failed Apple Music API request. Its messages never hold a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// `403`: Apple refused the music user token (expired, revoked, or not a token).
    #[error("Apple Music refused the music user token (403)")]
    UserTokenRejected,
    /// `400` with error code `40015`: the account has no Apple Music subscription.
    #[error("the Apple ID has no Apple Music subscription (400, code 40015)")]
    NoSubscription,
    /// `401`: Apple refused the developer token (a configuration fault).
    #[error("Apple Music refused the developer token (401): check the team ID, the key ID, the .p8 key and that the key has MusicKit enabled")]
    DeveloperTokenRejected,
    /// `429`: too many requests with this developer token.
    #[error("Apple Music is rate limiting this app (429)")]
    RateLimited {
        /// Apple's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// Apple could not be asked, or answered something unusable.
    #[error("Apple Music is unavailable: {cause}")]
    Unavailable {
        /// What happened.
        cause: String,
    },
    /// Another answer that is not a success (`404` and other `4xx`): Apple's status, for the
    /// app to decide. Answered with that status for `404`, `502` otherwise
    /// (`upstream_error`, `apple_status`).
    #[error("Apple Music answered {status}")]
    Status {
        /// Apple's status.
        status: u16,
    },
    /// From [`AppleMusicUser::api`](crate::AppleMusicUser::api): Apple refused the music user
    /// token of a `/v1/me/…` request and the identity was invalidated. Answered as the guard
    /// answers a re-login: `303` to `login_url` for browsers, `401`
    /// `{"error": "reauthentication_required", "reason": "rejected_by_apple"}` otherwise.
    #[error("the Apple Music connection ended (403 on a personal request); please sign in again")]
    ReloginRequired {
        /// The login URL with `prompt=login`, back to the page that asked.
        login_url: String,
        /// Whether the client is a browser.
        html: bool,
    },
    /// The request's JSON body could not be serialised.
    #[error("the request body could not be serialised as JSON: {detail}")]
    InvalidBody {
        /// serde's message.
        detail: String,
    },
    /// The path is not an Apple Music API path of the configured base (`/v1/…`).
    #[error("not an Apple Music API path: {path:?} (expected /v1/…)")]
    InvalidPath {
        /// The path given (cut to 200 characters).
        path: String,
    },
}

impl ApiError {
    pub(super) fn unavailable(cause: impl Into<String>) -> Self {
        ApiError::Unavailable {
            cause: cause.into(),
        }
    }

    /// The upstream failure this is, for the answers that are neither the user's nor the
    /// token's fault.
    pub(super) fn upstream(&self) -> Option<UpstreamError> {
        Some(match self {
            ApiError::DeveloperTokenRejected => UpstreamError::DeveloperTokenRejected,
            ApiError::RateLimited { retry_after } => UpstreamError::RateLimited {
                retry_after: *retry_after,
            },
            ApiError::Unavailable { cause } => UpstreamError::AppleUnavailable {
                detail: cause.clone(),
            },
            _ => return None,
        })
    }

    /// The sign-in failure this answer means, or `None` when the policy lets the sign-in
    /// through unverified.
    pub(crate) fn into_sign_in_error(self, policy: UnavailablePolicy) -> Option<AppleMusicError> {
        Some(match self {
            ApiError::UserTokenRejected => TokenError::RejectedByApple.into(),
            ApiError::NoSubscription => AuthorizationError::NoSubscription.into(),
            ApiError::Unavailable { .. } if policy == UnavailablePolicy::AcceptUnverified => {
                return None
            }
            other => other
                .upstream()
                .unwrap_or_else(|| UpstreamError::AppleUnavailable {
                    detail: other.to_string(),
                })
                .into(),
        })
    }
}

/// Handlers may answer `Result<_, ApiError>`: `401 reauthentication_required` for a refused
/// user token, `403 no_subscription`, `500` for a refused developer token or a bad request,
/// `503` (with `Retry-After`) when Apple is rate limiting or unavailable. The last three
/// answer exactly as a sign-in's [`UpstreamError`] does.
impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match (self, self.upstream()) {
            (_, Some(upstream)) => upstream.status(),
            (ApiError::UserTokenRejected, _) => StatusCode::UNAUTHORIZED,
            (ApiError::ReloginRequired { html: true, .. }, _) => StatusCode::SEE_OTHER,
            (ApiError::ReloginRequired { .. }, _) => StatusCode::UNAUTHORIZED,
            (ApiError::Status { status: 404 }, _) => StatusCode::NOT_FOUND,
            (ApiError::Status { .. }, _) => StatusCode::BAD_GATEWAY,
            (ApiError::NoSubscription, _) => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(upstream) = self.upstream() {
            return crate::respond::failure_json(&AppleMusicError::Upstream(upstream));
        }
        if let ApiError::ReloginRequired {
            login_url,
            html: true,
        } = self
        {
            return crate::respond::see_other(login_url);
        }
        let (error, reason) = match self {
            ApiError::UserTokenRejected | ApiError::ReloginRequired { .. } => {
                ("reauthentication_required", "rejected_by_apple")
            }
            ApiError::Status { .. } => ("upstream_error", "apple_status"),
            ApiError::NoSubscription => ("authorization_error", "no_subscription"),
            ApiError::InvalidBody { .. } => ("internal_error", "invalid_api_body"),
            _ => ("internal_error", "invalid_api_path"),
        };
        crate::respond::error_json(
            HttpResponse::build(self.status_code()),
            error,
            &[("reason", reason), ("message", &self.to_string())],
        )
    }
}
