#!/usr/bin/env bash
# Renders the Helm and kustomize examples with the real tools and checks the
# committed rendered.yaml beside each:
#
#   scripts/render-examples.sh           # check: a diff and exit 1 when one is out of date
#   scripts/render-examples.sh --write   # rewrite examples/*/rendered.yaml
#
#   examples/helm       helm template app examples/helm   (the chart uses the
#                       library chart deploy/helm/driftprobe)
#   examples/kustomize  kubectl kustomize examples/kustomize/app   (the
#                       component deploy/kustomize/driftprobe plus a per-workload patch)
#
# Both describe the same Spring-like app with its actuator probes moved into
# driftprobe's, so the script also checks that they render the same pod
# template (lists of named items compared by name: kustomize's strategic
# merge puts added items first, the Helm template appends them), that the
# component alone prepares a labelled StatefulSet and leaves an unlabelled
# Deployment alone, and `helm lint` of both charts.
#
# Tools: $HELM, else what e2e/tools/build.sh builds (helm v4 from the Go module
# proxy, pinned by e2e/tools/go.sum; cached); $KUBECTL, else the node's
# kubectl from e2e/node/build.sh (its kustomize is what `kubectl apply -k`
# runs). Needs python3 with PyYAML (a dependency of kubernetes-validate).
set -euo pipefail
cd "$(dirname "$0")/.."

write=0
case "${1:-}" in
    "") ;;
    --write) write=1 ;;
    *) echo "usage: scripts/render-examples.sh [--write]" >&2; exit 2 ;;
esac

if [ -z "${HELM:-}" ]; then
    HELM=$(e2e/tools/build.sh)
fi
if [ -z "${KUBECTL:-}" ]; then
    version=${DRIFTPROBE_K8S_VERSION:-v1.35.4}
    e2e/node/build.sh "$version" >&2
    KUBECTL=${DRIFTPROBE_NODE_CACHE:-/var/cache/driftprobe-node}/bin/$version/kubectl
fi
"$HELM" version --short
"$KUBECTL" version --client 2>/dev/null | sed -n 's/^Kustomize Version: /kustomize /p'

# Chart structure and template errors (warnings and errors only).
"$HELM" lint --quiet deploy/helm/driftprobe examples/helm

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

header() { # SOURCE COMMAND
    printf '%s\n' \
        "# Rendered from $1 by \`$2\` (scripts/render-examples.sh)." \
        "# Checked in CI against its sources and validated with kubernetes-validate" \
        "# --strict and Pod Security \"restricted\" on a real node. Do not edit: edit" \
        "# the sources and run scripts/render-examples.sh --write."
}
{
    header examples/helm "helm template app examples/helm"
    # helm prints a "# Source:" line before each document: dropped, the header says where it came from.
    "$HELM" template app examples/helm | grep -v '^# Source: '
} >"$tmp/helm.yaml"
{
    header examples/kustomize/app "kubectl kustomize examples/kustomize/app"
    "$KUBECTL" kustomize examples/kustomize/app
} >"$tmp/kustomize.yaml"

python3 - "$tmp/helm.yaml" "$tmp/kustomize.yaml" <<'PY'
import re, sys, yaml

def pod(path):
    deps = [d for d in yaml.safe_load_all(open(path)) if d and d.get("kind") == "Deployment"]
    if len(deps) != 1:
        sys.exit(f"render-examples: {path}: expected one Deployment, got {len(deps)}")
    return deps[0]["spec"]["template"]["spec"]

def norm(x):
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items()}
    if isinstance(x, list):
        items = [norm(i) for i in x]
        if items and all(isinstance(i, dict) and ("name" in i or "mountPath" in i) for i in items):
            items.sort(key=lambda i: (str(i.get("name")), str(i.get("mountPath"))))
        return items
    return x

def unhashed(spec):
    # kustomize's configMapGenerator names the ConfigMap app-config-<hash>
    # (a change rolls the Deployment; the Helm chart's checksum/config
    # annotation does the same): compare the name without the hash.
    for v in spec.get("volumes", []):
        cm = v.get("configMap")
        if cm and re.fullmatch(r".+-[a-z0-9]{10}", cm["name"]):
            cm["name"] = cm["name"][:-11]
    return spec

helm, kust = norm(pod(sys.argv[1])), norm(unhashed(pod(sys.argv[2])))
if helm != kust:
    import difflib
    a = yaml.safe_dump(helm, sort_keys=True).splitlines()
    b = yaml.safe_dump(kust, sort_keys=True).splitlines()
    print("\n".join(difflib.unified_diff(a, b, "helm", "kustomize", lineterm="")))
    sys.exit("render-examples: the Helm chart and the kustomize component render different pod templates")
print("render-examples: the Helm chart and the kustomize component render the same pod template")
PY

# The component by itself: it prepares every labelled workload kind (here a
# StatefulSet that has an init container of its own, which stays) and leaves
# unlabelled ones alone. (Inside the repo: kustomize takes no absolute
# component path.)
check=target/render-check
rm -rf "$check"
mkdir -p "$check"
cat >"$check/kustomization.yaml" <<'EOF'
resources: [workloads.yaml]
components: [../../deploy/kustomize/driftprobe]
EOF
cat >"$check/workloads.yaml" <<'EOF'
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, labels: {driftprobe.io/enabled: "true"}}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      initContainers: [{name: migrate, image: "migrate:1"}]
      containers: [{name: db, image: "db:1"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: plain}
spec:
  selector: {matchLabels: {app: plain}}
  template:
    metadata: {labels: {app: plain}}
    spec:
      containers: [{name: plain, image: "plain:1"}]
EOF
"$KUBECTL" kustomize "$check" >"$tmp/component.yaml"
rm -rf "$check"
python3 - "$tmp/component.yaml" <<'PY'
import sys, yaml
docs = {d["kind"]: d["spec"]["template"]["spec"] for d in yaml.safe_load_all(open(sys.argv[1])) if d}
names = lambda spec, key: sorted(i["name"] for i in spec.get(key, []))
sts, plain = docs["StatefulSet"], docs["Deployment"]
problems = []
if names(sts, "initContainers") != ["install-driftprobe", "migrate"]:
    problems.append(f"labelled StatefulSet init containers: {names(sts, 'initContainers')}")
if names(sts, "volumes") != ["driftprobe", "driftprobe-state"]:
    problems.append(f"labelled StatefulSet volumes: {names(sts, 'volumes')}")
if "initContainers" in plain or "volumes" in plain:
    problems.append("the unlabelled Deployment was changed")
if problems:
    sys.exit("render-examples: deploy/kustomize/driftprobe: " + "; ".join(problems))
print("render-examples: the component prepares labelled workloads (StatefulSet too) and leaves others alone")
PY

stale=0
for name in helm kustomize; do
    file=examples/$name/rendered.yaml
    if [ "$write" = 1 ]; then
        cp "$tmp/$name.yaml" "$file"
        echo "wrote $file"
    elif diff -u --label "$file" --label "rendered now" "$file" "$tmp/$name.yaml"; then
        echo "$file: matches its sources"
    else
        echo "$file is out of date: run scripts/render-examples.sh --write" >&2
        stale=1
    fi
done
exit "$stale"
