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
cookie=$(echo "$login" | grep -i '^set-cookie: __Host-id=') || fail "the session cookie is not __Host-id: $login"
echo "$cookie" | grep -qi '; *secure' || fail "the session cookie lacks Secure: $cookie"
echo "$cookie" | grep -qi '; *httponly' || fail "the session cookie lacks HttpOnly"
echo "$cookie" | grep -qiE '; *path=/(;|$)' || fail "the session cookie's path is not /: $cookie"
echo "$cookie" | grep -qi 'domain=' && fail "the session cookie names a Domain: $cookie"
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
RUST_LOG=info start INSECURE_COOKIES=1 APPLE_MUSIC_ALLOW_GET_CALLBACK=true AUTH_RATE_LIMIT_PER_MINUTE=2
curl -s -o /dev/null "$base/auth/apple-music/callback?music_user_token=sandbox.SECRET-TOKEN&state=SECRET-STATE"
curl -s -o /dev/null "$base/auth/apple-music/login?return_to=/me"
curl -s -o /dev/null "$base/auth/apple-music/login?return_to=/refused"
sleep 0.2
grep -q '"GET /auth/apple-music/login" 429' "$tmp/out" || fail "a refused request (429) has no access log line"
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

# Taking people out: Sign in with Apple (the sandbox) in two browsers of one person and one of
# another; the account lists both sessions; Apple's "stop using" notification (sent by the
# sandbox's Apple ID page) signs the first person out of both, not the other; delete.
apple_sign_in() { # apple_sign_in JAR EMAIL
  local authorize data state prefix code
  authorize=$(curl -s -c "$1" -b "$1" -o /dev/null -w '%{redirect_url}' "$base/auth/apple/login")
  data=$(curl -s -c "$1" -b "$1" "$authorize" | python3 -c '
import re, sys
print(re.search(r"id=\"sandbox-apple-id\">(.*?)</script>", sys.stdin.read(), re.S).group(1))')
  state=$(echo "$data" | python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])')
  prefix=$(echo "$data" | python3 -c 'import json, sys; print(json.load(sys.stdin)["codePrefix"])')
  code="$prefix.$(printf %s "$2" | base64 | tr -d '=')"
  curl -s -o /dev/null -c "$1" -b "$1" -H "Origin: $base" --data-urlencode "code=$code" \
    --data-urlencode "state=$state" --data-urlencode relayed=1 "$base/auth/apple/callback"
}
status_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
apple_sign_in "$tmp/ada1" ada@example.com
apple_sign_in "$tmp/ada2" ada@example.com
apple_sign_in "$tmp/bob" bob@example.com
sessions=$(curl -s -b "$tmp/ada1" "$base/account" | python3 -c 'import json, sys; s = json.load(sys.stdin)["sessions"]; print(len(s), s[0]["current"], sorted(s[0]))')
[ "$sessions" = "2 True ['current', 'last_seen_at', 'signed_in_at', 'strategy', 'user_agent']" ] \
  || fail "GET /account: $sessions"
[ "$(status_of "$base/account")" = 401 ] || fail "GET /account signed out is not 401"
curl -s -D - -o /dev/null -b "$tmp/a" "$base/me" | tr -d '\r' | grep -qi '^cache-control: no-store' \
  || fail "/me may be cached"
curl -s -D - -o /dev/null "$base/" | tr -d '\r' | grep -qi "^content-security-policy: .*frame-ancestors 'none'" \
  || fail "the home page has no CSP with frame-ancestors"
[ "$(status_of -b "$tmp/ada1" -X POST -H 'Origin: https://evil.example' "$base/account/sign-out-everywhere")" = 403 ] \
  || fail "a cross-origin sign-out everywhere is not refused"
curl -s -o /dev/null -H "Origin: $base" -H 'Accept: application/json' \
  --data 'email=ada@example.com&type=consent-revoked' "$base/sandbox/apple-id/account/notify"
[ "$(status_of -b "$tmp/ada1" "$base/account")" = 401 ] || fail "consent-revoked left the first browser signed in"
[ "$(status_of -b "$tmp/ada2" "$base/account")" = 401 ] || fail "consent-revoked left the second browser signed in"
[ "$(status_of -b "$tmp/bob" "$base/account")" = 200 ] || fail "consent-revoked signed another person out"
[ "$(status_of -X POST -H 'Content-Type: application/json' -d '{"payload": "x.y.z"}' "$base/auth/apple/notifications")" = 400 ] \
  || fail "a forged notification is not refused"
deleted=$(curl -s -b "$tmp/bob" -c "$tmp/bob" -X POST -H "Origin: $base" "$base/account/delete")
echo "$deleted" | grep -q '"deleted":true' || fail "POST /account/delete: $deleted"
[ "$(status_of -b "$tmp/bob" "$base/account")" = 401 ] || fail "a deleted account is still signed in"
stop

# Rotating the session key: signed in under A; restarted with SESSION_KEY=B and
# SESSION_KEY_PREVIOUS=A, still signed in and the cookie written again; then B alone reads it.
key_a=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')
key_b=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')
start INSECURE_COOKIES=1 SESSION_KEY="$key_a"
sign_in "$tmp/rot" sandbox.token-rotated
[ "$(status_of -b "$tmp/rot" "$base/me")" = 200 ] || fail "not signed in before the rotation"
stop
start INSECURE_COOKIES=1 SESSION_KEY="$key_b" SESSION_KEY_PREVIOUS="$key_a"
grep -q "SESSION_KEY_PREVIOUS" "$tmp/out" || fail "the rotation is not announced at start-up"
[ "$(status_of -b "$tmp/rot" -c "$tmp/rot" "$base/me")" = 200 ] || fail "a key rotation signed the session out"
stop
start INSECURE_COOKIES=1 SESSION_KEY="$key_b"
[ "$(status_of -b "$tmp/rot" "$base/me")" = 200 ] || fail "the session was not written again under the new key"
stop
# Metrics: METRICS_BIND serves Prometheus text on a listener of its own; a sign-in and a
# refused callback are counted (with the reason), the developer token's seconds left are there,
# and no token or state is.
mport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start INSECURE_COOKIES=1 METRICS_BIND="127.0.0.1:$mport"
sign_in "$tmp/m" sandbox.token-metrics-secret
curl -s -o /dev/null -H 'Accept: application/json' --data 'code=x&state=forged-state-secret' \
  "$base/auth/apple-music/callback"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/metrics")" = 404 ] || fail "metrics on the public listener"
metrics=$(curl -s "http://127.0.0.1:$mport/metrics")
echo "$metrics" | grep -q 'actix_apple_music_sign_ins_total{.*outcome="success"' || fail "no sign-in counted: $metrics"
echo "$metrics" | grep 'actix_apple_music_sign_ins_total{.*outcome="failure"' | grep -q 'reason="' \
  || fail "no failed sign-in with its reason: $metrics"
echo "$metrics" | grep -q '^actix_apple_music_developer_token_seconds_left [1-9]' || fail "no developer-token gauge: $metrics"
echo "$metrics" | grep -q 'secret' && fail "a token or state in the metrics: $metrics"
stop

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if env BIND="127.0.0.1:$port" SESSION_KEY_PREVIOUS="not base64!" "$demo" >"$tmp/bad" 2>&1; then
  fail "a bad SESSION_KEY_PREVIOUS did not stop the demo"
fi
grep -q "SESSION_KEY_PREVIOUS" "$tmp/bad" || fail "the error does not name SESSION_KEY_PREVIOUS: $(cat "$tmp/bad")"
echo "demo smoke: ok"
