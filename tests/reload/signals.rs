//! `--on-drift reload` against targets that can and cannot be reloaded:
//! PID 1 of a PID namespace with and without a handler (the kernel drops
//! unhandled signals to PID 1 while `kill` reports success), a vanished
//! pidfile, a dead pid, and EPERM from an unprivileged probe.

use super::common::*;
use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command as StdCommand;
use std::time::Duration;

const V1: [(&str, &str); 1] = [("app.yaml", "v: 1\n")];
const V2: [(&str, &str); 1] = [("app.yaml", "v: 2\n")];
const V3: [(&str, &str); 1] = [("app.yaml", "v: 3\n")];
const SIGHUP: i32 = 1;
const SIGUSR1: i32 = 10;

/// `--on-drift reload` with grace 0, the volume last.
fn reload_opts<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--grace", "0", "--on-drift", "reload"];
    v.extend_from_slice(extra);
    v
}

#[test]
fn pid1_with_a_handler_is_reloaded() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let got = env.path("hups");
    let script = hup_handler_script(&got);
    let ns = Ns::start(&["--pid", "--mount-proc"], &["sh", "-c", &script], "sh");
    assert!(
        wait_until(Duration::from_secs(5), || catches(ns.init_pid, SIGHUP)),
        "the PID 1 shell never installed its HUP trap"
    );
    let vol = env.vol.path().to_path_buf();
    let with = |opts: &[&str]| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = opts.iter().map(Into::into).collect();
        a.push(vol.clone().into());
        a
    };
    let out = ns.run(&env, "init", &with(&[]));
    assert_eq!(out.code, 0, "init inside the namespace: {out}");
    ns.run(&env, "liveness", &with(&reload_opts(&[]))).ok();

    env.vol.write(&V2);
    let before = env.digest();
    let out = ns.run(&env, "liveness", &with(&reload_opts(&["--signal", "HUP"])));
    out.expect(0, "reloaded:")
        .contains("1 changed (app.yaml)")
        .contains("SIGHUP")
        .contains("pid 1 (sh)");
    assert!(
        wait_until(Duration::from_secs(5), || hups(&got) == 1),
        "PID 1 never ran its HUP handler: {:?}",
        fs::read_to_string(&got)
    );
    // The new config is the baseline now.
    ns.run(&env, "liveness", &with(&reload_opts(&[]))).ok();
    ns.run(&env, "readiness", &with(&["--grace", "0"])).ok();
    let v = json(&ns.run(&env, "status", &with(&["--json"])));
    assert_eq!(v["state"], "matches", "{v}");
    let reloads = v["reloads"].as_array().expect("reloads");
    assert_eq!(reloads.len(), 1, "{v}");
    assert_eq!(reloads[0]["signal"], "SIGHUP", "{v}");
    assert_eq!(reloads[0]["pid"], 1, "{v}");
    assert_eq!(reloads[0]["target"], "the container's entrypoint", "{v}");
    assert_eq!(reloads[0]["to_digest"], before.as_str(), "{v}");
    assert_eq!(v["baseline"]["digest"], before.as_str(), "{v}");
    assert_eq!(v["baseline"]["source"], "reload", "{v}");

    // The handler is per signal: USR1 is not caught, so no pretend reload.
    env.vol.write(&V3);
    let out = ns.run(&env, "liveness", &with(&reload_opts(&["--signal", "USR1"])));
    out.expect(1, "drift:").contains("no handler");
    not_reloaded(&out);
    assert!(!catches(ns.init_pid, SIGUSR1));
    assert_eq!(hups(&got), 1, "no further signal");
    // PID 1 is still alive (an unhandled USR1 would have been dropped, but
    // the probe must not have tried).
    assert!(fs::metadata(format!("/proc/{}", ns.init_pid)).is_ok());
}

#[test]
fn pid1_without_a_handler_fails_instead_of_pretending() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    // PID 1 is `sleep 600`: no handler for anything.
    let ns = Ns::pid();
    assert!(!catches(ns.init_pid, SIGHUP));
    let init = ns.on_vol(&env, "init", &[]);
    assert_eq!(init.code, 0, "{init}");
    env.vol.write(&V2);
    for _ in 0..2 {
        let out = ns.on_vol(&env, "liveness", &reload_opts(&["--signal", "HUP"]));
        out.expect(1, "drift:")
            .contains("1 changed (app.yaml)")
            .contains("reload failed")
            .contains("pid 1 (sleep) has no handler for SIGHUP");
        not_reloaded(&out);
    }
    // The sleep is still PID 1 and was not touched; nothing was adopted.
    assert!(ns.proc1_stat().starts_with("1 (sleep)"));
    let v = json(&ns.on_vol(&env, "status", &["--json"]));
    assert_eq!(v["state"], "drift", "{v}");
    assert_eq!(v["reloads"].as_array().map(Vec::len), Some(0), "{v}");
    // "init", or "init --force" when the files were written in the tick
    // the namespace's PID 1 started (the tests' DRIFTPROBE_FORCE vouches).
    let source = v["baseline"]["source"].as_str().unwrap_or_default();
    assert!(source == "init" || source == "init --force", "{v}");
}

