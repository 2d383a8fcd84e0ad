#!/usr/bin/env bash
# Makes sure a docker daemon answers: does nothing if `docker info` already works,
# otherwise starts `dockerd` in the background (log: /tmp/dockerd.log) and waits
# for it. Needs root and the engine (apt-get install docker.io); exits non-zero
# if the daemon cannot be started. Idempotent.
set -euo pipefail

if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "start-dockerd.sh: dockerd not installed (apt-get install docker.io)" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "start-dockerd.sh: dockerd is not running and only root can start it" >&2
    exit 1
fi
echo "start-dockerd.sh: starting dockerd (log: /tmp/dockerd.log)" >&2
nohup dockerd >>/tmp/dockerd.log 2>&1 &
for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.5
done
echo "start-dockerd.sh: dockerd did not answer within 60s; see /tmp/dockerd.log:" >&2
tail -n 20 /tmp/dockerd.log >&2
exit 1
