#!/usr/bin/env bash
# The SBOM of the static probe (CycloneDX 1.5 JSON), and a check that it lists
# exactly the crates the static build links.
#
#   scripts/sbom.sh
#
# Writes target/x86_64-unknown-linux-musl/release/driftprobe.cdx.json (or for
# the target in DRIFTPROBE_SBOM_TARGET, e.g. scripts/static-build.sh's glibc
# fallback x86_64-unknown-linux-gnu) with
# cargo-cyclonedx (pinned: .ci/run installs it with
#   cargo install --locked cargo-cyclonedx --version 0.5.9
# ), for the same features and target as scripts/static-build.sh. Then it asks
# cargo which library crates that build compiles for the target (its
# compiler-artifact messages: up to date after static-build.sh, so nothing is
# rebuilt) and fails unless each one is in the SBOM with the same version, and
# unless every other SBOM entry is a compile-time-only crate (a proc macro and
# what it uses, built for the host and never linked), which it lists.
set -euo pipefail
cd "$(dirname "$0")/.."

CYCLONEDX_VERSION=0.5.9
TARGET=${DRIFTPROBE_SBOM_TARGET:-x86_64-unknown-linux-musl}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT="$TARGET_DIR/$TARGET/release"

have=$(cargo cyclonedx --version 2>/dev/null || true)
if [[ "$have" != *" $CYCLONEDX_VERSION" ]]; then
    echo "cargo-cyclonedx $CYCLONEDX_VERSION is needed (found: ${have:-none}):" >&2
    echo "  cargo install --locked cargo-cyclonedx --version $CYCLONEDX_VERSION" >&2
    exit 2
fi

mkdir -p "$OUT"
# cargo-cyclonedx writes next to Cargo.toml; move it beside the binary.
cargo cyclonedx --quiet --no-default-features --target "$TARGET" --format json \
    --spec-version 1.5 --no-build-deps --override-filename driftprobe.cdx
mv driftprobe.cdx.json "$OUT/driftprobe.cdx.json"

eval "$(scripts/static-build.sh --env "$TARGET")"
cargo build --release --locked --no-default-features --target "$TARGET" --bin driftprobe \
    --message-format=json-render-diagnostics >"$OUT/driftprobe.artifacts.json"

python3 - "$OUT/driftprobe.cdx.json" "$OUT/driftprobe.artifacts.json" "$TARGET" <<'EOF'
import json, sys

sbom_path, artifacts_path, target = sys.argv[1:]
sbom = json.load(open(sbom_path))
meta = sbom["metadata"]["component"]

linked, host = set(), set()
for line in open(artifacts_path):
    msg = json.loads(line)
    if msg.get("reason") != "compiler-artifact":
        continue
    kinds = msg["target"]["kind"]
    if "custom-build" in kinds or "bin" in kinds:
        continue
    # package_id: "registry+https://…#name@version" (or path+file://…#name@version)
    name_version = msg["package_id"].rsplit("#", 1)[1]
    name, _, version = name_version.rpartition("@")
    if not name:  # old form "…#version" names the crate by its path
        name, version = msg["target"]["name"], name_version
    # With --target, what is linked into the binary is built under
    # target/<triple>/; proc macros and their dependencies for the host.
    if "proc-macro" not in kinds and any(f"/{target}/" in f for f in msg["filenames"]):
        linked.add((name.replace("_", "-"), version))
    else:
        host.add((name.replace("_", "-"), version))

listed = {(c["name"].replace("_", "-"), c["version"]) for c in sbom.get("components", [])}
problems = []
# driftprobe's own library is the SBOM's subject (metadata.component).
ours = {c for c in linked if c[0] == "driftprobe"}
linked -= ours
if meta.get("name") != "driftprobe" or {(meta.get("name"), meta.get("version"))} != ours:
    problems.append(f"the SBOM describes {meta.get('name')} {meta.get('version')}, the build {ours}")
for crate in sorted(linked - listed):
    problems.append("linked but not in the SBOM: %s %s" % crate)
extra = listed - linked
for crate in sorted(extra - host):
    problems.append("in the SBOM but neither linked nor a compile-time crate: %s %s" % crate)
if len(linked) < 5:
    problems.append(f"only {len(linked)} linked crates found: is {artifacts_path} from the static build?")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"SBOM {sbom_path}: driftprobe {meta.get('version')}, {len(listed)} crates, "
      f"each of the {len(linked)} linked ones with its version: "
      + ", ".join("%s %s" % c for c in sorted(linked)))
print("compile-time only (proc macros and their dependencies, not linked): "
      + ", ".join("%s %s" % c for c in sorted(extra)))
EOF
