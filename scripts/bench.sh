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
#   bash scripts/bench.sh --peers      # the gateway beside its peers (or PEERS=1; ~20 minutes)
#   QUICK=1 bash scripts/bench.sh --peers   # the same, small and short (~4 minutes)
#
# --peers: scripts/peers.sh builds the peers (gorilla/websocket's chat
# example, a Node ws broadcast server, Centrifugo v6) into bin/peers/; then
# the gateway and each peer in turn runs alone on the same port, restarted
# for every load: idle memory per connection, fan-out 1x2000 at 50 and 200
# msg/s, 100x100 at 2000 msg/s (not for broadcast servers: one room), and a
# ramp of 1x10000 to 80 msg/s. peers-<server>-<load>.json per run and the
# side-by-side table peers.md (wsbench peers) go to <date>-<commit>-peers/.
# PEERS_SERVERS picks the servers (default "gateway gatewaymem gorilla node
# centrifugo"); gatewaymem is the gateway with the memory history store
# (--data-dir=): the peers keep no history, the default gateway fsyncs
# every message. Then the 1x2000 loads once more with the server pinned to
# core 0 and the harness to core 1 (PEERS_PINNED, default "gatewaymem
# gorilla"): the harness's own floor. Gateway runs read their latency
# breakdown from its /metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

peers=${PEERS:-}
[ "${1:-}" = --peers ] && peers=1
commit=$(git rev-parse --short HEAD)
out=${OUT:-bench/results/$(date -u +%Y-%m-%d)-$commit${peers:+-peers}${peers:+${QUICK:+-quick}}}
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
	$pin_srv bin/gateway $gwflags --log-level warn 2>"$out/gateway.log" &
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

# --- --peers: the gateway and its peers, one server at a time -----------
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
wait_port_free() {
	for _ in $(seq 100); do
		port_open || return 0
		sleep 0.1
	done
	echo "port $port is still taken"; exit 1
}
srv_pid="" srv_name="" srv_cmd="" pin_srv="" pin_bench=""
start_server() { # start_server NAME: NAME alone on $port; sets srv_pid, srv_cmd
	srv_name=$1
	wait_port_free
	case $srv_name in
	gateway | gatewaymem)
		local gwflags=$gwflags # start_gateway reads it
		[ "$srv_name" = gatewaymem ] && gwflags="${gwflags% --data-dir *} --data-dir="
		start_gateway
		srv_pid=$gw_pid srv_cmd=$gwflags
		return ;;
	gorilla) srv_cmd="bin/peers/gorilla-chat -addr 127.0.0.1:$port" ;;
	node) srv_cmd="node bin/peers/node/server.js $port 127.0.0.1" ;;
	centrifugo) srv_cmd="bin/peers/centrifugo -c bench/peers/centrifugo.json --http_server.port $port" ;;
	esac
	$pin_srv $srv_cmd >>"$out/peers-$srv_name.log" 2>&1 &
	srv_pid=$!
	for _ in $(seq 100); do
		port_open && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "$srv_name did not start"; tail -5 "$out/peers-$srv_name.log"; exit 1
}
stop_server() {
	if [ "$srv_name" = gateway ] || [ "$srv_name" = gatewaymem ]; then
		stop_gateway
	elif [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null || true
	fi
	srv_pid="" srv_name=""
	wait_port_free
}
failed_runs=()
prun() { # prun SERVER PROTO LOAD ARGS...: one load against a fresh SERVER
	local server=$1 proto=$2 load=$3; shift 3
	local version=$commit
	[ "$proto" = gateway ] || version=$(awk -F'\t' -v s="$server" '$1 == s { print $2 }' bin/peers/VERSIONS)
	# The gateway runs as in the other modes: no --proto, its limits
	# checked; its /metrics gives each step's latency breakdown.
	if [ "$proto" = gateway ]; then
		set -- "$@" --metrics "http://127.0.0.1:$((port + 1))/metrics"
	else
		set -- "$@" --proto "$proto"
	fi
	start_server "$server"
	echo "== $server: $load"
	if ! timeout 900 $pin_bench bin/wsbench "$@" --addr "127.0.0.1:$port" --pid "$srv_pid" --commit "$version" \
		--gateway-flags "$srv_cmd" --json "$out/peers-$server-$load.json" 2>&1 | tee "$out/peers-$server-$load.txt"; then
		failed_runs+=("$server $load")
	fi
	stop_server
}
proto_of() { # proto_of SERVER: the protocol wsbench speaks to it
	case $1 in
	gateway | gatewaymem) echo gateway ;;
	centrifugo) echo centrifugo ;;
	gorilla | node) echo broadcast ;;
	*) echo "PEERS_SERVERS: unknown server $1 (gateway, gatewaymem, gorilla, node, centrifugo)" >&2; return 1 ;;
	esac
}
run_peers() {
	local servers=${PEERS_SERVERS:-gateway gatewaymem gorilla node centrifugo} server proto d=10s rd=5s
	for server in $servers; do proto_of "$server" >/dev/null || exit 1; done
	bash scripts/peers.sh
	trap 'stop_server; stop_gateway' EXIT
	[ -n "${QUICK:-}" ] && d=3s rd=3s
	for server in $servers; do
		proto=$(proto_of "$server")
		if [ -n "${QUICK:-}" ]; then
			prun $server $proto idle idle --steps 500,2000
			prun $server $proto fanout-1x500-20 fanout --rooms 1 --members 500 --rate 20 --duration $d
			prun $server $proto fanout-1x500-50 fanout --rooms 1 --members 500 --rate 50 --duration $d
			[ $proto = broadcast ] || prun $server $proto fanout-10x100-200 fanout --rooms 10 --members 100 --rate 200 --duration $d
			prun $server $proto ramp-1x1000 ramp --rooms 1 --members 1000 --rates 2,5,10,20 --duration $rd
		else
			prun $server $proto idle idle --steps 2000,10000
			prun $server $proto fanout-1x2000-50 fanout --rooms 1 --members 2000 --rate 50 --duration $d
			prun $server $proto fanout-1x2000-200 fanout --rooms 1 --members 2000 --rate 200 --duration $d
			[ $proto = broadcast ] || prun $server $proto fanout-100x100-2000 fanout --rooms 100 --members 100 --rate 2000 --duration $d
			prun $server $proto ramp-1x10000 ramp --rooms 1 --members 10000 --rates 2,5,10,20,40,80 --duration $rd
		fi
	done
	# The harness's own floor: the 1x2000 loads again with the server on
	# core 0 and the harness on core 1, for the gateway and the peer that
	# kept up best, each on a core of its own.
	if [ -z "${QUICK:-}" ] && [ "$(nproc)" -ge 2 ]; then
		pin_srv="taskset -c 0" pin_bench="taskset -c 1"
		for server in ${PEERS_PINNED:-gatewaymem gorilla}; do
			proto=$(proto_of "$server")
			prun $server $proto fanout-1x2000-50-pinned fanout --rooms 1 --members 2000 --rate 50 --duration $d
			prun $server $proto fanout-1x2000-200-pinned fanout --rooms 1 --members 2000 --rate 200 --duration $d
		done
		pin_srv="" pin_bench=""
	fi
	bin/wsbench peers --out "$out" --versions bin/peers/VERSIONS "$out"/peers-*-*.json
	cp bin/peers/VERSIONS "$out/VERSIONS"
	if [ ${#failed_runs[@]} -gt 0 ]; then
		echo "runs that failed or were not clean (see their .txt): ${failed_runs[*]}"
	fi
	echo "results in $out"
}
if [ -n "$peers" ]; then
	run_peers
	exit 0
fi

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
