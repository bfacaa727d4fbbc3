//! Store failures answered `503` ([`StoreFailures`]) instead of actix-session's bare `500`.
//!
//! Why a side channel (task-locals scoped by [`StoreFailures`]) and not a value: a store's
//! error goes through actix-session's `SessionMiddleware`, which turns it into its own `500`
//! (its cause behind an `InternalError`, and for a failed save after the handler, the app's
//! response dropped). Only a layer outside that middleware sees both the request and whether
//! the save worked, so the store notes what failed here and [`StoreFailures`] maps it. The same
//! scope carries the request's store time (one budget for every store call of a request), the
//! effects that must run only once the session is saved, and whether the session lives in a
//! cookie. Without [`StoreFailures`] nothing is lost silently: the crate logs once that it is
//! missing, and clients get actix-session's `500` (`tests/metrics.rs` checks both).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;

use crate::respond::{self, PageTemplate};

/// Which store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOperation {
    /// Reading a session.
    Load,
    /// Writing a new session.
    Save,
    /// Rewriting a session.
    Update,
    /// Deleting a session (logout, or the old key at sign-in).
    Delete,
}

impl StoreOperation {
    /// `load`, `save`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreOperation::Load => "load",
            StoreOperation::Save => "save",
            StoreOperation::Update => "update",
            StoreOperation::Delete => "delete",
        }
    }
}

/// The session store failed: answered `503` with `Retry-After: 5` and
/// `{"error": "session_store_unavailable", "operation": …, "message": …}`, or an HTML page
/// for browsers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the session store is unavailable (could not {} a session); please try again in a moment", .operation.as_str())]
#[non_exhaustive]
pub struct StoreUnavailable {
    /// What failed.
    pub operation: StoreOperation,
    /// Whether the request asked for HTML (set by [`StoreFailures`]).
    html: bool,
}

impl StoreUnavailable {
    fn response(&self, html: bool) -> HttpResponse {
        static PAGE: LazyLock<PageTemplate> =
            LazyLock::new(|| PageTemplate::new(include_str!("../pages/unavailable.html"), ""));
        let builder = respond::error_status(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(respond::STORE_RETRY_AFTER),
        );
        let (operation, message) = (self.operation.as_str(), self.to_string());
        if html {
            return PAGE
                .respond_fields(builder, &[("OPERATION", operation), ("MESSAGE", &message)]);
        }
        respond::error_json(
            builder,
            "session_store_unavailable",
            &[("operation", operation), ("message", &message)],
        )
    }
}

impl ResponseError for StoreUnavailable {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse {
        self.response(self.html)
    }
}

/// An effect to run once the request's session is saved.
pub(crate) type AfterSave = LocalBoxFuture<'static, ()>;

tokio::task_local! {
    // The store failure of the request that StoreFailures is running, if any.
    static FAILURE: RefCell<Option<StoreUnavailable>>;
    // What the request asked to run once its session is saved.
    static AFTER_SAVE: RefCell<Vec<AfterSave>>;
    // Whether the request's session lives in a cookie (the compact cookie store said so).
    static IN_COOKIE: Cell<bool>;
    // How long that request has waited on the store so far.
    static WAITED: Cell<Duration>;
}

/// Runs one store call within what is left of the request's store time: `limit` in all,
/// shared by every store operation (and ledger call) of one request under [`StoreFailures`],
/// so that a slow store answers the request within `limit`, not within `limit` per operation.
/// Outside [`StoreFailures`], `limit` per call. `None` when the time ran out.
pub(crate) async fn within_store_time<F: std::future::Future>(
    limit: Duration,
    call: F,
) -> Option<F::Output> {
    let waited = WAITED.try_with(Cell::get).unwrap_or_default();
    let started = Instant::now();
    let result = actix_web::rt::time::timeout(limit.saturating_sub(waited), call)
        .await
        .ok();
    let _ = WAITED.try_with(|w| w.set(w.get() + started.elapsed()));
    result
}

/// Notes that the request's session lives in a cookie (called by the cookie store).
pub(crate) fn mark_in_cookie() {
    let _ = IN_COOKIE.try_with(|c| c.set(true));
}

/// Whether the request's session lives in a cookie, as far as the store said (the compact
/// cookie store under [`StoreFailures`]).
pub(crate) fn in_cookie() -> bool {
    IN_COOKIE.try_with(Cell::get).unwrap_or(false)
}

