# shellcheck shell=bash
# Installs the better-auth client project (test/betterauth-client, pinned by
# its package-lock.json) that cmd/cairn's TestE2EBetterAuthClient runs in
# Node against a real Cairn, and exports CAIRN_BETTERAUTH_CLIENT_DIR.
# Sourced by scripts/test.sh from the repo root with `set -euo pipefail`.
# `npm ci` runs only when node_modules is missing or the lock file changed;
# npm's download cache lives under ${CAIRN_CACHE:-$HOME/.cache/cairn}/npm.

cairn_betterauth_client() {
	local dir="$PWD/test/betterauth-client"
	local stamp="$dir/node_modules/.cairn-lock-sha256"
	local sum
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "betterauth-client: installing node and npm from apt"
		apt-get update
		apt-get install -y nodejs npm
	fi
	sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
	if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
		echo "betterauth-client: node_modules up to date ($(node --version))"
	else
		echo "betterauth-client: npm ci ($(node --version))"
		(cd "$dir" && npm ci --no-audit --no-fund --cache "${CAIRN_CACHE:-$HOME/.cache/cairn}/npm")
		printf '%s\n' "$sum" >"$stamp"
	fi
	export CAIRN_BETTERAUTH_CLIENT_DIR="$dir"
}

cairn_betterauth_client
