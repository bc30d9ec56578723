# shellcheck shell=bash
# Builds nats-server (pinned below) once with `go install` and exports
# CAIRN_NATS_SERVER_BIN for the multi-node tests (jetstream/, cmd/cairn's
# cluster e2e tests) and scripts/cluster.sh. Sourced by scripts/test.sh from
# the repo root with `set -euo pipefail`. Cached by lib/go-install.sh (cold
# build: a minute or two on 2 cores).

# shellcheck source=lib/go-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-install.sh"
cairn_go_install nats-server github.com/nats-io/nats-server/v2 v2.15.2 CAIRN_NATS_SERVER_BIN
