#!/usr/bin/env bash
# run-stage.sh STAGE: builds a stage's cmd/server and cmd/client, starts the
# server on a free loopback port, runs the client against it, then stops the
# server with SIGTERM and checks that it shut down cleanly (exit status 0).
# The server serves its counters on a second free port (-stats-addr), and
# the client reads them (-stats) to show what the server saw. V4's demo
# compares V4's server with V3's, so for it a V3 server runs too. V5's demo
# is a command of its own (cmd/cluster), which starts etcd in its process
# and the servers (cmd/server) as processes of their own.
set -euo pipefail
stage=${1:?usage: run-stage.sh STAGE-FOLDER}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/$stage"

pids=()
logs=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f "${logs[@]}"' EXIT

# build STAGE: builds the stage's server and client into .bin/STAGE.
build() {
  mkdir -p "$root/.bin/$1"
  (cd "$root/$1" && go build -o "$root/.bin/$1/server" ./cmd/server && go build -o "$root/.bin/$1/client" ./cmd/client)
}

# Strip the timestamps from the server's log lines: they only add noise here.
# show PREFIX [FILE]
show() { local p=$1; shift; sed -E 's/^time=[^ ]+ //; s/^/  '"$p"' | /' "$@"; }

# start STAGE: starts the stage's server on free loopback ports and waits
# until it serves; sets pid, log, addr (its RPC address) and stats (the URL
# of its counters).
start() {
  log=$(mktemp)
  logs+=("$log")
  "$root/.bin/$1/server" -config "$root/$1/rpc.yaml" -addr 127.0.0.1:0 -stats-addr 127.0.0.1:0 2>"$log" &
  pid=$!
  pids+=("$pid")
  addr= stats=
  for _ in $(seq 100); do
    addr=$(sed -nE 's/.*msg="rpc: listening" addr=([0-9.:]+).*/\1/p' "$log" | head -n1)
    stats=$(sed -nE 's/.*msg="stats: serving" url=([^ ]+).*/\1/p' "$log" | head -n1)
    [ -n "$addr" ] && [ -n "$stats" ] && return
    kill -0 "$pid" 2>/dev/null || { show server "$log"; echo "the $1 server exited early" >&2; exit 1; }
    sleep 0.1
  done
  show server "$log"
  echo "the $1 server did not start listening" >&2
  exit 1
}

if [ "$stage" = v5-cluster ]; then
  build "$stage"
  (cd "$root/$stage" && go build -o "$root/.bin/$stage/cluster" ./cmd/cluster)
  echo "== $stage: etcd, servers that register in it, a client that finds them there =="
  exec "$root/.bin/$stage/cluster" -server "$root/.bin/$stage/server"
fi

build "$stage"
start "$stage"
main_pid=$pid main_log=$log
echo "== $stage: server and client =="
show server "$main_log"
args=(-config rpc.yaml -addr "$addr" -stats "$stats")
if [ "$stage" = v4-epoll-batch ]; then
  build v3-async-mux
  start v3-async-mux
  v3_pid=$pid
  show "v3 server" "$log"
  args+=(-compare "$addr" -compare-stats "$stats")
fi
seen=$(wc -l <"$main_log")
"$root/.bin/$stage/client" "${args[@]}"

echo "Last, SIGTERM: the server stops accepting, lets calls in flight finish, exits 0."
if [ -n "${v3_pid:-}" ]; then
  kill -TERM "$v3_pid"
  wait "$v3_pid" || { echo "   the V3 server exited with status $?" >&2; exit 1; }
fi
kill -TERM "$main_pid"
status=0
wait "$main_pid" || status=$?
tail -n +"$((seen + 1))" "$main_log" | show server
if [ "$status" -ne 0 ]; then
  echo "   the server exited with status $status" >&2
  exit 1
fi
echo "   server exited with status 0"
