//! An in-memory actix-session store that lets tests see which session keys exist.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use rand_core::RngCore;

type State = HashMap<String, String>;

/// How the store behaves: answers, fails at once, or never answers.
pub const UP: u8 = 0;
pub const DOWN: u8 = 1;
pub const HANGING: u8 = 2;
/// Answers each operation after 150 ms.
pub const SLOW: u8 = 3;
/// Loads, but fails every write (save, update, delete).
pub const WRITES_DOWN: u8 = 4;

#[derive(Clone, Default)]
pub struct MemoryStore {
    sessions: Arc<Mutex<HashMap<String, State>>>,
    ttls: Arc<Mutex<HashMap<String, i64>>>,
    mode: Arc<AtomicU8>,
}

impl MemoryStore {
    /// Switches the store to UP, DOWN, HANGING or SLOW.
    pub fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    /// The TTL (seconds) the last save or update of `key` asked for.
    pub fn ttl(&self, key: &str) -> Option<i64> {
        self.ttls.lock().unwrap().get(key).copied()
    }

    async fn check_write(&self) -> Result<(), anyhow::Error> {
        if self.mode.load(Ordering::SeqCst) == WRITES_DOWN {
            return Err(anyhow::anyhow!("the test store refuses writes"));
        }
        self.check().await
    }

    async fn check(&self) -> Result<(), anyhow::Error> {
        match self.mode.load(Ordering::SeqCst) {
            DOWN => Err(anyhow::anyhow!(
                "connection refused (the test store is down)"
            )),
            HANGING => {
                actix_web::rt::time::sleep(std::time::Duration::from_secs(3600)).await;
                Ok(())
            }
            SLOW => {
                actix_web::rt::time::sleep(std::time::Duration::from_millis(150)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub fn keys(&self) -> Vec<String> {
        self.sessions.lock().unwrap().keys().cloned().collect()
    }

    /// The stored state of `key`, as the store holds it.
    pub fn state(&self, key: &str) -> Option<State> {
        self.sessions.lock().unwrap().get(key).cloned()
    }

    /// Replaces the stored state of `key` (someone who can write to the store).
    pub fn set_state(&self, key: &str, state: State) {
        self.sessions.lock().unwrap().insert(key.to_owned(), state);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.sessions.lock().unwrap().contains_key(key)
    }

    fn fresh_key() -> SessionKey {
        let mut bytes = [0u8; 24];
        rand_core::OsRng.fill_bytes(&mut bytes);
        let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        key.try_into().unwrap()
    }
}

impl SessionStore for MemoryStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        self.check().await.map_err(LoadError::Other)?;
        Ok(self.sessions.lock().unwrap().get(key.as_ref()).cloned())
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        self.check_write().await.map_err(SaveError::Other)?;
        let key = Self::fresh_key();
        self.ttls
            .lock()
            .unwrap()
            .insert(key.as_ref().to_owned(), ttl.whole_seconds());
        self.sessions
            .lock()
            .unwrap()
            .insert(key.as_ref().to_owned(), state);
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        self.check_write().await.map_err(UpdateError::Other)?;
        self.ttls
            .lock()
            .unwrap()
            .insert(key.as_ref().to_owned(), ttl.whole_seconds());
        self.sessions
            .lock()
            .unwrap()
            .insert(key.as_ref().to_owned(), state);
        Ok(key)
    }

    async fn update_ttl(&self, _key: &SessionKey, _ttl: &Duration) -> Result<(), anyhow::Error> {
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        self.check_write().await?;
        self.sessions.lock().unwrap().remove(key.as_ref());
        Ok(())
    }
}

/// Writes under a chosen key, as a sealed `LifetimeStore` needs.
impl actix_apple_music::session_store::KeyedSessionStore for MemoryStore {
    async fn write(
        &self,
        key: &SessionKey,
        state: State,
        ttl: &Duration,
        mode: actix_apple_music::session_store::WriteMode,
    ) -> anyhow::Result<bool> {
        use actix_apple_music::session_store::WriteMode;
        self.check_write().await?;
        let mut sessions = self.sessions.lock().unwrap();
        let exists = sessions.contains_key(key.as_ref());
        if exists != (mode == WriteMode::Replace) {
            return Ok(false);
        }
        sessions.insert(key.as_ref().to_owned(), state);
        self.ttls
            .lock()
            .unwrap()
            .insert(key.as_ref().to_owned(), ttl.whole_seconds());
        Ok(true)
    }
}
