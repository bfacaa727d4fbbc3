//! The account index and marks in Redis, beside the sessions.
//!
//! Per account (`<h>` = the first 32 hex digits of SHA-256 of the account id, in a hash tag so
//! that an account's two keys share a Cluster slot):
//!
//! - `actix-apple-music:account:{<h>}:sessions`: a hash, session id → entry (JSON: times,
//!   strategy, short user agent). It expires with its longest-lived entry; ended and
//!   signed-out entries are removed when the account's sessions are listed or signed out.
//! - `actix-apple-music:account:{<h>}:marks`: a hash, `*` or a strategy's name → the mark (ms),
//!   kept [`MARKS_LIFETIME`] after it is set (longer than any session it must sign out).
//! - `actix-apple-music:alias:{<h'>}`: a set of the account ids a provider's subject
//!   (`apple-id:<sub>`) signed in to.

use futures_util::future::LocalBoxFuture;
use sha2::{Digest, Sha256};

use super::error::AccountsError;
use super::store::{alive, parse_mark_fields, AccountStore};
use crate::session_records::account::{Entry, Marks, Millis};
use crate::session_store::{RedisSessions, RedisStore};

/// How long an account's marks are kept after they are set: 400 days.
pub const MARKS_LIFETIME: std::time::Duration = std::time::Duration::from_secs(400 * 86_400);

const PREFIX: &str = "actix-apple-music:";

fn hashed(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sessions_key(account: &str) -> String {
    format!("{PREFIX}account:{{{}}}:sessions", hashed(account))
}

fn marks_key(account: &str) -> String {
    format!("{PREFIX}account:{{{}}}:marks", hashed(account))
}

fn alias_key(alias: &str) -> String {
    format!("{PREFIX}alias:{{{}}}", hashed(alias))
}

/// Adds an entry; the hash lives as long as its longest entry.
const REGISTER: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local want = tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < want then redis.call('PEXPIRE', KEYS[1], want) end
return 1";

/// Moves an entry's last-seen time forward, if the entry is still there.
const TOUCH: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local ok, e = pcall(cjson.decode, v)
if not ok or type(e) ~= 'table' then return 0 end
local at = tonumber(ARGV[2])
if type(e.l) == 'number' and e.l >= at then return 1 end
e.l = at
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(e))
return 1";

/// Sets a mark no earlier than asked and than the mark already set; covering (`ARGV[4]` = 1),
/// also no earlier than every session it concerns, and a mark for everywhere empties the
/// index (otherwise listing tidies the sessions it signs out).
const MARK: &str = r"
local field = ARGV[1]
local at = tonumber(ARGV[2])
local prev = tonumber(redis.call('HGET', KEYS[1], field) or '0')
if prev and prev > at then at = prev end
local cover = ARGV[4] == '1'
if cover then
  for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
    local ok, e = pcall(cjson.decode, v)
    if ok and type(e) == 'table' and type(e.t) == 'number' and (field == '*' or e.k == field) and e.t > at then
      at = e.t
    end
  end
end
local text = string.format('%.0f', at)
redis.call('HSET', KEYS[1], field, text)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if field == '*' and cover then redis.call('DEL', KEYS[2]) end
return text";

impl RedisSessions {
    /// The account index and sign-out marks in the same Redis, for
    /// [`Authenticator::accounts`](crate::Authenticator::accounts): every instance sees every
    /// sign-out. One per connection: every call answers a handle to the same one. See
    /// [`accounts`](crate::accounts).
    pub fn accounts(&self) -> super::Accounts {
        self.accounts
            .get_or_init(|| {
                super::Accounts::on(
                    std::sync::Arc::new(RedisAccounts {
                        redis: self.store().inner().clone(),
                    }),
                    true,
                )
            })
            .clone()
    }
}

/// The account store on Redis, on the session store's connection.
pub(crate) struct RedisAccounts {
    pub(crate) redis: RedisStore,
}

fn failed(e: redis::RedisError) -> AccountsError {
    AccountsError::new(format!("Redis: {}", e.kind_description()))
}

fn eval(script: &str, keys: &[&str], args: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len());
    for key in keys {
        cmd.arg(*key);
    }
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}

trait KindDescription {
    fn kind_description(&self) -> String;
}

impl KindDescription for redis::RedisError {
    fn kind_description(&self) -> String {
        // The category and Redis's own words, never a key or a value.
        let detail = self.detail().unwrap_or_default();
        format!(
            "{:?} {}",
            self.kind(),
            detail.chars().take(120).collect::<String>()
        )
    }
}

