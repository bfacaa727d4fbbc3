#!/usr/bin/env bash
# The sandbox (a stand-in authorizer that hands out tokens, and a stand-in Apple Music API) is
# the `sandbox` feature: a build without it must not contain it. Builds the library twice and
# looks for the sandbox page's marker text in the compiled library.
set -euo pipefail
cd "$(dirname "$0")/.."

rlib() { # rlib CARGO_ARGS...: the path of the library's .rlib for that build
  cargo build --lib --message-format=json "$@" \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "actix_apple_music":
        print(*[f for f in m["filenames"] if f.endswith(".rlib")])'
}

marker="Sandbox — not Apple"
without=$(rlib)
[ -n "$without" ]
if grep -aq "$marker" "$without"; then
  echo "the default build contains the sandbox ($without)"; exit 1
fi
with=$(rlib --features sandbox)
[ -n "$with" ]
if ! grep -aq "$marker" "$with"; then
  echo "the marker is not found even with the sandbox feature: the check is broken"; exit 1
fi
echo "no sandbox in the default build: ok"
