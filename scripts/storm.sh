#!/usr/bin/env bash
# A reconnect storm against one gateway: 10 rooms x 100 members chat at 100
# msg/s while STORM connections (default 15,000: with the members, as many
# as one process may hold here) arrive with 2,000 handshakes in flight, as
# when a node's clients all come back within a second. Reports the members'
# latency before, during and after, and how long the node took to admit
# the storm; writes bench/results/<date>-<commit>-storm/.
#
#   bash scripts/storm.sh
#   STORM=5000 bash scripts/storm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

commit=$(git rev-parse --short HEAD)
out=${OUT:-bench/results/$(date -u +%Y-%m-%d)-$commit-storm}
port=${PORT:-18480}
mkdir -p "$out" bin
go build -ldflags "-X main.commit=$commit" -o bin/gateway ./cmd/gateway
go build -o bin/wsbench ./cmd/wsbench
# Two storms, each against a fresh gateway: without a handshake limit, and
# with --handshake-rate (default 2000/s), which sheds the excess with 503 +
# Retry-After so that connected members keep their latency.
run() { # run NAME EXTRA-GATEWAY-FLAGS
	local name=$1 extra=$2 gwflags gw_pid
	# The default durable store, fresh for each gateway started (the figures are
	# of the store a node runs with), in a scratch directory outside the results.
	data=${TMPDIR:-/tmp}/gateway-bench-data-$$
	gwflags="--addr 127.0.0.1:$port --admin-addr 127.0.0.1:$((port + 1)) --rate 100000 --burst 100000 $extra --data-dir $data"
	rm -rf "$data"
	# shellcheck disable=SC2086
	bin/gateway $gwflags --log-level warn 2>"$out/gateway-$name.log" &
	gw_pid=$!
	for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
	echo "== $name"
	bin/wsbench storm --addr "127.0.0.1:$port" --pid "$gw_pid" --commit "$commit" --gateway-flags "$gwflags" \
		--rooms 10 --members 100 --rate 100 --duration 8s --storm "${STORM:-15000}" --storm-flight 2000 \
		--src 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6 \
		--json "$out/storm-$name.json" | tee "$out/storm-$name.txt"
	kill -0 "$gw_pid" && echo "gateway still up after the storm" | tee -a "$out/storm-$name.txt"
	kill "$gw_pid"
	wait "$gw_pid" 2>/dev/null || true
}
run unlimited ""
run rate-"${RATE:-2000}" "--handshake-rate ${RATE:-2000}"
bin/wsbench report --out "$out" "$out"/storm-*.json
