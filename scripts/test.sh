#!/usr/bin/env bash
# The test command: bash scripts/test.sh
#
# 1. builds the static binaries (scripts/static-build.sh) that the docker
#    end-to-end test packages into FROM scratch images,
# 2. starts dockerd if it is installed but not running (scripts/start-dockerd.sh),
# 3. runs `cargo test` (unit tests, the CLI tests, the docker end-to-end test).
#
# Without docker the end-to-end test prints why it skipped; with
# DRIFTPROBE_REQUIRE_E2E=1 (set by .ci/run) a skip is a failure.
# Extra arguments go to cargo test, e.g. `bash scripts/test.sh docker_e2e`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/static-build.sh
if ! scripts/start-dockerd.sh; then
    echo "test.sh: no docker daemon; the docker end-to-end test will skip (or fail with DRIFTPROBE_REQUIRE_E2E=1)" >&2
fi
cargo test "$@"
