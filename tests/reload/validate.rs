//! The `--validate` gate under the kubelet's conditions: the validator may
//! be slow, liveness and readiness run at the same time, and a validator
//! that gives no answer is not a verdict.

use crate::support::*;
use std::time::{Duration, Instant};

/// While one probe runs a slow validator, the other probe must not wait for
/// the state lock (the kubelet would time it out): it answers at once that
/// the new config is being validated, and holds.
#[test]
fn a_slow_validator_does_not_block_the_other_probe() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env.vol.write(&[("app.conf", "v2\n")]);
    let validate = "sh -c 'sleep 2'";
    let slow = {
        let mut cmd = env.cmd("liveness");
        cmd.args([
            "--grace",
            "0",
            "--validate",
            validate,
            "--validate-timeout",
            "5s",
        ])
        .arg(env.vol.path());
        std::thread::spawn(move || cmd.output().unwrap())
    };
    // Let the slow probe take the lock, mark the validation and let go.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let other = env.on_vol(
        "readiness",
        &[
            "--grace",
            "0",
            "--validate",
            validate,
            "--on-invalid",
            "fail",
        ],
    );
    assert!(
        start.elapsed() < Duration::from_millis(1_500),
        "readiness waited {:?} for the validator",
        start.elapsed()
    );
    other.expect(1, "validating:").contains("app.conf");
    // Inside its grace window readiness stays ready while validation runs,
    // and by default (--on-invalid pass) it stays ready anyway.
    env.on_vol(
        "readiness",
        &[
            "--grace",
            "1h",
            "--validate",
            validate,
            "--on-invalid",
            "fail",
        ],
    )
    .expect(0, "validating:");
    env.on_vol("readiness", &["--grace", "0", "--validate", validate])
        .expect(0, "validating:");
    let live = env.on_vol("liveness", &["--grace", "0", "--validate", validate]);
    live.expect(0, "validating:");
    // The slow probe finishes with the validator's answer: valid, so the
    // drift (grace 0) fails liveness.
    let done = slow.join().unwrap();
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert!(
        String::from_utf8_lossy(&done.stdout).starts_with("drift:"),
        "{done:?}"
    );
}

/// A validator that times out gave no answer: the config is held (never
/// restarted into), the line says it could not be validated, and the state
/// marks the result as transient so it is asked again later.
#[test]
fn a_validator_timeout_holds_without_a_permanent_verdict() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env.vol.write(&[("app.conf", "v2\n")]);
    let opts = [
        "--grace",
        "0",
        "--validate",
        "sleep 5",
        "--validate-timeout",
        "200ms",
    ];
    env.on_vol("liveness", &opts)
        .expect(0, "invalid:")
        .contains("could not be validated")
        .contains("timed out");
    env.on_vol("readiness", &opts).expect(0, "invalid:");
    let mut fail = opts.to_vec();
    fail.extend(["--on-invalid", "fail"]);
    env.on_vol("readiness", &fail).expect(1, "invalid:");
    let st = env.on_vol("status", &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let validations = v["validations"].as_array().unwrap();
    assert_eq!(validations.len(), 1, "{v}");
    assert_eq!(validations[0]["ok"], false);
    // The state file records the answer as transient (read as JSON: it is
    // written compact).
    let state = std::fs::read_to_string(env.state_file()).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(saved["validations"][0][1]["transient"], true, "{state}");
}

/// "Being validated" is not a verdict: a probe that sees another probe's
/// validation under way must not restart the drift's grace window.
#[test]
fn watching_a_validation_does_not_move_the_drift_start() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env.vol.write(&[("app.conf", "v2\n")]);
    // First look starts the drift without validating (no --validate).
    let first = env.on_vol("liveness", &["--grace", "1h"]);
    first.expect(0, "drift:");
    let since = |out: &Out| {
        let i = out.stdout.find(" since ").expect("since") + 7;
        out.stdout[i..i + 9].to_string()
    };
    let started = since(&first);
    std::thread::sleep(Duration::from_millis(1_100));
    let validate = "sh -c 'sleep 1.5'";
    let slow = {
        let mut cmd = env.cmd("liveness");
        cmd.args([
            "--grace",
            "1h",
            "--validate",
            validate,
            "--validate-timeout",
            "5s",
        ])
        .arg(env.vol.path());
        std::thread::spawn(move || cmd.output().unwrap())
    };
    std::thread::sleep(Duration::from_millis(400));
    env.on_vol("readiness", &["--grace", "1h", "--validate", validate])
        .expect(0, "validating:");
    slow.join().unwrap();
    let after = env.on_vol("liveness", &["--grace", "1h", "--validate", validate]);
    after.expect(0, "drift:");
    assert_eq!(since(&after), started, "{after}");
}

