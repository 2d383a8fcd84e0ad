//! The state dir fills up (ENOSPC), turns read-only, or is not ours. Once
//! a baseline is recorded, the verdict on the config must not depend on
//! whether this probe could save: a full disk must neither hide a drift
//! (liveness passing on "cannot determine") nor fail readiness on a config
//! that matches.

use crate::support::{as_uid, driftprobe, run, Out, TestEnv};
use crate::{tally, Tmpfs};
use std::fs;
use std::path::{Path, PathBuf};

fn on(env: &TestEnv, state: &Path, sub: &str, grace: &str) -> Out {
    let mut cmd = driftprobe();
    cmd.arg(sub)
        .arg("--state-dir")
        .arg(state)
        .args(["--grace", grace])
        .arg(env.vol.path());
    let out = run(&mut cmd);
    out.no_panic();
    out
}

/// The verdicts that must hold whatever happened to the state dir, with
/// the config at the baseline (`drifted` false) or not. Returns the number
/// of probes run.
fn verdicts_hold(env: &TestEnv, state: &Path, drifted: bool, why: &str) -> usize {
    if drifted {
        for sub in ["liveness", "readiness"] {
            let out = on(env, state, sub, "0s");
            assert_eq!(out.code, 1, "{why}: {sub} must fail on a drift: {out}");
            assert!(out.stdout.starts_with("drift:"), "{why}: {out}");
        }
        on(env, state, "liveness", "1h").expect(0, "drift:");
    } else {
        on(env, state, "liveness", "0s").ok();
        on(env, state, "readiness", "0s").ok();
        on(env, state, "liveness", "1h").ok();
    }
    3
}

/// A volume at `v: 1` whose baseline is recorded in a state dir on a
/// tmpfs of `size`.
fn baseline_on_tmpfs(size: &str) -> (TestEnv, Tmpfs, PathBuf) {
    let env = TestEnv::new();
    let fs_ = Tmpfs::mount(&env.path("small"), size);
    let state = env.path("small/state");
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    let mut init = driftprobe();
    init.arg("init")
        .arg("--state-dir")
        .arg(&state)
        .arg(env.vol.path());
    assert_eq!(run(&mut init).code, 0);
    (env, fs_, state)
}

#[test]
fn a_full_state_disk_does_not_change_the_verdict() {
    let (env, fs_, state) = baseline_on_tmpfs("64k");
    let fill = fs_.fill();
    let mut runs = verdicts_hold(&env, &state, false, "disk full, config unchanged");
    env.vol.write(&[("app.yaml", "v: 2\n")]);
    runs += verdicts_hold(&env, &state, true, "disk full, config drifted");
    let out = on(&env, &state, "liveness", "1h");
    assert!(out.stderr.contains("No space left on device"), "{out}");
    assert!(out.stderr.contains("not remembered"), "{out}");
    // A temp file that could not be written is not left holding space.
    let left: Vec<_> = fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(
        left.is_empty(),
        "temp files left on the full disk: {left:?}"
    );
    // Not remembered, yet not forgotten: the drift is dated by the
    // kubelet's write, so a 2 s grace window ends 2 s after it.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    on(&env, &state, "liveness", "2s").drift();
    on(&env, &state, "liveness", "1h").expect(0, "drift:");
    // Room again: the drift is recorded and kept from then on.
    fs::remove_file(fill).unwrap();
    runs += verdicts_hold(&env, &state, true, "disk freed, config drifted");
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    runs += verdicts_hold(&env, &state, false, "disk freed, config back");
    tally(
        "state dir on a full tmpfs (ENOSPC)",
        runs + 3,
        0,
        0,
        "64 KiB tmpfs filled, then freed",
    );
}

