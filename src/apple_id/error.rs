//! Why a Sign in with Apple sign-in failed, with stable reasons.

use std::borrow::Cow;
use std::time::Duration;

use actix_web::http::StatusCode;

use crate::strategy::{FailureKind, StrategyError};

/// Why the Sign in with Apple strategy refused a sign-in. The flow's own failures (state,
/// request, the app's hook) are [`FlowError`](crate::FlowError)s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppleIdError {
    /// The user cancelled at Apple (`user_cancelled`, `401`).
    #[error("you cancelled Sign in with Apple")]
    Cancelled,
    /// Apple answered another `error` (`provider_error`, `401`). The text came from the
    /// browser: untrusted, cut to 100 characters.
    #[error("Sign in with Apple did not complete ({error})")]
    Provider {
        /// Apple's error code.
        error: String,
    },
    /// No `code` in Apple's answer (`missing_code`, `400`).
    #[error("the sign-in answer carried no authorization code")]
    MissingCode,
    /// The token endpoint refused the code: used, expired or another client's
    /// (`invalid_grant`, `400`).
    #[error("Apple refused the authorization code (invalid_grant); please sign in again")]
    InvalidGrant,
    /// The token endpoint refused the app's client credentials (`invalid_client`, `500`: a
    /// configuration fault: Services ID, team ID, key ID, the key's Sign in with Apple
    /// capability, or the redirect URL).
    #[error("Apple refused this app's client credentials (invalid_client): check the Services ID, team ID, key ID and that the key has Sign in with Apple enabled")]
    InvalidClient,
    /// The token endpoint answered another error (`token_error`, `400`).
    #[error("Apple refused the code exchange ({error})")]
    TokenEndpoint {
        /// The endpoint's `error`.
        error: String,
    },
    /// The token answer held no `id_token` (`missing_id_token`, `400`).
    #[error("Apple's answer held no identity token")]
    MissingIdToken,
    /// The `id_token` is not a valid token of the provider: bad signature, an algorithm other
    /// than its key's, an unknown key, malformed (`invalid_id_token`, `400`).
    #[error("the identity token is not valid ({detail})")]
    InvalidIdToken {
        /// What was wrong (never the token).
        detail: String,
    },
    /// The `id_token` has expired, or was issued in the future (`id_token_expired`, `400`).
    #[error("the identity token has expired; please sign in again")]
    IdTokenExpired,
    /// The `id_token`'s `nonce` is not this login's (`nonce_mismatch`, `400`): a replayed
    /// token.
    #[error("the identity token does not belong to this login")]
    NonceMismatch,
    /// The `id_token` is for another client (`wrong_audience`, `400`).
    #[error("the identity token is for another app")]
    WrongAudience,
    /// The `id_token` comes from another issuer (`wrong_issuer`, `400`).
    #[error("the identity token comes from another issuer")]
    WrongIssuer,
    /// Apple could not be asked (token or keys endpoint: timeout, connection failure, `5xx`,
    /// an oversized or malformed answer) (`apple_unavailable`, `503`, `Retry-After: 5`).
    #[error("Sign in with Apple could not be reached ({detail}); please try again shortly")]
    Unavailable {
        /// What went wrong (never a secret).
        detail: String,
    },
}

impl StrategyError for AppleIdError {
    fn kind(&self) -> FailureKind {
        match self {
            AppleIdError::Cancelled | AppleIdError::Provider { .. } => FailureKind::Authorization,
            AppleIdError::InvalidClient | AppleIdError::Unavailable { .. } => FailureKind::Upstream,
            _ => FailureKind::Token,
        }
    }

    fn reason(&self) -> &str {
        match self {
            AppleIdError::Cancelled => "user_cancelled",
            AppleIdError::Provider { .. } => "provider_error",
            AppleIdError::MissingCode => "missing_code",
            AppleIdError::InvalidGrant => "invalid_grant",
            AppleIdError::InvalidClient => "invalid_client",
            AppleIdError::TokenEndpoint { .. } => "token_error",
            AppleIdError::MissingIdToken => "missing_id_token",
            AppleIdError::InvalidIdToken { .. } => "invalid_id_token",
            AppleIdError::IdTokenExpired => "id_token_expired",
            AppleIdError::NonceMismatch => "nonce_mismatch",
            AppleIdError::WrongAudience => "wrong_audience",
            AppleIdError::WrongIssuer => "wrong_issuer",
            AppleIdError::Unavailable { .. } => "apple_unavailable",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            AppleIdError::InvalidClient => StatusCode::INTERNAL_SERVER_ERROR,
            other => other.kind().default_status(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        matches!(self, AppleIdError::Unavailable { .. }).then_some(Duration::from_secs(5))
    }

    fn title(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self.kind() {
            FailureKind::Authorization => "Sign in with Apple did not complete",
            FailureKind::Token => "This sign-in is not valid",
            _ => "Sign in with Apple could not check the sign-in",
        })
    }
}

impl actix_web::ResponseError for AppleIdError {
    fn status_code(&self) -> StatusCode {
        StrategyError::status(self)
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        crate::respond::failure_json(self)
    }
}
