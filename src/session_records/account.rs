//! The records the account lifecycle keeps: the one in each session (which account it is
//! signed in to, since when) and the ones in the account store (the account's sessions and its
//! sign-out marks).

use actix_session::Session;
use serde::{Deserialize, Serialize};

/// The session key of the account record, owned by the crate beside the lifetime record.
pub(crate) const ACCOUNT_KEY: &str = "aam.acct";

/// Milliseconds since the Unix epoch: the precision every lifecycle time is stored and
/// compared in.
pub(crate) type Millis = i64;

/// What a session knows of its account: `{"a": account, "s": session id, "t": stamp}`, kept
/// short (it rides in every cookie with the cookie store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    /// The app's account id.
    #[serde(rename = "a")]
    pub(crate) account: String,
    /// The crate's own id of this browser session (not the store's key: it survives the
    /// session id's renewal at sign-in, and it is not a credential).
    #[serde(rename = "s")]
    pub(crate) sid: String,
    /// When this session last signed in to the account (ms). A sign-out mark at or after it
    /// signs the session out.
    #[serde(rename = "t")]
    pub(crate) stamp: Millis,
}

impl SessionRecord {
    /// The session's account record, if it has one that reads.
    pub(crate) fn read(session: &Session) -> Option<Self> {
        session.get::<Self>(ACCOUNT_KEY).ok().flatten()
    }

    /// Writes the record into the session (a failure is logged: the session then signs in
    /// without an account, as before the lifecycle).
    pub(crate) fn write(&self, session: &Session) {
        if let Err(e) = session.insert(ACCOUNT_KEY, self) {
            tracing::warn!("could not store the session's account record: {e}");
        }
    }

    /// A fresh session id: 16 random bytes, base64url.
    pub(crate) fn new_sid() -> String {
        use base64::Engine;
        let mut bytes = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// One session in an account's index. Nothing secret: times, the strategy's name and a short
/// user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// When the session signed in (ms), its record's stamp.
    #[serde(rename = "t")]
    pub(crate) signed_in_at: Millis,
    /// When it was last seen (ms), coarsely.
    #[serde(rename = "l")]
    pub(crate) last_seen_at: Millis,
    /// The strategy it last signed in with.
    #[serde(rename = "k")]
    pub(crate) strategy: String,
    /// A short user agent.
    #[serde(rename = "u")]
    pub(crate) user_agent: String,
    /// When the session ends at the latest (ms): past it, the entry is tidied away.
    #[serde(rename = "e")]
    pub(crate) until: Millis,
}

/// An account's sign-out marks: every session stamped at or before `everywhere` is signed out;
/// every identity of strategy `name` stamped at or before `relogin[name]` must sign in again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    pub(crate) everywhere: Option<Millis>,
    pub(crate) relogin: Vec<(String, Millis)>,
}

impl Marks {
    /// Whether a session stamped `stamp` is signed out.
    pub(crate) fn signs_out(&self, stamp: Millis) -> bool {
        self.everywhere.is_some_and(|mark| stamp <= mark)
    }

    /// When strategy `name`'s identities stamped `stamp` were asked to sign in again, if they
    /// were.
    pub(crate) fn relogin_of(&self, name: &str, stamp: Millis) -> Option<Millis> {
        self.relogin
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, at)| *at)
            .filter(|at| stamp <= *at)
    }

    /// The latest mark of any kind that concerns `name`: a sign-in of it is stamped after it.
    pub(crate) fn latest_for(&self, name: &str) -> Option<Millis> {
        let relogin = self
            .relogin
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, at)| *at);
        self.everywhere.max(relogin)
    }

    /// The marks as the store keeps them: field `*` for everywhere, the strategy's name for a
    /// re-login.
    pub(crate) fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, Millis)>) -> Self {
        let mut marks = Marks::default();
        for (name, at) in fields {
            if name == EVERYWHERE_FIELD {
                marks.everywhere = Some(at);
            } else {
                marks.relogin.push((name.to_owned(), at));
            }
        }
        marks
    }
}

/// The marks' field for "signed out everywhere".
pub(crate) const EVERYWHERE_FIELD: &str = "*";

/// A user agent cut to what a list of sessions shows: printable ASCII, at most 80 characters.
pub(crate) fn short_user_agent(header: Option<&str>) -> String {
    header
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(80)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_signs_out_what_was_stamped_at_or_before_it_to_the_millisecond() {
        let marks = Marks::from_fields([("*", 1_000), ("apple-music", 2_000)]);
        assert!(marks.signs_out(999));
        assert!(
            marks.signs_out(1_000),
            "the mark's own millisecond is before it"
        );
        assert!(!marks.signs_out(1_001), "one millisecond later is after it");
        assert_eq!(marks.relogin_of("apple-music", 2_000), Some(2_000));
        assert_eq!(marks.relogin_of("apple-music", 2_001), None);
        assert_eq!(marks.relogin_of("apple-id", 1), None);
        assert_eq!(marks.latest_for("apple-music"), Some(2_000));
        assert_eq!(marks.latest_for("apple-id"), Some(1_000));
        assert!(!Marks::default().signs_out(0));
    }

    #[test]
    fn the_session_record_is_short_and_the_user_agent_is_cut() {
        let record = SessionRecord {
            account: "acct-1".into(),
            sid: SessionRecord::new_sid(),
            stamp: 1_733_500_000_123,
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.len() < 70, "{json}");
        assert_eq!(record.sid.len(), 22);
        assert_ne!(SessionRecord::new_sid(), record.sid);
        let long = "Mozilla/5.0 ".repeat(20) + "\u{7}\n";
        let short = short_user_agent(Some(&long));
        assert!(short.len() <= 80 && short.starts_with("Mozilla/5.0"));
        assert!(!short.contains('\n'));
        assert_eq!(short_user_agent(None), "");
    }
}
