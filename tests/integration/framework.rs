//! The framework is provider-neutral: a second strategy, written here against the public API
//! only (this file cannot reach anything crate-private), runs an OAuth 2.0 authorization-code
//! flow with the `oauth2` crate against a stand-in provider on a loopback port. It lives next
//! to Apple Music in one app, each with its own options, guard, sign-in, failure answer and
//! logout.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::{
    AppleMusicConfig, AppleMusicStrategy, AppleMusicUser, Authenticator, CallbackParams,
    FailureKind, LoginRequest, ManualClock, RequireSignIn, SignInContext, SignInError, SignedIn,
    Strategy, StrategyError,
};
use actix_session::{SessionExt, SessionMiddleware};
use actix_web::cookie::{Cookie, Key};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    RedirectUrl, TokenResponse, TokenUrl,
};
use serde_json::json;

use crate::common::memory_store::MemoryStore;
use crate::common::session_cookie;
use crate::common::{form, page_data, KEY_ID, TEAM_ID};

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Signs users in with an OAuth 2.0 provider: the login page is a redirect to its authorize
/// URL, the callback exchanges the code at its token endpoint.
struct OAuthStrategy {
    client: Client,
}

/// The strategy's own failures, in the crate's families.
#[derive(Debug, thiserror::Error)]
enum OAuthError {
    #[error("you did not allow access")]
    Denied,
    #[error("the provider refused the code")]
    InvalidGrant,
    #[error("the provider could not be reached")]
    Unreachable,
}

impl StrategyError for OAuthError {
    fn kind(&self) -> FailureKind {
        match self {
            OAuthError::Denied => FailureKind::Authorization,
            OAuthError::InvalidGrant => FailureKind::Token,
            OAuthError::Unreachable => FailureKind::Upstream,
        }
    }
    fn reason(&self) -> &str {
        match self {
            OAuthError::Denied => "access_denied",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::Unreachable => "provider_unavailable",
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        matches!(self, OAuthError::Unreachable).then_some(Duration::from_secs(7))
    }
    fn title(&self) -> Cow<'_, str> {
        "Example sign-in did not complete".into()
    }
}

/// The provider's user, as the token endpoint named it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct OAuthIdentity {
    subject: String,
}

/// `oauth2`'s HTTP client, on awc.
async fn http(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, std::io::Error> {
    let client = awc::Client::default();
    let mut outgoing = client.request(
        request.method().as_str().parse().unwrap(),
        request.uri().to_string(),
    );
    for (name, value) in request.headers() {
        outgoing = outgoing.insert_header((name.as_str(), value.as_bytes()));
    }
    let mut answer = outgoing
        .send_body(request.body().clone())
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let body = answer
        .body()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut response = oauth2::http::Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        response = response.header(name.as_str(), value.as_bytes());
    }
    Ok(response.body(body.to_vec()).unwrap())
}

impl Strategy for OAuthStrategy {
    type Identity = OAuthIdentity;
    type Error = OAuthError;

    fn name(&self) -> &str {
        "example-oauth"
    }

    fn login_page(&self, _req: &HttpRequest, login: &LoginRequest<'_>) -> HttpResponse {
        let state = login.state.to_owned();
        let (url, _) = self
            .client
            .authorize_url(move || CsrfToken::new(state))
            .url();
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, url.to_string()))
            .finish()
    }

    fn callback(
        &self,
        _req: &HttpRequest,
        params: &CallbackParams,
    ) -> impl Future<Output = Result<OAuthIdentity, OAuthError>> {
        let error = params.get("error").map(str::to_owned);
        let code = params.get("code").unwrap_or_default().to_owned();
        async move {
            if error.is_some() {
                return Err(OAuthError::Denied);
            }
            let token = self
                .client
                .exchange_code(AuthorizationCode::new(code))
                .request_async(&http)
                .await
                .map_err(|e| match e {
                    oauth2::RequestTokenError::ServerResponse(_) => OAuthError::InvalidGrant,
                    _ => OAuthError::Unreachable,
                })?;
            Ok(OAuthIdentity {
                subject: token.access_token().secret().clone(),
            })
        }
    }
}

