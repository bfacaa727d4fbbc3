//! [`CompactCookieStore`]: the whole session in its cookie, without JSON inside JSON.

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

use super::SessionState;
use crate::session_records::LIFETIME_KEY;

/// Starts the compact encoding (version 1); the JSON of actix-session's cookie store starts
/// with `{`.
const V1: char = '\u{1}';
/// Ends a key (its value follows).
const KEY_END: char = '\u{2}';
/// Ends a value (the next key follows).
const ENTRY_END: char = '\u{1}';

/// A session store that keeps the whole session in its (private, encrypted) cookie, like
/// actix-session's [`CookieSessionStore`](https://docs.rs/actix-session/0.11/actix_session/storage/struct.CookieSessionStore.html), in a
/// smaller form.
///
/// actix-session's store writes the session as a JSON object whose values are JSON texts, so
/// every quote of a value is escaped again; this store writes each key and value as they are,
/// between two control characters (which JSON text never holds unescaped), behind a version
/// mark. It also leaves out the crate's lifetime record, which only sets server-side TTLs: a
/// cookie lives as long as its `Max-Age`, which the session middleware sets. With a
/// 600-character music user token a signed-in cookie is about 100 bytes smaller.
///
/// Cookies written by actix-session's cookie store still read (the JSON form), so switching
/// keeps everyone signed in; switching back signs out the sessions written in the compact
/// form. A session whose keys or values hold those control characters is written as JSON.
///
/// ```no_run
/// use actix_apple_music::session_store::{CompactCookieStore, LifetimeStore, StoreFailures};
/// use actix_session::{config::CookieContentSecurity, SessionMiddleware};
/// # let key = actix_web::cookie::Key::generate();
/// let session = SessionMiddleware::builder(LifetimeStore::new(CompactCookieStore::new()), key)
///     .cookie_content_security(CookieContentSecurity::Private)
///     .build();
/// let app = actix_web::App::new().wrap(StoreFailures::around(session));
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct CompactCookieStore;

impl CompactCookieStore {
    /// The store (it has no settings).
    pub fn new() -> Self {
        Self
    }
}

fn encode(state: &SessionState) -> Result<String, serde_json::Error> {
    let fits = |text: &str| !text.contains([V1, KEY_END]);
    let entries = || state.iter().filter(|(key, _)| key.as_str() != LIFETIME_KEY);
    if !entries().all(|(key, value)| fits(key) && fits(value)) {
        return serde_json::to_string(&entries().collect::<std::collections::HashMap<_, _>>());
    }
    let len = entries().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>() + 1;
    let mut out = String::with_capacity(len);
    out.push(V1);
    for (i, (key, value)) in entries().enumerate() {
        if i > 0 {
            out.push(ENTRY_END);
        }
        out.push_str(key);
        out.push(KEY_END);
        out.push_str(value);
    }
    Ok(out)
}

fn decode(text: &str) -> Result<SessionState, String> {
    let Some(entries) = text.strip_prefix(V1) else {
        return serde_json::from_str(text).map_err(|e| format!("not a session cookie: {e}"));
    };
    if entries.is_empty() {
        return Ok(SessionState::new());
    }
    entries
        .split(ENTRY_END)
        .map(|entry| {
            entry
                .split_once(KEY_END)
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .ok_or_else(|| "a session cookie entry without a value".to_owned())
        })
        .collect()
}

impl SessionStore for CompactCookieStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        super::failures::mark_in_cookie();
        decode(session_key.as_ref())
            .map(Some)
            .map_err(|e| LoadError::Deserialization(anyhow::anyhow!(e)))
    }

    async fn save(
        &self,
        session_state: SessionState,
        _ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let text = encode(&session_state).map_err(|e| SaveError::Serialization(e.into()))?;
        // actix-session refuses a session key over 4064 bytes (a cookie's limit).
        SessionKey::try_from(text).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        _session_key: SessionKey,
        session_state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        self.save(session_state, ttl)
            .await
            .map_err(super::as_update_error)
    }

    async fn update_ttl(&self, _session_key: &SessionKey, _ttl: &Duration) -> anyhow::Result<()> {
        Ok(())
    }

    async fn delete(&self, _session_key: &SessionKey) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state(entries: &[(&str, &str)]) -> SessionState {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_state_reads_back_as_written_without_escaping_its_values() {
        let written = state(&[
            (
                "apple-music.id",
                r#"[1,[1,"token",1,2,0,1,"us","United States","en-US"]]"#,
            ),
            ("app", r#"{"a":"b"}"#),
            ("empty", ""),
        ]);
        let text = encode(&written).unwrap();
        assert!(text.starts_with(V1));
        assert!(!text.contains('\\'), "nothing escaped: {text:?}");
        assert_eq!(decode(&text).unwrap(), written);
        assert_eq!(
            decode(&encode(&SessionState::new()).unwrap()).unwrap(),
            SessionState::new()
        );
    }

    #[test]
    fn the_lifetime_record_is_left_out() {
        let written = state(&[(LIFETIME_KEY, r#""apple-music=100""#), ("a", "1")]);
        assert_eq!(
            decode(&encode(&written).unwrap()).unwrap(),
            state(&[("a", "1")])
        );
    }

    #[test]
    fn actix_sessions_json_cookies_still_read() {
        let old = state(&[("apple-music.id", r#"[1,"t"]"#), ("b", "2")]);
        let json = serde_json::to_string(&old).unwrap();
        assert_eq!(decode(&json).unwrap(), old);
        assert!(decode("not json").is_err());
        assert!(decode("\u{1}key-without-value").is_err());
    }

    #[test]
    fn a_key_with_the_separators_is_written_as_json() {
        let odd = state(&[("a\u{2}b", "1"), ("c", "x\u{1}y")]);
        let text = encode(&odd).unwrap();
        assert!(text.starts_with('{'));
        assert_eq!(decode(&text).unwrap(), odd);
    }

    #[actix_web::test]
    async fn a_state_too_big_for_a_cookie_is_refused_on_save() {
        let store = CompactCookieStore::new();
        // Four thousand and sixty-four bytes at most: the mark, the key, its end and the value.
        let big = state(&[("a", &"x".repeat(4062))]);
        let err = store.save(big, &Duration::hours(1)).await.unwrap_err();
        assert!(matches!(err, SaveError::Other(_)), "{err:?}");
        let fits = state(&[("a", &"x".repeat(4061))]);
        let key = store.save(fits.clone(), &Duration::hours(1)).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), Some(fits));
    }

    proptest! {
        #[test]
        fn any_state_reads_back(entries in proptest::collection::hash_map(".{0,12}", ".{0,40}", 0..6)) {
            let written: SessionState = entries.into_iter().filter(|(k, _)| k != LIFETIME_KEY).collect();
            prop_assert_eq!(decode(&encode(&written).unwrap()).unwrap(), written);
        }
    }
}
