//! One middleware for sessions over a [`LifetimeStore`] with their failures answered.

use std::fmt;
use std::rc::Rc;

use actix_session::storage::SessionStore;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use futures_util::future::LocalBoxFuture;

use super::failures::{StoreFailures, StoreFailuresService};
use super::lifetime::LifetimeStore;

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
    ) -> Sessions<St> {
        Sessions { session }
    }
}

/// `SessionMiddleware` over a [`LifetimeStore`] with [`StoreFailures`] around it, as one
/// middleware; made by [`StoreFailures::around`].
pub struct Sessions<St: SessionStore> {
    session: actix_session::SessionMiddleware<LifetimeStore<St>>,
}

impl<St: SessionStore> fmt::Debug for Sessions<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl<S, B, St> Transform<S, ServiceRequest> for Sessions<St>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    St: SessionStore + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = StoreFailuresService<
        <actix_session::SessionMiddleware<LifetimeStore<St>> as Transform<S, ServiceRequest>>::Transform,
    >;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let inner = self.session.new_transform(service);
        Box::pin(async move {
            Ok(StoreFailuresService {
                service: Rc::new(inner.await?),
            })
        })
    }
}