/// A validator that is not there is a usage error at once, not a silent
/// hold on every future config change.
#[test]
fn a_missing_validator_is_a_usage_error() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    let out = env.on_vol("liveness", &["--validate", "ngnix-typo -t"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("ngnix-typo"), "{out}");
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z"))
}

/// `driftprobe liveness OPTS VOL` SIGKILLed after `after` (the kubelet's
/// timeoutSeconds), as the kubelet does: not its validator's process group.
fn killed_probe(env: &TestEnv, opts: &[&str], after: &str) {
    let mut killed = assert_cmd::Command::new("timeout");
    killed
        .args(["-s", "KILL", after])
        .arg(BIN)
        .args(["liveness", "--state-dir"])
        .arg(&env.state_dir)
        .args(opts)
        .arg(env.vol.path());
    let out = killed.output().unwrap();
    // Killed: 137 from timeout(1), or a KILL status if timeout died too.
    assert!(matches!(out.status.code(), Some(137) | None), "{out:?}");
}

/// The kubelet kills a probe that outlives timeoutSeconds, not the
/// validator it started (its own process group). The next probe sees that
/// the probe that marked the validation is gone: no answer will come, so
/// it says so (`invalid:`, timed out) at once instead of "validating:"
/// until the marker expires, and kills what the killed probe left running.
#[test]
fn a_validator_orphaned_by_a_killed_probe_is_cleaned_up() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env.vol.write(&[("app.conf", "v2\n")]);
    let bg = env.path("bg.pid");
    let validate = format!("sh -c 'sleep 30 & echo $! > {}; wait'", bg.display());
    let opts = [
        "--grace",
        "0",
        "--validate",
        validate.as_str(),
        "--validate-timeout",
        "10s",
    ];
    // "timeoutSeconds" of 0.5s: the probe is SIGKILLed mid-validation.
    killed_probe(&env, &opts, "0.5");
    let orphan: i32 = std::fs::read_to_string(&bg)
        .expect("the validator started")
        .trim()
        .parse()
        .unwrap();
    assert!(alive(orphan), "the orphaned validator should still run");
    env.on_vol("liveness", &opts)
        .expect(0, "invalid:")
        .contains("could not be validated")
        .contains("timed out");
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(orphan) {
        assert!(
            Instant::now() < deadline,
            "orphaned validator {orphan} survived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The answer is kept like any other "no answer": readiness with
    // --on-invalid fail takes the pod out, status shows it.
    let mut fail = opts.to_vec();
    fail.extend(["--on-invalid", "fail"]);
    env.on_vol("readiness", &fail)
        .expect(1, "invalid:")
        .contains("timed out");
}

/// What the real kubelet did: every probe killed at timeoutSeconds (1s)
/// while the validator is given longer. Before, each killed probe left a
/// "being validated" marker that made every other probe pass with
/// `validating:`, and the next one to validate was killed again: the new
/// config was held back forever, silently. Now no probe after a killed
/// one says `validating:`.
#[test]
fn probes_killed_at_timeout_seconds_never_leave_validating_forever() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env.vol.write(&[("app.conf", "v2\n")]);
    let opts = [
        "--grace",
        "0",
        "--validate",
        "sleep 30",
        "--validate-timeout",
        "10s",
    ];
    killed_probe(&env, &opts, "0.5");
    for _ in 0..3 {
        let out = env.on_vol("liveness", &opts);
        out.expect(0, "invalid:").contains("timed out");
    }
}

/// Without --validate-timeout the validator gets what is left of the
/// probe's own deadline (inside the kubelet's default timeoutSeconds of
/// 1s): a validator that never finishes is killed by the probe, which
/// answers in time that it timed out.
#[test]
fn the_default_validator_timeout_fits_the_default_probe_timeout() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env.vol.write(&[("app.conf", "v2\n")]);
    let bg = env.path("bg.pid");
    let validate = format!("sh -c 'sleep 30 & echo $! > {}; wait'", bg.display());
    let start = Instant::now();
    let out = env.on_vol("liveness", &["--grace", "0", "--validate", &validate]);
    let took = start.elapsed();
    out.expect(0, "invalid:").contains("timed out");
    assert!(took < Duration::from_millis(1_000), "took {took:?}: {out}");
    let orphan: i32 = std::fs::read_to_string(&bg)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(orphan) {
        assert!(Instant::now() < deadline, "validator {orphan} survived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Probes given different validators keep their own answers.
#[test]
fn different_validators_do_not_share_answers() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env.vol.write(&[("app.conf", "v2\n")]);
    env.on_vol("liveness", &["--grace", "1h", "--validate", "true"])
        .expect(0, "drift:");
    env.on_vol(
        "readiness",
        &[
            "--grace",
            "1h",
            "--validate",
            "false",
            "--on-invalid",
            "fail",
        ],
    )
    .expect(1, "invalid:");
    env.on_vol("liveness", &["--grace", "1h", "--validate", "true"])
        .expect(0, "drift:");
}
