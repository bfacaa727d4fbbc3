//! A local stand-in for Apple ID (Sign in with Apple): the authorize page, the token endpoint
//! and the keys, under `/sandbox/apple-id`, so the demo and tests sign in with no Apple account.
//!
//! The authorize page posts to the app's own redirect URL only. The token endpoint checks the
//! client secret against the mounted strategy's signer (ES256, the app's key), answers an
//! `id_token` signed with a throwaway ES256 key of the sandbox (its JWKS at `/auth/keys`) that
//! carries the login's `nonce`, and a code works once. The `sub` is derived from the Apple ID
//! typed on the page, so the same "user" gets the same `sub` every time.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::{Digest, Sha256};

use crate::developer_token::SigningKey;
use crate::respond::PageTemplate;
use crate::strategy::Authenticator;
use crate::{AppleIdConfig, AppleIdStrategy};

/// Where the sandbox's Apple ID lives: its issuer is `{base_url}/sandbox/apple-id`.
pub const APPLE_ID_PATH: &str = "/sandbox/apple-id";
/// The sandbox's Services ID.
pub const APPLE_ID_CLIENT_ID: &str = "com.example.sandbox";
const KID: &str = "sandbox-apple-id";

/// The sandbox signing key and its JWK.
fn provider_key() -> &'static (SigningKey, serde_json::Value) {
    static KEY: OnceLock<(SigningKey, serde_json::Value)> = OnceLock::new();
    KEY.get_or_init(|| {
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
        (key, jwk)
    })
}

/// Refresh tokens handed out: token → (`sub`, still valid).
fn refresh_tokens() -> &'static Mutex<HashMap<String, (String, bool)>> {
    static TOKENS: OnceLock<Mutex<HashMap<String, (String, bool)>>> = OnceLock::new();
    TOKENS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The `sub` the sandbox gives the Apple ID `email`: the same every time.
