//! The state file: permissions, no file contents stored or printed, corrupt /
//! empty / foreign / newer-version files, symlinked state dir, planted
//! symlinks, 64 concurrent probes.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::sync::Arc;
use std::thread;

use crate::support::*;

const V1: [(&str, &str); 2] = [("app.yaml", "a: 1\n"), ("nested/k", "k")];

fn env_v1() -> TestEnv {
    let env = TestEnv::new();
    env.vol.write(&V1);
    env.init();
    env
}

#[track_caller]
fn assert_valid_state(env: &TestEnv) -> serde_json::Value {
    let path = env.state_file();
    let text = fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("state file {path:?} is not valid JSON ({e}): {text:?}"))
}

#[test]
fn state_permissions() {
    let env = env_v1();
    let dir_mode = fs::metadata(&env.state_dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(dir_mode, 0o700, "state dir mode {dir_mode:o}");
    let file = env.state_file();
    let file_mode = fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
    assert_eq!(file_mode, 0o600, "state file mode {file_mode:o}");
    let v = assert_valid_state(&env);
    assert!(v.is_object(), "{v}");
    // Probes keep the modes.
    env.vol.write(&[("app.yaml", "changed")]);
    env.liveness("1h").expect(0, "drift:");
    let file = env.state_file();
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // No temp files left behind.
    for e in fs::read_dir(&env.state_dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains("tmp") || name.ends_with(".lock"),
            "leftover temp file {name}"
        );
    }
}

#[test]
fn secrets_never_stored_or_printed() {
    const SECRET1: &str = "S3CR3T-c0ffee-7f1c9d-do-not-leak";
    const SECRET2: &str = "S3CR3T-beef42-0a9e11-also-private";
    let env = TestEnv::new();
    env.vol.write(&[("password", SECRET1), ("user", "admin")]);
    let mut outputs = vec![env.init()];
    let vol = env.vol.path();
    let mut collect = |out: Out| {
        out.no_panic();
        outputs.push(out);
    };
    collect(env.liveness("0"));
    collect(env.readiness("0"));
    collect(env.on_vol("status", &[]));
    collect(env.on_vol("status", &["--json"]));
    collect(run(env.cmd("digest").arg(vol)));
    collect(run(env.cmd("digest").arg("--json").arg(vol)));
    env.vol.write(&[("password", SECRET2), ("user", "admin")]);
    collect(env.liveness("0"));
    collect(env.liveness("1h"));
    collect(env.on_vol("status", &[]));
    collect(env.on_vol("status", &["--json"]));
    collect(env.on_vol("liveness", &["--full", "--grace", "0"]));
    assert_eq!(
        outputs[7].code, 1,
        "the secret change is drift: {}",
        outputs[7]
    );
    for out in &outputs {
        for s in [SECRET1, SECRET2] {
            assert!(
                !out.stdout.contains(s) && !out.stderr.contains(s),
                "secret printed: {out}"
            );
        }
    }
    let files = all_bytes_under(&env.state_dir);
    assert!(!files.is_empty());
    for (path, bytes) in files {
        for s in [SECRET1, SECRET2] {
            assert!(
                !contains_bytes(&bytes, s.as_bytes()),
                "secret stored in {path:?}"
            );
        }
    }
}

/// What a probe must do with a state file it cannot trust: a clear message,
/// no panic, never "ok" (the files here are newer than PID 1, so the
/// baseline cannot be re-proven).
#[track_caller]
fn assert_untrusted_state_outcome(out: &Out, what: &str) {
    assert_not_healthy(out, what);
    let all = format!("{}{}", out.stdout, out.stderr).to_lowercase();
    assert!(
        all.contains("state file"),
        "{what}: message should mention the state file: {out}"
    );
}

/// Not healthy, one clear line, no panic.
#[track_caller]
fn assert_not_healthy(out: &Out, what: &str) {
    out.no_panic();
    assert!(
        out.code == 1 || out.code == 3,
        "{what}: must not be healthy: {out}"
    );
    let line = out.line();
    assert!(
        (out.code == 1 && line.starts_with("drift:"))
            || (out.code == 3 && line.starts_with("cannot determine:")),
        "{what}: {out}"
    );
}

fn corrupt_variants(original: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut newer: serde_json::Value = serde_json::from_slice(original).expect("state is JSON");
    let obj = newer.as_object_mut().expect("state is a JSON object");
    let version_key = obj
        .keys()
        .find(|k| k.to_lowercase().contains("version"))
        .cloned()
        .expect("state file has a version field");
    obj.insert(version_key, serde_json::json!(9999));
    vec![
        ("garbage", b"\x00\x01not json at all{{{".to_vec()),
        ("empty", Vec::new()),
        ("truncated", original[..original.len() / 2].to_vec()),
        (
            "foreign",
            br#"{"hello": "world", "items": [1, 2, 3]}"#.to_vec(),
        ),
        ("json array", b"[]".to_vec()),
        ("newer version", serde_json::to_vec(&newer).unwrap()),
    ]
}

#[test]
fn corrupt_state_unchanged_files() {
    let probe_env = env_v1();
    let original = fs::read(probe_env.state_file()).unwrap();
    for (what, bytes) in corrupt_variants(&original) {
        let env = env_v1();
        fs::write(env.state_file(), &bytes).unwrap();
        // The first probe to meet the bad file says so (stderr is part of
        // the kubelet's event too); later ones see "no baseline".
        assert_untrusted_state_outcome(&env.liveness("0"), what);
        assert_not_healthy(&env.readiness("0"), what);
        assert_not_healthy(&env.liveness("0"), what);
        let st = env.on_vol("status", &[]);
        st.no_panic();
        // A forced init repairs it.
        let out = env.on_vol("init", &["--force"]);
        assert_eq!(out.code, 0, "{what}: init --force: {out}");
        env.liveness("0").ok();
        assert_valid_state(&env);
    }
}

