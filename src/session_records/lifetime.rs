//! The lifetime record: how long a session is worth keeping, one entry per strategy. Server-side
//! stores give a session its TTL from it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use actix_session::Session;

/// The session key, owned by the crate, that records how long a session is worth keeping:
/// `"<strategy>=<Unix time>,…"` (a JSON string), one entry per strategy. No other key counts
/// for a session's TTL.
pub(crate) const LIFETIME_KEY: &str = "aam.until";

/// A session's lifetime record: per strategy, the Unix time until which the session is worth
/// keeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LifetimeRecord {
    until: BTreeMap<String, i64>,
}

impl LifetimeRecord {
    /// The session's record (empty when it has none, or one that does not read).
    pub(crate) fn read(session: &Session) -> Self {
        let text = session.get::<String>(LIFETIME_KEY).ok().flatten();
        Self {
            until: text
                .as_deref()
                .map(|text| {
                    entries(text)
                        .map(|(name, until)| (name.to_owned(), until))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Sets strategy `name`'s entry (`None` removes it).
    pub(crate) fn set(&mut self, name: &str, until: Option<i64>) {
        match until {
            Some(until) => {
                self.until.insert(name.to_owned(), until);
            }
            None => {
                self.until.remove(name);
            }
        }
    }

    /// Writes the record into the session; an empty record removes the key.
    pub(crate) fn write(&self, session: &Session) -> Result<(), actix_session::SessionInsertError> {
        if self.until.is_empty() {
            session.remove(LIFETIME_KEY);
            return Ok(());
        }
        let mut text = String::with_capacity(self.until.len() * 24);
        for (name, until) in &self.until {
            if !text.is_empty() {
                text.push(',');
            }
            let _ = write!(text, "{name}={until}");
        }
        session.insert(LIFETIME_KEY, text)
    }

    /// The latest end in a stored session's state (as a store sees it: values serialised as
    /// JSON), if it holds a record that reads.
    pub(crate) fn latest_end_in(state: &HashMap<String, String>) -> Option<i64> {
        let json = state.get(LIFETIME_KEY)?;
        // The record is a JSON string; the crate writes it without escapes, so it borrows.
        match serde_json::from_str::<&str>(json) {
            Ok(record) => latest(record),
            Err(_) => latest(&serde_json::from_str::<String>(json).ok()?),
        }
    }
}

fn latest(record: &str) -> Option<i64> {
    entries(record).map(|(_, until)| until).max()
}

/// The entries of a lifetime record (`name=unix-seconds`, comma-separated), skipping any that
/// does not read.
fn entries(record: &str) -> impl Iterator<Item = (&str, i64)> {
    record.split(',').filter_map(|entry| {
        let (name, until) = entry.split_once('=')?;
        Some((name, until.trim().parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_entry_counts_and_what_does_not_read_is_skipped() {
        let state: HashMap<String, String> = [(
            LIFETIME_KEY.to_owned(),
            r#""apple-music=900,apple-id=1200,broken=x,=5,nothing""#.to_owned(),
        )]
        .into();
        assert_eq!(LifetimeRecord::latest_end_in(&state), Some(1200));
        let escaped: HashMap<String, String> =
            [(LIFETIME_KEY.to_owned(), r#""a\u003d700""#.to_owned())].into();
        assert_eq!(LifetimeRecord::latest_end_in(&escaped), Some(700));
        assert_eq!(LifetimeRecord::latest_end_in(&HashMap::new()), None);
    }
}
