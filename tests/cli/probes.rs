//! Verdicts of `liveness`/`readiness` against kubelet-style updates: unchanged,
//! identical rewrites, changed/added/removed keys, grace windows, revert,
//! independent liveness/readiness windows, `init` idempotence, `run`, `status`.

use std::thread::sleep;
use std::time::Duration;

use crate::support::*;

const V1: [(&str, &str); 3] = [
    ("app.yaml", "port: 80\n"),
    ("log.level", "info"),
    ("nested/a/b", "deep"),
];

fn env_v1() -> TestEnv {
    let env = TestEnv::new();
    env.vol.write(&V1);
    env.init();
    env
}

#[test]
fn unchanged_is_ok() {
    let env = env_v1();
    for _ in 0..3 {
        env.liveness("0").ok();
        env.readiness("0").ok();
    }
    env.on_vol("liveness", &["--full", "--grace", "0"]).ok();
    // default grace
    env.on_vol("liveness", &[]).ok();
    env.on_vol("readiness", &[]).ok();
}

#[test]
fn identical_rewrite_is_ok() {
    let env = env_v1();
    let target = env.vol.data_target();
    assert_eq!(env.vol.write(&V1), WriteOutcome::Unchanged);
    assert_eq!(env.vol.data_target(), target);
    env.liveness("0").ok();
    // New ..<ts> dir, same bytes: new inodes, mtimes, ctimes. Not drift.
    for _ in 0..3 {
        assert!(matches!(
            env.vol.write_forced(&V1),
            WriteOutcome::Written(_)
        ));
        env.liveness("0").ok();
        env.readiness("0").ok();
    }
    env.on_vol("liveness", &["--full", "--grace", "0"]).ok();
}

#[test]
fn changed_key_is_drift() {
    let env = env_v1();
    env.vol.write(&[
        ("app.yaml", "port: 8080\n"),
        ("log.level", "info"),
        ("nested/a/b", "deep"),
    ]);
    env.liveness("0").drift().contains("1 changed");
    env.readiness("0").drift().contains("1 changed");
    // The default grace is 0s too.
    env.on_vol("liveness", &[]).drift();
}

#[test]
fn changed_nested_key_is_drift() {
    let env = env_v1();
    env.vol.write(&[
        ("app.yaml", "port: 80\n"),
        ("log.level", "info"),
        ("nested/a/b", "deeper"),
    ]);
    env.liveness("0").drift().contains("1 changed");
}

#[test]
fn added_key_is_drift() {
    let env = env_v1();
    let mut v2 = V1.to_vec();
    v2.push(("new.key", "x"));
    env.vol.write(&v2);
    env.liveness("0").drift().contains("1 added");
}

#[test]
fn removed_key_is_drift() {
    let env = env_v1();
    env.vol.write(&V1[..2]);
    env.liveness("0").drift().contains("1 removed");
}

#[test]
fn counts_in_summary() {
    let env = env_v1();
    // 2 changed, 1 added, 1 removed
    env.vol.write(&[
        ("app.yaml", "port: 1\n"),
        ("log.level", "debug"),
        ("x", "1"),
    ]);
    let out = env.liveness("0");
    out.drift()
        .contains("2 changed")
        .contains("1 added")
        .contains("1 removed");
    assert!(
        out.line().len() < 300,
        "one short line for the kubelet event: {out}"
    );
}

#[test]
fn grace_window() {
    let env = env_v1();
    env.vol.write(&[("app.yaml", "changed")]);
    // First sight of the drift: inside the window, exit 0 but says drift.
    env.liveness("1s").expect(0, "drift:");
    env.liveness("1s").expect(0, "drift:");
    sleep(Duration::from_millis(1300));
    env.liveness("1s").drift();
    // A longer grace on the same state is still inside.
    env.liveness("1h").expect(0, "drift:");
}

#[test]
fn revert_clears_drift() {
    let env = env_v1();
    env.vol.write(&[("app.yaml", "changed")]);
    env.liveness("1s").expect(0, "drift:");
    sleep(Duration::from_millis(1300));
    env.liveness("1s").drift();
    // Back to the baseline bytes (a new ts dir): healthy again.
    env.vol.write(&V1);
    env.liveness("1s").ok();
    env.liveness("0").ok();
    // Drifting again starts a new window: the old drift start is forgotten.
    env.vol.write(&[("app.yaml", "changed again")]);
    env.liveness("1s").expect(0, "drift:");
}

#[test]
fn liveness_and_readiness_windows_are_independent() {
    let env = env_v1();
    env.vol.write(&[
        ("app.yaml", "changed"),
        ("log.level", "info"),
        ("nested/a/b", "deep"),
    ]);
    env.readiness("0").drift().contains("1 changed");
    env.liveness("2s").expect(0, "drift:").contains("1 changed");
    env.readiness("0").drift();
    env.liveness("2s").expect(0, "drift:");
    // Readiness with its own generous window is inside it too.
    env.readiness("1h").expect(0, "drift:");
    sleep(Duration::from_millis(2200));
    env.liveness("2s").drift();
}

