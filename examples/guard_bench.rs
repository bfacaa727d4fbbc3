//! A server for measuring what the guard costs: `benches/guard_load.sh` drives it with wrk.
//!
//! - `GET /bare`: a bare actix handler, no session middleware;
//! - `GET /app/open`: the same handler behind the session middleware (the compact cookie
//!   store, as the docs recommend for one instance), no guard;
//! - `GET /app/guarded`: the same handler taking `AppleMusicUser`;
//! - `POST /app/sign-in`: signs a fixed test identity in (answers the cookie).
//! - with `--features redis` and `SESSION_REDIS_URL` set, the same three under `/redis/…`
//!   on the crate's Redis store (`session_store::redis`, through `LifetimeStore` and `StoreFailures`).
//! - `/acct/…` and `/redis-acct/…`: the same guarded route with the account lifecycle on
//!   (`Authenticator::accounts`: in memory, and in Redis), and `/noacct/…`, `/redis-noacct/…`
//!   with the same sign-in without it, so the sign-out check's cost shows; sign in there with
//!   `POST …/__test/sign-in/<strategy>` (`test_util`), body `{"identity": …, "user": "bench"}`
//!   (from `GET /sign-in-body`).
//!
//! Listens on `BIND` (default `127.0.0.1:0`) and prints `listening on http://…`. With
//! `METRICS=1` the Prometheus recorder is installed (as the demo's `METRICS_BIND` does), so
//! `benches/metrics_load.sh` can compare a guarded request with metrics on and off.

use std::time::Duration;

use actix_apple_music::accounts::Accounts;
use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::session_store::{CompactCookieStore, LifetimeStore, StoreFailures};
use actix_apple_music::test_util;
use actix_apple_music::{
    AppleMusicConfig, AppleMusicIdentity, AppleMusicStrategy, AppleMusicUser, Authenticator,
    MusicUserToken,
};
use actix_session::config::CookieContentSecurity;
use actix_session::{SessionExt, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

async fn bare() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

async fn guarded(_user: AppleMusicUser) -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

fn identity() -> AppleMusicIdentity {
    AppleMusicIdentity::new(
        MusicUserToken::new("x".repeat(600)),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(180 * 86_400),
        Some(false),
    )
}

/// `GET /sign-in-body`: the test sign-in body for the account scopes.
async fn sign_in_body() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"identity": identity(), "user": "bench"}))
}

async fn sign_in(
    req: HttpRequest,
    auth: web::Data<Authenticator<AppleMusicStrategy>>,
) -> HttpResponse {
    match actix_apple_music::test_util::sign_in_session(
        &auth,
        &req.get_session(),
        &identity(),
        None,
    ) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

/// The session middleware of the cookie scopes: the compact cookie store.
fn cookie_session(key: &Key) -> actix_apple_music::session_store::SessionStack<CompactCookieStore> {
    StoreFailures::around(
        SessionMiddleware::builder(LifetimeStore::new(CompactCookieStore::new()), key.clone())
            .cookie_content_security(CookieContentSecurity::Private)
            .cookie_secure(false)
            .build(),
    )
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    if std::env::var("METRICS").as_deref() == Ok("1") {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("the only recorder");
        actix_web::rt::spawn(async move {
            let mut every = actix_web::rt::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        });
        println!("metrics: on");
    }
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:0".into());
    let config = AppleMusicConfig::new("TEAMID1234", "KEYID56789", SigningKey::generate());
    let auth = Authenticator::new(AppleMusicStrategy::new(config).expect("valid config"));
    let with_accounts = |accounts: Accounts| {
        auth.clone()
            .accounts(accounts)
            .account(|user: &String| user.clone())
    };
    let in_memory = with_accounts(Accounts::in_memory());
    let key = Key::generate();
    #[cfg(feature = "redis")]
    let redis = match std::env::var("SESSION_REDIS_URL") {
        Ok(url) => {
            let redis = actix_apple_music::session_store::redis(&url, &key)
                .await
                .map_err(std::io::Error::other)?;
            Some((redis.store(), with_accounts(redis.accounts())))
        }
        Err(_) => None,
    };
    let server = HttpServer::new(move || {
        let session = cookie_session(&key);
        let app = App::new()
            .configure(auth.mount("/auth/apple-music"))
            .route("/bare", web::get().to(bare))
            .route("/sign-in-body", web::get().to(sign_in_body))
            .service(
                web::scope("/app")
                    .wrap(session)
                    .route("/open", web::get().to(bare))
                    .route("/guarded", web::get().to(guarded))
                    .route("/sign-in", web::post().to(sign_in)),
            )
            .service(
                web::scope("/acct")
                    .wrap(cookie_session(&key))
                    .app_data(web::Data::new(in_memory.clone()))
                    .route("/guarded", web::get().to(guarded))
                    .configure(test_util::routes::<AppleMusicStrategy>),
            )
            .service(
                web::scope("/noacct")
                    .wrap(cookie_session(&key))
                    .route("/guarded", web::get().to(guarded))
                    .configure(test_util::routes::<AppleMusicStrategy>),
            );
        #[cfg(feature = "redis")]
        let app = app.configure(|cfg| {
            if let Some((store, redis_accounts)) = &redis {
                let session = || {
                    SessionMiddleware::builder(store.clone(), key.clone())
                        .cookie_content_security(CookieContentSecurity::Private)
                        .cookie_name("rid".into())
                        .cookie_secure(false)
                        .build()
                };
                cfg.service(
                    web::scope("/redis-noacct")
                        .wrap(session())
                        .wrap(actix_apple_music::session_store::StoreFailures::new())
                        .route("/guarded", web::get().to(guarded))
                        .configure(test_util::routes::<AppleMusicStrategy>),
                );
                cfg.service(
                    web::scope("/redis-acct")
                        .wrap(session())
                        .wrap(actix_apple_music::session_store::StoreFailures::new())
                        .app_data(web::Data::new(redis_accounts.clone()))
                        .route("/guarded", web::get().to(guarded))
                        .configure(test_util::routes::<AppleMusicStrategy>),
                );
                cfg.service(
                    web::scope("/redis")
                        .wrap(session())
                        .wrap(actix_apple_music::session_store::StoreFailures::new())
                        .route("/open", web::get().to(bare))
                        .route("/guarded", web::get().to(guarded))
                        .route("/sign-in", web::post().to(sign_in)),
                );
            }
        });
        app
    })
    .bind(bind)?;
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    println!(
        "test sign-in path: {}",
        test_util::sign_in_path::<AppleMusicStrategy>()
    );
    server.run().await
}
