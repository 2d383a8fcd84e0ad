//! The commands as `lib::run` dispatches them, on a temp watched tree and
//! a temp state dir: `status` with no state, a baseline and a drift (text
//! and `--json`); `init` recording and keeping a baseline; `install`'s
//! atomic copy and bad destinations; `run`'s exit codes when the exec
//! fails.

use crate::exit::Code;
use crate::{cli, Report};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A watched dir with two files, and a state dir beside it (not made yet:
/// the first command that writes makes it, ours and 0700).
struct Tree {
    _tmp: tempfile::TempDir,
    conf: PathBuf,
    state: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("conf");
    fs::create_dir(&conf).unwrap();
    fs::write(conf.join("a.yaml"), "secret-value-a\n").unwrap();
    fs::write(conf.join("b.yaml"), "secret-value-b\n").unwrap();
    let state = tmp.path().join("state");
    Tree {
        _tmp: tmp,
        conf,
        state,
    }
}

impl Tree {
    /// Runs `driftprobe SUB [ARGS] --state-dir STATE CONF` as `main` would.
    fn run(&self, sub: &str, args: &[&str]) -> Report {
        let state = self.state.to_str().unwrap();
        let conf = self.conf.to_str().unwrap();
        let argv = ["driftprobe", sub]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["--state-dir", state, conf]);
        crate::run(cli::try_parse_from(argv).expect("parses"))
    }

    /// The one state file in the state dir.
    fn state_file(&self) -> crate::state::State {
        let files: Vec<PathBuf> = fs::read_dir(&self.state)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        match crate::state::parse(&fs::read(&files[0]).unwrap()) {
            crate::state::Loaded::Found(st) => *st,
            other => panic!("{other:?}"),
        }
    }
}

fn lines(r: &Report) -> Vec<&str> {
    r.stdout.split('\n').collect()
}

/// The line of `r`'s document that starts with `label`.
fn line<'a>(r: &'a Report, label: &str) -> &'a str {
    lines(r)
        .into_iter()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in {:?}", r.stdout))
}

/// The digest of [`tree`]'s two files as they are written, first 12.
const TREE_DIGEST: &str = "5d8814928cbd";

#[test]
fn status_without_a_state_exits_1_and_names_the_state_dir() {
    let t = tree();
    let r = t.run("status", &[]);
    assert_eq!(r.code, Code::Drift);
    assert_eq!(
        r.stdout,
        format!(
            "watching:   {conf}\nstate file: {state}/{key}.json\nbaseline:   none\ncurrent:    \
             {TREE_DIGEST} (2 files)\nnote:       no state for this container yet in {state}: the next probe \
             records the baseline (or run `driftprobe init`); if the probes pass --state-dir, pass the same here\n\
             note:       exit 1: no baseline yet, so nothing to compare the files with",
            conf = t.conf.display(),
            state = t.state.display(),
            key = crate::state::key(&[t.conf.display().to_string()], &[]),
        )
    );
    assert!(r.stderr.is_empty(), "{:?}", r.stderr);
    assert!(!t.state.exists(), "status creates nothing");
}

#[test]
fn status_on_a_recorded_baseline_is_ok() {
    let t = tree();
    assert_eq!(t.run("init", &["--force"]).code, Code::Healthy);
    let recorded = crate::time::rfc3339(t.state_file().baseline.unwrap().recorded_at);
    let r = t.run("status", &[]);
    assert_eq!(r.code, Code::Healthy);
    assert_eq!(
        lines(&r)[2..],
        [
            format!("baseline:   {TREE_DIGEST} (2 files, recorded {recorded} by init --force)"),
            format!("current:    {TREE_DIGEST} (2 files)"),
            "drift:      none".to_string(),
        ]
    );
}

