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
set -euo pipefail
cd "$(dirname "$0")/.."

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

# Per-probe wall time in microseconds, averaged over ITERATIONS runs.
time_probe() {
    local start end
    start=$(date +%s%N)
    for _ in $(seq 1 "$ITERATIONS"); do
        "$@" >/dev/null
    done
    end=$(date +%s%N)
    echo $(((end - start) / ITERATIONS / 1000))
}
# shellcheck disable=SC2016 # $1 is expanded by the inner sh, as in a probe spec
classic=(sh -c 'find -L "$1" -type f ! -path "*/..*" | sort | xargs sha256sum | sha256sum' sh "$cm")
"${classic[@]}" >/dev/null
us_driftprobe=$(time_probe "$DRIFTPROBE" liveness --state-dir "$state" "$cm")
us_classic=$(time_probe "${classic[@]}")

size=$(stat -c %s "$DRIFTPROBE")
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio=$(awk -v a="$us_classic" -v b="$us_driftprobe" 'BEGIN { printf "%.1f", a / b }')
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)

cat <<TABLE
| Measure | Value | Target |
|---|---|---|
| Static binary size (\`$(basename "$DRIFTPROBE")\`, x86_64, glibc crt-static) | $size bytes ($(mib "$size") MiB) | ≤ 1.5 MiB |
| Peak RSS, \`driftprobe liveness\` on a 10-file ConfigMap (1-4 KiB each) | $rss_liveness KiB ($(kib_to_mib "$rss_liveness") MiB) | ≤ 2 MiB |
| Peak RSS, \`driftprobe digest\` on the same ConfigMap | $rss_digest KiB ($(kib_to_mib "$rss_digest") MiB) | |
| One \`driftprobe liveness\` probe (wall, mean of $ITERATIONS) | $(ms "$us_driftprobe") ms | |
| One classic shell probe \`find \| sort \| xargs sha256sum \| sha256sum\` (wall, mean of $ITERATIONS) | $(ms "$us_classic") ms | |
| Classic shell probe time ÷ driftprobe time | ${ratio}× | |

Measured by \`scripts/measure.sh\` on $(nproc) CPU(s), ${cpu:-unknown CPU}, $(date -u +%Y-%m-%d).
TABLE
