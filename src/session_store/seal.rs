//! Sealing session values at rest: AES-256-GCM under a key derived from the session key.

use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::SessionState;

/// What starts a stored secret, and a session value sealed by an earlier version (bound to its
/// name only): `aam1.` then base64url(nonce ‖ ciphertext ‖ tag).
const SEALED_PREFIX: &str = "aam1.";

/// What starts a sealed session value, bound to its name *and* its session's key: `aam2.` then
/// base64url(nonce ‖ ciphertext ‖ tag).
const SESSION_PREFIX: &str = "aam2.";

/// How a sealed store treats a value that is not sealed in today's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Earlier {
    /// Only values sealed for their session read (the default).
    Refused,
    /// During a migration: values in plaintext, and values sealed by an earlier version
    /// (bound to their name only), read too; they are sealed again when next written.
    Accepted,
}

/// AES-256-GCM under a key derived from the session key. A session value's associated data
/// is its session's key and its name, so a sealed value cannot be moved to another name or to
/// another session; a stored secret's is its kind and owner.
#[derive(Clone)]
pub(super) struct Sealer {
    cipher: Arc<Aes256Gcm>,
    /// Ciphers of previous keys, tried in turn when the current one does not open a value.
    previous: Arc<Vec<Aes256Gcm>>,
}

/// The associated data of a session value: its session's key and its name.
fn session_aad(session_key: &str, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(session_key.len() + name.len() + 1);
    aad.extend_from_slice(session_key.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad
}

impl Sealer {
    #[cfg(test)]
    fn new(key: &actix_web::cookie::Key) -> Self {
        Self::derived(key, b"actix-apple-music session values v1")
    }

    /// The sealer of the current key of `keys`, which also opens values of the previous ones.
    pub(super) fn with_keys(keys: &super::SessionKeys) -> Self {
        Self::derived_all(keys, b"actix-apple-music session values v1")
    }

    fn derived(key: &actix_web::cookie::Key, info: &[u8]) -> Self {
        Self::derived_all(&super::SessionKeys::new(key.clone()), info)
    }

    fn derived_all(keys: &super::SessionKeys, info: &[u8]) -> Self {
        let cipher = |key: &actix_web::cookie::Key| {
            let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, key.master());
            let mut okm = [0u8; 32];
            hkdf.expand(info, &mut okm)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            Aes256Gcm::new(&okm.into())
        };
        Self {
            cipher: Arc::new(cipher(&keys.current)),
            previous: Arc::new(keys.previous.iter().map(cipher).collect()),
        }
    }

    /// `prefix` then base64url(nonce ‖ ciphertext ‖ tag) of `value` under the current key.
    fn seal(&self, prefix: &str, aad: &[u8], value: &str) -> Option<String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad,
                },
            )
            .ok()?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Some(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The plain value of a value sealed with `prefix` and `aad` under the current key or a
    /// previous one; `None` when it is not so sealed or does not open.
    fn open(&self, prefix: &str, aad: &[u8], value: &str) -> Option<String> {
        let body = value.strip_prefix(prefix)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        let (nonce, sealed) = bytes.split_at_checked(12)?;
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = std::iter::once(&*self.cipher)
            .chain(self.previous.iter())
            .find_map(|cipher| {
                cipher
                    .decrypt(&nonce.into(), Payload { msg: sealed, aad })
                    .ok()
            })?;
        String::from_utf8(plain).ok()
    }

    /// The plain value of the session value `name` of the session `session_key`; `None` for a
    /// value sealed for another session or name, under an unknown key, or tampered. Values not
    /// sealed in today's form read only when `earlier` accepts them.
    fn open_value(
        &self,
        session_key: &str,
        name: &str,
        value: String,
        earlier: Earlier,
    ) -> Option<String> {
        if value.starts_with(SESSION_PREFIX) {
            return self.open(SESSION_PREFIX, &session_aad(session_key, name), &value);
        }
        match earlier {
            Earlier::Refused => None,
            Earlier::Accepted if value.starts_with(SEALED_PREFIX) => {
                self.open(SEALED_PREFIX, name.as_bytes(), &value)
            }
            Earlier::Accepted => Some(value),
        }
    }

    /// Every value of the session `session_key`, sealed for it.
    pub(super) fn seal_state(
        &self,
        session_key: &str,
        state: &SessionState,
    ) -> Result<SessionState, anyhow::Error> {
        state
            .iter()
            .map(|(name, value)| {
                let sealed = self
                    .seal(SESSION_PREFIX, &session_aad(session_key, name), value)
                    .ok_or_else(|| anyhow::anyhow!("a session value could not be sealed"))?;
                Ok((name.clone(), sealed))
            })
            .collect()
    }

    /// Opens every value of the session `session_key`; values that do not open (sealed for
    /// another session, tampered, and earlier forms unless `earlier` accepts them) are
    /// dropped, so the session reads as if they were never there.
    pub(super) fn open_state(
        &self,
        session_key: &str,
        state: SessionState,
        earlier: Earlier,
    ) -> SessionState {
        let mut dropped = 0usize;
        let opened = state
            .into_iter()
            .filter_map(
                |(name, value)| match self.open_value(session_key, &name, value, earlier) {
                    Some(plain) => Some((name, plain)),
                    None => {
                        dropped += 1;
                        None
                    }
                },
            )
            .collect();
        if dropped > 0 {
            tracing::warn!("session store: {dropped} session value(s) did not open (another session or session key, tampered, or not sealed) and were dropped");
        }
        opened
    }
}

