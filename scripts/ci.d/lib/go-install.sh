# shellcheck shell=bash
# cairn_go_install NAME PACKAGE VERSION VAR: builds PACKAGE@VERSION (its
# binary is NAME) once with `go install` and exports VAR as its path. The
# binary is cached under ${CAIRN_CACHE:-$HOME/.cache/cairn}/bin keyed by
# version and Go version, so a new pin or toolchain rebuilds it. Sourced by
# the ci.d scripts of Go-built tools (40-golangci-lint.sh, 60-nats.sh); not
# run by scripts/test.sh itself (it sources only scripts/ci.d/*.sh).

cairn_go_install() {
	local name="$1" pkg="$2" version="$3" var="$4"
	local cache="${CAIRN_CACHE:-$HOME/.cache/cairn}"
	local gover
	gover="$(go env GOVERSION)"
	local bin="$cache/bin/$name-$version-$gover"
	if [[ -x "$bin" ]]; then
		echo "$name: using cached $bin"
	else
		echo "$name: building $bin (takes a few minutes)"
		mkdir -p "$cache/bin"
		local gobin
		gobin="$(mktemp -d "$cache/bin/$name-build.XXXXXX")"
		# GOFLAGS=-mod=mod: `go install pkg@version` ignores the repo's go.mod,
		# but a -mod flag inherited from the environment would break it.
		GOBIN="$gobin" GOFLAGS=-mod=mod go install "$pkg@$version"
		mv -f "$gobin/$name" "$bin"
		rmdir "$gobin"
	fi
	export "$var=$bin"
}
