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

/// CHANGELOG.md: the version being built is listed (released or not), and
/// every entry states CLI and state-file compatibility, with the state file
/// version this build writes in the newest entry.
#[test]
fn the_changelog_states_compatibility_for_every_version() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/CHANGELOG.md"))
        .expect("CHANGELOG.md");
    let entries: Vec<&str> = text.split("\n## [").skip(1).collect();
    assert!(!entries.is_empty(), "no `## [version]` entries");
    let versions: Vec<&str> = entries
        .iter()
        .map(|e| e.split(']').next().unwrap())
        .collect();
    assert!(
        versions.contains(&env!("CARGO_PKG_VERSION")),
        "Cargo.toml's version {} has no CHANGELOG.md entry: {versions:?}",
        env!("CARGO_PKG_VERSION")
    );
    for (v, e) in versions.iter().zip(&entries) {
        let compat = e
            .lines()
            .skip_while(|l| !l.starts_with("Compatibility:"))
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            compat.contains("CLI") && compat.contains("state file version"),
            "CHANGELOG.md [{v}] states no CLI and state-file compatibility: {compat:?}"
        );
    }
    let newest = &entries[0];
    for (what, version) in [
        ("state file version", driftprobe::state::VERSION),
        ("`status --json` version", 1),
    ] {
        assert!(
            newest.contains(&format!("{what} {version}")),
            "CHANGELOG.md [{}] must name {what} {version}, what this build writes",
            versions[0]
        );
    }
    assert_eq!(driftprobe::shared::VERSION, driftprobe::state::VERSION);
}

/// Dockerfile.static: every stage taken from a registry is pinned by digest
/// (a re-pushed tag cannot change what is built), and the CHANGELOG names the
/// Rust version of the builder's digest, as the Dockerfile asks.
#[test]
fn the_dockerfiles_registry_images_are_pinned_by_digest() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/Dockerfile.static")).unwrap();
    let mut stages: Vec<&str> = Vec::new();
    let mut pinned = 0;
    for line in text.lines().filter(|l| l.starts_with("FROM ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let image = words
            .iter()
            .skip(1)
            .find(|w| !w.starts_with("--"))
            .expect("FROM names an image");
        if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
            stages.push(words[i + 1]);
        }
        let local = *image == "scratch"
            || stages.iter().any(|s| image == s)
            || image.starts_with("prebuilt-${");
        if local {
            continue;
        }
        let (_, digest) = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("not pinned by digest: {line}"));
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "{line}"
        );
        pinned += 1;
    }
    assert_eq!(pinned, 1, "the builder stage is the one registry image");
    let rust = text
        .split("when it held Rust ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .map(|v| v.trim_end_matches(|c: char| !c.is_ascii_digit()))
        .expect("Dockerfile.static says which Rust its builder digest holds");
    let changelog = std::fs::read_to_string(format!("{root}/CHANGELOG.md")).unwrap();
    assert!(
        changelog.contains(&format!("Rust {rust}")),
        "CHANGELOG.md does not name the builder's Rust {rust}"
    );
}
