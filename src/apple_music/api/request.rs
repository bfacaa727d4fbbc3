//! An app's own requests to Apple Music API, and their answers.

use std::fmt;

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApiError;

/// A request for [`AppleMusicApi::send`](super::AppleMusicApi::send): method, path (with query) and an optional JSON
/// body. The path is relative to the API base and must start with `/v1/`.
///
/// ```
/// use actix_apple_music::apple_music_api::ApiRequest;
/// let songs = ApiRequest::get("/v1/me/library/songs?limit=25");
/// let playlist = ApiRequest::post("/v1/me/library/playlists")
///     .json(&serde_json::json!({"attributes": {"name": "Road trip"}}));
/// # drop((songs, playlist));
/// ```
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) body: Option<Result<Bytes, String>>,
}

impl ApiRequest {
    /// A request with any method.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            body: None,
        }
    }

    /// A `GET`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// A `POST`.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    /// Sends `body` as JSON. A body that cannot be serialised makes
    /// [`send`](super::AppleMusicApi::send) answer [`ApiError::InvalidBody`](super::ApiError::InvalidBody) without sending.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.body = Some(
            serde_json::to_vec(body)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
        );
        self
    }

    /// The path (and query).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether this is a personalised (`/v1/me/…`) request.
    pub fn is_personal(&self) -> bool {
        self.path.starts_with("/v1/me/") || self.path == "/v1/me"
    }
}

/// Apple's successful (`2xx`) answer to an [`ApiRequest`]. Every other status is an
/// [`ApiError`](super::ApiError): one rule for the whole helper (`404` and other `4xx` are
/// [`ApiError::Status`](super::ApiError::Status), answered `404` or `502`).
#[derive(Clone)]
pub struct ApiResponse {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
}

impl fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl ApiResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as JSON; a body of another shape is [`ApiError::Unavailable`](super::ApiError::Unavailable).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|_| ApiError::unavailable("the body is not the expected JSON"))
    }
}
