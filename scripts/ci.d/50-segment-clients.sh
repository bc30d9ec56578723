# shellcheck shell=bash
# Installs the Segment SDK project (test/segment-clients, pinned by its
# package-lock.json: @segment/analytics-node 3.1.0 and
# @segment/analytics-next 1.84.3) that cmd/cairn's TestE2ESegmentNode (Node)
# and TestE2ESegmentBrowser (headless Chromium) run against a real Cairn, and
# exports CAIRN_SEGMENT_CLIENTS_DIR. Sourced by scripts/test.sh from the repo
# root with `set -euo pipefail`, after 20-node.sh installed Node and npm.
# `npm ci` runs only when node_modules is missing or the lock file changed;
# npm's download cache lives under ${CAIRN_CACHE:-$HOME/.cache/cairn}/npm.

cairn_segment_clients() {
	local dir="$PWD/test/segment-clients"
	local stamp="$dir/node_modules/.cairn-lock-sha256"
	local sum
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "segment-clients: installing node and npm from apt"
		apt-get update
		apt-get install -y nodejs npm
	fi
	sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
	if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
		echo "segment-clients: node_modules up to date ($(node --version))"
	else
		echo "segment-clients: npm ci ($(node --version))"
		(cd "$dir" && npm ci --no-audit --no-fund --cache "${CAIRN_CACHE:-$HOME/.cache/cairn}/npm")
		printf '%s\n' "$sum" >"$stamp"
	fi
	export CAIRN_SEGMENT_CLIENTS_DIR="$dir"
}

cairn_segment_clients
