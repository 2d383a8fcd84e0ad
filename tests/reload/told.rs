//! What a probe tells the container's log beyond the files' verdict
//! (visible.rs has the rest): a watched path that is missing is said once
//! per container, whatever drifts meanwhile; an `--app-timeout` that
//! cannot fit is a misconfiguration that says what it costs.

use super::visible::{app_logging_to, log_lines, status, V1, V2};
use crate::support::*;
use std::fs::File;
use std::process::Stdio;

#[test]
fn a_missing_path_is_said_once_per_container_through_a_drift() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let log = env.path("container.log");
    let ns = app_logging_to(Stdio::from(File::create(&log).unwrap()));
    let missing = env.path("not-mounted");
    let vol = env.vol.path().to_path_buf();
    let paths = [vol.as_path(), missing.as_path()];
    let args = |extra: &[&str]| {
        let mut a: Vec<std::ffi::OsString> = extra.iter().map(Into::into).collect();
        a.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
        a
    };
    assert_eq!(ns.run(&env, "init", &args(&[])).code, 0);
    let live = || ns.run(&env, "liveness", &args(&["--log-changes", "--grace", "0"]));
    let warned = "misconfigured: watched path ";
    let told = || {
        log_lines(&log)
            .iter()
            .filter(|l| l.contains(warned))
            .count()
    };
    let first = live();
    first.ok();
    assert!(first.stderr.contains(warned), "{first}");
    assert_eq!(told(), 1);
    // Another file drifts: the path is still missing, still shown, not
    // said again.
    env.vol.write(&V2);
    for _ in 0..2 {
        let out = live();
        out.expect(1, "drift: 1 changed (").contains("app.yaml)");
        assert!(!out.stderr.contains(warned), "{out}");
        let st = status(&ns, &env, &paths);
        assert!(st.stdout.contains(&format!("liveness: {warned}")), "{st}");
    }
    // The drift clears: not said a second time.
    env.vol.write(&V1);
    let out = live();
    out.ok();
    assert!(!out.stderr.contains(warned), "{out}");
    assert_eq!(told(), 1, "{:?}", log_lines(&log));
    let st = status(&ns, &env, &paths);
    assert!(st.stdout.contains(&format!("liveness: {warned}")), "{st}");
    // Nor after a "cannot determine" (nothing looked at, nothing forgotten).
    ns.run(
        &env,
        "liveness",
        &args(&["--log-changes", "--max-entries", "1"]),
    )
    .expect(0, "cannot determine");
    live().ok();
    assert_eq!(told(), 1, "{:?}", log_lines(&log));
}

#[test]
fn an_app_timeout_that_cannot_fit_says_what_it_costs() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let log = env.path("container.log");
    let ns = app_logging_to(Stdio::from(File::create(&log).unwrap()));
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    let probe = || ns.on_vol(&env, "liveness", &["--exec", "true", "--app-timeout", "2s"]);
    let first = probe();
    first.ok();
    let warning = "misconfigured: --app-timeout 2s cannot fit inside --probe-timeout 1s (the kubelet kills a \
                   probe that outlasts it: the app check is cut short to what fits";
    assert!(first.stderr.contains(warning), "{first}");
    assert!(!first.stderr.contains("validator"), "{first}");
    probe().ok().lacks("misconfigured");
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("driftprobe liveness: {warning}")),
        "{lines:?}"
    );
}
