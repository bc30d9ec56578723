# shellcheck shell=bash
# Builds golangci-lint (pinned below) once with the local Go toolchain and
# exports CAIRN_GOLANGCI_LINT for scripts/test.sh's lint step, which reads the
# committed .golangci.yml. Sourced by scripts/test.sh from the repo root with
# `set -euo pipefail`. Cached by lib/go-install.sh (cold build: a few minutes
# on 2 cores).

# shellcheck source=lib/go-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-install.sh"
cairn_go_install golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint v2.15.0 CAIRN_GOLANGCI_LINT
