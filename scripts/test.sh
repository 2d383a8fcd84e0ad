#!/usr/bin/env bash
# The test command: bash scripts/test.sh
#
# 1. builds the static binaries (scripts/static-build.sh: musl, amd64 and
#    arm64) that the docker end-to-end test packages into FROM scratch images
#    and tests/arch.rs runs through qemu-aarch64,
# 2. starts dockerd if it is installed but not running (scripts/start-dockerd.sh),
# 3. as root, brings up a real single-node Kubernetes for the real-node suite
#    (e2e/node/up.sh in a temp dir; the first run builds Kubernetes, ~4 minutes)
#    and brings it down afterwards, unless DRIFTPROBE_REALNODE already names a
#    node that is up (.ci/run does that) or is 0 (no real node),
# 4. runs `cargo test` (unit tests, the CLI tests, the docker end-to-end test,
#    the real-node suite tests/realnode.rs).
#
# Without docker the end-to-end test prints why it skipped; with
# DRIFTPROBE_REQUIRE_E2E=1 (set by .ci/run) a skip is a failure. The same for
# the real-node suite and DRIFTPROBE_REQUIRE_REALNODE=1.
# Extra arguments go to cargo test, e.g. `bash scripts/test.sh docker_e2e`.
# The arm64 runs (.ci/run does them too): the CLI tests with
#   DRIFTPROBE_TEST_BIN=target/static/arm64/driftprobe DRIFTPROBE_TEST_RUNNER=qemu-aarch64 \
#       bash scripts/test.sh --test cli
# and the unit tests with cargo test --target aarch64-unknown-linux-musl --lib
# (CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld and _RUNNER=qemu-aarch64);
# .ci/run lists the tests that cannot pass under qemu-user, and why.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/static-build.sh
if ! scripts/start-dockerd.sh; then
    echo "test.sh: no docker daemon; the docker end-to-end test will skip (or fail with DRIFTPROBE_REQUIRE_E2E=1)" >&2
fi

realnode_dir=""
if [ -z "${DRIFTPROBE_REALNODE:-}" ] && [ "$(id -u)" = 0 ]; then
    realnode_dir=$(mktemp -d /tmp/driftprobe-node.XXXXXX)
    trap 'e2e/node/down.sh "$realnode_dir" >&2' EXIT
    if e2e/node/up.sh "$realnode_dir"; then
        export DRIFTPROBE_REALNODE=$realnode_dir
    else
        echo "test.sh: the real node did not come up; the real-node suite will skip (or fail with DRIFTPROBE_REQUIRE_REALNODE=1)" >&2
    fi
fi
cargo test "$@"
