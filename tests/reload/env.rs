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

/// PID 1 of a new PID namespace (a container's entrypoint) started with
/// exactly `vars`: perl, which rewrites its environment area for a process
/// title when `title` is given (`$0 = …`, as nginx does for its own).
fn entrypoint(vars: &[&str], title: Option<&str>) -> Ns {
    // comm follows the title (prctl): wait for it, so the rewrite is done.
    let (script, comm) = match title {
        Some(t) => (format!("$0 = '{t}'; sleep 600"), t.to_string()),
        None => ("sleep 600".to_string(), "perl".to_string()),
    };
    let mut argv = vec!["env", "-i"];
    argv.extend_from_slice(vars);
    argv.extend(["perl", "-e", &script]);
    Ns::start(&["--pid", "--mount-proc"], &argv, &comm)
}

/// Issue 13.1: `--env` against an app that rewrote its environment area.
/// Its /proc/1/environ then holds the title, LOG_LEVEL is not in it, and
/// every instance reported `drift: env LOG_LEVEL differs`: liveness
/// restarted it forever. Now that is "cannot determine" for the variable,
/// saying why (liveness passes it, readiness fails it); a variable really
/// absent from an intact environment is still a drift.
#[test]
fn an_app_that_rewrites_its_environ_is_cannot_determine_not_drift() {
    let env = TestEnv::new();
    env.vol
        .write(&[("app.yaml", "a: 1\n"), ("log_level", "info")]);
    let env_opt = format!("LOG_LEVEL={}", env.vol.path().join("log_level").display());
    let opts = ["--grace", "0", "--env", env_opt.as_str()];

    // Intact environment: compared as always.
    let app = entrypoint(&["LOG_LEVEL=info"], None);
    app.on_vol(&env, "init", &[]);
    app.on_vol(&env, "liveness", &opts).ok();
    drop(app);
    let app = entrypoint(&["OTHER=1"], None);
    app.on_vol(&env, "init", &[]);
    let out = app.on_vol(&env, "liveness", &opts);
    out.drift().contains("env LOG_LEVEL differs");
    drop(app);

    // Rewritten for a process title: never a drift.
    let app = entrypoint(&["LOG_LEVEL=info"], Some("apptitle"));
    let environ = std::fs::read(format!("/proc/{}/environ", app.init_pid)).unwrap();
    assert!(
        !contains_bytes(&environ, b"LOG_LEVEL"),
        "perl did not rewrite its environ: {environ:?}"
    );
    app.on_vol(&env, "init", &[]);
    for (sub, code) in [("liveness", 0), ("readiness", 3)] {
        let out = app.on_vol(&env, sub, &opts);
        out.expect(code, "cannot determine:")
            .contains("LOG_LEVEL")
            .contains("no longer holds an environment");
        no_values(&out, &SECRETS);
    }
    // The files drifting as well are still reported as such.
    env.vol
        .write(&[("app.yaml", "a: 2\n"), ("log_level", "info")]);
    app.on_vol(&env, "liveness", &opts)
        .drift()
        .contains("app.yaml");
}

/// The same with nginx itself (the case from the issue), when installed:
/// its master process rewrites the environment area for "nginx: master
/// process …".
#[test]
fn nginx_as_the_entrypoint_is_cannot_determine_not_drift() {
    let Some(nginx) = ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
    else {
        eprintln!("SKIPPED: no nginx");
        return;
    };
    let env = TestEnv::new();
    env.vol.write(&[("log_level", "info")]);
    let prefix = env.path("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\nevents {{}}\n",
            p = prefix.display()
        ),
    )
    .unwrap();
    let prefix_s = prefix.display().to_string();
    let conf_s = conf.display().to_string();
    let app = Ns::start(
        &["--pid", "--mount-proc"],
        &[
            "env",
            "-i",
            "LOG_LEVEL=info",
            nginx,
            "-e",
            "stderr",
            "-p",
            &prefix_s,
            "-c",
            &conf_s,
        ],
        "nginx",
    );
    let cmdline = format!("/proc/{}/cmdline", app.init_pid);
    assert!(
        wait_until(std::time::Duration::from_secs(5), || {
            std::fs::read(&cmdline)
                .unwrap_or_default()
                .starts_with(b"nginx: master")
        }),
        "nginx never set its title"
    );
    app.on_vol(&env, "init", &[]);
    let env_opt = format!("LOG_LEVEL={}", env.vol.path().join("log_level").display());
    app.on_vol(&env, "liveness", &["--grace", "0", "--env", &env_opt])
        .expect(0, "cannot determine:")
        .contains("LOG_LEVEL");
}
