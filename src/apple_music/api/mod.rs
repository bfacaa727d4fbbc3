//! Asking Apple Music API: proving a music user token at sign-in, checking the developer
//! token, and a thin request helper for apps.
//!
//! A music user token cannot be checked offline, and both tokens can stop working silently.
//! [`AppleMusicApi`] asks Apple instead:
//!
//! - [`storefront`](AppleMusicApi::storefront) (`GET /v1/me/storefront`) is the cheapest call
//!   that proves a music user token; the strategy calls it at every sign-in (unless
//!   [`check_with_apple(false)`](crate::AppleMusicConfig::check_with_apple)) and keeps the answer in
//!   the identity;
//! - [`check_developer_token`](AppleMusicApi::check_developer_token) (`GET /v1/test`) proves the
//!   developer token;
//! - [`send`](AppleMusicApi::send) and [`AppleMusicUser::api`](crate::AppleMusicUser::api)
//!   send an app's own requests with the right headers and turn Apple's failure statuses into
//!   an [`ApiError`].
//!
//! | Apple answers | [`ApiError`] | at sign-in |
//! | --- | --- | --- |
//! | `403` | `UserTokenRejected` | `TokenError::RejectedByApple` (`400`) |
//! | `400` with code `40015` | `NoSubscription` | `AuthorizationError::NoSubscription` (`401`) |
//! | `401` | `DeveloperTokenRejected` | `UpstreamError::DeveloperTokenRejected` (`500`) |
//! | `429` | `RateLimited` | `UpstreamError::RateLimited` (`503` + `Retry-After`) |
//! | timeout, connection failure, `5xx`, `3xx`, oversized or malformed body | `Unavailable` | `UpstreamError::AppleUnavailable` (`503`), or an unverified identity with [`UnavailablePolicy::AcceptUnverified`] |
//!
//! Requests go only to the configured base URL (default `https://api.music.apple.com`), time
//! out (10 s by default), follow no redirect and read at most 4 MiB of body by default. No
//! token ever appears in an error or a log line.
//!
//! The HTTP client is actix's own `awc`: it runs on the actix runtime the app already has,
//! shares actix-http's code (a small addition to the build) and keeps one connection pool per
//! worker thread.

mod error;
mod options;
mod request;
mod types;

pub use error::ApiError;
pub use options::ApiOptions;
pub use request::{ApiRequest, ApiResponse};
pub use types::{
    AppleCheck, DeveloperTokenCheck, Storefront, UnavailablePolicy, DEFAULT_API_BASE_URL,
    DEFAULT_API_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
};

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use serde::Deserialize;
use url::Url;

use crate::developer_token::DeveloperTokenSigner;
use crate::error::ConfigError;
use crate::secret::MusicUserToken;

/// A client for Apple Music API bound to one developer-token signer. Cheap to clone.
///
/// The strategy builds one from its config
/// ([`AppleMusicStrategy::api`](crate::AppleMusicStrategy::api)); for catalog calls without a
/// signed-in user, build one from a signer:
///
/// ```no_run
/// # async fn run(signer: actix_apple_music::developer_token::DeveloperTokenSigner) -> Result<(), Box<dyn std::error::Error>> {
/// use actix_apple_music::apple_music_api::{AppleMusicApi, ApiRequest};
/// let api = AppleMusicApi::new(signer);
/// let answer = api.send(ApiRequest::get("/v1/catalog/us/songs/203709340"), None).await?;
/// let song: serde_json::Value = answer.json()?;
/// # Ok(()) }
/// ```
///
/// **Runtime.** It sends on actix's client (awc), whose futures are not `Send`: await them in
/// a handler, or in a background job started with `actix_web::rt::spawn` (from the app's
/// `#[actix_web::main]`, or inside `HttpServer::new`), not with `tokio::spawn` on a
/// multi-threaded runtime. Connections are pooled per worker thread; an idempotent request
/// (`GET`, `HEAD`, `OPTIONS`, `PUT`, `DELETE`) that meets a pooled connection the server has
/// closed meanwhile is sent once more on a fresh one, before any answer came; a `POST` is not.
#[derive(Clone)]
pub struct AppleMusicApi {
    inner: Arc<ApiInner>,
}

struct ApiInner {
    http: crate::http::Outgoing,
    signer: DeveloperTokenSigner,
    base: Url,
    timeout: Duration,
    max_body: usize,
    origin: Option<HeaderValue>,
    warned_developer_token: AtomicBool,
}

impl fmt::Debug for AppleMusicApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppleMusicApi")
            .field("base", &self.inner.base.as_str())
            .field("timeout", &self.inner.timeout)
            .field("max_body", &self.inner.max_body)
            .finish_non_exhaustive()
    }
}

