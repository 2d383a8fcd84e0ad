#!/usr/bin/env bash
# Runs the real-node suite (tests/realnode.rs) on a real single-node Kubernetes:
#
#   scripts/realnode.sh [FILTER...]       # on DRIFTPROBE_K8S_VERSION (default v1.35.4)
#   scripts/realnode.sh --readme          # on every version of DRIFTPROBE_README_VERSIONS
#                                         # (default "v1.35.4 v1.20.2"), then writes
#                                         # the real-node table in doc/testing.md
#
# If DRIFTPROBE_REALNODE names a node that is up (e2e/node/up.sh DIR), that one
# is used and left running; otherwise a node is brought up in a temp dir, for
# each version, and brought down afterwards (also on failure or Ctrl-C). The
# first run builds Kubernetes (e2e/node/build.sh: ~4 minutes; cached after in
# DRIFTPROBE_NODE_CACHE, default /var/cache/driftprobe-node). Needs root.
# Set DRIFTPROBE_REALNODE_TIMELINE=1 to print every scenario's timeline, and
# DRIFTPROBE_REALNODE_KEEP=1 to keep their namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

readme=0
filters=()
for a in "$@"; do
    case "$a" in
        --readme) readme=1 ;;
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) filters+=("$a") ;;
    esac
done
if [ "$readme" = 1 ]; then
    [ "${#filters[@]}" -eq 0 ] || { echo "realnode.sh: --readme runs every scenario (no filters)" >&2; exit 2; }
    read -r -a versions <<<"${DRIFTPROBE_README_VERSIONS:-v1.35.4 v1.20.2}"
else
    versions=("${DRIFTPROBE_K8S_VERSION:-v1.35.4}")
fi

scripts/static-build.sh >/dev/null
cargo build --tests --test realnode -q

node_dir=""
cleanup() {
    if [ -n "$node_dir" ]; then
        e2e/node/down.sh "$node_dir" >&2 || true
        node_dir=""
    fi
}
trap cleanup EXIT INT TERM

results=$(mktemp -d)
status=0
for version in "${versions[@]}"; do
    log=$results/$version.log
    if [ -n "${DRIFTPROBE_REALNODE:-}" ] && [ "${DRIFTPROBE_REALNODE}" != 0 ] && [ -f "$DRIFTPROBE_REALNODE/node.env" ] && [ "${#versions[@]}" -eq 1 ]; then
        dir=$DRIFTPROBE_REALNODE
    else
        node_dir=$(mktemp -d /tmp/driftprobe-node.XXXXXX)
        echo "=== Kubernetes $version: bringing a node up in $node_dir"
        DRIFTPROBE_K8S_VERSION=$version e2e/node/up.sh "$node_dir"
        dir=$node_dir
    fi
    echo "=== Kubernetes $version: running the real-node suite"
    if ! DRIFTPROBE_REALNODE=$dir DRIFTPROBE_REQUIRE_REALNODE=1 cargo test -q --test realnode -- "${filters[@]}" 2>&1 | tee "$log"; then
        status=1
    fi
    cleanup
done

if [ "$readme" = 1 ]; then
    cargo test -q --test realnode -- --table >"$results/table"
    python3 - doc/testing.md "$results" "${versions[@]}" <<'PY'
import datetime, os, re, sys
path, results, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [l for l in open(os.path.join(results, "table")).read().splitlines() if l.startswith("| `")]
outcome = {}
for v in versions:
    log = open(os.path.join(results, v + ".log")).read()
    for m in re.finditer(r"^  (\w+) +(passed|FAILED) \((\d+)s\)$", log, re.M):
        outcome[(v, m.group(1))] = m.group(2)
lines = ["| scenario | what the real kubelet and driftprobe do | " + " | ".join(versions) + " |",
         "| --- | --- |" + " --- |" * len(versions)]
for row in rows:
    name = row.split("`")[1]
    cells = [outcome.get((v, name), "not run") for v in versions]
    lines.append(row + " " + " | ".join(cells) + " |")
passed = [v for v in versions if all(outcome.get((v, r.split("`")[1])) == "passed" for r in rows)]
lines.append("")
lines.append("Run by `scripts/realnode.sh --readme` on {} CPU(s), {}: all scenarios passed on {}.".format(
    os.cpu_count(), datetime.date.today().isoformat(), ", ".join(passed) if passed else "no version"))
text = open(path).read()
start, end = "<!-- realnode:start -->", "<!-- realnode:end -->"
if start not in text or end not in text:
    sys.exit(path + " has no realnode markers")
before, rest = text.split(start, 1)
_, after = rest.split(end, 1)
open(path, "w").write(before + start + "\n" + "\n".join(lines) + "\n" + end + after)
print(path + " updated")
PY
fi
rm -rf "$results"
exit "$status"
