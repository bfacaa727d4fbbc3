//! The account store's one failure.

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
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
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(serde_json::json!({
                "error": "session_store_unavailable",
                "operation": "accounts",
                "message": self.to_string(),
            }))
    }
}
