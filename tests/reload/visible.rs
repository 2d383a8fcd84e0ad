//! What a probe makes visible (issue 17, section 3): `--log-changes`
//! mirrors each verdict change as one line to the container's log (the
//! stdout of the PID 1 of a PID namespace, on a file or a pipe this test
//! reads), without ever blocking on it or writing where it should not;
//! `--on-drift report` observes without failing or signalling; and the
//! misconfigurations that make a probe silently useless are said once, on
//! stderr, in the log and in `status`.

use super::common::*;
use crate::support::*;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub(super) const V1: [(&str, &str); 1] = [("app.yaml", "v: 1\n")];
pub(super) const V2: [(&str, &str); 1] = [("app.yaml", "v: 2\n")];

/// A PID namespace whose PID 1 (`sleep`) has its stdout on `stdout`.
pub(super) fn app_logging_to(stdout: Stdio) -> Ns {
    Ns::start_with_stdout(
        &["--pid", "--mount-proc"],
        &["sleep", "600"],
        "sleep",
        stdout,
    )
}

/// Files at [`V1`], and the app (PID 1 of a PID namespace) whose stdout,
/// the container's log, is the file returned.
pub(super) fn logging_app() -> (TestEnv, std::path::PathBuf, Ns) {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let log = env.path("container.log");
    let ns = app_logging_to(Stdio::from(File::create(&log).unwrap()));
    (env, log, ns)
}

pub(super) fn log_lines(log: &std::path::Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `status` inside the namespace, human form.
pub(super) fn status(ns: &Ns, env: &TestEnv, paths: &[&std::path::Path]) -> Out {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    ns.run(env, "status", &args)
}

#[test]
fn verdict_changes_are_logged_once_each_way() {
    let (env, log, ns) = logging_app();
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    let live = || ns.on_vol(&env, "liveness", &["--log-changes"]);
    live().ok();
    // An unchanged probe writes no state, --log-changes or not.
    let state = env.state_file();
    let before = fs::metadata(&state).unwrap();
    for _ in 0..4 {
        live().ok();
    }
    let after = fs::metadata(&state).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec(), before.mtime()),
        (after.ino(), after.mtime_nsec(), after.mtime()),
        "an unchanged probe wrote the state"
    );
    assert_eq!(log_lines(&log).len(), 1, "{:?}", log_lines(&log));

    env.vol.write(&V2);
    for _ in 0..4 {
        live().drift();
    }
    env.vol.write(&V1);
    for _ in 0..4 {
        live().ok();
    }
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 3, "one line per change: {lines:?}");
    assert!(
        lines[0].starts_with("driftprobe liveness: ok: config matches the baseline"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("driftprobe liveness: drift: 1 changed (app.yaml) since "),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("driftprobe liveness: ok: "),
        "{lines:?}"
    );
    // Names, never contents.
    let text = fs::read_to_string(&log).unwrap();
    assert!(!text.contains("v: 2") && !text.contains("v: 1"), "{text}");

    // Readiness has its own record: its first verdict is a change.
    ns.on_vol(&env, "readiness", &["--log-changes"]).ok();
    ns.on_vol(&env, "readiness", &["--log-changes"]).ok();
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[3].starts_with("driftprobe readiness: ok: "),
        "{lines:?}"
    );
    // Without --log-changes nothing is mirrored.
    env.vol.write(&V2);
    ns.on_vol(&env, "liveness", &[]).drift();
    assert_eq!(log_lines(&log).len(), 4);
    let st = status(&ns, &env, &[env.vol.path()]);
    assert!(!st.stdout.contains("not written"), "{st}");
}

/// A pipe: (read end, write end), both close-on-exec.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 returns.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned them; nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn set_nonblocking(fd: &OwnedFd) {
    // SAFETY: plain fcntl calls on a descriptor this test owns.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        assert!(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) == 0);
    }
}

