#!/usr/bin/env bash
# Soak: the demo under a mixed, checked load (benches/load.rs `soak`): sign-ins, guarded
# requests, re-logins after a short music user token lifetime, logouts, forged and malformed
# callbacks. First on cookie sessions (one instance), then on Redis sessions (two instances on
# one redis-server, requests alternating between them) with Redis faults under load: stopped
# for 5 s, slow (DEBUG SLEEP 3), restarted. Exits non-zero on an unexpected status, a request
# that got another user's identity, a hang, or RSS at the end above 1.2 × after warm-up.
# Release build, loopback only. Needs redis-server and redis-cli (apt-get install redis-server).
#   bash benches/soak.sh [seconds per phase, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
users="${SOAK_USERS:-24}"
lifetime=15
# Login states live 15 s here (10 min by default): the in-memory single-use ledger keeps each
# spent state that long, so RSS is steady after one state lifetime, and warm-up is a third of
# the run (at least 20 s).
state_ttl=15
warmup=$(( secs / 3 > 20 ? secs / 3 : 20 ))
[ "$secs" -gt "$warmup" ] || { echo "run at least 21 s"; exit 1; }
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)"; exit 1; }
cargo build -q --release --example demo --features redis
cargo build -q --release --bench load
driver=$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d)
pids=()
rport=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$rport" ] && redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
key=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')
demo() { # demo NAME ENV...: starts a demo instance, prints its base URL
  local port name=$1; shift
  port=$(free_port)
  env BIND="127.0.0.1:$port" SESSION_KEY="$key" INSECURE_COOKIES=1 AUTH_RATE_LIMIT_PER_MINUTE=0 \
    APPLE_MUSIC_USER_TOKEN_LIFETIME_SECS=$lifetime APPLE_MUSIC_STATE_TTL_SECS=$state_ttl RUST_LOG=error "$@" \
    target/release/examples/demo >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  echo "$!" >"$tmp/$name.pid"
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  curl -fs -o /dev/null "http://127.0.0.1:$port/" || { cat "$tmp/$name.log"; exit 1; }
  echo "http://127.0.0.1:$port"
}

echo "== cookie sessions: one instance, $secs s, $users users"
a=$(demo cookie)
status=0
"$driver" soak --base "$a" --seconds "$secs" --users "$users" --token-lifetime "$lifetime" \
  --warmup "$warmup" --pid "$(cat "$tmp/cookie.pid")" || status=1

echo
echo "== Redis sessions: two instances, $secs s, $users users, faults at 30 %, 55 %, 75 %"
rport=$(free_port)
redis_start="redis-server --port $rport --bind 127.0.0.1 --dir $tmp --dbfilename soak.rdb --save '' --appendonly no --enable-debug-command yes --daemonize yes --logfile $tmp/redis.log"
sh -c "$redis_start"
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
r1=$(demo redis1 SESSION_REDIS_URL="redis://127.0.0.1:$rport")
r2=$(demo redis2 SESSION_REDIS_URL="redis://127.0.0.1:$rport")
"$driver" soak --base "$r1" --base "$r2" --seconds "$secs" --users "$users" --token-lifetime "$lifetime" \
  --warmup "$warmup" --pid "$(cat "$tmp/redis1.pid")" --pid "$(cat "$tmp/redis2.pid")" \
  --redis-port "$rport" --redis-start "$redis_start" || status=1
for name in cookie redis1 redis2; do
  if grep -qi "panic" "$tmp/$name.log"; then echo "$name panicked:"; grep -i -m5 panic "$tmp/$name.log"; status=1; fi
done
echo
[ "$status" = 0 ] && echo "soak: passed (cookie and Redis)" || echo "soak: FAILED"
exit "$status"