/// The stand-in provider's token endpoint: a code `good-<name>` is worth an access token
/// `<name>`; any other code is `invalid_grant`.
async fn token_endpoint(body: web::Form<Vec<(String, String)>>) -> HttpResponse {
    let field = |name: &str| {
        body.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match field("code").and_then(|c| c.strip_prefix("good-")) {
        Some(name) if field("grant_type") == Some("authorization_code") => HttpResponse::Ok()
            .json(json!({"access_token": name, "token_type": "bearer", "expires_in": 3600})),
        _ => HttpResponse::BadRequest().json(json!({"error": "invalid_grant"})),
    }
}

fn provider() -> String {
    crate::common::serve(|| App::new().route("/token", web::post().to(token_endpoint)))
}

fn oauth(token_base: &str) -> OAuthStrategy {
    OAuthStrategy {
        client: BasicClient::new(ClientId::new("demo-app".into()))
            .set_client_secret(ClientSecret::new("demo-secret".into()))
            .set_auth_uri(AuthUrl::new("https://provider.example/authorize".into()).unwrap())
            .set_token_uri(TokenUrl::new(format!("{token_base}/token")).unwrap())
            .set_redirect_uri(
                RedirectUrl::new("http://localhost/auth/oauth/callback".into()).unwrap(),
            ),
    }
}

async fn oauth_page(user: SignedIn<OAuthStrategy>) -> HttpResponse {
    HttpResponse::Ok().body(format!("oauth:{}", user.identity().subject))
}

async fn music_page(user: AppleMusicUser) -> HttpResponse {
    HttpResponse::Ok().body(format!(
        "music:{}",
        user.identity().music_user_token().secret()
    ))
}

async fn inside(req: HttpRequest) -> HttpResponse {
    let identity = req.extensions().get::<OAuthIdentity>().cloned();
    HttpResponse::Ok().body(format!("inside:{}", identity.unwrap().subject))
}

use actix_web::HttpMessage as _;

/// The `state` of the provider's authorize URL a login page redirected to.
fn state_of(resp: &actix_web::dev::ServiceResponse) -> String {
    let location = resp
        .headers()
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap();
    let url = url::Url::parse(location).unwrap();
    assert_eq!(url.host_str(), Some("provider.example"));
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "demo-app");
    assert_eq!(query["response_type"], "code");
    query["state"].clone()
}

