//! `digest`, `--help`, usage errors, `--exclude`, single files, several paths,
//! environment variables, `install`.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::*;

fn json(out: &Out) -> serde_json::Value {
    out.no_panic();
    assert_eq!(out.code, 0, "digest --json failed: {out}");
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("invalid JSON ({e}): {out}"))
}

fn manifest_paths(v: &serde_json::Value) -> Vec<String> {
    v["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files array in {v}"))
        .iter()
        .map(|f| f["path"].as_str().expect("path string").to_string())
        .collect()
}

#[test]
fn help_lists_commands() {
    let out = run(driftprobe().arg("--help"));
    out.no_panic();
    assert_eq!(out.code, 0, "{out}");
    for cmd in ["init", "run", "liveness", "readiness", "status", "digest"] {
        assert!(
            out.stdout.contains(cmd),
            "--help should mention {cmd}: {out}"
        );
    }
    let out = run(driftprobe().args(["liveness", "--help"]));
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("--grace"), "{out}");
}

/// Each probe's `--help` offers what that probe uses, with examples of
/// reloading (liveness) and of observing only (both).
#[test]
fn probe_help_offers_what_each_probe_uses() {
    let help = |sub: &str, flag: &str| {
        let out = run(driftprobe().args([sub, flag]));
        out.no_panic();
        assert_eq!(out.code, 0, "{out}");
        out.stdout
    };
    for flag in ["--help", "-h"] {
        // Liveness always holds an invalid config: --on-invalid is readiness's.
        let live = help("liveness", flag);
        assert!(!live.contains("--on-invalid"), "liveness {flag}: {live}");
        assert!(!live.contains("the pod leaves its Services"), "{live}");
        let ready = help("readiness", flag);
        assert!(ready.contains("--on-invalid"), "readiness {flag}: {ready}");
    }
    let live = help("liveness", "--help");
    for example in [
        "driftprobe liveness --on-drift report --log-changes /etc/config",
        "driftprobe liveness --on-drift reload --signal HUP --pidfile /run/nginx.pid",
        "--validate 'nginx -t' /etc/nginx/conf.d",
    ] {
        assert!(live.contains(example), "{example}: {live}");
    }
    let ready = help("readiness", "--help");
    let example = "driftprobe readiness --on-drift report --log-changes /etc/config";
    assert!(ready.contains(example), "{ready}");
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    env.vol.write(&[("k", "v")]);
    for bad in ["5x", "-1s", "abc", "1.5.3s"] {
        let out = env.on_vol("liveness", &["--grace", bad]);
        out.no_panic();
        assert_eq!(out.code, 2, "--grace {bad} must be a usage error: {out}");
    }
    let out = env.on_vol("liveness", &["--on-error", "maybe"]);
    assert_eq!(out.code, 2, "{out}");
    let out = run(driftprobe().arg("no-such-subcommand"));
    assert_eq!(out.code, 2, "{out}");
    let out = run(&mut driftprobe());
    out.no_panic();
    assert_eq!(out.code, 2, "no subcommand: {out}");
    // Good durations are accepted.
    env.init();
    for good in ["0", "500ms", "90s", "5m", "1h30m"] {
        env.liveness(good).ok();
    }
}

#[test]
fn digest_stable_across_locations_and_layouts() {
    let env = TestEnv::new();
    let payload = [
        ("app.yaml", "a: 1\n"),
        ("db/url", "postgres://x"),
        ("nested/a/b", "deep"),
    ];
    let a = env.volume("a");
    let b = env.volume("b");
    a.write(&payload);
    b.write(&payload);
    b.write_forced(&payload);
    let da = env.digest_of(&[a.path()]);
    let db = env.digest_of(&[b.path()]);
    assert_eq!(
        da, db,
        "same payload at another location / other ts dir must give the same digest"
    );
    assert_eq!(env.digest_of(&[a.path()]), da, "digest is deterministic");

    // A plain directory with the same relative paths and bytes: `..data` and
    // `..<ts>` are kubelet internals, never part of the digest.
    let plain = env.path("plain");
    for (k, v) in payload {
        let p = plain.join(k);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, v).unwrap();
    }
    assert_eq!(env.digest_of(&[&plain]), da, "kubelet layout vs plain dir");

    // Manifest: user-visible relative paths only, no `..` internals.
    let v = json(&run(env.cmd("digest").arg("--json").arg(a.path())));
    assert_eq!(v["digest"].as_str(), Some(da.as_str()), "{v}");
    let mut paths = manifest_paths(&v);
    paths.sort();
    assert_eq!(paths.len(), 3, "exactly the three keys: {paths:?}");
    for p in &paths {
        assert!(
            !p.split('/').any(|c| c.starts_with("..")),
            "internal path in manifest: {p}"
        );
    }
    let sizes: u64 = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_u64().unwrap())
        .sum();
    assert_eq!(
        sizes,
        payload.iter().map(|(_, v)| v.len() as u64).sum::<u64>()
    );
    for f in v["files"].as_array().unwrap() {
        let h = f["sha256"].as_str().unwrap();
        assert_eq!(h.len(), 64, "{f}");
    }
}

