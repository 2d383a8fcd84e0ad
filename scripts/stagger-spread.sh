#!/usr/bin/env bash
# How `--stagger` offsets of real pod names spread over the window (issue 17 §4).
#
#   scripts/stagger-spread.sh [--readme] [--trials N] [--restart SECONDS] [--binary PATH]
#
# Each trial is one Deployment: a fresh ReplicaSet hash and pod names the way
# the ReplicaSet controller makes them (`web-5d8f7c9b6-x7k2p`: 10 and 5
# characters of "bcdfghjklmnpqrstvwxz2456789"). Every pod's offset comes from
# the real binary: `driftprobe status --json --stagger W` run with that pod
# name as the UTS hostname (unshare --uts, as the kubelet gives each pod its
# own; probe::hostname reads /proc/sys/kernel/hostname). For N replicas and a
# window W it reports how often two pods land within one restart time
# (default 30 s) of each other, next to what uniform random offsets give:
#   exact (spacings of N uniform points): 1 - max(0, 1 - (N-1)r/W)^N
#   birthday approximation:               1 - exp(-N(N-1)/2 * (2r/W - (r/W)^2))
# and the median gap between the two closest pods.
#
# --readme replaces the table in doc/adoption.md between the stagger-spread markers.
# Needs root (unshare), python3 and a built driftprobe (default: the static
# build, then target/release, then target/debug). Names come from a fixed seed,
# so the table is reproducible. 200 trials x 50 pods x 3 windows = 30,000
# runs of the binary: a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

readme=0
trials=200
restart=30
binary=""
while [ $# -gt 0 ]; do
    case $1 in
        --readme) readme=1 ;;
        --trials) trials=$2; shift ;;
        --restart) restart=$2; shift ;;
        --binary) binary=$2; shift ;;
        *) echo "usage: $0 [--readme] [--trials N] [--restart SECONDS] [--binary PATH]" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$binary" ]; then
    for b in target/static/amd64/driftprobe target/release/driftprobe target/debug/driftprobe; do
        if [ -x "$b" ]; then binary=$b; break; fi
    done
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
    echo "no driftprobe binary: run scripts/static-build.sh or cargo build first" >&2
    exit 2
fi
binary=$(realpath "$binary")

work=$(mktemp -d /tmp/driftprobe-stagger.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/config"
echo "x" >"$work/config/app.conf"

table=$(unshare --uts python3 - "$binary" "$work" "$trials" "$restart" <<'EOF'
import json, math, random, socket, statistics, subprocess, sys

binary, work, trials, restart = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
REPLICAS = [2, 3, 5, 8, 20, 50]
WINDOWS = [("2m", 120.0), ("10m", 600.0), ("1h", 3600.0)]
rng = random.Random(17)

def offset(name, window):
    socket.sethostname(name)
    out = subprocess.run(
        [binary, "status", "--json", "--stagger", window,
         "--state-dir", work + "/state", work + "/config"],
        capture_output=True, env={"PATH": "/usr/bin:/bin"})
    # status exits 1 here (no baseline yet): the offset is printed all the same.
    return json.loads(out.stdout)["stagger_offset_ms"] / 1000.0

def rand(n):
    return "".join(rng.choice(ALPHABET) for _ in range(n))

# One Deployment per trial; its first N pods form the N-replica case.
deployments = []
for _ in range(trials):
    rs = rand(10)
    names, seen = [], set()
    while len(names) < max(REPLICAS):
        n = "web-%s-%s" % (rs, rand(5))
        if n not in seen:
            seen.add(n)
            names.append(n)
    deployments.append(names)

rows = []
for label, w in WINDOWS:
    offsets = [[offset(n, label) for n in names] for names in deployments]
    for n in REPLICAS:
        hits, gaps = 0, []
        for offs in offsets:
            s = sorted(offs[:n])
            gap = min(b - a for a, b in zip(s, s[1:]))
            gaps.append(gap)
            hits += gap < restart
        exact = 1 - max(0.0, 1 - (n - 1) * restart / w) ** n
        pair = 2 * restart / w - (restart / w) ** 2
        approx = 1 - math.exp(-n * (n - 1) / 2 * pair)
        rows.append((n, label, hits / trials, exact, approx, statistics.median(gaps)))

def pct(p):
    return "%d %%" % round(100 * p)

def secs(s):
    return "%.1f s" % s if s < 60 else "%dm%02ds" % (s // 60, s % 60)

print("| replicas | `--stagger` | two pods within %gs (measured) | uniform offsets, exact | birthday approximation | median gap of the closest two |" % restart)
print("| ---: | --- | ---: | ---: | ---: | ---: |")
for n, label, measured, exact, approx, gap in rows:
    print("| %d | %s | %s | %s | %s | %s |" % (n, label, pct(measured), pct(exact), pct(approx), secs(gap)))
print()
print("%d Deployments per row (fixed seed), each a fresh ReplicaSet hash with random pod suffixes; offsets from `driftprobe status --stagger` run under each pod name (`scripts/stagger-spread.sh --readme`)." % trials)
EOF
)
if [ "$readme" = 1 ]; then
    python3 - "$table" <<'EOF'
import sys
begin, end = "<!-- stagger-spread:begin -->", "<!-- stagger-spread:end -->"
text = open("doc/adoption.md").read()
head, sep, rest = text.partition(begin)
if not sep or end not in rest:
    sys.exit("doc/adoption.md has no stagger-spread markers")
_, _, tail = rest.partition(end)
open("doc/adoption.md", "w").write(head + begin + "\n" + sys.argv[1] + "\n" + end + tail)
EOF
    echo "doc/adoption.md: stagger table updated"
else
    echo "$table"
fi
