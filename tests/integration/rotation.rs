//! Rotating the session key without signing anyone out, on the cookie store (the Redis test
//! in `tests/redis.rs` does the same with sealed values in Redis).

use std::time::Duration;

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::session_store::{
    plain_http_sessions, CompactCookieStore, LifetimeStore, SessionKeys, StoreFailures,
};
use actix_apple_music::{
    test_util, AppleMusicConfig, AppleMusicIdentity, AppleMusicStrategy, AppleMusicUser,
    Authenticator, MusicUserToken,
};
use actix_web::cookie::{Cookie, Key};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};

use crate::common::{KEY_ID, TEAM_ID};

async fn me(user: AppleMusicUser) -> HttpResponse {
    HttpResponse::Ok().body(user.identity().music_user_token().secret().to_owned())
}

type Answer = ServiceResponse<actix_web::body::EitherBody<actix_web::body::BoxBody>>;

async fn app(
    keys: SessionKeys,
    signing: &SigningKey,
) -> impl Service<test_util::AppRequest, Response = Answer, Error = actix_web::Error> {
    let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, signing.clone()).check_with_apple(false);
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    let session = plain_http_sessions(
        LifetimeStore::new(CompactCookieStore::new()),
        keys.current().clone(),
    )
    .build();
    test::init_service(
        App::new()
            .wrap(StoreFailures::around(session).rotating(keys, "id"))
            .configure(auth.mount("/auth/apple-music"))
            .configure(test_util::routes::<AppleMusicStrategy>)
            .route("/me", web::get().to(me))
            .route(
                "/theme",
                web::get().to(|req: actix_web::HttpRequest| async move {
                    HttpResponse::Ok().body(
                        req.cookie("theme")
                            .map_or(String::new(), |c| c.value().to_owned()),
                    )
                }),
            ),
    )
    .await
}

async fn me_with(
    app: &impl Service<test_util::AppRequest, Response = Answer, Error = actix_web::Error>,
    cookie: &Cookie<'static>,
) -> (StatusCode, Option<Cookie<'static>>) {
    let resp = test::call_service(
        app,
        test::TestRequest::get()
            .uri("/me")
            .insert_header(("accept", "application/json"))
            .cookie(cookie.clone())
            .to_request(),
    )
    .await;
    let next = resp.response().cookies().next().map(|c| c.into_owned());
    (resp.status(), next)
}

#[actix_web::test]
async fn a_key_rotation_signs_nobody_out_and_a_session_not_seen_ends_cleanly() {
    let signing = SigningKey::generate();
    let (old, new) = (Key::generate(), Key::generate());
    let identity = |token: &str| {
        AppleMusicIdentity::new(
            MusicUserToken::new(token),
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(86_400),
            Some(false),
        )
    };
    // Signed in under the old key: one session seen during the rotation, one not.
    let before = app(SessionKeys::new(old.clone()), &signing).await;
    let seen = test_util::sign_in::<AppleMusicStrategy>(&before, &identity("seen")).await;
    let unseen = test_util::sign_in::<AppleMusicStrategy>(&before, &identity("unseen")).await;

    // Restarted with the new key, the old one previous: still signed in, and the answer
    // carries the cookie again, under the new key.
    let rotating = app(SessionKeys::new(new.clone()).previous([old]), &signing).await;
    // The app's own cookies beside the session cookie reach the handler as they were sent.
    let resp = test::call_service(
        &rotating,
        test::TestRequest::get()
            .uri("/theme")
            .cookie(seen.clone())
            .cookie(Cookie::new("theme", "dark"))
            .to_request(),
    )
    .await;
    assert_eq!(test::read_body(resp).await, "dark");
    let (status, rewritten) = me_with(&rotating, &seen).await;
    assert_eq!(status, StatusCode::OK);
    let rewritten = rewritten.expect("the cookie is written again under the new key");
    assert_ne!(rewritten.value(), seen.value());

    // Restarted with the new key alone: the rewritten session reads; the one not seen during
    // the rotation is signed out cleanly (401, not 500).
    let after = app(SessionKeys::new(new), &signing).await;
    assert_eq!(me_with(&after, &rewritten).await.0, StatusCode::OK);
    assert_eq!(me_with(&after, &unseen).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me_with(&after, &seen).await.0, StatusCode::UNAUTHORIZED);
    // Under the new key alone, a current cookie is not rewritten on every request.
    assert!(me_with(&after, &rewritten).await.1.is_none());
}

