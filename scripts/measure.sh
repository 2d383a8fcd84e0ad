#!/usr/bin/env bash
# Measures what the README reports and prints it as a markdown table:
#   - size of the static binary (target <= 1.5 MiB),
#   - peak RSS of one probe on a typical ConfigMap (target <= 2 MiB): 10 files of
#     1-4 KiB in the layout the kubelet writes (..<timestamp>/ dir, ..data symlink,
#     one top-level symlink per key),
#   - the time of one `driftprobe liveness` against the classic shell probe
#     `find … | sort | xargs sha256sum | sha256sum`, both run ITERATIONS times in
#     this one run, and their ratio.
#
#   scripts/measure.sh                      # builds with scripts/static-build.sh first
#   DRIFTPROBE=path/to/driftprobe scripts/measure.sh
#   ITERATIONS=500 scripts/measure.sh
#   scripts/measure.sh --readme             # also writes the table into README.md
set -euo pipefail
cd "$(dirname "$0")/.."

# Measure inside a PID namespace of its own, as in a container: PID 1 (this
# script) shares the probes' mount namespace, so driftprobe takes PID 1 as
# the container's entrypoint without scanning /proc (it scans only when PID 1
# lives elsewhere, as with shareProcessNamespace or on a bare host).
if [ -z "${MEASURE_IN_NS:-}" ] && [ "$(id -u)" = 0 ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
    exec env MEASURE_IN_NS=1 unshare --pid --fork --mount-proc bash "$0" "$@"
fi

ITERATIONS=${ITERATIONS:-200}
if [ -z "${DRIFTPROBE:-}" ]; then
    scripts/static-build.sh >&2
    DRIFTPROBE="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/driftprobe"
fi
[ -x "$DRIFTPROBE" ] || { echo "measure.sh: no executable at $DRIFTPROBE" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "measure.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A ConfigMap volume as the kubelet's atomic writer leaves it.
cm="$work/config"
payload="..2025_01_01_00_00_00.123456789"
mkdir -p "$cm/$payload"
for i in $(seq 1 10); do
    size=$((1024 + (i * 337) % 3072))   # 1-4 KiB, deterministic
    head -c "$size" /dev/urandom | base64 -w 76 | head -c "$size" >"$cm/$payload/key-$i.conf"
    chmod 0644 "$cm/$payload/key-$i.conf"
done
ln -s "$payload" "$cm/..data"
for i in $(seq 1 10); do
    ln -s "..data/key-$i.conf" "$cm/key-$i.conf"
done
state="$work/state"

# Record the baseline explicitly: outside a container PID 1 started long before
# these files, so a lazy baseline would (rightly) refuse.
"$DRIFTPROBE" init --state-dir "$state" "$cm" >/dev/null
out=$("$DRIFTPROBE" liveness --state-dir "$state" "$cm") || {
    echo "measure.sh: liveness probe did not pass: $out" >&2
    exit 1
}

# Peak RSS in KiB ("Maximum resident set size" of GNU time -v), max over 5 runs.
peak_rss() {
    local max=0 kib
    for _ in 1 2 3 4 5; do
        kib=$(/usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}')
        [ "$kib" -gt "$max" ] && max=$kib
    done
    echo "$max"
}
rss_liveness=$(peak_rss "$DRIFTPROBE" liveness --state-dir "$state" "$cm")
rss_digest=$(peak_rss "$DRIFTPROBE" digest "$cm")

# Per-run wall time in microseconds of several commands, measured in the same
# run and interleaved in rounds of 10, so that machine noise hits all alike.
# Usage: time_interleaved NAME... ; each NAME is a function running one probe.
declare -A total_ns
time_interleaved() {
    local name rounds=$((ITERATIONS / 10)) start end
    for name in "$@"; do total_ns[$name]=0; done
    for _ in $(seq 1 "$rounds"); do
        for name in "$@"; do
            start=$(date +%s%N)
            for _ in 1 2 3 4 5 6 7 8 9 10; do "$name" >/dev/null; done
            end=$(date +%s%N)
            total_ns[$name]=$((total_ns[$name] + end - start))
        done
    done
    for name in "$@"; do total_ns[$name]=$((total_ns[$name] / (rounds * 10) / 1000)); done
}

# A larger ConfigMap (20 keys of 256 KiB) shows what the stat cache saves:
# the same probe with and without --full.
big="$work/big"
big_payload="..2025_01_01_00_00_00.987654321"
mkdir -p "$big/$big_payload"
for i in $(seq 1 20); do
    head -c 262144 /dev/urandom >"$big/$big_payload/blob-$i.bin"
    ln -s "..data/blob-$i.bin" "$big/blob-$i.bin"
done
ln -s "$big_payload" "$big/..data"
touch -d '2 seconds ago' "$big/$big_payload"/*
"$DRIFTPROBE" init --state-dir "$state" "$big" >/dev/null
"$DRIFTPROBE" liveness --state-dir "$state" "$big" >/dev/null

probe_small() { "$DRIFTPROBE" liveness --state-dir "$state" "$cm"; }
# shellcheck disable=SC2016 # $1 is expanded by the inner sh, as in a probe spec
classic_small() { sh -c 'find -L "$1" -type f ! -path "*/..*" | sort | xargs sha256sum | sha256sum' sh "$cm"; }
probe_big_cached() { "$DRIFTPROBE" liveness --state-dir "$state" "$big"; }
probe_big_full() { "$DRIFTPROBE" liveness --full --state-dir "$state" "$big"; }
classic_small >/dev/null
time_interleaved probe_small classic_small probe_big_cached probe_big_full
us_driftprobe=${total_ns[probe_small]}
us_classic=${total_ns[classic_small]}
us_cached=${total_ns[probe_big_cached]}
us_full=${total_ns[probe_big_full]}

size=$(stat -c %s "$DRIFTPROBE")
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio=$(awk -v a="$us_classic" -v b="$us_driftprobe" 'BEGIN { printf "%.1f", a / b }')
cache_ratio=$(awk -v a="$us_full" -v b="$us_cached" 'BEGIN { printf "%.1f", a / b }')
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)

table=$(cat <<TABLE
| Measure | Value | Target |
|---|---|---|
| Static binary size (\`$(basename "$DRIFTPROBE")\`, x86_64, glibc crt-static) | $size bytes ($(mib "$size") MiB) | ≤ 1.5 MiB |
| Peak RSS, \`driftprobe liveness\` on a 10-file ConfigMap (1-4 KiB each) | $rss_liveness KiB ($(kib_to_mib "$rss_liveness") MiB) | ≤ 2 MiB |
| Peak RSS, \`driftprobe digest\` on the same ConfigMap | $rss_digest KiB ($(kib_to_mib "$rss_digest") MiB) | |
| One \`driftprobe liveness\` probe (wall, mean of $ITERATIONS) | $(ms "$us_driftprobe") ms | |
| One classic shell probe \`find \| sort \| xargs sha256sum \| sha256sum\` (wall, mean of $ITERATIONS) | $(ms "$us_classic") ms | |
| Classic shell probe time ÷ driftprobe time | ${ratio}× | |
| \`liveness\` on a 5 MiB ConfigMap (20 × 256 KiB), stat cache / \`--full\` | $(ms "$us_cached") ms / $(ms "$us_full") ms (${cache_ratio}×) | |

Measured by \`scripts/measure.sh\` on $(nproc) CPU(s), ${cpu:-unknown CPU}, $(date -u +%Y-%m-%d).
TABLE
)
echo "$table"


# The targets the README states.
if [ "$rss_liveness" -gt 2048 ]; then
    echo "measure.sh: peak RSS $rss_liveness KiB is over the 2 MiB target" >&2
    exit 1
fi

# --readme: put the table into README.md between its measure markers.
if [ "${1:-}" = "--readme" ]; then
    TABLE="$table" python3 - README.md <<'PY'
import os, re, sys
path = sys.argv[1]
text = open(path).read()
start, end = "<!-- measure:start -->", "<!-- measure:end -->"
if start not in text or end not in text:
    sys.exit("README.md has no measure markers")
before, rest = text.split(start, 1)
_, after = rest.split(end, 1)
open(path, "w").write(before + start + "\n" + os.environ["TABLE"] + "\n" + end + after)
PY
    echo "README.md updated"
fi
