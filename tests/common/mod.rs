//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod app;
pub mod memory_store;
pub mod store_suite;

#[allow(unused_imports)]
pub use app::{app, serve, TestApp};

use p256::pkcs8::{EncodePrivateKey, LineEnding};

/// A fresh P-256 key as PKCS#8 PEM (what Apple's `.p8` files hold).
pub fn fresh_pkcs8_pem() -> String {
    let key = p256::SecretKey::random(&mut rand_core::OsRng);
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

/// A fresh P-256 key as SEC1 PEM (what `openssl ecparam -genkey -noout` writes).
pub fn fresh_sec1_pem() -> String {
    let key = p256::SecretKey::random(&mut rand_core::OsRng);
    key.to_sec1_pem(LineEnding::LF).unwrap().to_string()
}

/// The path of a committed test key.
pub fn key_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

pub const TEAM_ID: &str = "TEAMID1234";
pub const KEY_ID: &str = "KEYID56789";

/// Pulls the JSON data block `<script type="application/json" id="…">` out of a page.
pub fn page_data(html: &str, id: &str) -> serde_json::Value {
    let open = format!("<script type=\"application/json\" id=\"{id}\">");
    let start = html.find(&open).expect("the page has its data block") + open.len();
    let end = start
        + html[start..]
            .find("</script>")
            .expect("the data block ends");
    serde_json::from_str(&html[start..end]).expect("the data block is JSON")
}

/// `application/x-www-form-urlencoded` body from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The session cookie (`id`) a response sets, if any.
pub fn session_cookie<B>(
    resp: &actix_web::dev::ServiceResponse<B>,
) -> Option<actix_web::cookie::Cookie<'static>> {
    resp.response()
        .cookies()
        .find(|c| c.name() == "id")
        .map(|c| c.into_owned())
}

/// Held by every test that changes the process environment (they share one binary).
pub fn env_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
