//! The proof behind a baseline recorded after the entrypoint started (the
//! probes' lazy baseline, and `init` run as a postStart hook), under every
//! kubelet behaviour in [`KUBELETS`]: no fsGroup, the v1.20 ownership pass
//! at every pod sync (ctimes move every few seconds, never contents or
//! mtimes), and v1.35's ownership set inside the atomic writer.
//!
//! Each test starts a "container" ([`TestEnv::container`]: a new PID 1 that
//! sees the volume read-only, like a pod) after the kubelet wrote the
//! volume, lets the kubelet sync, and probes inside it without
//! `DRIFTPROBE_FORCE`.

use crate::support::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const V1: [(&str, &str); 2] = [("app.yaml", "v: 1\n"), ("nested/x", "x1")];
const V2: [(&str, &str); 2] = [("app.yaml", "v: 2\n"), ("nested/x", "x1")];

/// A volume written under kubelet `k` (mode 0400, so that an fsGroup
/// changes it), and a container started after it.
fn started(k: Kubelet) -> (TestEnv, Ns) {
    started_on(TestEnv::under(k))
}

/// Every kubelet, for a ConfigMap volume and for a Secret's (tmpfs, root
/// mode 1777).
fn every_volume() -> Vec<(Kubelet, bool)> {
    KUBELETS
        .iter()
        .flat_map(|&k| [(k, false), (k, true)])
        .collect()
}

fn env_for(k: Kubelet, secret: bool) -> TestEnv {
    eprintln!(
        "kubelet: {}, {}",
        k.name,
        if secret { "Secret" } else { "ConfigMap" }
    );
    match secret {
        true => TestEnv::secret_under(k),
        false => TestEnv::under(k),
    }
}

fn started_on(mut env: TestEnv) -> (TestEnv, Ns) {
    env.vol.mode = 0o400;
    env.vol.write(&V1);
    sleep_past_second();
    let c = env.container(&[]);
    (env, c)
}

