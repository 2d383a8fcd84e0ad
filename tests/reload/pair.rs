//! Liveness and readiness of one container act as one (issue 19): one
//! reload per change of the watched files whichever probes carry
//! `--on-drift reload`, run at the same moment as the kubelet runs them; a
//! reload by one clears the drift of every watch set holding the same
//! files (a directory, one file in it, the same with another `--exclude`);
//! `--on-drift adopt` beside a reloading probe leaves the change to it; and
//! a probe killed between its signal and its state save is not followed by
//! a second signal.

use super::common::*;
use super::http::{Behaviour, Fake, OK};
use crate::support::*;
use std::ffi::OsString;
use std::process::{Command as StdCommand, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// `driftprobe SUB ARGS...` for both probes, started at the same moment.
fn at_once(env: &TestEnv, a: (&str, Vec<OsString>), b: (&str, Vec<OsString>)) -> (Out, Out) {
    let barrier = Arc::new(Barrier::new(2));
    let spawn = |(sub, args): (&str, Vec<OsString>)| {
        let mut cmd = env.cmd(sub);
        cmd.args(args);
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            barrier.wait();
            run(&mut cmd)
        })
    };
    let (a, b) = (spawn(a), spawn(b));
    (a.join().unwrap(), b.join().unwrap())
}

fn args(list: &[&str], path: &std::path::Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = list.iter().map(Into::into).collect();
    v.push(path.into());
    v
}

/// Runs `changes` config changes, each followed by liveness and readiness
/// at the same moment, both with `--on-drift reload --reload-url` against
/// a server that takes 300 ms to answer. Readiness watches `ready_path`.
/// Every change is reloaded exactly once, and said so by one probe.
fn one_post_per_change(split: bool, contents: &[&str], extra: &[&str]) {
    let server = Fake::start(Behaviour::Answer(Duration::from_millis(300), OK));
    let env = TestEnv::new();
    env.vol
        .write(&[("app.yaml", "v: 0\n"), ("other.txt", "x\n")]);
    let dir = env.vol.path().to_path_buf();
    let ready_path = if split {
        dir.join("app.yaml")
    } else {
        dir.clone()
    };
    env.init();
    env.run("init", &[&ready_path]);
    let url = server.url();
    let mut flags = vec![
        "--grace",
        "0",
        "--on-drift",
        "reload",
        "--reload-url",
        &url,
        "--reload-timeout",
        "3s",
    ];
    flags.extend_from_slice(extra);
    let (mut reloaded, mut waited) = (0, 0);
    for (i, content) in contents.iter().enumerate() {
        env.vol
            .write(&[("app.yaml", *content), ("other.txt", "x\n")]);
        let (live, ready) = at_once(
            &env,
            ("liveness", args(&flags, &dir)),
            ("readiness", args(&flags, &ready_path)),
        );
        for out in [&live, &ready] {
            out.no_panic();
            assert_eq!(out.code, 0, "change {i}: {live}\n{ready}");
            let line = out.line();
            assert!(
                ["reloaded:", "reloading:", "ok:", "validating:"]
                    .iter()
                    .any(|p| line.starts_with(p)),
                "change {i}: {out}"
            );
        }
        for out in [&live, &ready]
            .iter()
            .filter(|o| o.stdout.starts_with("reloading:"))
        {
            out.contains("another probe (")
                .contains("is reloading the app since");
        }
        waited += [&live, &ready]
            .iter()
            .filter(|o| o.stdout.starts_with("reloading:"))
            .count();
        let said = [&live, &ready]
            .iter()
            .filter(|o| o.stdout.starts_with("reloaded:"))
            .count();
        reloaded += said;
        assert_eq!(
            server.heads().len(),
            i + 1,
            "change {i}: one request per change: {live}\n{ready}"
        );
        assert_eq!(
            said, 1,
            "change {i}: one probe says it reloaded, the one that did: {live}\n{ready}"
        );
    }
    assert_eq!(reloaded, contents.len());
    // Started together, the second probe nearly always finds the first
    // one's request under way.
    if contents.len() >= 10 {
        assert!(waited > 0, "no probe ever found a reload under way");
    }
    eprintln!(
        "{waited} of {} changes found a reload under way",
        contents.len()
    );
    // Both watch sets now hold the last config: nothing more to ask.
    let (live, ready) = at_once(
        &env,
        ("liveness", args(&flags, &dir)),
        ("readiness", args(&flags, &ready_path)),
    );
    live.expect(0, "ok:");
    ready.expect(0, "ok:");
    assert_eq!(server.heads().len(), contents.len());
    for path in [&dir, &ready_path] {
        let v = json(&env.run("status", &[OsString::from("--json"), path.into()]));
        assert_eq!(v["state"], "matches", "{}: {v}", path.display());
    }
}

const TEN: [&str; 10] = [
    "v: 1\n", "v: 2\n", "v: 3\n", "v: 4\n", "v: 5\n", "v: 6\n", "v: 7\n", "v: 8\n", "v: 9\n",
    "v: 10\n",
];

