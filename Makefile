# jmapd: common tasks. `make run` starts a demo server, `make test` runs
# every test.

GO ?= go
DATA ?= ./data

.PHONY: run test build vet fmt fuzz bench clean

run:
	$(GO) run ./cmd/jmapd serve --demo --data $(DATA)

test:
	$(GO) test -race -timeout 20m ./...

build:
	$(GO) build -o bin/jmapd ./cmd/jmapd

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Each fuzz target for a short while; FUZZTIME=5m for a longer run.
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./jmap -run '^$$' -fuzz '^FuzzRequestDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./jmap -run '^$$' -fuzz '^FuzzResultReference$$' -fuzztime $(FUZZTIME)
	$(GO) test ./jmap -run '^$$' -fuzz '^FuzzPatch$$' -fuzztime $(FUZZTIME)
	$(GO) test ./jmap -run '^$$' -fuzz '^FuzzCheckIJSON$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/auth -run '^$$' -fuzz '^FuzzAuthorizationHeader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/mime -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/delivery -run '^$$' -fuzz '^FuzzParseAddress$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/delivery -run '^$$' -fuzz '^FuzzStripBcc$$' -fuzztime $(FUZZTIME)
	$(GO) test ./methods -run '^$$' -fuzz '^FuzzSubmissionEnvelope$$' -fuzztime $(FUZZTIME)

# Store and HTTP benchmarks; JMAPD_BENCH_MESSAGES sets the inbox size of
# BenchmarkMailboxPage (default 100000, which takes a few minutes to load).
bench:
	$(GO) test ./server ./store/badger -run '^$$' -bench . -benchtime 3s -timeout 60m

clean:
	rm -rf bin
