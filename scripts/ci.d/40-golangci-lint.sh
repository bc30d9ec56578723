# shellcheck shell=bash
# Builds golangci-lint (pinned below) once with the local Go toolchain and
# exports CAIRN_GOLANGCI_LINT for scripts/test.sh's lint step, which reads the
# committed .golangci.yml. Sourced by scripts/test.sh from the repo root with
# `set -euo pipefail`. The binary is cached under
# ${CAIRN_CACHE:-$HOME/.cache/cairn}/bin keyed by version and Go version, so a
# new pin or toolchain rebuilds it (cold build: a few minutes on 2 cores).

cairn_golangci_lint_build() {
	local version="v2.15.0"
	local cache="${CAIRN_CACHE:-$HOME/.cache/cairn}"
	local gover
	gover="$(go env GOVERSION)"
	local bin="$cache/bin/golangci-lint-$version-$gover"
	if [[ -x "$bin" ]]; then
		echo "golangci-lint: using cached $bin"
	else
		echo "golangci-lint: building $bin (takes a few minutes)"
		mkdir -p "$cache/bin"
		local gobin
		gobin="$(mktemp -d "$cache/bin/golangci-lint-build.XXXXXX")"
		# GOFLAGS=-mod=mod: `go install pkg@version` ignores the repo's go.mod,
		# but a -mod flag inherited from the environment would break it.
		GOBIN="$gobin" GOFLAGS=-mod=mod go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
		mv -f "$gobin/golangci-lint" "$bin"
		rmdir "$gobin"
	fi
	export CAIRN_GOLANGCI_LINT="$bin"
}

cairn_golangci_lint_build
