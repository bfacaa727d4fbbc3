//! Sign in with Apple against the project's own stand-in for Apple ID (token and keys
//! endpoints on a loopback port, id_tokens signed here): one test per outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::{
    AppleIdConfig, AppleIdIdentity, AppleIdStrategy, Authenticator, ManualClock, SignInContext,
    SignedIn,
};
use actix_web::cookie::{Cookie, Key};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};

use crate::common::memory_store::MemoryStore;
use crate::common::{form, KEY_ID, TEAM_ID};

pub(crate) const PREFIX: &str = "/auth/apple";
pub(crate) const CLIENT_ID: &str = "com.example.web";

/// A signing key of the stand-in: its `kid`, its private key, and its public JWK.
pub(crate) struct ProviderKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    jwk: Value,
    public_pem: String,
}

impl ProviderKey {
    fn new(kid: &str) -> Self {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let point = secret.public_key().to_encoded_point(false);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        use p256::pkcs8::EncodePublicKey;
        Self {
            kid: kid.into(),
            encoding: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
            }),
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        }
    }
}

/// How the stand-in answers the next token request.
#[derive(Clone)]
pub(crate) enum Answer {
    /// An id_token with these claims, signed by the key `kid` (ES256).
    Token { claims: Value, kid: String },
    /// A raw id_token string.
    Raw(String),
    /// A token error, e.g. `invalid_grant`.
    Error(&'static str),
}

#[derive(Default)]
pub(crate) struct Provider {
    pub(crate) keys: Vec<ProviderKey>,
    published: Vec<String>,
    keys_up: bool,
    key_requests: usize,
    answers: HashMap<String, Answer>,
    secrets: Vec<String>,
    /// How `/auth/revoke` and the refresh grant answer next: status, body, `Retry-After`.
    pub(crate) revoke_answer: Option<(u16, String, Option<&'static str>)>,
    pub(crate) refresh_answer: Option<(u16, String, Option<&'static str>)>,
    /// The forms `/auth/revoke` and the refresh grant received.
    pub(crate) revoke_forms: Vec<HashMap<String, String>>,
    pub(crate) refresh_forms: Vec<HashMap<String, String>>,
}

fn canned(answer: &Option<(u16, String, Option<&'static str>)>) -> HttpResponse {
    let (status, body, retry) = answer.clone().unwrap_or((200, String::new(), None));
    let mut builder = HttpResponse::build(StatusCode::from_u16(status).unwrap());
    if let Some(retry) = retry {
        builder.insert_header((header::RETRY_AFTER, retry));
    }
    if body.is_empty() {
        builder.finish()
    } else {
        builder.content_type("application/json").body(body)
    }
}

async fn revoke(
    body: web::Form<HashMap<String, String>>,
    state: web::Data<Shared>,
) -> HttpResponse {
    let mut provider = state.lock().unwrap();
    provider.revoke_forms.push(body.into_inner());
    canned(&provider.revoke_answer)
}

pub(crate) type Shared = Arc<Mutex<Provider>>;

async fn token(body: web::Form<Vec<(String, String)>>, state: web::Data<Shared>) -> HttpResponse {
    let field = |name: &str| {
        body.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut provider = state.lock().unwrap();
    provider.secrets.push(field("client_secret"));
    if field("grant_type") == "refresh_token" {
        provider.refresh_forms.push(body.iter().cloned().collect());
        if provider.refresh_answer.is_none() {
            return HttpResponse::Ok().json(json!({
                "access_token": "at-2", "token_type": "Bearer", "expires_in": 3600,
                "id_token": "not-checked",
            }));
        }
        return canned(&provider.refresh_answer);
    }
    if field("client_id") != CLIENT_ID || field("grant_type") != "authorization_code" {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_client"}));
    }
    let Some(answer) = provider.answers.remove(&field("code")) else {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    };
    let id_token = match answer {
        Answer::Error(error) => return HttpResponse::BadRequest().json(json!({"error": error})),
        Answer::Raw(raw) => raw,
        Answer::Token { claims, kid } => {
            let key = provider.keys.iter().find(|k| k.kid == kid).unwrap();
            let header = Header {
                kid: Some(kid.clone()),
                ..Header::new(Algorithm::ES256)
            };
            jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
        }
    };
    HttpResponse::Ok().json(json!({
        "access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
        "refresh_token": "rt-secret-1", "id_token": id_token,
    }))
}

async fn keys(state: web::Data<Shared>) -> HttpResponse {
    let mut provider = state.lock().unwrap();
    provider.key_requests += 1;
    if !provider.keys_up {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let keys: Vec<Value> = provider
        .keys
        .iter()
        .filter(|k| provider.published.contains(&k.kid))
        .map(|k| k.jwk.clone())
        .collect();
    HttpResponse::Ok().json(json!({"keys": keys}))
}

pub(crate) fn start_provider() -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Provider {
        keys: vec![ProviderKey::new("k1"), ProviderKey::new("k2")],
        published: vec!["k1".into()],
        keys_up: true,
        ..Provider::default()
    }));
    let data = shared.clone();
    let base = crate::common::serve(move || {
        App::new()
            .app_data(web::Data::new(data.clone()))
            .route("/auth/token", web::post().to(token))
            .route("/auth/keys", web::get().to(keys))
            .route("/auth/revoke", web::post().to(revoke))
    });
    (base, shared)
}

pub(crate) async fn whoami(user: SignedIn<AppleIdStrategy, Value>) -> HttpResponse {
    let id = user.identity();
    HttpResponse::Ok().json(json!({
        "sub": id.sub(), "email": id.email(), "email_verified": id.email_verified(),
        "is_private_email": id.is_private_email(), "real_user_status": id.real_user_status(),
        "first_name": id.name().and_then(|n| n.first.clone()),
        "refresh_token_in_session": id.refresh_token().is_some(),
        "hook": user.user(),
    }))
}

pub(crate) struct Harness {
    pub(crate) issuer: String,
    pub(crate) provider: Shared,
    pub(crate) clock: ManualClock,
    pub(crate) key: SigningKey,
}

pub(crate) fn harness() -> Harness {
    let (issuer, provider) = start_provider();
    Harness {
        issuer,
        provider,
        clock: ManualClock::starting_now(),
        key: SigningKey::generate(),
    }
}

impl Harness {
    pub(crate) fn strategy(&self) -> AppleIdStrategy {
        AppleIdStrategy::new(
            AppleIdConfig::new(
                CLIENT_ID,
                "http://localhost/auth/apple/callback",
                TEAM_ID,
                KEY_ID,
                self.key.clone(),
            )
            .issuer(&self.issuer)
            .timeout(Duration::from_secs(2))
            .clock(self.clock.clone()),
        )
        .unwrap()
    }

    /// Claims of a good id_token for `nonce`.
    pub(crate) fn claims(&self, nonce: &str) -> Value {
        let now = actix_apple_music::Clock::now(&self.clock).unix_timestamp();
        json!({
            "iss": self.issuer, "aud": CLIENT_ID, "sub": "001234.abcdef", "iat": now,
            "exp": now + 600, "nonce": nonce, "email": "x@privaterelay.appleid.com",
            "email_verified": "true", "is_private_email": true, "real_user_status": 2,
        })
    }

    pub(crate) fn answer(&self, code: &str, answer: Answer) {
        self.provider
            .lock()
            .unwrap()
            .answers
            .insert(code.into(), answer);
    }
}

async fn app_of(auth: Authenticator<AppleIdStrategy>) -> impl crate::common::TestApp {
    crate::common::app(
        MemoryStore::default(),
        Key::generate(),
        auth,
        PREFIX,
        |cfg| {
            cfg.route("/whoami", web::get().to(whoami));
        },
    )
    .await
}

/// Starts a login: the session cookie, the state and the nonce of the authorize redirect.
pub(crate) async fn start<S>(app: &S) -> (Cookie<'static>, String, String, url::Url)
where
    S: actix_web::dev::Service<
        actix_apple_music::test_util::AppRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let resp = test::call_service(
        app,
        test::TestRequest::get()
            .uri(&format!("{PREFIX}/login"))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.response().cookies().next().unwrap().into_owned();
    let location = url::Url::parse(
        resp.headers()
            .get(header::LOCATION)
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let query: HashMap<_, _> = location.query_pairs().into_owned().collect();
    (
        cookie,
        query["state"].clone(),
        query["nonce"].clone(),
        location,
    )
}

pub(crate) async fn callback<S>(
    app: &S,
    cookie: &Cookie<'static>,
    pairs: &[(&str, &str)],
) -> (StatusCode, Value, Option<Cookie<'static>>)
where
    S: actix_web::dev::Service<
        actix_apple_music::test_util::AppRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let mut pairs = pairs.to_vec();
    pairs.push(("relayed", "1"));
    let resp = test::call_service(
        app,
        test::TestRequest::post()
            .uri(&format!("{PREFIX}/callback"))
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .insert_header((header::ACCEPT, "application/json"))
            .cookie(cookie.clone())
            .set_payload(form(&pairs))
            .to_request(),
    )
    .await;
    let status = resp.status();
    let cookie = resp.response().cookies().next().map(|c| c.into_owned());
    let retry = resp
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = test::read_body(resp).await;
    let mut json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(retry) = retry {
        json["retry_after_header"] = retry.into();
    }
    (status, json, cookie)
}

#[actix_web::test]
async fn success_gives_a_stable_identity_and_the_refresh_token_only_to_the_hook() {
    let h = harness();
    let seen = Arc::new(Mutex::new(None::<String>));
    let record = seen.clone();
    let auth = Authenticator::new(h.strategy()).on_sign_in(
        move |sign_in: SignInContext<AppleIdStrategy>| {
            let identity: &AppleIdIdentity = sign_in.identity();
            *record.lock().unwrap() = identity.refresh_token().map(|t| t.secret().to_owned());
            let sub = identity.sub().to_owned();
            async move { Ok(json!({"account_for": sub})) }
        },
    );
    let app = app_of(auth).await;
    let (cookie, state, nonce, location) = start(&app).await;
    // The authorize URL as Apple's REST API asks for it.
    assert_eq!(location.path(), "/auth/authorize");
    let q: HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["response_mode"], "form_post");
    assert_eq!(q["scope"], "name email");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], "http://localhost/auth/apple/callback");
    assert_ne!(nonce, state, "the nonce does not reveal the state");

    h.answer(
        "good-code",
        Answer::Token {
            claims: h.claims(&nonce),
            kid: "k1".into(),
        },
    );
    let user =
        r#"{"name":{"firstName":"Ada","lastName":"L"},"email":"x@privaterelay.appleid.com"}"#;
    let (status, _, cookie2) = callback(
        &app,
        &cookie,
        &[("code", "good-code"), ("state", &state), ("user", user)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/whoami")
            .cookie(cookie2.unwrap())
            .to_request(),
    )
    .await;
    let me: Value = test::read_body_json(resp).await;
    assert_eq!(
        me,
        json!({"sub": "001234.abcdef", "email": "x@privaterelay.appleid.com", "email_verified": true,
               "is_private_email": true, "real_user_status": 2, "first_name": "Ada",
               "refresh_token_in_session": false, "hook": {"account_for": "001234.abcdef"}})
    );
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some("rt-secret-1"),
        "the hook got it"
    );

    // The client secret was an ES256 JWT: iss team, sub client, aud issuer, kid.
    let secret = h.provider.lock().unwrap().secrets[0].clone();
    let header = jsonwebtoken::decode_header(&secret).unwrap();
    assert_eq!(
        (header.alg, header.kid.as_deref()),
        (Algorithm::ES256, Some(KEY_ID))
    );
    let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
    validation.set_audience(&[h.issuer.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(
        &secret,
        &jsonwebtoken::DecodingKey::from_ec_pem(h.key.public_key_pem().as_bytes()).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some(TEAM_ID), Some(CLIENT_ID))
    );
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 15_777_000);
}

/// Apple's first POST comes from another site, without the session: it is answered with a
/// page that posts the same fields again from our origin, and nothing is spent.
#[actix_web::test]
async fn the_cross_site_post_is_relayed_from_our_origin() {
    let h = harness();
    let app = app_of(Authenticator::new(h.strategy())).await;
    let (cookie, state, _, _) = start(&app).await;
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri(&format!("{PREFIX}/callback"))
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(form(&[("code", "c</script>"), ("state", &state)]))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap()
        .contains("form-action 'self'"));
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(!html.contains("c</script>"), "fields are escaped");
    let data = crate::common::page_data(&html, "apple-id-relay");
    assert_eq!(data["action"], "/auth/apple/callback");
    assert_eq!(
        data["fields"],
        json!({"code": "c</script>", "state": state, "relayed": "1"})
    );
    // The state is still pending: the relayed POST can use it.
    h.answer("c</script>", Answer::Error("invalid_grant"));
    let (_, body, _) = callback(&app, &cookie, &[("code", "c</script>"), ("state", &state)]).await;
    assert_eq!(body["reason"], "invalid_grant");
}

/// Every refusal, each with its family, reason and status.
#[actix_web::test]
async fn each_refusal_is_typed() {
    let h = harness();
    let app = app_of(Authenticator::new(h.strategy())).await;
    let now = actix_apple_music::Clock::now(&h.clock).unix_timestamp();
    let k1 = ProviderKey::new("k1"); // not the provider's k1: another key with the same kid
    let public_pem = h.provider.lock().unwrap().keys[0].public_pem.clone();

    type Tweak = Box<dyn Fn(&Harness, &str) -> Answer>;
    let cases: Vec<(&str, Tweak, &str, StatusCode)> = vec![
        (
            "wrong nonce",
            Box::new(|h, _| Answer::Token {
                claims: h.claims("another-login"),
                kid: "k1".into(),
            }),
            "nonce_mismatch",
            StatusCode::BAD_REQUEST,
        ),
        (
            "expired",
            Box::new(move |h, n| {
                let mut c = h.claims(n);
                c["exp"] = (now - 120).into();
                Answer::Token {
                    claims: c,
                    kid: "k1".into(),
                }
            }),
            "id_token_expired",
            StatusCode::BAD_REQUEST,
        ),
        (
            "issued in the future",
            Box::new(move |h, n| {
                let mut c = h.claims(n);
                c["iat"] = (now + 3600).into();
                Answer::Token {
                    claims: c,
                    kid: "k1".into(),
                }
            }),
            "id_token_expired",
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong aud",
            Box::new(|h, n| {
                let mut c = h.claims(n);
                c["aud"] = "com.other.app".into();
                Answer::Token {
                    claims: c,
                    kid: "k1".into(),
                }
            }),
            "wrong_audience",
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong iss",
            Box::new(|h, n| {
                let mut c = h.claims(n);
                c["iss"] = "https://evil.example".into();
                Answer::Token {
                    claims: c,
                    kid: "k1".into(),
                }
            }),
            "wrong_issuer",
            StatusCode::BAD_REQUEST,
        ),
        (
            "alg none",
            Box::new(|h, n| {
                let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
                let body = URL_SAFE_NO_PAD.encode(h.claims(n).to_string());
                Answer::Raw(format!("{head}.{body}."))
            }),
            "invalid_id_token",
            StatusCode::BAD_REQUEST,
        ),
        (
            "HS256 keyed with the public key",
            Box::new(move |h, n| {
                let header = Header {
                    kid: Some("k1".into()),
                    ..Header::new(Algorithm::HS256)
                };
                Answer::Raw(
                    jsonwebtoken::encode(
                        &header,
                        &h.claims(n),
                        &EncodingKey::from_secret(public_pem.as_bytes()),
                    )
                    .unwrap(),
                )
            }),
            "invalid_id_token",
            StatusCode::BAD_REQUEST,
        ),
        (
            "another key with the provider's kid",
            Box::new(move |h, n| {
                let header = Header {
                    kid: Some("k1".into()),
                    ..Header::new(Algorithm::ES256)
                };
                Answer::Raw(jsonwebtoken::encode(&header, &h.claims(n), &k1.encoding).unwrap())
            }),
            "invalid_id_token",
            StatusCode::BAD_REQUEST,
        ),
        (
            "invalid_grant",
            Box::new(|_, _| Answer::Error("invalid_grant")),
            "invalid_grant",
            StatusCode::BAD_REQUEST,
        ),
        (
            "invalid_client",
            Box::new(|_, _| Answer::Error("invalid_client")),
            "invalid_client",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    ];
    for (what, tweak, reason, status) in cases {
        let (cookie, state, nonce, _) = start(&app).await;
        h.answer("code", tweak(&h, &nonce));
        let (got, body, _) = callback(&app, &cookie, &[("code", "code"), ("state", &state)]).await;
        assert_eq!(
            (got, body["reason"].as_str()),
            (status, Some(reason)),
            "{what}: {body}"
        );
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/whoami")
                .cookie(cookie)
                .to_request(),
        )
        .await;
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "{what} signed someone in"
        );
    }

