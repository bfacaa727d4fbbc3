//! Rotating the session key without signing anyone out: cookies (and sealed store values)
//! written under a previous key are still read, and written again under the current one.

use std::rc::Rc;

use actix_session::SessionExt;
use actix_web::cookie::{Cookie, CookieJar, Key};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::HttpMessage as _;

/// The current session key and the previous ones still accepted, for rotating the key
/// without signing anyone out:
///
/// 1. start every instance with the new key as current and the old one as previous
///    ([`SessionStack::rotating`](super::SessionStack::rotating) for cookies,
///    [`redis_with_keys`](super::redis_with_keys) or [`LifetimeStore::sealed_with`](super::LifetimeStore::sealed_with) for sealed values);
/// 2. each session is read under the old key and written again under the new one at its next
///    request;
/// 3. once the old key's sessions have all been seen or have ended (the session TTL), drop it.
///
/// A session not seen during the rotation is signed out cleanly when the old key goes (a
/// cookie that does not open counts as no session).
#[derive(Clone)]
pub struct SessionKeys {
    pub(crate) current: Key,
    pub(crate) previous: Vec<Key>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Only `current`.
    pub fn new(current: Key) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Also accepts cookies and sealed values written under `previous` (keys being rotated
    /// out, newest first).
    pub fn previous(mut self, previous: impl IntoIterator<Item = Key>) -> Self {
        self.previous.extend(previous);
        self
    }

    /// The current key.
    pub fn current(&self) -> &Key {
        &self.current
    }
}

/// The keys and the session cookie's name, for a rotation.
pub(super) type Rotation = std::sync::Arc<(SessionKeys, String)>;

/// Marks a request whose session cookie was written under a previous key.
#[derive(Clone, Copy)]
pub(crate) struct RotatedCookie;

/// Re-encrypts the request's session cookie `name` under the current key when only a previous
/// key opens it; `true` when it did.
pub(crate) fn rotate_request_cookie(
    req: &mut ServiceRequest,
    name: &str,
    keys: &SessionKeys,
) -> bool {
    if keys.previous.is_empty() {
        return false;
    }
    // Read from the header itself: `req.cookie` would cache the parsed cookies, and the
    // session middleware would then read that old copy instead of the rewritten header.
    let value = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        });
    let Some(value) = value else {
        return false;
    };
    let opens = |key: &Key| {
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(name.to_owned(), value.clone()));
        jar.private(key).get(name).map(|c| c.value().to_owned())
    };
    if opens(&keys.current).is_some() {
        return false;
    }
    let Some(plain) = keys.previous.iter().find_map(opens) else {
        return false;
    };
    let mut jar = CookieJar::new();
    jar.private_mut(&keys.current)
        .add(Cookie::new(name.to_owned(), plain));
    let Some(sealed) = jar.get(name).map(|c| c.value().to_owned()) else {
        return false;
    };
    // The Cookie header again, with this one cookie's value replaced.
    let rebuilt: Vec<String> = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((n, _)) if n == name => format!("{name}={sealed}"),
            _ => pair.to_owned(),
        })
        .collect();
    let Ok(value) = HeaderValue::from_str(&rebuilt.join("; ")) else {
        return false;
    };
    let headers = req.headers_mut();
    headers.remove(header::COOKIE);
    headers.insert(header::COOKIE, value);
    req.extensions_mut().insert(RotatedCookie);
    true
}

/// Marks the session of a request whose cookie came under a previous key as changed, so that
/// the session middleware writes it again, under the current key.
pub struct TouchRotated<S> {
    pub(super) service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for TouchRotated<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = S::Future;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if req.extensions().get::<RotatedCookie>().is_some() {
            crate::session_records::force_rewrite(&req.get_session());
        }
        self.service.call(req)
    }
}