#[test]
fn status_on_a_drift_names_the_files_and_shows_no_contents() {
    let t = tree();
    assert_eq!(t.run("init", &["--force"]).code, Code::Healthy);
    fs::write(t.conf.join("a.yaml"), "secret-value-a2\n").unwrap();
    fs::remove_file(t.conf.join("b.yaml")).unwrap();
    fs::write(t.conf.join("c.yaml"), "secret-value-c\n").unwrap();
    let r = t.run("status", &[]);
    assert_eq!(r.code, Code::Drift);
    let now = line(&r, "current:");
    assert!(
        now.ends_with(" (2 files)") && !now.contains(TREE_DIGEST),
        "{now}"
    );
    assert_eq!(
        lines(&r)[4..],
        [
            "  changed  a.yaml",
            "  added    c.yaml",
            "  removed  b.yaml"
        ]
    );
    let json = t.run("status", &["--json"]);
    assert_eq!(json.code, Code::Drift);
    for text in [&r.stdout, &json.stdout] {
        assert!(!text.contains("secret-value"), "{text}");
    }
}

#[test]
fn status_json_has_its_versioned_shape() {
    let t = tree();
    assert_eq!(t.run("init", &["--force"]).code, Code::Healthy);
    fs::write(t.conf.join("a.yaml"), "secret-value-a2\n").unwrap();
    let r = t.run("status", &["--json"]);
    assert_eq!(r.code, Code::Drift);
    // The top-level fields, in their documented order.
    let keys: Vec<&str> = lines(&r)
        .into_iter()
        .filter_map(|l| l.strip_prefix("  \"")?.split_once("\":").map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "version",
            "paths",
            "state_file",
            "state",
            "baseline",
            "current",
            "drift",
            "changes",
            "skipped",
            "missing",
            "validations",
            "reloads",
            "warnings",
            "notes",
            "stagger_offset_ms",
            "mirrored",
        ]
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["state"], "drift");
    assert_eq!(v["paths"], serde_json::json!([t.conf.to_str().unwrap()]));
    assert_eq!(v["baseline"]["source"], "init --force");
    assert_eq!(v["baseline"]["files"], 2);
    assert_eq!(v["changes"]["changed"], serde_json::json!(["a.yaml"]));
    assert_eq!(v["drift"], serde_json::Value::Null);
    assert_eq!(v["stagger_offset_ms"], serde_json::Value::Null);
}

