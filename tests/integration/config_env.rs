//! `AppleMusicConfig::from_env` and start-up validation. One test, because it changes the
//! process environment.

use crate::common;

use actix_apple_music::{AppleMusicConfig, AppleMusicStrategy, ConfigError};

const VARS: &[&str] = &[
    "APPLE_MUSIC_TEAM_ID",
    "APPLE_MUSIC_KEY_ID",
    "APPLE_MUSIC_PRIVATE_KEY",
    "APPLE_MUSIC_PRIVATE_KEY_PATH",
    "APPLE_MUSIC_APP_NAME",
    "APPLE_MUSIC_APP_ICON_URL",
    "APPLE_MUSIC_LOGIN_PAGE",
    "APPLE_MUSIC_MUSICKIT_JS_URL",
    "APPLE_MUSIC_AUTHORIZE_URL",
    "APPLE_MUSIC_USER_TOKEN_LIFETIME_SECS",
    "APPLE_MUSIC_DEVELOPER_TOKEN_LIFETIME_SECS",
    "APPLE_MUSIC_ORIGINS",
    "APPLE_MUSIC_STATE_TTL_SECS",
    "APPLE_MUSIC_VERIFY_TOKENS",
    "APPLE_MUSIC_API_BASE_URL",
    "APPLE_MUSIC_ALLOW_GET_CALLBACK",
];

fn build() -> Result<AppleMusicStrategy, ConfigError> {
    AppleMusicStrategy::new(AppleMusicConfig::from_env()?)
}

fn error_with(var: &str, value: &str) -> String {
    std::env::set_var(var, value);
    let err = build().expect_err(var).to_string();
    std::env::remove_var(var);
    err
}