/// Seals the secrets an app keeps beyond a session — a Sign in with Apple refresh token for
/// account deletion and the daily check, a music user token for a background job — under the
/// session key (AES-256-GCM, a key derived from it for this purpose only), each bound to its
/// owner (e.g. the account id), so a sealed value copied to another account does not open.
///
/// ```
/// use actix_apple_music::session_store::SecretSealer;
/// use actix_apple_music::RefreshToken;
///
/// let sealer = SecretSealer::new(&actix_web::cookie::Key::generate());
/// let sealed = sealer.seal_refresh_token(&RefreshToken::new("r.secret"), "acct-1");
/// assert!(!sealed.contains("r.secret"));
/// let opened = sealer.open_refresh_token(&sealed, "acct-1").unwrap();
/// assert_eq!(opened.secret(), "r.secret");
/// assert!(sealer.open_refresh_token(&sealed, "acct-2").is_err());
/// ```
#[derive(Clone)]
pub struct SecretSealer {
    sealer: Sealer,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer")
    }
}

/// A sealed secret did not open: another key, another owner, or tampered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the sealed secret does not open (another key or owner, or tampered)")]
pub struct SealError;

impl SecretSealer {
    /// A sealer under `key` (the session middleware's key; every instance needs the same).
    pub fn new(key: &actix_web::cookie::Key) -> Self {
        Self {
            sealer: Sealer::derived(key, b"actix-apple-music stored secrets v1"),
        }
    }

    /// A sealer under the current key of `keys` that also opens secrets sealed under the
    /// previous ones (seal them again with [`seal_refresh_token`](Self::seal_refresh_token)
    /// while the rotation lasts).
    pub fn with_keys(keys: &super::SessionKeys) -> Self {
        Self {
            sealer: Sealer::derived_all(keys, b"actix-apple-music stored secrets v1"),
        }
    }

    fn seal(&self, kind: &str, owner: &str, secret: &str) -> String {
        self.sealer
            .seal(SEALED_PREFIX, format!("{kind}\0{owner}").as_bytes(), secret)
            .expect("AES-GCM seals any value that fits in memory")
    }

    fn open(&self, kind: &str, owner: &str, sealed: &str) -> Result<String, SealError> {
        self.sealer
            .open(SEALED_PREFIX, format!("{kind}\0{owner}").as_bytes(), sealed)
            .ok_or(SealError)
    }

    /// Seals a refresh token for `owner`.
    pub fn seal_refresh_token(&self, token: &crate::RefreshToken, owner: &str) -> String {
        self.seal("refresh_token", owner, token.secret())
    }

    /// Opens a refresh token sealed for `owner`.
    pub fn open_refresh_token(
        &self,
        sealed: &str,
        owner: &str,
    ) -> Result<crate::RefreshToken, SealError> {
        self.open("refresh_token", owner, sealed)
            .map(crate::RefreshToken::new)
    }

    /// Seals a music user token for `owner`.
    pub fn seal_music_user_token(&self, token: &crate::MusicUserToken, owner: &str) -> String {
        self.seal("music_user_token", owner, token.secret())
    }