#[test]
fn init_records_a_baseline_and_a_second_init_keeps_it() {
    let t = tree();
    // Files written after this container started cannot be proven
    // unchanged: a drift without a baseline, and still exit 0 (a failing
    // postStart hook would kill the container).
    let r = t.run("init", &[]);
    assert_eq!(r.code, Code::Healthy);
    assert!(
        r.stdout.starts_with("drift: no baseline, cannot prove the config is unchanged since the container started: "),
        "{}",
        r.stdout
    );
    let st = t.state_file();
    assert_eq!(st.baseline, None);
    assert!(st.drift.unwrap().unproven.is_some());
    assert_eq!(
        fs::metadata(&t.state).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let r = t.run("init", &["--force"]);
    assert_eq!(r.code, Code::Healthy);
    assert_eq!(
        r.stdout,
        format!("baseline recorded (2 files) for {}", t.conf.display())
    );
    let first = t.state_file().baseline.unwrap();
    assert_eq!(first.source, "init --force");
    assert_eq!(first.files.len(), 2);
    assert_eq!(t.state_file().drift, None);

    fs::write(t.conf.join("a.yaml"), "secret-value-a2\n").unwrap();
    let r = t.run("init", &[]);
    assert_eq!(r.code, Code::Healthy);
    assert_eq!(
        r.stdout,
        format!(
            "baseline already recorded at {} by init --force (2 files); nothing to do (--force replaces it)",
            crate::time::rfc3339(first.recorded_at)
        )
    );
    assert_eq!(t.state_file().baseline, Some(first));
}

#[test]
fn install_copies_atomically_with_mode_0755() {
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("bin/driftprobe");
    fs::create_dir(d.path().join("bin")).unwrap();
    fs::write(&dest, "an older copy").unwrap();
    let before = fs::metadata(&dest).unwrap().ino();
    // A concurrent install's temp file, fresh: left alone.
    let fresh = d.path().join("bin/.driftprobe.tmp.1.2");
    fs::write(&fresh, "").unwrap();
    let r =
        crate::run(cli::try_parse_from(["driftprobe", "install", dest.to_str().unwrap()]).unwrap());
    let size = fs::metadata("/proc/self/exe").unwrap().len();
    assert_eq!(r.code, Code::Healthy);
    assert_eq!(
        r.stdout,
        format!(
            "installed driftprobe {} ({size} bytes) to {}",
            env!("CARGO_PKG_VERSION"),
            dest.display()
        )
    );
    let meta = fs::metadata(&dest).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta.len(), size);
    // Renamed into place, not written over the old file.
    assert_ne!(meta.ino(), before);
    assert_eq!(
        fs::read(&dest).unwrap(),
        fs::read("/proc/self/exe").unwrap()
    );
    let mut left: Vec<_> = fs::read_dir(d.path().join("bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, [".driftprobe.tmp.1.2", "driftprobe"]);
}

#[test]
fn install_refuses_a_bad_dest() {
    let d = tempfile::tempdir().unwrap();
    let install = |dest: &Path| crate::commands::install(dest);
    let r = install(d.path());
    assert_eq!(r.code, Code::Unknown);
    assert_eq!(
        r.stdout,
        format!(
            "cannot install to {}: DEST is a directory; name the file, e.g. /probe/driftprobe",
            d.path().display()
        )
    );
    let r = install(Path::new("/"));
    assert_eq!(r.code, Code::Unknown);
    assert_eq!(
        r.stdout,
        "cannot install to /: DEST must name a file, e.g. /probe/driftprobe"
    );
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0, "nothing left");
}

/// `driftprobe run --state-dir STATE CONF -- PROGRAM`, which must fail to
/// exec (a test cannot be replaced by its command).
fn run_failing(t: &Tree, program: &str) -> Report {
    let argv = [
        "driftprobe",
        "run",
        "--state-dir",
        t.state.to_str().unwrap(),
    ]
    .into_iter()
    .chain([t.conf.to_str().unwrap(), "--", program]);
    let r = crate::run(cli::try_parse_from(argv).unwrap());
    // The exec attempt restored SIGPIPE's default; the test harness
    // ignores it, as Rust programs do.
    // SAFETY: installs no handler.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        );
    }
    r
}

#[test]
fn run_exits_127_for_a_missing_command_after_recording_the_baseline() {
    let t = tree();
    let missing = t.conf.join("no-such-program");
    let r = run_failing(&t, missing.to_str().unwrap());
    assert_eq!(r.code, Code::NotFound);
    assert_eq!(r.code.as_i32(), 127);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        [format!(
            "driftprobe: cannot exec {}: No such file or directory",
            missing.display()
        )]
    );
    let b = t.state_file().baseline.unwrap();
    assert_eq!((b.source.as_str(), b.files.len()), ("run", 2));
}

#[test]
fn run_exits_126_for_a_command_that_cannot_be_executed() {
    let t = tree();
    // Not executable, even for root: no execute bit at all.
    let plain = t.conf.join("a.yaml");
    let r = run_failing(&t, plain.to_str().unwrap());
    assert_eq!(r.code, Code::CannotExecute);
    assert_eq!(r.code.as_i32(), 126);
    assert_eq!(
        r.stderr,
        [format!(
            "driftprobe: cannot exec {}: Permission denied",
            plain.display()
        )]
    );
    // A baseline that cannot be recorded (the state dir is a file) never
    // stops the app: the exec is still tried.
    fs::remove_dir_all(&t.state).unwrap();
    fs::write(&t.state, "").unwrap();
    let r = run_failing(&t, plain.to_str().unwrap());
    assert_eq!(r.code, Code::CannotExecute);
}
