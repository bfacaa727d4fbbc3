//! Developer tokens: key loading, signing, verification, rotation, MusicAPI helpers.

use crate::common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use actix_apple_music::developer_token::{
    DeveloperTokenConfig, DeveloperTokenSigner, KeyError, SigningKey, UnverifiedToken, VerifyError,
    MAX_LIFETIME,
};
use actix_apple_music::{Clock, ConfigError, ManualClock};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{fresh_pkcs8_pem, fresh_sec1_pem, key_path, KEY_ID, TEAM_ID};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use time::macros::datetime;

fn signer_with_clock(clock: &ManualClock) -> (DeveloperTokenSigner, String) {
    let pem = fresh_pkcs8_pem();
    let signer = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .clock(clock.clone())
        .build(SigningKey::from_pem(&pem).unwrap())
        .unwrap();
    (signer, pem)
}

fn clock() -> ManualClock {
    ManualClock::new(datetime!(2026-03-01 12:00 UTC))
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[test]
fn signed_token_round_trips_through_verify() {
    let clock = clock();
    let (signer, _) = signer_with_clock(&clock);
    let token = signer.token();
    let claims = signer.verify(token.as_str()).unwrap();
    assert_eq!(claims.issuer(), TEAM_ID);
    assert_eq!(claims.key_id(), KEY_ID);
    assert_eq!(claims.issued_at(), clock.now());
    assert_eq!(
        claims.expires_at(),
        clock.now() + Duration::from_secs(180 * 86_400)
    );
}

#[test]
fn an_independent_decoder_sees_the_exact_header_and_claims() {
    let clock = clock();
    let pem = fresh_pkcs8_pem();
    let key = SigningKey::from_pem(&pem).unwrap();
    let public = key.public_key_pem().to_owned();
    let signer = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .origins(["https://app.example", "http://localhost:8080"])
        .lifetime(Duration::from_secs(3600))
        .clock(clock.clone())
        .build(key)
        .unwrap();
    let token = signer.token();

    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let decoded = jsonwebtoken::decode::<Value>(
        token.as_str(),
        &DecodingKey::from_ec_pem(public.as_bytes()).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(decoded.header.alg, Algorithm::ES256);
    assert_eq!(decoded.header.kid.as_deref(), Some(KEY_ID));
    let iat = datetime!(2026-03-01 12:00 UTC).unix_timestamp();
    assert_eq!(
        decoded.claims,
        json!({
            "iss": TEAM_ID,
            "iat": iat,
            "exp": iat + 3600,
            "origin": ["https://app.example", "http://localhost:8080"],
        })
    );
    // The raw header holds nothing beyond alg, kid and typ.
    let header_json: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.as_str().split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header_json,
        json!({"alg": "ES256", "kid": KEY_ID, "typ": "JWT"})
    );
}

#[test]
fn tokens_of_another_key_or_shape_are_refused() {
    let clock = clock();
    let (signer, pem) = signer_with_clock(&clock);
    let good = signer.token().as_str().to_owned();
    let mut parts = good.split('.');
    let (h, p, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );

    // Another key, same IDs.
    let (other, _) = signer_with_clock(&clock);
    assert_eq!(
        signer.verify(other.token().as_str()),
        Err(VerifyError::InvalidSignature)
    );

    // alg: none, unsigned.
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "kid": KEY_ID})), p);
    assert_eq!(
        signer.verify(&none),
        Err(VerifyError::UnsupportedAlgorithm { alg: "none".into() })
    );

    // HS256 keyed with our public key (the classic key-confusion attack).
    let public = SigningKey::from_pem(&pem)
        .unwrap()
        .public_key_pem()
        .to_owned();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some(KEY_ID.into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims,
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        signer.verify(&hs),
        Err(VerifyError::UnsupportedAlgorithm {
            alg: "HS256".into()
        })
    );

    // Tampered payload: a later exp, signature kept.
    let mut tampered_claims = claims.clone();
    tampered_claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 86_400);
    let tampered = format!("{h}.{}.{s}", b64(&tampered_claims));
    assert_eq!(signer.verify(&tampered), Err(VerifyError::InvalidSignature));

    // Tampered header: the kid changed.
    let other_kid = format!(
        "{}.{p}.{s}",
        b64(&json!({"alg": "ES256", "kid": "OTHERKEY12", "typ": "JWT"}))
    );
    assert_eq!(signer.verify(&other_kid), Err(VerifyError::KeyIdMismatch));

    // Garbage of all sorts.
    for garbage in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.???.###",
        &"x".repeat(10_000),
        "e30.e30.e30",
    ] {
        let err = signer.verify(garbage).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::Malformed | VerifyError::UnsupportedAlgorithm { .. }
            ),
            "{garbage:.20} gave {err:?}"
        );
    }
}

