#!/usr/bin/env bash
# fuzz-all.sh TIME MODULE...: runs every fuzz target of the modules for TIME
# each, a duration (30s) or a count of inputs (50000x); go test -fuzz takes
# one target at a time.
set -euo pipefail
fuzztime=${1:?usage: fuzz-all.sh TIME MODULE...}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
for m in "$@"; do
  cd "$root/$m"
  for pkg in $(go list ./...); do
    for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
      echo "== fuzz $pkg $target ($fuzztime)"
      go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$ 2>&1 || { cat /tmp/fuzz.$$; rm -f /tmp/fuzz.$$; exit 1; }
      tail -n 1 /tmp/fuzz.$$
    done
  done
done
rm -f /tmp/fuzz.$$
