//! A server for measuring what the guard costs: `benches/guard_load.sh` drives it with wrk.
//!
//! - `GET /bare`: a bare actix handler, no session middleware;
//! - `GET /app/open`: the same handler behind the session middleware (the compact cookie
//!   store, as the docs recommend for one instance), no guard;
//! - `GET /app/guarded`: the same handler taking `AppleMusicUser`;
//! - `POST /app/sign-in`: signs a fixed test identity in (answers the cookie).
//! - with `--features redis` and `SESSION_REDIS_URL` set, the same three under `/redis/…`
//!   on the crate's Redis store (`session_store::redis`, through `LifetimeStore` and `StoreFailures`).
//!
//! Listens on `BIND` (default `127.0.0.1:0`) and prints `listening on http://…`.

use std::time::Duration;

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::session_store::{CompactCookieStore, LifetimeStore, StoreFailures};
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

async fn sign_in(
    req: HttpRequest,
    auth: web::Data<Authenticator<AppleMusicStrategy>>,
) -> HttpResponse {
    let identity = AppleMusicIdentity::new(
        MusicUserToken::new("x".repeat(600)),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(180 * 86_400),
        Some(false),
    );
    match auth.sign_in(&req.get_session(), &identity, None) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:0".into());
    let config = AppleMusicConfig::new("TEAMID1234", "KEYID56789", SigningKey::generate());
    let auth = Authenticator::new(AppleMusicStrategy::new(config).expect("valid config"));
    let key = Key::generate();
    #[cfg(feature = "redis")]
    let redis = match std::env::var("SESSION_REDIS_URL") {
        Ok(url) => Some(
            actix_apple_music::session_store::redis(&url, &key)
                .await
                .map_err(std::io::Error::other)?
                .store(),
        ),
        Err(_) => None,
    };
    let server = HttpServer::new(move || {
        let session = StoreFailures::around(
            SessionMiddleware::builder(LifetimeStore::new(CompactCookieStore::new()), key.clone())
                .cookie_content_security(CookieContentSecurity::Private)
                .cookie_secure(false)
                .build(),
        );
        let app = App::new()
            .configure(auth.clone().mount("/auth/apple-music"))
            .route("/bare", web::get().to(bare))
            .service(
                web::scope("/app")
                    .wrap(session)
                    .route("/open", web::get().to(bare))
                    .route("/guarded", web::get().to(guarded))
                    .route("/sign-in", web::post().to(sign_in)),
            );
        #[cfg(feature = "redis")]
        let app = app.configure(|cfg| {
            if let Some(store) = &redis {
                let session = SessionMiddleware::builder(store.clone(), key.clone())
                    .cookie_content_security(CookieContentSecurity::Private)
                    .cookie_name("rid".into())
                    .cookie_secure(false)
                    .build();
                cfg.service(
                    web::scope("/redis")
                        .wrap(session)
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
    server.run().await
}