#[test]
fn corrupt_state_drifted_files_never_ok() {
    let probe_env = env_v1();
    let original = fs::read(probe_env.state_file()).unwrap();
    for (what, bytes) in corrupt_variants(&original) {
        let env = env_v1();
        env.vol.write(&[("app.yaml", "a: 2\n"), ("nested/k", "k")]);
        fs::write(env.state_file(), &bytes).unwrap();
        assert_untrusted_state_outcome(&env.liveness("0"), what);
        // Even with a huge grace the line says it is not healthy.
        let out = env.liveness("1h");
        out.no_panic();
        assert!(!out.line().starts_with("ok:"), "{what}: silent ok: {out}");
    }
}

#[test]
fn corrupt_state_rebaselines_in_fresh_instance() {
    let env = env_v1();
    fs::write(env.state_file(), b"{garbage").unwrap();
    sleep_past_second();
    let ns = PidNamespace::start();
    // Files are older than this instance's PID 1: re-baseline is provable.
    ns.on_vol(&env, "liveness", &["--grace", "0"]).ok();
    assert_valid_state(&env);
    env.vol.write(&[("app.yaml", "a: 2\n"), ("nested/k", "k")]);
    ns.on_vol(&env, "liveness", &["--grace", "0"])
        .drift()
        .contains("1 changed");
}

#[test]
fn state_dir_that_is_a_symlink() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let real = env.path("real-state");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    let link = env.path("state-link");
    symlink(&real, &link).unwrap();
    // readiness defaults to --on-error fail; liveness defaults to pass (a
    // broken probe must not restart healthy pods), so ask for fail there.
    let probe = |args: &[&str]| {
        run(driftprobe()
            .args(args)
            .arg("--state-dir")
            .arg(&link)
            .args(["--grace", "0"])
            .arg(env.vol.path()))
    };
    probe(&["readiness"])
        .expect(3, "cannot determine:")
        .contains("symlink");
    probe(&["liveness", "--on-error", "fail"]).expect(3, "cannot determine:");
    probe(&["readiness", "--on-error", "fail"]).expect(3, "cannot determine:");
    probe(&["liveness"]).expect(0, "cannot determine:");
    let out = run(driftprobe()
        .arg("init")
        .arg("--state-dir")
        .arg(&link)
        .arg(env.vol.path()));
    out.no_panic();
    assert_eq!(out.code, 3, "init into a symlinked state dir: {out}");
    assert!(
        json_files(&real).is_empty(),
        "nothing written through the symlink"
    );
    // --on-error pass turns it into 0, still saying why.
    let out = run(driftprobe()
        .arg("liveness")
        .arg("--state-dir")
        .arg(&link)
        .args(["--on-error", "pass"])
        .arg(env.vol.path()));
    out.expect(0, "cannot determine:");
}

#[test]
fn planted_symlink_state_file_is_not_followed() {
    let env = env_v1();
    let file = env.state_file();
    let victim = env.path("victim");
    fs::write(&victim, "victim content").unwrap();
    fs::remove_file(&file).unwrap();
    symlink(&victim, &file).unwrap();
    env.vol.write(&[("app.yaml", "changed"), ("nested/k", "k")]);
    let out = env.liveness("1h");
    out.no_panic();
    assert!(!out.line().starts_with("ok:"), "{out}");
    let out = env.on_vol("init", &["--force"]);
    out.no_panic();
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        "victim content",
        "symlink followed on write"
    );
}

fn parallel(env: &Arc<TestEnv>, n: usize, grace: &'static str) -> Vec<Out> {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let env = env.clone();
            thread::spawn(move || {
                if i % 2 == 0 {
                    env.liveness(grace)
                } else {
                    env.readiness(grace)
                }
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn sixty_four_parallel_probes() {
    let env = Arc::new(env_v1());
    for out in parallel(&env, 64, "0") {
        out.ok();
    }
    assert_valid_state(&env);
    // Drift inside grace: every probe records the drift start under the lock.
    env.vol.write(&[("app.yaml", "changed"), ("nested/k", "k")]);
    for out in parallel(&env, 64, "1h") {
        out.expect(0, "drift:").contains("1 changed");
    }
    assert_valid_state(&env);
    env.liveness("0").drift();
    env.readiness("0").drift();
    env.vol.write(&V1);
    for out in parallel(&env, 64, "0") {
        out.ok();
    }
    assert_valid_state(&env);
}

#[test]
fn sixty_four_parallel_lazy_baselines() {
    let env = Arc::new(TestEnv::new());
    env.vol.write(&V1);
    sleep_past_second();
    let ns = Arc::new(PidNamespace::start());
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let (env, ns) = (env.clone(), ns.clone());
            let sub = if i % 2 == 0 { "liveness" } else { "readiness" };
            thread::spawn(move || ns.on_vol(&env, sub, &["--grace", "0"]))
        })
        .collect();
    for h in handles {
        h.join().unwrap().ok();
    }
    assert_valid_state(&env);
    env.vol.write(&[("app.yaml", "changed"), ("nested/k", "k")]);
    ns.on_vol(&env, "liveness", &["--grace", "0"])
        .drift()
        .contains("1 changed");
}