#[test]
fn a_state_dir_gone_read_only_does_not_change_the_verdict() {
    let (env, fs_, state) = baseline_on_tmpfs("1m");
    fs_.remount("ro");
    let mut runs = verdicts_hold(&env, &state, false, "read-only, config unchanged");
    env.vol.write(&[("app.yaml", "v: 2\n")]);
    runs += verdicts_hold(&env, &state, true, "read-only, config drifted");
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    on(&env, &state, "liveness", "2s").drift();
    runs += 1;
    fs_.remount("rw");
    runs += verdicts_hold(&env, &state, true, "writable again, config drifted");
    tally(
        "state dir remounted read-only",
        runs,
        0,
        0,
        "after init; then rw again",
    );
}

#[test]
fn a_state_dir_of_another_user_is_refused_clearly() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    fs::set_permissions(env.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // Root's private dir, probed by uid 4242: cannot be ours, cannot hold
    // a private subdir either.
    let theirs = env.path("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o700)).unwrap();
    let probe = |sub: &str, dir: &Path| {
        let out = run(as_uid(4242)
            .arg(sub)
            .arg("--state-dir")
            .arg(dir)
            .arg(env.vol.path()));
        out.no_panic();
        out
    };
    let out = probe("readiness", &theirs);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stdout.starts_with("cannot determine: state dir"),
        "{out}"
    );
    assert!(out.stdout.contains("Permission denied"), "{out}");
    let out = probe("liveness", &theirs);
    assert_eq!(out.code, 0, "a broken state dir must not restart: {out}");
    assert!(
        out.stdout.ends_with("(passing: --on-error pass)\n"),
        "{out}"
    );
    // World-writable and sticky, like /tmp: a private subdir is used, the
    // shared dir is left as it is.
    let shared = env.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(probe("init", &shared).code, 0);
    probe("readiness", &shared).expect(0, "ok:");
    probe("liveness", &shared).expect(0, "ok:");
    assert!(shared.join("driftprobe-4242").is_dir());
    assert_eq!(
        fs::metadata(&shared).unwrap().permissions().mode() & 0o7777,
        0o1777
    );
    tally(
        "state dir of another user / world-writable",
        4,
        0,
        0,
        "refused clearly / private subdir",
    );
}

/// `--validate` writes a "being validated" marker before running the
/// validator. A state dir that cannot hold it must not turn every drift
/// into "cannot determine" (liveness would pass on it forever): the
/// validator runs without the marker and the verdict stands.
#[test]
fn a_read_only_state_dir_does_not_stop_validation() {
    let (env, fs_, state) = baseline_on_tmpfs("1m");
    fs_.remount("ro");
    let probe = |sub: &str, grace: &str, validate: &str| {
        let mut cmd = driftprobe();
        cmd.arg(sub)
            .arg("--state-dir")
            .arg(&state)
            .args(["--grace", grace, "--validate", validate])
            .arg(env.vol.path());
        let out = run(&mut cmd);
        out.no_panic();
        out
    };
    probe("liveness", "0s", "true").ok();
    env.vol.write(&[("app.yaml", "v: 2\n")]);
    for sub in ["liveness", "readiness"] {
        let out = probe(sub, "0s", "true");
        assert_eq!(
            out.code, 1,
            "{sub}: a valid drift past grace must fail: {out}"
        );
        assert!(out.stdout.starts_with("drift:"), "{sub}: {out}");
        assert!(out.stderr.contains("validating without a marker"), "{out}");
        probe(sub, "1h", "true").expect(0, "drift:");
        // A config the validator rejects is held, not "cannot determine".
        probe(sub, "0s", "false").expect(0, "invalid:");
    }
    tally(
        "state dir read-only, --validate",
        7,
        0,
        0,
        "validated without the marker",
    );
}

