#!/usr/bin/env bash
# The one documented static build (also used by .ci/run, scripts/test.sh,
# bench/run.sh and e2e/node/images.sh): fully static musl binaries for amd64
# and arm64, each
#
#   RUSTFLAGS="-C relocation-model=static -C linker=rust-lld -C link-self-contained=yes -C link-arg=--icf=all -C link-arg=-Tbuild/no-unwind-tables.ld" \
#       cargo build --release --no-default-features --target x86_64-unknown-linux-musl    # and aarch64-…
#
# rust-lld with musl's own crt objects and libc (shipped with the rustup
# target) links both without any C toolchain, so the arm64 build is a plain
# cross build. relocation-model=static makes a classic static executable
# rather than a static PIE (smaller, file(1) says "statically linked"), and
# --icf=all (identical code folding) saves a few more KiB.
# build/no-unwind-tables.ld drops the DWARF unwind tables (.eh_frame and its
# index, about 130 KiB of the amd64 binary): with panic = "abort" nothing
# unwinds, and they served only the bare addresses RUST_BACKTRACE=full prints
# for a stripped binary. The path is relative to the package root, where
# cargo runs rustc and so the linker.
# --no-default-features leaves out the `completions` feature (clap_complete and
# clap_mangen for `driftprobe completions|man`): a probe in a container needs
# neither, and they cost ~300 KiB. The slim binary says where to get
# them instead (checked below).
# Where the musl targets are missing and `rustup target add` cannot install
# them, this says so and falls back to the glibc crt-static build for amd64
# (the build before musl; no arm64 binary then).
#
# Also builds examples/demo_server.rs the same way (the docker end-to-end test
# and the real node run it in a FROM scratch image), then checks with `file`
# that every binary is static, each driftprobe is at most 2 MiB, and the amd64
# one runs in an empty chroot (the arm64 one too, through qemu-aarch64 when
# that is installed).
# Output, by Docker's architecture names (Dockerfile.static picks by TARGETARCH):
#   target/static/amd64/driftprobe, target/static/amd64/demo_server   (the binary
#       everything else uses: docker e2e, real node, bench, install)
#   target/static/arm64/driftprobe, target/static/arm64/demo_server
#   target/<triple>/release/driftprobe.cdx.json (the SBOM of the amd64 build:
#       scripts/sbom.sh, when cargo-cyclonedx is installed)
#
#   scripts/static-build.sh              # build and check
#   scripts/static-build.sh --env TRIPLE # print `export RUSTFLAGS=…` for that
#                                        # target (bench/run.sh, scripts/sbom.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

MUSL_FLAGS="-C relocation-model=static -C linker=rust-lld -C link-self-contained=yes -C link-arg=--icf=all -C link-arg=-Tbuild/no-unwind-tables.ld"
GLIBC_FLAGS="-C target-feature=+crt-static -C relocation-model=static -C link-arg=-Wl,--icf=all"
rustflags_for() {
    case "$1" in
        *-linux-musl) echo "$MUSL_FLAGS" ;;
        x86_64-unknown-linux-gnu) echo "$GLIBC_FLAGS" ;;
        *) echo "static-build.sh: no static flags for $1" >&2; return 2 ;;
    esac
}
if [ "${1:-}" = --env ]; then
    [ $# -eq 2 ] || { echo "usage: scripts/static-build.sh [--env TRIPLE]" >&2; exit 2; }
    echo "export RUSTFLAGS=\"$(rustflags_for "$2")\""
    exit 0
fi
[ $# -eq 0 ] || { echo "usage: scripts/static-build.sh [--env TRIPLE]" >&2; exit 2; }

TARGET_DIR=${CARGO_TARGET_DIR:-target}
STATIC="$TARGET_DIR/static"
MUSL_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

have_targets() {
    local installed
    installed=$(rustup target list --installed 2>/dev/null) || return 1
    for t in "$@"; do grep -qx "$t" <<<"$installed" || return 1; done
}
if have_targets "${MUSL_TARGETS[@]}" || rustup target add "${MUSL_TARGETS[@]}"; then
    builds=("amd64 x86_64-unknown-linux-musl" "arm64 aarch64-unknown-linux-musl")
else
    echo "static-build.sh: the musl targets (${MUSL_TARGETS[*]}) cannot be installed here;" \
        "falling back to the glibc crt-static build for amd64 only (no arm64 binary)" >&2
    builds=("amd64 x86_64-unknown-linux-gnu")
fi

# An arm64 binary runs here only through qemu-user (Debian: qemu-user).
runner_for() {
    case "$1" in
        arm64) [ "$(uname -m)" = aarch64 ] || command -v qemu-aarch64 ;;
        amd64) [ "$(uname -m)" = x86_64 ] || command -v qemu-x86_64 ;;
    esac
}