#[test]
fn wrong_issuer_expired_and_future_tokens_are_refused() {
    let clock = clock();
    let pem = fresh_pkcs8_pem();
    let signer = |team: &str, clock: &ManualClock| {
        DeveloperTokenConfig::apple_music(team, KEY_ID)
            .lifetime(Duration::from_secs(600))
            .clock(clock.clone())
            .build(SigningKey::from_pem(&pem).unwrap())
            .unwrap()
    };
    let ours = signer(TEAM_ID, &clock);
    let theirs = signer("OTHERTEAM1", &clock);
    assert_eq!(
        ours.verify(theirs.token().as_str()),
        Err(VerifyError::IssuerMismatch)
    );

    // Issued by another instance (same key) whose clock runs ahead by 10 minutes.
    let ahead = ManualClock::new(datetime!(2026-03-01 12:10 UTC));
    let future = signer(TEAM_ID, &ahead).token();
    assert!(matches!(
        ours.verify(future.as_str()),
        Err(VerifyError::IssuedInFuture { .. })
    ));
    // Up to 60 s of skew is tolerated, and not a second more.
    for (ahead, ok) in [
        (datetime!(2026-03-01 12:00:30 UTC), true),
        (datetime!(2026-03-01 12:01:00 UTC), true),
        (datetime!(2026-03-01 12:01:01 UTC), false),
    ] {
        let token = signer(TEAM_ID, &ManualClock::new(ahead)).token();
        assert_eq!(ours.verify(token.as_str()).is_ok(), ok, "issued at {ahead}");
    }

    // Another instance's token (slow path) expires on time.
    let other_instance = signer(TEAM_ID, &clock).token();
    assert!(ours.verify(other_instance.as_str()).is_ok());
    clock.advance(Duration::from_secs(600));
    assert_eq!(
        ours.verify(other_instance.as_str()),
        Err(VerifyError::Expired {
            expired_at: datetime!(2026-03-01 12:10 UTC)
        })
    );
}

#[test]
fn lifetime_limit_is_15_777_000_seconds() {
    let ok = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .lifetime(Duration::from_secs(15_777_000))
        .build(SigningKey::generate());
    assert_eq!(ok.unwrap().lifetime(), MAX_LIFETIME);

    let err = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .lifetime(Duration::from_secs(15_777_001))
        .build(SigningKey::generate())
        .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::LifetimeTooLong {
            requested_secs: 15_777_001,
            max_secs: 15_777_000
        }
    ));
    assert!(err.to_string().contains("15777000"), "{err}");
}

#[test]
fn ids_are_checked_with_a_message_that_says_the_format() {
    for (team, key) in [
        ("teamid1234", KEY_ID),
        ("TEAMID123", KEY_ID),
        (TEAM_ID, "KEY-ID-123"),
        (TEAM_ID, ""),
    ] {
        let err = DeveloperTokenConfig::apple_music(team, key)
            .build(SigningKey::generate())
            .unwrap_err();
        assert!(
            err.to_string().contains("10 upper-case letters or digits"),
            "{err}"
        );
    }
    let err = DeveloperTokenConfig::musicapi("not-a-uuid", "kid")
        .build(SigningKey::generate())
        .unwrap_err();
    assert!(err.to_string().contains("UUID"), "{err}");
    let err = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .origins(["https://app.example/path"])
        .build(SigningKey::generate())
        .unwrap_err();
    assert!(err.to_string().contains("origin"), "{err}");
}

