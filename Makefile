# myrpc: run `make` for the list of targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN := $(CURDIR)/.bin
export PATH := $(BIN):$(PATH)

# Pinned tool versions. protoc-gen-go follows the protobuf module's version.
STATICCHECK_VERSION := v0.8.2
GRPC_GEN_VERSION := v1.5.1
# trpc-cmdline makes the trpc-go stub of the benchmarks and runs goimports
# on it: both pinned, since the stub is what they write. The proxy here
# serves trpc-cmdline v1.0.9 but not its version list, so it is built from
# its downloaded module rather than by go install, which asks for the list.
TRPC_CMDLINE_VERSION := v1.0.9
GOIMPORTS_VERSION := v0.53.0
PROTOC_VERSION := 3.21.12
PROTOBUF_VERSION = $(shell cd shared/proto && go list -m -f '{{.Version}}' google.golang.org/protobuf)
# kitex, the generator of the kitex baseline's code, follows the kitex
# module's version in benchmarks/go.mod (v0.16.0).
KITEX_VERSION = $(shell cd benchmarks && go list -m -f '{{.Version}}' github.com/cloudwego/kitex)

# The Go modules of the workspace and the stages among them.
MODULES := shared/proto v1-basic v2-pool-keepalive v3-async-mux v4-epoll-batch v5-cluster benchmarks
STAGES := v1-basic v2-pool-keepalive v3-async-mux v4-epoll-batch v5-cluster

# A count of inputs, not a duration: with a duration, Go 1.26's fuzzing
# coordinator can fail a healthy target with "context deadline exceeded" at
# the deadline on a loaded machine (golang/go#75804, fixed in Go 1.27).
# 50000 inputs take about 3 s per target here.
FUZZTIME ?= 50000x

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Run a stage

.PHONY: run-v1
run-v1: ## build and run a V1 server and client, then stop the server
	@scripts/run-stage.sh v1-basic

.PHONY: run-v2
run-v2: ## the same for V2: calls through the connection pool
	@scripts/run-stage.sh v2-pool-keepalive

.PHONY: run-v3
run-v3: ## the same for V3: futures, callbacks, retries, multiplexing
	@scripts/run-stage.sh v3-async-mux

.PHONY: run-v4
run-v4: ## the same for V4: the epoll server and batched writes
	@scripts/run-stage.sh v4-epoll-batch

.PHONY: run-v5
run-v5: ## V5: etcd, servers found through it, calls spread; servers stopped, killed, added
	@scripts/run-stage.sh v5-cluster

##@ Check

# The steps of make test, in order.
TEST_STEPS := lint proto-check diff-check diagram-check ladder-check gotest gowork-off cross interop fuzz smoke bench-quick soak-quick

# make test runs its steps and then fails if they changed a tracked file: a
# go command that rewrites go.work.sum, a generator that writes into the
# tree. The tree as it was before the run (git stash create records it
# without touching the stash) is what the run is held to, so changes made
# before it do not count.
.PHONY: test
test: ## everything CI runs; fails if the run changed a tracked file
	@before=$$(git stash create); before=$${before:-HEAD}; times=""; \
	 for step in $(TEST_STEPS); do \
	   t0=$$(date +%s); $(MAKE) --no-print-directory $$step; \
	   times="$$times $$step $$(( $$(date +%s) - t0 ))s"; \
	 done; \
	 echo "make test steps:$$times"; \
	 if [ -n "$$(git diff --name-only $$before --)" ]; then \
	   echo "make test changed tracked files (commit what a go command settled, or fix the step that writes):"; \
	   git diff --stat $$before --; git diff $$before -- | head -40; exit 1; \
	 fi; \
	 echo "tree-check: make test changed no tracked file"

.PHONY: gotest
gotest: ## go test -race over every module, in one go test (the workspace's), so that packages of different modules run side by side
	@echo "== go test -race $(MODULES)"; go test -race -count=1 $(addsuffix /...,$(addprefix ./,$(MODULES)))

