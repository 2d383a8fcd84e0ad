//! What a probe tells the container's log beyond the files' verdict
//! (visible.rs has the rest): the app's own failing check is mirrored as
//! the probe prints it, a class of its own (`app`); a watched path that is
//! missing is said once per container, whatever drifts meanwhile; an
//! `--app-timeout` that cannot fit is a misconfiguration that says what it
//! costs.

use super::common::*;
use super::visible::{log_lines, logging_app, status, V1, V2};

/// What `status --json` says probe `probe` last mirrored.
fn mirrored_class(v: &serde_json::Value, probe: &str) -> serde_json::Value {
    v["mirrored"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["probe"] == probe))
        .map(|m| m["class"].clone())
        .unwrap_or_default()
}

#[test]
fn a_failing_app_check_is_mirrored_as_the_probe_says_it() {
    let (env, log, ns) = logging_app();
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    let live = |check: &str, extra: &[&str]| {
        let mut opts = vec!["--log-changes", "--grace", "0", "--exec", check];
        opts.extend_from_slice(extra);
        ns.on_vol(&env, "liveness", &opts)
    };
    let class = || mirrored_class(&json(&ns.on_vol(&env, "status", &["--json"])), "liveness");
    live("true", &[]).ok();
    // ok → app → ok: two lines; the app failing again is not news.
    for _ in 0..3 {
        live("false", &[]).expect(1, "app: exec false exited 1");
        assert_eq!(class(), "app");
    }
    live("true", &[]).ok();
    assert_eq!(class(), "ok");
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("driftprobe liveness: ok: "),
        "{lines:?}"
    );
    assert_eq!(lines[1], "driftprobe liveness: app: exec false exited 1");
    assert!(
        lines[2].starts_with("driftprobe liveness: ok: "),
        "{lines:?}"
    );

    // The app failing with drift: the log gets the whole line, app first.
    env.vol.write(&V2);
    let out = live("false", &[]);
    out.expect(1, "app: exec false exited 1; drift: 1 changed (app.yaml)");
    assert_eq!(
        log_lines(&log).last().map(String::as_str),
        Some(format!("driftprobe liveness: {}", out.line()).as_str())
    );
    // The app failing while the files cannot be judged: the same, via
    // the "cannot determine" path (after a drift line, so it is news).
    live("true", &[]).expect(1, "drift: ");
    let out = live("false", &["--max-entries", "1"]);
    out.expect(1, "app: exec false exited 1; cannot determine: ");
    assert_eq!(
        log_lines(&log).last().map(String::as_str),
        Some(format!("driftprobe liveness: {}", out.line()).as_str())
    );
    assert_eq!(class(), "app");
    assert_eq!(log_lines(&log).len(), 6, "{:?}", log_lines(&log));
}

#[test]
fn a_missing_path_is_said_once_per_container_through_a_drift() {
    let (env, log, ns) = logging_app();
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
    let (env, log, ns) = logging_app();
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    let probe = || ns.on_vol(&env, "liveness", &["--exec", "true", "--app-timeout", "2s"]);
    let first = probe();
    first.ok();
    let warning =
        "misconfigured: --app-timeout 2s cannot fit inside --probe-timeout 1s, where the kubelet \
                   kills the probe (the app check is cut short to what fits";
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
