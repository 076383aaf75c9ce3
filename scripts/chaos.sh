#!/usr/bin/env bash
# The standard chaos case: redis-server, three gateway nodes and haproxy on
# loopback; 2,000 clients in 100 rooms sending once a second with
# idempotency keys; then, 6 s apart: one node killed with SIGKILL, the node
# started again, Redis restarted (append-only file), one client's TCP
# stream cut mid-frame. Prints per fault who dropped and came back, how fast,
# and whether every acknowledged message reached every member exactly once;
# writes bench/results/<date>-<commit>-chaos/. Exits non-zero if anything
# acknowledged was lost or doubled.
#
#   bash scripts/chaos.sh
#   CLIENTS=500 bash scripts/chaos.sh        # smaller
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/need.sh redis-server haproxy

commit=$(git rev-parse --short HEAD)
out=${OUT:-bench/results/$(date -u +%Y-%m-%d)-$commit-chaos}
mkdir -p "$out" bin
go build -ldflags "-X main.commit=$commit" -o bin/gateway ./cmd/gateway
go build -o bin/chaos ./cmd/chaos
{
	echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r)"
	echo "go: $(go version)"
	echo "commit: $commit"
} | tee "$out/machine.txt"
bin/chaos --gateway bin/gateway --clients "${CLIENTS:-2000}" --rooms "${ROOMS:-100}" --out "$out" 2>"$out/chaos.log"
