#!/usr/bin/env bash
# run-stage.sh STAGE: builds a stage's cmd/server and cmd/client, starts the
# server on a free loopback port, runs the client against it, then stops the
# server with SIGTERM and checks that it shut down cleanly (exit status 0).
set -euo pipefail
stage=${1:?usage: run-stage.sh STAGE-FOLDER}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/.bin/$stage
mkdir -p "$bin"
cd "$root/$stage"
go build -o "$bin/server" ./cmd/server
go build -o "$bin/client" ./cmd/client

log=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
# Strip the timestamps from the server's log lines: they only add noise here.
show() { sed -E 's/^time=[^ ]+ //; s/^/  server | /' "$@"; }

"$bin/server" -config rpc.yaml -addr 127.0.0.1:0 2>"$log" &
pid=$!
addr=
for _ in $(seq 100); do
  addr=$(sed -nE 's/.*msg="rpc: listening" addr=([0-9.:]+).*/\1/p' "$log" | head -n1)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { show "$log"; echo "the server exited early" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { show "$log"; echo "the server did not start listening" >&2; exit 1; }

echo "== $stage: server and client =="
show "$log"
seen=$(wc -l <"$log")
"$bin/client" -config rpc.yaml -addr "$addr"

echo "Last, SIGTERM: the server stops accepting, lets calls in flight finish, exits 0."
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
tail -n +"$((seen + 1))" "$log" | show
if [ "$status" -ne 0 ]; then
  echo "   the server exited with status $status" >&2
  exit 1
fi
echo "   server exited with status 0"
