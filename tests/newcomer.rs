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
    // The README's advice: readiness gets the grace window too (an unready
    // replica for every pod at once is an outage), and the story says so.
    assert!(
        !stdout.contains("readiness fails while the files differ")
            && stdout.contains("readiness and liveness fail once the difference outlasts --grace"),
        "{text}"
    );

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

/// The examples' own tips, read as a newcomer copies them (issue 17 §5).
mod example_tips {
    use std::path::Path;

    fn examples() -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        out.sort();
        assert!(out.len() >= 5, "examples/*.yaml: {out:?}");
        out
    }

    /// The values following a `- --state-dir` item of a probe command.
    fn state_dirs(text: &str) -> Vec<String> {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        lines
            .windows(2)
            .filter(|w| w[0] == "- --state-dir")
            .map(|w| w[1].trim_start_matches("- ").to_string())
            .collect()
    }

    fn mount_paths(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("mountPath:"))
            .map(|v| v.trim().to_string())
            .collect()
    }

    /// A `driftprobe status|digest …` tip in a comment (joined across line
    /// breaks): its command word, its `--flag value` pairs and its paths.
    struct Tip {
        word: String,
        flags: Vec<(String, String)>,
        paths: Vec<String>,
    }

    fn tips(text: &str) -> Vec<Tip> {
        let comments: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix('#'))
            .collect();
        let joined = comments.join(" ");
        let mut out = Vec::new();
        for word in ["status", "digest"] {
            let needle = format!("driftprobe {word} ");
            for (at, _) in joined.match_indices(&needle) {
                let mut tip = Tip {
                    word: word.to_string(),
                    flags: Vec::new(),
                    paths: Vec::new(),
                };
                let mut words = joined[at + needle.len()..]
                    .split_whitespace()
                    .map(|w| w.trim_end_matches(['`', '.', ',', ')']));
                while let Some(w) = words.next() {
                    if w.starts_with("--") {
                        let value = words.next().unwrap_or_default();
                        tip.flags.push((w.to_string(), value.to_string()));
                    } else if w.starts_with('/') {
                        tip.paths.push(w.to_string());
                    } else {
                        break;
                    }
                }
                // A mention ("computes it with `driftprobe digest`"), not a command.
                if !tip.flags.is_empty() || !tip.paths.is_empty() {
                    out.push(tip);
                }
            }
        }
        out
    }

    #[test]
    fn status_tips_pass_the_probes_state_dir_and_watch_mounted_paths() {
        let mut seen = 0;
        for (name, text) in examples() {
            let dirs = state_dirs(&text);
            let mounts = mount_paths(&text);
            for tip in tips(&text) {
                seen += 1;
                let word = &tip.word;
                if word == "status" {
                    for d in &dirs {
                        assert!(
                            tip.flags.iter().any(|(f, v)| f == "--state-dir" && v == d),
                            "{name}: a `driftprobe status` tip omits the probe's --state-dir {d}: \
                             it would say \"no state for this container yet\""
                        );
                    }
                }
                for path in &tip.paths {
                    assert!(
                        mounts.iter().any(|m| m == path),
                        "{name}: a `driftprobe {word}` tip watches {path}, which no container mounts ({mounts:?})"
                    );
                }
            }
        }
        // Examples 03, 04 and 05 each give one.
        assert!(seen >= 3, "only {seen} tips found");
    }

    #[test]
    fn the_ci_workflow_example_needs_nothing_from_this_repository() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci-github-actions.yml");
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for local in ["scripts/", "examples/", "target/", "cargo "] {
                assert!(
                    !line.contains(local),
                    "examples/ci-github-actions.yml runs in the user's repository, which has no {local:?}: {line}"
                );
            }
        }
        assert!(text.contains("driftprobe digest"), "{text}");
    }
}

/// `--stagger` spreads restarts; it does not serialize them (issue 17 §4,
/// measured by scripts/stagger-spread.sh). No doc may promise otherwise.
#[test]
fn no_doc_promises_one_pod_at_a_time() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| {
                ["yaml", "yml", "md", "rs", "tpl", "sh", "txt"]
                    .iter()
                    .any(|e| x == *e)
            }) {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    walk(&root.join("doc"), &mut files);
    walk(&root.join("src/cli"), &mut files);
    walk(&root.join("examples"), &mut files);
    walk(&root.join("deploy"), &mut files);
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let l = line.to_lowercase();
            if [
                "one pod at a time",
                "one after another",
                "one at a time",
                "one by one",
                "one replica at a time",
                "in sequence",
            ]
            .iter()
            .any(|p| l.contains(p))
            {
                checked += 1;
                // "not" as a word: "nothing", "another" and "cannot" do not
                // deny anything.
                let denies = l
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .any(|w| w == "not");
                assert!(
                    denies || l.contains("nothing guarantees"),
                    "{}:{}: promises an order --stagger does not give: {line}",
                    f.display(),
                    n + 1
                );
            }
        }
    }
    assert!(checked >= 2, "the docs' own warning was not found");
}

/// scripts/stagger-spread.sh (the stagger table in doc/adoption.md) still runs against
/// the binary under test: a few Deployments, every row present.
#[test]
fn the_stagger_spread_script_measures_the_binary() {
    if !is_root() {
        eprintln!("skipped: scripts/stagger-spread.sh needs root (unshare --uts)");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/stagger-spread.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--trials", "3", "--binary", BIN])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(" % |"))
        .collect();
    assert_eq!(rows.len(), 18, "6 replica counts x 3 windows: {stdout}");
    // 50 replicas in a 2m window: two within 30s, always, measured too.
    assert!(
        rows.iter().any(|r| r.starts_with("| 50 | 2m | 100 % |")),
        "{stdout}"
    );
}