.PHONY: gowork-off
gowork-off: ## build and vet each stage, and the benchmarks, on its own (GOWORK=off), and test the baselines there (trpc-go's tnet transport runs only without -race)
	@for m in $(STAGES) benchmarks; do echo "== GOWORK=off $$m"; (cd $$m && GOWORK=off go build ./... && GOWORK=off go vet ./...); done
	@# trpc-go's own tests run in a process of their own. In every run where
	@# kitex-mux had panicked in its worker pool earlier in the same process
	@# (kitex decoding a late response to a call already gone), calls of
	@# TestTRPCMaxConns then waited out their 30 s; in no other run.
	@cd benchmarks && GOWORK=off go test -count=1 -skip '^TestTRPC' ./internal/impls/ && GOWORK=off go test -count=1 -run '^TestTRPC' ./internal/impls/

.PHONY: cross
cross: ## build V4 and V5 for macOS and Windows, where they fall back to the V3 transport
	@for m in v4-epoll-batch v5-cluster; do (cd $$m && GOOS=darwin GOARCH=arm64 go build ./... && GOOS=windows GOARCH=amd64 go build ./... && echo "cross: $$m builds for darwin and windows"); done

.PHONY: interop
interop: ## every stage's client against every stage's server: the 25 pairs
	@cd benchmarks && go run ./cmd/interop

.PHONY: ladder
ladder: ## run the reliability rows against every stage and write docs/reliability.md
	@cd benchmarks && go run ./cmd/ladder -root .. -out ../docs/reliability.md && echo "wrote docs/reliability.md"

.PHONY: ladder-check
ladder-check: ## fail if docs/reliability.md is not what the tests say now
	@tmp=$$(mktemp); trap 'rm -f $$tmp' EXIT; cd benchmarks && go run ./cmd/ladder -root .. -out $$tmp; \
	 if ! cmp -s $$tmp ../docs/reliability.md; then echo "stale: docs/reliability.md (run make ladder)"; diff -u ../docs/reliability.md $$tmp | head -20; exit 1; fi; \
	 echo "ladder-check: docs/reliability.md matches the tests"

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME inputs (default 50000x; a duration such as 30s works too)
	@scripts/fuzz-all.sh $(FUZZTIME) $(MODULES)

# How long make fuzz-long runs each fuzz target: a duration, unlike
# FUZZTIME. A count cannot say how long a run takes (the targets differ
# tenfold in inputs per second, and a loaded machine slows every one), and
# fuzz-all.sh tells the coordinator's deadline failure (see FUZZTIME) from a
# real one, which always writes its input. 18 targets: about 3 hours.
FUZZLONG ?= 10m

.PHONY: fuzz-long
fuzz-long: ## run every fuzz target for FUZZLONG (default 10m) each: about 3 hours; not in make test
	@scripts/fuzz-all.sh $(FUZZLONG) $(MODULES)

.PHONY: smoke
smoke: ## run every run-vN and check that it exits 0
	@for s in $(STAGES); do echo "== smoke $$s"; scripts/run-stage.sh $$s >/dev/null; done

.PHONY: lint
lint: $(BIN)/staticcheck ## gofmt -l, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^\.') ); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./... && staticcheck ./...); done
	@if git grep -n 'fmt\.Print' -- '*.go' ':!*_test.go' ':!*/cmd/*' ':!benchmarks/*' ; then echo "fmt.Print* in a library package: use log/slog"; exit 1; fi

$(BIN)/staticcheck:
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

##@ Soak

# The soak's two binaries are built once per run into a temporary folder
# and run directly, so that a signal reaches the soak and the soak's own
# cleanup ends its server processes.
SOAK_BUILD = tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	(cd benchmarks && go build -o $$tmp/soak ./cmd/soak && go build -o $$tmp/benchserver ./cmd/benchserver)

.PHONY: soak
soak: ## the chaos test of every stage, 60 s of faults each (SOAK_DURATION, SOAK_STAGES, SOAK_SEED): benchmarks/results/soak/latest.json
	@$(SOAK_BUILD); cd benchmarks && $$tmp/soak -server $$tmp/benchserver -out results/soak/latest.json

.PHONY: soak-quick
soak-quick: ## the chaos test for 10 s per stage, its results in a temporary file (part of make test)
	@$(SOAK_BUILD); cd benchmarks && $$tmp/soak -server $$tmp/benchserver -duration 10s -out $$tmp/soak.json

