//! Stamps `driftprobe --version` with the commit and target it was built
//! from (DRIFTPROBE_VERSION_LINE, read by src/cli.rs). A build outside a git
//! checkout (a registry crate, `cargo package`, a docker build context
//! without `.git`) still works: the commit then comes from
//! DRIFTPROBE_COMMIT or `.cargo_vcs_info.json`, else reads `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

include!("build/version.rs");

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=DRIFTPROBE_COMMIT");
    println!("cargo:rerun-if-changed=build/version.rs");
    let env = std::env::var("DRIFTPROBE_COMMIT").ok();
    let vcs_info = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok();
    let commit = pick_commit(env.as_deref(), vcs_info.as_deref(), || git_commit(&dir));
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!(
        "cargo:rustc-env=DRIFTPROBE_VERSION_LINE={}",
        version_line(&version, &commit, &target)
    );
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// HEAD of the checkout this crate is the top of (not of some repository
/// that merely contains it, e.g. a vendored copy). Asks cargo to run this
/// again when HEAD or the branch it names moves. (No `-dirty` mark: cargo
/// would not rerun this when a file is edited, so it would go stale.)
fn git_commit(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    let mut watched = vec![git(dir, &["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(dir, &["rev-parse", "--git-path", &branch]));
    }
    watched.extend(git(dir, &["rev-parse", "--git-path", "packed-refs"]));
    for p in watched {
        let p = dir.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    git(dir, &["rev-parse", "HEAD"])
}