/// A reload that cannot be remembered would be repeated at every probe:
/// with a read-only state dir the probe does not reload at all and reports
/// the drift as a drift (grace applies; liveness then restarts).
#[test]
fn a_read_only_state_dir_never_reloads() {
    use std::process::{Command, Stdio};
    let (env, fs_, state) = baseline_on_tmpfs("1m");
    let hups = env.path("hups");
    // Killed and reaped on drop, also when an assertion fails.
    struct App(std::process::Child);
    impl Drop for App {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let app = App(Command::new("sh")
        .args([
            "-c",
            &format!(
                "trap 'echo got >> {}' HUP; while :; do sleep 0.05; done",
                hups.display()
            ),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let pid = app.0.id().to_string();
    // Wait for the handler (SigCgt bit 1): without it the probe refuses to
    // signal, and the test would pass for the wrong reason.
    let handles_hup = || {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & 1 != 0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !handles_hup() {
        assert!(std::time::Instant::now() < deadline, "no HUP handler");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let count = || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        fs::read_to_string(&hups)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let reload = |grace: &str| {
        let mut cmd = driftprobe();
        cmd.arg("liveness")
            .arg("--state-dir")
            .arg(&state)
            .args(["--grace", grace, "--on-drift", "reload", "--signal", "HUP"])
            .args(["--pid", &pid])
            .arg(env.vol.path());
        let out = run(&mut cmd);
        out.no_panic();
        out
    };
    fs_.remount("ro");
    env.vol.write(&[("app.yaml", "v: 2\n")]);
    reload("1h").expect(0, "drift:");
    for _ in 0..3 {
        let out = reload("0s");
        assert_eq!(out.code, 1, "{out}");
        assert!(out.stdout.starts_with("drift:"), "{out}");
        assert!(
            out.stdout
                .contains("not reloaded, the state dir cannot be written"),
            "{out}"
        );
        assert!(!out.stdout.contains("reloaded:"), "{out}");
    }
    assert_eq!(count(), 0, "no reload that cannot be remembered");
    // The same over HTTP: no request is made.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/-/reload", listener.local_addr().unwrap());
    let mut cmd = driftprobe();
    cmd.arg("liveness")
        .arg("--state-dir")
        .arg(&state)
        .args(["--grace", "0", "--on-drift", "reload", "--reload-url", &url])
        .arg(env.vol.path());
    let out = run(&mut cmd);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout
            .contains("not reloaded, the state dir cannot be written"),
        "{out}"
    );
    assert!(
        listener.accept().is_err(),
        "a reload request was made: {out}"
    );
    // Writable again: exactly one reload, remembered.
    fs_.remount("rw");
    reload("0s").expect(0, "reloaded:");
    reload("0s").ok();
    assert_eq!(count(), 1);
    drop(app);
    tally(
        "state dir read-only, --on-drift reload",
        7,
        0,
        0,
        "no reload until it can be remembered",
    );
}

/// The state file is written once per look that changed something: a
/// drift's first look (when its grace window starts) is one save, not a
/// trial save and then the real one; an unchanged look writes nothing.
#[test]
fn a_drift_onset_is_saved_once() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        crate::support::skip_e2e("a_drift_onset_is_saved_once", "strace is not installed");
        return;
    }
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    env.init();
    let log = env.path("strace.log");
    let saves = |grace: &str| {
        let out = std::process::Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=rename,renameat,renameat2", "-o"])
            .arg(&log)
            .arg(crate::support::BIN)
            .arg("liveness")
            .arg("--state-dir")
            .arg(&env.state_dir)
            .args(["--grace", grace])
            .arg(env.vol.path())
            .env_clear()
            .output()
            .unwrap();
        let out = Out::from_output(out);
        out.no_panic();
        let renames = fs::read_to_string(&log).unwrap_or_default();
        let n = renames.lines().filter(|l| l.contains(".json")).count();
        (out, n, renames)
    };
    let (out, n, log_text) = saves("1h");
    out.ok();
    assert_eq!(n, 0, "an unchanged look writes nothing: {log_text}");
    env.vol.write(&[("app.yaml", "v: 2\n")]);
    let (out, n, log_text) = saves("1h");
    out.expect(0, "drift:");
    assert_eq!(n, 1, "one save at the drift's onset: {log_text}");
    let (out, n, log_text) = saves("1h");
    out.expect(0, "drift:");
    assert_eq!(n, 0, "the drift is remembered, nothing new: {log_text}");
}
