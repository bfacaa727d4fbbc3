//! The one app builder and the one stand-in server helper of the in-process tests.

use actix_apple_music::session_store::StoreFailures;
use actix_apple_music::{Authenticator, Strategy};
use actix_session::storage::SessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::Key;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App};

/// What every test app is: requests in, responses with one body type out.
pub trait TestApp:
    Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}

impl<T> TestApp for T where
    T: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}

/// An app as the docs recommend it: `auth` mounted at `prefix` under `SessionMiddleware` on
/// `store` (cookies without `Secure`, for plain-HTTP test requests; pass a `LifetimeStore`
/// for the crate's TTLs and sealing) inside `StoreFailures`, plus the test's own `routes`.
pub async fn app<St, S>(
    store: St,
    key: Key,
    auth: Authenticator<S>,
    prefix: &str,
    routes: impl FnOnce(&mut web::ServiceConfig),
) -> impl TestApp
where
    St: SessionStore + 'static,
    S: Strategy,
{
    test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::builder(store, key)
                    .cookie_secure(false)
                    .build(),
            )
            .wrap(StoreFailures::new())
            .configure(auth.mount(prefix))
            .configure(routes)
            // One body type for the tests' helpers.
            .wrap_fn(|req, srv| {
                let answer = srv.call(req);
                async move { answer.await.map(ServiceResponse::map_into_boxed_body) }
            }),
    )
    .await
}

/// Serves the apps `factory` makes (as `HttpServer::new` takes it) on a free loopback port,
/// one worker, in the test's runtime; answers the base URL, `http://127.0.0.1:<port>`.
pub fn serve<F, T, B>(factory: F) -> String
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = actix_web::HttpServer::new(factory)
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .unwrap()
        .run();
    actix_web::rt::spawn(server);
    base
}