#[test]
fn the_cached_token_is_reused_then_rotated_and_the_old_one_stays_valid() {
    let clock = clock();
    let signer = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .lifetime(Duration::from_secs(1000))
        .refresh_margin(Duration::from_secs(100))
        .clock(clock.clone())
        .build(SigningKey::generate())
        .unwrap();
    let first = signer.token();
    clock.advance(Duration::from_secs(899));
    assert_eq!(
        signer.token().as_str(),
        first.as_str(),
        "re-signed before the margin"
    );

    clock.advance(Duration::from_secs(1));
    let second = signer.token();
    assert_ne!(
        second.as_str(),
        first.as_str(),
        "not re-signed inside the margin"
    );
    assert_eq!(second.issued_at(), datetime!(2026-03-01 12:15 UTC));
    assert_eq!(signer.token().as_str(), second.as_str());

    // The previous token verifies until its own exp, then not.
    assert!(signer.verify(first.as_str()).is_ok());
    clock.advance(Duration::from_secs(99));
    assert!(signer.verify(first.as_str()).is_ok());
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        signer.verify(first.as_str()),
        Err(VerifyError::Expired {
            expired_at: first.expires_at()
        })
    );
    assert!(signer.verify(second.as_str()).is_ok());

    // Two rotations later the first token is no longer cached: still refused (slow path).
    clock.advance(Duration::from_secs(2000));
    let third = signer.token();
    assert_ne!(third.as_str(), second.as_str());
    assert!(matches!(
        signer.verify(first.as_str()),
        Err(VerifyError::Expired { .. })
    ));
}

#[test]
fn many_threads_share_one_rotation() {
    let clock = clock();
    let signer = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .lifetime(Duration::from_secs(1000))
        .clock(clock.clone())
        .build(SigningKey::generate())
        .unwrap();
    let before = signer.token();
    clock.advance(Duration::from_secs(950)); // inside the default margin (100 s)

    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let signer = signer.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (0..200).map(|_| signer.token()).collect::<Vec<_>>()
            })
        })
        .collect();
    let seen: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let after = signer.token();
    assert_ne!(after.as_str(), before.as_str());
    for token in &seen {
        // Each caller got either the old (still unexpired) token or the one new token:
        // exactly one signature happened.
        assert!(
            token.as_str() == before.as_str() || token.as_str() == after.as_str(),
            "a thread saw a third token"
        );
        assert!(signer.verify(token.as_str()).is_ok());
    }
}

