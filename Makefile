# artifact-archiver developer tasks. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
BIN   := $(CURDIR)/.cache/bin
export PATH := $(BIN):$(PATH)
export ARCHIVER_MINIO_BIN := $(BIN)/minio
export ARCHIVER_NATS_BIN := $(BIN)/nats-server
export ARCHIVER_VERSITYGW_BIN := $(BIN)/versitygw

NATS_SERVER_VERSION := v2.15.2
MINIO_VERSION       := v0.0.0-20260212201848-7aac2a2c5b7c
VERSITYGW_VERSION   := v1.8.0

.PHONY: test tools lint unit query-engines images integration demo bench-webhook bench-transfer bench-catalog clean-images fresh-check

## test: everything CI checks: tools, vet, unit + end-to-end tests with -race,
## container images (built FROM scratch, each image's -h run), and the
## integration suite.
test: tools lint unit query-engines images integration

## tools: the pinned test servers, cached under .cache/bin (git-ignored).
tools: $(BIN)/nats-server $(BIN)/minio $(BIN)/versitygw

$(BIN)/nats-server:
	GOBIN=$(BIN) go install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

# MinIO is AGPL: built as a separate binary, never imported (about 3 minutes).
$(BIN)/minio:
	CGO_ENABLED=0 GOBIN=$(BIN) go install github.com/minio/minio@$(MINIO_VERSION)

# versitygw, the second S3 implementation the store is tested against
# (Apache-2.0, about a minute).
$(BIN)/versitygw:
	CGO_ENABLED=0 GOBIN=$(BIN) go install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...

unit:
	go test -race -count=1 -timeout 30m ./...

## query-engines: the catalogue read by a real engine (DuckDB through cgo),
## in its own Go module (integration/duckdb) so that the main module never
## links cgo or DuckDB's prebuilt library (docs/querying.md).
query-engines:
	cd integration/duckdb && CGO_ENABLED=1 go test -count=1 -timeout 10m ./...

## images: build every image with BASE=scratch (no registry here) and run its -h.
images:
	BASE=scratch deploy/build-images.sh --check

## integration: the whole system under faults (integration/README.md), in
## process and docker mode (ARCHIVER_INTEGRATION_MODE=process|docker|both;
## default both when Docker answers or ARCHIVER_CI=1). Behind the
## "integration" build tag, so `unit` does not run it.
integration: tools
	go vet -tags integration ./integration/...
	go test -tags integration -count=1 -timeout 40m ./integration/...

## clean-images: remove every container and image the project built (label
## io.artifact-archiver.project=artifact-archiver); .ci/run does it before
## the tests.
clean-images:
	.ci/clean-images

## fresh-check: the newcomer's path. Clones the committed HEAD into a temp
## dir, removes the project's images, and runs the README's commands there
## (the demo, then ARCHIVER_CI=1 make test) with an empty .cache; prints the
## time of each step. FRESH_GO_CACHES=1 also empties the Go caches.
fresh-check:
	.ci/fresh-check

## demo: the whole flow on embedded defaults.
demo:
	go run ./cmd/demo

bench-webhook:
	go run ./cmd/loadgen

bench-transfer:
	go run ./bench/transfer

## bench-catalog: find --sha and ls --since 30d on 100,000 generated run
## attempts in MinIO, from the catalogue and from the manifest scan (issue 14;
## about half an hour on 2 cores). BENCH_ARGS passes flags (-attempts N ...).
bench-catalog: $(BIN)/minio
	go run ./bench/catalog $(BENCH_ARGS)
