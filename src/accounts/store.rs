//! Where account records live: the [`AccountStore`] contract and the in-process store.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use futures_util::future::LocalBoxFuture;

use super::error::AccountsError;
use crate::session_records::account::{Entry, Marks, Millis, EVERYWHERE_FIELD};

/// Where the account index and the sign-out marks are kept. Implemented in process
/// ([`MemoryAccounts`]) and in Redis (feature `redis`).
pub(crate) trait AccountStore: Send + Sync + 'static {
    /// The account's marks.
    fn marks<'a>(&'a self, account: &'a str) -> LocalBoxFuture<'a, Result<Marks, AccountsError>>;

    /// Adds (or rewrites) session `sid` in the account's index, and links `alias` (a
    /// provider's subject, `strategy:subject`) to the account.
    fn register<'a>(
        &'a self,
        account: &'a str,
        sid: &'a str,
        entry: &'a Entry,
        alias: Option<&'a str>,
    ) -> LocalBoxFuture<'a, Result<(), AccountsError>>;

    /// Notes that `sid` was seen at `at`, if it is still in the index.
    fn touch<'a>(
        &'a self,
        account: &'a str,
        sid: &'a str,
        at: Millis,
    ) -> LocalBoxFuture<'a, Result<(), AccountsError>>;

    /// Removes `sid` from the index (a logout).
    fn remove<'a>(
        &'a self,
        account: &'a str,
        sid: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), AccountsError>>;

    /// The account's sessions, the ended and signed-out ones tidied away first.
    fn list<'a>(
        &'a self,
        account: &'a str,
        now: Millis,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, Entry)>, AccountsError>>;

    /// Sets a mark (`*` for everywhere, a strategy's name for its re-login) at `at` or later,
    /// never earlier than a mark already set. With `cover`, also at least as late as every
    /// session the index holds for it (so a clock behind another instance's still signs them
    /// out), and a mark for everywhere empties the index; without, exactly `at` (a mark at
    /// the time of an event: sessions signed in after it stay). Answers the mark set.
    fn mark<'a>(
        &'a self,
        account: &'a str,
        field: &'a str,
        at: Millis,
        cover: bool,
    ) -> LocalBoxFuture<'a, Result<Millis, AccountsError>>;

    /// The accounts `alias` was linked to.
    fn accounts_of<'a>(
        &'a self,
        alias: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<String>, AccountsError>>;
}

/// Whether `entry` should be listed: not ended, not signed out.
pub(crate) fn alive(entry: &Entry, marks: &Marks, now: Millis) -> bool {
    entry.until > now && !marks.signs_out(entry.signed_in_at)
}

/// The latest stamp among entries that a mark on `field` concerns.
pub(crate) fn latest_stamp<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    field: &str,
) -> Option<Millis> {
    entries
        .into_iter()
        .filter(|e| field == EVERYWHERE_FIELD || e.strategy == field)
        .map(|e| e.signed_in_at)
        .max()
}

#[derive(Default)]
struct Account {
    marks: Marks,
    sessions: HashMap<String, Entry>,
}

#[derive(Default)]
struct Tables {
    accounts: HashMap<String, Account>,
    aliases: HashMap<String, BTreeSet<String>>,
}

/// The in-process account store: the index and marks of one process (one instance). Marks are
/// lost at a restart; see [`Accounts`](super::Accounts) for what that means.
#[derive(Default)]
pub(crate) struct MemoryAccounts {
    tables: RwLock<Tables>,
}

impl MemoryAccounts {
    fn with<T>(&self, f: impl FnOnce(&mut Tables) -> T) -> T {
        f(&mut self.tables.write().unwrap_or_else(|e| e.into_inner()))
    }

    fn read<T>(&self, f: impl FnOnce(&Tables) -> T) -> T {
        f(&self.tables.read().unwrap_or_else(|e| e.into_inner()))
    }
}

fn now_ready<'a, T: 'a>(value: T) -> LocalBoxFuture<'a, Result<T, AccountsError>> {
    Box::pin(std::future::ready(Ok(value)))
}

impl AccountStore for MemoryAccounts {
    fn marks<'a>(&'a self, account: &'a str) -> LocalBoxFuture<'a, Result<Marks, AccountsError>> {
        // Every guarded request asks: a shared read lock.
        let marks = self.read(|t| {
            t.accounts
                .get(account)
                .map(|a| a.marks.clone())
                .unwrap_or_default()
        });
        now_ready(marks)
    }

