//! A newcomer's first five minutes. The README's first command,
//! examples/walkthrough.rs, must exit 0 well under a minute and tell the
//! whole story in order (baseline, drift, grace countdown, readiness and
//! liveness failing, restart; reload in place; a broken config held by
//! --validate). Completions and man pages come from the binary as committed,
//! and a state dir the probe's user cannot use says how to fix it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Builds the walkthrough and the demo app with the profile of this test
/// (they sit beside the binary under test) and returns the walkthrough.
fn build_walkthrough() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_driftprobe"));
    let profile = bin.parent().expect("profile dir");
    let mut build = Command::new(env!("CARGO"));
    build.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "--quiet",
        "--example",
        "walkthrough",
        "--example",
        "demo_server",
    ]);
    if profile.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build of the examples: {status}");
    let walkthrough = profile.join("examples").join("walkthrough");
    assert!(walkthrough.is_file(), "{} not built", walkthrough.display());
    walkthrough
}

/// Asserts that `needles` occur in `text` in this order; returns the rest.
#[track_caller]
fn in_order<'a>(text: &'a str, needles: &[&str]) -> &'a str {
    let mut rest = text;
    for needle in needles {
        match rest.find(needle) {
            Some(i) => rest = &rest[i + needle.len()..],
            None => panic!("{needle:?} missing or out of order in the walkthrough:\n{text}"),
        }
    }
    rest
}

#[test]
fn walkthrough_tells_the_story_and_exits_0() {
    let walkthrough = build_walkthrough();
    let started = Instant::now();
    let out = assert_cmd::Command::new(&walkthrough)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // The walkthrough must not let the caller's shell change its probes:
        // with adopt, act 1 would never restart anything.
        .env("DRIFTPROBE_ON_DRIFT", "adopt")
        .env("DRIFTPROBE_PID", "1")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run the walkthrough");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = format!("{stdout}\n--- stderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        took < Duration::from_secs(45),
        "took {took:?}, well under a minute expected"
    );
    assert!(!text.contains("panicked"), "{text}");

    // Act 1: restart onto the new config.
    let (act1, rest) = stdout.split_once("== 2/3").expect("act 2 header");
    in_order(
        act1,
        &[
            "== 1/3 restart",
            "driftprobe: baseline recorded (",
            "GET / answers \"greeting: hello\"",
            "-> Ready",
            "kubectl    edit configmap",
            "swaps ..data",
            "GET / answers \"greeting: hello\"",
            "liveness   exit 0  drift: 1 changed (app.conf)",
            "left)",
            "readiness  exit 1  drift: 1 changed (app.conf)",
            "-> NotReady",
            "failure 3/3",
            "kills the container and starts a new one (restarts: 1)",
            "driftprobe: baseline recorded (",
            "-> Ready",
            "GET / answers \"greeting: bonjour\"",
        ],
    );
    assert!(!act1.contains("restarts: 2"), "{text}");

    // Act 2: reload in place, no restart.
    let (act2, act3) = rest.split_once("== 3/3").expect("act 3 header");
    in_order(
        act2,
        &[
            "--on-drift reload --signal HUP --pid",
            "GET / answers \"greeting: hello\"",
            "kubectl    edit configmap",
            "liveness   exit 0  drift:",
            "liveness   exit 0  reloaded: 1 changed (app.conf): sent SIGHUP to pid",
            "(demo_server)",
            "demo_server: SIGHUP: read",
            "GET / answers \"greeting: bonjour\"",
        ],
    );
    assert!(!act2.contains("kills the container"), "{text}");

    // Act 3: the broken edit is held, the fix goes through.
    let after_invalid = in_order(
        act3,
        &[
            "--validate",
            "kubectl    edit configmap",
            "liveness   exit 0  invalid: 1 changed (app.conf)",
            // The exit status only: the validator's output is for `status`.
            "rejected by the validator (exit 1)",
            "readiness  exit 0  invalid:",
        ],
    );
    in_order(
        after_invalid,
        &[
            "GET / answers \"greeting: hello\"",
            "kubectl    edit configmap",
            "liveness   exit 0  reloaded:",
            "GET / answers \"greeting: hola\"",
            "What you saw:",
        ],
    );
    // No probe failed (the probe's exit column, not the validator's).
    assert!(!act3.contains(" exit 1  "), "{text}");
    assert!(!act3.contains("kills the container"), "{text}");
}

const BIN: &str = env!("CARGO_BIN_EXE_driftprobe");

/// What the commands print; that it equals the committed files is checked
/// by the lib test `completions::tests::generated_files_are_up_to_date`.
#[cfg(feature = "completions")]
#[test]
fn completions_and_man_pages_come_from_the_binary() {
    let print = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let bash = dir.path().join("driftprobe.bash");
    std::fs::write(&bash, print(&["completions", "bash"])).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&bash).status().unwrap();
    assert!(syntax.success(), "bash -n on `completions bash`");
    assert!(print(&["completions", "zsh"]).starts_with("#compdef driftprobe"));
    assert!(print(&["completions", "fish"]).contains("complete -c driftprobe"));
    assert!(print(&["man"]).contains(".TH driftprobe"));
    assert!(print(&["man", "liveness"]).contains("\\-\\-grace"));
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_state_dir_this_user_cannot_use_says_how_to_fix_it() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("app.yaml"), "a: 1").unwrap();
    let locked = tmp.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let mut probe;
    if is_root() {
        // root may write anywhere: run as nobody, who may not write `locked`.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        probe = Command::new("setpriv");
        probe.args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            BIN,
        ]);
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        probe = Command::new(BIN);
    }
    let out = probe
        .env_clear()
        .arg("readiness")
        .arg("--state-dir")
        .arg(locked.join("state"))
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        stdout.starts_with("cannot determine: state dir"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mount an emptyDir and pass --state-dir"),
        "{stdout}"
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
