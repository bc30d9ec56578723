# shellcheck shell=bash
# Builds nats-server (pinned below) once with `go install` and exports
# CAIRN_NATS_SERVER_BIN for the multi-node tests (jetstream/, cmd/cairn's
# cluster e2e tests) and scripts/cluster.sh. Sourced by scripts/test.sh from
# the repo root with `set -euo pipefail`. The binary is cached under
# ${CAIRN_CACHE:-$HOME/.cache/cairn}/bin keyed by version and Go version
# (cold build: a minute or two on 2 cores).

cairn_nats_server_build() {
	local version="v2.15.2"
	local cache="${CAIRN_CACHE:-$HOME/.cache/cairn}"
	local gover
	gover="$(go env GOVERSION)"
	local bin="$cache/bin/nats-server-$version-$gover"
	if [[ -x "$bin" ]]; then
		echo "nats-server: using cached $bin"
	else
		echo "nats-server: building $bin (takes a minute or two)"
		mkdir -p "$cache/bin"
		local gobin
		gobin="$(mktemp -d "$cache/bin/nats-server-build.XXXXXX")"
		# GOFLAGS=-mod=mod: `go install pkg@version` ignores the repo's go.mod,
		# but a -mod flag inherited from the environment would break it.
		GOBIN="$gobin" GOFLAGS=-mod=mod go install "github.com/nats-io/nats-server/v2@$version"
		mv -f "$gobin/nats-server" "$bin"
		rmdir "$gobin"
	fi
	export CAIRN_NATS_SERVER_BIN="$bin"
}

cairn_nats_server_build
