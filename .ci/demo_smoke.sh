#!/usr/bin/env bash
# The demo as a newcomer runs it (`cargo run --example demo`, sandbox mode), checked from the
# outside with curl: Secure cookies by default and off only when told, POST-only callback,
# no return page outside the redirect login page, the sign-in routes' rate limit, an access log
# (at `info`) that names paths and never a query's token.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q --example demo
demo=target/debug/examples/demo
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

start() { # start ENV...: runs the demo on a free port with ENV, sets $base
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  env BIND="127.0.0.1:$port" RUST_LOG="${RUST_LOG:-warn}" "$@" "$demo" >"$tmp/out" 2>&1 &
  pid=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "$base/" && return 0
    sleep 0.1
  done
  cat "$tmp/out"; echo "the demo did not start"; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
fail() { echo "demo smoke: $*"; exit 1; }
headers() { curl -s -o /dev/null -D - "$@" | tr -d '\r'; }

start
grep -q "INSECURE_COOKIES=1" "$tmp/out" || fail "the start-up message does not say how to drop Secure"
login=$(headers "$base/auth/apple-music/login")
echo "$login" | grep -i '^set-cookie: id=' | grep -qi '; *secure' || fail "the session cookie lacks Secure: $login"
echo "$login" | grep -i '^set-cookie: id=' | grep -qi '; *httponly' || fail "the session cookie lacks HttpOnly"
get_callback=$(headers "$base/auth/apple-music/callback?code=x&state=y")
echo "$get_callback" | grep -q '^HTTP/1.1 405' || fail "GET callback: $get_callback"
echo "$get_callback" | grep -qi '^allow: POST' || fail "GET callback without Allow: POST"
headers "$base/auth/apple-music/return" | grep -q '^HTTP/1.1 404' || fail "a return page outside the redirect page"
stop

start INSECURE_COOKIES=1 AUTH_RATE_LIMIT_PER_MINUTE=3
headers "$base/auth/apple-music/login" | grep -i '^set-cookie: id=' | grep -qvi 'secure' \
  || fail "INSECURE_COOKIES=1 still sends Secure"
for _ in 1 2; do curl -fs -o /dev/null "$base/auth/apple-music/login"; done
limited=$(curl -s -D - -H 'Accept: application/json' "$base/auth/apple-music/login" | tr -d '\r')
echo "$limited" | grep -q '^HTTP/1.1 429' || fail "no 429 after the limit: $limited"
echo "$limited" | grep -qi '^retry-after: [1-9]' || fail "429 without Retry-After"
echo "$limited" | grep -q '"error":"rate_limited"' || fail "429 is not JSON for a JSON client"
curl -s -H 'Accept: text/html' "$base/auth/apple-music/login" | grep -q 'data-error="rate_limited"' \
  || fail "429 is not HTML for a browser"
curl -fs -o /dev/null "$base/" || fail "the limit reaches past the sign-in routes"
# Sign in with Apple's routes share the limit (this address used it up above).
curl -s -o /dev/null -w '%{http_code}' "$base/auth/apple/login" | grep -q 429 \
  || fail "Sign in with Apple's routes are not rate limited"
stop

# The access log at `info`: method and path, never the query (a GET callback may carry a token).
RUST_LOG=info start INSECURE_COOKIES=1 APPLE_MUSIC_ALLOW_GET_CALLBACK=true
curl -s -o /dev/null "$base/auth/apple-music/callback?music_user_token=sandbox.SECRET-TOKEN&state=SECRET-STATE"
curl -s -o /dev/null "$base/auth/apple-music/login?return_to=/me"
sleep 0.2
grep -q '"GET /auth/apple-music/callback" 400' "$tmp/out" || fail "no access log line for the callback: $(cat "$tmp/out")"
grep -q '"GET /auth/apple-music/login" 200' "$tmp/out" || fail "no access log line for the login page"
grep -q 'SECRET' "$tmp/out" && fail "the log holds a query's token or state: $(grep SECRET "$tmp/out")"
stop

# Real credentials (a test key; Apple cannot be reached from here) without APPLE_ID_*: the home
# page works and offers no Sign in with Apple.
start INSECURE_COOKIES=1 APPLE_MUSIC_TEAM_ID=TEAMID1234 APPLE_MUSIC_KEY_ID=KEYID56789 \
  APPLE_MUSIC_PRIVATE_KEY_PATH=tests/keys/p256_pkcs8.pem APPLE_MUSIC_API_BASE_URL=http://127.0.0.1:9
home=$(curl -s -w '\n%{http_code}' "$base/")
[ "$(echo "$home" | tail -1)" = 200 ] || fail "home page without Sign in with Apple: $home"
echo "$home" | grep -q 'id="sign-in-with-apple"' && fail "Sign in with Apple offered but not mounted"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/auth/apple/login")" = 404 ] || fail "/auth/apple mounted"
stop

# Accounts: a sign-in (the manual token route, as curl can) gets an account; another browser
# (cookie jar) another one.
start INSECURE_COOKIES=1
sign_in() { # sign_in JAR TOKEN: login page, then the token form with the page's state
  local state
  state=$(curl -s -c "$1" -b "$1" "$base/auth/apple-music/login" | python3 -c '
import json, re, sys
page = sys.stdin.read()
block = re.search(r"<script type=\"application/json\" id=\"apple-music-login\">(.*?)</script>", page, re.S)
print(json.loads(block.group(1))["state"])')
  curl -s -o /dev/null -c "$1" -b "$1" -H 'Content-Type: application/json' \
    -d "{\"music_user_token\": \"$2\", \"state\": \"$state\"}" "$base/auth/apple-music/token"
}
account_of() { curl -s -b "$1" -H 'Accept: application/json' "$base/me" | python3 -c 'import json, sys; a = json.load(sys.stdin)["account"]; print(a["id"], a["sign_ins"])'; }
sign_in "$tmp/a" sandbox.token-a
sign_in "$tmp/b" sandbox.token-b
a=$(account_of "$tmp/a"); b=$(account_of "$tmp/b")
[ "$a" = "acct-1 1" ] || fail "first browser's account: $a"
[ "$b" = "acct-2 1" ] || fail "second browser's account: $b"
stop
echo "demo smoke: ok"
