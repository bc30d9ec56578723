# Cairn developer shortcuts. Each target is one plain command; run them from the
# repository root.
.PHONY: run test bench bench-quick

## run: start the server (embedded store, ./data, port 3000)
run:
	go run ./cmd/cairn serve

## test: what CI runs (installs test components; tidy, gofmt, vet, golangci-lint; tests; fuzzing)
test:
	bash scripts/test.sh

## bench: the full benchmark suite (several minutes; writes bench-results.json)
bench:
	go run ./cmd/cairn bench

## bench-quick: a smoke run of the suite (a few minutes)
bench-quick:
	go run ./cmd/cairn bench --quick