##@ Benchmark

.PHONY: bench-all
bench-all: ## the whole benchmark matrix (under 15 min on 2 cores): benchmarks/results/latest/, docs/benchmarks.md and the numbers in README.md and the chapters
	cd benchmarks && go run ./cmd/benchall -out results/latest -doc ../docs/benchmarks.md

.PHONY: bench-docs
bench-docs: ## write docs/benchmarks.md and the benchmark numbers in README.md and docs/*.md again from benchmarks/results/ (latest/results.json and the named runs beside it)
	cd benchmarks && go run ./cmd/benchdoc -in results/latest/results.json -doc ../docs/benchmarks.md

# A run of make bench-ring: BenchmarkQueue's raw output, after a header
# of configuration lines (the commit, the date, the cores, and the load
# average before and after, since a busy machine moves these numbers most).
RING_OUT := benchmarks/results/ring/bench.txt

.PHONY: bench-ring
bench-ring: ## V4's queue benchmark, mutex against lock-free ring (seconds): benchmarks/results/ring/bench.txt and the table in docs/v4-epoll-batch.md
	@mkdir -p $(dir $(RING_OUT)); tmp=$$(mktemp); trap 'rm -f $$tmp' EXIT; \
	 { commit=$$(git rev-parse --short=12 HEAD); [ -z "$$(git status --porcelain --untracked-files=no)" ] || commit=$$commit-dirty; \
	   echo "commit: $$commit"; echo "date: $$(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "cores: $$(nproc)"; echo "load-before: $$(cut -d' ' -f1 /proc/loadavg)"; \
	   (cd v4-epoll-batch && go test -run '^$$' -bench Queue -benchtime 200000x -count 6 ./writev/); \
	   echo "load-after: $$(cut -d' ' -f1 /proc/loadavg)"; } > $$tmp; \
	 mv $$tmp $(RING_OUT); trap - EXIT; echo "wrote $(RING_OUT)"
	@$(MAKE) --no-print-directory bench-docs

.PHONY: bench-gomaxprocs1
bench-gomaxprocs1: ## the one-caller latencies of v2, v4, raw-conn and raw-pool with GOMAXPROCS=1 everywhere (about 2 min): benchmarks/results/gomaxprocs1/
	cd benchmarks && GOMAXPROCS=1 go run ./cmd/benchall -impls v2,v4,raw-conn,raw-pool -callers 1 -payload 64 -burst 0 -scenario matrix -out results/gomaxprocs1
	@$(MAKE) --no-print-directory bench-docs

# make profile STAGE=vN: the stage's case of 64 callers and 64 B with the
# server's and the harness's CPU profiled (about 10 s a stage).
PROFILE_OUT := results/profile

.PHONY: profile
profile: graphviz ## one stage's case, 64 callers and 64 B for 5 s, with both sides' CPU profiled (STAGE=v1|v2|v3|v4): benchmarks/results/profile/STAGE/ and the profile tables of the chapters
	@case "$(STAGE)" in v1|v2|v3|v4) ;; *) echo "usage: make profile STAGE=v1|v2|v3|v4"; exit 2;; esac
	cd benchmarks && go run ./cmd/profile -stage $(STAGE) -out $(PROFILE_OUT)
	@$(MAKE) --no-print-directory bench-docs

.PHONY: profile-all
profile-all: graphviz ## make profile for every stage, one after another (about a minute)
	cd benchmarks && go run ./cmd/profile -stage all -out $(PROFILE_OUT)
	@$(MAKE) --no-print-directory bench-docs

.PHONY: graphviz
graphviz: ## install Graphviz's dot (Debian graphviz), which go tool pprof -svg needs
	@if ! command -v dot >/dev/null; then \
	   echo "installing dot (Debian graphviz)"; \
	   if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; \
	   else sudo apt-get update -qq && sudo apt-get install -y -qq graphviz >/dev/null; fi; \
	 fi

.PHONY: bench-quick
bench-quick: ## smoke test of the benchmark harness: every implementation, 64 B, callers 1 and 64, half a second each
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	 cd benchmarks && go run ./cmd/benchall -payload 64 -callers 1,64 -duration 500ms -warmup 200ms -reps 1 -burst 0 -out $$tmp

