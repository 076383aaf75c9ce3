#!/usr/bin/env bash
# A CPU profile of the gateway under load, and its top functions: builds the
# gateway and wsbench, starts a gateway on loopback with --pprof, drives it
# with wsbench fanout (1 room x 2,000 members, 200 msg/s), takes a 30 s CPU
# profile from /debug/pprof/profile on the admin listener while the bench
# runs, prints `go tool pprof -top`, and stops everything it started.
#
#   bash scripts/profile.sh                       # ~45 s
#   PROFILE_SECONDS=10 bash scripts/profile.sh    # a shorter profile
#   ADMIN=127.0.0.1:9090 bash scripts/profile.sh  # a node already running
#   OUT=/tmp/prof bash scripts/profile.sh         # default bench/results/profile-<date>
#
# ADMIN=host:port profiles that node's admin listener instead: no build, no
# gateway, no bench (drive it yourself). The node must run with --pprof, and
# its admin port should not be reachable from outside: tunnel to it
# (ssh -L 9090:127.0.0.1:9090 node, then ADMIN=127.0.0.1:9090).
# PROFILE_SECONDS, not SECONDS: $SECONDS is bash's own clock. PORT (default
# 18090) moves the local gateway; its admin listener is PORT+1.
#
# $OUT keeps cpu.pprof, top.txt, gateway.log and wsbench.txt (cut short: the
# bench is stopped once the profile is taken). Dig further with
#   go tool pprof -http=: bin/gateway $OUT/cpu.pprof
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${PROFILE_SECONDS:-30}
case $secs in
'' | *[!0-9]* | 0) echo "PROFILE_SECONDS must be a whole number of seconds > 0" >&2; exit 2 ;;
esac
out=${OUT:-bench/results/profile-$(date -u +%Y-%m-%d-%H%M%S)}
mkdir -p "$out"

# Everything started here, stopped on any exit (Ctrl-C and kill included).
gw_pid="" bench_pid="" curl_pid=""
stop_all() {
	# The bench before the gateway: with its connections gone the gateway's
	# drain (cut to 2 s by --drain-timeout below) has nothing to wait for.
	local pid
	for pid in $curl_pid $bench_pid $gw_pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	curl_pid="" bench_pid="" gw_pid=""
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fetch_profile() { # fetch_profile ADMIN_ADDR: into $out/cpu.pprof
	local addr=$1
	echo "== CPU profile of http://$addr for ${secs}s"
	# In the background: bash runs a trap only once the foreground command
	# ends, and `wait` is interrupted by one at once.
	curl -sS --fail --max-time $((secs + 30)) -o "$out/cpu.pprof" \
		"http://$addr/debug/pprof/profile?seconds=$secs" &
	curl_pid=$!
	if ! wait "$curl_pid"; then
		echo "no profile from http://$addr/debug/pprof/profile (is the gateway running with --pprof?)" >&2
		exit 1
	fi
	curl_pid=""
}
print_top() { # print_top [BINARY]: the 25 functions with the most CPU time
	go tool pprof -top -nodecount=25 "$@" "$out/cpu.pprof" | tee "$out/top.txt"
	echo "profile in $out/cpu.pprof"
}

if [ -n "${ADMIN:-}" ]; then
	fetch_profile "$ADMIN"
	# Go profiles carry their own symbols; BIN=path/to/gateway adds the
	# binary anyway (for pprof -list / -disasm).
	print_top ${BIN:+"$BIN"}
	exit 0
fi

mkdir -p bin
go build -o bin/gateway ./cmd/gateway
go build -o bin/wsbench ./cmd/wsbench

port=${PORT:-18090}
admin=127.0.0.1:$((port + 1))
members=2000

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" "$((port + 1))"; do
	if port_open "$p"; then
		echo "127.0.0.1:$p is already in use (set PORT, or ADMIN to profile that node)" >&2
		exit 1
	fi
done

# The per-connection rate limit would otherwise cap the publisher at 20
# messages/s (the same flags as scripts/bench.sh).
bin/gateway --addr "127.0.0.1:$port" --admin-addr "$admin" --data-dir "${TMPDIR:-/tmp}/gateway-data-$$" --pprof \
	--rate 100000 --burst 100000 --drain-timeout 2s --log-level warn 2>"$out/gateway.log" &
gw_pid=$!
for _ in $(seq 50); do
	port_open "$port" && break
	sleep 0.1
done
if ! port_open "$port"; then
	echo "gateway did not start"; cat "$out/gateway.log"; exit 1
fi

# Sends for 10 s longer than the profile, so the profile sees only the
# steady state, never the end of the run.
echo "== wsbench fanout: 1 room x $members members, 200 msg/s"
bin/wsbench fanout --addr "127.0.0.1:$port" --pid "$gw_pid" --rooms 1 --members "$members" \
	--rate 200 --duration "$((secs + 10))s" >"$out/wsbench.txt" 2>&1 &
bench_pid=$!

# Setup: wait until every member is connected (gateway_connections on
# /metrics), then a second for the joins. Without that metric: 5 s.
n=""
for _ in $(seq 300); do
	if ! kill -0 "$bench_pid" 2>/dev/null; then
		echo "wsbench exited early:"; cat "$out/wsbench.txt"; exit 1
	fi
	n=$(curl -s "http://$admin/metrics" | awk '$1 == "gateway_connections" { print int($2) }' || true)
	if [ -z "$n" ]; then
		sleep 5; break
	fi
	if [ "$n" -ge "$members" ]; then
		sleep 1; break
	fi
	sleep 0.1
done
if [ -n "$n" ] && [ "$n" -lt "$members" ]; then
	echo "only $n of $members members connected after 30 s; profiling anyway" >&2
fi

fetch_profile "$admin"
stop_all
print_top bin/gateway
