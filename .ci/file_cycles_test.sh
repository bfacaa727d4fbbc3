#!/usr/bin/env bash
# The file-cycle checker on fixtures: a cycle through `use super::module` then `module::item`
# (the blind spot it once had) is found; a `pub use` re-export of a child is not a dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
fixture=$(mktemp -d)
trap 'rm -rf "$fixture"' EXIT
mkdir -p "$fixture/cycle/strategy" "$fixture/clean/strategy"
cat >"$fixture/cycle/strategy/authenticator.rs" <<'RS'
use super::routes;
pub struct Authenticator;
pub fn mount() { let _ = routes::login; }
RS
cat >"$fixture/cycle/strategy/routes.rs" <<'RS'
use super::authenticator::Authenticator;
pub fn login(_: Authenticator) {}
RS
cat >"$fixture/cycle/strategy/mod.rs" <<'RS'
mod authenticator;
mod routes;
pub use authenticator::Authenticator;
RS
# The same without the call back: routes names the authenticator, not the reverse.
cp "$fixture/cycle/strategy/routes.rs" "$fixture/cycle/strategy/mod.rs" "$fixture/clean/strategy/"
cat >"$fixture/clean/strategy/authenticator.rs" <<'RS'
pub struct Authenticator;
RS
found=$(python3 .ci/file_cycles.py "$fixture/cycle")
echo "$found" | grep -q "strategy/authenticator.rs', 'strategy/routes.rs" \
  || { echo "file_cycles: the module::item cycle was not found: $found"; exit 1; }
clean=$(python3 .ci/file_cycles.py "$fixture/clean")
[ "$clean" = "cycles: none" ] || { echo "file_cycles: a cycle where there is none: $clean"; exit 1; }
echo "file_cycles fixtures: ok"