#[test]
fn vanished_pidfile_fails_and_names_it() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    env.init();
    let pidfile = env.path("run/app.pid");
    env.vol.write(&V2);
    let p = pidfile.to_str().unwrap();
    let out = env.on_vol("liveness", &reload_opts(&["--pidfile", p]));
    out.expect(1, "drift:")
        .contains("reload failed")
        .contains(p);
    not_reloaded(&out);
    // Liveness inside the grace window still passes: only the reload failed.
    env.on_vol(
        "liveness",
        &["--grace", "1h", "--on-drift", "reload", "--pidfile", p],
    )
    .expect(0, "drift:");
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["reloads"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["state"], "drift", "{v}");
}

#[test]
fn pidfile_naming_a_dead_process_fails() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    env.init();
    let mut child = StdCommand::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().unwrap();
    assert!(fs::metadata(format!("/proc/{dead}")).is_err(), "pid reused");
    let pidfile = env.path("app.pid");
    fs::write(&pidfile, format!("{dead}\n")).unwrap();
    env.vol.write(&V2);
    let out = env.on_vol(
        "liveness",
        &reload_opts(&["--pidfile", pidfile.to_str().unwrap()]),
    );
    out.expect(1, "drift:")
        .contains("reload failed")
        .contains(&format!("no process {dead}"));
    not_reloaded(&out);
    // Same for --pid.
    let out = env.on_vol("liveness", &reload_opts(&["--pid", &dead.to_string()]));
    out.expect(1, "drift:")
        .contains(&format!("no process {dead}"));
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["reloads"].as_array().map(Vec::len), Some(0), "{v}");
    // In the host's PID namespace the files are younger than PID 1: the
    // tests' DRIFTPROBE_FORCE vouched for them.
    assert_eq!(v["baseline"]["source"], "init --force", "{v}");
}

#[test]
fn unprivileged_probe_gets_eperm_and_fails() {
    let env = TestEnv::new();
    // Everything the unprivileged probe reads must be reachable by it.
    fs::set_permissions(env.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    env.vol.write(&V1);
    fs::create_dir(&env.state_dir).unwrap();
    let chown = StdCommand::new("chown")
        .arg("65534:65534")
        .arg(&env.state_dir)
        .status()
        .unwrap();
    assert!(chown.success());
    fs::set_permissions(&env.state_dir, fs::Permissions::from_mode(0o700)).unwrap();
    // A copy of the binary it can execute wherever the target dir is.
    let bin = env.path("driftprobe");
    write_executable(&bin, &fs::read(BIN).unwrap());

    // A root-owned app that does handle HUP.
    let got = env.path("hups");
    let app = Proc::spawn(StdCommand::new("sh").args(["-c", &hup_handler_script(&got)]));
    assert!(
        wait_until(Duration::from_secs(5), || catches(app.pid(), SIGHUP)),
        "app never installed its trap"
    );
    let as_nobody = |sub: &str, opts: &[&str]| -> Out {
        let setpriv = [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            bin.to_str().unwrap(),
        ];
        env.on_vol_via(&setpriv, sub, opts)
    };
    let out = as_nobody("init", &[]);
    assert_eq!(out.code, 0, "init as nobody: {out}");
    let pid = app.pid().to_string();
    as_nobody("liveness", &reload_opts(&["--pid", &pid])).ok();
    env.vol.write(&V2);
    let out = as_nobody("liveness", &reload_opts(&["--pid", &pid]));
    out.expect(1, "drift:")
        .contains("reload failed")
        .contains(&format!("not permitted to signal pid {pid}"));
    not_reloaded(&out);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hups(&got), 0, "the root app must not have been signalled");
    let v = json(&as_nobody("status", &["--json"]));
    assert_eq!(v["reloads"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["state"], "drift", "{v}");
}

/// `--process NAME` signals the oldest *live* process of that name: an
/// older zombie of the same name (exited, not yet reaped) cannot reload.
#[test]
fn process_name_target_skips_zombies() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    env.init();
    // A unique comm (at most 15 bytes): copies of `true` and `sh` under it.
    let name = format!("dpz{}", std::process::id());
    let bin_dir = env.path("bin");
    fs::create_dir(&bin_dir).unwrap();
    let exe = bin_dir.join(&name);
    // The zombie: `true` under that name, exited and never waited for (yet).
    write_executable(&exe, &fs::read("/bin/true").unwrap());
    let mut zombie = StdCommand::new(&exe).spawn().expect("spawn zombie");
    let zpid = zombie.id();
    assert!(wait_until(Duration::from_secs(5), || {
        fs::read_to_string(format!("/proc/{zpid}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
    }));
    std::thread::sleep(Duration::from_millis(20));
    // The live app, started later: `sh` under the same name, handling HUP.
    fs::remove_file(&exe).unwrap();
    write_executable(&exe, &fs::read("/bin/sh").unwrap());
    let got = env.path("hups");
    let app = Proc::spawn(StdCommand::new(&exe).args(["-c", &hup_handler_script(&got)]));
    assert!(wait_until(Duration::from_secs(5), || catches(
        app.pid(),
        SIGHUP
    )));
    env.vol.write(&V2);
    let out = env.on_vol("liveness", &reload_opts(&["--process", &name]));
    let _ = zombie.wait();
    out.expect(0, "reloaded:")
        .contains(&format!("pid {} ({name})", app.pid()));
    assert!(wait_until(Duration::from_secs(5), || hups(&got) == 1));
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(
        v["reloads"][0]["target"],
        format!("process {name}").as_str(),
        "{v}"
    );
    assert_eq!(v["reloads"][0]["pid"], app.pid(), "{v}");
}
