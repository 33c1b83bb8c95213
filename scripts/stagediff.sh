#!/usr/bin/env bash
# stagediff.sh FROM TO: prints the diff between two stages (v1..v4) with
# their module paths normalised, so that import lines that differ only in
# the stage's name do not hide the change. go.mod and go.sum are left out.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
folder() {
  case "$1" in
    v1) echo v1-basic ;;
    v2) echo v2-pool-keepalive ;;
    v3) echo v3-async-mux ;;
    v4) echo v4-epoll-batch ;;
    *) echo "unknown stage $1 (want v1..v4)" >&2; exit 2 ;;
  esac
}
from=$(folder "${1:?usage: stagediff.sh FROM TO}")
to=$(folder "${2:?usage: stagediff.sh FROM TO}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for side in a:"$from" b:"$to"; do
  dir=${side%%:*} src=${side#*:}
  mkdir -p "$tmp/$dir"
  (cd "$root/$src" && git ls-files -co --exclude-standard . | grep -vE '(^|/)go\.(mod|sum)$' \
    | while read -r f; do mkdir -p "$tmp/$dir/$(dirname "$f")"; cp "$f" "$tmp/$dir/$f"; done)
  grep -rlE 'myrpc/v[0-9]-[a-z-]+' "$tmp/$dir" | xargs -r sed -i -E 's#myrpc/v[0-9]-[a-z-]+#myrpc/STAGE#g'
done
cd "$tmp"
diff -ruN a b | sed -E 's/^(---|\+\+\+) ([^\t]+)\t.*/\1 \2/' || true
