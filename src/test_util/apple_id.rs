//! Sign in with Apple in apps' tests: an in-process stand-in for Apple ID and a whole login
//! driven as a browser would, under `actix_web::test::init_service` (no port, no network).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::body::MessageBody;
use actix_web::cookie::Cookie;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::{Digest, Sha256};

use super::{AppRequest, TestLogin};
use crate::developer_token::SigningKey;

const KID: &str = "stand-in";

/// An in-process stand-in for Apple ID: `AppleIdConfig::stand_in(&stand_in)` answers the
/// token endpoint (codes from [`log_in_with_apple_id`], and the refresh grant), the keys and
/// `/auth/revoke` in process. Its `id_token`s are ES256, signed with a key of its own, and
/// carry the login's `nonce`; the `sub` of an Apple ID is [`sub_for`](Self::sub_for) its email.
/// It does not check the client secret (the sandbox does).
///
/// ```
/// use actix_apple_music::test_util::{self, AppleIdStandIn};
/// use actix_apple_music::{AppleIdConfig, AppleIdStrategy, Authenticator};
/// use actix_apple_music::developer_token::SigningKey;
/// use actix_session::{storage::CookieSessionStore, SessionMiddleware};
/// use actix_web::{cookie::Key, test, App};
///
/// # #[actix_web::main] async fn main() {
/// let stand_in = AppleIdStandIn::new();
/// let config = AppleIdConfig::new("com.example.web", "http://localhost/auth/apple/callback",
///     "TEAMID1234", "KEYID56789", SigningKey::generate()).stand_in(&stand_in);
/// let auth = Authenticator::new(AppleIdStrategy::new(config).unwrap());
/// let app = test::init_service(
///     App::new()
///         .wrap(SessionMiddleware::builder(CookieSessionStore::default(), Key::generate())
///             .cookie_secure(false).build())
///         .configure(auth.mount("/auth/apple")),
/// )
/// .await;
/// let login = test_util::log_in_with_apple_id(&app, "/auth/apple", &stand_in, "ada@example.com", None).await;
/// assert_eq!(login.status, actix_web::http::StatusCode::SEE_OTHER);
/// # }
/// ```
#[derive(Clone)]
pub struct AppleIdStandIn {
    inner: Arc<State>,
}

struct State {
    key: SigningKey,
    jwk: serde_json::Value,
    /// code → (nonce, email)
    codes: Mutex<HashMap<String, (String, String)>>,
    /// refresh token → (sub, still valid)
    refresh: Mutex<HashMap<String, (String, bool)>>,
}

impl std::fmt::Debug for AppleIdStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleIdStandIn").finish_non_exhaustive()
    }
}

impl Default for AppleIdStandIn {
    fn default() -> Self {
        Self::new()
    }
}

fn random() -> String {
    oauth2::CsrfToken::new_random().secret().clone()
}