    // The user cancels at Apple.
    let (cookie, state, _, _) = start(&app).await;
    let (status, body, _) = callback(
        &app,
        &cookie,
        &[("error", "user_cancelled_authorize"), ("state", &state)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str(), body["reason"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("authorization_error"),
            Some("user_cancelled")
        )
    );

    // A wrong state, and a replayed one, as for Apple Music.
    let (cookie, state, nonce, _) = start(&app).await;
    let (_, body, _) = callback(&app, &cookie, &[("code", "code"), ("state", "forged")]).await;
    assert_eq!(body["reason"], "state_mismatch");
    h.answer(
        "good",
        Answer::Token {
            claims: h.claims(&nonce),
            kid: "k1".into(),
        },
    );
    let (status, _, _) = callback(&app, &cookie, &[("code", "good"), ("state", &state)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    h.answer(
        "good",
        Answer::Token {
            claims: h.claims(&nonce),
            kid: "k1".into(),
        },
    );
    let (_, body, _) = callback(&app, &cookie, &[("code", "good"), ("state", &state)]).await;
    assert_eq!(body["reason"], "state_mismatch", "replayed");
}

/// A token signed with a key the cache does not hold yet: one refresh of the keys; the keys
/// endpoint down: a typed 503 with Retry-After.
#[actix_web::test]
async fn an_unknown_kid_refreshes_the_keys_once_and_a_keys_outage_is_a_503() {
    let h = harness();
    let strategy = h.strategy();
    let auth = Authenticator::new(strategy);
    let app = app_of(auth).await;
    let sign_in = |kid: &'static str| {
        let app = &app;
        let h = &h;
        async move {
            let (cookie, state, nonce, _) = start(app).await;
            h.answer(
                "code",
                Answer::Token {
                    claims: h.claims(&nonce),
                    kid: kid.into(),
                },
            );
            callback(app, &cookie, &[("code", "code"), ("state", &state)]).await
        }
    };
    assert_eq!(sign_in("k1").await.0, StatusCode::SEE_OTHER);
    assert_eq!(sign_in("k1").await.0, StatusCode::SEE_OTHER);
    assert_eq!(h.provider.lock().unwrap().key_requests, 1, "cached");
    h.provider.lock().unwrap().published.push("k2".into()); // Apple rotates
    assert_eq!(sign_in("k2").await.0, StatusCode::SEE_OTHER);
    assert_eq!(
        h.provider.lock().unwrap().key_requests,
        2,
        "one refresh for the new kid"
    );

    h.provider.lock().unwrap().keys_up = false;
    h.provider.lock().unwrap().published.clear();
    let (status, body, _) = sign_in("k1").await;
    // k1 is cached: the outage does not matter for known keys.
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let fresh = harness();
    fresh.provider.lock().unwrap().keys_up = false;
    let app = app_of(Authenticator::new(fresh.strategy())).await;
    let (cookie, state, nonce, _) = start(&app).await;
    fresh.answer(
        "code",
        Answer::Token {
            claims: fresh.claims(&nonce),
            kid: "k1".into(),
        },
    );
    let (status, body, _) = callback(&app, &cookie, &[("code", "code"), ("state", &state)]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (body["error"].as_str(), body["reason"].as_str()),
        (Some("upstream_error"), Some("apple_unavailable"))
    );
    assert_eq!(body["retry_after_header"], "5");
}

/// The app hands in its own HTTP client; the token and keys calls go through it.
#[actix_web::test]
async fn the_app_can_hand_in_its_own_http_client() {
    let h = harness();
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = made.clone();
    let strategy = AppleIdStrategy::new(
        AppleIdConfig::new(
            CLIENT_ID,
            "http://localhost/auth/apple/callback",
            TEAM_ID,
            KEY_ID,
            h.key.clone(),
        )
        .issuer(&h.issuer)
        .clock(h.clock.clone())
        .http_client(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            awc::Client::builder().disable_redirects().finish()
        }),
    )
    .unwrap();
    let app = app_of(Authenticator::new(strategy)).await;
    let (cookie, state, nonce, _) = start(&app).await;
    h.answer(
        "code",
        Answer::Token {
            claims: h.claims(&nonce),
            kid: "k1".into(),
        },
    );
    let (status, body, _) = callback(&app, &cookie, &[("code", "code"), ("state", &state)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    // One client for this thread, made once, for the token and the keys calls alike (awc
    // clients hold the connection pool).
    assert_eq!(
        made.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one client per thread"
    );
}

/// The id_token checks at their edges: the longest token accepted and one byte more, `iat` at
/// the leeway's end, a token naming no key while the provider lists two, and what each
/// signature or claim failure says.
#[actix_web::test]
async fn the_id_token_checks_hold_at_their_edges() {
    let h = harness();
    h.provider.lock().unwrap().published = vec!["k1".into(), "k2".into()];
    let app = app_of(Authenticator::new(h.strategy())).await;
    let now = actix_apple_music::Clock::now(&h.clock).unix_timestamp();
    let k1 = h.provider.lock().unwrap().keys[0].encoding.clone();
    let signed_with = |claims: &Value, kid: Option<&str>, cty: Option<String>| {
        let header = Header {
            kid: kid.map(str::to_owned),
            cty,
            ..Header::new(Algorithm::ES256)
        };
        jsonwebtoken::encode(&header, claims, &k1).unwrap()
    };
    let signed = move |claims: &Value, kid: Option<&str>| signed_with(claims, kid, None);
    // A good token of exactly `len` bytes: a padding claim fills it, and a header field of
    // 0 to 3 characters reaches the lengths base64 cannot (4 characters per 3 bytes).
    let of_length = |nonce: &str, len: usize| {
        let mut claims = h.claims(nonce);
        let bare = signed(&claims, Some("k1")).len();
        let estimate = (len - bare) * 3 / 4;
        for cty in ["", "a", "ab", "abc"] {
            for pad in estimate.saturating_sub(40)..estimate + 4 {
                claims["pad"] = "p".repeat(pad).into();
                let cty = (!cty.is_empty()).then(|| cty.to_owned());
                let token = signed_with(&claims, Some("k1"), cty);
                if token.len() == len {
                    return token;
                }
            }
        }
        panic!("no padding reaches {len} bytes")
    };
    let max = 16 * 1024;
    let (h, signed, of_length) = (&h, &signed, &of_length);

    type Case<'a> = (
        &'static str,
        Box<dyn Fn(&str) -> String + 'a>,
        Result<(), (&'static str, &'static str)>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "the longest accepted",
            Box::new(move |n| of_length(n, max)),
            Ok(()),
        ),
        (
            "one byte too long",
            Box::new(move |n| of_length(n, max + 1)),
            Err(("invalid_id_token", "too long")),
        ),
        (
            "iat at the leeway's end",
            Box::new(move |n| {
                let mut c = h.claims(n);
                c["iat"] = (now + 60).into();
                signed(&c, Some("k1"))
            }),
            Ok(()),
        ),
        (
            "iat past the leeway",
            Box::new(move |n| {
                let mut c = h.claims(n);
                c["iat"] = (now + 61).into();
                signed(&c, Some("k1"))
            }),
            Err(("id_token_expired", "")),
        ),
        (
            "no kid, two keys listed",
            Box::new(move |n| signed(&h.claims(n), None)),
            Err(("invalid_id_token", "a key the provider does not list")),
        ),
        (
            "a bad signature",
            Box::new(move |n| {
                let token = signed(&h.claims(n), Some("k1"));
                let (rest, signature) = token.rsplit_once('.').unwrap();
                let flipped = if signature.starts_with('A') { "B" } else { "A" };
                format!("{rest}.{flipped}{}", &signature[1..])
            }),
            Err(("invalid_id_token", "bad signature")),
        ),
        (
            "no sub",
            Box::new(move |n| {
                let mut c = h.claims(n);
                c.as_object_mut().unwrap().remove("sub");
                signed(&c, Some("k1"))
            }),
            Err(("invalid_id_token", "a required claim is missing")),
        ),
    ];
    for (what, token, expected) in cases {
        let (cookie, state, nonce, _) = start(&app).await;
        h.answer("code", Answer::Raw(token(&nonce)));
        let (status, body, _) =
            callback(&app, &cookie, &[("code", "code"), ("state", &state)]).await;
        match expected {
            Ok(()) => assert_eq!(status, StatusCode::SEE_OTHER, "{what}: {body}"),
            Err((reason, detail)) => {
                assert_eq!(body["reason"], reason, "{what}: {body}");
                let message = body["message"].as_str().unwrap_or_default();
                assert!(message.contains(detail), "{what}: {message}");
            }
        }
    }
}

/// What the `id_token` check refuses beyond the signature: `nbf` in the future (past the
/// leeway, to the second), an unknown `crit` header, an audience list of several without our
/// `azp` (one audience needs none), an empty `sub`.
#[actix_web::test]
async fn the_id_token_check_refuses_nbf_crit_a_foreign_azp_and_an_empty_sub() {
    let h = harness();
    let app = app_of(Authenticator::new(h.strategy())).await;
    let now = actix_apple_music::Clock::now(&h.clock).unix_timestamp();
    type Change = fn(&mut Value, i64);
    let cases: [(&str, Change, Option<&str>); 8] = [
        (
            "nbf in an hour",
            |c, now| c["nbf"] = (now + 3600).into(),
            Some("id_token_expired"),
        ),
        (
            "nbf a second past the 60 s leeway",
            |c, now| c["nbf"] = (now + 61).into(),
            Some("id_token_expired"),
        ),
        (
            "nbf at the edge of the 60 s leeway",
            |c, now| c["nbf"] = (now + 60).into(),
            None,
        ),
        (
            "one audience in a list, no azp",
            |c, _| c["aud"] = json!([CLIENT_ID]),
            None,
        ),
        (
            "two audiences, no azp",
            |c, _| c["aud"] = json!([CLIENT_ID, "com.other"]),
            Some("wrong_audience"),
        ),
        (
            "two audiences, another azp",
            |c, _| {
                c["aud"] = json!([CLIENT_ID, "com.other"]);
                c["azp"] = "com.other".into();
            },
            Some("wrong_audience"),
        ),
        (
            "two audiences, our azp",
            |c, _| {
                c["aud"] = json!([CLIENT_ID, "com.other"]);
                c["azp"] = CLIENT_ID.into();
            },
            None,
        ),
        (
            "an empty sub",
            |c, _| c["sub"] = "".into(),
            Some("invalid_id_token"),
        ),
    ];
    for (what, change, refused) in cases {
        let (cookie, state, nonce, _) = start(&app).await;
        let mut claims = h.claims(&nonce);
        change(&mut claims, now);
        h.answer(
            "code",
            Answer::Token {
                claims,
                kid: "k1".into(),
            },
        );
        let (status, body, _) =
            callback(&app, &cookie, &[("code", "code"), ("state", &state)]).await;
        match refused {
            Some(reason) => assert_eq!(body["reason"], reason, "{what}: {body}"),
            None => assert_eq!(status, StatusCode::SEE_OTHER, "{what}: {body}"),
        }
    }
    // A `crit` header this verifier does not understand, validly signed.
    let (cookie, state, nonce, _) = start(&app).await;
    let header =
        URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"k1","crit":["exp-ext"],"exp-ext":1}"#);
    let body = URL_SAFE_NO_PAD.encode(h.claims(&nonce).to_string());
    let message = format!("{header}.{body}");
    let signature = {
        let provider = h.provider.lock().unwrap();
        let key = provider.keys.iter().find(|k| k.kid == "k1").unwrap();
        jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, Algorithm::ES256).unwrap()
    };
    h.answer("code", Answer::Raw(format!("{message}.{signature}")));
    let (status, body, _) = callback(&app, &cookie, &[("code", "code"), ("state", &state)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["reason"], "invalid_id_token");
}