status=0
for build in "${builds[@]}"; do
    read -r arch triple <<<"$build"
    out="$TARGET_DIR/$triple/release"
    RUSTFLAGS=$(rustflags_for "$triple") cargo build --release --locked --no-default-features \
        --target "$triple" --bin driftprobe --example demo_server
    rm -rf "${STATIC:?}/$arch"
    mkdir -p "$STATIC/$arch"
    cp "$out/driftprobe" "$STATIC/$arch/driftprobe"
    cp "$out/examples/demo_server" "$STATIC/$arch/demo_server"
    echo "$triple" >"$STATIC/$arch/TARGET"
    for bin in "$STATIC/$arch/driftprobe" "$STATIC/$arch/demo_server"; do
        desc=$(file -b "$bin")
        case "$desc" in
            *"statically linked"*)
                echo "static ($triple): $bin ($(stat -c %s "$bin") bytes)" ;;
            *)
                echo "NOT static: $bin: $desc" >&2
                status=1 ;;
        esac
    done
    # The size limit the README states: at most 2 MiB per binary (musl: 1 MiB is the goal).
    size=$(stat -c %s "$STATIC/$arch/driftprobe")
    if [ "$size" -gt $((2 * 1024 * 1024)) ]; then
        echo "$STATIC/$arch/driftprobe is $size bytes, over the 2 MiB (2097152 bytes) limit" >&2
        status=1
    fi
    # The hardware SHA-256 path must be in the binary: SHA-NI on amd64
    # (sha256rnds2), the ARMv8 crypto extension on arm64 (sha256h). sha2
    # picks it at run time by CPU feature detection; a build without it
    # hashes in software, several times slower (sha2 0.10 had no aarch64
    # intrinsics without its C `asm` feature).
    if command -v llvm-objdump >/dev/null 2>&1; then
        case "$arch" in
            amd64) insn=sha256rnds2 mattr=+sha ;;
            arm64) insn=sha256h mattr=+sha2 ;;
        esac
        n=$(llvm-objdump -d --no-show-raw-insn --mattr="$mattr" "$STATIC/$arch/driftprobe" | grep -cw "$insn" || true)
        if [ "$n" -eq 0 ]; then
            echo "$STATIC/$arch/driftprobe has no $insn instruction: no hardware SHA-256 path" >&2
            status=1
        else
            echo "hardware SHA-256 ($arch): $n $insn instructions"
        fi
    else
        echo "(llvm-objdump not installed: hardware SHA-256 path not checked; apt-get install llvm)"
    fi
done
[ "$status" -eq 0 ] || exit "$status"

# The slim build has no completions or man page, and says where they are.
if msg=$("$STATIC/amd64/driftprobe" completions bash 2>&1); then
    echo "the slim build should not generate completions (got: ${msg:0:80})" >&2
    exit 1
elif [[ "$msg" != *"contrib/completions/"* ]]; then
    echo "the slim build should point to contrib/completions/ (got: $msg)" >&2
    exit 1
fi
echo "slim build: 'completions' points to contrib/completions/ and doc/man/"

# Each must run in an empty root: no libc, no loader, nothing but itself and a
# config dir. qemu-user is itself dynamically linked and cannot run inside an
# empty chroot, so a foreign binary runs from outside instead: this machine
# has no loader or libc of that architecture, so it runs only if static. All
# must print the same digest.
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null 2>&1; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir "$root/config"
    echo "key: value" >"$root/config/app.conf"
    digests=()
    for build in "${builds[@]}"; do
        read -r arch _ <<<"$build"
        cp "$STATIC/$arch/driftprobe" "$root/driftprobe-$arch"
        if ! runner=$(runner_for "$arch"); then
            echo "(no qemu for $arch: skipped running it; apt-get install qemu-user)"
            continue
        fi
        if [ -z "$runner" ]; then
            out=$(chroot "$root" "/driftprobe-$arch" digest /config) || out=""
            where="in an empty chroot"
        else
            out=$(cd "$root" && env -i "$runner" "./driftprobe-$arch" digest config) || out=""
            where="through $runner, with no $arch libc on this machine"
        fi
        if [[ "$out" =~ ^[0-9a-f]{64}$ ]]; then
            echo "runs $where ($arch): driftprobe digest -> $out"
            digests+=("$out")
        else
            echo "driftprobe ($arch) does not run $where (output: ${out:-none})" >&2
            exit 1
        fi
    done
    if [ "${#digests[@]}" -gt 1 ] && [ "$(printf '%s\n' "${digests[@]}" | sort -u | wc -l)" -ne 1 ]; then
        echo "the architectures disagree on the digest: ${digests[*]}" >&2
        exit 1
    fi
else
    echo "(not root: skipped the empty-chroot check)"
fi

# The SBOM of each build ($TARGET_DIR/<triple>/release/driftprobe.cdx.json),
# checked against the crates it links; needs cargo-cyclonedx (.ci/run installs it).
if cargo cyclonedx --version >/dev/null 2>&1; then
    for build in "${builds[@]}"; do
        read -r _ triple <<<"$build"
        DRIFTPROBE_SBOM_TARGET=$triple scripts/sbom.sh
    done
else
    echo "(no SBOM: cargo-cyclonedx is not installed; see scripts/sbom.sh)"
fi