##@ Read

# The stage pairs whose diffs are committed under docs/diffs/: for each,
# the code (vA-to-vB.diff) and the tests (vA-to-vB.tests.diff), and the
# diffstat at the top of the later stage's chapter, made from the two.
DIFFS := v1-to-v2 v2-to-v3 v3-to-v4 v4-to-v5

.PHONY: diff
diff: ## print the diff between two stages, code then tests: make diff FROM=v1 TO=v2
	@scripts/stagediff.sh $(FROM) $(TO)

.PHONY: diffs
diffs: ## regenerate the committed diffs in docs/diffs/ and the diffstats in the chapters
	@mkdir -p docs/diffs
	@for d in $(DIFFS); do \
	   scripts/stagediff.sh $${d%%-to-*} $${d##*-to-} code > docs/diffs/$$d.diff; \
	   scripts/stagediff.sh $${d%%-to-*} $${d##*-to-} tests > docs/diffs/$$d.tests.diff; \
	 done
	@cd shared/proto && go run ./cmd/diffstat -root ../.. $(DIFFS)

.PHONY: diff-check
diff-check: ## fail if a committed diff in docs/diffs/ or a chapter's diffstat is stale
	@for d in $(DIFFS); do \
	   for part in code tests; do \
	     f=docs/diffs/$$d.diff; [ $$part = code ] || f=docs/diffs/$$d.tests.diff; \
	     if ! scripts/stagediff.sh $${d%%-to-*} $${d##*-to-} $$part | cmp -s - $$f; then \
	       echo "stale: $$f (run make diffs)"; exit 1; fi; \
	   done; \
	 done
	@cd shared/proto && go run ./cmd/diffstat -root ../.. -check $(DIFFS)
	@echo "diff-check: docs/diffs/ and the chapters' diffstats are up to date"

##@ Diagrams

# The Mermaid CLI that draws the ```mermaid blocks of docs/*.md, pinned
# with everything it pulls in by scripts/mermaid/package-lock.json, and
# installed by npm ci into .bin/mermaid/. It drives Debian's chromium
# (scripts/mermaid/puppeteer.json), never a browser of puppeteer's own.
MERMAID_DIR := $(BIN)/mermaid
MERMAID_ENV := PUPPETEER_SKIP_DOWNLOAD=1 MERMAID_DIR=$(MERMAID_DIR)

.PHONY: diagrams
diagrams: mermaid-tools ## render every ```mermaid block of docs/*.md to docs/diagrams/<chapter>-<n>.svg, link each below its block
	@$(MERMAID_ENV) node scripts/mermaid/diagrams.mjs render

.PHONY: diagram-check
diagram-check: mermaid-tools ## fail if a ```mermaid block of docs/*.md does not render, or docs/diagrams/ is stale
	@$(MERMAID_ENV) node scripts/mermaid/diagrams.mjs check

.PHONY: mermaid-tools
mermaid-tools: $(MERMAID_DIR)/.installed ## install Debian's chromium and the pinned Mermaid CLI into .bin/mermaid/
	@if [ ! -x /usr/bin/chromium ]; then \
	   echo "installing chromium (Debian)"; \
	   if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	   else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; \
	 fi
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 13) ? 0 : 1)' || \
	   echo "warning: node $$(node --version); the Mermaid CLI asks for 22.13 or later (the committed diagrams were drawn with 20.20)"

# npm ci runs again whenever the committed lock file changes. No install
# script runs: the only one, puppeteer's, would fetch a browser.
$(MERMAID_DIR)/.installed: scripts/mermaid/package.json scripts/mermaid/package-lock.json
	@command -v npm >/dev/null || { echo "mermaid-tools: npm is needed (Debian: apt-get install npm)"; exit 1; }
	@echo "installing the Mermaid CLI into $(MERMAID_DIR) (npm ci)"
	@rm -rf $(MERMAID_DIR) && mkdir -p $(MERMAID_DIR)
	@cp scripts/mermaid/package.json scripts/mermaid/package-lock.json $(MERMAID_DIR)/
	@cd $(MERMAID_DIR) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

##@ Generate

# The folders whose every file scripts/genproto.sh writes, besides the
# *.pb.go files everywhere: make proto-check fails for a committed file
# there that generation no longer makes.
GENERATED_DIRS := benchmarks/kitexecho/kitex_gen

.PHONY: proto
proto: protoc-tools ## regenerate every *.pb.go, *.trpc.go and benchmarks/kitexecho/kitex_gen/ from the .proto files
	scripts/genproto.sh $(CURDIR)

.PHONY: proto-check
proto-check: protoc-tools ## fail if a committed generated file is stale, or no longer generated
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; scripts/genproto.sh $$tmp; \
	 for f in $$(cd $$tmp && find . -type f | sed 's|^\./||'); do \
	   if ! diff -u "$$f" "$$tmp/$$f" >/dev/null 2>&1; then echo "stale: $$f (run make proto)"; diff -u "$$f" "$$tmp/$$f" | head -20; exit 1; fi; \
	 done; \
	 for f in $$(git ls-files '*.pb.go' $(GENERATED_DIRS)); do [ -f "$$tmp/$$f" ] || { echo "not generated by make proto: $$f"; exit 1; }; done; \
	 echo "proto-check: generated code is up to date"

.PHONY: protoc-tools
protoc-tools: ## install protoc, protoc-gen-go, protoc-gen-go-grpc, protoc-gen-myrpc, kitex and trpc-cmdline into .bin/
	@if ! command -v protoc >/dev/null; then \
	   echo "installing protoc (Debian protobuf-compiler)"; \
	   if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null; \
	   else sudo apt-get update -qq && sudo apt-get install -y -qq protobuf-compiler >/dev/null; fi; \
	 fi
	@protoc --version | grep -q ' $(PROTOC_VERSION)$$' || echo "warning: $$(protoc --version), the committed code was made with $(PROTOC_VERSION)"
	@mkdir -p $(BIN)
	@[ -x $(BIN)/protoc-gen-go ] && [ "$$($(BIN)/protoc-gen-go --version)" = "protoc-gen-go $(PROTOBUF_VERSION)" ] || \
	   GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOBUF_VERSION)
	@[ -x $(BIN)/protoc-gen-go-grpc ] && [ "$$($(BIN)/protoc-gen-go-grpc --version)" = "protoc-gen-go-grpc $(GRPC_GEN_VERSION:v%=%)" ] || \
	   GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(GRPC_GEN_VERSION)
	@cd shared/proto && go build -o $(BIN)/protoc-gen-myrpc ./cmd/protoc-gen-myrpc
	@[ -x $(BIN)/kitex ] && [ "$$($(BIN)/kitex --version 2>&1)" = "$(KITEX_VERSION)" ] || { echo "installing kitex $(KITEX_VERSION) into .bin/"; $(KITEX_INSTALL); }
	@[ -x $(BIN)/goimports ] && [ "$$(go version -m $(BIN)/goimports | awk '$$1 == "mod" {print $$3}')" = $(GOIMPORTS_VERSION) ] || \
	   GOBIN=$(BIN) go install golang.org/x/tools/cmd/goimports@$(GOIMPORTS_VERSION)
	@[ -x $(BIN)/trpc ] && [ "$$($(BIN)/trpc version)" = "trpc-group/trpc-cmdline version: $(TRPC_CMDLINE_VERSION)" ] || \
	   { dir=$$(cd $(BIN) && GOWORK=off go mod download -json trpc.group/trpc-go/trpc-cmdline@$(TRPC_CMDLINE_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	     cd $$dir && GOWORK=off go build -o $(BIN)/trpc ./trpc; }

# go install github.com/cloudwego/kitex/tool/cmd/kitex@VERSION looks up the
# module's newest version for a deprecation notice, and the module proxy
# refuses to list kitex's versions; go get and go build in a module of its
# own, made for the purpose, build the same program from the same
# requirements without that look-up. kitex --version prints on stderr.
KITEX_INSTALL = (tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; cd $$tmp && export GOWORK=off GOFLAGS=-mod=mod && \
	go mod init kitextool 2>/dev/null && go get github.com/cloudwego/kitex/tool/cmd/kitex@$(KITEX_VERSION) && \
	go build -o $(BIN)/kitex github.com/cloudwego/kitex/tool/cmd/kitex)
