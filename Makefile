# jmapd: common tasks. `make run` starts a demo server, `make test` runs
# every test.

GO ?= go
DATA ?= ./data

.PHONY: run test build vet fmt fuzz bench bench-cyrus bench-go clean

run:
	$(GO) run ./cmd/jmapd serve --demo --data $(DATA)

test:
	$(GO) test -race -timeout 20m ./...

build:
	$(GO) build -o bin/jmapd ./cmd/jmapd
	$(GO) build -o bin/jmapload ./cmd/jmapload

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Every fuzz target of every package, each for a short while;
# FUZZTIME=5m for a longer run.
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test $$pkg -list '^Fuzz' | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test $$pkg -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) || exit 1; \
		done; \
	done

# The standard end-to-end scenario: a fresh jmapd on loopback, jmapload
# imports MESSAGES generated messages, runs CLIENTS clients for DURATION
# and PUSH push connections, and writes bench/out/jmapd.json and .html.
# Smaller: make bench MESSAGES=2000 DURATION=10s; MIX=open=50,page=50 sets
# the operation mix (default: jmapload's).
MESSAGES ?= 100000
CLIENTS ?= 32
DURATION ?= 60s
IMPORTERS ?= 4
PUSH ?= 100
MIX ?=
bench: build
	MESSAGES=$(MESSAGES) CLIENTS=$(CLIENTS) DURATION=$(DURATION) IMPORTERS=$(IMPORTERS) PUSH=$(PUSH) \
		MIX=$(MIX) sh bench/run.sh

# The same scenario against a private Cyrus IMAP 3.6 (JMAP) on loopback,
# for comparison: writes bench/out/cyrus.json and .html. Installs the
# Debian packages when missing (that step needs root).
bench-cyrus: build
	MESSAGES=$(MESSAGES) CLIENTS=$(CLIENTS) DURATION=$(DURATION) IMPORTERS=$(IMPORTERS) PUSH=$(PUSH) \
		MIX=$(MIX) sh bench/cyrus.sh

# Store and HTTP benchmarks; JMAPD_BENCH_MESSAGES sets the inbox size of
# BenchmarkMailboxPage (default 100000, which takes a few minutes to load).
bench-go:
	$(GO) test ./server ./store/badger -run '^$$' -bench . -benchtime 3s -timeout 60m

clean:
	rm -rf bin