#[actix_web::test]
async fn a_second_strategy_from_outside_the_crate_lives_beside_apple_music() {
    let token_base = provider();
    let store = MemoryStore::default();
    let clock = ManualClock::starting_now();
    let oauth_auth = Authenticator::new(oauth(&token_base))
        .options(|o| {
            o.success_target("/welcome")
                .logout_target("/bye-oauth")
                .state_ttl(Duration::from_secs(120))
                .clock(clock.clone())
        })
        .on_sign_in(|sign_in: SignInContext<OAuthStrategy>| async move {
            let identity = sign_in.into_identity();
            Ok(json!({"app_user": format!("user-{}", identity.subject)}))
        })
        .failure_handler(|_req: &HttpRequest, error: &SignInError<OAuthError>| {
            HttpResponse::build(error.status()).body(format!(
                "oauth-failed:{}:{}",
                error.kind().as_str(),
                error.reason()
            ))
        });
    let music_auth = Authenticator::new(
        AppleMusicStrategy::new(
            AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
                .check_with_apple(false)
                .logout_target("/bye-music"),
        )
        .unwrap(),
    );
    let app = crate::common::app(
        store.clone(),
        Key::generate(),
        oauth_auth.clone(),
        "/auth/oauth",
        |cfg| {
            cfg.configure(music_auth.mount("/auth/apple-music"))
                .route("/oauth-page", web::get().to(oauth_page))
                .route("/music-page", web::get().to(music_page))
                .service(
                    web::scope("/oauth-area")
                        .wrap(RequireSignIn::<OAuthStrategy>::new())
                        .route("/inside", web::get().to(inside)),
                );
        },
    )
    .await;
    // The handles the app kept know where they were mounted.
    assert_eq!(oauth_auth.login_path(), "/auth/oauth/login");
    assert_eq!(oauth_auth.callback_path(), "/auth/oauth/callback");
    assert_eq!(music_auth.prefix(), "/auth/apple-music");

    let get = |uri: &str, cookie: Option<Cookie<'static>>, accept: &str| {
        let mut req = test::TestRequest::get()
            .uri(uri)
            .insert_header((header::ACCEPT, accept.to_owned()));
        if let Some(cookie) = cookie {
            req = req.cookie(cookie);
        }
        req.to_request()
    };
    let post = |uri: &str, cookie: Option<Cookie<'static>>, body: String| {
        let mut req = test::TestRequest::post()
            .uri(uri)
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .insert_header((header::ACCEPT, "application/json"))
            .set_payload(body);
        if let Some(cookie) = cookie {
            req = req.cookie(cookie);
        }
        req.to_request()
    };
    let text = |resp: actix_web::dev::ServiceResponse| async move {
        String::from_utf8(test::read_body(resp).await.to_vec()).unwrap()
    };

    // Each guard knows only its own strategy.
    let resp = test::call_service(&app, get("/oauth-page", None, "text/html")).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers().get(header::LOCATION).unwrap(),
        "/auth/oauth/login?return_to=%2Foauth-page"
    );
    let resp = test::call_service(&app, get("/oauth-area/inside", None, "application/json")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers().get(header::WWW_AUTHENTICATE).unwrap(),
        "ExampleOauth realm=\"example-oauth\""
    );

    // OAuth sign-in: the login page is a redirect to the provider with the state.
    let resp = test::call_service(&app, get("/auth/oauth/login", None, "text/html")).await;
    let pre_login = session_cookie(&resp).unwrap();
    let state = state_of(&resp);
    let pre_login_keys = store.keys();
    // The provider refuses a bad code: the strategy's own failure, through its handler.
    let resp = test::call_service(
        &app,
        post(
            "/auth/oauth/callback",
            Some(pre_login.clone()),
            form(&[("code", "stolen"), ("state", &state)]),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(text(resp).await, "oauth-failed:token_error:invalid_grant");
    // The state was spent by that attempt: the flow's own failure, through the same handler.
    let resp = test::call_service(
        &app,
        post(
            "/auth/oauth/callback",
            Some(pre_login.clone()),
            form(&[("code", "good-alice"), ("state", &state)]),
        ),
    )
    .await;
    assert_eq!(text(resp).await, "oauth-failed:token_error:state_mismatch");

    // A fresh login, a good code: signed in, at the success target set from outside.
    let resp = test::call_service(&app, get("/auth/oauth/login", None, "text/html")).await;
    let cookie = session_cookie(&resp).unwrap();
    let state = state_of(&resp);
    let login_keys: Vec<String> = store
        .keys()
        .into_iter()
        .filter(|k| !pre_login_keys.contains(k))
        .collect();
    assert_eq!(login_keys.len(), 1);
    let resp = test::call_service(
        &app,
        post(
            "/auth/oauth/callback",
            Some(cookie),
            form(&[("code", "good-alice"), ("state", &state)]),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers().get(header::LOCATION).unwrap(), "/welcome");
    let oauth_cookie = session_cookie(&resp).unwrap();
    assert!(
        !store.contains(&login_keys[0]),
        "sign-in renews the session: the pre-login key is gone from the store"
    );
    for key in &pre_login_keys {
        assert!(
            store.contains(key),
            "another browser's session is untouched"
        );
    }
    let resp =
        test::call_service(&app, get("/oauth-page", Some(oauth_cookie.clone()), "*/*")).await;
    assert_eq!(text(resp).await, "oauth:alice");
    let resp = test::call_service(
        &app,
        get("/oauth-area/inside", Some(oauth_cookie.clone()), "*/*"),
    )
    .await;
    assert_eq!(text(resp).await, "inside:alice");
    let resp = test::call_service(
        &app,
        get(
            "/music-page",
            Some(oauth_cookie.clone()),
            "application/json",
        ),
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "not signed in with Apple Music"
    );

    // The user declines at the provider: an authorization error, through the handler.
    let resp = test::call_service(
        &app,
        get("/auth/oauth/login", Some(oauth_cookie.clone()), "text/html"),
    )
    .await;
    let cookie = session_cookie(&resp).unwrap_or(oauth_cookie.clone());
    let state = state_of(&resp);
    let resp = test::call_service(
        &app,
        post(
            "/auth/oauth/callback",
            Some(cookie.clone()),
            form(&[("error", "access_denied"), ("state", &state)]),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        text(resp).await,
        "oauth-failed:authorization_error:access_denied"
    );

    // The state lifetime set from outside, on the clock set from outside.
    let resp = test::call_service(
        &app,
        get("/auth/oauth/login", Some(cookie.clone()), "text/html"),
    )
    .await;
    let cookie = session_cookie(&resp).unwrap_or(cookie);
    let state = state_of(&resp);
    clock.advance(Duration::from_secs(121));
    let resp = test::call_service(
        &app,
        post(
            "/auth/oauth/callback",
            Some(cookie.clone()),
            form(&[("code", "good-alice"), ("state", &state)]),
        ),
    )
    .await;
    assert_eq!(text(resp).await, "oauth-failed:token_error:state_expired");

    // Apple Music in the same browser: both identities side by side, Apple Music's failures
    // answered its own (default) way.
    let resp = test::call_service(
        &app,
        get("/auth/apple-music/login", Some(cookie.clone()), "text/html"),
    )
    .await;
    let cookie = session_cookie(&resp).unwrap_or(cookie);
    let html = text(resp).await;
    let data = page_data(&html, "apple-music-login");
    let resp = test::call_service(
        &app,
        post(
            "/auth/apple-music/callback",
            Some(cookie.clone()),
            form(&[("code", "apple-token"), ("state", "wrong")]),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "token_error");
    assert_eq!(body["reason"], "state_mismatch");
    let resp = test::call_service(
        &app,
        post(
            "/auth/apple-music/callback",
            Some(cookie.clone()),
            form(&[
                ("code", "apple-token"),
                ("state", data["state"].as_str().unwrap()),
                ("id_token_hint", data["developerToken"].as_str().unwrap()),
            ]),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let both = session_cookie(&resp).unwrap();
    let resp = test::call_service(&app, get("/music-page", Some(both.clone()), "*/*")).await;
    assert_eq!(text(resp).await, "music:apple-token");
    let resp = test::call_service(&app, get("/oauth-page", Some(both.clone()), "*/*")).await;
    assert_eq!(text(resp).await, "oauth:alice");

    // Each logout goes to its own target; a logout clears the whole session.
    let resp = test::call_service(
        &app,
        post("/auth/oauth/logout", Some(both.clone()), String::new()),
    )
    .await;
    assert_eq!(resp.headers().get(header::LOCATION).unwrap(), "/bye-oauth");
    let cleared = session_cookie(&resp).unwrap();
    for page in ["/oauth-page", "/music-page"] {
        let resp =
            test::call_service(&app, get(page, Some(cleared.clone()), "application/json")).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{page}");
    }
    let resp =
        test::call_service(&app, post("/auth/apple-music/logout", None, String::new())).await;
    assert_eq!(resp.headers().get(header::LOCATION).unwrap(), "/bye-music");
}

/// The sign-in hook's value is what the extractor reads back, and `forget` signs the strategy out.
#[actix_web::test]
async fn the_hook_value_is_read_back_and_forget_signs_the_strategy_out() {
    let token_base = provider();
    let oauth_auth = Authenticator::new(oauth(&token_base)).on_sign_in(
        |sign_in: SignInContext<OAuthStrategy>| async move {
            let identity = sign_in.into_identity();
            Ok(json!({"app_user": format!("user-{}", identity.subject)}))
        },
    );
    async fn forget(
        req: HttpRequest,
        auth: web::Data<Authenticator<OAuthStrategy>>,
    ) -> HttpResponse {
        auth.forget(&req.get_session());
        HttpResponse::NoContent().finish()
    }
    async fn user_value(user: SignedIn<OAuthStrategy, serde_json::Value>) -> HttpResponse {
        HttpResponse::Ok().json(user.user().cloned())
    }
    let app = crate::common::app(
        MemoryStore::default(),
        Key::generate(),
        oauth_auth.clone(),
        "/auth/oauth",
        |cfg| {
            cfg.route("/user", web::get().to(user_value))
                .route("/forget", web::post().to(forget));
        },
    )
    .await;
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/auth/oauth/login")
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&resp).unwrap();
    let state = state_of(&resp);
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/auth/oauth/callback")
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .cookie(cookie)
            .set_payload(form(&[("code", "good-bob"), ("state", &state)]))
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&resp).unwrap();
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/user")
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body, json!({"app_user": "user-bob"}));
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/forget")
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&resp).unwrap_or(cookie);
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/user")
            .cookie(cookie)
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// `HttpServer::new` builds one `App` per worker from clones of the authenticator; every
/// clone, and the handle the app keeps, knows the paths. A second prefix is refused.
#[actix_web::test]
async fn clones_mount_in_several_apps_like_workers_do() {
    let auth = Authenticator::new(oauth("http://127.0.0.1:9"));
    let key = Key::generate();
    for _worker in 0..3 {
        let app = test::init_service(
            App::new()
                .wrap(
                    SessionMiddleware::builder(MemoryStore::default(), key.clone())
                        .cookie_secure(false)
                        .build(),
                )
                .configure(auth.clone().mount("/auth/oauth")),
        )
        .await;
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/auth/oauth/login")
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(
        auth.prefix(),
        "/auth/oauth",
        "the app's own handle knows the prefix"
    );
    assert_eq!(auth.login_path(), "/auth/oauth/login");
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = auth.mount("/elsewhere");
    }));
    assert!(again.is_err(), "one authenticator, one prefix");
}

/// The authenticator's getters are named like the options' setters and answer what was set.
#[actix_web::test]
async fn the_authenticators_getters_answer_what_its_options_set() {
    let auth = Authenticator::new(oauth(&provider())).options(|o| {
        o.state_ttl(Duration::from_secs(42))
            .session_margin(Duration::from_secs(7))
            .success_target("/home")
    });
    assert_eq!(auth.state_ttl(), Duration::from_secs(42));
    assert_eq!(auth.session_margin(), Duration::from_secs(7));
    assert_eq!(auth.success_target(), "/home");
}