#[test]
fn init_is_noop_in_same_instance_unless_forced() {
    let env = env_v1();
    env.vol.write(&[("app.yaml", "changed")]);
    // Second init in the same container instance: baseline kept (the
    // tests' DRIFTPROBE_FORCE left out).
    let mut cmd = env.cmd("init");
    cmd.env_remove("DRIFTPROBE_FORCE").arg(env.vol.path());
    run(&mut cmd).expect(0, "baseline already recorded at");
    env.liveness("0").drift();
    // --force re-records it.
    let out = env.on_vol("init", &["--force"]);
    assert_eq!(out.code, 0, "{out}");
    env.liveness("0").ok();
}

#[test]
fn run_records_baseline_then_execs() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    // exec keeps the PID: the shell prints its own PID, which must be the
    // PID of the process we spawned.
    let mut child = std::process::Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("run")
        .arg("--state-dir")
        .arg(&env.state_dir)
        .arg(env.vol.path())
        .args(["--", "sh", "-c", "echo $$; exit 7"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(7),
        "exit code of CMD passes through; stdout {stdout:?}"
    );
    assert_eq!(stdout.trim(), pid.to_string(), "run must exec (same PID)");
    env.liveness("0").ok();
    env.vol.write(&[("app.yaml", "changed")]);
    env.liveness("0").drift();
}

#[test]
fn run_missing_or_unexecutable_command() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let out = run(env
        .cmd("run")
        .arg(env.vol.path())
        .args(["--", "/nonexistent/cmd"]));
    out.no_panic();
    assert_eq!(out.code, 127, "{out}");
    let notexec = env.path("notexec");
    std::fs::write(&notexec, "#!/bin/sh\n").unwrap();
    let out = run(env.cmd("run").arg(env.vol.path()).arg("--").arg(&notexec));
    out.no_panic();
    assert_eq!(out.code, 126, "{out}");
}

#[test]
fn status_reports_changes() {
    let env = env_v1();
    let out = env.on_vol("status", &[]);
    out.no_panic();
    assert!(out.code == 0 || out.code == 1, "{out}");
    let v = env.on_vol("status", &["--json"]);
    v.no_panic();
    let j: serde_json::Value = serde_json::from_str(v.stdout.trim())
        .unwrap_or_else(|e| panic!("status --json not JSON ({e}): {v}"));
    assert!(j.is_object(), "{j}");
    let base = env.digest();
    assert!(
        v.stdout.contains(&base),
        "status --json should contain the baseline digest {base}: {v}"
    );
    env.vol.write(&[
        ("app.yaml", "changed"),
        ("log.level", "info"),
        ("nested/a/b", "deep"),
        ("added.key", "1"),
    ]);
    let out = env.on_vol("status", &[]);
    out.no_panic();
    assert!(
        out.stdout.contains("app.yaml"),
        "status names the changed file: {out}"
    );
    assert!(
        out.stdout.contains("added.key"),
        "status names the added file: {out}"
    );
    let v = env.on_vol("status", &["--json"]);
    let cur = env.digest();
    assert!(
        v.stdout.contains(&cur),
        "status --json should contain the current digest: {v}"
    );
    assert!(
        v.stdout.contains("app.yaml") && v.stdout.contains("added.key"),
        "{v}"
    );
}

#[test]
fn missing_dir_is_drift_not_crash() {
    let env = env_v1();
    std::fs::remove_dir_all(env.vol.path()).unwrap();
    env.liveness("0").drift().contains("removed");
    env.readiness("1h").expect(0, "drift:");
    let out = env.on_vol("status", &[]);
    out.no_panic();
}

/// `--on-invalid` does nothing on liveness (it always holds and passes):
/// typed there, it is a warning on stderr, with the verdict unchanged; from
/// DRIFTPROBE_ON_INVALID (set for both probes of a container) it is quiet,
/// and readiness takes it without a word.
#[test]
fn on_invalid_on_liveness_warns_that_it_does_nothing() {
    let env = env_v1();
    const WARNING: &str = "--on-invalid is ignored by liveness";
    let out = env.on_vol("liveness", &["--on-invalid", "fail"]);
    out.ok();
    assert!(out.stderr.contains(WARNING), "{out}");
    assert!(
        out.stderr.contains("give it to the readiness probe"),
        "{out}"
    );
    let mut cmd = env.cmd("liveness");
    cmd.env("DRIFTPROBE_ON_INVALID", "fail").arg(env.vol.path());
    let out = run(&mut cmd);
    out.ok();
    assert!(!out.stderr.contains(WARNING), "{out}");
    let out = env.on_vol("readiness", &["--on-invalid", "fail"]);
    out.ok();
    assert!(!out.stderr.contains("--on-invalid"), "{out}");
}
