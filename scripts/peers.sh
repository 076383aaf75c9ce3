#!/usr/bin/env bash
# Fetches and builds the servers that scripts/bench.sh --peers measures the
# gateway against, into bin/peers/ (gitignored), and writes their versions
# to bin/peers/VERSIONS (name, version, source; tab-separated). What is
# already built is kept; no input is read.
#
#   gorilla     bin/peers/gorilla-chat: the chat example of gorilla/websocket,
#               from the Go module cache, built as a scratch module
#   node        bin/peers/node/: bench/peers/node (a ws broadcast server),
#               its dependencies installed there with npm ci
#   centrifugo  bin/peers/centrifugo: go install of Centrifugo v6
#
#   bash scripts/peers.sh
set -euo pipefail
cd "$(dirname "$0")/.."

GORILLA_VERSION=v1.5.3
CENTRIFUGO_VERSION=v6.9.1

dir=bin/peers
mkdir -p "$dir"
log=$dir/build.log
: >"$log"
# die MESSAGE: one line saying what failed; the details are in the log.
die() { echo "peers.sh: $* (details: $log)" >&2; exit 1; }
# step WHAT CMD...: runs CMD with its output in the log, or dies.
step() {
	local what=$1; shift
	echo "== $what" >>"$log"
	"$@" </dev/null >>"$log" 2>&1 || die "$what failed"
}
export GOWORK=off GOFLAGS="${GOFLAGS:-} -buildvcs=false"
command -v go >/dev/null || die "go is not installed"

# gorilla/websocket's chat example, as it is in the module.
if [ ! -x "$dir/gorilla-chat" ]; then
	echo "== gorilla: chat example of github.com/gorilla/websocket@$GORILLA_VERSION"
	json=$(go mod download -json "github.com/gorilla/websocket@$GORILLA_VERSION" 2>>"$log") ||
		die "go mod download github.com/gorilla/websocket@$GORILLA_VERSION failed"
	mod=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
	[ -d "$mod/examples/chat" ] || die "no examples/chat in the gorilla/websocket module ($mod)"
	# A scratch module outside the tree: go vet and gofmt of ./... never see it.
	src=$(mktemp -d)
	trap 'rm -rf "$src"' EXIT
	cp "$mod"/examples/chat/*.go "$mod"/examples/chat/home.html "$src"/
	chmod -R u+w "$src"
	printf 'module wsbench/peers/gorilla-chat\n\ngo 1.20\n\nrequire github.com/gorilla/websocket %s\n' "$GORILLA_VERSION" >"$src/go.mod"
	step "gorilla: go build" env -C "$src" GOFLAGS="$GOFLAGS -mod=mod" go build -o "$PWD/$dir/gorilla-chat" .
fi

# The Node ws broadcast server: the committed files, with npm ci beside them.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "== node: installing nodejs and npm with apt-get"
	if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
	step "apt-get update" $sudo apt-get update -qq
	step "apt-get install nodejs npm" env DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm
fi
node_dir=$dir/node
mkdir -p "$node_dir"
if [ ! -f "$node_dir/node_modules/ws/package.json" ] || ! cmp -s bench/peers/node/package-lock.json "$node_dir/package-lock.json"; then
	echo "== node: npm ci (ws, as pinned in bench/peers/node/package-lock.json)"
	cp bench/peers/node/package.json bench/peers/node/package-lock.json "$node_dir"/
	step "node: npm ci" env -C "$node_dir" npm ci --no-audit --no-fund --ignore-scripts
fi
cp bench/peers/node/server.js "$node_dir"/ # always the committed one

# Centrifugo, built from its module with the version stamped in.
if [ ! -x "$dir/centrifugo" ]; then
	echo "== centrifugo: go install github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION (a few minutes the first time)"
	step "centrifugo: go install" env GOBIN="$PWD/$dir" go install \
		-ldflags "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=${CENTRIFUGO_VERSION#v}" \
		"github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
fi
step "centrifugo: checkconfig bench/peers/centrifugo.json" "$dir/centrifugo" checkconfig -c bench/peers/centrifugo.json

ws_version=$(node -p 'require("./'"$node_dir"'/node_modules/ws/package.json").version') || die "cannot read the installed ws version"
cf_version=$("$dir/centrifugo" version | head -1) || die "bin/peers/centrifugo does not run"
# One line each, tab-separated: name, version, source.
{
	printf 'gorilla\tgorilla/websocket %s\texamples/chat of github.com/gorilla/websocket from the Go module cache, built with %s\n' "$GORILLA_VERSION" "$(go env GOVERSION)"
	printf 'node\tws %s, node %s\tbench/peers/node/server.js, npm ci of bench/peers/node/package-lock.json\n' "$ws_version" "$(node --version)"
	printf 'centrifugo\tcentrifugo %s\tgo install github.com/centrifugal/centrifugo/v6@%s (it says: %s), config bench/peers/centrifugo.json\n' "$CENTRIFUGO_VERSION" "$CENTRIFUGO_VERSION" "$cf_version"
} >"$dir/VERSIONS"
cat "$dir/VERSIONS"
