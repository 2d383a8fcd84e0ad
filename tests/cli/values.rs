//! How option values are read: an argument is one value whatever it holds
//! (only the `DRIFTPROBE_PATHS`, `DRIFTPROBE_EXCLUDE` and `DRIFTPROBE_ENV`
//! variables are lists), booleans and choices are read as people write
//! them in a pod spec, and an empty variable is unset (issue 13, items 4
//! and 13).

use crate::support::*;
use std::fs;

/// The paths `digest --json` hashed, in order.
fn hashed(out: &Out) -> Vec<String> {
    assert_eq!(out.code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("digest --json");
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// A `sleep` started with exactly `vars` (killed on drop).
struct App(std::process::Child);

impl App {
    fn start(vars: &[(&str, &str)]) -> App {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .env_clear()
            .envs(vars.iter().copied())
            .spawn()
            .expect("spawn sleep");
        // Its environ is the new one once it has exec'd.
        let comm = format!("/proc/{}/comm", child.id());
        for _ in 0..500 {
            if fs::read_to_string(&comm).unwrap_or_default().trim() == "sleep" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        App(child)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `init /data/cv:1` watches the directory `cv:1`, not `cv` and `./1`.
#[test]
fn a_colon_in_a_path_argument_is_part_of_the_path() {
    let env = TestEnv::new();
    let dir = env.path("cv:1");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("app.conf"), "v1\n").unwrap();
    let out = env.run("init", &[&dir]);
    assert_eq!(out.code, 0, "{out}");
    let status = env.run("status", &[&dir]);
    assert_eq!(status.code, 0, "{status}");
    assert!(
        status
            .stdout
            .contains(&format!("watching:   {}\n", dir.display())),
        "{status}"
    );
    assert!(!status.stdout.contains("missing"), "{status}");
    // The variable is still a list.
    let (x, y) = (env.path("x"), env.path("y"));
    fs::write(&x, "x\n").unwrap();
    fs::write(&y, "y\n").unwrap();
    let mut cmd = env.cmd("digest");
    cmd.arg("--json").env(
        "DRIFTPROBE_PATHS",
        format!("{}:{}", x.display(), y.display()),
    );
    let out = run(&mut cmd);
    let (x, y) = (x.display().to_string(), y.display().to_string());
    assert_eq!(hashed(&out), [x, y], "{out}");
}

/// `--exclude 'a,b'` excludes the file named `a,b`, not `a` and `b`;
/// `DRIFTPROBE_EXCLUDE=a,b` excludes both.
#[test]
fn a_comma_in_an_exclude_argument_is_part_of_the_glob() {
    let env = TestEnv::new();
    let dir = env.path("conf");
    fs::create_dir(&dir).unwrap();
    for name in ["a,b", "a", "b", "c"] {
        fs::write(dir.join(name), name).unwrap();
    }
    let out = env.run(
        "digest",
        &[
            "--json".as_ref(),
            "--exclude".as_ref(),
            "a,b".as_ref(),
            dir.as_os_str(),
        ],
    );
    assert_eq!(hashed(&out), ["a", "b", "c"]);
    let mut cmd = env.cmd("digest");
    cmd.env("DRIFTPROBE_EXCLUDE", "a,b").arg("--json").arg(&dir);
    assert_eq!(hashed(&run(&mut cmd)), ["a,b", "c"]);
}

/// `--env X=/p/a,b` compares X with the file `a,b`; `DRIFTPROBE_ENV` is a
/// list of such pairs.
#[test]
fn a_comma_in_an_env_argument_is_part_of_the_path() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    let app = App::start(&[("LOG_LEVEL", "info"), ("MODE", "fast")]);
    let pid = app.0.id().to_string();
    let level = env.path("level,file");
    let mode = env.path("mode");
    fs::write(&level, "info").unwrap();
    fs::write(&mode, "fast").unwrap();
    let pair = format!("LOG_LEVEL={}", level.display());
    env.on_vol("liveness", &["--pid", &pid, "--env", &pair])
        .ok();
    fs::write(&level, "debug").unwrap();
    env.on_vol("liveness", &["--pid", &pid, "--env", &pair])
        .drift()
        .contains("env LOG_LEVEL differs");
    // The variable: two pairs (a comma separates them), the second one
    // drifted.
    let plain = env.path("level");
    fs::write(&plain, "info").unwrap();
    fs::write(&mode, "slow").unwrap();
    let pair = format!("LOG_LEVEL={}", plain.display());
    let mut cmd = env.cmd("liveness");
    cmd.env("DRIFTPROBE_ENV", format!("{pair},MODE={}", mode.display()))
        .args(["--pid", &pid])
        .arg(env.vol.path());
    run(&mut cmd).drift().contains("env MODE differs");
    // A broken piece of the variable is a usage error naming it.
    let mut cmd = env.cmd("liveness");
    cmd.env("DRIFTPROBE_ENV", format!("{pair},NOEQUALS"))
        .args(["--pid", &pid])
        .arg(env.vol.path());
    let out = run(&mut cmd);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("DRIFTPROBE_ENV"), "{out}");
}

/// `DRIFTPROBE_FULL=1`, `yes`, `On`, `0`, empty: all accepted; a typo is
/// still a usage error.
#[test]
fn booleans_are_read_as_people_write_them() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    for value in ["1", "0", "true", "FALSE", "yes", "No", "on", "OFF", ""] {
        let mut cmd = env.cmd("liveness");
        cmd.env("DRIFTPROBE_FULL", value).arg(env.vol.path());
        run(&mut cmd).ok();
        let mut cmd = env.cmd("status");
        cmd.env("DRIFTPROBE_JSON", value).arg(env.vol.path());
        let out = run(&mut cmd);
        assert_eq!(out.code, 0, "DRIFTPROBE_JSON={value:?}: {out}");
        let json = ["1", "true", "yes", "on"].contains(&value.to_ascii_lowercase().as_str());
        assert_eq!(
            out.stdout.starts_with('{'),
            json,
            "DRIFTPROBE_JSON={value:?}: {out}"
        );
    }
    let mut cmd = env.cmd("liveness");
    cmd.env("DRIFTPROBE_FULL", "ture").arg(env.vol.path());
    let out = run(&mut cmd);
    assert_eq!(out.code, 2, "{out}");
    // The flag itself still takes no value.
    env.on_vol("liveness", &["--full"]).ok();
}

/// An empty `DRIFTPROBE_*` variable is unset; choices ignore case.
#[test]
fn empty_variables_are_unset_and_choices_ignore_case() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    let mut cmd = env.cmd("readiness");
    for var in [
        "DRIFTPROBE_ON_ERROR",
        "DRIFTPROBE_ON_DRIFT",
        "DRIFTPROBE_ON_INVALID",
        "DRIFTPROBE_EXCLUDE",
        "DRIFTPROBE_ENV",
        "DRIFTPROBE_SIGNAL",
        "DRIFTPROBE_VALIDATE",
        "DRIFTPROBE_STAGGER",
        "DRIFTPROBE_READINESS_GRACE",
        "DRIFTPROBE_FORCE",
    ] {
        cmd.env(var, "");
    }
    cmd.arg(env.vol.path());
    run(&mut cmd).ok();
    // An empty DRIFTPROBE_PATHS with no argument: no PATH, a usage error.
    let mut cmd = env.cmd("liveness");
    cmd.env("DRIFTPROBE_PATHS", "");
    assert_eq!(run(&mut cmd).code, 2);
    // Unreadable state dir: "cannot determine"; liveness passes it unless
    // told ON_ERROR=Fail (any case).
    let blocked = env.path("blocked");
    fs::write(&blocked, "a file, not a dir").unwrap();
    for (value, code) in [("Fail", 3), ("FAIL", 3), ("pass", 0), ("Pass", 0)] {
        let mut cmd = driftprobe();
        cmd.env("DRIFTPROBE_ON_ERROR", value)
            .args(["liveness", "--state-dir"])
            .arg(blocked.join("sub"))
            .arg(env.vol.path());
        let out = run(&mut cmd);
        assert_eq!(out.code, code, "DRIFTPROBE_ON_ERROR={value}: {out}");
    }
    let mut cmd = env.cmd("liveness");
    cmd.env("DRIFTPROBE_ON_DRIFT", "Adopt").arg(env.vol.path());
    run(&mut cmd).ok();
}