/// `DRIFTPROBE_ON_DRIFT=reload` in the pod's env reaches both probes:
/// 10 changes, 10 requests (not 13 or 20).
#[test]
fn both_probes_reloading_send_one_request_per_change() {
    one_post_per_change(false, &TEN, &[]);
}

/// The same with different watch sets: the directory, and one file in it.
#[test]
fn both_probes_reloading_different_watch_sets_send_one_request_per_change() {
    one_post_per_change(true, &TEN, &[]);
}

/// `--validate` answers once per digest; a config seen before is not a
/// reason to reload it twice: V1, V2, V1, V2 is 4 requests, not 8.
#[test]
fn a_config_seen_before_is_reloaded_once_per_change() {
    one_post_per_change(
        false,
        &["v: 1\n", "v: 2\n", "v: 1\n", "v: 2\n"],
        &["--validate", "true"],
    );
}

/// A probe killed by the kubelet mid-request leaves its claim behind; the
/// next probe does not wait for it to expire (`--reload-timeout`) and asks
/// again.
#[test]
fn a_claim_left_by_a_killed_probe_does_not_block_the_next() {
    let server = Fake::start(Behaviour::Silent);
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    env.init();
    env.vol.write(&[("app.yaml", "v: 2\n")]);
    let url = server.url();
    let mut cmd = StdCommand::new(BIN);
    cmd.env_clear()
        .args(["liveness", "--state-dir"])
        .arg(&env.state_dir)
        .args(["--grace", "0", "--on-drift", "reload", "--reload-url", &url])
        .args(["--reload-timeout", "20s"])
        .arg(env.vol.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut probe = cmd.spawn().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || server.heads().len() == 1),
        "the request was not made"
    );
    probe.kill().unwrap();
    probe.wait().unwrap();
    let out = env.on_vol(
        "readiness",
        &[
            "--grace",
            "0",
            "--on-drift",
            "reload",
            "--reload-url",
            &url,
            "--reload-timeout",
            "300ms",
        ],
    );
    out.expect(1, "drift:")
        .contains("gave no answer within 300ms");
    assert_eq!(server.heads().len(), 2, "asked again at once");
}

/// A host process with a SIGHUP handler that records each one at once
/// (`wait` is interrupted by a trapped signal).
fn hup_app(env: &TestEnv) -> (Proc, std::path::PathBuf) {
    let got = env.path("hups");
    let script = format!(
        "trap 'echo got >> {}' HUP; while :; do sleep 1 & wait $!; done",
        got.display()
    );
    let app = Proc::spawn(StdCommand::new("sh").args(["-c", &script]));
    assert!(
        wait_until(Duration::from_secs(5), || catches(app.pid(), 1)),
        "the app never installed its HUP trap"
    );
    (app, got)
}

/// Liveness reloads `/etc/config` by signal; readiness watches
/// `/etc/config/app.yaml`, and another readiness the directory with one
/// more `--exclude`: the reload clears the drift of all three.
#[test]
fn a_reload_clears_the_drift_of_every_watch_set_holding_the_files() {
    let env = TestEnv::new();
    env.vol
        .write(&[("app.yaml", "v: 1\n"), ("other.txt", "x1\n")]);
    let (app, got) = hup_app(&env);
    let pid = app.pid().to_string();
    let dir = env.vol.path().to_path_buf();
    let file = dir.join("app.yaml");
    env.init();
    env.run("init", &[&file]);
    env.on_vol("init", &["--exclude", "other.txt"]);
    let live = || {
        env.on_vol(
            "liveness",
            &["--grace", "0", "--on-drift", "reload", "--pid", &pid],
        )
    };
    let ready_file = || {
        env.run(
            "readiness",
            &[OsString::from("--grace"), "0".into(), file.clone().into()],
        )
    };
    let ready_excl = || env.on_vol("readiness", &["--grace", "0", "--exclude", "other.txt"]);
    live().expect(0, "ok:");

    env.vol
        .write(&[("app.yaml", "v: 2\n"), ("other.txt", "x1\n")]);
    ready_file()
        .expect(1, "drift:")
        .contains("1 changed (app.yaml)");
    ready_excl()
        .expect(1, "drift:")
        .contains("1 changed (app.yaml)");
    live().expect(0, "reloaded:").contains("sent SIGHUP");
    assert!(wait_until(Duration::from_secs(5), || hups(&got) == 1));
    // status shows it before readiness has looked again.
    let v = json(&env.run("status", &[OsString::from("--json"), file.clone().into()]));
    assert_eq!(v["state"], "matches", "{v}");
    assert_eq!(v["baseline"]["source"], "reload", "{v}");
    ready_file().expect(0, "ok:").contains("by reload");
    ready_excl().expect(0, "ok:").contains("by reload");
    let v = json(&env.run("status", &[OsString::from("--json"), file.clone().into()]));
    assert_eq!(v["state"], "matches", "{v}");

    // A change outside the one-file watch set, excluded by the other:
    // reloaded, and neither readiness probe ever saw a drift.
    env.vol
        .write(&[("app.yaml", "v: 2\n"), ("other.txt", "x2\n")]);
    ready_file().expect(0, "ok:");
    ready_excl().expect(0, "ok:");
    live()
        .expect(0, "reloaded:")
        .contains("1 changed (other.txt)");
    ready_file().expect(0, "ok:");
    ready_excl().expect(0, "ok:");
    live().expect(0, "ok:");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hups(&got), 2, "one signal per change");
}

