# Sourced by benches/compare.sh and benches/soak.sh: a temporary directory, cleanup of what
# they start, free loopback ports, one session key, release demo instances and a Redis server.
tmp=$(mktemp -d)
pids=()
rport=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$rport" ] && redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
key=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')
wait_up() { # wait_up URL: until URL answers (10 s at most)
  for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "$1 did not start"; return 1
}
# The load driver (benches/load.rs), built.
load_driver() {
  cargo build -q --release --bench load
  ls -t target/release/deps/load-* | grep -v '\.d$' | head -1
}
start_demo() { # start_demo NAME ENV...: a release demo on a free port, no rate limit; sets $base and $pid
  local port name=$1; shift
  port=$(free_port)
  env BIND="127.0.0.1:$port" SESSION_KEY="$key" INSECURE_COOKIES=1 AUTH_RATE_LIMIT_PER_MINUTE=0 \
    RUST_LOG=error "$@" target/release/examples/demo >"$tmp/$name.log" 2>&1 &
  pid=$!; pids+=("$pid"); base="http://127.0.0.1:$port"
  wait_up "$base/" || { cat "$tmp/$name.log"; exit 1; }
}
start_redis() { # start_redis ARG...: redis-server on a free port, daemonized, data in $tmp;
  # sets $rport and $redis_start (the command, to start it again)
  rport=$(free_port)
  redis_start="redis-server --port $rport --bind 127.0.0.1 --dir $tmp --save '' --appendonly no --daemonize yes --logfile $tmp/redis.log $*"
  sh -c "$redis_start"
  for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis-server did not start"; exit 1
}