#[test]
fn digest_changes_with_content_and_names() {
    let env = TestEnv::new();
    env.vol.write(&[("a", "1"), ("b", "2")]);
    let d0 = env.digest();
    env.vol.write(&[("a", "1"), ("b", "3")]);
    let d1 = env.digest();
    assert_ne!(d0, d1, "content change");
    env.vol.write(&[("a", "1"), ("c", "3")]);
    let d2 = env.digest();
    assert_ne!(d1, d2, "rename of a key with the same bytes");
    env.vol.write(&[("a", "1"), ("b", "2")]);
    assert_eq!(env.digest(), d0, "back to the first version");
    // Moving bytes between keys must change the digest (path/content binding).
    let x = env.volume("x");
    x.write(&[("a", "12"), ("b", "")]);
    let y = env.volume("y");
    y.write(&[("a", "1"), ("b", "2")]);
    assert_ne!(env.digest_of(&[x.path()]), env.digest_of(&[y.path()]));
}

#[test]
fn exclude_glob() {
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "a"), ("cache.tmp", "1")]);
    let with = env.digest();
    let ex = |vol: &ConfigMapVolume| {
        let mut cmd = env.cmd("digest");
        cmd.args(["--exclude", "*.tmp"]).arg(vol.path());
        digest_line(&run(&mut cmd))
    };
    let without = ex(&env.vol);
    assert_ne!(with, without, "excluded file must not be in the digest");
    env.vol.write(&[("app.yaml", "a"), ("cache.tmp", "2")]);
    assert_eq!(ex(&env.vol), without, "excluded file changed");
    assert_ne!(env.digest(), with, "not excluded: change seen");

    // Probe with --exclude: excluded churn is not drift, other changes are.
    let out = env.on_vol("init", &["--exclude", "*.tmp"]);
    assert_eq!(out.code, 0, "{out}");
    env.vol.write(&[("app.yaml", "a"), ("cache.tmp", "3")]);
    env.on_vol("liveness", &["--exclude", "*.tmp", "--grace", "0"])
        .ok();
    env.vol.write(&[("app.yaml", "b"), ("cache.tmp", "3")]);
    env.on_vol("liveness", &["--exclude", "*.tmp", "--grace", "0"])
        .drift()
        .contains("1 changed");
}

#[test]
fn single_file_watch() {
    let env = TestEnv::new();
    env.vol.write(&[("watched", "1"), ("other", "1")]);
    let file = env.vol.path().join("watched");
    let d0 = env.digest_of(&[&file]);
    let probe = |sub: &str| run(env.cmd(sub).args(["--grace", "0"]).arg(&file));
    assert_eq!(env.run("init", &[&file]).code, 0);
    probe("liveness").ok();
    // Another key changes: the watched file (a symlink into ..data) did not.
    env.vol.write(&[("watched", "1"), ("other", "2")]);
    assert_eq!(env.digest_of(&[&file]), d0);
    probe("liveness").ok();
    // The watched key changes through a ..data swap.
    env.vol.write(&[("watched", "2"), ("other", "2")]);
    assert_ne!(env.digest_of(&[&file]), d0);
    probe("liveness").drift().contains("1 changed");
}