#[test]
fn keys_load_from_pkcs8_sec1_files_and_the_environment() {
    let _env = common::env_lock();
    SigningKey::from_pem(&fresh_pkcs8_pem()).unwrap();
    SigningKey::from_pem(&fresh_sec1_pem()).unwrap();
    SigningKey::from_pem_file(key_path("p256_pkcs8.pem")).unwrap();
    // `openssl ecparam -genkey` without -noout puts an EC PARAMETERS block first.
    SigningKey::from_pem_file(key_path("p256_sec1_with_params.pem")).unwrap();
    // Indented, CRLF-pasted PEM still loads.
    let crlf = fresh_pkcs8_pem()
        .lines()
        .map(|l| format!("  {l}\r\n"))
        .collect::<String>();
    SigningKey::from_pem(&crlf).unwrap();

    // The PKCS#8 and SEC1 forms of one key sign tokens that verify against each other.
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let pkcs8 = SigningKey::from_pem(&secret.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap();
    let sec1 = SigningKey::from_pem(&secret.to_sec1_pem(LineEnding::LF).unwrap()).unwrap();
    assert_eq!(pkcs8.public_key_pem(), sec1.public_key_pem());
    let a = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .build(pkcs8)
        .unwrap();
    let b = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .build(sec1)
        .unwrap();
    assert!(b.verify(a.token().as_str()).is_ok());

    // Environment: inline PEM (with literal \n escapes, as in .env files), or a path; one only.
    // The config test touches these variables too: both hold `common::env_lock()`.
    let pem = fresh_pkcs8_pem();
    std::env::remove_var("APPLE_MUSIC_PRIVATE_KEY_PATH");
    std::env::set_var("APPLE_MUSIC_PRIVATE_KEY", pem.replace('\n', "\\n"));
    SigningKey::from_env().unwrap();
    std::env::set_var("APPLE_MUSIC_PRIVATE_KEY_PATH", key_path("p256_pkcs8.pem"));
    assert!(matches!(SigningKey::from_env(), Err(KeyError::Ambiguous)));
    std::env::remove_var("APPLE_MUSIC_PRIVATE_KEY");
    SigningKey::from_env().unwrap();
    std::env::set_var("APPLE_MUSIC_PRIVATE_KEY_PATH", key_path("rsa_pkcs8.pem"));
    let err = SigningKey::from_env().unwrap_err();
    assert!(err.to_string().contains("rsa_pkcs8.pem"), "{err}");
    std::env::remove_var("APPLE_MUSIC_PRIVATE_KEY_PATH");
    assert!(matches!(
        SigningKey::from_env(),
        Err(KeyError::NotConfigured)
    ));
}

#[test]
fn bad_keys_get_their_own_error_naming_source_and_format() {
    let cases: &[(&str, &str)] = &[
        ("rsa_pkcs8.pem", "an RSA key"),
        ("rsa_traditional.pem", "an RSA key"),
        ("p384_pkcs8.pem", "a P-384 key"),
        ("p384_sec1.pem", "a P-384 key"),
        ("ed25519.pem", "an Ed25519 key"),
        ("p256_encrypted.pem", "password-protected"),
        ("p256_public.pem", "a public key"),
    ];
    for (file, found) in cases {
        let path = key_path(file);
        let err = SigningKey::from_pem_file(&path).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, KeyError::UnsupportedKey { .. }),
            "{file}: {err:?}"
        );
        assert!(message.contains(found), "{file}: {message}");
        assert!(
            message.contains(file),
            "{file}: the message must name the file: {message}"
        );
        assert!(message.contains("BEGIN PRIVATE KEY") && message.contains("BEGIN EC PRIVATE KEY"));
        // No line of the key's base64 appears in the message.
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| !l.starts_with("-----")) {
            assert!(
                !message.contains(line),
                "{file}: key material in the message"
            );
        }
    }

    let missing = SigningKey::from_pem_file("/nonexistent/AuthKey_ABC.p8").unwrap_err();
    assert!(matches!(missing, KeyError::Read { .. }));
    assert!(
        missing.to_string().contains("/nonexistent/AuthKey_ABC.p8"),
        "{missing}"
    );

    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("AuthKey.p8");
    std::fs::write(&not_pem, "hello, this is not a key").unwrap();
    let err = SigningKey::from_pem_file(&not_pem).unwrap_err();
    assert!(matches!(err, KeyError::NotPem { .. }));
    assert!(
        err.to_string().contains("AuthKey.p8") && err.to_string().contains("PEM"),
        "{err}"
    );

    let binary = dir.path().join("key.der");
    std::fs::write(&binary, [0x30u8, 0x82, 0xff, 0xfe, 0x00]).unwrap();
    assert!(matches!(
        SigningKey::from_pem_file(&binary),
        Err(KeyError::NotPem { .. })
    ));

    assert!(matches!(
        SigningKey::from_pem("  \n "),
        Err(KeyError::Empty { .. })
    ));
    let damaged = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        SigningKey::from_pem(damaged),
        Err(KeyError::Invalid { .. })
    ));
}

