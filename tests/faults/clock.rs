//! The wall clock steps (NTP, VM resume) between probes: the grace window
//! is measured on CLOCK_BOOTTIME, so it neither ends early (a false
//! restart) nor late (a drift forgotten for as long as the step).
//!
//! The debug binary is dynamically linked, so libfaketime (Debian package
//! `faketime`) can shift its wall clock; `DONT_FAKE_MONOTONIC` keeps it off
//! the monotonic and boot clocks, as NTP would.

use crate::support::{run, Out, TestEnv};
use crate::{load_state, tally, wall_ms};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// `SUB --grace GRACE <volume>` with the wall clock shifted by `offset`
/// (libfaketime syntax: `+1h`, `-1d`).
fn shifted(env: &TestEnv, offset: &str, sub: &str, grace: &str) -> Out {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} missing: install the Debian package faketime (.ci/run does)"
    );
    let mut cmd = env.cmd(sub);
    cmd.env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", offset)
        .env("DONT_FAKE_MONOTONIC", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .args(["--grace", grace])
        .arg(env.vol.path());
    let out = run(&mut cmd);
    out.no_panic();
    out
}

fn drifted_env() -> TestEnv {
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    env.init();
    env.vol.write(&[("app.yaml", "v: 2\n")]);
    env
}

#[test]
fn a_wall_clock_step_forward_is_no_restart() {
    let env = drifted_env();
    env.liveness("10m").expect(0, "drift:");
    for offset in ["+1h", "+1d", "+400d"] {
        let out = shifted(&env, offset, "liveness", "10m");
        // Still inside the window: about ten minutes left, not "exceeded".
        out.expect(0, "drift:").contains("left)");
        assert!(
            out.stdout.contains("9m") || out.stdout.contains("10m"),
            "{out}"
        );
        shifted(&env, offset, "readiness", "10m").expect(0, "drift:");
    }
    tally(
        "wall clock step forward (1h, 1d, 400d)",
        6,
        0,
        0,
        "libfaketime",
    );
}

#[test]
fn a_wall_clock_step_back_does_not_postpone_a_restart() {
    let env = drifted_env();
    // The drift is first seen an hour "ahead"; then the clock is stepped
    // back to the truth.
    let before = wall_ms();
    shifted(&env, "+1h", "liveness", "3s").expect(0, "drift:");
    let st = load_state(&env.state_file());
    let d = st.drift.expect("drift recorded");
    assert!(
        d.since >= before + 3_590_000,
        "libfaketime did not shift the wall clock: since {} vs {before}",
        d.since
    );
    assert!(d.since_boot.is_some(), "{d:?}");
    env.liveness("3s").expect(0, "drift:");
    std::thread::sleep(std::time::Duration::from_millis(3_200));
    // Three seconds on the boot clock: due now, not in an hour.
    env.liveness("3s").drift().contains("ended");
    shifted(&env, "-1d", "liveness", "3s").drift();
    tally("wall clock step back (1h, 1d)", 4, 0, 0, "libfaketime");
}
