#!/usr/bin/env bash
# Benchmarks behind "tiny and fast": builds the static release binaries
# (scripts/static-build.sh: musl, amd64 and arm64) and a do-nothing static
# binary with the same target, flags and profile (the exec floor; musl's is
# about a third of glibc crt-static's), plus the glibc crt-static pair for
# comparison, then prints one table of ratios measured side by side in this run, with the
# targets and pass/miss (bench/bench.py does the measuring; see its doc):
#   1. per-probe wall and CPU time on a 20-key ConfigMap vs the exec floor and
#      vs the classic shell probe (300 invocations each, interleaved), and the
#      probe's own work (probe minus floor) on musl vs glibc,
#   2. hashing throughput on a 500 MiB file vs openssl and sha256sum,
#   3. an unchanged 1,000-file / 100 MiB tree: stat cache vs --full,
#   4. peak RSS of rows 1 and 2 (musl and glibc), 5. binary sizes (amd64 and
#      arm64 musl, glibc), 6. scaling to 10,000 files,
#   7. hostile trees (a sparse 1 TiB file, a symlink fan-out, 5,000 nested
#      volumes, 100,000 empty dirs): refused within the deadline, in 4 MiB.
# Takes about 30 s on 2 CPUs after the build; needs ~700 MB in $TMPDIR.
#
#   bench/run.sh             # the full run
#   bench/run.sh --readme    # also writes the table into doc/performance.md
#   bench/run.sh --smoke     # small sizes, few rounds (CI): checks the bench
#                            # works; fails only on the hard limits (size, RSS)
#   DRIFTPROBE=path FLOOR=path bench/run.sh   # skip the build (and the
#                            # comparison rows); TARGET=triple names its target
set -euo pipefail
cd "$(dirname "$0")/.."

# Measure inside a PID namespace of our own, as in a container: PID 1 (this
# script) shares the probes' mount namespace, so driftprobe takes PID 1 as
# the container's entrypoint without scanning /proc (it scans only when PID 1
# lives elsewhere, as with shareProcessNamespace or on a bare host).
if [ -z "${BENCH_IN_NS:-}" ] && [ "$(id -u)" = 0 ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
    exec env BENCH_IN_NS=1 unshare --pid --fork --mount-proc bash "$0" "$@"
fi
[ -n "${BENCH_IN_NS:-}" ] || echo "bench: not root or no unshare: measuring outside a PID namespace" >&2

opts=()
for arg in "$@"; do
    case "$arg" in
        --smoke) opts+=(--smoke) ;;
        --readme) opts+=(--readme doc/performance.md) ;;
        *) echo "usage: bench/run.sh [--smoke] [--readme]" >&2; exit 2 ;;
    esac
done

# The main build: target/static/amd64 of scripts/static-build.sh (musl, or
# its glibc fallback), against the do-nothing binary of the same target and
# flags: the exec floor. The glibc crt-static pair is built beside it for the
# comparison rows, and the arm64 binary's size is reported when it exists.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
floor_of() {
    local triple=$1
    eval "$(scripts/static-build.sh --env "$triple")"
    cargo build --release --locked --no-default-features --target "$triple" --example exec_floor >&2
    local floor="$TARGET_DIR/$triple/release/examples/exec_floor"
    case "$(file -b "$floor")" in
        *"statically linked"*) echo "$floor" ;;
        *) echo "bench: $floor is not statically linked" >&2; return 1 ;;
    esac
}
more=()
if [ -z "${DRIFTPROBE:-}" ] || [ -z "${FLOOR:-}" ]; then
    scripts/static-build.sh >&2
    TARGET=$(cat "$TARGET_DIR/static/amd64/TARGET")
    DRIFTPROBE="$TARGET_DIR/static/amd64/driftprobe"
    FLOOR=$(floor_of "$TARGET")
    if [ "$TARGET" != x86_64-unknown-linux-gnu ]; then
        glibc=x86_64-unknown-linux-gnu
        (eval "$(scripts/static-build.sh --env "$glibc")" &&
            cargo build --release --locked --no-default-features --target "$glibc" --bin driftprobe >&2)
        more+=(--glibc-driftprobe "$TARGET_DIR/$glibc/release/driftprobe" --glibc-floor "$(floor_of "$glibc")")
    fi
    [ ! -x "$TARGET_DIR/static/arm64/driftprobe" ] || more+=(--arm64 "$TARGET_DIR/static/arm64/driftprobe")
fi

python3 bench/bench.py --driftprobe "$DRIFTPROBE" --floor "$FLOOR" --target "${TARGET:-x86_64-unknown-linux-musl}" \
    "${more[@]}" "${opts[@]}"