#[test]
fn secrets_never_show_in_debug_output() {
    let pem = fresh_pkcs8_pem();
    let key = SigningKey::from_pem(&pem).unwrap();
    let signer = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .build(key.clone())
        .unwrap();
    let token = signer.token();
    let outputs = [
        format!("{key:?}"),
        format!("{signer:?}"),
        format!("{token:?}"),
        format!(
            "{:?}",
            actix_apple_music::MusicUserToken::new("mut-secret-value")
        ),
        format!(
            "{:?}",
            actix_apple_music::ClientSecret::new("client-secret-value")
        ),
    ];
    let secret_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for out in &outputs {
        assert!(!out.contains(token.as_str()), "{out}");
        assert!(
            !out.contains("mut-secret-value") && !out.contains("client-secret-value"),
            "{out}"
        );
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!out.contains(line), "{out}");
        }
        assert!(!out.contains(&secret_body));
    }
    assert!(outputs[2].contains("[redacted]"));
}

#[test]
fn musicapi_tokens_and_headers() {
    use actix_apple_music::headers;
    let client_id = "2cf82db3-4064-4235-8253-16994eb51773";
    let user = "6f1c6f5e-8b7e-4f0b-9a53-0d3b0c1f7a11";
    let clock = clock();
    let signer = DeveloperTokenConfig::musicapi(client_id, "key-1")
        .clock(clock.clone())
        .build(SigningKey::generate())
        .unwrap();
    let token = signer.token();
    let claims = signer.verify(token.as_str()).unwrap();
    assert_eq!(claims.issuer(), client_id);
    assert_eq!(claims.subject(), None);
    assert_eq!(
        claims.expires_at() - claims.issued_at(),
        time::Duration::days(14)
    );

    let per_user = signer.sign_for_subject(user).unwrap();
    assert_eq!(
        signer.verify(per_user.as_str()).unwrap().subject(),
        Some(user)
    );
    assert!(signer.sign_for_subject("nope").is_err());

    let scoped = DeveloperTokenConfig::musicapi(client_id, "key-1")
        .subject(user)
        .build(SigningKey::generate())
        .unwrap();
    let raw = UnverifiedToken::parse(scoped.token().as_str()).unwrap();
    assert_eq!(raw.claims()["sub"], user);
    assert_eq!(raw.header()["typ"], "JWT");

    let (name, value) = headers::musicapi_token(client_id);
    assert_eq!(name, "authorization");
    assert_eq!(value, format!("Token {client_id}").as_str());

    let secret = actix_apple_music::ClientSecret::new("s3cr3t:with:colons");
    let (_, basic) = headers::musicapi_basic(client_id, &secret);
    let encoded = basic.to_str().unwrap().strip_prefix("Basic ").unwrap();
    assert_eq!(
        STANDARD.decode(encoded).unwrap(),
        format!("{client_id}:s3cr3t:with:colons").as_bytes()
    );
    assert!(basic.is_sensitive());

    let (_, dev) = headers::musicapi_dev_token(&token);
    assert_eq!(dev, format!("DevToken {}", token.as_str()).as_str());

    let apple = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .build(SigningKey::generate())
        .unwrap();
    let mut_token = actix_apple_music::MusicUserToken::new("user-token");
    let [(auth_name, auth), (mut_name, mut_value)] =
        headers::apple_music_user_headers(&apple.token(), &mut_token);
    assert_eq!(auth_name, "authorization");
    assert_eq!(auth, format!("Bearer {}", apple.token().as_str()).as_str());
    assert_eq!(mut_name, "music-user-token");
    assert_eq!(mut_value, "user-token");
    assert!(mut_value.is_sensitive());
}

#[test]
fn inspect_reads_claims_and_checks_only_the_signature() {
    let key = SigningKey::generate();
    let signer = DeveloperTokenConfig::apple_music(TEAM_ID, KEY_ID)
        .build(key.clone())
        .unwrap();
    let token = signer.token();
    let raw = UnverifiedToken::parse(token.as_str()).unwrap();
    assert_eq!(raw.key_id(), Some(KEY_ID));
    assert_eq!(raw.issuer(), Some(TEAM_ID));
    assert_eq!(raw.expires_at(), Some(token.expires_at()));
    assert!(UnverifiedToken::verify_signature(token.as_str(), &key).is_ok());
    assert_eq!(
        UnverifiedToken::verify_signature(token.as_str(), &SigningKey::generate()),
        Err(VerifyError::InvalidSignature)
    );
}
