#!/usr/bin/env bash
# A soak: steady traffic with churn against one gateway for DURATION,
# sampling the gateway's RSS, goroutines, heap and open fds every 10 s into
# a CSV, then a plotted PNG and a verdict on whether any of them trends
# upward after warm-up.
#
#   bash scripts/soak.sh 30m          # the committed run
#   bash scripts/soak.sh 2m           # a quick look
#
# Load (wsbench churn): ROOMS x MEMBERS members chatting at RATE msg/s in
# all, while CHURN connections a second open, join a room, stay HOLD and
# close. Results go to ${OUT:-bench/results/<date>-<commit>-soak}.
set -euo pipefail
cd "$(dirname "$0")/.."

dur=${1:-30m}
rooms=${ROOMS:-10} members=${MEMBERS:-100} rate=${RATE:-200} churn=${CHURN:-20} hold=${HOLD:-5s}
port=${PORT:-18280}
admin=127.0.0.1:$((port + 1))
commit=$(git rev-parse --short HEAD)
out=${OUT:-bench/results/$(date -u +%Y-%m-%d)-$commit-soak}
mkdir -p "$out" bin
go build -ldflags "-X main.commit=$commit" -o bin/gateway ./cmd/gateway
go build -o bin/wsbench ./cmd/wsbench

gw_pid="" bench_pid=""
cleanup() {
	for pid in $bench_pid $gw_pid; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

bin/gateway --addr "127.0.0.1:$port" --admin-addr "$admin" --data-dir "${TMPDIR:-/tmp}/gateway-data-$$" --rate 100000 --burst 100000 \
	--log-level warn 2>"$out/gateway.log" &
gw_pid=$!
for _ in $(seq 50); do curl -sf "http://$admin/healthz" >/dev/null && break; sleep 0.1; done

{
	echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, kernel $(uname -r)"
	echo "go: $(go version)"
	echo "commit: $commit"
	echo "load: wsbench churn --rooms $rooms --members $members --rate $rate --churn $churn --hold $hold --duration $dur"
} | tee "$out/machine.txt"

bin/wsbench churn --addr "127.0.0.1:$port" --pid "$gw_pid" --rooms "$rooms" --members "$members" \
	--rate "$rate" --churn "$churn" --hold "$hold" --duration "$dur" --drain 5s \
	--json "$out/soak-load.json" >"$out/soak-load.txt" 2>&1 &
bench_pid=$!

csv=$out/soak.csv
echo "seconds,rss_bytes,goroutines,heap_inuse_bytes,open_fds,connections" >"$csv"
metric() { awk -v m="$1" '$1 == m { printf "%.0f", $2 }' <<<"$2"; }
start=$(date +%s)
while kill -0 "$bench_pid" 2>/dev/null; do
	m=$(curl -sf "http://$admin/metrics" || true)
	if [ -n "$m" ]; then
		echo "$(($(date +%s) - start)),$(metric process_resident_memory_bytes "$m"),$(metric go_goroutines "$m"),$(metric go_memstats_heap_inuse_bytes "$m"),$(metric process_open_fds "$m"),$(metric gateway_connections "$m")" >>"$csv"
	fi
	sleep 10
done
wait "$bench_pid" || true
bench_pid=""
cat "$out/soak-load.txt"
go run ./cmd/wsbench soakreport --csv "$csv" --out "$out"
echo "results in $out"
