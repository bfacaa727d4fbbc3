//! The strategy framework is provider-neutral: a second strategy plugs into the same trait,
//! lives next to Apple Music in one app under its own session keys, and sign-in renews the
//! session id (checked against a store that shows which keys exist).

mod common;

use std::future::{ready, Future};

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::strategy::{CallbackParams, FlowOptions, LoginRequest, Strategy};
use actix_apple_music::{
    AppleMusicConfig, AppleMusicStrategy, AuthError, Authenticator, TokenError,
};
use actix_session::{SessionExt, SessionMiddleware};
use actix_web::cookie::{Cookie, Key};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use common::memory_store::MemoryStore;
use common::{form, page_data, KEY_ID, TEAM_ID};
use serde_json::json;

/// A strategy with no provider at all: the code is the user name.
struct PlainStrategy {
    options: FlowOptions,
}

impl Strategy for PlainStrategy {
    type Identity = String;

    fn name(&self) -> &str {
        "plain"
    }

    fn flow_options(&self) -> &FlowOptions {
        &self.options
    }

    fn login_page(&self, _req: &HttpRequest, login: &LoginRequest<'_>) -> HttpResponse {
        HttpResponse::Ok().json(json!({"state": login.state, "callback": login.callback_path}))
    }

    fn callback(
        &self,
        _req: &HttpRequest,
        params: &CallbackParams,
    ) -> impl Future<Output = Result<String, AuthError>> {
        ready(
            params
                .get("code")
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .ok_or(AuthError::Token(TokenError::MissingCode)),
        )
    }
}

async fn who(
    req: HttpRequest,
    plain: web::Data<Authenticator<PlainStrategy>>,
    apple: web::Data<Authenticator<AppleMusicStrategy>>,
) -> HttpResponse {
    let session = req.get_session();
    HttpResponse::Ok().json(json!({
        "plain": plain.stored_identity(&session),
        "apple": apple.stored_identity(&session).map(|i| i.music_user_token().secret().to_owned()),
    }))
}

fn cookie_of(resp: &actix_web::dev::ServiceResponse) -> Option<Cookie<'static>> {
    resp.response()
        .cookies()
        .find(|c| c.name() == "id")
        .map(|c| c.into_owned())
}

#[actix_web::test]
async fn two_strategies_share_an_app_and_sign_in_renews_the_session() {
    let store = MemoryStore::default();
    let key = Key::generate();
    let plain = Authenticator::new(PlainStrategy {
        options: FlowOptions::default(),
    });
    let apple = Authenticator::new(
        AppleMusicStrategy::new(
            AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate()).verify_tokens(false),
        )
        .unwrap(),
    );
    let app = test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::builder(store.clone(), key)
                    .cookie_secure(false)
                    .build(),
            )
            .configure(plain.mount("/auth/plain"))
            .configure(apple.mount("/auth/apple-music"))
            .route("/who", web::get().to(who)),
    )
    .await;

    // Plain login.
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/auth/plain/login")
            .to_request(),
    )
    .await;
    let before = cookie_of(&resp).unwrap();
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body["callback"], "/auth/plain/callback");
    let old_key = store.keys();
    assert_eq!(old_key.len(), 1);

    let query = form(&[
        ("code", "alice"),
        ("state", body["state"].as_str().unwrap()),
    ]);
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/auth/plain/callback")
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(query)
            .cookie(before)
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let after = cookie_of(&resp).unwrap();
    assert!(
        !store.contains(&old_key[0]),
        "the pre-login session key is gone from the store"
    );
    assert_eq!(store.keys().len(), 1, "one live session");

    // Apple Music login in the same browser: both identities live side by side.
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/auth/apple-music/login")
            .cookie(after.clone())
            .to_request(),
    )
    .await;
    let cookie = cookie_of(&resp).unwrap_or(after);
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    let data = page_data(&html, "apple-music-login");
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/auth/apple-music/callback")
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .cookie(cookie)
            .set_payload(form(&[
                ("code", "apple-token"),
                ("state", data["state"].as_str().unwrap()),
                ("id_token_hint", data["developerToken"].as_str().unwrap()),
            ]))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let both = cookie_of(&resp).unwrap();
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/who")
            .cookie(both)
            .to_request(),
    )
    .await;
    let who: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(who, json!({"plain": "alice", "apple": "apple-token"}));

    // The plain strategy's own error path goes through the same typed errors.
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/auth/plain/callback")
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload("state=x")
            .to_request(),
    )
    .await;
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body["reason"], "state_mismatch");
}

/// `HttpServer::new` builds one `App` per worker from a clone of the authenticator.
#[actix_web::test]
async fn clones_mount_in_several_apps_like_workers_do() {
    let auth = Authenticator::new(PlainStrategy {
        options: FlowOptions::default(),
    })
    .verify(|_req: HttpRequest, name: String| async move { Ok(json!({"name": name})) });
    let key = Key::generate();
    for _worker in 0..3 {
        let app = test::init_service(
            App::new()
                .wrap(
                    SessionMiddleware::builder(MemoryStore::default(), key.clone())
                        .cookie_secure(false)
                        .build(),
                )
                .configure(auth.clone().mount("/auth/plain")),
        )
        .await;
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/auth/plain/login")
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(
        auth.prefix(),
        "",
        "mounting a clone leaves the original alone"
    );
}
