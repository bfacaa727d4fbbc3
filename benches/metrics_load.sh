#!/usr/bin/env bash
# A guarded request with metrics on (the Prometheus recorder installed) against off: two
# guard_bench servers, one with METRICS=1, measured in turn with wrk in rounds (ROUNDS,
# default 3), on the cookie store and on Redis. Target: on / off >= 0.97.
#   bash benches/metrics_load.sh [seconds per measurement, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)"; exit 1; }
cargo build --release --example guard_bench --features redis -q
rdir=$(mktemp -d)
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$rdir" >/dev/null &
rpid=$!
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
pids="$rpid"
trap 'kill $pids 2>/dev/null; rm -rf "$rdir"' EXIT
start() { # start NAME ENV...: a guard_bench server; sets $base
  env SESSION_REDIS_URL="redis://127.0.0.1:$rport" BIND=127.0.0.1:0 "${@:2}" \
    target/release/examples/guard_bench >"$rdir/$1.log" 2>&1 &
  pids="$pids $!"
  for _ in $(seq 100); do grep -q listening "$rdir/$1.log" && break; sleep 0.1; done
  base=$(grep -m1 -o 'http://[0-9.:]*' "$rdir/$1.log")
}
cookie_of() { curl -s -D - -o /dev/null -X POST "$1" | grep -i '^set-cookie:' | sed -E 's/^[Ss]et-[Cc]ookie: ([^;]*).*/\1/'; }
start off; off=$base
start on METRICS=1; on=$base
grep -q "metrics: on" "$rdir/on.log" || { echo "the metrics server did not install its recorder"; exit 1; }
for side in off on; do
  b=${!side}
  c=$(cookie_of "$b/app/sign-in"); r=$(cookie_of "$b/redis/sign-in")
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $c" "$b/app/guarded")" = 200 ] || { echo "$side: cookie guarded route"; exit 1; }
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $r" "$b/redis/guarded")" = 200 ] || { echo "$side: Redis guarded route"; exit 1; }
  eval "${side}_cookie=\$c; ${side}_redis=\$r"
done
rps() { wrk -t2 -c32 -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
ratios=""
for round in $(seq "${ROUNDS:-3}"); do
  a=$(rps -H "Cookie: $off_cookie" "$off/app/guarded"); b=$(rps -H "Cookie: $on_cookie" "$on/app/guarded")
  c=$(rps -H "Cookie: $off_redis" "$off/redis/guarded"); d=$(rps -H "Cookie: $on_redis" "$on/redis/guarded")
  echo "round $round: cookie off $a on $b; Redis off $c on $d"
  ratios="$ratios $(awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN {printf "%.3f:%.3f", b/a, d/c}')"
done
median() { tr ' ' '\n' | awk -F: -v f="$1" 'NF == 2 {print $f}' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "metrics on / off (guarded request), median of ${ROUNDS:-3} rounds: cookie $(echo "$ratios" | median 1), Redis $(echo "$ratios" | median 2) (target >= 0.97)"
