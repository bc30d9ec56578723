# shellcheck shell=bash
# Installs Debian's chromium for the headless Swagger UI test
# (cmd/cairn/docs_e2e_test.go) and exports CAIRN_CHROMIUM. Sourced by
# scripts/test.sh from the repo root with `set -euo pipefail`.
# Idempotent: does nothing but export when /usr/bin/chromium exists. The
# test itself runs chromium with --headless --no-sandbox --disable-gpu
# --disable-background-networking --disable-component-update --disable-sync
# --no-first-run and a fresh --user-data-dir under its temp dir.

cairn_chromium_install() {
	if [[ ! -x /usr/bin/chromium ]]; then
		echo "chromium: installing Debian's chromium package"
		local sudo=""
		if [[ "$(id -u)" != 0 ]]; then
			sudo="sudo"
		fi
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
	fi
	echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown')"
	export CAIRN_CHROMIUM=/usr/bin/chromium
}

cairn_chromium_install