/// Runs `effect` once the request's session is saved, when the request runs under
/// [`StoreFailures`] (which knows whether the save worked); otherwise answers it back for the
/// caller to run at once.
pub(crate) fn after_save(effect: AfterSave) -> Option<AfterSave> {
    let mut effect = Some(effect);
    let queued = AFTER_SAVE.try_with(|queue| {
        if let Some(effect) = effect.take() {
            queue.borrow_mut().push(effect);
        }
    });
    match queued {
        Ok(()) => None,
        Err(_) => effect,
    }
}

pub(super) fn record(operation: StoreOperation, cause: &dyn fmt::Display) {
    tracing::error!(
        "session store: could not {} a session: {cause}",
        operation.as_str()
    );
    let reported = FAILURE.try_with(|slot| {
        slot.borrow_mut().get_or_insert(StoreUnavailable {
            operation,
            html: false,
        });
    });
    if reported.is_err() {
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::error!(
                "session store failures are not reported: no StoreFailures around SessionMiddleware \
                 (use StoreFailures::around(session_middleware)); clients get actix-session's bare 500 (logged once)"
            );
        }
    }
}

/// Answers `503` ([`StoreUnavailable`]) when an [`LifetimeStore`](super::LifetimeStore) failed during the request.
/// Wrap it *around* `SessionMiddleware` (in actix, the last `.wrap` is the outermost).
///
/// When the session middleware gave up before a response existed (a failed load or save),
/// the `503` travels as the request's error, as actix-session's own `500` does, and actix's
/// server renders it; in tests, call the app with `actix_web::test::try_call_service` and
/// render the error with `error_response()`.
///
/// It also sends the session cookie's base64 as it is: actix-session percent-encodes each `/`
/// and `=` of it (3 bytes instead of 1, which RFC 6265 does not ask for), and reads the cookie
/// back percent-decoded either way. Only `HttpOnly` cookies whose value is base64 with those
/// two escapes are rewritten; any other `Set-Cookie` passes as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreFailures;

impl StoreFailures {
    /// The middleware, to wrap *around* `SessionMiddleware` (prefer [`around`](Self::around),
    /// which cannot be misordered).
    pub fn new() -> Self {
        Self
    }
}

impl<S, B> Transform<S, ServiceRequest> for StoreFailures
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = StoreFailuresService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(StoreFailuresService {
            service: Rc::new(service),
            rotation: None,
        }))
    }
}

/// The service [`StoreFailures`] wraps around the session middleware (an implementation
/// detail, named only by `Transform`).
#[doc(hidden)]
pub struct StoreFailuresService<S> {
    pub(super) service: Rc<S>,
    pub(super) rotation: Option<super::rotation::Rotation>,
}

impl<S, B> Service<ServiceRequest> for StoreFailuresService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        if let Some(rotation) = &self.rotation {
            let (keys, name) = &**rotation;
            super::rotation::rotate_request_cookie(&mut req, name, keys);
        }
        let service = Rc::clone(&self.service);
        // The request goes down the chain and must not be cloned (routing needs it unshared);
        // keep its `Accept` values (cheap clones) and read them only if the store failed.
        let accept: Vec<HeaderValue> = req.headers().get_all(header::ACCEPT).cloned().collect();
        let request = async move {
            let result = service.call(req).await;
            let effects = AFTER_SAVE.with(|queue| std::mem::take(&mut *queue.borrow_mut()));
            let Some(failure) = FAILURE.with(|slot| slot.borrow_mut().take()) else {
                // The session is saved (or the request failed on its own): the effects run
                // only with a response the app made, before it is sent.
                if result.is_ok() {
                    for effect in effects {
                        effect.await;
                    }
                }
                return result.map(|mut res| {
                    super::raw_cookie::unescape_session_cookies(res.headers_mut());
                    res.map_into_left_body()
                });
            };
            if !effects.is_empty() {
                tracing::warn!(
                    "a sign-in's session could not be saved: its after-save effects did not run"
                );
            }
            let html = crate::respond::accepts_html(&accept);
            match result {
                Ok(res) => Ok(res
                    .into_response(failure.response(html))
                    .map_into_right_body()),
                // The session middleware gave up on the request: answer through the error.
                Err(_) => Err(StoreUnavailable { html, ..failure }.into()),
            }
        };
        Box::pin(FAILURE.scope(
            RefCell::new(None),
            AFTER_SAVE.scope(
                RefCell::new(Vec::new()),
                IN_COOKIE.scope(
                    Cell::new(false),
                    WAITED.scope(Cell::new(Duration::ZERO), request),
                ),
            ),
        ))
    }
}
