#!/usr/bin/env bash
# Requests per second of a guarded route against the same route without the guard and a
# bare actix handler, in one run, with wrk against a release build.
#   bash benches/guard_load.sh [seconds per route, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release --example guard_bench -q
log=$(mktemp)
BIND=127.0.0.1:0 target/release/examples/guard_bench >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.1; done
base=$(grep -m1 -o 'http://[0-9.:]*' "$log")
cookie=$(curl -s -D - -o /dev/null -X POST "$base/app/sign-in" | grep -i '^set-cookie:' | sed -E 's/^[Ss]et-[Cc]ookie: ([^;]*).*/\1/')
[ -n "$cookie" ] || { echo "could not sign in"; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$base/app/guarded")
[ "$status" = 200 ] || { echo "guarded route answered $status"; exit 1; }

rps() { wrk -t2 -c32 -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
bare=$(rps "$base/bare")
open=$(rps -H "Cookie: $cookie" "$base/app/open")
guarded=$(rps -H "Cookie: $cookie" "$base/app/guarded")
echo "route                         req/s"
printf '%-28s %10s\n' "bare handler" "$bare" "session, no guard" "$open" "session + AppleMusicUser" "$guarded"
awk -v b="$bare" -v o="$open" -v g="$guarded" 'BEGIN {
  printf "guarded / bare  = %.2f\nguarded / open  = %.2f\nopen / bare     = %.2f\n", g/b, g/o, o/b }'