/// Everything the pipe holds now.
fn drain(read: &OwnedFd) -> String {
    set_nonblocking(read);
    let mut file = File::from(read.try_clone().unwrap());
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[test]
fn a_full_pipe_or_a_dead_reader_does_not_stall_the_probe() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let (read, write) = pipe();
    // Fill the pipe: nobody reads it (a stuck log collector).
    set_nonblocking(&write);
    let mut w = File::from(write.try_clone().unwrap());
    while std::io::Write::write(&mut w, &[b'x'; 4096]).is_ok() {}
    let ns = app_logging_to(Stdio::from(write));
    drop(w);
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    let started = Instant::now();
    let out = ns.on_vol(&env, "liveness", &["--log-changes"]);
    out.ok();
    // A blocked write never returns (the run timeout would kill it, 30 s).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let st = status(&ns, &env, &[env.vol.path()]);
    assert!(st.stdout.contains("is full"), "{st}");
    // Read again: the next change comes through, whole.
    let _ = drain(&read);
    env.vol.write(&V2);
    ns.on_vol(&env, "liveness", &["--log-changes"]).drift();
    let got = drain(&read);
    assert!(
        got.starts_with("driftprobe liveness: drift: 1 changed (app.yaml)") && got.ends_with('\n'),
        "{got:?}"
    );
    assert_eq!(got.matches('\n').count(), 1, "{got:?}");
    // The reader is gone: EPIPE, not a SIGPIPE death, not a wait.
    drop(read);
    env.vol.write(&V1);
    let started = Instant::now();
    ns.on_vol(&env, "liveness", &["--log-changes"]).ok();
    assert!(started.elapsed() < Duration::from_secs(5));
    let st = status(&ns, &env, &[env.vol.path()]);
    assert!(
        st.stdout
            .contains("its last line for the container's log was not written"),
        "{st}"
    );
}

#[test]
fn odd_stdout_targets_are_refused_and_paths_never_followed() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    // A directory, and (where there is one) a block device: never opened
    // for writing.
    let mut odd = vec![(File::open(env.tmp.path()).unwrap(), "is a directory")];
    if let Ok(dev) = File::open("/dev/loop0") {
        odd.push((dev, "is a block device"));
    }
    for (stdout, refused) in odd {
        let ns = app_logging_to(Stdio::from(stdout));
        let _ = fs::remove_dir_all(&env.state_dir);
        assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
        ns.on_vol(&env, "liveness", &["--log-changes"]).ok();
        let st = status(&ns, &env, &[env.vol.path()]);
        assert!(st.stdout.contains(refused), "{refused}: {st}");
    }
    // The app's log file, its path then replaced by a symlink to another
    // file: the line goes to the file the app holds, not where the path
    // points now.
    let log = env.path("app.log");
    let ns = app_logging_to(Stdio::from(File::create(&log).unwrap()));
    let moved = env.path("app.log.1");
    fs::rename(&log, &moved).unwrap();
    let decoy = env.path("decoy");
    fs::write(&decoy, "").unwrap();
    std::os::unix::fs::symlink(&decoy, &log).unwrap();
    let _ = fs::remove_dir_all(&env.state_dir);
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    ns.on_vol(&env, "liveness", &["--log-changes"]).ok();
    assert_eq!(fs::read_to_string(&decoy).unwrap(), "");
    assert_eq!(log_lines(&moved).len(), 1, "{:?}", log_lines(&moved));
}

