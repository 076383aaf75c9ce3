#!/usr/bin/env bash
# A three-node cluster on loopback: redis-server, three gateway nodes
# linked through it (--redis-url), and haproxy in front on one port,
# balancing WebSocket connections over the nodes that answer /readyz.
#
#   bash scripts/cluster.sh           # start; prints the addresses
#   bash scripts/cluster.sh stop      # stop everything it started
#   bash scripts/cluster.sh status    # what is running
#
# PORT (default 8080) is haproxy's; nodes listen on 18101-18103 (admin
# 19101-19103), Redis on REDIS_PORT (default 6390). State, logs and pids
# are in ${STATE:-/tmp/chatgw-cluster}. Installs redis-server and haproxy
# with apt-get when they are missing. Node flags come from the environment
# as for any node, e.g. GATEWAY_RATE=1000 bash scripts/cluster.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

state=${STATE:-/tmp/chatgw-cluster}
port=${PORT:-8080}
redis_port=${REDIS_PORT:-6390}
nodes=(1 2 3)

stop() {
	local f pid
	for f in "$state"/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		rm -f "$f"
	done
	echo "stopped (logs kept in $state)"
}

status() {
	local f
	for f in "$state"/*.pid; do
		[ -e "$f" ] || { echo "nothing running"; return; }
		if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"
		else echo "$(basename "$f" .pid): gone"; fi
	done
}

case "${1:-start}" in
stop) stop; exit 0 ;;
status) status; exit 0 ;;
start) ;;
*) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

bash scripts/need.sh redis-server haproxy

mkdir -p "$state"
if ls "$state"/*.pid >/dev/null 2>&1; then
	echo "already running (bash $0 stop first):"; status; exit 1
fi
trap 'echo "start failed; stopping what started"; stop' ERR

go build -ldflags "-X main.commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" -o bin/gateway ./cmd/gateway

wait_port() { # wait_port PORT NAME
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
		sleep 0.1
	done
	echo "$2 did not listen on $1"; return 1
}

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly yes \
	--dir "$state" --daemonize no --loglevel warning >"$state/redis.log" 2>&1 &
echo $! >"$state/redis.pid"
wait_port "$redis_port" redis-server

for i in "${nodes[@]}"; do
	bin/gateway --addr "127.0.0.1:1810$i" --admin-addr "127.0.0.1:1910$i" --node-id "node-$i" \
		--redis-url "redis://127.0.0.1:$redis_port/0" >"$state/node-$i.log" 2>&1 &
	echo $! >"$state/node-$i.pid"
done
for i in "${nodes[@]}"; do wait_port "1810$i" "node-$i"; done

{
	cat <<CFG
global
    # Two sockets per connection (client and node side): this machine's
    # 20,000 open files allow ~9,000. Raise with MAXCONN where ulimit -n is higher.
    maxconn ${MAXCONN:-9000}
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    # A WebSocket is a tunnel once upgraded; heartbeats (25 s) keep it busy.
    timeout tunnel 1h
frontend chat
    bind 127.0.0.1:$port
    default_backend gateways
backend gateways
    balance leastconn
    # A connection to a node that just died is retried on another one.
    retries 3
    option redispatch
    # A node that is draining or has lost Redis answers 503 here and gets
    # no new connections.
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
CFG
	for i in "${nodes[@]}"; do
		echo "    server node-$i 127.0.0.1:1810$i check port 1910$i"
	done
} >"$state/haproxy.cfg"
haproxy -f "$state/haproxy.cfg" -db >"$state/haproxy.log" 2>&1 &
echo $! >"$state/haproxy.pid"
wait_port "$port" haproxy
trap - ERR

cat <<EOF2
cluster up:
  clients:  ws://127.0.0.1:$port/ws   (haproxy, leastconn over 3 nodes)
  nodes:    ws://127.0.0.1:18101-18103/ws, admin http://127.0.0.1:19101-19103
  redis:    redis://127.0.0.1:$redis_port/0
  logs:     $state
stop with: bash $0 stop
EOF2
