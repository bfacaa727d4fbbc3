//! The strategy's name, in a file of its own: the API client names it too (in its audit
//! events) without depending on the strategy.

/// Session namespace and name of the strategy.
pub const STRATEGY_NAME: &str = "apple-music";
