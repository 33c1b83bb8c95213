#!/usr/bin/env bash
# genproto.sh OUT: generates every committed generated file (the *.pb.go,
# the trpc baseline's *.trpc.go and the kitex baseline's kitex_gen/) into
# OUT, laid out as in the repository. `make proto` runs it with OUT = the
# repository itself; `make proto-check` runs it into a temporary folder and
# compares.
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

# The kitex baseline's code, made by kitex's own generator, which parses
# the proto itself (no protoc). kitex writes into kitex_gen/ under the
# folder it runs in, and takes the Go package path from the go.mod above
# that folder: outside the repository a go.mod naming the module stands in
# for the time of the run. -no-dependency-check: the Makefile builds the
# generator at the version benchmarks/go.mod requires.
kx=$out/benchmarks/kitexecho
mkdir -p "$kx"
fake_mod=
if [ ! -f "$out/benchmarks/go.mod" ]; then
  fake_mod=$out/benchmarks/go.mod
  echo "module myrpc/benchmarks" > "$fake_mod"
fi
if ! log=$(cd "$kx" && "$bin/kitex" -no-dependency-check "$root/benchmarks/kitexecho/kitexecho.proto" 2>&1); then
  echo "$log" >&2
  exit 1
fi
if [ -n "$fake_mod" ]; then rm "$fake_mod"; fi
# The trpc-go stub of the benchmarks' trpc baseline, made by trpc-cmdline in
# its stub-only mode: the shared Echo messages, served by trpc-go. It works in
# a temporary folder, from which only the stub is copied: its trpcecho.pb.go
# holds no type the stub uses (the messages are package echo's).
# trpc-cmdline stops unless one of GOPATH/bin, ~/go/bin or ~/bin exists and
# is in PATH, the folder it would download missing tools into. Here GOPATH
# is a temporary folder whose bin is put in PATH, and the configuration it
# is given, scripts/trpc-cmdline.yaml, names only tools that .bin/ holds, so
# that it finds them all and downloads nothing. Its templates live in
# ~/.trpc-cmdline-assets, which it writes on its first run and after an
# upgrade.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/gopath/bin" "$tmp/out" "$out/benchmarks/trpcecho"
if ! GOPATH="$tmp/gopath" GOMODCACHE="$(go env GOMODCACHE)" PATH="$bin:$tmp/gopath/bin:$PATH" \
  "$bin/trpc" --config "$root/scripts/trpc-cmdline.yaml" create --rpconly --nogomod --mock=false \
  -p trpcecho/trpcecho.proto -d "$root/shared/proto" -d . -o "$tmp/out" >"$tmp/log" 2>&1; then
  cat "$tmp/log" >&2
  exit 1
fi
cp "$tmp/out/trpcecho.trpc.go" "$out/benchmarks/trpcecho/"
