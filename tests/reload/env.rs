//! `--env NAME=PATH`: the value the app was started with (its
//! /proc/PID/environ) against the current content of the file that the same
//! ConfigMap key is mounted as. Values are compared, never printed.

use super::common::*;
use crate::support::*;
use std::process::Command as StdCommand;

const SECRETS: [&str; 2] = ["info", "debug"];

/// The app: started with LOG_LEVEL=`level`, HUP handler installed.
fn app_with_log_level(level: &str, hup_file: &std::path::Path) -> Proc {
    let app = Proc::spawn(
        StdCommand::new("sh")
            .args(["-c", &hup_handler_script(hup_file)])
            .env("LOG_LEVEL", level),
    );
    assert!(
        wait_until(std::time::Duration::from_secs(5), || catches(app.pid(), 1)),
        "the app never installed its HUP handler"
    );
    app
}

#[test]
fn env_var_differing_from_its_file_is_drift_and_cannot_be_reloaded() {
    let env = TestEnv::new();
    env.vol
        .write(&[("app.yaml", "a: 1\n"), ("log_level", "info")]);
    let got = env.path("hups");
    let app = app_with_log_level("info", &got);
    let pid = app.pid().to_string();
    let env_opt = format!("LOG_LEVEL={}", env.vol.path().join("log_level").display());
    let probe = |sub: &str, extra: &[&str]| -> Out {
        let mut opts = vec!["--env", &env_opt, "--pid", &pid];
        opts.extend_from_slice(extra);
        let out = env.on_vol(sub, &opts);
        no_values(&out, &SECRETS);
        out
    };
    env.init();
    probe("liveness", &["--grace", "0"]).ok();
    probe("readiness", &["--grace", "0"]).ok();

    // The ConfigMap key changes: the file follows, the env var cannot.
    env.vol
        .write(&[("app.yaml", "a: 1\n"), ("log_level", "debug")]);
    probe("liveness", &["--grace", "1h"])
        .expect(0, "drift:")
        .contains("LOG_LEVEL");
    probe("liveness", &["--grace", "0"])
        .drift()
        .contains("LOG_LEVEL");
    let out = probe("liveness", &["--grace", "0", "--on-drift", "reload"]);
    out.drift()
        .contains("LOG_LEVEL")
        .contains("reload cannot change environment variables");
    not_reloaded(&out);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(hups(&got), 0, "a reload that cannot help must not be sent");
    let st = env.on_vol("status", &["--json"]);
    no_values(&st, &SECRETS);
    let v = json(&st);
    assert_eq!(v["reloads"].as_array().map(Vec::len), Some(0), "{v}");

    // Reverting the key clears it.
    env.vol
        .write(&[("app.yaml", "a: 1\n"), ("log_level", "info")]);
    probe("liveness", &["--grace", "0", "--on-drift", "reload"]).ok();
}

/// Without `--env` this setup is healthy (the files equal the baseline):
/// only the feature can see that the app runs with another value.
#[test]
fn env_drift_without_any_file_change() {
    let env = TestEnv::new();
    env.vol.write(&[("log_level", "debug")]);
    let got = env.path("hups");
    let app = app_with_log_level("info", &got);
    let pid = app.pid().to_string();
    env.init();
    env.on_vol("liveness", &["--grace", "0", "--pid", &pid])
        .ok();
    let env_opt = format!("LOG_LEVEL={}", env.vol.path().join("log_level").display());
    let out = env.on_vol(
        "liveness",
        &["--grace", "0", "--env", &env_opt, "--pid", &pid],
    );
    out.drift().contains("LOG_LEVEL");
    no_values(&out, &SECRETS);
    let out = env.on_vol(
        "readiness",
        &["--grace", "0", "--env", &env_opt, "--pid", &pid],
    );
    out.drift().contains("LOG_LEVEL");
    no_values(&out, &SECRETS);
    let out = env.on_vol(
        "liveness",
        &[
            "--grace",
            "0",
            "--env",
            &env_opt,
            "--pid",
            &pid,
            "--on-drift",
            "reload",
        ],
    );
    out.drift()
        .contains("reload cannot change environment variables");
    not_reloaded(&out);
    no_values(&out, &SECRETS);
    assert_eq!(hups(&got), 0);
    // Via the environment variable form of the option, too.
    let mut cmd = env.cmd("liveness");
    cmd.env("DRIFTPROBE_ENV", &env_opt)
        .env("DRIFTPROBE_PID", &pid)
        .args(["--grace", "0"])
        .arg(env.vol.path());
    let out = run(&mut cmd);
    out.drift().contains("LOG_LEVEL");
    no_values(&out, &SECRETS);
}

/// Liveness has `--env`, readiness does not (the README's setup): readiness
/// sees equal files and must not clear the env drift liveness is timing,
/// or liveness's grace window would start over on every probe.
#[test]
fn a_probe_without_env_does_not_reset_the_env_drift_clock() {
    let env = TestEnv::new();
    env.vol.write(&[("log_level", "debug")]);
    let got = env.path("hups");
    let app = app_with_log_level("info", &got);
    let pid = app.pid().to_string();
    let env_opt = format!("LOG_LEVEL={}", env.vol.path().join("log_level").display());
    env.init();
    let liveness = || {
        env.on_vol(
            "liveness",
            &["--env", &env_opt, "--pid", &pid, "--grace", "1s"],
        )
    };
    liveness().expect(0, "drift:").contains("LOG_LEVEL");
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1_300);
    while std::time::Instant::now() < deadline {
        env.on_vol("readiness", &["--grace", "0"]).ok();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    liveness().drift().contains("LOG_LEVEL").contains("ended");
}
