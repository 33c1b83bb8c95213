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

# The grpc-go stubs of the benchmarks' baseline: the shared Echo messages,
# served by grpc-go.
mkdir -p "$out/benchmarks"
cd "$root/benchmarks"
protoc -I "$root/shared/proto" -I . \
  --plugin=protoc-gen-go="$bin/protoc-gen-go" \
  --go_out="$out/benchmarks" --go_opt=paths=source_relative \
  --plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" \
  --go-grpc_out="$out/benchmarks" --go-grpc_opt=paths=source_relative \
  grpcecho/grpcecho.proto