impl AccountStore for RedisAccounts {
    fn marks<'a>(&'a self, account: &'a str) -> LocalBoxFuture<'a, Result<Marks, AccountsError>> {
        Box::pin(async move {
            let fields: Vec<(String, String)> = self
                .redis
                .run_within(redis::cmd("HGETALL").arg(marks_key(account)))
                .await
                .map_err(failed)?;
            Ok(parse_mark_fields(fields))
        })
    }

    fn register<'a>(
        &'a self,
        account: &'a str,
        sid: &'a str,
        entry: &'a Entry,
        alias: Option<&'a str>,
    ) -> LocalBoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let json = serde_json::to_string(entry).map_err(AccountsError::new)?;
            let ttl = entry.until.saturating_sub(entry.signed_in_at).max(1000);
            let _: i64 = self
                .redis
                .run_within(&eval(
                    REGISTER,
                    &[&sessions_key(account)],
                    &[sid, &json, &ttl.to_string()],
                ))
                .await
                .map_err(failed)?;
            if let Some(alias) = alias {
                let key = alias_key(alias);
                let _: i64 = self
                    .redis
                    .run_within(redis::cmd("SADD").arg(&key).arg(account))
                    .await
                    .map_err(failed)?;
                let _: i64 = self
                    .redis
                    .run_within(
                        redis::cmd("PEXPIRE")
                            .arg(&key)
                            .arg(MARKS_LIFETIME.as_millis() as u64),
                    )
                    .await
                    .map_err(failed)?;
            }
            Ok(())
        })
    }

    fn touch<'a>(
        &'a self,
        account: &'a str,
        sid: &'a str,
        at: Millis,
    ) -> LocalBoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let _: i64 = self
                .redis
                .run_within(&eval(
                    TOUCH,
                    &[&sessions_key(account)],
                    &[sid, &at.to_string()],
                ))
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    fn remove<'a>(
        &'a self,
        account: &'a str,
        sid: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let _: i64 = self
                .redis
                .run_within(redis::cmd("HDEL").arg(sessions_key(account)).arg(sid))
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        account: &'a str,
        now: Millis,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, Entry)>, AccountsError>> {
        Box::pin(async move {
            let marks = self.marks(account).await?;
            let key = sessions_key(account);
            let fields: Vec<(String, String)> = self
                .redis
                .run_within(redis::cmd("HGETALL").arg(&key))
                .await
                .map_err(failed)?;
            let mut live = Vec::new();
            let mut dead = Vec::new();
            for (sid, json) in fields {
                match serde_json::from_str::<Entry>(&json) {
                    Ok(entry) if alive(&entry, &marks, now) => live.push((sid, entry)),
                    _ => dead.push(sid),
                }
            }
            if !dead.is_empty() {
                let _: i64 = self
                    .redis
                    .run_within(redis::cmd("HDEL").arg(&key).arg(&dead))
                    .await
                    .map_err(failed)?;
            }
            Ok(live)
        })
    }

    fn mark<'a>(
        &'a self,
        account: &'a str,
        field: &'a str,
        at: Millis,
        cover: bool,
    ) -> LocalBoxFuture<'a, Result<Millis, AccountsError>> {
        Box::pin(async move {
            let set: String = self
                .redis
                .run_within(&eval(
                    MARK,
                    &[&marks_key(account), &sessions_key(account)],
                    &[
                        field,
                        &at.to_string(),
                        &(MARKS_LIFETIME.as_millis() as u64).to_string(),
                        if cover { "1" } else { "0" },
                    ],
                ))
                .await
                .map_err(failed)?;
            set.parse()
                .map_err(|_| AccountsError::new("Redis answered a mark that is not a number"))
        })
    }

    fn accounts_of<'a>(
        &'a self,
        alias: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<String>, AccountsError>> {
        Box::pin(async move {
            self.redis
                .run_within(redis::cmd("SMEMBERS").arg(alias_key(alias)))
                .await
                .map_err(failed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_two_keys_share_a_hash_tag_and_name_no_account() {
        let (sessions, marks) = (sessions_key("acct-1"), marks_key("acct-1"));
        let tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_owned();
        assert_eq!(tag(&sessions), tag(&marks));
        assert_ne!(tag(&sessions), tag(&sessions_key("acct-2")));
        assert!(!sessions.contains("acct-1"));
        assert!(!alias_key("apple-id:001234.abc").contains("001234"));
    }
}
