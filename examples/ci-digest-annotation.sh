#!/usr/bin/env bash
# CI step for examples/04-digest-annotation.yaml: publish the ConfigMap from a
# directory of config files and put its digest into the pod template, so a config
# change becomes an ordinary rolling update.
#
#   examples/ci-digest-annotation.sh CONFIG_DIR [CONFIGMAP] [DEPLOYMENT]
#
# Needs kubectl (with a context) and a driftprobe binary (set DRIFTPROBE to its path,
# e.g. target/static/amd64/driftprobe from scripts/static-build.sh).
# For a Secret, set DRIFTPROBE_KEY_FILE to a key shared with the pod: the annotation
# then holds hmac-sha256:<hex>, from which no value can be guessed (README, "What a
# digest reveals").
set -euo pipefail

config_dir=${1:?usage: $0 CONFIG_DIR [CONFIGMAP] [DEPLOYMENT]}
configmap=${2:-report-config}
deployment=${3:-report}
driftprobe=${DRIFTPROBE:-driftprobe}

digest=$("$driftprobe" digest "$config_dir")
echo "config digest of $config_dir: $digest"

# 1. Update the ConfigMap (one key per file, like the mounted volume).
kubectl create configmap "$configmap" --from-file="$config_dir" --dry-run=client -o yaml |
    kubectl apply -f -

# 2. Annotate the pod template; a changed value starts a rolling update, an
#    unchanged one is a no-op.
kubectl patch deployment "$deployment" --type merge -p \
    "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"driftprobe.io/config-digest\":\"$digest\"}}}}}"
kubectl rollout status deployment "$deployment" --timeout=5m
