#!/usr/bin/env bash
# Requests per second of a guarded route against the same route without the guard and a
# bare actix handler, with the cookie store and with the Redis store, in one run, with wrk
# against a release build. Starts its own redis-server on a free loopback port.
#   bash benches/guard_load.sh [seconds per route, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)"; exit 1; }
cargo build --release --example guard_bench --features redis -q
rdir=$(mktemp -d)
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$rdir" >/dev/null &
rpid=$!
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
log=$(mktemp)
SESSION_REDIS_URL="redis://127.0.0.1:$rport" BIND=127.0.0.1:0 target/release/examples/guard_bench >"$log" 2>&1 &
pid=$!
trap 'kill $pid $rpid 2>/dev/null; rm -rf "$rdir"' EXIT
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.1; done
base=$(grep -m1 -o 'http://[0-9.:]*' "$log")
cookie=$(curl -s -D - -o /dev/null -X POST "$base/app/sign-in" | grep -i '^set-cookie:' | sed -E 's/^[Ss]et-[Cc]ookie: ([^;]*).*/\1/')
[ -n "$cookie" ] || { echo "could not sign in"; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$base/app/guarded")
[ "$status" = 200 ] || { echo "guarded route answered $status"; exit 1; }

rcookie=$(curl -s -D - -o /dev/null -X POST "$base/redis/sign-in" | grep -i '^set-cookie:' | sed -E 's/^[Ss]et-[Cc]ookie: ([^;]*).*/\1/')
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $rcookie" "$base/redis/guarded")
[ "$status" = 200 ] || { echo "Redis guarded route answered $status"; exit 1; }

rps() { wrk -t2 -c32 -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
bare=$(rps "$base/bare")
open=$(rps -H "Cookie: $cookie" "$base/app/open")
guarded=$(rps -H "Cookie: $cookie" "$base/app/guarded")
ropen=$(rps -H "Cookie: $rcookie" "$base/redis/open")
rguarded=$(rps -H "Cookie: $rcookie" "$base/redis/guarded")
echo "route                                  req/s"
printf '%-36s %10s\n' "bare handler" "$bare" "cookie session, no guard" "$open" \
  "cookie session + AppleMusicUser" "$guarded" "Redis session, no guard" "$ropen" \
  "Redis session + AppleMusicUser" "$rguarded"
awk -v b="$bare" -v o="$open" -v g="$guarded" -v ro="$ropen" -v rg="$rguarded" 'BEGIN {
  printf "cookie: guarded / bare = %.2f, guarded / open = %.2f\n", g/b, g/o
  printf "redis:  guarded / bare = %.2f, guarded / open = %.2f, guarded / cookie guarded = %.2f\n", rg/b, rg/ro, rg/g }'
