//! One middleware for sessions over a [`LifetimeStore`] with their failures answered.

use std::fmt;
use std::rc::Rc;

use actix_session::storage::SessionStore;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use futures_util::future::LocalBoxFuture;

use super::failures::{StoreFailures, StoreFailuresService};
use super::lifetime::LifetimeStore;
use super::rotation::{Rotation, SessionKeys, TouchRotated};

impl StoreFailures {
    /// `session` with store failures answered: one middleware for `App::wrap`, in the right
    /// order by construction, and only for a `SessionMiddleware` over a [`LifetimeStore`]
    /// (whose failures it can see).
    ///
    /// ```no_run
    /// # use actix_apple_music::session_store::{LifetimeStore, StoreFailures};
    /// # use actix_session::{storage::CookieSessionStore, SessionMiddleware};
    /// # let key = actix_web::cookie::Key::generate();
    /// let store = LifetimeStore::new(CookieSessionStore::default());
    /// let app = actix_web::App::new()
    ///     .wrap(StoreFailures::around(SessionMiddleware::new(store, key)));
    /// ```
    pub fn around<St: SessionStore + 'static>(
        session: actix_session::SessionMiddleware<LifetimeStore<St>>,
    ) -> SessionStack<St> {
        SessionStack {
            session,
            rotation: None,
        }
    }
}

/// `SessionMiddleware` over a [`LifetimeStore`] with [`StoreFailures`] around it, as one
/// middleware; made by [`StoreFailures::around`].
pub struct SessionStack<St: SessionStore> {
    session: actix_session::SessionMiddleware<LifetimeStore<St>>,
    rotation: Option<Rotation>,
}

impl<St: SessionStore> SessionStack<St> {
    /// Rotates the session key without signing anyone out: a session cookie named
    /// `cookie_name` that only a previous key of `keys` opens is read as if written under the
    /// current one, and written again under it in that request's answer. Build the session
    /// middleware with `keys.current()`. See [`SessionKeys`] for the steps.
    ///
    /// ```
    /// use actix_apple_music::session_store::{
    ///     secure_sessions, CompactCookieStore, LifetimeStore, SessionKeys, StoreFailures, HOST_COOKIE_NAME,
    /// };
    /// use actix_web::cookie::Key;
    ///
    /// let (new, old) = (Key::generate(), Key::generate());
    /// let keys = SessionKeys::new(new).previous([old]);
    /// let sessions = StoreFailures::around(
    ///     secure_sessions(LifetimeStore::new(CompactCookieStore::new()), keys.current().clone()).build(),
    /// )
    /// .rotating(keys, HOST_COOKIE_NAME);
    /// let app = actix_web::App::new().wrap(sessions);
    /// # drop(app);
    /// ```
    pub fn rotating(mut self, keys: SessionKeys, cookie_name: &str) -> Self {
        self.rotation = Some(std::sync::Arc::new((keys, cookie_name.to_owned())));
        self
    }
}

impl<St: SessionStore> fmt::Debug for SessionStack<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStack").finish_non_exhaustive()
    }
}

impl<S, B, St> Transform<S, ServiceRequest> for SessionStack<St>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    St: SessionStore + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = StoreFailuresService<
        <actix_session::SessionMiddleware<LifetimeStore<St>> as Transform<
            TouchRotated<S>,
            ServiceRequest,
        >>::Transform,
    >;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let inner = self.session.new_transform(TouchRotated {
            service: Rc::new(service),
        });
        let rotation = self.rotation.clone();
        Box::pin(async move {
            Ok(StoreFailuresService {
                service: Rc::new(inner.await?),
                rotation,
            })
        })
    }
}