/// Sealing at rest, in the plain test run (a server-side store in memory): every value is
/// sealed and holds no token, a tampered or plaintext value does not read, and a value sealed
/// under a previous key opens during a rotation.
#[actix_web::test]
async fn sealed_values_round_trip_and_a_tampered_or_plaintext_one_does_not_read() {
    use crate::common::memory_store::MemoryStore;
    let signing = SigningKey::generate();
    let store = MemoryStore::default();
    let sealed_app = |keys: SessionKeys| {
        let store = store.clone();
        let signing = signing.clone();
        async move {
            let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, signing).check_with_apple(false);
            let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
            let session = actix_session::SessionMiddleware::builder(
                LifetimeStore::sealed_with(store, &keys),
                keys.current().clone(),
            )
            .cookie_secure(false)
            .build();
            test::init_service(
                App::new()
                    .wrap(StoreFailures::around(session).rotating(keys, "id"))
                    .configure(auth.mount("/auth/apple-music"))
                    .configure(test_util::routes::<AppleMusicStrategy>)
                    .route("/me", web::get().to(me)),
            )
            .await
        }
    };
    let (old, new) = (Key::generate(), Key::generate());
    let app = sealed_app(SessionKeys::new(old.clone())).await;
    let identity = AppleMusicIdentity::new(
        MusicUserToken::new("mut-sealed-at-rest"),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(86_400),
        Some(false),
    );
    let cookie = test_util::sign_in::<AppleMusicStrategy>(&app, &identity).await;
    assert_eq!(me_with(&app, &cookie).await.0, StatusCode::OK);
    let keys = store.keys();
    assert_eq!(keys.len(), 1);
    let state = store.state(&keys[0]).unwrap();
    assert!(!state.is_empty());
    for (name, value) in &state {
        assert!(value.starts_with("aam2."), "{name} is sealed");
        assert!(!value.contains("mut-sealed-at-rest"));
    }
    // Rotating: sealed under the old key, still opens (and is sealed again under the new one).
    let rotating = sealed_app(SessionKeys::new(new).previous([old.clone()])).await;
    assert_eq!(me_with(&rotating, &cookie).await.0, StatusCode::OK);
    // A tampered value, and a plaintext one planted in the store, do not read.
    let key = store.keys()[0].clone();
    let original = store.state(&key).unwrap();
    let mut tampered = original.clone();
    for value in tampered.values_mut() {
        let at = value.len() - 5;
        let flipped = if value.as_bytes()[at] == b'A' {
            "B"
        } else {
            "A"
        };
        value.replace_range(at..at + 1, flipped);
    }
    crate::apple_api::capture_logs();
    store.set_state(&key, tampered);
    assert_eq!(
        me_with(&rotating, &cookie).await.0,
        StatusCode::UNAUTHORIZED
    );
    // …and the operator is told how many values were dropped (never which, nor their text).
    assert!(crate::apple_api::log_lines()
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains("session value(s) did not open")));
    // A session whose values all open says nothing (this binary's other tests load many).
    assert!(!crate::apple_api::log_lines()
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains("store: 0 session value(s)")));
    let mut plain = original.clone();
    for (name, value) in plain.iter_mut() {
        if name.ends_with(".id") {
            *value = "[1,{\"plain\":true}]".into();
        }
    }
    store.set_state(&key, plain);
    assert_eq!(
        me_with(&rotating, &cookie).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A session written before sealing (plaintext) reads under the migration switch until
    // its date, not after.
    let app_on = |sealed: Option<time::OffsetDateTime>| {
        let store = store.clone();
        let (signing, old) = (signing.clone(), old.clone());
        async move {
            let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, signing).check_with_apple(false);
            let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
            let lifetime = match sealed {
                Some(until) => {
                    LifetimeStore::sealed(store, &old).accept_earlier_values_until(until)
                }
                None => LifetimeStore::new(store),
            };
            let session = actix_session::SessionMiddleware::builder(lifetime, old)
                .cookie_secure(false)
                .build();
            test::init_service(
                App::new()
                    .wrap(StoreFailures::around(session))
                    .configure(auth.mount("/auth/apple-music"))
                    .configure(test_util::routes::<AppleMusicStrategy>)
                    .route("/me", web::get().to(me)),
            )
            .await
        }
    };
    let before_sealing = app_on(None).await;
    let written_plain = test_util::sign_in::<AppleMusicStrategy>(&before_sealing, &identity).await;
    let now = time::OffsetDateTime::now_utc();
    let ended = app_on(Some(now - Duration::from_secs(1))).await;
    assert_eq!(
        me_with(&ended, &written_plain).await.0,
        StatusCode::UNAUTHORIZED
    );
    let migrating = app_on(Some(now + Duration::from_secs(600))).await;
    assert_eq!(me_with(&migrating, &written_plain).await.0, StatusCode::OK);
    store.set_state(&key, original);
    assert_eq!(
        me_with(&rotating, &cookie).await.0,
        StatusCode::OK,
        "the original still reads"
    );
    // Sealed again under the new key by the rotation: the old key alone no longer opens it.
    assert_eq!(me_with(&app, &cookie).await.0, StatusCode::UNAUTHORIZED);
}

