#!/usr/bin/env bash
# fuzz-all.sh TIME MODULE...: runs every fuzz target of the modules for TIME
# each, a duration (30s) or a count of inputs (50000x); go test -fuzz takes
# one target at a time.
set -euo pipefail
fuzztime=${1:?usage: fuzz-all.sh TIME MODULE...}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
# A package whose files (tests and seed corpus included) are the same as an
# earlier module's, but for the module path in its imports, is the same
# code, fuzzed once: a stage copies the packages its idea does not change.
declare -A fuzzed
for m in "$@"; do
  cd "$root/$m"
  for line in $(go list -f '{{.ImportPath}}={{.Dir}}' ./...); do
    pkg=${line%%=*}
    dir=${line#*=}
    targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' || true)
    [ -n "$targets" ] || continue
    sum=$(cd "$dir" && find . -type f | LC_ALL=C sort | xargs cat | sed -E 's#myrpc/v[0-9]+-[a-z0-9-]+#myrpc/STAGE#g' | md5sum | cut -c1-32)
    if [ -n "${fuzzed[$sum]:-}" ]; then
      echo "== fuzz $pkg: the same code as ${fuzzed[$sum]}, fuzzed above"
      continue
    fi
    fuzzed[$sum]=$pkg
    for target in $targets; do
      echo "== fuzz $pkg $target ($fuzztime)"
      if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$ 2>&1; then
        # With a duration, Go 1.26's fuzzing coordinator can fail a healthy
        # target as the time runs out, with "context deadline exceeded" and
        # no failing input (golang/go#75804, fixed in Go 1.27). A real
        # failure always writes its input. So a run that ends that way
        # counts as passed once the target's corpus passes again.
        if grep -q 'context deadline exceeded' /tmp/fuzz.$$ && ! grep -q 'Failing input written to' /tmp/fuzz.$$ &&
          go test -count=1 -run "^${target}\$" "$pkg" >/dev/null 2>&1; then
          grep '^fuzz: elapsed' /tmp/fuzz.$$ | tail -n 1 || true
          echo "ok (the fuzzing coordinator failed on its own deadline, golang/go#75804; no failing input, and the corpus passes)"
          continue
        else
          cat /tmp/fuzz.$$; rm -f /tmp/fuzz.$$; exit 1
        fi
      fi
      tail -n 1 /tmp/fuzz.$$
    done
  done
done
rm -f /tmp/fuzz.$$
