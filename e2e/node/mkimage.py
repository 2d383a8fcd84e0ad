#!/usr/bin/env python3
"""Writes a one-layer FROM scratch image as a docker-archive tarball (the format
of `docker save`, which `ctr images import` reads), without a docker engine.

  mkimage.py OUT.tar NAME:TAG [--file SRC:DEST[:MODE]]... [--dir DEST:MODE]...
             [--user UID] [--entrypoint PATH]... [--env K=V]...
  mkimage.py OUT.tar NAME:TAG --dockerfile Dockerfile.static --stage prebuilt \
             --context DIR

With --dockerfile, the image is the named stage of that Dockerfile, which must
be `FROM scratch` followed only by COPY (of context files), USER and
ENTRYPOINT (exec form): anything else is refused rather than half-understood.

The layer is reproducible: fixed mtimes, uid/gid 0, sorted entries.
"""

import argparse
import hashlib
import io
import json
import os
import shlex
import sys
import tarfile

MTIME = 0


def parse_stage(dockerfile, stage, context):
    """Returns (files, user, entrypoint) of a FROM scratch stage."""
    files, user, entrypoint = [], None, None
    in_stage = False
    with open(dockerfile, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        op = words[0].upper()
        if op == "FROM":
            if in_stage:
                break
            in_stage = len(words) == 4 and words[2].upper() == "AS" and words[3] == stage
            if in_stage and words[1] != "scratch":
                sys.exit(f"mkimage: stage {stage} is not FROM scratch: {line}")
            continue
        if not in_stage:
            continue
        if op == "COPY" and len(words) == 3 and not words[1].startswith("--"):
            files.append((os.path.join(context, words[1]), words[2], 0o755))
        elif op == "USER" and len(words) == 2:
            user = words[1]
        elif op == "ENTRYPOINT":
            entrypoint = json.loads(line[len("ENTRYPOINT"):].strip())
        else:
            sys.exit(f"mkimage: unsupported instruction in stage {stage}: {line}")
    if not files:
        sys.exit(f"mkimage: no stage {stage} (FROM scratch AS {stage}) with a COPY in {dockerfile}")
    return files, user, entrypoint


def add_dirs(tar, path, seen):
    """Adds the parent directories of path (mode 0755) that are not in yet."""
    parts = path.strip("/").split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        if d in seen:
            continue
        seen.add(d)
        info = tarfile.TarInfo(d)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.mtime = MTIME
        tar.addfile(info)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("name")
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--dir", action="append", default=[])
    ap.add_argument("--user")
    ap.add_argument("--entrypoint", action="append", default=[])
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--dockerfile")
    ap.add_argument("--stage")
    ap.add_argument("--context", default=".")
    a = ap.parse_args()

    files = []
    for spec in a.file:
        src, dest, *mode = spec.split(":")
        files.append((src, dest, int(mode[0], 8) if mode else 0o755))
    user, entrypoint = a.user, a.entrypoint or None
    if a.dockerfile:
        files, user, entrypoint = parse_stage(a.dockerfile, a.stage, a.context)
    dirs = []
    for spec in a.dir:
        dest, mode = spec.split(":")
        dirs.append((dest, int(mode, 8)))

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen = set()
        entries = [(d, None, m) for d, m in dirs] + [(dest, src, m) for src, dest, m in files]
        for dest, src, mode in sorted(entries):
            add_dirs(tar, dest, seen)
            info = tarfile.TarInfo(dest.strip("/"))
            info.mode = mode
            info.mtime = MTIME
            if src is None:
                info.type = tarfile.DIRTYPE
                seen.add(dest.strip("/"))
                tar.addfile(info)
            else:
                if not os.path.isfile(src):
                    sys.exit(f"mkimage: {src} is missing")
                with open(src, "rb") as f:
                    data = f.read()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()

    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": a.env or ["PATH=/usr/local/bin:/usr/bin:/bin:/"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "e2e/node/mkimage.py " + shlex.join(sys.argv[2:])}],
    }
    if user:
        config["config"]["User"] = user
    if entrypoint:
        config["config"]["Entrypoint"] = entrypoint
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id[len("sha256:"):] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [a.name], "Layers": [layer_name]}]

    tmp = a.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as out:
        for name, data in [
            (config_name, config_bytes),
            (layer_name, layer_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = MTIME
            out.addfile(info, io.BytesIO(data))
    os.replace(tmp, a.out)
    print(f"mkimage: {a.name} -> {a.out} ({len(layer_bytes)} byte layer)")


if __name__ == "__main__":
    main()
