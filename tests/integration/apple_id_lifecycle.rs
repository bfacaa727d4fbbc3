//! Taking people out with Sign in with Apple, against the project's stand-in for Apple ID
//! (`apple_id.rs`): server-to-server notifications (each type, an unknown type, a repeat, each
//! forgery), revocation and the refresh-token check (each outcome), account deletion.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_apple_music::accounts::Accounts;
use actix_apple_music::{
    AccountDeletionError, AppleIdNotification, AppleIdNotificationKind, Authenticator, Clock,
    RefreshCheck, RefreshToken, Revocation,
};
use actix_web::cookie::{Cookie, Key};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{test, web};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

use super::apple_id::{callback, harness, start, whoami, Answer, Harness, CLIENT_ID, PREFIX};
use crate::common::memory_store::MemoryStore;

type Events = Arc<Mutex<Vec<AppleIdNotification>>>;

async fn app(
    h: &Harness,
    accounts: &Accounts,
    events: &Events,
) -> impl Service<
    actix_apple_music::test_util::AppRequest,
    Response = ServiceResponse,
    Error = actix_web::Error,
> {
    let seen = events.clone();
    let strategy = h.strategy().on_notification(move |event| {
        seen.lock().unwrap().push(event);
        async {}
    });
    let auth = Authenticator::new(strategy).accounts(accounts.clone());
    crate::common::app(
        MemoryStore::default(),
        Key::generate(),
        auth.clone(),
        PREFIX,
        |cfg| {
            cfg.route("/whoami", web::get().to(whoami));
        },
    )
    .await
}

