#!/usr/bin/env bash
# stagediff.sh FROM TO [code|tests|all]: prints the diff between two stages
# (v1..v5) with their module paths normalised (myrpc/vN-name becomes
# myrpc/STAGE), so that import lines that differ only in the stage's name
# do not hide the change. go.mod and go.sum are left out.
#
# The diff comes in two parts:
#
#   code   every file but the ones below; docs/diffs/vA-to-vB.diff
#   tests  *_test.go, anything under a testdata/ folder, and generated
#          *.pb.go (the stages have none today; if one appears it lands
#          here, out of the reader's way): docs/diffs/vA-to-vB.tests.diff
#   all    code, then tests (the default, for make diff)
#
# The two parts hold every change between them. The diff is git's, with
# renames found (-M): a file moved or renamed shows as a rename with only
# the lines that changed, not as a deletion and an addition. A file renamed
# from one part into the other shows as deleted in one and added in the
# other. The output depends only on the two stages' files: both are written
# into a temporary repository of their own as trees, and the "index" lines
# are the content hashes of the files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
folder() {
  case "$1" in
    v1) echo v1-basic ;;
    v2) echo v2-pool-keepalive ;;
    v3) echo v3-async-mux ;;
    v4) echo v4-epoll-batch ;;
    v5) echo v5-cluster ;;
    *) echo "unknown stage $1 (want v1..v5)" >&2; exit 2 ;;
  esac
}
from=$(folder "${1:?usage: stagediff.sh FROM TO [code|tests|all]}")
to=$(folder "${2:?usage: stagediff.sh FROM TO [code|tests|all]}")
part=${3:-all}
case "$part" in code | tests | all) ;; *) echo "unknown part $part (want code, tests or all)" >&2; exit 2 ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Neither the user's nor the system's git configuration may change the
# output (diff.noprefix, diff.algorithm, diff.renames, color.ui, ...).
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
g() { git --git-dir="$tmp/git" "$@"; }
git init -q --bare "$tmp/git"
# Hunk headers name the Go function they are in.
echo '*.go diff=golang' > "$tmp/git/info/attributes"

tree() { # tree SIDE FOLDER: copies FOLDER to $tmp/SIDE, normalised, and prints its git tree
  local side=$1 src=$2
  mkdir -p "$tmp/$side"
  (cd "$root/$src" && git ls-files -co --exclude-standard . | grep -vE '(^|/)go\.(mod|sum)$' \
    | while read -r f; do mkdir -p "$tmp/$side/$(dirname "$f")"; cp "$f" "$tmp/$side/$f"; done)
  grep -rlE 'myrpc/v[0-9]-[a-z-]+' "$tmp/$side" | xargs -r sed -i -E 's#myrpc/v[0-9]-[a-z-]+#myrpc/STAGE#g'
  GIT_INDEX_FILE="$tmp/index.$side" g --work-tree="$tmp/$side" add -A -f .
  GIT_INDEX_FILE="$tmp/index.$side" g write-tree
}
a=$(tree a "$from")
b=$(tree b "$to")

tests=('*_test.go' ':(glob)**/testdata/**' '*.pb.go')
code=(. ':(exclude)*_test.go' ':(exclude,glob)**/testdata/**' ':(exclude)*.pb.go')
show() {
  g diff --no-color --no-ext-diff --no-textconv --diff-algorithm=myers -M \
    --src-prefix=a/ --dst-prefix=b/ "$a" "$b" -- "$@"
}
case "$part" in
  code) show "${code[@]}" ;;
  tests) show "${tests[@]}" ;;
  all) show "${code[@]}"; show "${tests[@]}" ;;
esac
