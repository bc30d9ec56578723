#!/usr/bin/env bash
# Runs all of Cairn's tests on a fresh machine: installs and builds what the
# tests need (every scripts/ci.d/*.sh: FerretDB, Node packages, Chromium, …),
# then vets and tests every package and runs a short fuzzing pass.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
export CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn}"
mkdir -p "$CAIRN_CACHE"

for f in scripts/ci.d/*.sh; do
	[ -e "$f" ] || continue
	echo "==> setup: $f"
	# shellcheck source=/dev/null
	source "$f"
done

echo "==> go vet"
go vet ./...

echo "==> go test (fuzz seed corpora included)"
log="$(mktemp -t cairn-go-test.XXXXXX)"
rc=0
go test -v -count=1 -timeout 20m ./... >"$log" 2>&1 || rc=$?
grep -E '^(ok|FAIL|panic:)|^\s*--- FAIL' "$log" || true
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
if [ "$rc" -ne 0 ]; then
	echo "==> failures (full log: $log)"
	grep -nE -B3 -A40 '^\s*--- FAIL|^panic:|^FAIL\s|\[build failed\]|cannot|undefined' "$log" | head -400 || true
	echo "tests: $passed passed, $failed failed, $skipped skipped"
	exit "$rc"
fi

echo "==> short fuzzing"
fuzztime="${CAIRN_FUZZTIME:-8s}"
go test -run '^$' -fuzz '^FuzzDecodeBatch$' -fuzztime "$fuzztime" .
go test -run '^$' -fuzz '^FuzzReader$' -fuzztime "$fuzztime" ./wal
go test -run '^$' -fuzz '^FuzzDecodeEvents$' -fuzztime "$fuzztime" ./http
echo "==> all tests passed (go test log: $log)"
echo "tests: $passed passed, $failed failed, $skipped skipped"