/// Signs `sub` in through the whole flow; answers the session cookie.
async fn sign_in<S>(app: &S, h: &Harness, sub: &str) -> Cookie<'static>
where
    S: Service<
        actix_apple_music::test_util::AppRequest,
        Response = ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let (cookie, state, nonce, _) = start(app).await;
    let code = format!("code-{}", URL_SAFE_NO_PAD.encode(state.as_bytes()));
    let mut claims = h.claims(&nonce);
    claims["sub"] = sub.into();
    h.answer(
        &code,
        Answer::Token {
            claims,
            kid: "k1".into(),
        },
    );
    let (status, body, cookie2) =
        callback(app, &cookie, &[("code", &code), ("state", &state)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    cookie2.unwrap()
}

async fn whoami_status<S>(app: &S, cookie: &Cookie<'static>) -> StatusCode
where
    S: Service<
        actix_apple_music::test_util::AppRequest,
        Response = ServiceResponse,
        Error = actix_web::Error,
    >,
{
    test::call_service(
        app,
        test::TestRequest::get()
            .uri("/whoami")
            .insert_header(("accept", "application/json"))
            .cookie(cookie.clone())
            .to_request(),
    )
    .await
    .status()
}

/// Posts `body` to the notifications route: status and JSON answer.
async fn notify<S>(app: &S, body: Value) -> (StatusCode, Value)
where
    S: Service<
        actix_apple_music::test_util::AppRequest,
        Response = ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let resp = test::call_service(
        app,
        test::TestRequest::post()
            .uri(&format!("{PREFIX}/notifications"))
            .set_json(body)
            .to_request(),
    )
    .await;
    let status = resp.status();
    assert!(
        resp.response().cookies().next().is_none(),
        "no session is made"
    );
    (
        status,
        serde_json::from_slice(&test::read_body(resp).await).unwrap_or(Value::Null),
    )
}

impl Harness {
    /// A notification's claims as Apple sends them (`events` a JSON string).
    fn notification(&self, kind: &str, sub: &str) -> Value {
        let now = self.clock.now().unix_timestamp();
        // When it happened, in real time (after the test's sign-ins), in milliseconds.
        let event_time =
            (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        json!({
            "iss": self.issuer, "aud": CLIENT_ID, "iat": now, "jti": format!("jti-{kind}-{now}"),
            "events": json!({"type": kind, "sub": sub, "event_time": event_time,
                             "email": "x@privaterelay.appleid.com", "is_private_email": "true"})
                .to_string(),
        })
    }

    /// `claims` signed by the stand-in's key `kid`.
    fn signed(&self, claims: &Value, kid: &str) -> String {
        let provider = self.provider.lock().unwrap();
        let key = provider.keys.iter().find(|k| k.kid == kid).unwrap();
        let header = Header {
            kid: Some(kid.into()),
            ..Header::new(Algorithm::ES256)
        };
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
    }
}

#[actix_web::test]
async fn consent_revoked_signs_every_session_of_that_apple_id_out_once_and_no_other() {
    let h = harness();
    let (accounts, events) = (Accounts::in_memory(), Events::default());
    let app = app(&h, &accounts, &events).await;
    let laptop = sign_in(&app, &h, "001234.ada").await;
    let phone = sign_in(&app, &h, "001234.ada").await;
    let bob = sign_in(&app, &h, "001234.bob").await;
    for cookie in [&laptop, &phone, &bob] {
        assert_eq!(whoami_status(&app, cookie).await, StatusCode::OK);
    }
    let payload = h.signed(&h.notification("consent-revoked", "001234.ada"), "k1");
    let (status, body) = notify(&app, json!({ "payload": payload })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for cookie in [&laptop, &phone] {
        assert_eq!(whoami_status(&app, cookie).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        whoami_status(&app, &bob).await,
        StatusCode::OK,
        "another person stays"
    );
    {
        let seen = events.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].kind, AppleIdNotificationKind::ConsentRevoked);
        assert_eq!(seen[0].sub, "001234.ada");
        assert_eq!(seen[0].signed_out_accounts, vec!["001234.ada".to_owned()]);
    }
    // Ada signs in again; Apple delivers the event again: 200, the app hears of it once, and
    // the new sign-in (after the event) stays.
    let again = sign_in(&app, &h, "001234.ada").await;
    let (status, _) = notify(&app, json!({ "payload": payload })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        events.lock().unwrap().len(),
        1,
        "a repeat reaches the hook once"
    );
    assert_eq!(
        whoami_status(&app, &again).await,
        StatusCode::OK,
        "a sign-in after the event is not signed out by its repeat"
    );
}

#[actix_web::test]
async fn account_delete_with_events_as_an_object_signs_out_too() {
    let h = harness();
    let (accounts, events) = (Accounts::in_memory(), Events::default());
    let app = app(&h, &accounts, &events).await;
    let ada = sign_in(&app, &h, "001234.ada").await;
    let mut claims = h.notification("account-delete", "001234.ada");
    claims["events"] = serde_json::from_str(claims["events"].as_str().unwrap()).unwrap();
    let (status, _) = notify(&app, json!({"payload": h.signed(&claims, "k1")})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(whoami_status(&app, &ada).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        events.lock().unwrap()[0].kind,
        AppleIdNotificationKind::AccountDeleted
    );
}

#[actix_web::test]
async fn email_events_and_unknown_types_reach_the_hook_and_sign_nobody_out() {
    let h = harness();
    let (accounts, events) = (Accounts::in_memory(), Events::default());
    let app = app(&h, &accounts, &events).await;
    let ada = sign_in(&app, &h, "001234.ada").await;
    for kind in ["email-disabled", "email-enabled", "a-type-from-the-future"] {
        let payload = h.signed(&h.notification(kind, "001234.ada"), "k1");
        let (status, body) = notify(&app, json!({ "payload": payload })).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
    }
    assert_eq!(whoami_status(&app, &ada).await, StatusCode::OK);
    let seen = events.lock().unwrap();
    let kinds: Vec<_> = seen.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            AppleIdNotificationKind::EmailDisabled,
            AppleIdNotificationKind::EmailEnabled,
            AppleIdNotificationKind::Other("a-type-from-the-future".into()),
        ]
    );
    assert_eq!(seen[0].email.as_deref(), Some("x@privaterelay.appleid.com"));
    assert_eq!(
        seen[0].is_private_email,
        Some(true),
        "the string \"true\" reads"
    );
    assert!(seen[0].signed_out_accounts.is_empty());
}

#[actix_web::test]
async fn a_forged_or_malformed_notification_is_refused_with_its_reason_and_changes_nothing() {
    let h = harness();
    let (accounts, events) = (Accounts::in_memory(), Events::default());
    let app = app(&h, &accounts, &events).await;
    let ada = sign_in(&app, &h, "001234.ada").await;
    let good = h.notification("consent-revoked", "001234.ada");
    let with = |field: &str, value: Value| {
        let mut claims = good.clone();
        claims[field] = value;
        claims
    };
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let too_old = h.clock.now().unix_timestamp() - 25 * 3600;
    let cases = [
        (json!({"payload": h.signed(&good, "k2")}), "unknown_key"),
        (
            json!({"payload": h.signed(&with("aud", "com.other.app".into()), "k1")}),
            "wrong_audience",
        ),
        (
            json!({"payload": h.signed(&with("iss", "https://evil.example".into()), "k1")}),
            "wrong_issuer",
        ),
        (json!({"payload": unsigned}), "not_a_jws"),
        (
            json!({"payload": h.signed(&with("iat", too_old.into()), "k1")}),
            "too_old",
        ),
        (json!({"payload": "not a jws"}), "not_a_jws"),
        (
            json!({"payload": h.signed(&with("events", "{}".into()), "k1")}),
            "bad_events",
        ),
        (json!({"nothing": 1}), "no_payload"),
    ];
    for (body, reason) in cases {
        let (status, answer) = notify(&app, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reason}: {answer}");
        assert_eq!(
            answer,
            json!({"error": "invalid_notification", "reason": reason})
        );
    }
    assert_eq!(whoami_status(&app, &ada).await, StatusCode::OK);
    assert!(events.lock().unwrap().is_empty());
    // A tampered signature (a character inside it: the last one's low bits are padding).
    let mut tampered = h.signed(&good, "k1").into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, answer) = notify(&app, json!({ "payload": tampered })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["reason"], "bad_signature");
    assert_eq!(whoami_status(&app, &ada).await, StatusCode::OK);
}