#[test]
fn from_env_reads_every_variable_and_names_the_bad_one() {
    let _env = common::env_lock();
    for var in VARS {
        std::env::remove_var(var);
    }
    let err = build().unwrap_err().to_string();
    assert!(err.contains("APPLE_MUSIC_TEAM_ID"), "{err}");
    assert!(matches!(
        actix_apple_music::sandbox::credentials_from_env(),
        Ok(actix_apple_music::sandbox::Credentials::Sandbox)
    ));
    // One real credential set: never a silent fall-back to the sandbox.
    std::env::set_var("APPLE_MUSIC_PRIVATE_KEY_PATH", "/nonexistent/AuthKey.p8");
    let err = actix_apple_music::sandbox::credentials_from_env()
        .unwrap_err()
        .to_string();
    assert!(err.contains("APPLE_MUSIC_TEAM_ID"), "{err}");
    std::env::set_var("APPLE_MUSIC_TEAM_ID", "TEAMID1234");
    std::env::set_var("APPLE_MUSIC_KEY_ID", "KEYID56789");
    let err = actix_apple_music::sandbox::credentials_from_env()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/AuthKey.p8"),
        "an unreadable key file stops start-up: {err}"
    );
    for var in VARS {
        std::env::remove_var(var);
    }

    std::env::set_var("APPLE_MUSIC_TEAM_ID", "TEAMID1234");
    std::env::set_var("APPLE_MUSIC_KEY_ID", "KEYID56789");
    let err = build().unwrap_err().to_string();
    assert!(
        err.contains("APPLE_MUSIC_PRIVATE_KEY"),
        "partial credentials are an error: {err}"
    );

    std::env::set_var("APPLE_MUSIC_PRIVATE_KEY", common::fresh_sec1_pem());
    build().expect("IDs and key are enough");

    for (var, value, needle) in [
        (
            "APPLE_MUSIC_LOGIN_PAGE",
            "popup",
            "musickit, direct, redirect",
        ),
        (
            "APPLE_MUSIC_USER_TOKEN_LIFETIME_SECS",
            "soon",
            "APPLE_MUSIC_USER_TOKEN_LIFETIME_SECS",
        ),
        ("APPLE_MUSIC_USER_TOKEN_LIFETIME_SECS", "0", "1 or more"),
        (
            "APPLE_MUSIC_DEVELOPER_TOKEN_LIFETIME_SECS",
            "15777001",
            "15777000",
        ),
        (
            "APPLE_MUSIC_STATE_TTL_SECS",
            "-5",
            "APPLE_MUSIC_STATE_TTL_SECS",
        ),
        (
            "APPLE_MUSIC_ORIGINS",
            "https://ok.example,not an origin",
            "origin",
        ),
        ("APPLE_MUSIC_AUTHORIZE_URL", "ftp://x", "authorize URL"),
        (
            "APPLE_MUSIC_MUSICKIT_JS_URL",
            "/relative.js",
            "MusicKit JS URL",
        ),
        ("APPLE_MUSIC_APP_ICON_URL", "icon.png", "app icon URL"),
        ("APPLE_MUSIC_TEAM_ID", "team", "10 upper-case"),
        ("APPLE_MUSIC_VERIFY_TOKENS", "maybe", "true or false"),
        (
            "APPLE_MUSIC_ALLOW_GET_CALLBACK",
            "sometimes",
            "APPLE_MUSIC_ALLOW_GET_CALLBACK",
        ),
        (
            "APPLE_MUSIC_API_BASE_URL",
            "api.music.apple.com",
            "APPLE_MUSIC_API_BASE_URL",
        ),
    ] {
        let err = error_with(var, value);
        assert!(err.contains(needle), "{var}={value}: {err}");
        if var == "APPLE_MUSIC_TEAM_ID" {
            std::env::set_var("APPLE_MUSIC_TEAM_ID", "TEAMID1234");
        }
    }

    std::env::set_var("APPLE_MUSIC_STATE_TTL_SECS", "1");
    std::env::set_var("APPLE_MUSIC_LOGIN_PAGE", "redirect");
    std::env::set_var(
        "APPLE_MUSIC_ORIGINS",
        "https://a.example, http://localhost:8080",
    );
    std::env::set_var("APPLE_MUSIC_APP_NAME", "Mixtape");
    std::env::set_var("APPLE_MUSIC_VERIFY_TOKENS", "false");
    std::env::set_var("APPLE_MUSIC_API_BASE_URL", "http://127.0.0.1:4010");
    std::env::set_var("APPLE_MUSIC_ALLOW_GET_CALLBACK", "true");
    let strategy = build().expect("short state lifetimes are accepted for tests");
    assert_eq!(strategy.api().base_url().as_str(), "http://127.0.0.1:4010/");
    assert_eq!(
        strategy.signer().token().claims().origins(),
        ["https://a.example", "http://localhost:8080"]
    );
    let debug = format!("{strategy:?}");
    assert!(
        debug.contains("Redirect")
            && debug.contains("Mixtape")
            && debug.contains("check_with_apple: false")
            && debug.contains("allow_get_callback: true"),
        "{debug}"
    );
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");

    // Sign in with Apple: its own variables, the MusicKit team, key ID and key by default.
    for var in [
        "APPLE_ID_CLIENT_ID",
        "APPLE_ID_REDIRECT_URL",
        "APPLE_ID_KEY_ID",
        "APPLE_ID_TEAM_ID",
        "APPLE_ID_PRIVATE_KEY",
        "APPLE_ID_PRIVATE_KEY_PATH",
        "APPLE_ID_ISSUER",
    ] {
        std::env::remove_var(var);
    }
    let apple_id = || actix_apple_music::AppleIdStrategy::from_env();
    let err = apple_id().unwrap_err().to_string();
    assert!(err.contains("APPLE_ID_CLIENT_ID"), "{err}");
    std::env::set_var("APPLE_ID_CLIENT_ID", "com.example.web");
    let err = apple_id().unwrap_err().to_string();
    assert!(err.contains("APPLE_ID_REDIRECT_URL"), "{err}");
    std::env::set_var("APPLE_ID_REDIRECT_URL", "not a url");
    let err = apple_id().unwrap_err().to_string();
    assert!(
        err.contains("APPLE_ID_REDIRECT_URL") && err.contains("not a url"),
        "{err}"
    );
    std::env::set_var(
        "APPLE_ID_REDIRECT_URL",
        "https://app.example/auth/apple/callback",
    );
    let strategy = apple_id().expect("the MusicKit team, key ID and key serve by default");
    let secret = strategy.client_secret_signer().unwrap().token();
    assert_eq!(secret.claims().issuer(), "TEAMID1234");
    assert_eq!(secret.claims().key_id(), "KEYID56789");
    assert_eq!(secret.claims().subject(), Some("com.example.web"));
    std::env::set_var("APPLE_ID_KEY_ID", "bad");
    let err = apple_id().unwrap_err().to_string();
    assert!(err.contains("key ID") && err.contains("bad"), "{err}");
    std::env::set_var("APPLE_ID_KEY_ID", "OTHERKEY12");
    std::env::set_var("APPLE_ID_ISSUER", "ftp://elsewhere");
    let err = apple_id().unwrap_err().to_string();
    assert!(err.contains("APPLE_ID_ISSUER"), "{err}");
    std::env::set_var("APPLE_ID_ISSUER", "http://127.0.0.1:9/sandbox/apple-id/");
    let strategy = apple_id().unwrap();
    assert_eq!(
        strategy.config().issuer_url(),
        "http://127.0.0.1:9/sandbox/apple-id"
    );
    assert_eq!(
        strategy
            .client_secret_signer()
            .unwrap()
            .token()
            .claims()
            .key_id(),
        "OTHERKEY12"
    );
    std::env::set_var("APPLE_ID_PRIVATE_KEY_PATH", "/nonexistent/apple-id.p8");
    let err = apple_id().unwrap_err().to_string();
    assert!(err.contains("/nonexistent/apple-id.p8"), "{err}");
    for var in [
        "APPLE_ID_CLIENT_ID",
        "APPLE_ID_REDIRECT_URL",
        "APPLE_ID_KEY_ID",
        "APPLE_ID_PRIVATE_KEY_PATH",
        "APPLE_ID_ISSUER",
    ] {
        std::env::remove_var(var);
    }
}