/// While the keys endpoint is down it is not asked on every sign-in, and an unknown `kid`
/// after a failed refresh is Apple being unavailable (`503`), not an invalid token.
#[actix_web::test]
async fn a_keys_outage_is_remembered_for_a_few_seconds_and_answered_503() {
    let h = harness();
    let app = app_of(Authenticator::new(h.strategy())).await;
    let sign_in = |kid: &'static str| {
        let (app, h) = (&app, &h);
        async move {
            let (cookie, state, nonce, _) = start(app).await;
            h.answer(
                "code",
                Answer::Token {
                    claims: h.claims(&nonce),
                    kid: kid.into(),
                },
            );
            callback(app, &cookie, &[("code", "code"), ("state", &state)]).await
        }
    };
    assert_eq!(sign_in("k1").await.0, StatusCode::SEE_OTHER);
    h.provider.lock().unwrap().keys_up = false;
    // A new kid: one refresh, which fails.
    let (status, body, _) = sign_in("k2").await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("apple_unavailable"))
    );
    let asked = h.provider.lock().unwrap().key_requests;
    for _ in 0..3 {
        let (status, body, _) = sign_in("k2").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["reason"], "apple_unavailable");
    }
    assert_eq!(
        h.provider.lock().unwrap().key_requests,
        asked,
        "not asked again at once"
    );
    // Known keys still work meanwhile.
    assert_eq!(sign_in("k1").await.0, StatusCode::SEE_OTHER);

    // No keys cached at all and the endpoint down: asked once for three sign-ins.
    let fresh = harness();
    fresh.provider.lock().unwrap().keys_up = false;
    let app = app_of(Authenticator::new(fresh.strategy())).await;
    for _ in 0..3 {
        let (cookie, state, nonce, _) = start(&app).await;
        fresh.answer(
            "code",
            Answer::Token {
                claims: fresh.claims(&nonce),
                kid: "k1".into(),
            },
        );
        let (status, _, _) = callback(&app, &cookie, &[("code", "code"), ("state", &state)]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(fresh.provider.lock().unwrap().key_requests, 1);
}

/// A Sign in with Apple sign-in lasts `identity_lifetime` (30 days by default), then the guard
/// asks for a new one.
#[actix_web::test]
async fn an_apple_id_sign_in_ends_after_its_lifetime() {
    let h = harness();
    let app = app_of(Authenticator::new(h.strategy())).await;
    let (cookie, state, nonce, _) = start(&app).await;
    h.answer(
        "code",
        Answer::Token {
            claims: h.claims(&nonce),
            kid: "k1".into(),
        },
    );
    let (_, _, cookie2) = callback(&app, &cookie, &[("code", "code"), ("state", &state)]).await;
    let cookie = cookie2.unwrap();
    let whoami = |cookie: Cookie<'static>| {
        let app = &app;
        async move {
            let resp = test::call_service(
                app,
                test::TestRequest::get()
                    .uri("/whoami")
                    .insert_header((header::ACCEPT, "application/json"))
                    .cookie(cookie)
                    .to_request(),
            )
            .await;
            let status = resp.status();
            let body: Value =
                serde_json::from_slice(&test::read_body(resp).await).unwrap_or(Value::Null);
            (status, body)
        }
    };
    h.clock.advance(Duration::from_secs(29 * 86_400));
    assert_eq!(whoami(cookie.clone()).await.0, StatusCode::OK);
    h.clock.advance(Duration::from_secs(2 * 86_400));
    let (status, body) = whoami(cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "reauthentication_required", "{body}");
    assert_eq!(body["strategy"], "apple-id");
}
