//! The session cookie as the crate recommends it: `__Host-id`, `Secure`, `Path=/`, no
//! `Domain`, `HttpOnly`, `SameSite=Lax`, private (encrypted).

use actix_session::config::{CookieContentSecurity, SessionMiddlewareBuilder};
use actix_session::storage::SessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};

/// The session cookie's name with [`secure_sessions`]: the `__Host-` prefix makes browsers
/// accept it only with `Secure`, `Path=/` and no `Domain`, so a page of the same site (another
/// port of the host, a sibling subdomain, a plain-HTTP injection) cannot plant one on a deeper
/// path that the server would read first, nor for the whole domain.
pub const HOST_COOKIE_NAME: &str = "__Host-id";

/// actix-session's middleware builder, set up as the crate recommends: the cookie is
/// [`HOST_COOKIE_NAME`], `Secure`, `Path=/`, without `Domain`, `HttpOnly`, `SameSite=Lax`, and
/// private (encrypted with `key`). Browsers keep `Secure` cookies on `https://` and on
/// `http://localhost` / `http://127.0.0.1`; for other plain-HTTP development use
/// [`plain_http_sessions`].
///
/// ```
/// use actix_apple_music::session_store::{secure_sessions, CompactCookieStore, LifetimeStore, StoreFailures};
/// use actix_web::cookie::Key;
///
/// let key = Key::generate();
/// let app = actix_web::App::new().wrap(StoreFailures::around(
///     secure_sessions(LifetimeStore::new(CompactCookieStore::new()), key).build(),
/// ));
/// # drop(app);
/// ```
pub fn secure_sessions<S: SessionStore>(store: S, key: Key) -> SessionMiddlewareBuilder<S> {
    SessionMiddleware::builder(store, key)
        .cookie_name(HOST_COOKIE_NAME.to_owned())
        .cookie_secure(true)
        .cookie_path("/".to_owned())
        .cookie_domain(None)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_content_security(CookieContentSecurity::Private)
}

/// [`secure_sessions`] for plain-HTTP development only (the demo's `INSECURE_COOKIES=1`): the
/// cookie is `id`, without `Secure` (a `__Host-` cookie must be `Secure`), so a same-site page
/// can plant a deeper-path one. Never in production.
pub fn plain_http_sessions<S: SessionStore>(store: S, key: Key) -> SessionMiddlewareBuilder<S> {
    secure_sessions(store, key)
        .cookie_name("id".to_owned())
        .cookie_secure(false)
}