#[test]
fn several_paths() {
    let env = TestEnv::new();
    let a = env.volume("a");
    let b = env.volume("b");
    a.write(&[("x", "1")]);
    b.write(&[("y", "1")]);
    let paths = [a.path().as_os_str(), b.path().as_os_str()];
    let both = env.digest_of(&paths);
    assert_ne!(both, env.digest_of(&[a.path()]));
    assert_ne!(both, env.digest_of(&[b.path()]));
    assert_eq!(env.run("init", &paths).code, 0);
    let probe = || {
        let mut cmd = env.cmd("liveness");
        cmd.args(["--grace", "0"]).args(paths);
        run(&mut cmd)
    };
    probe().ok();
    b.write(&[("y", "2")]);
    probe().drift().contains("1 changed");
    b.write(&[("y", "1")]);
    probe().ok();
    a.write(&[("x", "1"), ("z", "new")]);
    probe().drift().contains("1 added");
}

#[test]
fn env_var_equivalents() {
    let env = TestEnv::new();
    let a = env.volume("a");
    let b = env.volume("b");
    a.write(&[("x", "1"), ("skip.tmp", "1")]);
    b.write(&[("y", "1")]);
    let paths = format!("{}:{}", a.path().display(), b.path().display());
    let cmd = |sub: &str| {
        let mut c = driftprobe();
        c.env("DRIFTPROBE_PATHS", &paths)
            .env("DRIFTPROBE_STATE_DIR", &env.state_dir)
            .env("DRIFTPROBE_EXCLUDE", "*.tmp,*.bak")
            .arg(sub);
        c
    };
    // digest from env == digest from args
    let mut c = env.cmd("digest");
    c.args(["--exclude", "*.tmp", "--exclude", "*.bak"])
        .arg(a.path())
        .arg(b.path());
    let from_args = digest_line(&run(&mut c));
    assert_eq!(
        digest_line(&run(&mut cmd("digest"))),
        from_args,
        "DRIFTPROBE_PATHS/EXCLUDE for digest"
    );

    let out = run(&mut cmd("init"));
    assert_eq!(out.code, 0, "init from env: {out}");
    assert_eq!(
        json_files(&env.state_dir).len(),
        1,
        "state written to DRIFTPROBE_STATE_DIR"
    );
    run(&mut cmd("liveness")).ok();
    run(&mut cmd("readiness")).ok();
    // Excluded by DRIFTPROBE_EXCLUDE.
    a.write(&[("x", "1"), ("skip.tmp", "2")]);
    run(&mut cmd("liveness")).ok();
    // Drift: default graces are 0s.
    b.write(&[("y", "2")]);
    run(&mut cmd("readiness")).drift().contains("1 changed");
    run(cmd("liveness").env("DRIFTPROBE_LIVENESS_GRACE", "1h")).expect(0, "drift:");
    run(cmd("readiness").env("DRIFTPROBE_READINESS_GRACE", "1h")).expect(0, "drift:");
    run(cmd("readiness").env("DRIFTPROBE_LIVENESS_GRACE", "1h")).drift();
    let out = run(cmd("liveness").env("DRIFTPROBE_LIVENESS_GRACE", "nonsense"));
    out.no_panic();
    assert_eq!(out.code, 2, "bad duration in env: {out}");
}

/// The app's process for `--pid`, its stdout (the container's log) a
/// file: a probe writes there, not to the stdout of this namespace's PID 1.
/// Killed and reaped however the test ends.
struct App(std::process::Child);

