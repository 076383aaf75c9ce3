#!/usr/bin/env bash
# The standard bench suite: builds the gateway and wsbench, starts a gateway
# on loopback, runs idle (to 18k), connect, fanout at three sizes, fanout
# with and without slow readers, and ramps,
# and writes bench/results/<date>-<commit>/ with the JSON, the Markdown and
# the charts. Stops everything it started.
#
#   bash scripts/bench.sh              # full suite (~7 minutes)
#   QUICK=1 bash scripts/bench.sh      # smaller sizes, for a smoke run
#   FANOUT=1 bash scripts/bench.sh     # the three fan-out sizes only (~1 minute)
set -euo pipefail
cd "$(dirname "$0")/.."

commit=$(git rev-parse --short HEAD)
out=${OUT:-bench/results/$(date -u +%Y-%m-%d)-$commit}
mkdir -p "$out" bin
go build -ldflags "-X main.commit=$commit" -o bin/gateway ./cmd/gateway
go build -o bin/wsbench ./cmd/wsbench

port=${PORT:-18080}
# Limits that do not throttle the harness's own publishers: the per-connection
# rate limit would otherwise cap a publisher at 20 messages/s. Recorded in
# every result as the gateway's flags.
# The default durable store, fresh for each gateway started (the figures are
# of the store a node runs with), in a scratch directory outside the results.
data=${TMPDIR:-/tmp}/gateway-bench-data-$$
gwflags="--addr 127.0.0.1:$port --admin-addr 127.0.0.1:$((port + 1)) --rate 100000 --burst 100000 --max-rooms 1000 --data-dir $data"

gw_pid=""
start_gateway() {
	rm -rf "$data"
	# shellcheck disable=SC2086
	bin/gateway $gwflags --log-level warn 2>"$out/gateway.log" &
	gw_pid=$!
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
		sleep 0.1
	done
	echo "gateway did not start"; cat "$out/gateway.log"; exit 1
}
stop_gateway() {
	[ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null || true
	gw_pid=""
}
trap stop_gateway EXIT

{
	echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r)"
	echo "go: $(go version)"
	echo "commit: $commit"
	echo "gateway flags: $gwflags"
} | tee "$out/machine.txt"

run() { # run NAME ARGS...: a scenario against a fresh gateway
	local name=$1; shift
	start_gateway
	echo "== $name"
	bin/wsbench "$@" --addr "127.0.0.1:$port" --pid "$gw_pid" --commit "$commit" \
		--gateway-flags "$gwflags" --json "$out/$name.json" | tee "$out/$name.txt"
	stop_gateway
}

if [ -n "${FANOUT:-}" ]; then
	run fanout-1x2000 fanout --rooms 1 --members 2000 --rate 200 --duration 10s
	run fanout-10x500 fanout --rooms 10 --members 500 --rate 400 --duration 10s
	run fanout-100x100 fanout --rooms 100 --members 100 --rate 2000 --duration 10s
elif [ -n "${QUICK:-}" ]; then
	run idle idle --steps 500,1000,2000
	run connect connect --conns 2000
	run fanout-1x500 fanout --rooms 1 --members 500 --rate 100 --duration 3s
	run ramp-1x1000 ramp --rooms 1 --members 1000 --rates 50,200 --duration 3s
	run fanout-1x500-slow50 fanout --rooms 1 --members 500 --rate 50 --duration 3s --slow 50
else
	run idle idle --steps 1000,5000,10000,18000
	# Own source addresses: the idle step leaves ~18k sockets in TIME_WAIT.
	run connect connect --conns 18000 --src 127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8
	run fanout-1x2000 fanout --rooms 1 --members 2000 --rate 200 --duration 10s
	run fanout-10x500 fanout --rooms 10 --members 500 --rate 400 --duration 10s
	run fanout-100x100 fanout --rooms 100 --members 100 --rate 2000 --duration 10s
	# Slow readers: 200 of the room's 2,000 members join and never read
	# (raw sockets, 4 KiB SO_RCVBUF); latency is the other members'.
	run fanout-1x2000-slow0 fanout --rooms 1 --members 2000 --rate 50 --duration 30s --slow 0
	run fanout-1x2000-slow200 fanout --rooms 1 --members 2000 --rate 50 --duration 30s --slow 200
	run ramp-1x10000 ramp --rooms 1 --members 10000 --rates 2,5,10,20,40,80 --duration 5s
	run ramp-100x100 ramp --rooms 100 --members 100 --rates 100,200,400,800,1600,3200 --duration 5s
fi

bin/wsbench report --out "$out" "$out"/*.json
echo "results in $out"
