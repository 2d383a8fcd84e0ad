//! The kubelet's fsGroup ownership pass (a v1.20 kubelet chowns/chmods a
//! pod's Secret and ConfigMap volumes at every pod sync, issue 18): ctimes
//! move every few seconds while nothing changes. No probe may fail for it,
//! and no baseline may be lost; a real change afterwards is one drift.

use crate::support::{sleep_past_second, Out, TestEnv, KUBELETS};
use crate::{load_state, tally};
use std::time::{Duration, Instant};

const V1: [(&str, &str); 1] = [("app.yaml", "v: 1\n")];
const V2: [(&str, &str); 1] = [("app.yaml", "v: 2\n")];

#[test]
fn the_ownership_pass_at_every_sync_restarts_nothing() {
    const ROUNDS: usize = 12;
    let kubelet = KUBELETS[1];
    let mut env = TestEnv::under(kubelet);
    env.vol.mode = 0o400;
    env.vol.write(&V1);
    sleep_past_second();
    let c = env.container(&[]);
    let vol = env.vol.path();
    let (mut runs, mut lost, mut false_restarts) = (0, 0, 0);
    let mut recorded = None;
    for round in 0..ROUNDS {
        env.vol.sync();
        for sub in ["liveness", "readiness"] {
            let out = c.proving(&env, sub, &["--grace", "0"], &[vol]);
            out.no_panic();
            runs += 1;
            if !(out.code == 0 && out.stdout.starts_with("ok:")) {
                eprintln!("round {round}, {sub}: {out}");
                false_restarts += 1;
            }
        }
        let st = load_state(&env.state_file());
        let at = st.baseline.map(|b| b.recorded_at);
        match recorded {
            None => recorded = at,
            Some(_) if at != recorded => lost += 1,
            Some(_) => {}
        }
        if round % 4 == 3 {
            sleep_past_second();
        }
    }
    assert!(recorded.is_some(), "no baseline was ever recorded");
    // A real change after all that: a drift, at once with grace 0.
    env.vol.write(&V2);
    env.vol.sync();
    c.proving(&env, "liveness", &["--grace", "0"], &[vol])
        .drift()
        .contains("1 changed");
    tally(
        "fsGroup ownership pass every sync",
        runs,
        lost,
        false_restarts,
        "v1.20 kubelet: ctimes move, content never; then one real change, one drift",
    );
    assert_eq!((lost, false_restarts), (0, 0), "{}", kubelet.name);
}

#[test]
fn a_drift_not_remembered_ends_its_window_despite_the_ownership_pass() {
    // The state dir turns read-only after the baseline: a drift first seen
    // then is dated by the files. The ownership pass keeps moving their
    // ctimes; dated by those, the window would never end.
    let mut env = TestEnv::under(KUBELETS[1]);
    env.vol.mode = 0o400;
    env.vol.write(&V1);
    sleep_past_second();
    let c = env.container(&[]);
    let vol = env.vol.path();
    c.proving(&env, "liveness", &["--grace", "2s"], &[vol]).ok();
    let state = env.state_dir.display().to_string();
    let ro = std::process::Command::new("nsenter")
        .arg("--target")
        .arg(c.init_pid.to_string())
        .args(["--mount", "--", "sh", "-c"])
        .arg(format!(
            "mount --bind '{state}' '{state}' && mount -o remount,bind,ro '{state}'"
        ))
        .status()
        .unwrap();
    assert!(ro.success(), "state dir read-only in the container");
    env.vol.write(&V2);
    let changed = Instant::now();
    let mut runs = 0;
    let mut last: Option<Out> = None;
    while changed.elapsed() < Duration::from_secs(6) {
        env.vol.sync();
        let out = c.proving(&env, "liveness", &["--grace", "2s"], &[vol]);
        out.no_panic();
        runs += 1;
        assert!(out.stderr.contains("not remembered"), "{out}");
        if changed.elapsed() < Duration::from_millis(1_900) {
            out.expect(0, "drift:");
        }
        let failed = out.code == 1;
        last = Some(out);
        if failed {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let last = last.unwrap();
    last.drift().contains(", ended ");
    tally(
        "fsGroup ownership pass, state dir read-only",
        runs,
        0,
        0,
        "a drift that cannot be saved is dated by the volume's swap, not by ctimes",
    );
}