impl AppleIdStandIn {
    /// A stand-in with a fresh signing key.
    pub fn new() -> Self {
        let key = SigningKey::generate();
        use p256::pkcs8::DecodePublicKey;
        let public = p256::PublicKey::from_public_key_pem(key.public_key_pem())
            .expect("a generated key has a public key");
        let point = public.to_encoded_point(false);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": KID,
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("uncompressed")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("uncompressed")),
        });
        Self {
            inner: Arc::new(State {
                key,
                jwk,
                codes: Mutex::new(HashMap::new()),
                refresh: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The `sub` the stand-in gives the Apple ID `email`: the same every time.
    pub fn sub_for(email: &str) -> String {
        let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
        let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
        format!("stand-in.{hex}")
    }

    /// Whether `refresh_token` was revoked (at `/auth/revoke`).
    pub fn is_revoked(&self, refresh_token: &str) -> bool {
        self.inner
            .refresh
            .lock()
            .unwrap()
            .get(refresh_token)
            .is_some_and(|(_, valid)| !valid)
    }

    /// Hands out a code for the login whose `nonce` is given, for `email`.
    fn code_for(&self, nonce: &str, email: &str) -> String {
        let code = random();
        self.inner
            .codes
            .lock()
            .unwrap()
            .insert(code.clone(), (nonce.to_owned(), email.to_owned()));
        code
    }

    fn answer(&self, request: &oauth2::HttpRequest) -> oauth2::HttpResponse {
        let path = request.uri().path().to_owned();
        let json = |status: u16, body: serde_json::Value| {
            oauth2::http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(body.to_string().into_bytes())
                .expect("a valid answer")
        };
        let form: HashMap<String, String> = url::form_urlencoded::parse(request.body())
            .into_owned()
            .collect();
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        if path.ends_with("/auth/keys") {
            return json(200, serde_json::json!({"keys": [self.inner.jwk]}));
        }
        if path.ends_with("/auth/revoke") {
            if let Some((_, valid)) = self.inner.refresh.lock().unwrap().get_mut(&field("token")) {
                *valid = false;
            }
            return json(200, serde_json::json!({}));
        }
        if !path.ends_with("/auth/token") {
            return json(404, serde_json::json!({"error": "not_found"}));
        }
        let issuer = request
            .uri()
            .to_string()
            .trim_end_matches("/auth/token")
            .to_owned();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (sub, nonce, email) = match field("grant_type").as_str() {
            "authorization_code" => match self.inner.codes.lock().unwrap().remove(&field("code")) {
                Some((nonce, email)) => (Self::sub_for(&email), Some(nonce), Some(email)),
                None => return json(400, serde_json::json!({"error": "invalid_grant"})),
            },
            "refresh_token" => match self
                .inner
                .refresh
                .lock()
                .unwrap()
                .get(&field("refresh_token"))
            {
                Some((sub, true)) => (sub.clone(), None, None),
                _ => return json(400, serde_json::json!({"error": "invalid_grant"})),
            },
            _ => return json(400, serde_json::json!({"error": "unsupported_grant_type"})),
        };
        let mut claims = serde_json::json!({
            "iss": issuer, "aud": field("client_id"), "sub": sub, "iat": now, "exp": now + 600,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        if let Some(email) = &email {
            claims["email"] = email.clone().into();
            claims["email_verified"] = "true".into();
            claims["is_private_email"] = "false".into();
        }
        let header = jsonwebtoken::Header {
            kid: Some(KID.into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256)
        };
        let Ok(id_token) = jsonwebtoken::encode(&header, &claims, &self.inner.key.encoding) else {
            return json(500, serde_json::json!({"error": "server_error"}));
        };
        let mut answer = serde_json::json!({
            "access_token": random(), "token_type": "Bearer", "expires_in": 3600,
            "id_token": id_token,
        });
        if email.is_some() {
            let refresh = format!("stand-in.refresh.{}", random());
            self.inner
                .refresh
                .lock()
                .unwrap()
                .insert(refresh.clone(), (sub, true));
            answer["refresh_token"] = refresh.into();
        }
        json(200, answer)
    }
}

/// Drives a whole Sign in with Apple login under `actix_web::test`, as a browser would: `GET
/// {prefix}/login` (with `cookie`, the browser's session so far), then Apple's answer posted
/// to the callback (already relayed to our origin) with a code of `stand_in` for `email`. The
/// strategy must use the stand-in (`AppleIdConfig::stand_in`).
pub async fn log_in_with_apple_id(
    app: &impl Service<
        AppRequest,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    prefix: &str,
    stand_in: &AppleIdStandIn,
    email: &str,
    cookie: Option<Cookie<'static>>,
) -> TestLogin {
    let prefix = prefix.trim_end_matches('/');
    let mut page = test::TestRequest::get().uri(&format!("{prefix}/login"));
    if let Some(cookie) = &cookie {
        page = page.cookie(cookie.clone());
    }
    let resp = test::call_service(app, page.to_request()).await;
    let location = resp
        .headers()
        .get(actix_web::http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok())
        .expect("the login answers a redirect to Apple");
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    let cookie = resp
        .response()
        .cookies()
        .next()
        .map(|c| c.into_owned())
        .or(cookie)
        .expect("the login page sets a session");
    let code = stand_in.code_for(query.get("nonce").map_or("", String::as_str), email);
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", query.get("state").map_or("", String::as_str))
        .append_pair("relayed", "1")
        .finish();
    let callback = test::TestRequest::post()
        .uri(&format!("{prefix}/callback"))
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .insert_header(("accept", "application/json"))
        .cookie(cookie.clone())
        .set_payload(form)
        .to_request();
    let resp = test::call_service(app, callback).await;
    let status = resp.status();
    let location = resp
        .headers()
        .get(actix_web::http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cookie = resp
        .response()
        .cookies()
        .next()
        .map(|c| c.into_owned())
        .unwrap_or(cookie);
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap_or_default();
    TestLogin {
        status,
        location,
        cookie,
        body,
    }
}

/// The stand-in answers in process: an [`HttpClient`](crate::http::HttpClient) like any other.
impl crate::http::HttpClient for AppleIdStandIn {
    fn send(
        &self,
        request: crate::http::HttpRequest,
        _: crate::http::Limits,
    ) -> futures_util::future::LocalBoxFuture<
        '_,
        Result<crate::http::HttpResponse, crate::http::HttpError>,
    > {
        let answer = self.answer(&request);
        Box::pin(std::future::ready(Ok(answer)))
    }
}
