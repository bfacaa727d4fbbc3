#!/usr/bin/env bash
# The demo's Redis settings from the outside (built with --features redis): two topologies at
# once, a sentinel list without the primary's name, and an unreachable cluster each stop the
# demo at start-up with an error naming the variable (and never a password).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --example demo --features redis
demo=target/debug/examples/demo
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail() { echo "demo redis env: $*"; exit 1; }
refused() { # refused WANT ENV...: the demo must exit non-zero, its output naming WANT
  local want=$1; shift
  if env BIND=127.0.0.1:0 "$@" timeout 20 "$demo" >"$out" 2>&1; then
    fail "started with $*"
  fi
  grep -q -- "$want" "$out" || fail "the error for $* does not name $want: $(cat "$out")"
  grep -q "hunter2" "$out" && fail "the error shows a password: $(cat "$out")"
  return 0
}
refused "SESSION_REDIS_URL and SESSION_REDIS_CLUSTER" \
  SESSION_REDIS_URL=redis://127.0.0.1:9 SESSION_REDIS_CLUSTER=127.0.0.1:9
refused "SESSION_REDIS_SENTINEL_MASTER is not set" SESSION_REDIS_SENTINELS=127.0.0.1:9
refused "SESSION_REDIS_SENTINELS is invalid" SESSION_REDIS_SENTINELS=nohost SESSION_REDIS_SENTINEL_MASTER=m
refused "SESSION_REDIS_CLUSTER is invalid" SESSION_REDIS_CLUSTER=redis://:hunter2@127.0.0.1:9
refused "SESSION_REDIS_SENTINELS is invalid" \
  SESSION_REDIS_SENTINELS=127.0.0.1:9,127.0.0.1:10 SESSION_REDIS_SENTINEL_MASTER=sessions
echo "demo redis env: ok"
