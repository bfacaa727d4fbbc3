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
. benches/common.sh
driver=$(load_driver)
demo() { # demo NAME ENV...: an instance with the soak's lifetimes; sets $base and $pid
  start_demo "$@" APPLE_MUSIC_USER_TOKEN_LIFETIME_SECS=$lifetime APPLE_MUSIC_STATE_TTL_SECS=$state_ttl
}

echo "== cookie sessions: one instance, $secs s, $users users"
demo cookie
status=0
"$driver" soak --base "$base" --seconds "$secs" --users "$users" --token-lifetime "$lifetime" \
  --warmup "$warmup" --pid "$pid" || status=1

echo
echo "== Redis sessions: two instances, $secs s, $users users, faults at 30 %, 55 %, 75 %"
start_redis --dbfilename soak.rdb --enable-debug-command yes
demo redis1 SESSION_REDIS_URL="redis://127.0.0.1:$rport"; r1=$base; p1=$pid
demo redis2 SESSION_REDIS_URL="redis://127.0.0.1:$rport"; r2=$base; p2=$pid
"$driver" soak --base "$r1" --base "$r2" --seconds "$secs" --users "$users" --token-lifetime "$lifetime" \
  --warmup "$warmup" --pid "$p1" --pid "$p2" \
  --redis-port "$rport" --redis-start "$redis_start" || status=1
for name in cookie redis1 redis2; do
  if grep -qi "panic" "$tmp/$name.log"; then echo "$name panicked:"; grep -i -m5 panic "$tmp/$name.log"; status=1; fi
done
echo
[ "$status" = 0 ] && echo "soak: passed (cookie and Redis)" || echo "soak: FAILED"
exit "$status"
