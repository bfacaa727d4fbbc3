//! The provider-neutral side of a failed sign-in: the families, the trait every strategy's
//! error implements, and the failures the flow itself finds.

use std::borrow::Cow;
use std::time::Duration;

use actix_web::http::StatusCode;

/// The longest `Retry-After` the crate passes on to a client: one hour. A longer wait asked
/// by a provider is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The family of a failed sign-in, as passport-apple-music has them; its JSON name is the
/// answer's `"error"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The user or the app said no, or the authorization could not run
    /// (`authorization_error`, `401` by default).
    Authorization,
    /// The callback request is wrong or forged (`token_error`, `400` by default).
    Token,
    /// A service the sign-in depends on could not vouch for it, through no fault of the user
    /// (`upstream_error`, `503` by default).
    Upstream,
}

impl FailureKind {
    /// `authorization_error`, `token_error` or `upstream_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Authorization => "authorization_error",
            FailureKind::Token => "token_error",
            FailureKind::Upstream => "upstream_error",
        }
    }

    /// The family's default status.
    pub fn default_status(self) -> StatusCode {
        match self {
            FailureKind::Authorization => StatusCode::UNAUTHORIZED,
            FailureKind::Token => StatusCode::BAD_REQUEST,
            FailureKind::Upstream => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What the flow needs to know of a strategy's error to answer it: its family, a stable
/// snake_case reason, the status, how long to wait, and a heading for the HTML page. The
/// `Display` text is the message shown to the user (never a secret).
pub trait StrategyError: std::error::Error + 'static {
    /// The family.
    fn kind(&self) -> FailureKind;

    /// The stable snake_case reason, e.g. `declined`.
    fn reason(&self) -> &str;

    /// The HTTP status (default: the family's).
    fn status(&self) -> StatusCode {
        self.kind().default_status()
    }

    /// The `Retry-After` to answer, where waiting helps (default none).
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// The heading of the HTML error page (default: a neutral one per family).
    fn title(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self.kind() {
            FailureKind::Authorization => "Sign-in did not complete",
            FailureKind::Token => "This sign-in link is not valid",
            FailureKind::Upstream => "The sign-in could not be checked",
        })
    }
}

/// What the flow around every strategy finds wrong, before or after the strategy's own
/// callback: the login state, the request itself, the app's hook, the state ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The request has no `state` (`missing_state`).
    #[error("the sign-in answer carried no state")]
    MissingState,
    /// The session holds no pending login, or another one, or the state was spent already
    /// (`state_mismatch`): a replay, a parallel callback, another browser's answer, or a lost
    /// session.
    #[error("this sign-in answer does not belong to a login started in this browser")]
    StateMismatch,
    /// A return through a URL of the app that does not carry this browser's hand-back value
    /// (`handback_mismatch`): e.g. a page on another site that navigated a window of ours to
    /// the return page with its own token.
    #[error("this return to the site does not belong to a login started in this browser")]
    HandbackMismatch,
    /// The pending login is older than the state lifetime (`state_expired`).
    #[error("the sign-in took too long; please start again")]
    StateExpired,
    /// The request body did not arrive in time (`request_timeout`, `408`).
    #[error("the sign-in request did not arrive in time")]
    RequestTimeout,
    /// A parameter given twice, not UTF-8, an oversized or wrongly typed body
    /// (`malformed_request`).
    #[error("malformed sign-in request: {detail}")]
    MalformedRequest {
        /// What was wrong (never a secret).
        detail: String,
    },
    /// The app's sign-in hook refused (`rejected_by_app`, an authorization error).
    #[error("sign-in refused: {reason}")]
    RejectedByApp {
        /// The app's reason, shown to the user.
        reason: String,
    },
    /// The sign-in would not fit in the session cookie (`session_too_large`, `413`): a browser
    /// drops a cookie over 4096 bytes, so the sign-in would silently not hold. Checked before
    /// the state is spent (from the callback's size), and again once the identity is known.
    /// Use a server-side store (Redis) for identities this large.
    #[error(
        "this sign-in is too large for the session cookie ({bytes} bytes; browsers keep 4096)"
    )]
    SessionTooLarge {
        /// The cookie's size as it would be sent, in bytes (at least).
        bytes: usize,
    },
    /// The state ledger or the session could not record the sign-in
    /// (`session_store_unavailable`, `503`, `Retry-After: 5`).
    #[error("the sign-in could not be recorded ({detail}); please try again shortly")]
    StoreUnavailable {
        /// What went wrong (never a state).
        detail: String,
    },
}

impl FlowError {
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        FlowError::MalformedRequest {
            detail: detail.into(),
        }
    }
}

impl StrategyError for FlowError {
    fn kind(&self) -> FailureKind {
        match self {
            FlowError::RejectedByApp { .. } => FailureKind::Authorization,
            FlowError::StoreUnavailable { .. } => FailureKind::Upstream,
            _ => FailureKind::Token,
        }
    }

    fn reason(&self) -> &str {
        match self {
            FlowError::MissingState => "missing_state",
            FlowError::StateMismatch => "state_mismatch",
            FlowError::HandbackMismatch => "handback_mismatch",
            FlowError::StateExpired => "state_expired",
            FlowError::RequestTimeout => "request_timeout",
            FlowError::MalformedRequest { .. } => "malformed_request",
            FlowError::RejectedByApp { .. } => "rejected_by_app",
            FlowError::StoreUnavailable { .. } => "session_store_unavailable",
            FlowError::SessionTooLarge { .. } => "session_too_large",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            FlowError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            FlowError::SessionTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            other => other.kind().default_status(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        matches!(self, FlowError::StoreUnavailable { .. }).then_some(Duration::from_secs(5))
    }
}

/// A failed sign-in: found by the flow, or by the strategy. Implements [`StrategyError`]
/// (and actix's `ResponseError`, answering JSON) by delegation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError<E> {
    /// The flow refused it (state, request, the app's hook, the store).
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The strategy refused it.
    #[error(transparent)]
    Strategy(E),
}

impl<E: StrategyError> SignInError<E> {
    fn inner(&self) -> &dyn StrategyError {
        match self {
            SignInError::Flow(e) => e,
            SignInError::Strategy(e) => e,
        }
    }
}

impl<E: StrategyError> StrategyError for SignInError<E> {
    fn kind(&self) -> FailureKind {
        self.inner().kind()
    }
    fn reason(&self) -> &str {
        self.inner().reason()
    }
    fn status(&self) -> StatusCode {
        self.inner().status()
    }
    fn retry_after(&self) -> Option<Duration> {
        self.inner().retry_after()
    }
    fn title(&self) -> Cow<'_, str> {
        self.inner().title()
    }
}

/// A refusal from the app's sign-in hook; becomes [`FlowError::RejectedByApp`] with this
/// reason.
#[derive(Debug, Clone)]
pub struct Rejection(pub(crate) String);

impl Rejection {
    /// A refusal with a reason the user may read.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}
