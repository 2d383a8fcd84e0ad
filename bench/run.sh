#!/usr/bin/env bash
# Benchmarks behind "tiny and fast": builds the static release binary and a
# do-nothing static binary with the same flags and profile (the exec floor),
# then prints one table of ratios measured side by side in this run, with the
# targets and pass/miss (bench/bench.py does the measuring; see its doc):
#   1. per-probe wall and CPU time on a 20-key ConfigMap vs the exec floor and
#      vs the classic shell probe (300 invocations each, interleaved),
#   2. hashing throughput on a 500 MiB file vs openssl and sha256sum,
#   3. an unchanged 1,000-file / 100 MiB tree: stat cache vs --full,
#   4. peak RSS of rows 1 and 2, 5. binary size, 6. scaling to 10,000 files,
#   7. hostile trees (a sparse 1 TiB file, a symlink fan-out, 5,000 nested
#      volumes, 100,000 empty dirs): refused within the deadline, in 4 MiB.
# Takes about 30 s on 2 CPUs after the build; needs ~700 MB in $TMPDIR.
#
#   bench/run.sh             # the full run
#   bench/run.sh --readme    # also writes the table into README.md
#   bench/run.sh --smoke     # small sizes, few rounds (CI): checks the bench
#                            # works; fails only on the hard limits (size, RSS)
#   DRIFTPROBE=path FLOOR=path bench/run.sh   # skip the build
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
        --readme) opts+=(--readme README.md) ;;
        *) echo "usage: bench/run.sh [--smoke] [--readme]" >&2; exit 2 ;;
    esac
done

TARGET=x86_64-unknown-linux-gnu
OUT="${CARGO_TARGET_DIR:-target}/$TARGET/release"
if [ -z "${DRIFTPROBE:-}" ] || [ -z "${FLOOR:-}" ]; then
    scripts/static-build.sh >&2
    # The floor gets exactly the flags of the one documented static build.
    eval "$(grep '^export RUSTFLAGS=' scripts/static-build.sh)"
    cargo build --release --locked --no-default-features --target "$TARGET" --example exec_floor >&2
    DRIFTPROBE="$OUT/driftprobe"
    FLOOR="$OUT/examples/exec_floor"
    case "$(file -b "$FLOOR")" in
        *"statically linked"*) ;;
        *) echo "bench: $FLOOR is not statically linked" >&2; exit 1 ;;
    esac
fi

python3 bench/bench.py --driftprobe "$DRIFTPROBE" --floor "$FLOOR" "${opts[@]}"
