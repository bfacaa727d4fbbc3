//! Every in-process test, in one binary (one link step) sharing the fixtures of `common`:
//! developer tokens, the strategy framework and a second strategy, the Apple Music strategy,
//! the guard, session stores, Apple Music API against a stand-in, configuration from the
//! environment. The browser and Redis tests are binaries of their own (they need Chromium or
//! a `redis-server`, installed by `.ci/run`).

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod apple_api;
mod apple_id;
mod apple_id_lifecycle;
// With both crypto backends enabled (`--all-features`): run by `.ci/run`.
#[cfg(all(feature = "aws_lc_rs", feature = "rust_crypto"))]
mod both_backends;
mod clock;
mod config_env;
mod developer_token;
mod framework;
mod guard;
mod lifecycle;
mod origin;
mod pending_logins;
mod rotation;
mod session_store;
mod strategy;