    fn register<'a>(
        &'a self,
        account: &'a str,
        sid: &'a str,
        entry: &'a Entry,
        alias: Option<&'a str>,
    ) -> LocalBoxFuture<'a, Result<(), AccountsError>> {
        self.with(|t| {
            let record = t.accounts.entry(account.to_owned()).or_default();
            let (marks, now) = (record.marks.clone(), entry.signed_in_at);
            record.sessions.retain(|_, e| alive(e, &marks, now));
            record.sessions.insert(sid.to_owned(), entry.clone());
            if let Some(alias) = alias {
                t.aliases
                    .entry(alias.to_owned())
                    .or_default()
                    .insert(account.to_owned());
            }
        });
        now_ready(())
    }

    fn touch<'a>(
        &'a self,
        account: &'a str,
        sid: &'a str,
        at: Millis,
    ) -> LocalBoxFuture<'a, Result<(), AccountsError>> {
        self.with(|t| {
            if let Some(entry) = t
                .accounts
                .get_mut(account)
                .and_then(|a| a.sessions.get_mut(sid))
            {
                entry.last_seen_at = entry.last_seen_at.max(at);
            }
        });
        now_ready(())
    }

    fn remove<'a>(
        &'a self,
        account: &'a str,
        sid: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), AccountsError>> {
        self.with(|t| {
            if let Some(a) = t.accounts.get_mut(account) {
                a.sessions.remove(sid);
            }
        });
        now_ready(())
    }

    fn list<'a>(
        &'a self,
        account: &'a str,
        now: Millis,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, Entry)>, AccountsError>> {
        let list = self.with(|t| {
            let Some(a) = t.accounts.get_mut(account) else {
                return Vec::new();
            };
            let marks = a.marks.clone();
            a.sessions.retain(|_, e| alive(e, &marks, now));
            a.sessions
                .iter()
                .map(|(sid, e)| (sid.clone(), e.clone()))
                .collect()
        });
        now_ready(list)
    }

    fn mark<'a>(
        &'a self,
        account: &'a str,
        field: &'a str,
        at: Millis,
        cover: bool,
    ) -> LocalBoxFuture<'a, Result<Millis, AccountsError>> {
        let set = self.with(|t| {
            let a = t.accounts.entry(account.to_owned()).or_default();
            let previous = if field == EVERYWHERE_FIELD {
                a.marks.everywhere
            } else {
                a.marks.relogin_at(field)
            };
            let covered = cover
                .then(|| latest_stamp(a.sessions.values(), field))
                .flatten();
            let at = [Some(at), covered, previous]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(at);
            if field == EVERYWHERE_FIELD {
                a.marks.everywhere = Some(at);
                a.sessions.retain(|_, e| e.signed_in_at > at);
            } else {
                a.marks.relogin.retain(|(n, _)| n != field);
                a.marks.relogin.push((field.to_owned(), at));
            }
            at
        });
        now_ready(set)
    }

    fn accounts_of<'a>(
        &'a self,
        alias: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<String>, AccountsError>> {
        let accounts = self.read(|t| {
            t.aliases
                .get(alias)
                .map(|set| set.iter().cloned().collect())
                .unwrap_or_default()
        });
        now_ready(accounts)
    }
}

impl Marks {
    /// The re-login mark of `name`, whatever the stamp.
    pub(crate) fn relogin_at(&self, name: &str) -> Option<Millis> {
        self.relogin
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, at)| *at)
    }
}

/// The store's fields of `marks`, for stores that keep them as a hash.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn parse_mark_fields(fields: Vec<(String, String)>) -> Marks {
    Marks::from_fields(
        fields
            .iter()
            .filter_map(|(name, at)| Some((name.as_str(), at.parse::<Millis>().ok()?))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stamp: Millis, strategy: &str) -> Entry {
        Entry {
            signed_in_at: stamp,
            last_seen_at: stamp,
            strategy: strategy.into(),
            user_agent: String::new(),
            until: stamp + 1_000_000,
        }
    }

    fn now<T>(f: LocalBoxFuture<'_, Result<T, AccountsError>>) -> T {
        futures_util::FutureExt::now_or_never(f).unwrap().unwrap()
    }

    #[test]
    fn a_mark_is_never_before_a_session_it_concerns_nor_a_mark_already_set() {
        let store = MemoryAccounts::default();
        // A session stamped by an instance whose clock runs ahead.
        now(store.register(
            "ada",
            "s1",
            &entry(5_000, "apple-music"),
            Some("apple-id:x"),
        ));
        now(store.register("ada", "s2", &entry(9_000, "apple-id"), None));
        assert_eq!(now(store.mark("ada", "apple-music", 1_000, true)), 5_000);
        assert_eq!(
            now(store.mark("ada", "apple-music", 2_000, true)),
            5_000,
            "never earlier"
        );
        // At an event's time: exactly then, sessions after it stay.
        assert_eq!(
            now(store.mark("ada", EVERYWHERE_FIELD, 7_000, false)),
            7_000
        );
        assert_eq!(
            now(store.list("ada", 0)).len(),
            1,
            "the session of 9 000 stays"
        );
        assert_eq!(now(store.mark("ada", EVERYWHERE_FIELD, 1_000, true)), 9_000);
        assert!(
            now(store.list("ada", 0)).is_empty(),
            "everywhere empties the index"
        );
        let marks = now(store.marks("ada"));
        assert!(marks.signs_out(9_000) && !marks.signs_out(9_001));
        assert_eq!(now(store.accounts_of("apple-id:x")), vec!["ada".to_owned()]);
        assert!(now(store.marks("bob")).everywhere.is_none());
    }

    #[test]
    fn listing_tidies_ended_and_signed_out_sessions_and_touch_moves_forward_only() {
        let store = MemoryAccounts::default();
        let mut ended = entry(1_000, "apple-id");
        ended.until = 1_500;
        now(store.register("ada", "ended", &ended, None));
        now(store.register("ada", "live", &entry(2_000, "apple-id"), None));
        now(store.touch("ada", "live", 3_000));
        now(store.touch("ada", "live", 2_500));
        now(store.touch("ada", "gone", 3_000));
        let list = now(store.list("ada", 2_000));
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].0.as_str(), list[0].1.last_seen_at),
            ("live", 3_000)
        );
        now(store.remove("ada", "live"));
        assert!(now(store.list("ada", 2_000)).is_empty());
    }
}
