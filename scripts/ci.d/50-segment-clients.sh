# shellcheck shell=bash
# Installs the Segment SDK project (test/segment-clients, pinned by its
# package-lock.json: @segment/analytics-node 3.1.0 and
# @segment/analytics-next 1.84.3) that cmd/cairn's TestE2ESegmentNode (Node)
# and TestE2ESegmentBrowser (headless Chromium) run against a real Cairn, and
# exports CAIRN_SEGMENT_CLIENTS_DIR. Sourced by scripts/test.sh from the repo
# root with `set -euo pipefail`. `npm ci` runs only when node_modules is
# missing or the lock file changed (see lib/npm-ci.sh).

# shellcheck source=lib/npm-ci.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/npm-ci.sh"
cairn_npm_ci segment-clients "$PWD/test/segment-clients"
export CAIRN_SEGMENT_CLIENTS_DIR="$PWD/test/segment-clients"
