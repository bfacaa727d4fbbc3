//! A server for measuring what the guard costs: `benches/guard_load.sh` drives it with wrk.
//!
//! - `GET /bare`: a bare actix handler, no session middleware;
//! - `GET /app/open`: the same handler behind the session middleware, no guard;
//! - `GET /app/guarded`: the same handler taking `AppleMusicUser`;
//! - `POST /app/sign-in`: signs a fixed test identity in (answers the cookie).
//!
//! Listens on `BIND` (default `127.0.0.1:0`) and prints `listening on http://…`.

use std::time::Duration;

use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::{
    AppleMusicConfig, AppleMusicIdentity, AppleMusicStrategy, AppleMusicUser, Authenticator,
    MusicUserToken,
};
use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
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
        auth.strategy().signer().token().as_str(),
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
    let server = HttpServer::new(move || {
        let session = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_content_security(CookieContentSecurity::Private)
            .cookie_secure(false)
            .build();
        App::new().route("/bare", web::get().to(bare)).service(
            web::scope("/app")
                .wrap(session)
                .configure(auth.clone().mount("/auth/apple-music"))
                .route("/open", web::get().to(bare))
                .route("/guarded", web::get().to(guarded))
                .route("/sign-in", web::post().to(sign_in)),
        )
    })
    .bind(bind)?;
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    server.run().await
}