fn mtime_ns(p: &Path) -> i128 {
    let m = std::fs::metadata(p).unwrap();
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

#[test]
fn the_lazy_baseline_is_proven_whatever_fsgroup_does() {
    for (k, secret) in every_volume() {
        let (env, c) = started_on(env_for(k, secret));
        let vol = env.vol.path();
        env.settle_syncs();
        c.proving(&env, "liveness", &["--grace", "0"], &[vol])
            .ok()
            .contains("by lazy");
        c.proving(&env, "readiness", &["--grace", "0"], &[vol]).ok();
        // Metadata-only changes never count as drift once recorded.
        env.settle_syncs();
        c.proving(&env, "liveness", &["--grace", "0"], &[vol]).ok();
    }
}

#[test]
fn an_unchanged_tree_writes_nothing_while_the_ownership_pass_runs() {
    for k in KUBELETS {
        eprintln!("kubelet: {}", k.name);
        let (env, c) = started(k);
        let vol = env.vol.path();
        c.proving(&env, "liveness", &["--grace", "0"], &[vol]).ok();
        // Old enough for the stat cache, which the next probe fills.
        sleep_past_second();
        c.proving(&env, "liveness", &["--grace", "0"], &[vol]).ok();
        let state = env.state_file();
        let before = mtime_ns(&state);
        env.settle_syncs();
        c.proving(&env, "liveness", &["--grace", "0"], &[vol]).ok();
        c.proving(&env, "readiness", &["--grace", "0"], &[vol]).ok();
        assert_eq!(
            mtime_ns(&state),
            before,
            "{}: the state was rewritten for an unchanged tree",
            k.name
        );
    }
}

#[test]
fn a_change_after_the_start_is_never_proven() {
    for (k, secret) in every_volume() {
        let (env, c) = started_on(env_for(k, secret));
        let vol = env.vol.path();
        sleep_past_second();
        env.vol.write(&V2);
        env.settle_syncs();
        c.proving(&env, "liveness", &["--grace", "0"], &[vol])
            .drift()
            .contains(
                "no baseline, cannot prove the config is unchanged since the container started",
            );
        // A watched key, and a path missing from the volume, alike.
        let env2 = TestEnv::under(k);
        env2.vol.write(&V1);
        sleep_past_second();
        let c2 = env2.container(&[]);
        sleep_past_second();
        env2.vol.write(&V2);
        let key = env2.vol.path().join("app.yaml");
        let absent = env2.vol.path().join("extra.yaml");
        c2.proving(&env2, "liveness", &["--grace", "0"], &[&key, &absent])
            .drift()
            .contains("cannot prove");
    }
}

#[test]
fn init_as_a_poststart_hook_applies_the_same_proof() {
    for k in KUBELETS {
        eprintln!("kubelet: {}", k.name);
        // Unchanged since the start: recorded.
        let (env, c) = started(k);
        let vol = env.vol.path();
        env.settle_syncs();
        c.proving(&env, "init", &[], &[vol])
            .expect(0, "baseline recorded (");
        c.proving(&env, "liveness", &["--grace", "0"], &[vol])
            .ok()
            .contains("by init)");

        // The kubelet swapped `..data` between the entrypoint's start and
        // the hook: no baseline, a drift, and still exit 0.
        let (env, c) = started(k);
        let vol = env.vol.path();
        sleep_past_second();
        env.vol.write(&V2);
        c.proving(&env, "init", &[], &[vol]).expect(
            0,
            "drift: no baseline, cannot prove the config is unchanged since the container started: files changed at",
        );
        c.proving(&env, "liveness", &["--grace", "0"], &[vol])
            .drift()
            .contains("no baseline");
        c.proving(&env, "readiness", &["--grace", "1h"], &[vol])
            .expect(0, "drift: no baseline");
        // --force vouches for the current files anyway.
        c.proving(&env, "init", &["--force"], &[vol])
            .expect(0, "baseline recorded (");
        c.proving(&env, "liveness", &["--grace", "0"], &[vol])
            .ok()
            .contains("by init --force)");
    }
}

#[test]
fn an_absent_watched_path_is_dated_by_where_it_would_be() {
    for k in KUBELETS {
        eprintln!("kubelet: {}", k.name);
        let (env, c) = started(k);
        let key = env.vol.path().join("app.yaml");
        let absent = env.vol.path().join("extra.yaml");
        let deeper = env.vol.path().join("nested/none/x");
        env.settle_syncs();
        c.proving(
            &env,
            "liveness",
            &["--grace", "0"],
            &[&key, &absent, &deeper],
        )
        .ok();
        c.proving(
            &env,
            "liveness",
            &["--grace", "0"],
            &[&key, &absent, &deeper],
        )
        .ok();
    }
    // Outside a kubelet volume: the nearest existing directory's ctime.
    let env = TestEnv::new();
    let plain = env.path("plain");
    std::fs::create_dir(&plain).unwrap();
    sleep_past_second();
    let c = Ns::pid();
    c.proving(
        &env,
        "liveness",
        &["--grace", "0"],
        &[&plain.join("missing.conf")],
    )
    .ok();
    let env = TestEnv::new();
    let plain = env.path("plain");
    std::fs::create_dir(&plain).unwrap();
    let c = Ns::pid();
    sleep_past_second();
    std::fs::write(plain.join("other"), "x").unwrap();
    c.proving(
        &env,
        "liveness",
        &["--grace", "0"],
        &[&plain.join("missing.conf")],
    )
    .drift()
    .contains("cannot prove");
}

#[test]
fn a_path_deep_inside_a_volume_is_dated_by_the_volume() {
    // Projected volumes and items[].path make nested keys: conf/app/x.
    const NESTED: [(&str, &str); 2] = [("conf/app/x", "1"), ("conf/app/y", "2")];
    for k in KUBELETS {
        let mut env = env_for(k, false);
        env.vol.mode = 0o400;
        env.vol.write(&NESTED);
        sleep_past_second();
        let c = env.container(&[]);
        let deep = env.vol.path().join("conf/app");
        let file = env.vol.path().join("conf/app/x");
        env.settle_syncs();
        c.proving(&env, "liveness", &["--grace", "0"], &[&deep])
            .ok()
            .contains("2 files");
        c.proving(&env, "readiness", &["--grace", "0"], &[&file])
            .ok()
            .contains("by lazy");
    }
}

#[test]
fn a_dir_mounted_inside_a_volume_is_not_dated_as_the_volume() {
    // A real directory among the volume's keys is another mount (an
    // emptyDir at /etc/app/cache inside the ConfigMap at /etc/app): what
    // changes there does not touch the volume's own times.
    let env = env_for(KUBELETS[0], false);
    env.vol.write(&V1);
    let inner = env.vol.path().join("cache");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(inner.join("f"), "1").unwrap();
    sleep_past_second();
    let c = env.container(&[]);
    sleep_past_second();
    std::fs::write(inner.join("f"), "2").unwrap();
    for path in [inner.join("f"), inner.clone()] {
        c.proving(&env, "liveness", &["--grace", "0"], &[&path])
            .drift()
            .contains("cannot prove");
    }
}

#[test]
fn a_subpath_mount_is_dated_by_its_mtime() {
    for k in KUBELETS {
        eprintln!("kubelet: {}", k.name);
        let mut env = TestEnv::under(k);
        env.vol.mode = 0o400;
        env.vol.write(&V1);
        let file = env.path("app.yaml");
        sleep_past_second();
        let c = env.container(&[(&file, "app.yaml")]);
        env.settle_syncs();
        let out = c.proving(&env, "liveness", &["--grace", "0"], &[&file]);
        out.ok().contains("by lazy");
        assert!(out.stderr.contains("subPath"), "{out}");
    }
}

#[test]
fn a_writable_dir_laid_out_like_a_volume_is_dated_by_ctimes() {
    // Not read-only: nothing says only the kubelet writes there, and a
    // copy that keeps mtimes (cp -p, tar, rsync) would pass an mtime test.
    let mut env = TestEnv::under(KUBELETS[1]);
    env.vol.mode = 0o400;
    env.vol.write(&V1);
    sleep_past_second();
    let c = Ns::pid();
    env.settle_syncs();
    c.proving(&env, "liveness", &["--grace", "0"], &[env.vol.path()])
        .drift()
        .contains("cannot prove");
}