fn form_of(forms: &[HashMap<String, String>]) -> HashMap<String, String> {
    forms.last().cloned().expect("the stand-in was asked")
}

#[actix_web::test]
async fn revocation_answers_each_outcome() {
    let h = harness();
    let strategy = h.strategy();
    let token = RefreshToken::new("rt-secret-1");
    assert_eq!(strategy.revoke(&token).await, Revocation::Revoked);
    let sent = form_of(&h.provider.lock().unwrap().revoke_forms);
    assert_eq!(sent["client_id"], CLIENT_ID);
    assert_eq!(sent["token"], "rt-secret-1");
    assert_eq!(sent["token_type_hint"], "refresh_token");
    assert_eq!(
        jsonwebtoken::decode_header(&sent["client_secret"])
            .unwrap()
            .alg,
        Algorithm::ES256,
        "a fresh client secret"
    );
    assert_eq!(strategy.client_id(), CLIENT_ID);

    h.provider.lock().unwrap().revoke_answer =
        Some((400, r#"{"error":"invalid_client"}"#.into(), None));
    assert_eq!(
        strategy.revoke(&token).await,
        Revocation::Refused {
            error: "invalid_client".into()
        }
    );
    h.provider.lock().unwrap().revoke_answer = Some((503, String::new(), Some("7")));
    match strategy.revoke(&token).await {
        Revocation::Unavailable { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(7))
        }
        other => panic!("{other:?}"),
    }
    let debug = format!("{:?}", strategy.revoke(&token).await);
    assert!(!debug.contains("rt-secret-1"), "{debug}");
}

#[actix_web::test]
async fn the_refresh_token_check_answers_alive_revoked_refused_and_unavailable() {
    let h = harness();
    let strategy = h.strategy();
    let token = RefreshToken::new("rt-secret-1");
    assert_eq!(
        strategy.check_refresh_token(&token).await,
        RefreshCheck::Alive
    );
    let sent = form_of(&h.provider.lock().unwrap().refresh_forms);
    assert_eq!(sent["grant_type"], "refresh_token");
    assert_eq!(sent["refresh_token"], "rt-secret-1");
    assert_eq!(sent["client_id"], CLIENT_ID);
    let answers = [
        (
            400,
            r#"{"error":"invalid_grant"}"#,
            None,
            RefreshCheck::Revoked,
        ),
        (
            400,
            r#"{"error":"invalid_client"}"#,
            None,
            RefreshCheck::Refused {
                error: "invalid_client".into(),
            },
        ),
    ];
    for (status, body, retry, expected) in answers {
        h.provider.lock().unwrap().refresh_answer = Some((status, body.into(), retry));
        assert_eq!(strategy.check_refresh_token(&token).await, expected);
    }
    h.provider.lock().unwrap().refresh_answer = Some((502, "<html>".into(), Some("2")));
    match strategy.check_refresh_token(&token).await {
        RefreshCheck::Unavailable { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(2))
        }
        other => panic!("{other:?}"),
    }
}

