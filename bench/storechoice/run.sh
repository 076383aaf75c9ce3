#!/usr/bin/env bash
# Runs the comparison and writes the raw output, under a header naming the
# commands, the machine and the date, to the file given (default: stdout).
#   bash run.sh ../results/2026-12-02-storechoice.txt
#
# CGO_ENABLED=0, as the gateway is built (deploy/Dockerfile): every
# candidate is then pure Go (Pebble uses its pure-Go zstd).
#
# The machine and its disk are shared with other work, and fsync latency
# drifts with it. So the matrix runs in PASSES separate passes (-count=1
# each), not -count=3 in a row: every candidate is sampled at PASSES
# different times, and a noisy minute hits one sample of each rather than
# every sample of one. Before each pass it waits (at most 60 s) for the
# disk to be quiet (IO pressure, avg10 "some", under 10%) and logs the
# load and IO pressure; BenchmarkFsync, the control, says what the disk's
# own fsync cost was in each pass. Then the grouping stores run 10 s at
# 64 writers: does a rate hold once work piles up behind it (Pebble's
# compactions)? About 7 minutes in all.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-/dev/stdout}
export CGO_ENABLED=0
BENCHTIME=${BENCHTIME:-1s}
PASSES=${PASSES:-3}
sustained='Append/store=(pebble|bbolt-committer|sqlite)/sync=(always|none)/writers=64'

quiet() {
	local i
	for i in $(seq 60); do
		awk '/^some/ { split($2, a, "="); exit !(a[2] < 10) }' /proc/pressure/io 2>/dev/null && break
		sleep 1
	done
	echo "# $(date -u +%H:%M:%SZ) load $(cut -d' ' -f1-3 /proc/loadavg); io pressure: $(head -1 /proc/pressure/io 2>/dev/null | cut -d' ' -f1-4)"
}

{
	echo "# command: cd bench/storechoice && bash run.sh FILE, that is $PASSES passes of"
	echo "#   CGO_ENABLED=0 go test -run=NONE -bench=. -benchtime=$BENCHTIME -count=1 -timeout=30m ."
	echo "#   then CGO_ENABLED=0 go test -run=NONE -bench='$sustained' -benchtime=10s -count=1 -timeout=30m ."
	echo "# machine: nproc=$(nproc), $(uname -r), $(go version | cut -d' ' -f3-), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/^Mem/ {print $2}') GiB, temp dirs on $(df --output=fstype "${TMPDIR:-/tmp}" | tail -1)"
	echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# the machine is shared: other work may run beside this (load and io pressure logged per pass)"
	for p in $(seq "$PASSES"); do
		echo
		echo "# pass $p of $PASSES"
		quiet
		go test -run=NONE -bench=. -benchtime="$BENCHTIME" -count=1 -timeout=30m . 2>&1
	done
	echo
	echo "# sustained: 10 s at 64 writers"
	quiet
	go test -run=NONE -bench="$sustained" -benchtime=10s -count=1 -timeout=30m . 2>&1
	echo "# $(date -u +%H:%M:%SZ) load $(cut -d' ' -f1-3 /proc/loadavg); io pressure: $(head -1 /proc/pressure/io 2>/dev/null | cut -d' ' -f1-4)"
	echo "# finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$out"
