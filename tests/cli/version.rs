//! `driftprobe --version`: version, commit and target (build.rs), and the
//! rules build.rs picks the commit by, from build/version.rs itself.

use crate::support::*;
use std::process::Command;

#[path = "../../build/version.rs"]
#[allow(dead_code)]
mod pick;

#[test]
fn version_names_the_commit_and_target() {
    let out = run(driftprobe().arg("--version"));
    assert_eq!(out.code, 0, "{out}");
    let line = out.line();
    let rest = line
        .strip_prefix(&format!(
            "driftprobe {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{line}"));
    let (commit, target) = rest
        .strip_suffix(")")
        .and_then(|r| r.split_once(", target "))
        .unwrap_or_else(|| panic!("{line}"));
    // Built from this checkout (the tests run in it): its HEAD, unless
    // DRIFTPROBE_COMMIT said otherwise at build time.
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match (option_env!("DRIFTPROBE_COMMIT"), head) {
        (Some(c), _) => assert_eq!(Some(commit.to_string()), pick::clean_commit(c), "{line}"),
        (None, Some(h)) => assert_eq!(commit, &h[..12], "{line}"),
        (None, None) => assert_eq!(commit, "unknown", "{line}"),
    }
    assert_eq!(
        target,
        std::env::consts::ARCH.to_string() + "-unknown-linux-gnu",
        "{line}"
    );
    // -V is the same line, and no other subcommand output changes.
    assert_eq!(run(driftprobe().arg("-V")).stdout, out.stdout);
}

#[test]
fn the_commit_comes_from_the_first_source_that_knows() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let vcs =
        format!("{{\n  \"git\": {{\n    \"sha1\": \"{sha}\"\n  }},\n  \"path_in_vcs\": \"\"\n}}");
    let git = || Some("fedcba9876543210fedcba9876543210fedcba98".to_string());
    // The variable first (a docker build without .git), then cargo's
    // .cargo_vcs_info.json (a packaged crate), then git, else "unknown".
    assert_eq!(
        pick::pick_commit(Some("ABCDEF1234567"), Some(&vcs), git),
        "abcdef123456"
    );
    assert_eq!(pick::pick_commit(None, Some(&vcs), git), "0123456789ab");
    assert_eq!(pick::pick_commit(None, None, git), "fedcba987654");
    assert_eq!(pick::pick_commit(None, None, || None), "unknown");
    // Garbage is no commit: the next source answers.
    assert_eq!(
        pick::pick_commit(Some("main; rm -rf /"), None, git),
        "fedcba987654"
    );
    assert_eq!(pick::pick_commit(Some(""), Some("{}"), || None), "unknown");
    assert_eq!(
        pick::pick_commit(None, Some("{\"sha1\": 42}"), || None),
        "unknown"
    );
    assert_eq!(pick::clean_commit("abc12"), None);
    assert_eq!(pick::clean_commit(&"a".repeat(65)), None);
    assert_eq!(
        pick::version_line("0.1.0", "unknown", "x86_64-unknown-linux-gnu"),
        "0.1.0 (commit unknown, target x86_64-unknown-linux-gnu)"
    );
}
