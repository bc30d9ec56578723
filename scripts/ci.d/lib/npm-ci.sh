# shellcheck shell=bash
# cairn_npm_ci LABEL DIR: makes DIR's node_modules match its
# package-lock.json, installing node and npm from apt when missing. `npm ci`
# runs only when node_modules is missing or the lock file changed (a stamp
# in node_modules holds the lock file's sha256); npm's download cache lives
# under ${CAIRN_CACHE:-$HOME/.cache/cairn}/npm. Sourced by the ci.d scripts
# of the Node test projects (20-node.sh, 50-segment-clients.sh); not run by
# scripts/test.sh itself (it sources only scripts/ci.d/*.sh).

cairn_npm_ci() {
	local label="$1" dir="$2"
	local stamp="$dir/node_modules/.cairn-lock-sha256"
	local sum
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "$label: installing node and npm from apt"
		apt-get update
		apt-get install -y nodejs npm
	fi
	sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
	if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
		echo "$label: node_modules up to date ($(node --version))"
	else
		echo "$label: npm ci ($(node --version))"
		(cd "$dir" && npm ci --no-audit --no-fund --cache "${CAIRN_CACHE:-$HOME/.cache/cairn}/npm")
		printf '%s\n' "$sum" >"$stamp"
	fi
}
