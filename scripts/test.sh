#!/usr/bin/env bash
# Runs all of Cairn's checks and tests on a fresh machine: installs and builds
# what they need (every scripts/ci.d/*.sh: FerretDB, Node packages, Chromium,
# golangci-lint, …), then checks that go.mod/go.sum are tidy, that every Go
# file is gofmt-formatted, go vet and golangci-lint (.golangci.yml), and only
# then tests every package and runs a short fuzzing pass. Any failed check
# stops the run before the tests, after all checks have reported.
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

checks_failed=()

echo "==> go mod tidy -diff (go.mod and go.sum must be tidy)"
if ! go mod tidy -diff; then
	echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result"
	checks_failed+=(tidy)
fi

echo "==> gofmt -l"
# Tracked and new (not ignored) Go files, so node_modules and caches stay out.
gofiles=()
while IFS= read -r f; do
	[ -f "$f" ] && gofiles+=("$f")
done < <(git ls-files --cached --others --exclude-standard -- '*.go')
if [ "${#gofiles[@]}" -eq 0 ]; then
	gofiles=(.) # not a git checkout: every Go file under the repo
fi
unformatted="$(gofmt -l "${gofiles[@]}")"
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted (run 'gofmt -w' on them):"
	echo "$unformatted"
	checks_failed+=(gofmt)
fi

echo "==> go vet"
go vet ./... || checks_failed+=(vet)

echo "==> golangci-lint ($("$CAIRN_GOLANGCI_LINT" version --short 2>/dev/null || echo '?'), .golangci.yml)"
"$CAIRN_GOLANGCI_LINT" run ./... || checks_failed+=(golangci-lint)

if [ "${#checks_failed[@]}" -ne 0 ]; then
	echo "==> checks failed: ${checks_failed[*]} (tests not run)"
	exit 1
fi

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
# Every fuzz target in the repository, each for CAIRN_FUZZTIME inputs. The
# budget is a count ("40000x"), not a duration: with a duration, Go 1.26's
# fuzzing coordinator can report "context deadline exceeded" at the deadline
# with no failing input (golang/go#75804, fixed in Go 1.27), and a loaded CI
# machine hits that race. A count has no deadline to race; a hanging input
# is still caught by the engine's own per-input timeout and written under
# testdata/fuzz like any other failure. 40000 inputs take 1-14 s per target
# on 2 cores, about a minute in all.
fuzztime="${CAIRN_FUZZTIME:-40000x}"
cairn_fuzz() {
	local pkg="$1" name="$2" out
	if out="$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1)"; then
		echo "$out" | tail -n 1
		return 0
	fi
	echo "$out"
	echo "fuzz: $pkg $name failed"
	return 1
}
fuzz_targets='. FuzzDecodeBatch
./wal FuzzReader
./wal FuzzScan
./http FuzzDecodeEvents
./segment FuzzDecode
./segment FuzzParseObject
./betterauth FuzzSignerVerify
./mongo FuzzEscapeKey
./mongo FuzzPayloadRoundTrip
./mongo FuzzDecodeEvent'
# Every fuzz target in the tree must be in the list.
listed=$(wc -l <<<"$fuzz_targets")
found=$(git ls-files -co --exclude-standard -- '*_test.go' | xargs grep -h '^func Fuzz' | wc -l)
if [[ "$found" -ne "$listed" ]]; then
	echo "fuzz: $found fuzz targets in the tree but $listed in scripts/test.sh's list; add the new ones"
	exit 1
fi
while read -r pkg name; do
	cairn_fuzz "$pkg" "$name"
done <<<"$fuzz_targets"
echo "==> all tests passed (go test log: $log)"
echo "tests: $passed passed, $failed failed, $skipped skipped"
