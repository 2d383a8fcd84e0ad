//! What a probe tells the container's log beyond the files' verdict
//! (visible.rs has the rest): an `--app-timeout` that cannot fit is a
//! misconfiguration that says what it costs.

use super::visible::{app_logging_to, log_lines, V1};
use crate::support::*;
use std::fs::File;
use std::process::Stdio;

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
