#!/usr/bin/env bash
# One run, side by side (wrk -t1 -c32, release builds, loopback): a bare actix handler, the
# guard on its own (benches/guard_load.sh's server), and the demo with cookie sessions and with
# Redis sessions; then full sign-ins per second (benches/load.rs `logins`), with and without the
# check with Apple's stand-in, to split a sign-in's time between the page, the callback and the
# Apple call. Prints one table (req/s and ratios), the cookie size with a 600-character music
# user token, the login page's size and each server's RSS.
# Needs wrk and redis-server (apt-get install wrk redis-server).
#   [ROUNDS=5] bash benches/compare.sh [seconds per load, default 6]
# (the req/s loads run ROUNDS times in turn; each figure is the mean of its rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-6}"
rounds="${ROUNDS:-5}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)"; exit 1; }
cargo build -q --release --example demo --example guard_bench --features redis
. benches/common.sh
driver=$(load_driver)
sign_in() { # sign_in BASE: the session cookie (name=value) after a sign-in with a 600-character token
  local jar=$(mktemp -p "$tmp") state token="sandbox.$(printf 'x%.0s' $(seq 592))"
  state=$(curl -s -c "$jar" -b "$jar" "$1/auth/apple-music/login" | python3 -c '
import json, re, sys
block = re.search(r"<script type=\"application/json\" id=\"apple-music-login\">(.*?)</script>", sys.stdin.read(), re.S)
print(json.loads(block.group(1))["state"])')
  curl -s -o /dev/null -c "$jar" -b "$jar" -H 'Content-Type: application/json' \
    -d "{\"music_user_token\": \"$token\", \"state\": \"$state\"}" "$1/auth/apple-music/token"
  awk '$6 == "id" {print "id=" $7}' "$jar"
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
rps() { wrk -t1 -c32 -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }

# The servers.
port=$(free_port)
BIND="127.0.0.1:$port" target/release/examples/guard_bench >"$tmp/bench.log" 2>&1 &
bench_pid=$!; pids+=("$bench_pid"); bench="http://127.0.0.1:$port"
wait_up "$bench/bare"
bench_cookie=$(curl -s -D - -o /dev/null -X POST "$bench/app/sign-in" | tr -d '\r' | awk -F'[ ;]' 'tolower($1) == "set-cookie:" {print $2}')
start_demo cookie; cookie_base=$base; cookie_pid=$pid
start_demo unchecked APPLE_MUSIC_VERIFY_TOKENS=false; unchecked_base=$base; unchecked_pid=$pid
start_redis
start_demo redis SESSION_REDIS_URL="redis://127.0.0.1:$rport"; redis_base=$base; redis_pid=$pid
cookie=$(sign_in "$cookie_base"); rcookie=$(sign_in "$redis_base")
for c in "$cookie_base $cookie" "$redis_base $rcookie"; do
  set -- $c
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $2" -H 'Accept: application/json' "$1/me")" = 200 ] \
    || { echo "not signed in on $1"; exit 1; }
done
page_bytes=$(curl -s "$cookie_base/auth/apple-music/login" | wc -c)

# The loads. One load varies by several per cent here (two shared cores), more than the
# guard costs: the loads that are compared with each other run in $rounds rounds, each round
# all of them in turn, and each figure is the mean of its rounds.
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.2f", s / NR }'; }
bare_runs=(); open_runs=(); guarded_runs=(); me_runs=(); page_runs=(); rme_runs=(); rpage_runs=()
for _ in $(seq "$rounds"); do
  bare_runs+=("$(rps "$bench/bare")")
  open_runs+=("$(rps -H "Cookie: $bench_cookie" "$bench/app/open")")
  guarded_runs+=("$(rps -H "Cookie: $bench_cookie" "$bench/app/guarded")")
  me_runs+=("$(rps -H "Cookie: $cookie" -H 'Accept: application/json' "$cookie_base/me")")
  page_runs+=("$(rps "$cookie_base/auth/apple-music/login")")
  rme_runs+=("$(rps -H "Cookie: $rcookie" -H 'Accept: application/json' "$redis_base/me")")
  rpage_runs+=("$(rps "$redis_base/auth/apple-music/login")")
done
bare=$(mean "${bare_runs[@]}"); open=$(mean "${open_runs[@]}"); guarded=$(mean "${guarded_runs[@]}")
me=$(mean "${me_runs[@]}"); page=$(mean "${page_runs[@]}")
rme=$(mean "${rme_runs[@]}"); rpage=$(mean "${rpage_runs[@]}")
per_round() { # per_round A B: A/B in each round, then their median
  local ratios
  ratios=$(paste -d' ' <(printf '%s\n' "${!1}") <(printf '%s\n' "${!2}") | awk '{ printf "%.2f\n", $1 / $2 }')
  printf '%s' "$(echo "$ratios" | paste -sd' ')"
  echo "$ratios" | sort -n | awk '{ r[NR] = $1 } END { printf " (median %.2f)", (NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2) }'
}
round_ratios=$(per_round 'guarded_runs[@]' 'open_runs[@]')
page_ratios=$(per_round 'page_runs[@]' 'bare_runs[@]')
bench_rss=$(rss $bench_pid)
cookie_rss=$(rss $cookie_pid)
redis_rss=$(rss $redis_pid)
read -r _ logins _ page_ms _ callback_ms _ failed < <("$driver" logins --base "$cookie_base" --seconds "$secs" --concurrency 16)
read -r _ ulogins _ upage_ms _ ucallback_ms _ ufailed < <("$driver" logins --base "$unchecked_base" --seconds "$secs" --concurrency 16)
unchecked_rss=$(rss $unchecked_pid)

echo
echo "| what | req/s | ratio |"
echo "| --- | ---: | --- |"
row() { awk -v w="$1" -v r="$2" -v b="$3" -v d="$4" 'BEGIN { printf "| %s | %.0f | %.2f × %s |\n", w, r, r / b, d }'; }
row "bare actix handler" "$bare" "$bare" "bare"
row "session middleware (cookie), no guard" "$open" "$bare" "bare"
row "same + guard (handler reads the identity)" "$guarded" "$bare" "bare"
row "same + guard (handler reads the identity)" "$guarded" "$open" "no guard"
row "demo \`/me\`, cookie sessions" "$me" "$bare" "bare"
row "demo \`/me\`, Redis sessions" "$rme" "$me" "cookie"
row "demo login page, cookie sessions" "$page" "$bare" "bare"
row "demo login page, Redis sessions" "$rpage" "$page" "cookie"
echo
echo "| full sign-ins (page + POST callback), 16 at a time | sign-ins/s | page ms | callback ms |"
echo "| --- | ---: | ---: | ---: |"
echo "| checked with the Apple stand-in (\`GET /v1/me/storefront\`) | $logins | $page_ms | $callback_ms |"
echo "| not checked (\`APPLE_MUSIC_VERIFY_TOKENS=false\`) | $ulogins | $upage_ms | $ucallback_ms |"
awk -v c="$callback_ms" -v u="$ucallback_ms" -v p="$page_ms" 'BEGIN {
  printf "\nA checked sign-in: page %.2f ms + callback %.2f ms, of which the Apple call about %.2f ms (%.0f %%).\n", p, c, c - u, 100 * (c - u) / (p + c) }'
[ "$failed" = 0 ] && [ "$ufailed" = 0 ] || echo "failed sign-ins: $failed checked, $ufailed unchecked"
echo
echo "session cookie with a 600-character music user token: $(( ${#cookie} - 3 )) bytes (cookie store); $(( ${#rcookie} - 3 )) bytes (Redis)"
echo "per round ($rounds rounds; the table has the means): guard / no guard $round_ratios · login page / bare $page_ratios"
echo "login page: $page_bytes bytes of HTML"
echo "RSS after the loads: guard bench $bench_rss KiB · demo, cookie $cookie_rss KiB · demo, Redis $redis_rss KiB · demo, unchecked $unchecked_rss KiB"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
