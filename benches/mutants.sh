#!/usr/bin/env bash
# Mutation testing of every decision a user would notice: cargo-mutants changes each function
# whose name says it decides something (the scope below: states, origins, return_to, the
# callback parser, parsing, fragments, decoding, verifying, checks, guards, single use, sealing,
# the stores' decisions) and runs the project's tests against each change: the unit tests, the
# integration tests, the metrics tests and — with the `redis` feature — the Redis tests (which
# start their own redis-server; needs `apt-get install redis-server redis-tools`). A mutant the
# tests do not notice must either get a test that kills it or a line in
# benches/mutants-equivalent.txt saying why it is equivalent. Exits non-zero when a mutant is
# missed that is not listed there. Slow (some 370 mutants, each built and tested: about
# 15 s each on two cores, 40 s for the Redis files, whose mutants also run the Sentinel and
# Cluster tests): not part of .ci/run. SHARD=k/n runs one part (cargo-mutants --shard).
#   bash benches/mutants.sh [--list] [FILE...]
#     --list: only print the mutants; FILE...: only the mutants of these files
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server redis-tools)"; exit 1; }

# The scope: mutants whose name (file and function) matches, minus formatting.
scope='state|origin|return_to|CallbackParams|parse|fragment|decode|verify|check|guard|consume|same_site|require_es256|seal|open_|session_ttl|Link::run|lost|from_lookup|addresses'
exclude='fmt|Debug|Display|test_util|sandbox/|stand_in'
list=
if [ "${1:-}" = "--list" ]; then list=1; shift; fi
files=()
for f in "$@"; do files+=(--file "$f"); done
# cargo-mutants applies the name filters above to function mutants only (a struct-field
# deletion is listed whatever they say), so the stand-ins are also left out by path.
common=(--re "$scope" --exclude-re "$exclude" --exclude 'src/sandbox/**' --exclude 'src/test_util/**'
  --exclude src/stand_in.rs --features redis "${files[@]}")
[ -n "${SHARD:-}" ] && common+=(--shard "$SHARD")

if [ -n "$list" ]; then
  cargo mutants "${common[@]}" --list
  exit 0
fi

out=target/mutants
rm -rf "$out" && mkdir -p "$out"
status=0
tests=(--lib --test integration --test metrics --test redis)
# The Redis tests are `#[ignore]`d in a plain `cargo test` (they need redis-server):
# `--include-ignored` runs them here. The browser tests (Chromium) are not run: their
# decisions are also covered by the integration tests.
run() { # name, cargo-mutants arguments…, then `--` and the test harness's arguments
  local name=$1 rc=0
  shift
  cargo mutants "${common[@]}" --profile mutants --output "$out/$name" --timeout 300 "$@" || rc=$?
  # cargo-mutants exits 2 when mutants were missed (judged below against the list) and 3
  # when some timed out (a mutant that makes the tests hang is caught).
  case "$rc" in 0 | 2 | 3) ;; *) status=$rc ;; esac
}
# Redis topologies: the Sentinel and Cluster tests take half a minute, and only the Redis
# link and the Redis stores' decisions can change what they see. Those files get every test;
# every other file gets every test but those.
redis_files=(src/session_store/redis_link.rs src/session_store/redis.rs src/accounts/redis.rs)
if [ ${#files[@]} -gt 0 ]; then
  # The topology tests only when a Redis file is among those chosen.
  skip=(--skip topologies)
  for f in "$@"; do
    for r in "${redis_files[@]}"; do [ "$f" = "$r" ] && skip=(); done
  done
  run chosen -- "${tests[@]}" -- --include-ignored "${skip[@]}"
else
  excluded=()
  for f in "${redis_files[@]}"; do excluded+=(--exclude "$f"); done
  run main "${excluded[@]}" -- "${tests[@]}" -- --include-ignored --skip topologies
  for f in "${redis_files[@]}"; do common+=(--file "$f"); done
  run redis -- "${tests[@]}" -- --include-ignored
fi
count() { cat "$out"/*/mutants.out/"$1".txt 2>/dev/null | wc -l; }
caught=$(count caught); missed=$(count missed); timeout=$(count timeout); unviable=$(count unviable)
# Missed mutants without their line and column, against the checked-in list.
normalized=$(cat "$out"/*/mutants.out/missed.txt 2>/dev/null | sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' || true)
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
exit "$status"