#[test]
fn report_mode_passes_drift_invalid_and_grace_and_never_signals() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let got = env.path("hups");
    let log = env.path("container.log");
    let script = hup_handler_script(&got);
    let ns = Ns::start_with_stdout(
        &["--pid", "--mount-proc"],
        &["sh", "-c", &script],
        "sh",
        Stdio::from(File::create(&log).unwrap()),
    );
    assert!(
        wait_until(Duration::from_secs(5), || catches(ns.init_pid, 1)),
        "the PID 1 shell never installed its HUP trap"
    );
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    let before = env.digest();
    let report = |sub: &str, extra: &[&str]| {
        let mut opts = vec!["--on-drift", "report", "--log-changes", "--signal", "HUP"];
        opts.extend_from_slice(extra);
        ns.on_vol(&env, sub, &opts)
    };
    report("liveness", &["--grace", "0"]).ok();
    env.vol.write(&V2);
    // Inside the grace window.
    report("liveness", &["--grace", "1h"])
        .expect(0, "drift: 1 changed (app.yaml)")
        .contains("left) (report only)");
    // Past it: still passes, nothing reloaded or adopted.
    for _ in 0..3 {
        let out = report("liveness", &["--grace", "0"]);
        out.expect(0, "drift: 1 changed (app.yaml)")
            .contains("ended ")
            .contains("(report only)");
        not_reloaded(&out);
    }
    // Invalid, where readiness would fail (--on-invalid fail).
    for _ in 0..2 {
        report(
            "readiness",
            &[
                "--grace",
                "0",
                "--validate",
                "false",
                "--on-invalid",
                "fail",
            ],
        )
        .expect(0, "invalid: 1 changed (app.yaml)")
        .contains("(report only)");
    }
    // "Cannot determine" still follows --on-error (readiness: fail).
    report("readiness", &["--max-entries", "1"]).expect(3, "cannot determine");
    report("liveness", &["--max-entries", "1", "--on-error", "fail"]).expect(3, "cannot determine");
    // The app got no signal; the baseline is the old config.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hups(&got), 0, "report mode signalled the app");
    let v = json(&ns.on_vol(&env, "status", &["--json"]));
    assert_eq!(v["state"], "drift", "{v}");
    assert_eq!(v["reloads"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["baseline"]["digest"], before.as_str(), "{v}");
    // What each probe kind last mirrored, for scripts.
    let mirrored = v["mirrored"].as_array().expect("mirrored");
    let class = |probe: &str| {
        mirrored
            .iter()
            .find(|m| m["probe"] == probe)
            .map(|m| m["class"].clone())
    };
    assert_eq!(class("liveness"), Some("cannot determine".into()), "{v}");
    assert_eq!(class("readiness"), Some("cannot determine".into()), "{v}");
    // One line per change, each saying it only reports.
    let lines = log_lines(&log);
    let expected = [
        "driftprobe liveness: ok: ",
        "driftprobe liveness: drift: ",
        "driftprobe liveness: drift: ",
        "driftprobe readiness: invalid: ",
        "driftprobe readiness: cannot determine: ",
        "driftprobe liveness: cannot determine: ",
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:?}");
    for (line, start) in lines.iter().zip(expected) {
        assert!(line.starts_with(start), "{start}: {lines:?}");
    }
    assert!(lines[1].ends_with("left) (report only)"), "{lines:?}");
    assert!(lines[2].ends_with("(report only)"), "{lines:?}");
}

