//! One strategy's session keys, namespaced by its name, and the versioned identity record.

use actix_session::{Session, SessionInsertError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of the record the identity is kept in.
const IDENTITY_VERSION: u32 = 1;

/// The session keys of one strategy, namespaced by its name: `<name>.login`, `<name>.id`,
/// `<name>.user`, `<name>.reauth`.
#[derive(Debug)]
pub(crate) struct StrategyKeys {
    pub(crate) name: String,
    pub(crate) login: String,
    pub(crate) identity: String,
    pub(crate) user: String,
    pub(crate) reauth: String,
}

impl StrategyKeys {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            login: format!("{name}.login"),
            identity: format!("{name}.id"),
            user: format!("{name}.user"),
            reauth: format!("{name}.reauth"),
        }
    }

    /// The identity stored under these keys: `Ok(None)` when there is none, `Err` when one is
    /// there but does not read as this version's `I` (another version of the app wrote it, or
    /// a tampered store).
    pub(crate) fn read_identity<I: DeserializeOwned>(
        &self,
        session: &Session,
    ) -> Result<Option<I>, IdentityUnreadable> {
        match session.get::<IdentityRecord<I>>(&self.identity) {
            Ok(None) => Ok(None),
            Ok(Some(IdentityRecord(IDENTITY_VERSION, identity))) => Ok(Some(identity)),
            Ok(Some(_)) | Err(_) => Err(IdentityUnreadable),
        }
    }

    /// Stores `identity` under these keys, in this version's record.
    pub(crate) fn write_identity<I: Serialize>(
        &self,
        session: &Session,
        identity: &I,
    ) -> Result<(), SessionInsertError> {
        session.insert(
            &self.identity,
            IdentityRecordRef(IDENTITY_VERSION, identity),
        )
    }

    /// When the identity ended, if a re-login mark is set (Unix seconds).
    pub(crate) fn read_reauth(&self, session: &Session) -> Option<i64> {
        session.get::<i64>(&self.reauth).ok().flatten()
    }

    /// Sets the re-login mark.
    pub(crate) fn write_reauth(
        &self,
        session: &Session,
        at: i64,
    ) -> Result<(), SessionInsertError> {
        session.insert(&self.reauth, at)
    }
}

/// A stored identity is there but does not read: written in another version of the record,
/// or not this app's identity type (another version of the app, or a tampered store).
#[derive(Debug)]
pub(crate) struct IdentityUnreadable;

/// How an identity is kept: `[version, identity]`.
#[derive(Deserialize)]
struct IdentityRecord<I>(u32, I);

#[derive(Serialize)]
struct IdentityRecordRef<'a, I>(u32, &'a I);
