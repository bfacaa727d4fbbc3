#!/usr/bin/env bash
# Soak: the demo under a mixed, checked load (benches/load.rs `soak`): sign-ins, guarded
# requests, re-logins after a short music user token lifetime, logouts, forged and malformed
# callbacks. First on cookie sessions (one instance), then on Redis sessions (two instances on
# one redis-server, requests alternating between them) with Redis faults under load: stopped
# for 5 s, slow (DEBUG SLEEP 3), restarted; then on a Sentinel group (a primary, a replica, three
# sentinels) whose primary is killed mid-run, reporting how long the instances took to serve
# again from the new primary. Exits non-zero on an unexpected status, a request
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
echo
echo "== Redis Sentinel: one primary, one replica, three sentinels; two instances, $secs s, $users users; the primary killed at 40 %"
sdir="$tmp/sentinel"; mkdir -p "$sdir"
primary=$(free_port); replica=$(free_port)
redis-server --port "$primary" --bind 127.0.0.1 --dir "$sdir" --save '' --appendonly no --daemonize yes --logfile "$sdir/primary.log" --pidfile "$sdir/primary.pid"
redis-server --port "$replica" --bind 127.0.0.1 --dir "$sdir" --save '' --appendonly no --daemonize yes --logfile "$sdir/replica.log" --pidfile "$sdir/replica.pid" --replicaof 127.0.0.1 "$primary"
sentinels=""
for i in 1 2 3; do
  sport=$(free_port)
  printf 'port %s\nbind 127.0.0.1\ndir %s\ndaemonize yes\npidfile %s/s%s.pid\nlogfile %s/s%s.log\nsentinel monitor sessions 127.0.0.1 %s 2\nsentinel down-after-milliseconds sessions 1000\nsentinel failover-timeout sessions 5000\n' \
    "$sport" "$sdir" "$sdir" "$i" "$sdir" "$i" "$primary" >"$sdir/s$i.conf"
  redis-server "$sdir/s$i.conf" --sentinel
  sentinels="$sentinels${sentinels:+,}127.0.0.1:$sport"
done
stop_sentinel_group() { for f in "$sdir"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; return 0; }
for _ in $(seq 300); do
  redis-cli -p "${sentinels##*:}" sentinel replicas sessions 2>/dev/null | grep -q slave && break; sleep 0.1
done
demo sentinel1 SESSION_REDIS_SENTINELS="$sentinels" SESSION_REDIS_SENTINEL_MASTER=sessions; s1=$base; q1=$pid
demo sentinel2 SESSION_REDIS_SENTINELS="$sentinels" SESSION_REDIS_SENTINEL_MASTER=sessions; s2=$base; q2=$pid
"$driver" soak --base "$s1" --base "$s2" --seconds "$secs" --users "$users" --token-lifetime "$lifetime" \
  --warmup "$warmup" --pid "$q1" --pid "$q2" --kill-primary "$primary" || status=1
stop_sentinel_group
for name in cookie redis1 redis2 sentinel1 sentinel2; do
  if grep -qi "panic" "$tmp/$name.log"; then echo "$name panicked:"; grep -i -m5 panic "$tmp/$name.log"; status=1; fi
done
echo
[ "$status" = 0 ] && echo "soak: passed (cookie, Redis, Sentinel failover)" || echo "soak: FAILED"
exit "$status"
