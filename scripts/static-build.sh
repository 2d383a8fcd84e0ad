#!/usr/bin/env bash
# The one documented static build (also used by .ci/run and the Dockerfile.static builder stage).
#
#   RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static -C link-arg=-Wl,--icf=all" \\
#       cargo build --release --no-default-features --target x86_64-unknown-linux-gnu
#
# Only the glibc target is installed here, so "static" means glibc with crt-static.
# relocation-model=static makes it a classic static executable rather than a
# static PIE (file(1) says "statically linked"; ~60 KiB smaller), and --icf=all
# (identical code folding, rust-lld: the default linker since Rust 1.90) saves
# another ~13 KiB.
# --no-default-features leaves out the `completions` feature (clap_complete and
# clap_mangen for `driftprobe completions|man`): a probe in a container needs
# neither, and they cost ~300 KiB. The slim binary says where to get
# them instead (checked below).
# Where the musl target exists, `cargo build --release --target x86_64-unknown-linux-musl`
# is the alternative (musl binaries are static by default).
#
# Also builds examples/demo_server.rs the same way (the docker end-to-end test runs it
# in a FROM scratch image), then checks with `file` that both are statically linked.
# Output:
#   target/x86_64-unknown-linux-gnu/release/driftprobe
#   target/x86_64-unknown-linux-gnu/release/examples/demo_server
#   target/x86_64-unknown-linux-gnu/release/driftprobe.cdx.json (the SBOM: scripts/sbom.sh, when
#   cargo-cyclonedx is installed)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT="$TARGET_DIR/$TARGET/release"

export RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static -C link-arg=-Wl,--icf=all"
cargo build --release --locked --no-default-features --target "$TARGET" --bin driftprobe --example demo_server

status=0
for bin in "$OUT/driftprobe" "$OUT/examples/demo_server"; do
    desc=$(file -b "$bin")
    case "$desc" in
        *"statically linked"*)
            echo "static: $bin ($(stat -c %s "$bin") bytes)" ;;
        *)
            echo "NOT static: $bin: $desc" >&2
            status=1 ;;
    esac
done
[ "$status" -eq 0 ] || exit "$status"

# The size limit the README states: at most 2 MiB (the goal is 1.6 MiB).
size=$(stat -c %s "$OUT/driftprobe")
if [ "$size" -gt $((2 * 1024 * 1024)) ]; then
    echo "driftprobe is $size bytes, over the 2 MiB (2097152 bytes) limit" >&2
    exit 1
fi

# The slim build has no completions or man page, and says where they are.
if msg=$("$OUT/driftprobe" completions bash 2>&1); then
    echo "the slim build should not generate completions (got: ${msg:0:80})" >&2
    exit 1
elif [[ "$msg" != *"contrib/completions/"* ]]; then
    echo "the slim build should point to contrib/completions/ (got: $msg)" >&2
    exit 1
fi
echo "slim build: 'completions' points to contrib/completions/ and doc/man/"

# It must run in an empty root: no libc, no loader, nothing but itself and a config dir.
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null 2>&1; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir "$root/config"
    echo "key: value" >"$root/config/app.conf"
    cp "$OUT/driftprobe" "$root/driftprobe"
    if out=$(chroot "$root" /driftprobe digest /config) && [[ "$out" =~ ^[0-9a-f]{64}$ ]]; then
        echo "runs in an empty chroot: driftprobe digest /config -> $out"
    else
        echo "driftprobe does not run in an empty chroot (output: ${out:-none})" >&2
        exit 1
    fi
else
    echo "(not root: skipped the empty-chroot check)"
fi

# The SBOM beside the binary ($OUT/driftprobe.cdx.json), checked against the
# crates this build links; needs cargo-cyclonedx (.ci/run installs it).
if cargo cyclonedx --version >/dev/null 2>&1; then
    scripts/sbom.sh
else
    echo "(no SBOM: cargo-cyclonedx is not installed; see scripts/sbom.sh)"
fi
