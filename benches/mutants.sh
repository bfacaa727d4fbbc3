#!/usr/bin/env bash
# Mutation testing of the security checks: cargo-mutants changes each of the functions below
# (state creation and checking, the hand-back, the callback parser, return_to, the origin
# checks, the fragment decoder, developer-token verification, the guard's decision, the
# single-use ledger, Sign in with Apple's token checks) and runs the library's unit tests and
# the integration tests against each change. A mutant the tests do not notice must either get a
# test that kills it or a line in benches/mutants-equivalent.txt saying why it is equivalent.
# Exits non-zero when a mutant is missed that is not listed there. Slow (tens of minutes on two
# cores): not part of .ci/run.
#   bash benches/mutants.sh [--list] [FILE...]
#     --list: only print the mutants; FILE...: only the listed functions of these files
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants

# file  functions (a regular expression over the function's name as cargo-mutants prints it)
scope=(
  "src/strategy/state.rs"          "PendingLogin::new|handback_of|StateProof::(state|from_params)|check_proof|safe_return_to"
  "src/strategy/params.rs"         "CallbackParams::(parse|from_pairs|push|get)|decode_component"
  "src/strategy/authenticator.rs"  "begin_login|spend_state|is_same_origin|own_origin|stored_identity|needs_relogin|reauthentication_mark"
  "src/guard.rs"                   "check"
  "src/single_use.rs"              "StateId::new|MemoryLedger::spend|<impl StateLedger for MemoryLedger>::spend"
  "src/apple_music/mod.rs"         "decode_fragment|parse_restricted|AppleMusicStrategy::(identity|identity_for|check_with_apple)"
  "src/developer_token/signer.rs"  "check_origin|DeveloperTokenSigner::verify|verify_slow"
  "src/developer_token/inspect.rs" "verify_signature"
  "src/apple_id/keys.rs"           "check|find|algorithm_of"
  "src/apple_id/mod.rs"            "nonce_for|AppleIdStrategy::sign_in"
  "src/response.rs"               "json_for_script"
)
list=
if [ "${1:-}" = "--list" ]; then list=1; shift; fi
args=()
names=()
for ((i = 0; i < ${#scope[@]}; i += 2)); do
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qxF "${scope[i]}"; then continue; fi
  args+=(--file "${scope[i]}")
  names+=("${scope[i + 1]}")
done
[ ${#args[@]} -gt 0 ] || { echo "none of $* is in the scope"; exit 1; }
# A mutant's name reads `src/…rs:LINE:COL: replace … in FUNCTION` or `replace FUNCTION -> …`.
joined=$(IFS='|'; echo "${names[*]}")
re="(in |replace )(<[^>]*>::)?([A-Za-z_<>]+::)?($joined)( |$)"

if [ -n "$list" ]; then
  cargo mutants "${args[@]}" -F "$re" --list
  exit 0
fi

out=target/mutants
mkdir -p "$out"
status=0
# `--lib --test integration`: the unit tests and the integration tests (the browser and Redis
# tests need servers and would only be skipped here).
cargo mutants "${args[@]}" -F "$re" --profile mutants --output "$out" \
  --timeout 120 -- --lib --test integration || status=$?
summary="$out/mutants.out"
caught=$(wc -l <"$summary/caught.txt")
missed=$(wc -l <"$summary/missed.txt")
timeout=$(wc -l <"$summary/timeout.txt")
unviable=$(wc -l <"$summary/unviable.txt")
# Missed mutants without their line and column, against the checked-in list.
normalized=$(sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' "$summary/missed.txt")
listed=$(grep -v '^#' benches/mutants-equivalent.txt | sed -E 's/ +# .*//' | grep . | sort -u || true)
unexplained=$(printf '%s\n' "$normalized" | grep . | sort -u | comm -23 - <(printf '%s\n' "$listed") || true)
equivalent=$(printf '%s\n' "$normalized" | grep . | grep -cxF -f <(printf '%s\n' "$listed" | grep .) || true)
equivalent=${equivalent:-0}
echo
echo "mutants: $((caught + missed + timeout + unviable)) · caught: $caught · timeout (caught): $timeout · unviable: $unviable · missed: $missed (listed as equivalent: $equivalent)"
if [ -n "$unexplained" ]; then
  echo "missed, and not listed in benches/mutants-equivalent.txt:"
  echo "$unexplained"
  exit 1
fi
# cargo-mutants exits 2 when mutants were missed (all of them are explained here) and 3 when
# some timed out (a mutant that makes the tests hang is caught).
case "$status" in 0 | 2 | 3) ;; *) exit "$status" ;; esac