impl App {
    fn logging_to(log: &std::path::Path) -> App {
        let child = std::process::Command::new("sleep")
            .arg("600")
            .stdout(fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        App(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `DRIFTPROBE_ON_DRIFT=report`, as a pod spec's `env:` sets it: drift past
/// the grace window passes, the line says it only reports.
#[test]
fn env_on_drift_report() {
    let env = TestEnv::new();
    env.vol.write(&[("k", "v1")]);
    env.init();
    env.vol.write(&[("k", "v2")]);
    env.liveness("0").drift();
    for sub in ["liveness", "readiness"] {
        let mut cmd = env.cmd(sub);
        cmd.env("DRIFTPROBE_ON_DRIFT", "report").arg(env.vol.path());
        let out = run(&mut cmd);
        out.expect(0, "drift: 1 changed");
        assert!(out.stdout.contains("(report only)"), "{sub}: {out}");
    }
    // The flag beats the variable.
    let mut cmd = env.cmd("liveness");
    cmd.env("DRIFTPROBE_ON_DRIFT", "report")
        .args(["--on-drift", "fail"])
        .arg(env.vol.path());
    run(&mut cmd).drift().lacks("(report only)");
}

/// `DRIFTPROBE_LOG_CHANGES`: the verdict is written to the stdout of the
/// app's process (here a child named with --pid, its stdout a file).
#[test]
fn env_log_changes() {
    let env = TestEnv::new();
    env.vol.write(&[("k", "v1")]);
    env.init();
    let log = env.path("app.log");
    let app = App::logging_to(&log);
    let pid = app.pid();
    let probe = |value: &str| {
        let mut cmd = env.cmd("liveness");
        cmd.env("DRIFTPROBE_LOG_CHANGES", value)
            .args(["--pid", &pid])
            .arg(env.vol.path());
        run(&mut cmd)
    };
    for off in ["0", "false", ""] {
        probe(off).ok();
        assert_eq!(fs::read_to_string(&log).unwrap(), "", "LOG_CHANGES={off:?}");
    }
    probe("1").ok();
    probe("yes").ok();
    let lines = fs::read_to_string(&log).unwrap();
    // One line: the verdict changed once (from nothing logged to ok).
    assert_eq!(lines.lines().count(), 1, "{lines:?}");
    assert!(
        lines.starts_with("driftprobe liveness: ok: config matches the baseline"),
        "{lines:?}"
    );
}

/// `DRIFTPROBE_PROBE_TIMEOUT`: the probe's timeoutSeconds the validator's
/// timeout must fit in (less 200ms).
#[test]
fn env_probe_timeout() {
    let env = TestEnv::new();
    env.vol.write(&[("k", "v1")]);
    env.init();
    const CANNOT_FIT: &str = "--validate-timeout 3s cannot fit inside --probe-timeout";
    let log = env.path("app.log");
    let app = App::logging_to(&log);
    let pid = app.pid();
    let probe = |timeout: &str| {
        let mut cmd = env.cmd("liveness");
        cmd.env("DRIFTPROBE_PROBE_TIMEOUT", timeout)
            .args([
                "--validate",
                "true",
                "--validate-timeout",
                "3s",
                "--pid",
                &pid,
            ])
            .arg(env.vol.path());
        run(&mut cmd)
    };
    let roomy = probe("5s");
    roomy.ok();
    assert!(!roomy.stderr.contains("cannot fit"), "{roomy}");
    let tight = probe("1s");
    tight.ok();
    assert!(
        tight.stderr.contains(&format!("{CANNOT_FIT} 1s")),
        "{tight}"
    );
    // Said once, on stderr and in the container's log.
    let logged = fs::read_to_string(&log).unwrap();
    assert_eq!(logged.lines().count(), 1, "{logged:?}");
    assert!(logged.contains(&format!("{CANNOT_FIT} 1s")), "{logged:?}");
    let again = probe("1s");
    again.ok();
    assert!(!again.stderr.contains("cannot fit"), "{again}");
    let out = probe("soon");
    out.no_panic();
    assert_eq!(out.code, 2, "{out}");
}

/// `DRIFTPROBE_SIGNAL_HANDLED`: a boolean (a typo is a usage error); set
/// without --on-drift reload it is said to do nothing, like the flag.
#[test]
fn env_signal_handled() {
    let env = TestEnv::new();
    env.vol.write(&[("k", "v1")]);
    env.init();
    const IGNORED: &str = "--signal-handled is ignored without --on-drift reload";
    let probe = |value: &str| {
        let mut cmd = env.cmd("liveness");
        cmd.env("DRIFTPROBE_SIGNAL_HANDLED", value)
            .arg(env.vol.path());
        run(&mut cmd)
    };
    for on in ["1", "true", "Yes"] {
        let out = probe(on);
        out.ok();
        assert!(out.stderr.contains(IGNORED), "{on}: {out}");
    }
    for off in ["0", "off", ""] {
        let out = probe(off);
        out.ok();
        assert!(!out.stderr.contains("--signal-handled"), "{off:?}: {out}");
    }
    let out = probe("maybe");
    out.no_panic();
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("is not a boolean"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn env_on_error_and_full() {
    let env = TestEnv::new();
    env.vol.write(&[("k", "v")]);
    env.init();
    // DRIFTPROBE_FULL: forces hashing; still healthy.
    run(env
        .cmd("liveness")
        .env("DRIFTPROBE_FULL", "true")
        .arg(env.vol.path()))
    .ok();
    env.on_vol("liveness", &["--full"]).ok();
    // Unreadable state dir: cannot determine; --on-error pass turns it into 0.
    let bad_state = env.path("state-is-a-file");
    fs::write(&bad_state, "x").unwrap();
    let probe = |args: &[&str], envs: &[(&str, &str)]| {
        let mut c = driftprobe();
        c.args(args)
            .arg("--state-dir")
            .arg(&bad_state)
            .arg(env.vol.path());
        for (k, v) in envs {
            c.env(k, v);
        }
        run(&mut c)
    };
    // Defaults: readiness fails (3), liveness passes (0) so a broken probe
    // never restarts healthy pods; both still say why.
    probe(&["readiness"], &[]).expect(3, "cannot determine:");
    probe(&["liveness"], &[]).expect(0, "cannot determine:");
    probe(&["liveness", "--on-error", "fail"], &[]).expect(3, "cannot determine:");
    probe(&["readiness", "--on-error", "pass"], &[]).expect(0, "cannot determine:");
    probe(&["liveness"], &[("DRIFTPROBE_ON_ERROR", "fail")]).expect(3, "cannot determine:");
    probe(&["readiness"], &[("DRIFTPROBE_ON_ERROR", "pass")]).expect(0, "cannot determine:");
}

#[test]
fn install_copies_binary() {
    let env = TestEnv::new();
    let dest = env.path("bin/driftprobe");
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let out = run(driftprobe().arg("install").arg(&dest));
    out.no_panic();
    assert_eq!(out.code, 0, "{out}");
    let meta = fs::metadata(&dest).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        fs::read(&dest).unwrap(),
        fs::read(BIN).unwrap(),
        "byte-identical copy"
    );
    let out = run(assert_cmd::Command::new(&dest).args(["digest", "--help"]));
    assert_eq!(out.code, 0, "installed copy runs: {out}");
}

/// An init container is PID 1 at every run: a copy killed mid-write left
/// `.driftprobe.tmp.1` behind, and the next `install` (PID 1 again) must
/// neither fail on it nor leave it there. A fresh temp file (another
/// install under way) is left alone.
#[test]
fn install_as_pid_1_survives_a_leftover_temp_file() {
    let env = TestEnv::new();
    let dir = env.path("probe");
    fs::create_dir_all(&dir).unwrap();
    let stale = dir.join(".driftprobe.tmp.1");
    fs::write(&stale, "half a binary").unwrap();
    let st = std::process::Command::new("touch")
        .args(["-h", "-d", "2 hours ago"])
        .arg(&stale)
        .status()
        .unwrap();
    assert!(st.success());
    let fresh = dir.join(".driftprobe.tmp.7.1234");
    fs::write(&fresh, "being written").unwrap();
    let dest = dir.join("driftprobe");
    for round in 0..2 {
        let mut cmd = assert_cmd::Command::new("unshare");
        cmd.env_clear()
            .args(["--pid", "--fork", "--mount-proc", BIN, "install"])
            .arg(&dest)
            .timeout(RUN_TIMEOUT);
        let out = run(&mut cmd);
        out.no_panic();
        assert_eq!(out.code, 0, "round {round}: {out}");
        assert!(out.stdout.starts_with("installed driftprobe"), "{out}");
    }
    assert_eq!(fs::read(&dest).unwrap(), fs::read(BIN).unwrap());
    assert!(!stale.exists(), "the stale temp file is cleared");
    assert!(fresh.exists(), "a fresh temp file is left alone");
    let mut left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".driftprobe.tmp.7.1234", "driftprobe"]);
}
