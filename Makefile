# keyconsole: see README.md. Every target works on a fresh checkout.
GO        ?= go
BIN       ?= bin/keyconsole
PKGS      := ./...
FUZZTIME  ?= 15s
export CGO_ENABLED ?= 0

.PHONY: run test test-long test-race deps fuzz generate build build-fips lint bench tools clean

## run: start the console on its embedded defaults (SQLite, local KMS key, built-in sign-in)
run:
	$(GO) run ./cmd/keyconsole dev

## deps: install what the tests need where it is missing (scripts/test-deps.sh):
## Debian packages, PostgreSQL on 127.0.0.1:5432, the KMS-compatible test server
deps:
	@bash scripts/test-deps.sh

## test: every test, after `deps` has set up what they need
test: deps
	$(GO) test -count=1 -timeout 20m $(PKGS)

## test-long: the long security and reliability suite (e2e/security with
## KEYCONSOLE_TEST_LONG=1) and every unit test, all built with GOFIPS140=v1.0.0 and
## run with GODEBUG=fips140=only (the e2e feature tests ran in `make test`); then
## every fuzz target for FUZZTIME
test-long: deps
	KEYCONSOLE_TEST_LONG=1 GOFIPS140=v1.0.0 GODEBUG=fips140=only $(GO) test -count=1 -timeout 20m \
		$$($(GO) list $(PKGS) | grep -v -x -e keyconsole/e2e -e keyconsole/e2e/harness)
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

## test-race: every package but the browser and binary scenarios in e2e, under the
## race detector (needs cgo and a C compiler, which `deps` installs)
test-race:
	@bash scripts/test-deps.sh race
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m \
		$$($(GO) list $(PKGS) | grep -v -e '^keyconsole/e2e')

## fuzz: every Fuzz* target in the module for FUZZTIME each (default 15s)
fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

## generate: regenerate templ components
generate:
	$(GO) tool templ generate

## build: static release binary
build:
	$(GO) build -trimpath -ldflags "-s -w" -o $(BIN) ./cmd/keyconsole

## build-fips: release binary with Go's FIPS 140-3 module
build-fips:
	GOFIPS140=v1.0.0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)-fips ./cmd/keyconsole

## lint: formatting, vet and templ formatting
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '_templ.go$$'))" || (gofmt -l $$(git ls-files '*.go' | grep -v '_templ.go$$'); echo "gofmt needed"; exit 1)
	$(GO) vet $(PKGS)
	$(GO) tool templ fmt -fail views

## bench: the benchmark suite (about 10 minutes with fresh data; never part of test):
## load tests and Go benchmarks against same-run baselines, servers and load
## generators pinned to separate cores; writes bench/results/<date>.md and .json
bench:
	bash scripts/bench.sh $(BENCHFLAGS)

## tools: test helpers built from the Go module proxy (KMS-compatible server)
tools:
	@bash scripts/local-kms.sh install

clean:
	rm -rf bin data