#[actix_web::test]
async fn deleting_an_account_revokes_then_signs_out_everywhere_then_runs_the_apps_step() {
    let h = harness();
    let accounts = Accounts::in_memory();
    let auth = Authenticator::new(h.strategy()).accounts(accounts.clone());
    let app = crate::common::app(
        MemoryStore::default(),
        Key::generate(),
        auth.clone(),
        PREFIX,
        |cfg| {
            cfg.route("/whoami", web::get().to(whoami));
        },
    )
    .await;
    let ada = sign_in(&app, &h, "001234.ada").await;
    let token = RefreshToken::new("rt-secret-1");
    // Apple unavailable: nothing happens.
    h.provider.lock().unwrap().revoke_answer = Some((503, String::new(), None));
    let forgotten = Arc::new(Mutex::new(false));
    let flag = forgotten.clone();
    let result = auth
        .delete_account("001234.ada", Some(&token), || async move {
            *flag.lock().unwrap() = true;
            Ok::<_, String>(())
        })
        .await;
    assert!(matches!(result, Err(AccountDeletionError::NotRevoked(_))));
    assert!(!*forgotten.lock().unwrap());
    assert_eq!(whoami_status(&app, &ada).await, StatusCode::OK);
    // Apple back: revoked, signed out, forgotten.
    h.provider.lock().unwrap().revoke_answer = None;
    let flag = forgotten.clone();
    auth.delete_account("001234.ada", Some(&token), || async move {
        *flag.lock().unwrap() = true;
        Ok::<_, String>(())
    })
    .await
    .unwrap();
    assert!(*forgotten.lock().unwrap());
    assert_eq!(whoami_status(&app, &ada).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        form_of(&h.provider.lock().unwrap().revoke_forms)["token"],
        "rt-secret-1"
    );
}

/// Test support for Sign in with Apple, as an app's own tests use it: a whole login in process
/// against `test_util::AppleIdStandIn`, the refresh grant and revocation on it, and a test
/// identity made with `AppleIdIdentity::new`.
#[actix_web::test]
async fn apps_test_sign_in_with_apple_in_process() {
    use actix_apple_music::test_util::{self, AppleIdStandIn};
    use actix_apple_music::{AppleIdConfig, AppleIdIdentity, AppleIdStrategy};
    let stand_in = AppleIdStandIn::new();
    let config = AppleIdConfig::new(
        CLIENT_ID,
        "http://localhost/auth/apple/callback",
        crate::common::TEAM_ID,
        crate::common::KEY_ID,
        actix_apple_music::developer_token::SigningKey::generate(),
    )
    .stand_in(&stand_in);
    let refresh = Arc::new(Mutex::new(None::<RefreshToken>));
    let kept = refresh.clone();
    let auth = Authenticator::new(AppleIdStrategy::new(config).unwrap()).on_sign_in(
        move |sign_in: actix_apple_music::SignInContext<AppleIdStrategy>| {
            *kept.lock().unwrap() = sign_in.identity().refresh_token().cloned();
            async { Ok(()) }
        },
    );
    let app = crate::common::app(
        MemoryStore::default(),
        Key::generate(),
        auth.clone(),
        PREFIX,
        |cfg| {
            cfg.configure(test_util::routes::<AppleIdStrategy>)
                .route("/whoami", web::get().to(whoami));
        },
    )
    .await;
    let login =
        test_util::log_in_with_apple_id(&app, PREFIX, &stand_in, "ada@example.com", None).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/whoami")
            .cookie(login.cookie)
            .to_request(),
    )
    .await;
    let me: Value = test::read_body_json(resp).await;
    assert_eq!(me["sub"], AppleIdStandIn::sub_for("ada@example.com"));
    assert_eq!(me["email"], "ada@example.com");

    // The refresh token the hook got: alive, then revoked.
    let token = refresh
        .lock()
        .unwrap()
        .clone()
        .expect("the hook got a refresh token");
    let strategy = auth.strategy();
    assert_eq!(
        strategy.check_refresh_token(&token).await,
        RefreshCheck::Alive
    );
    assert_eq!(strategy.revoke(&token).await, Revocation::Revoked);
    assert!(stand_in.is_revoked(token.secret()));
    assert_eq!(
        strategy.check_refresh_token(&token).await,
        RefreshCheck::Revoked
    );

    // A test identity without a login.
    let identity = AppleIdIdentity::new("001234.test", time::OffsetDateTime::now_utc())
        .with_email("t@example.com", false);
    let cookie = test_util::sign_in::<AppleIdStrategy>(&app, &identity).await;
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/whoami")
            .cookie(cookie)
            .to_request(),
    )
    .await;
    let me: Value = test::read_body_json(resp).await;
    assert_eq!(
        (me["sub"].as_str(), me["email"].as_str()),
        (Some("001234.test"), Some("t@example.com"))
    );
}

