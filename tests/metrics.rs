//! Audit events and metrics, seen from outside: a process-wide `metrics` recorder (the
//! Prometheus exporter's, as the demo installs it), an audit hook and a `log` capture (the
//! crate's `tracing` events reach `log` when no subscriber is set). Its own test binary: the
//! recorder, the hooks and the logger are one per process.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_apple_music::audit::{self, AuditEvent};
use actix_apple_music::developer_token::SigningKey;
use actix_apple_music::session_store::{LifetimeStore, StoreFailures};
use actix_apple_music::test_util::{self, AppleMusicStandIn};
use actix_apple_music::{
    accounts::Accounts, AppleMusicConfig, AppleMusicStrategy, AppleMusicUser, Authenticator,
};
use actix_session::SessionMiddleware;
use actix_web::cookie::Key;
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use common::memory_store::MemoryStore;
use common::{KEY_ID, TEAM_ID};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("the only recorder of this binary");
        handle
    })
}

fn events() -> &'static Mutex<Vec<AuditEvent>> {
    static EVENTS: OnceLock<Mutex<Vec<AuditEvent>>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        audit::on_event(|event| events().lock().unwrap().push(event.clone()));
        Mutex::default()
    })
}

fn log_lines() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| {
        struct Capture;
        impl log::Log for Capture {
            fn enabled(&self, _: &log::Metadata<'_>) -> bool {
                true
            }
            fn log(&self, record: &log::Record<'_>) {
                log_lines()
                    .lock()
                    .unwrap()
                    .push(format!("{} {}", record.target(), record.args()));
            }
            fn flush(&self) {}
        }
        log::set_boxed_logger(Box::new(Capture)).expect("the only logger of this binary");
        log::set_max_level(log::LevelFilter::Trace);
        Mutex::default()
    })
}

async fn me(user: AppleMusicUser) -> HttpResponse {
    match user
        .api(actix_apple_music::apple_music_api::ApiRequest::get(
            "/v1/me/storefront",
        ))
        .await
    {
        Ok(_) => HttpResponse::Ok().finish(),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

/// A failed sign-in reaches the metrics facade with its strategy and reason, a good one as a
/// success; Apple calls and store operations are counted and timed; the developer token's
/// seconds left are a gauge; every step is an audit event for the hook and a log line — and
/// no token, state, developer token or cookie is in any of them.
#[actix_web::test]
async fn sign_ins_apple_calls_and_store_operations_are_measured_and_carry_no_secret() {
    let metrics = recorder();
    events();
    log_lines();
    let stand_in = AppleMusicStandIn::new();
    let store = MemoryStore::default();
    let auth = Authenticator::new(
        AppleMusicStrategy::new(
            AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate())
                .user_token_lifetime(Duration::from_secs(3600))
                .api_stand_in(&stand_in),
        )
        .unwrap(),
    )
    .accounts(Accounts::in_memory())
    .on_sign_in(|_sign_in| async { Ok("metrics-account".to_owned()) })
    .account(|user: &String| user.clone());
    let app = test::init_service(
        App::new()
            .wrap(StoreFailures::around(
                SessionMiddleware::builder(LifetimeStore::new(store), Key::generate())
                    .cookie_secure(false)
                    .build(),
            ))
            .configure(auth.mount("/auth/apple-music"))
            .route("/me", web::get().to(me)),
    )
    .await;

    let token = "mut-metrics-secret-0001";
    let good = test_util::log_in_with_apple_music(&app, "/auth/apple-music", token, None).await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
    // The same login page's state twice: the second is refused as state_mismatch.
    let page = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/auth/apple-music/login")
            .to_request(),
    )
    .await;
    let cookie = page.response().cookies().next().unwrap().into_owned();
    let html = String::from_utf8(test::read_body(page).await.to_vec()).unwrap();
    let data = test_util::login_page_data(&html);
    let (state, developer_token) = (
        data["state"].as_str().unwrap().to_owned(),
        data["developerToken"].as_str().unwrap().to_owned(),
    );
    let form =
        format!("code=mut-metrics-secret-0002&state={state}&id_token_hint={developer_token}");
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let resp = test::call_service(
            &app,
            test::TestRequest::post()
                .uri("/auth/apple-music/callback")
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .insert_header(("accept", "application/json"))
                .cookie(cookie.clone())
                .set_payload(form.clone())
                .to_request(),
        )
        .await;
        statuses.push(resp.status());
    }
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::BAD_REQUEST]);
    // A guarded call to Apple Music API (the stand-in) with the first session.
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/me")
            .cookie(good.cookie.clone())
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let text = metrics.render();
    let line = |needles: &[&str]| -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    assert!(
        line(&[
            "actix_apple_music_sign_ins_total{",
            "strategy=\"apple-music\"",
            "outcome=\"failure\"",
            "reason=\"state_mismatch\""
        ])
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        line(&[
            "actix_apple_music_sign_ins_total{",
            "outcome=\"success\"",
            "strategy=\"apple-music\""
        ])
        .is_some_and(|n| n >= 2.0),
        "{text}"
    );
    assert!(
        line(&[
            "actix_apple_music_apple_requests_total{",
            "endpoint=\"apple_music_api\"",
            "outcome=\"2xx\""
        ])
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        text.contains("actix_apple_music_apple_request_duration_seconds"),
        "{text}"
    );
    for operation in ["load", "save", "spend"] {
        assert!(
            line(&[
                "actix_apple_music_store_operations_total{",
                &format!("operation=\"{operation}\""),
                "outcome=\"ok\""
            ])
            .is_some_and(|n| n >= 1.0),
            "{operation}: {text}"
        );
    }
    let left = line(&["actix_apple_music_developer_token_seconds_left"]).unwrap();
    assert!(left > 0.0 && left <= 15_777_000.0, "{left}");

    let seen: Vec<AuditEvent> = events().lock().unwrap().clone();
    assert!(seen.contains(&AuditEvent::SignedIn {
        strategy: "apple-music".into(),
        account: Some("metrics-account".into()),
    }));
    assert!(seen.iter().any(|e| matches!(e,
        AuditEvent::SignInFailed { strategy, family, reason }
            if strategy == "apple-music" && *family == "token_error" && reason == "state_mismatch")));
    let logged = log_lines().lock().unwrap().join("\n");
    assert!(
        logged.contains("actix_apple_music::audit sign-in failed: token_error (state_mismatch)"),
        "{logged}"
    );

    let cookie_value = good.cookie.value().to_owned();
    let everything = format!("{text}\n{seen:?}\n{logged}");
    for secret in [
        token,
        "mut-metrics-secret-0002",
        &state,
        &developer_token,
        &cookie_value,
    ] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

