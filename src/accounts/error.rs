//! The account store's one failure.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// The account store could not be asked. Answered `503` with `Retry-After: 5` and
/// `{"error": "session_store_unavailable", "operation": "accounts", "message": …}`: a guard
/// that cannot read the marks fails closed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the account store is unavailable ({0}); please try again in a moment")]
pub struct AccountsError(String);

impl AccountsError {
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn new(cause: impl fmt::Display) -> Self {
        Self(cause.to_string())
    }
}

impl ResponseError for AccountsError {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse {
        crate::respond::error_json(
            crate::respond::error_status(
                self.status_code(),
                Some(crate::respond::STORE_RETRY_AFTER),
            ),
            "session_store_unavailable",
            &[("operation", "accounts"), ("message", &self.to_string())],
        )
    }
}