impl AppleMusicApi {
    /// A client with the defaults: Apple's base URL, a 10 s timeout, 4 MiB bodies.
    pub fn new(signer: DeveloperTokenSigner) -> Self {
        Self::with_options(signer, ApiOptions::default()).expect("the default base URL is valid")
    }

    /// A client with options, checked here.
    pub fn with_options(
        signer: DeveloperTokenSigner,
        options: ApiOptions,
    ) -> Result<Self, ConfigError> {
        let base = Url::parse(&options.base_url)
            .ok()
            .filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.username().is_empty()
            })
            .ok_or_else(|| {
                ConfigError::invalid(
                    crate::apple_music::env::API_BASE_URL,
                    &options.base_url,
                    "an absolute http(s) URL such as https://api.music.apple.com",
                )
            })?;
        if options.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "API timeout",
                "0",
                "a timeout above zero",
            ));
        }
        let origin = match options.origin.as_deref() {
            Some(origin) => Some(HeaderValue::from_str(origin).map_err(|_| {
                ConfigError::invalid(
                    "API Origin header",
                    origin,
                    "an origin such as https://app.example",
                )
            })?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(ApiInner {
                http: options.client.clone().unwrap_or_default(),
                signer,
                base,
                timeout: options.timeout,
                max_body: options.max_body,
                origin,
                warned_developer_token: AtomicBool::new(false),
            }),
        })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The developer-token signer.
    pub fn signer(&self) -> &DeveloperTokenSigner {
        &self.inner.signer
    }

    /// `GET /v1/me/storefront` with `music_user_token`: proves the token and answers the
    /// user's storefront.
    pub async fn storefront(
        &self,
        music_user_token: &MusicUserToken,
    ) -> Result<Storefront, ApiError> {
        #[derive(Deserialize)]
        struct Answer {
            data: Vec<Item>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Item {
            id: String,
            attributes: Attributes,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Attributes {
            name: String,
            #[serde(default)]
            default_language_tag: Option<String>,
        }
        let answer = self
            .send(ApiRequest::get("/v1/me/storefront"), Some(music_user_token))
            .await?;
        if answer.status() != StatusCode::OK {
            return Err(ApiError::unavailable(format!(
                "/v1/me/storefront answered {}",
                answer.status().as_u16()
            )));
        }
        let parsed: Answer = answer.json()?;
        let item =
            parsed.data.into_iter().next().ok_or_else(|| {
                ApiError::unavailable("the storefront answer holds no storefront")
            })?;
        Ok(Storefront {
            id: item.id,
            name: item.attributes.name,
            default_language_tag: item.attributes.default_language_tag,
        })
    }

    /// `GET /v1/test`: whether Apple accepts the developer token.
    pub async fn check_developer_token(&self) -> DeveloperTokenCheck {
        match self.send(ApiRequest::get("/v1/test"), None).await {
            // Only a 2xx is an answer (a 401 or 403 is an error, below).
            Ok(answer) if answer.status() == StatusCode::OK => DeveloperTokenCheck::Accepted,
            Ok(answer) => DeveloperTokenCheck::Inconclusive {
                cause: format!("/v1/test answered {}", answer.status().as_u16()),
            },
            Err(ApiError::DeveloperTokenRejected) => DeveloperTokenCheck::Rejected { status: 401 },
            Err(ApiError::UserTokenRejected) => DeveloperTokenCheck::Rejected { status: 403 },
            Err(e) => DeveloperTokenCheck::Inconclusive {
                cause: e.to_string(),
            },
        }
    }

    /// Sends `request` with `Authorization: Bearer <developer token>` and, when given,
    /// `Music-User-Token`. Apple's failure statuses (`401`, `403`, `429`, `400`/`40015`,
    /// `3xx`, `5xx`, and any other non-`2xx` such as `404`, as [`ApiError::Status`]) become an
    /// [`ApiError`]; only a `2xx` is an [`ApiResponse`].
    ///
    /// Signed-in handlers use [`AppleMusicUser::api`](crate::AppleMusicUser::api), which also
    /// invalidates the identity when Apple refuses its token.
    pub async fn send(
        &self,
        request: ApiRequest,
        music_user_token: Option<&MusicUserToken>,
    ) -> Result<ApiResponse, ApiError> {
        let started = std::time::Instant::now();
        let span = tracing::debug_span!("apple_request", endpoint = "apple_music_api");
        let result =
            tracing::Instrument::instrument(self.exchange(request, music_user_token), span).await;
        let outcome = match &result {
            Ok(answer) => Some(crate::audit::status_class(answer.status().as_u16())),
            Err(ApiError::Unavailable { .. }) => Some("unavailable"),
            Err(ApiError::Status { status }) => Some(crate::audit::status_class(*status)),
            Err(ApiError::InvalidBody { .. } | ApiError::InvalidPath { .. }) => None,
            Err(_) => Some("4xx"),
        };
        if let Some(outcome) = outcome {
            crate::audit::apple_call("apple_music_api", outcome, started.elapsed());
        }
        if let (Some(_), Err(ApiError::UserTokenRejected)) = (music_user_token, &result) {
            crate::audit::emit(crate::audit::AuditEvent::TokenRefusedByApple {
                strategy: super::name::STRATEGY_NAME.to_owned(),
            });
        }
        result
    }

    /// [`send`](Self::send) without its metrics and events.
    async fn exchange(
        &self,
        request: ApiRequest,
        music_user_token: Option<&MusicUserToken>,
    ) -> Result<ApiResponse, ApiError> {
        let url = self.url(&request.path)?;
        let body = request
            .body
            .transpose()
            .map_err(|detail| ApiError::InvalidBody { detail })?;
        let inner = &self.inner;
        let developer_token = inner.signer.token();
        let mut secrets = vec![crate::headers::apple_music_authorization(&developer_token)];
        if let Some(token) = music_user_token {
            secrets.push(crate::headers::music_user_token(token));
        }
        let mut outgoing = oauth2::http::Request::builder()
            .method(request.method.as_str())
            .uri(url.as_str())
            .header(oauth2::http::header::ACCEPT, "application/json");
        for (name, value) in &secrets {
            let mut value = oauth2::http::HeaderValue::from_bytes(value.as_bytes())
                .map_err(|_| ApiError::unavailable("a header value is not valid"))?;
            // Tokens stay out of any Debug output on the way.
            value.set_sensitive(true);
            outgoing = outgoing.header(name.as_str(), value);
        }
        if let Some(origin) = &inner.origin {
            outgoing = outgoing.header(oauth2::http::header::ORIGIN, origin.as_bytes());
        }
        if body.is_some() {
            outgoing = outgoing.header(oauth2::http::header::CONTENT_TYPE, "application/json");
        }
        let outgoing = outgoing
            .body(body.map(|b| b.to_vec()).unwrap_or_default())
            .map_err(|e| ApiError::unavailable(format!("the request could not be built ({e})")))?;
        let limits = crate::http::Limits::new(inner.timeout, inner.max_body);
        let answer = inner
            .http
            .send(outgoing, limits)
            .await
            .map_err(|e| match e {
                crate::http::HttpError::TimedOut(_) => ApiError::unavailable(format!(
                    "no answer within {} ms",
                    inner.timeout.as_millis()
                )),
                e => ApiError::unavailable(e.to_string()),
            })?;
        let status =
            StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let retry_after = answer
            .headers()
            .get(oauth2::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| Duration::from_secs(secs).min(crate::MAX_RETRY_AFTER));
        let body = Bytes::from(answer.into_body());
        self.classify(&request.path, status, retry_after, body)
    }

    fn classify(
        &self,
        path: &str,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: Bytes,
    ) -> Result<ApiResponse, ApiError> {
        let path = path.split('?').next().unwrap_or_default();
        match status.as_u16() {
            401 => {
                if !self
                    .inner
                    .warned_developer_token
                    .swap(true, Ordering::Relaxed)
                {
                    tracing::error!(
                        "Apple Music API refused this app's developer token (401 on {path}): \
                         check APPLE_MUSIC_TEAM_ID, APPLE_MUSIC_KEY_ID, the .p8 key and that \
                         the key has MusicKit enabled"
                    );
                }
                Err(ApiError::DeveloperTokenRejected)
            }
            403 => Err(ApiError::UserTokenRejected),
            429 => Err(ApiError::RateLimited { retry_after }),
            400 if has_error_code(&body, "40015") => Err(ApiError::NoSubscription),
            300..=399 => Err(ApiError::unavailable(format!(
                "{path} answered a redirect ({}), which is not followed",
                status.as_u16()
            ))),
            500..=599 => Err(ApiError::unavailable(format!(
                "{path} answered {}",
                status.as_u16()
            ))),
            200..=299 => Ok(ApiResponse { status, body }),
            other => Err(ApiError::Status { status: other }),
        }
    }

    /// The absolute URL of an API path, which must stay under the base.
    fn url(&self, path: &str) -> Result<Url, ApiError> {
        let invalid = || ApiError::InvalidPath {
            path: path.chars().take(200).collect(),
        };
        if !path.starts_with("/v1/") || path.contains("..") || path.contains('#') {
            return Err(invalid());
        }
        let base_path = self.inner.base.path().trim_end_matches('/');
        let mut url = self.inner.base.clone();
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        url.set_path(&format!("{base_path}{p}"));
        url.set_query(q);
        if url.origin() != self.inner.base.origin() {
            return Err(invalid());
        }
        Ok(url)
    }
}

fn has_error_code(body: &[u8], code: &str) -> bool {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: Option<String>,
    }
    serde_json::from_slice::<Errors>(body)
        .map(|e| {
            e.errors
                .iter()
                .any(|item| item.code.as_deref() == Some(code))
        })
        .unwrap_or(false)
}