/// Sign out everywhere, a re-login asked and a token Apple refuses are audit events too.
#[actix_web::test]
async fn sign_outs_and_refused_tokens_are_audit_events() {
    events();
    let accounts = Accounts::in_memory();
    accounts
        .require_relogin("audit-acct", "apple-music")
        .await
        .unwrap();
    accounts.sign_out_everywhere("audit-acct").await.unwrap();
    let stand_in = AppleMusicStandIn::new();
    stand_in.refuse("mut-refused-by-apple");
    let strategy = AppleMusicStrategy::new(
        AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate()).api_stand_in(&stand_in),
    )
    .unwrap();
    let refused = strategy
        .api()
        .send(
            actix_apple_music::apple_music_api::ApiRequest::get("/v1/me/storefront"),
            Some(&actix_apple_music::MusicUserToken::new(
                "mut-refused-by-apple",
            )),
        )
        .await;
    assert!(refused.is_err());
    let seen = Arc::new(events().lock().unwrap().clone());
    for want in [
        AuditEvent::ReloginAsked {
            account: "audit-acct".into(),
            strategy: "apple-music".into(),
        },
        AuditEvent::SignedOutEverywhere {
            account: "audit-acct".into(),
            but_this_session: false,
        },
        AuditEvent::TokenRefusedByApple {
            strategy: "apple-music".into(),
        },
    ] {
        assert!(seen.contains(&want), "{want:?} not in {seen:?}");
    }
    assert!(!format!("{seen:?}").contains("mut-refused-by-apple"));
}

/// Store failures reach `StoreFailures` through a task-local slot (actix-session turns a
/// store's error into its own bare `500`, so only a layer outside it can answer a typed `503`).
/// Without that middleware around `SessionMiddleware` nothing answers `503`: the app gets
/// actix-session's `500`, and the crate says once, in its log, what is missing.
#[actix_web::test]
async fn without_store_failures_a_store_outage_is_a_bare_500_and_the_log_says_why() {
    log_lines();
    let store = MemoryStore::default();
    let auth = Authenticator::new(
        AppleMusicStrategy::new(
            AppleMusicConfig::new(TEAM_ID, KEY_ID, SigningKey::generate()).check_with_apple(false),
        )
        .unwrap(),
    );
    let session = |store: MemoryStore| {
        SessionMiddleware::builder(LifetimeStore::new(store), Key::generate())
            .cookie_secure(false)
            .build()
    };
    let with = test::init_service(
        App::new()
            .wrap(StoreFailures::around(session(store.clone())))
            .configure(auth.clone().mount("/auth/apple-music")),
    )
    .await;
    let without = test::init_service(
        App::new()
            .wrap(session(store.clone()))
            .configure(auth.mount("/auth/apple-music")),
    )
    .await;
    store.set_mode(common::memory_store::DOWN);
    let login = || {
        test::TestRequest::get()
            .uri("/auth/apple-music/login")
            .to_request()
    };
    fn status<B>(
        result: Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) -> StatusCode {
        match result {
            Ok(resp) => resp.status(),
            Err(e) => e.error_response().status(),
        }
    }
    assert_eq!(
        status(test::try_call_service(&with, login()).await),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(!log_lines()
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("no StoreFailures")));
    assert_eq!(
        status(test::try_call_service(&without, login()).await),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let said = log_lines()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("no StoreFailures around SessionMiddleware"))
        .count();
    assert_eq!(said, 1, "the missing middleware is named in the log");
}
