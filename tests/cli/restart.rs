//! Container-instance keying and the lazy-baseline guard. A fresh PID
//! namespace (`unshare --pid --fork --mount-proc`) stands in for a restarted
//! container: new PID 1 start time, same boot id, same state dir (like an
//! emptyDir that survived the restart). The restart and lazy-baseline
//! scenarios run under each kubelet of [`KUBELETS`], in a container that sees
//! the volume read-only ([`TestEnv::container`]).

use crate::support::*;

const V1: [(&str, &str); 2] = [("app.yaml", "v: 1\n"), ("nested/x", "x1")];
const V2: [(&str, &str); 2] = [("app.yaml", "v: 2\n"), ("nested/x", "x1")];
const V3: [(&str, &str); 2] = [("app.yaml", "v: 3\n"), ("nested/x", "x1")];

#[test]
fn namespace_helper_gives_new_pid1() {
    let ns = Ns::pid();
    let stat = ns.proc1_stat();
    assert!(
        stat.starts_with("1 (sleep)"),
        "PID 1 inside the namespace is the sleep: {stat:?}"
    );
}

#[test]
fn restart_rebaselines_drifted_config() {
    for k in KUBELETS {
        eprintln!("kubelet: {}", k.name);
        let env = TestEnv::under(k);
        env.vol.write(&V1);
        env.init();
        env.liveness("0").ok();
        env.vol.write(&V2);
        env.liveness("0").drift().contains("1 changed");
        // The container gets restarted after the config change: its PID 1
        // starts after the files were written (whole-second precision),
        // and sees the volume read-only; the kubelet keeps syncing.
        sleep_past_second();
        let ns = env.container(&[]);
        env.settle_syncs();
        ns.on_vol(&env, "liveness", &["--grace", "0"]).ok();
        ns.on_vol(&env, "readiness", &["--grace", "0"]).ok();
        env.vol.sync();
        ns.on_vol(&env, "liveness", &["--grace", "0"]).ok();
        // The new instance's baseline is V2: a further change is drift there.
        env.vol.write(&V3);
        ns.on_vol(&env, "liveness", &["--grace", "0"])
            .drift()
            .contains("1 changed");
        ns.on_vol(&env, "readiness", &["--grace", "1h"])
            .expect(0, "drift:");
    }
}

#[test]
fn init_in_new_instance_records_new_baseline() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    env.init();
    env.vol.write(&V2);
    env.liveness("0").drift();
    // New instance: init is not a no-op there, even though a state file from
    // the previous instance exists.
    let ns = Ns::pid();
    let out = ns.on_vol(&env, "init", &[]);
    out.no_panic();
    assert_eq!(out.code, 0, "{out}");
    ns.on_vol(&env, "liveness", &["--grace", "0"]).ok();
    env.vol.write(&V1);
    ns.on_vol(&env, "liveness", &["--grace", "0"])
        .drift()
        .contains("1 changed");
}

#[test]
fn lazy_baseline_refused_when_files_newer_than_pid1() {
    // Host namespace: PID 1 started long before these files were written.
    let env = TestEnv::new();
    env.vol.write(&V1);
    env.liveness("0").drift().contains("cannot prove");
    env.readiness("0").drift().contains("cannot prove");
    // No baseline was recorded: still refused.
    env.liveness("0").drift().contains("cannot prove");
    // Inside grace the message is the same but the exit code is 0.
    env.liveness("1h")
        .expect(0, "drift:")
        .contains("cannot prove");
    // An explicit init fixes it.
    env.init();
    env.liveness("0").ok();
}

#[test]
fn lazy_baseline_refused_when_config_changed_after_start() {
    // Container starts, then the kubelet updates the volume before the first
    // probe ran: the probe cannot prove what the app read at start.
    let env = TestEnv::new();
    env.vol.write(&V1);
    let ns = Ns::pid();
    sleep_past_second();
    env.vol.write(&V2);
    ns.on_vol(&env, "liveness", &["--grace", "0"])
        .drift()
        .contains("cannot prove");
}

#[test]
fn lazy_baseline_in_fresh_namespace() {
    for k in KUBELETS {
        eprintln!("kubelet: {}", k.name);
        let env = TestEnv::under(k);
        env.vol.write(&V1);
        sleep_past_second();
        let ns = env.container(&[]);
        env.settle_syncs();
        // No init: files are older than PID 1, so the first probe records
        // the baseline lazily.
        ns.on_vol(&env, "liveness", &["--grace", "0"]).ok();
        assert_eq!(json_files(&env.state_dir).len(), 1, "lazy baseline stored");
        ns.on_vol(&env, "readiness", &["--grace", "0"]).ok();
        // Identical rewrite: still fine.
        env.vol.write_forced(&V1);
        env.vol.sync();
        ns.on_vol(&env, "liveness", &["--grace", "0"]).ok();
        // The lazily recorded baseline is V1, not whatever is current now.
        env.vol.write(&V2);
        ns.on_vol(&env, "liveness", &["--grace", "0"])
            .drift()
            .contains("1 changed");
        env.vol.sync();
        ns.on_vol(&env, "liveness", &["--grace", "0"])
            .drift()
            .contains("1 changed");
    }
}