/// Someone who can write to the store but not read the session key copies a victim's sealed
/// identity into their own session, or the victim's whole session under their own key: each
/// value is sealed for its session's key, so neither reads as the victim.
#[actix_web::test]
async fn a_sealed_value_copied_into_another_session_does_not_read() {
    use crate::common::memory_store::MemoryStore;
    let signing = SigningKey::generate();
    let store = MemoryStore::default();
    let key = Key::generate();
    let config = AppleMusicConfig::new(TEAM_ID, KEY_ID, signing).check_with_apple(false);
    let auth = Authenticator::new(AppleMusicStrategy::new(config).unwrap());
    let session = actix_session::SessionMiddleware::builder(
        LifetimeStore::sealed(store.clone(), &key),
        key.clone(),
    )
    .cookie_secure(false)
    .build();
    let app = test::init_service(
        App::new()
            .wrap(StoreFailures::around(session))
            .configure(auth.mount("/auth/apple-music"))
            .configure(test_util::routes::<AppleMusicStrategy>)
            .route("/me", web::get().to(me)),
    )
    .await;
    let identity = |token: &str| {
        AppleMusicIdentity::new(
            MusicUserToken::new(token),
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(86_400),
            Some(false),
        )
    };
    let victim = test_util::sign_in::<AppleMusicStrategy>(&app, &identity("mut-victim")).await;
    let victim_key = store.keys().pop().unwrap();
    let attacker = test_util::sign_in::<AppleMusicStrategy>(&app, &identity("mut-attacker")).await;
    let attacker_key = store.keys().into_iter().find(|k| *k != victim_key).unwrap();
    let me_body = |cookie: Cookie<'static>| {
        let app = &app;
        async move {
            let resp = test::call_service(
                app,
                test::TestRequest::get()
                    .uri("/me")
                    .insert_header(("accept", "application/json"))
                    .cookie(cookie)
                    .to_request(),
            )
            .await;
            let status = resp.status();
            (
                status,
                String::from_utf8(test::read_body(resp).await.to_vec()).unwrap(),
            )
        }
    };
    assert_eq!(
        me_body(victim.clone()).await,
        (StatusCode::OK, "mut-victim".into())
    );
    assert_eq!(
        me_body(attacker.clone()).await,
        (StatusCode::OK, "mut-attacker".into())
    );
    let victims = store.state(&victim_key).unwrap();
    let attackers = store.state(&attacker_key).unwrap();

    // The victim's identity value alone, moved into the attacker's session.
    let mut planted = attackers.clone();
    for (name, value) in &victims {
        if name.ends_with(".id") {
            planted.insert(name.clone(), value.clone());
        }
    }
    assert_ne!(
        planted, attackers,
        "the identity value was found and copied"
    );
    store.set_state(&attacker_key, planted);
    let (status, body) = me_body(attacker.clone()).await;
    assert!(!body.contains("mut-victim"), "{status} {body}");
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The victim's whole session, under the attacker's key.
    store.set_state(&attacker_key, victims);
    let (status, body) = me_body(attacker).await;
    assert!(!body.contains("mut-victim"), "{status} {body}");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The victim is still signed in.
    assert_eq!(me_body(victim).await, (StatusCode::OK, "mut-victim".into()));
}
