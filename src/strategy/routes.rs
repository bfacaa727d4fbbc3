//! The routes every strategy gets — login, callback (POST, and GET when switched on), logout —
//! and [`Authenticator::mount`], which registers them (here, beside them: the authenticator's
//! own file names none of the routes).

use actix_session::SessionExt;
use actix_web::http::header;
use actix_web::web::ServiceConfig;
use actix_web::{web, HttpRequest, HttpResponse};

use super::authenticator::Authenticator;
use super::keys::MountPaths;
use super::params::CallbackParams;
use super::state::{handback_of, safe_return_to, StateProof};
use super::{FlowError, LoginRequest, SignInError, Strategy};
use crate::accounts::Accounts;
use crate::respond;

impl<S: Strategy> Authenticator<S> {
    /// Mounts the routes under `prefix` (e.g. `/auth/apple-music`) and registers this
    /// authenticator as app data, so extractors anywhere in the app can find it. Use with
    /// [`App::configure`](actix_web::App::configure), once per worker:
    ///
    /// - `GET {prefix}/login[?return_to=/path][&prompt=login]`: the login page;
    /// - `POST {prefix}/callback` (and `GET` with
    ///   [`allow_get_callback`](super::FlowOptions::allow_get_callback)): finishes the sign-in;
    /// - `POST {prefix}/logout`: clears the session, `303` to the logout target;
    /// - whatever routes the strategy adds.
    ///
    /// # Panics
    ///
    /// If this authenticator (or a clone) was mounted at another prefix: one authenticator
    /// has one place in the app. Mount another [`Authenticator::new`] for a second one.
    /// Also if the [flow options](super::FlowOptions::check) are invalid.
    pub fn mount(&self, prefix: &str) -> impl FnOnce(&mut ServiceConfig) {
        if let Err(e) = self.options.check() {
            panic!(
                "invalid flow options for the `{}` strategy: {e}",
                self.keys.name
            );
        }
        let wanted = MountPaths::new(prefix);
        let first_mount = self.paths.get().is_none();
        let paths = self.paths.get_or_init(|| MountPaths::new(prefix));
        assert_eq!(
            paths.prefix, wanted.prefix,
            "the `{}` authenticator is mounted at {} already",
            self.keys.name, paths.prefix
        );
        let shared_accounts = self.accounts.as_ref().is_some_and(Accounts::is_shared);
        if first_mount && shared_accounts && !self.ledger.is_shared() {
            tracing::warn!(
                "the `{}` authenticator keeps accounts in a shared store (several instances) but \
                 spends login states in process: a state could be spent once per instance. Give \
                 every authenticator the shared ledger: .state_ledger(redis.ledger())",
                self.keys.name
            );
        }
        let this = self.clone();
        move |cfg: &mut ServiceConfig| {
            let data = web::Data::new(this.clone());
            let scope = web::scope(this.prefix())
                .app_data(data.clone())
                .route("/login", web::get().to(login::<S>))
                .route("/callback", web::get().to(callback_get::<S>))
                .route("/callback", web::post().to(callback_post::<S>))
                .route("/logout", web::post().to(logout::<S>));
            let scope = this.strategy.extra_routes(scope);
            if let Some(accounts) = &this.accounts {
                cfg.app_data(web::Data::new(accounts.clone()));
            }
            cfg.app_data(data).service(scope);
        }
    }
}

pub(super) async fn login<S: Strategy>(
    req: HttpRequest,
    auth: web::Data<Authenticator<S>>,
) -> HttpResponse {
    let mut return_to = None;
    let mut force_dialog = false;
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match &*name {
            "return_to" => return_to = safe_return_to(&value),
            "prompt" => force_dialog = value == "login",
            _ => {}
        }
    }
    let session = req.get_session();
    // A session marked for re-login asks the user again by itself (no `prompt=login` needed).
    force_dialog |= auth.needs_relogin(&session);
    let pending = match auth.begin_login(&session, return_to) {
        Ok(pending) => pending,
        Err(e) => return auth.failure_response(&req, &SignInError::Flow(e)),
    };
    auth.strategy().login_page(
        &req,
        &LoginRequest {
            state: &pending.state,
            handback: &handback_of(&pending.state),
            callback_path: auth.callback_path(),
            prefix: auth.prefix(),
            force_dialog,
        },
    )
}

pub(super) async fn callback_get<S: Strategy>(
    req: HttpRequest,
    auth: web::Data<Authenticator<S>>,
) -> HttpResponse {
    if !auth.flow_options().allow_get_callback {
        // Values in a URL end up in history and access logs: POST only.
        let mut builder = HttpResponse::MethodNotAllowed();
        builder.insert_header((header::ALLOW, "POST"));
        return respond::error_json(
            builder,
            "method_not_allowed",
            &[(
                "message",
                "the callback takes a POST form; GET callbacks are switched off",
            )],
        );
    }
    match CallbackParams::parse(req.query_string().as_bytes()) {
        Ok(params) => run_callback(&req, &auth, params).await,
        Err(e) => auth.failure_response(&req, &SignInError::Flow(e)),
    }
}

pub(super) async fn callback_post<S: Strategy>(
    req: HttpRequest,
    body: web::Payload,
    auth: web::Data<Authenticator<S>>,
) -> HttpResponse {
    match auth.read_form(&req, body).await {
        Ok(params) => run_callback(&req, &auth, params).await,
        Err(e) => auth.failure_response(&req, &SignInError::Flow(e)),
    }
}

async fn run_callback<S: Strategy>(
    req: &HttpRequest,
    auth: &Authenticator<S>,
    params: CallbackParams,
) -> HttpResponse {
    if let Some(answer) = auth.strategy().before_callback(req, &params) {
        return answer;
    }
    // A cookie session that could not hold the sign-in: refused before the state is spent.
    if crate::session_store::in_cookie() {
        let bytes =
            crate::session_store::cookie_bytes(&req.get_session(), params.total_len() + 256);
        if bytes > crate::session_store::MAX_COOKIE_BYTES {
            return auth.failure_response(
                req,
                &SignInError::Flow(FlowError::SessionTooLarge { bytes }),
            );
        }
    }
    let result = auth
        .finish_sign_in(req, StateProof::from_params(&params), || {
            auth.strategy().callback(req, &params)
        })
        .await;
    auth.respond(req, result)
}

pub(super) async fn logout<S: Strategy>(
    req: HttpRequest,
    auth: web::Data<Authenticator<S>>,
) -> HttpResponse {
    if !auth.is_same_origin(&req) {
        return respond::cross_origin_refused("logout");
    }
    let session = req.get_session();
    let record = Accounts::record(&session);
    if let (Some(accounts), Some(record)) = (auth.account_store(), &record) {
        accounts.unbind(record).await;
    }
    session.purge();
    crate::audit::emit(crate::audit::AuditEvent::SignedOut {
        strategy: auth.strategy().name().to_owned(),
        account: record.map(|r| r.account),
    });
    respond::see_other(&auth.flow_options().logout_target)
}