pub fn sandbox_sub(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    format!(
        "sandbox.{}",
        digest[..10]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Codes handed out and not yet used: code → nonce.
fn codes() -> &'static Mutex<HashMap<String, String>> {
    static CODES: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    CODES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A Sign in with Apple config for the sandbox: a throwaway key, the sandbox's team, key and
/// Services ID, issuer `{base_url}/sandbox/apple-id`, returning to
/// `{base_url}/auth/apple/callback`.
pub fn apple_id_config(base_url: &str) -> AppleIdConfig {
    let base = base_url.trim_end_matches('/');
    AppleIdConfig::new(
        APPLE_ID_CLIENT_ID,
        format!("{base}/auth/apple/callback"),
        super::TEAM_ID,
        super::KEY_ID,
        SigningKey::generate(),
    )
    .issuer(format!("{base}{APPLE_ID_PATH}"))
}

/// Adds `GET /sandbox/apple-id/auth/authorize`, `POST …/auth/token` (codes and the refresh
/// grant), `GET …/auth/keys`, `POST …/auth/revoke`, and the Apple ID's own page,
/// `GET …/account`, whose buttons send Apple's notifications to the app
/// (`POST …/account/notify`).
pub fn apple_id_routes(cfg: &mut web::ServiceConfig) {
    let template = web::Data::new(SandboxPage(PageTemplate::new(
        include_str!("apple_id.html"),
        &crate::respond::with_post_form(include_str!("apple_id.js")),
    )));
    cfg.service(
        web::scope(APPLE_ID_PATH)
            .app_data(template)
            .route("/auth/authorize", web::get().to(authorize))
            .route("/auth/token", web::post().to(token))
            .route("/auth/keys", web::get().to(keys))
            .route("/auth/revoke", web::post().to(revoke))
            .route("/account", web::get().to(account_page))
            .route("/account/notify", web::post().to(notify)),
    );
}

struct SandboxPage(PageTemplate);

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PageData {
    client_id: String,
    redirect_uri: Option<String>,
    state: String,
    code_prefix: String,
}

type AppleId = Authenticator<AppleIdStrategy>;

async fn authorize(
    req: HttpRequest,
    page: web::Data<SandboxPage>,
    auth: Option<web::Data<AppleId>>,
) -> HttpResponse {
    let query: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    let expected = auth
        .as_ref()
        .map(|a| a.strategy().config().redirect_url.clone());
    // Only the app's own registered redirect URL gets an answer, as with Apple.
    let redirect_ok = expected.as_deref() == Some(get("redirect_uri").as_str())
        && get("client_id") == APPLE_ID_CLIENT_ID
        && get("response_mode") == "form_post"
        && !get("state").is_empty();
    let code = oauth2::CsrfToken::new_random().secret().clone();
    if redirect_ok {
        let mut codes = codes().lock().unwrap();
        // Pages opened and never answered leave codes behind: keep the table bounded.
        if codes.len() >= 10_000 {
            codes.clear();
        }
        codes.insert(code.clone(), get("nonce"));
    }
    let data = PageData {
        client_id: get("client_id"),
        redirect_uri: redirect_ok.then(|| get("redirect_uri")),
        state: get("state"),
        code_prefix: code,
    };
    let mut response = page.0.respond(&data, "", "");
    if !redirect_ok {
        // The page itself says so; no answer will be posted anywhere.
        *response.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
    }
    response
}

async fn token(
    body: web::Form<Vec<(String, String)>>,
    auth: Option<web::Data<AppleId>>,
) -> HttpResponse {
    let field = |name: &str| {
        body.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let error = |e: &str| HttpResponse::BadRequest().json(serde_json::json!({"error": e}));
    let Some(auth) = auth else {
        return error("invalid_client");
    };
    let strategy = auth.strategy();
    let secret_ok = strategy
        .client_secret_signer()
        .is_some_and(|signer| signer.verify(field("client_secret")).is_ok());
    if !secret_ok || field("client_id") != APPLE_ID_CLIENT_ID {
        return error("invalid_client");
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if field("grant_type") == "refresh_token" {
        let sub = match refresh_tokens().lock().unwrap().get(field("refresh_token")) {
            Some((sub, true)) => sub.clone(),
            _ => return error("invalid_grant"),
        };
        let claims = serde_json::json!({
            "iss": strategy.config().issuer_url(), "aud": APPLE_ID_CLIENT_ID, "sub": sub,
            "iat": now, "exp": now + 600,
        });
        return match sign(&claims) {
            Some(id_token) => HttpResponse::Ok().json(serde_json::json!({
                "access_token": oauth2::CsrfToken::new_random().secret(),
                "token_type": "Bearer", "expires_in": 3600, "id_token": id_token,
            })),
            None => HttpResponse::InternalServerError().finish(),
        };
    }
    if field("grant_type") != "authorization_code" {
        return error("unsupported_grant_type");
    }
    // code = <handed-out code>.<base64 of the Apple ID typed on the page>
    let (handed, email) = field("code").split_once('.').unwrap_or_default();
    let Some(nonce) = codes().lock().unwrap().remove(handed) else {
        return error("invalid_grant");
    };
    let email = STANDARD_NO_PAD
        .decode(email.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| "sandbox-user@example.com".into());
    let sub = sandbox_sub(&email);
    let claims = serde_json::json!({
        "iss": strategy.config().issuer, "aud": APPLE_ID_CLIENT_ID, "sub": sub,
        "iat": now, "exp": now + 600, "nonce": nonce, "email": email,
        "email_verified": "true", "is_private_email": "false", "real_user_status": 2,
        "auth_time": now,
    });
    let Some(id_token) = sign(&claims) else {
        return HttpResponse::InternalServerError().finish();
    };
    let refresh = format!(
        "sandbox.refresh.{}",
        oauth2::CsrfToken::new_random().secret()
    );
    {
        let mut tokens = refresh_tokens().lock().unwrap();
        if tokens.len() >= 10_000 {
            tokens.clear();
        }
        tokens.insert(refresh.clone(), (sub, true));
    }
    HttpResponse::Ok().json(serde_json::json!({
        "access_token": oauth2::CsrfToken::new_random().secret(),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": refresh,
        "id_token": id_token,
    }))
}

/// `claims` signed with the sandbox's key (ES256, its `kid`).
fn sign(claims: &serde_json::Value) -> Option<String> {
    let (key, _) = provider_key();
    let header = jsonwebtoken::Header {
        kid: Some(KID.into()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256)
    };
    jsonwebtoken::encode(&header, claims, &key.encoding).ok()
}

/// Revokes every refresh token of `sub` (what stopping to use Sign in with Apple does).
fn revoke_all_of(sub: &str) {
    for (token_sub, valid) in refresh_tokens().lock().unwrap().values_mut() {
        if token_sub == sub {
            *valid = false;
        }
    }
}

/// `POST …/auth/revoke`: the client checked as at the token endpoint; `200` with an empty
/// body for any token (known or not), as Apple answers.
async fn revoke(
    body: web::Form<Vec<(String, String)>>,
    auth: Option<web::Data<AppleId>>,
) -> HttpResponse {
    let field = |name: &str| {
        body.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let secret_ok = auth.as_ref().is_some_and(|auth| {
        auth.strategy()
            .client_secret_signer()
            .is_some_and(|signer| signer.verify(field("client_secret")).is_ok())
    });
    if !secret_ok || field("client_id") != APPLE_ID_CLIENT_ID {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": "invalid_client"}));
    }
    if field("token").is_empty() {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": "invalid_request"}));
    }
    if let Some((_, valid)) = refresh_tokens().lock().unwrap().get_mut(field("token")) {
        *valid = false;
    }
    HttpResponse::Ok().finish()
}

async fn keys() -> HttpResponse {
    let (_, jwk) = provider_key();
    HttpResponse::Ok().json(serde_json::json!({"keys": [jwk]}))
}

// The person's Apple ID page: what a person does at Apple (stop using Sign in with Apple with
// the app, delete their Apple ID, switch the email relay off or on), sent to the app as the
// signed server-to-server notification Apple would send.

const TYPES: [&str; 4] = [
    "consent-revoked",
    "account-delete",
    "email-disabled",
    "email-enabled",
];

#[derive(serde::Serialize)]
struct AccountPageData {
    sent: Option<String>,
    email: Option<String>,
    answer: Option<String>,
}

/// `GET /sandbox/apple-id/account[?sent=…&email=…&answer=…]`.
async fn account_page(req: HttpRequest) -> HttpResponse {
    let query: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let template = PageTemplate::new(
        include_str!("apple_id_account.html"),
        include_str!("apple_id_account.js"),
    );
    template.respond(
        &AccountPageData {
            sent: query.get("sent").cloned(),
            email: query.get("email").cloned(),
            answer: query.get("answer").cloned(),
        },
        "",
        "",
    )
}

/// `POST /sandbox/apple-id/account/notify` (form `email`, `type`): revokes the person's
/// sandbox refresh tokens when they stop using the app or delete their Apple ID, then posts
/// the notification to `{the app's origin}{prefix}/notifications`, as Apple does. Answers a
/// browser with `303` back to the page, anyone else with JSON.
async fn notify(
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
    auth: Option<web::Data<AppleId>>,
) -> HttpResponse {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let Some(auth) = auth else {
        return HttpResponse::InternalServerError().body("mount Sign in with Apple first");
    };
    if !auth.is_same_origin(&req) {
        return HttpResponse::Forbidden().json(serde_json::json!({"error": "forbidden"}));
    }
    let (email, kind) = (field("email"), field("type"));
    if email.is_empty() || !TYPES.contains(&kind.as_str()) {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": "invalid_request"}));
    }
    let sub = sandbox_sub(&email);
    if matches!(kind.as_str(), "consent-revoked" | "account-delete") {
        revoke_all_of(&sub);
    }
    let now = time::OffsetDateTime::now_utc();
    let mut event = serde_json::json!({
        "type": kind, "sub": sub, "event_time": crate::accounts::millis(now),
    });
    if kind.starts_with("email-") {
        event["email"] = email.clone().into();
        event["is_private_email"] = "true".into();
    }
    let claims = serde_json::json!({
        "iss": auth.strategy().config().issuer_url(), "aud": APPLE_ID_CLIENT_ID,
        "iat": now.unix_timestamp(), "jti": oauth2::CsrfToken::new_random().secret(),
        "events": event.to_string(),
    });
    let Some(payload) = sign(&claims) else {
        return HttpResponse::InternalServerError().finish();
    };
    let target = url::Url::parse(auth.strategy().config().redirect_url())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let url = format!("{target}{}/notifications", auth.prefix());
    crate::http::install_tls_provider();
    let answer = awc::Client::builder()
        .disable_redirects()
        .timeout(std::time::Duration::from_secs(5))
        .finish()
        .post(&url)
        .send_json(&serde_json::json!({ "payload": payload }))
        .await
        .map(|r| r.status().as_u16().to_string())
        .unwrap_or_else(|e| format!("nothing ({e})"));
    if crate::respond::wants_html(&req) {
        let back = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("sent", &kind)
            .append_pair("email", &email)
            .append_pair("answer", &answer)
            .finish();
        return crate::respond::see_other(&format!("{}/account?{back}", APPLE_ID_PATH));
    }
    HttpResponse::Ok().json(serde_json::json!({"sent": kind, "sub": sub, "app_answered": answer}))
}
