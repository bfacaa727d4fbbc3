//! The answers of an [`Authenticator`]: success, failure, and the same-origin check; and
//! reading a callback's body.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::authenticator::{Authenticator, SignedInAt};
use super::error::{FlowError, SignInError, StrategyError};
use super::params::{read_body, BodyKind, CallbackParams};
use super::Strategy;
use crate::respond;

impl<S: Strategy> Authenticator<S> {
    /// The default answer to a finished sign-in: `303` to where it should go, or the failure
    /// answer.
    pub fn respond(
        &self,
        req: &HttpRequest,
        result: Result<SignedInAt<S::Identity>, SignInError<S::Error>>,
    ) -> HttpResponse {
        match result {
            Ok(done) => respond::see_other(&done.location),
            Err(error) => self.failure_response(req, &error),
        }
    }

    /// Reads a callback's form body (`application/x-www-form-urlencoded`, at most
    /// [`MAX_CALLBACK_BYTES`](crate::MAX_CALLBACK_BYTES), within the body timeout).
    pub async fn read_form(
        &self,
        req: &HttpRequest,
        body: web::Payload,
    ) -> Result<CallbackParams, FlowError> {
        let bytes = read_body(req, body, BodyKind::Form, self.options.body_timeout).await?;
        CallbackParams::parse(&bytes)
    }

    /// Reads a form or JSON body (the caller parses it), with the same limits.
    pub(crate) async fn read_form_or_json(
        &self,
        req: &HttpRequest,
        body: web::Payload,
    ) -> Result<web::BytesMut, FlowError> {
        read_body(req, body, BodyKind::FormOrJson, self.options.body_timeout).await
    }

    /// The answer to a failed sign-in for this request: the app's failure handler, or a
    /// redirect to the failure target for browsers, or an HTML page or JSON by `Accept`.
    pub fn failure_response(
        &self,
        req: &HttpRequest,
        error: &SignInError<S::Error>,
    ) -> HttpResponse {
        crate::audit::emit(crate::audit::AuditEvent::SignInFailed {
            strategy: self.strategy.name().to_owned(),
            family: error.kind().as_str(),
            reason: error.reason().to_owned(),
        });
        if let Some(handler) = &self.failure_handler {
            return handler(req, error);
        }
        if let (Some(target), true) = (&self.options.failure_target, respond::wants_html(req)) {
            let sep = if target.contains('?') { '&' } else { '?' };
            return respond::see_other(&format!(
                "{target}{sep}error={}&reason={}",
                error.kind().as_str(),
                error.reason()
            ));
        }
        respond::failure(req, error, self.login_path())
    }

    /// Whether the request's `Origin`, when present, is the app's own: the configured
    /// public origin when there is one, else the request's scheme and `Host` (forwarded
    /// headers only when the app trusts them). Routes that change the session on a POST
    /// check it.
    pub fn is_same_origin(&self, req: &HttpRequest) -> bool {
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        match &self.options.public_origin {
            Some(public) => origin == public.trim_end_matches('/'),
            None => {
                Some(origin) == own_origin(req, self.options.trust_forwarded_headers).as_deref()
            }
        }
    }
}

/// The request's own origin: its scheme (TLS or not) and `Host`; with `trust_forwarded`, what
/// `Forwarded` / `X-Forwarded-*` say instead (actix's `ConnectionInfo`).
fn own_origin(req: &HttpRequest, trust_forwarded: bool) -> Option<String> {
    if trust_forwarded {
        let info = req.connection_info();
        return Some(format!("{}://{}", info.scheme(), info.host()));
    }
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = match req.headers().get(header::HOST) {
        Some(host) => host.to_str().ok()?.to_owned(),
        None => req.uri().authority()?.as_str().to_owned(),
    };
    Some(format!("{scheme}://{host}"))
}
