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

# The account lifecycle on: sign in through the test route with an account.
signin=$(grep -m1 -o '/__test/sign-in/[A-Za-z0-9-]*' "$log")
curl -s "$base/sign-in-body" >"$rdir/body.json"
acookie=$(curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' --data @"$rdir/body.json" "$base/acct$signin" | grep -i '^set-cookie:' | sed -E 's/^[Ss]et-[Cc]ookie: ([^;]*).*/\1/')
racookie=$(curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' --data @"$rdir/body.json" "$base/redis-acct$signin" | grep -i '^set-cookie:' | sed -E 's/^[Ss]et-[Cc]ookie: ([^;]*).*/\1/')
ncookie=$(curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' --data @"$rdir/body.json" "$base/noacct$signin" | grep -i '^set-cookie:' | sed -E 's/^[Ss]et-[Cc]ookie: ([^;]*).*/\1/')
rncookie=$(curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' --data @"$rdir/body.json" "$base/redis-noacct$signin" | grep -i '^set-cookie:' | sed -E 's/^[Ss]et-[Cc]ookie: ([^;]*).*/\1/')
for pair in "acct:$acookie" "redis-acct:$racookie" "noacct:$ncookie" "redis-noacct:$rncookie"; do
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: ${pair#*:}" "$base/${pair%%:*}/guarded")
  [ "$status" = 200 ] || { echo "${pair%%:*} guarded route answered $status"; exit 1; }
done

# Redis commands per guarded request with accounts on: 200 requests one after another.
redis-cli -p "$rport" config resetstat >/dev/null
for _ in $(seq 200); do curl -s -o /dev/null -H "Cookie: $racookie" "$base/redis-acct/guarded"; done
calls() { redis-cli -p "$rport" info commandstats | awk -F'[:=,]' -v c="cmdstat_$1" '$1 == c {print $3}'; }
echo "Redis commands per guarded request (accounts in Redis, 200 requests): GET $(awk -v n="$(calls get)" 'BEGIN {printf "%.2f", n/200}'), HGETALL (the marks) $(awk -v n="$(calls hgetall)" 'BEGIN {printf "%.3f", n/200}')"

rps() { wrk -t2 -c32 -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
bare=$(rps "$base/bare")
open=$(rps -H "Cookie: $cookie" "$base/app/open")
guarded=$(rps -H "Cookie: $cookie" "$base/app/guarded")
ropen=$(rps -H "Cookie: $rcookie" "$base/redis/open")
rguarded=$(rps -H "Cookie: $rcookie" "$base/redis/guarded")
# The sign-out check: the same sign-in with the account lifecycle off and on, in turn, in
# rounds (ROUNDS, default 3), so a noisy moment weighs on both.
ratios=""
for round in $(seq "${ROUNDS:-3}"); do
  off=$(rps -H "Cookie: $ncookie" "$base/noacct/guarded"); on=$(rps -H "Cookie: $acookie" "$base/acct/guarded")
  roff=$(rps -H "Cookie: $rncookie" "$base/redis-noacct/guarded"); ron=$(rps -H "Cookie: $racookie" "$base/redis-acct/guarded")
  echo "round $round: cookie off $off on $on; Redis off $roff on $ron"
  ratios="$ratios $(awk -v a="$on" -v b="$off" -v c="$ron" -v d="$roff" 'BEGIN {printf "%.3f:%.3f", a/b, c/d}')"
done
median() { tr ' ' '\n' | awk -F: -v f="$1" 'NF == 2 {print $f}' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "sign-out check (accounts on / off, same sign-in), median of ${ROUNDS:-3} rounds: cookie $(echo "$ratios" | median 1), Redis $(echo "$ratios" | median 2) (target >= 0.95)"
aguarded=$on; raguarded=$ron
echo "route                                  req/s"
printf '%-36s %10s\n' "bare handler" "$bare" "cookie session, no guard" "$open" \
  "cookie session + AppleMusicUser" "$guarded" "Redis session, no guard" "$ropen" \
  "Redis session + AppleMusicUser" "$rguarded" \
  "cookie + AppleMusicUser + accounts" "$aguarded" "Redis + AppleMusicUser + accounts" "$raguarded"
awk -v b="$bare" -v o="$open" -v g="$guarded" -v ro="$ropen" -v rg="$rguarded" -v ag="$aguarded" -v rag="$raguarded" 'BEGIN {
  printf "cookie: guarded / bare = %.2f, guarded / open = %.2f\n", g/b, g/o
  printf "redis:  guarded / bare = %.2f, guarded / open = %.2f, guarded / cookie guarded = %.2f\n", rg/b, rg/ro, rg/g }'
