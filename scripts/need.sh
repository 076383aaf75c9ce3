#!/usr/bin/env bash
# need.sh PACKAGE...: installs with apt-get the Debian packages whose
# command of the same name is missing (redis-server, haproxy, chromium),
# with sudo when not root; does nothing when every one is there.
set -euo pipefail
missing=()
for p in "$@"; do
	command -v "$p" >/dev/null || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "== installing ${missing[*]}"
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