/// The bounds of a notification's `iat` (60 s ahead at most, 24 h old at most, each to the
/// second), an event without a subject, and `event_time` as Apple may send it (milliseconds,
/// as a number or a string) reaching the app's hook.
#[actix_web::test]
async fn a_notifications_time_bounds_subject_and_event_time_are_read_to_the_letter() {
    let h = harness();
    let (accounts, events) = (Accounts::in_memory(), Events::default());
    let app = app(&h, &accounts, &events).await;
    let now = h.clock.now().unix_timestamp();
    let max_age = actix_apple_music::NOTIFICATION_MAX_AGE.as_secs() as i64;
    let claims = |iat: i64, fields: Value| json!({"iss": h.issuer, "aud": CLIENT_ID, "iat": iat, "events": fields.to_string()});
    let event = |event_time: Value| json!({"type": "email-disabled", "sub": "001.ada", "event_time": event_time});
    let cases = [
        (claims(now + 60, event(json!(1))), None),
        (
            claims(now + 61, event(json!(2))),
            Some("issued_in_the_future"),
        ),
        (
            claims(now + 3600, event(json!(3))),
            Some("issued_in_the_future"),
        ),
        (claims(now - max_age, event(json!(4))), None),
        (claims(now - max_age - 1, event(json!(5))), Some("too_old")),
        (
            claims(now, json!({"type": "consent-revoked", "sub": ""})),
            Some("bad_events"),
        ),
        (
            claims(now, json!({"type": "", "sub": "001.ada"})),
            Some("bad_events"),
        ),
    ];
    for (claims, refused) in cases {
        let (status, answer) = notify(&app, json!({"payload": h.signed(&claims, "k1")})).await;
        match refused {
            Some(reason) => assert_eq!(answer["reason"], reason, "{claims}: {answer}"),
            None => assert_eq!(status, StatusCode::OK, "{claims}: {answer}"),
        }
    }
    // `event_time` in milliseconds, as a number and as a string.
    for (sent, millis) in [
        (json!(1_700_000_000_123_i64), 1_700_000_000_123_i64),
        (json!("1700000000456"), 1_700_000_000_456),
    ] {
        let (status, answer) = notify(
            &app,
            json!({"payload": h.signed(&claims(now, event(sent)), "k1")}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let seen = events.lock().unwrap().last().unwrap().event_time;
        assert_eq!(
            seen.unix_timestamp_nanos() / 1_000_000,
            millis as i128,
            "the hook reads the event's own time"
        );
    }
}

/// A revocation answered `4xx` with Apple's `temporarily_unavailable` or `server_error` is
/// Apple being unavailable (try again later), not a refusal.
#[actix_web::test]
async fn a_revocation_answered_4xx_temporarily_unavailable_is_unavailable() {
    let h = harness();
    let strategy = h.strategy();
    let token = RefreshToken::new("rt-secret-2");
    for error in ["temporarily_unavailable", "server_error"] {
        h.provider.lock().unwrap().revoke_answer =
            Some((400, format!(r#"{{"error":"{error}"}}"#), None));
        assert!(
            matches!(
                strategy.revoke(&token).await,
                Revocation::Unavailable { .. }
            ),
            "{error}"
        );
    }
}