    /// Opens a music user token sealed for `owner`.
    pub fn open_music_user_token(
        &self,
        sealed: &str,
        owner: &str,
    ) -> Result<crate::MusicUserToken, SealError> {
        self.open("music_user_token", owner, sealed)
            .map(crate::MusicUserToken::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_secret_opens_only_as_its_kind_for_its_owner_under_its_key() {
        let key = actix_web::cookie::Key::generate();
        let sealer = SecretSealer::new(&key);
        let refresh = sealer.seal_refresh_token(&crate::RefreshToken::new("r.secret"), "acct-1");
        assert!(refresh.starts_with(SEALED_PREFIX) && !refresh.contains("r.secret"));
        assert_eq!(
            sealer
                .open_refresh_token(&refresh, "acct-1")
                .unwrap()
                .secret(),
            "r.secret"
        );
        assert!(sealer.open_refresh_token(&refresh, "acct-2").is_err());
        assert!(sealer.open_music_user_token(&refresh, "acct-1").is_err());
        let token = crate::MusicUserToken::new("mut-secret");
        let sealed = sealer.seal_music_user_token(&token, "acct-1");
        assert_eq!(
            sealer
                .open_music_user_token(&sealed, "acct-1")
                .unwrap()
                .secret(),
            "mut-secret"
        );
        assert_eq!(
            sealer.open_refresh_token(&sealed, "acct-1").err(),
            Some(SealError)
        );
        assert!(SecretSealer::new(&actix_web::cookie::Key::generate())
            .open_music_user_token(&sealed, "acct-1")
            .is_err());
        // Not the session values' key: a session value does not open as a stored secret.
        let session_value = Sealer::new(&key)
            .seal(SEALED_PREFIX, b"refresh_token\0acct-1", "x")
            .unwrap();
        assert!(sealer.open_refresh_token(&session_value, "acct-1").is_err());
        assert!(
            sealer.open_refresh_token("plain", "acct-1").is_err(),
            "never unsealed"
        );
        assert!(!format!("{sealer:?}").contains("mut"));
    }

    #[test]
    fn session_values_open_only_in_their_session_under_their_name_and_key() {
        let key = actix_web::cookie::Key::generate();
        let sealer = Sealer::new(&key);
        let plain =
            |name: &str| SessionState::from([(name.to_owned(), "{\"mut\":\"secret\"}".to_owned())]);
        let sealed = sealer
            .seal_state("session-a", &plain("apple-music.identity"))
            .unwrap();
        let value = sealed["apple-music.identity"].clone();
        assert!(value.starts_with(SESSION_PREFIX));
        assert!(!value.contains("secret"));
        let open = |session: &str, name: &str, value: &str, earlier| {
            sealer.open_value(session, name, value.to_owned(), earlier)
        };
        assert_eq!(
            open(
                "session-a",
                "apple-music.identity",
                &value,
                Earlier::Refused
            )
            .as_deref(),
            Some("{\"mut\":\"secret\"}")
        );
        assert_eq!(
            sealer.open_state("session-a", sealed.clone(), Earlier::Refused),
            plain("apple-music.identity")
        );
        // Copied into another session (someone who can write to the store): does not read,
        // not even while migrating.
        for earlier in [Earlier::Refused, Earlier::Accepted] {
            assert_eq!(
                open("session-b", "apple-music.identity", &value, earlier),
                None
            );
            assert!(sealer
                .open_state("session-b", sealed.clone(), earlier)
                .is_empty());
        }
        assert_eq!(
            open("session-a", "apple-music.user", &value, Earlier::Refused),
            None,
            "moved to another name"
        );
        let other = Sealer::new(&actix_web::cookie::Key::generate());
        assert_eq!(
            other.open_value(
                "session-a",
                "apple-music.identity",
                value.clone(),
                Earlier::Refused
            ),
            None,
            "another key"
        );
        let mut tampered = value.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            open(
                "session-a",
                "apple-music.identity",
                &tampered,
                Earlier::Refused
            ),
            None,
            "tampered"
        );
        assert_eq!(open("session-a", "x", "aam2.", Earlier::Refused), None);
        assert_eq!(open("session-a", "x", "aam2.!!", Earlier::Refused), None);
    }

    #[test]
    fn earlier_forms_read_only_while_migrating() {
        let sealer = Sealer::new(&actix_web::cookie::Key::generate());
        // Written before sealing.
        assert_eq!(
            sealer
                .open_value("s", "app.cart", "[1]".into(), Earlier::Accepted)
                .as_deref(),
            Some("[1]")
        );
        assert_eq!(
            sealer.open_value("s", "app.cart", "[1]".into(), Earlier::Refused),
            None
        );
        // Sealed by an earlier version, bound to its name only.
        let name_bound = sealer
            .seal(SEALED_PREFIX, b"apple-music.identity", "{}")
            .unwrap();
        assert_eq!(
            sealer
                .open_value(
                    "s",
                    "apple-music.identity",
                    name_bound.clone(),
                    Earlier::Accepted
                )
                .as_deref(),
            Some("{}")
        );
        assert_eq!(
            sealer.open_value(
                "s",
                "apple-music.user",
                name_bound.clone(),
                Earlier::Accepted
            ),
            None,
            "still bound to its name"
        );
        assert_eq!(
            sealer.open_value("s", "apple-music.identity", name_bound, Earlier::Refused),
            None
        );
    }
}
