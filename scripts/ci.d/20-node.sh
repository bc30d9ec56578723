# shellcheck shell=bash
# Installs the better-auth client project (test/betterauth-client, pinned by
# its package-lock.json) that cmd/cairn's TestE2EBetterAuthClient runs in
# Node against a real Cairn, and exports CAIRN_BETTERAUTH_CLIENT_DIR.
# Sourced by scripts/test.sh from the repo root with `set -euo pipefail`.
# `npm ci` runs only when node_modules is missing or the lock file changed
# (see lib/npm-ci.sh).

# shellcheck source=lib/npm-ci.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/npm-ci.sh"
cairn_npm_ci betterauth-client "$PWD/test/betterauth-client"
export CAIRN_BETTERAUTH_CLIENT_DIR="$PWD/test/betterauth-client"