#[test]
fn misconfigurations_are_said_once_on_stderr_in_the_log_and_by_status() {
    let (env, log, ns) = logging_app();
    let missing = env.path("not-mounted");
    let vol = env.vol.path().to_path_buf();
    let paths = [vol.as_path(), missing.as_path()];
    let probe = |extra: &[&str]| {
        let mut a: Vec<std::ffi::OsString> = [
            "--validate",
            "true",
            "--validate-timeout",
            "3s",
            "--on-drift",
            "reload",
            "--reload-url",
            "http://127.0.0.1:9/-/reload",
            "--reload-timeout",
            "5s",
        ]
        .iter()
        .chain(extra)
        .map(Into::into)
        .collect();
        a.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
        ns.run(&env, "liveness", &a)
    };
    let init: Vec<std::ffi::OsString> = paths.iter().map(|p| p.as_os_str().to_owned()).collect();
    assert_eq!(ns.run(&env, "init", &init).code, 0);
    let first = probe(&[]);
    first.ok();
    for needle in [
        // One probe may validate, then reload: the two must fit together.
        "misconfigured: --validate-timeout 3s + --reload-timeout 5s cannot fit inside --probe-timeout 1s",
        "does not exist: nothing there is watched",
    ] {
        assert!(first.stderr.contains(needle), "{needle}: {first}");
        let lines = log_lines(&log);
        assert_eq!(
            lines.iter().filter(|l| l.contains(needle)).count(),
            1,
            "{needle}: {lines:?}"
        );
    }
    assert_eq!(log_lines(&log).len(), 2, "{:?}", log_lines(&log));
    for _ in 0..3 {
        let again = probe(&[]);
        again.ok();
        assert!(!again.stderr.contains("misconfigured"), "{again}");
        // status shows them every time.
        let st = status(&ns, &env, &paths);
        assert!(
            st.stdout.contains(
                "liveness: misconfigured: --validate-timeout 3s + --reload-timeout 5s cannot fit"
            ) && st.stdout.contains("liveness: misconfigured: watched path "),
            "{st}"
        );
    }
    assert_eq!(log_lines(&log).len(), 2);
    // Told the probe's real timeout (timeoutSeconds: 10), they fit.
    probe(&["--probe-timeout", "10s"])
        .ok()
        .lacks("misconfigured");
    let st = status(&ns, &env, &paths);
    assert!(!st.stdout.contains("cannot fit"), "{st}");
    assert!(st.stdout.contains("does not exist"), "{st}");
    assert_eq!(log_lines(&log).len(), 2);

    // A state dir that cannot be used: nowhere to remember it was said,
    // so each probe says it (and liveness passes: --on-error pass).
    let file = env.path("a-file");
    fs::write(&file, "").unwrap();
    let bad = file.join("state");
    for n in 1..=2 {
        let mut cmd = ns.driftprobe();
        cmd.env_remove("DRIFTPROBE_STATE_DIR")
            .arg("liveness")
            .arg("--state-dir")
            .arg(&bad)
            .arg(&vol);
        let out = run(&mut cmd);
        out.expect(0, "cannot determine");
        assert!(
            out.stderr
                .contains("misconfigured: the state dir cannot be used"),
            "{out}"
        );
        let lines = log_lines(&log);
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("driftprobe liveness: misconfigured: the state dir"))
                .count(),
            n,
            "{lines:?}"
        );
    }
}

/// The README's alert rules (examples/alerts/): valid for Prometheus, and
/// each fires on the series it is meant for (promtool's rule unit tests).
#[test]
fn the_example_alert_rules_check_and_fire() {
    let promtool = std::env::var_os("DRIFTPROBE_PROMTOOL")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain([std::path::PathBuf::from("/usr/bin")])
                .map(|d| d.join("promtool"))
                .find(|p| p.is_file())
        });
    let Some(promtool) = promtool else {
        skip_e2e(
            "the_example_alert_rules_check_and_fire",
            "promtool is not installed (apt-get install --no-install-recommends prometheus)",
        );
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/alerts");
    for args in [
        ["check", "rules", "driftprobe.rules.yaml"],
        ["test", "rules", "driftprobe.rules.test.yaml"],
    ] {
        let out = std::process::Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `status` says a state dir cannot be written every time it is asked
/// (readOnlyRootFilesystem without --state-dir on an emptyDir).
#[test]
fn status_says_the_state_dir_cannot_be_written() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let ro = env.path("ro");
    fs::create_dir(&ro).unwrap();
    let script = format!(
        "mount -t tmpfs -o ro tmpfs {ro} || exit 90; \"$BIN\" status --state-dir {ro}/state {vol}",
        ro = ro.display(),
        vol = env.vol.path().display()
    );
    let out = sh_in_private_mounts(&script);
    assert_ne!(out.code, 90, "cannot mount a tmpfs (needs root): {out}");
    assert!(
        out.stdout.contains(&format!(
            "warning:    misconfigured: the state dir {}/state cannot be written (Read-only file system)",
            ro.display()
        )),
        "{out}"
    );
    // A writable one is not reported.
    let ok = env.run("status", &[env.vol.path()]);
    assert!(!ok.stdout.contains("misconfigured"), "{ok}");
}
