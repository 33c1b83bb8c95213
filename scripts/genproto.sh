#!/usr/bin/env bash
# genproto.sh OUT: generates every committed *.pb.go into OUT, laid out as in
# the repository. `make proto` runs it with OUT = the repository itself;
# `make proto-check` runs it into a temporary folder and compares.
set -euo pipefail
out=${1:?usage: genproto.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/.bin
mkdir -p "$out/shared/proto"

cd "$root/shared/proto"
protoc -I . \
  --plugin=protoc-gen-go="$bin/protoc-gen-go" \
  --go_out="$out/shared/proto" --go_opt=paths=source_relative \
  --plugin=protoc-gen-myrpc="$bin/protoc-gen-myrpc" \
  --myrpc_out="$out/shared/proto" --myrpc_opt=paths=source_relative \
  helloworld/helloworld.proto echo/echo.proto meta/meta.proto
