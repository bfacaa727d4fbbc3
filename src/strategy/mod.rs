//! The strategy framework: PassportJS-style, provider-neutral.
//!
//! A [`Strategy`] knows how to show a login page and how to turn a callback into an
//! identity, and has its own error type. The [`Authenticator`] around it does everything
//! that is not provider-specific: it mounts `login`, `callback` and `logout` routes under a
//! prefix, keeps a single-use login state in the session, checks and spends it on the way
//! back, calls the app's sign-in hook, renews the session id, stores the identity, and
//! answers success or a typed failure. [`SignedIn`](crate::SignedIn) and
//! [`RequireSignIn`](crate::RequireSignIn) guard routes for any strategy.

mod accounts;
mod answers;
mod authenticator;
mod error;
mod keys;
mod lifetime;
mod options;
mod params;
mod routes;
mod state;

use std::future::Future;

use actix_web::{HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

pub use authenticator::{Authenticator, SignInContext, SignedInAt};
pub use error::{FailureKind, FlowError, Rejection, SignInError, StrategyError, MAX_RETRY_AFTER};
pub use options::{FlowOptions, DEFAULT_BODY_TIMEOUT, DEFAULT_SESSION_MARGIN, DEFAULT_STATE_TTL};
pub use params::{CallbackParams, MAX_CALLBACK_BYTES};
pub use state::StateProof;

/// A sign-in method: a login page and a callback that yields an identity.
pub trait Strategy: Send + Sync + Sized + 'static {
    /// What a successful sign-in yields; kept in the session.
    type Identity: Serialize + DeserializeOwned + Clone + 'static;

    /// Why the strategy refused a sign-in.
    type Error: StrategyError + std::fmt::Debug;

    /// A short name, also the namespace of its session keys (`"<name>.id"`, `"<name>.login"`,
    /// …); letters, digits and `-` (it also names the lifetime record's entry).
    fn name(&self) -> &str;

    /// The flow options an [`Authenticator`] starts with (default [`FlowOptions::default`]).
    fn default_options(&self) -> FlowOptions {
        FlowOptions::default()
    }

    /// Answers the login page for a login whose state is already stored in the session.
    fn login_page(&self, req: &HttpRequest, login: &LoginRequest<'_>) -> HttpResponse;

    /// Turns a callback whose state has been checked and spent into an identity, or the
    /// strategy's error. The callback's `error` parameter, if any, is the strategy's to read.
    fn callback(
        &self,
        req: &HttpRequest,
        params: &CallbackParams,
    ) -> impl Future<Output = Result<Self::Identity, Self::Error>>;

    /// Looks at a callback before the flow does anything with it; an answer here is sent as
    /// it is, and nothing is spent. For providers that post the callback from another site
    /// (Sign in with Apple's `form_post`), whose request carries no `SameSite=Lax` session
    /// cookie: the strategy answers a page of ours that posts the same fields again, now from
    /// our own origin, with the session. Default: `None`.
    fn before_callback(&self, req: &HttpRequest, params: &CallbackParams) -> Option<HttpResponse> {
        let _ = (req, params);
        None
    }

    /// When `identity`'s credential ends, if the strategy knows. The guard asks for a
    /// re-login from then on, and a session that holds the identity is kept until then plus
    /// the session margin; `None` (the default) leaves both to the app and the store.
    fn identity_expires_at(&self, identity: &Self::Identity) -> Option<OffsetDateTime> {
        let _ = identity;
        None
    }

    /// The provider's stable id of the person behind `identity`, if it has one (the Apple ID's
    /// `sub`; a music user token has none). It is the account a sign-in belongs to when the
    /// app names none ([`Authenticator::account`]), and it is linked to the account either
    /// way, so that the provider's notifications about that person reach it
    /// ([`Accounts::sign_out_subject`](crate::accounts::Accounts::sign_out_subject)). Default:
    /// `None`.
    fn subject(&self, identity: &Self::Identity) -> Option<String> {
        let _ = identity;
        None
    }

    /// Adds strategy-specific routes to the mounted scope (e.g. a return page). Their
    /// handlers find the authenticator as `web::Data<Authenticator<Self>>` and finish a
    /// sign-in with [`Authenticator::finish_sign_in`].
    fn extra_routes(&self, scope: actix_web::Scope) -> actix_web::Scope {
        scope
    }
}

/// What the login page needs to know about the login it starts. (`Debug` leaves out the
/// state and the hand-back.)
#[non_exhaustive]
pub struct LoginRequest<'a> {
    /// The single-use state to send back with the callback.
    pub state: &'a str,
    /// A second secret of this login (derived from the state, so the session holds only the
    /// state), for a page that hands the result back through a URL of ours (the Apple Music `redirect` page's return URL): the callback accepts it as
    /// `handback` instead of `state`. Never put it in a page a bare navigation can load.
    pub handback: &'a str,
    /// The callback path (under the mount prefix).
    pub callback_path: &'a str,
    /// The mount prefix, e.g. `/auth/apple-music`.
    pub prefix: &'a str,
    /// `prompt=login`: ask the user again even if the browser holds a cached credential.
    pub force_dialog: bool,
}

impl std::fmt::Debug for LoginRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("state", &"…")
            .field("handback", &"…")
            .field("callback_path", &self.callback_path)
            .field("prefix", &self.prefix)
            .field("force_dialog", &self.force_dialog)
            .finish()
    }
}