/// `readiness --on-drift adopt` beside `liveness --on-drift reload`: the
/// adopting probe leaves the change to the reloading one instead of
/// adopting it first (which would leave nothing to reload).
#[test]
fn adopt_beside_reload_waits_for_the_reload() {
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    let (app, got) = hup_app(&env);
    let pid = app.pid().to_string();
    env.init();
    let live = || {
        env.on_vol(
            "liveness",
            &["--grace", "0", "--on-drift", "reload", "--pid", &pid],
        )
    };
    let ready = || env.on_vol("readiness", &["--grace", "0", "--on-drift", "adopt"]);
    live().expect(0, "ok:");
    ready().expect(0, "ok:");

    env.vol.write(&[("app.yaml", "v: 2\n")]);
    let out = ready();
    out.expect(0, "reloading:").contains(
        "left to the reload by another probe of this container (liveness --on-drift reload)",
    );
    assert!(!out.stdout.contains("adopted:"), "{out}");
    live().expect(0, "reloaded:");
    assert!(wait_until(Duration::from_secs(5), || hups(&got) == 1));
    ready().expect(0, "ok:").contains("by reload");
    live().expect(0, "ok:");
    assert_eq!(hups(&got), 1);

    // Files no reloading probe watches are adopted as before.
    let other = env.volume("other");
    other.write(&[("feature.flags", "a\n")]);
    let adopt_other = || {
        env.run(
            "readiness",
            &[
                OsString::from("--grace"),
                "0".into(),
                "--on-drift".into(),
                "adopt".into(),
                other.path().into(),
            ],
        )
    };
    env.run("init", &[other.path()]);
    other.write(&[("feature.flags", "b\n")]);
    adopt_other().expect(0, "adopted:");
    adopt_other().expect(0, "ok:");
    assert_eq!(hups(&got), 1);
}

/// The kubelet kills a probe past its timeout. One killed after its
/// `kill(2)` but before its state was saved (held there by strace right
/// after the sent mark's pwrite) must not be followed by a second signal.
#[test]
fn a_probe_killed_between_the_signal_and_the_save_does_not_signal_again() {
    let test = "a_probe_killed_between_the_signal_and_the_save_does_not_signal_again";
    if !StdCommand::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return skip_e2e(test, "strace is not installed");
    }
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    let (app, got) = hup_app(&env);
    let pid = app.pid().to_string();
    env.init();
    let opts = ["--grace", "0", "--on-drift", "reload", "--pid", &pid];
    env.on_vol("liveness", &opts).expect(0, "ok:");
    env.vol.write(&[("app.yaml", "v: 2\n")]);
    let after = env.digest();

    // Held right after its one pwrite(2), the in-place "sent" mark that
    // follows kill(2), before the state is saved. (Counting fsyncs instead
    // depended on how many saves came before the signal.)
    let mut strace = StdCommand::new("strace");
    strace
        .args(["-qq", "-o", "/dev/null", "-e", "trace=pwrite64"])
        .args(["-e", "inject=pwrite64:delay_exit=20000000:when=1"])
        .arg(BIN)
        .args(["liveness", "--state-dir"])
        .arg(&env.state_dir)
        .args(opts)
        .arg(env.vol.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut tracer = strace.spawn().expect("spawn strace");
    let signalled = wait_until(Duration::from_secs(10), || hups(&got) == 1);
    // The probe is strace's child: kill it (SIGKILL reaches a traced
    // process), then strace.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", tracer.id()))
        .unwrap_or_default();
    let held = !children.trim().is_empty();
    for child in children.split_whitespace() {
        let child: i32 = child.parse().unwrap();
        // SAFETY: kill(2) on the probe this test started (through strace).
        unsafe { libc::kill(child, libc::SIGKILL) };
    }
    let _ = tracer.kill();
    let _ = tracer.wait();
    assert!(signalled, "the probe never sent its signal");
    assert!(
        held,
        "the probe finished before it was killed: strace held it at no pwrite (no sent mark after the signal?)"
    );

    let out = env.on_vol("liveness", &opts);
    out.expect(0, "ok:");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hups(&got), 1, "signalled again after the kill: {out}");
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["baseline"]["digest"], after.as_str(), "{v}");
    assert_eq!(v["state"], "matches", "{v}");
}
