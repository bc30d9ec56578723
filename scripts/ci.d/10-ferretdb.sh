# shellcheck shell=bash
# Builds the FerretDB test server (tools/ferretdb, its own Go module) once and
# exports CAIRN_FERRETDB_BIN for the MongoDB tests (mongo/, cmd/cairn).
# Sourced by scripts/test.sh from the repo root with `set -euo pipefail`.
# The binary is cached under ${CAIRN_CACHE:-$HOME/.cache/cairn}/bin and rebuilt
# only when the sources in tools/ferretdb change (cold build: about 1-2 min).

cairn_ferretdb_build() {
	local cache="${CAIRN_CACHE:-$HOME/.cache/cairn}"
	local bin="$cache/bin/ferretdb-v1.24.2"
	local stamp="$bin.src-sha256"
	local src
	src="$(cat tools/ferretdb/go.mod tools/ferretdb/go.sum tools/ferretdb/main.go | sha256sum | cut -d' ' -f1)"
	if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$src" ]]; then
		echo "ferretdb: using cached $bin"
	else
		echo "ferretdb: building $bin (FerretDB v1.24.2, takes a minute or two)"
		mkdir -p "$cache/bin"
		(cd tools/ferretdb && go build -trimpath -buildvcs=false -o "$bin.tmp" .)
		mv -f "$bin.tmp" "$bin"
		printf '%s\n' "$src" >"$stamp"
	fi
	export CAIRN_FERRETDB_BIN="$bin"
}

cairn_ferretdb_build
