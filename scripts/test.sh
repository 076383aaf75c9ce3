#!/usr/bin/env bash
# The project's test command (README, .ci/run). Needs only Go; installs with
# apt-get whatever later suites need when it is missing.
#
#   bash scripts/test.sh          # everything CI runs
#   FUZZTIME=1m bash scripts/test.sh   # or a count: 500000x
set -euo pipefail
cd "$(dirname "$0")/.."

# An execution count, not a duration: a duration can end while the fuzzer
# is busy and fail with "context deadline exceeded".
FUZZTIME=${FUZZTIME:-20000x}

# What the tests run for real, installed when missing: redis-server (the
# history conformance suite, the cluster tests) and chromium (the browser
# tests of the chat page, web/).
bash scripts/need.sh redis-server chromium

echo "== gofmt"
bad=$(gofmt -l .)
if [ -n "$bad" ]; then
	echo "gofmt needed on:"; echo "$bad"; exit 1
fi

echo "== go vet"
go vet ./...

# Packages whose logic runs without an nbio server run under the race
# detector; nbio's own accept/poller hand-off trips it, so the
# end-to-end packages that start a node run without it.
RACE_PKGS="./codec/... ./gateway/hub/... ./gateway/backend/... ./gateway/history/... ./gateway/limit/... ./gateway/auth/... ./gateway/metrics/... ./gateway/cluster/... ./gateway/hook/... ./bench/... ./internal/..."
echo "== go test -race $RACE_PKGS"
go test -race -count=1 $RACE_PKGS

# Allocation counts mean nothing under -race (the detector allocates, and
# those tests skip there): run them plain.
echo "== go test (allocation counts, no -race)"
go test -count=1 -run 'Allocs$' ./codec ./bench
echo "== go test (the harness's protocols over a socket: nbio's event loop, no -race)"
go test -count=1 -run 'OverASocket' ./bench

echo "== go test (end-to-end over real sockets)"
go test -count=1 -timeout 8m ./gateway/ ./cmd/... ./web/... ./chaos/...

# The protocol tests again, each node in cluster mode on a real
# redis-server of its own: both modes speak the same protocol (the
# differences the contract allows are in docs/protocol.md, "Cluster mode").
echo "== go test ./gateway/ -backend=redis (the protocol tests in cluster mode)"
go test -count=1 -timeout 8m ./gateway/ -backend=redis
# And on the durable store (--data-dir), the default of the binary.
echo "== go test ./gateway/ -backend=disk (the protocol tests on the durable store)"
go test -count=1 -timeout 8m ./gateway/ -backend=disk

# A real gateway process attacked over raw TCP: one test per bound
# (README "Security"). -attack.long runs the bigger volumes.
echo "== go test ./attack (hostile clients against a real process)"
go test -count=1 -timeout 5m ./attack/

# Each target is first compiled with coverage instrumentation and its seed
# corpus replayed (the fuzzer prints "execs: 0" meanwhile, 10-30 s), then
# runs the given number of generated inputs.
fuzz() { # target package count
	echo "-- $1 ($2): instrumented build and seed corpus, then $3 inputs"
	go test -run=NONE -fuzz="^$1\$" -fuzztime="$3" "$2"
}
echo "== fuzz"
fuzz FuzzDecodeRequest ./codec "$FUZZTIME"
fuzz FuzzAppendString ./codec "$FUZZTIME"
fuzz FuzzVerify ./gateway/auth "$FUZZTIME"
fuzz FuzzVerifyClaims ./gateway/auth "$FUZZTIME"
fuzz FuzzHandleFrames ./gateway "$FUZZTIME"
# Each input here costs real sockets to a real process: fewer inputs.
fuzz FuzzRawStream ./attack "${FUZZTIME_RAW:-2000x}"

echo "== all tests passed"
