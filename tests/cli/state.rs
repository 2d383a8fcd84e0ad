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
    let ns = Ns::pid();
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
    let ns = Arc::new(Ns::pid());
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

// ---------------------------------------------------------------------------
// The state dir: shared dirs, the default dir, status writes nothing
// ---------------------------------------------------------------------------

fn mode(p: &std::path::Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn shared_empty_dir_gets_a_private_subdir() {
    // An emptyDir: root's, mode 0777; the probe runs as uid 65532.
    let env = TestEnv::new();
    env.vol.write(&V1);
    fs::set_permissions(env.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let shared = env.path("emptydir");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let probe = |uid: u32, sub: &str, opts: &[&str]| {
        run(as_uid(uid)
            .arg(sub)
            .arg("--state-dir")
            .arg(&shared)
            .args(opts)
            .arg(env.vol.path()))
    };
    let out = probe(65532, "init", &[]);
    assert_eq!(out.code, 0, "{out}");
    probe(65532, "liveness", &["--grace", "0"]).ok();
    probe(65532, "readiness", &["--grace", "0"]).ok();
    let private = shared.join("driftprobe-65532");
    assert_eq!(mode(&shared), 0o777, "the emptyDir itself is left alone");
    assert_eq!(mode(&private), 0o700);
    let files = json_files(&shared);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(&private), "{files:?}");
    assert_eq!(mode(&files[0]), 0o600);
    let st = probe(65532, "status", &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    let state_file = v["state_file"].as_str().unwrap();
    assert_eq!(std::path::Path::new(state_file), files[0], "{st}");
    // Another user sharing the emptyDir keeps its own state.
    let out = probe(65533, "init", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(json_files(&shared).len(), 2);
    // A subdir planted under our name by another user is refused.
    fs::create_dir(shared.join("driftprobe-65534")).unwrap();
    std::os::unix::fs::chown(shared.join("driftprobe-65534"), Some(65533), None).unwrap();
    probe(65534, "readiness", &[])
        .expect(3, "cannot determine:")
        .contains("owned by uid 65533, not us; refusing");
}

#[test]
fn status_creates_nothing() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let out = env.on_vol("status", &[]);
    out.no_panic();
    assert!(
        out.stdout.contains("no state for this container yet"),
        "{out}"
    );
    // Exit 1 without a baseline, and the output says why and where it looked.
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout
            .contains("exit 1: no baseline yet, so nothing to compare the files with"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&format!(
            "yet in {}: the next probe",
            env.state_dir.display()
        )) && out.stdout.contains("pass --state-dir, pass the same here"),
        "{out}"
    );
    assert!(!env.state_dir.exists(), "status created the state dir");
    let out = env.on_vol("status", &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("status JSON");
    assert_eq!(v["state"], "no-baseline", "{out}");
    assert!(
        !env.state_dir.exists(),
        "status --json created the state dir"
    );
    // A shared dir without our private subdir: none made.
    fs::create_dir(&env.state_dir).unwrap();
    fs::set_permissions(&env.state_dir, fs::Permissions::from_mode(0o777)).unwrap();
    env.on_vol("status", &[]).no_panic();
    assert_eq!(fs::read_dir(&env.state_dir).unwrap().count(), 0);
    assert_eq!(mode(&env.state_dir), 0o777);
    // After init, status finds the state (in the private subdir).
    env.init();
    let out = env.on_vol("status", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("driftprobe-0/watch-"), "{out}");
}

#[test]
fn default_state_dir_is_created_private_and_a_planted_one_refused() {
    // A private mount namespace with its own /tmp, so the real
    // /tmp/driftprobe is never touched. The binary (under /tmp) is opened
    // before the tmpfs hides it and run through /proc/self/fd.
    let script = r#"
        exec 3<"$BIN" || exit 90
        mount -t tmpfs tmpfs /tmp || exit 91
        /proc/self/fd/3 readiness --grace 0 /etc/hostname
        echo "rc=$?"
        stat -c 'mode=%a uid=%u' /tmp/driftprobe
        rm -rf /tmp/driftprobe
        mkdir -m 0777 /tmp/driftprobe && chown 4242 /tmp/driftprobe
        /proc/self/fd/3 readiness --grace 0 /etc/hostname
        echo "rc=$?"
        ls -A /tmp/driftprobe | wc -l
    "#;
    let out = sh_in_private_mounts(script);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    // `unshare --mount` without a PID namespace looks like a shared PID
    // namespace: PID 1 is in another mount namespace, so the entrypoint is
    // this `sh`, younger than /etc/hostname: a proven lazy baseline.
    assert!(lines[0].starts_with("ok:"), "{out}");
    assert_eq!(lines[1], "rc=0", "{out}");
    assert_eq!(lines[2], "mode=700 uid=0", "{out}");
    assert_eq!(
        lines[3],
        "cannot determine: state dir /tmp/driftprobe: owned by uid 4242, not us; refusing (another user may have planted it)",
        "{out}"
    );
    assert_eq!(lines[4], "rc=3", "{out}");
    assert_eq!(lines[5].trim(), "0", "nothing written into it: {out}");
}

#[test]
fn trailing_slash_and_dot_name_the_same_state() {
    let env = TestEnv::new();
    env.vol.write(&V1);
    let vol = env.vol.path().display().to_string();
    let out = env.run("init", &[format!("{vol}/")]);
    assert_eq!(out.code, 0, "{out}");
    // Files newer than PID 1: only the recorded baseline makes these ok.
    env.run("liveness", &["--grace".into(), "0".into(), vol.clone()])
        .ok();
    env.run(
        "readiness",
        &["--grace".into(), "0".into(), format!("{vol}/.")],
    )
    .ok();
    assert_eq!(json_files(&env.state_dir).len(), 1);
}

// ---------------------------------------------------------------------------
// shareProcessNamespace: PID 1 is `pause`, the app is another process
// ---------------------------------------------------------------------------

/// An "app container" inside a shared PID namespace: a `sleep` in its own
/// mount namespace (`nsenter --target <ns PID 1> --pid --mount unshare
/// --mount sleep 600`). Probes enter the app's namespaces, as the kubelet's
/// exec does.
struct App {
    nsenter: std::process::Child,
    /// Host PID of the app's `sleep`.
    pid: u32,
}

impl App {
    fn start(ns: &Ns) -> App {
        let mut nsenter = std::process::Command::new("nsenter")
            .arg("--target")
            .arg(ns.init_pid.to_string())
            .args([
                "--pid", "--mount", "--", "unshare", "--mount", "sleep", "600",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn nsenter");
        let me = nsenter.id();
        let pause_ns = fs::read_link(format!("/proc/{}/ns/mnt", ns.init_pid)).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            assert!(
                nsenter.try_wait().unwrap().is_none(),
                "nsenter/unshare --mount exited early"
            );
            let kids =
                fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
            if let Some(pid) = kids.split_whitespace().next() {
                let pid: u32 = pid.parse().unwrap();
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                let ns = fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
                if comm.trim() == "sleep" && ns.is_some() && ns.as_ref() != Some(&pause_ns) {
                    return App { nsenter, pid };
                }
            }
            assert!(std::time::Instant::now() < deadline, "app did not start");
            thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn on_vol(&self, env: &TestEnv, sub: &str, opts: &[&str]) -> Out {
        let target = self.pid.to_string();
        env.on_vol_via(
            &[
                "nsenter", "--target", &target, "--pid", "--mount", "--", BIN,
            ],
            sub,
            opts,
        )
    }

    fn baseline_source(&self, env: &TestEnv) -> String {
        let out = self.on_vol(env, "status", &["--json"]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("status JSON");
        v["baseline"]["source"]
            .as_str()
            .unwrap_or("none")
            .to_string()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // Only what this helper started: the app's sleep, then its nsenter.
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        let _ = self.nsenter.kill();
        let _ = self.nsenter.wait();
    }
}

#[test]
fn shared_process_namespace_keys_state_to_the_app() {
    const V2: [(&str, &str); 2] = [("app.yaml", "a: 2\n"), ("nested/k", "k")];
    const V3: [(&str, &str); 2] = [("app.yaml", "a: 3\n"), ("nested/k", "k")];
    let env = TestEnv::new();
    // The pod's pause (PID 1) starts before the config is written, the app
    // after: only the app's start time can prove a lazy baseline.
    let pod = Ns::pid();
    sleep_past_second();
    env.vol.write(&V1);
    sleep_past_second();
    let app = App::start(&pod);
    app.on_vol(&env, "liveness", &["--grace", "0"]).ok();
    app.on_vol(&env, "readiness", &["--grace", "0"]).ok();
    assert_eq!(app.baseline_source(&env), "lazy");
    env.vol.write(&V2);
    app.on_vol(&env, "liveness", &["--grace", "0"])
        .drift()
        .contains("1 changed");
    // The kubelet restarts the app container; pause (PID 1) stays. The
    // state dir survived (an emptyDir): the new app instance re-baselines.
    drop(app);
    sleep_past_second();
    let app = App::start(&pod);
    app.on_vol(&env, "liveness", &["--grace", "0"]).ok();
    assert_eq!(app.baseline_source(&env), "lazy");
    assert_eq!(json_files(&env.state_dir).len(), 1, "one state file");
    env.vol.write(&V3);
    app.on_vol(&env, "liveness", &["--grace", "0"])
        .drift()
        .contains("1 changed");
    // Config changed after this app started: no lazy baseline for the next.
    drop(app);
    let app = App::start(&pod);
    sleep_past_second();
    env.vol.write(&V1);
    app.on_vol(&env, "liveness", &["--grace", "0"])
        .drift()
        .contains("cannot prove");
}

/// readOnlyRootFilesystem without --state-dir: the state dir cannot be
/// created. Readiness says so and how to fix it (exit 3); liveness passes
/// by default (never restart healthy pods for a probe problem) but still
/// prints the reason.
#[test]
fn read_only_state_dir_names_the_fix() {
    let env = env_v1();
    let ro = env.path("ro");
    fs::create_dir(&ro).unwrap();
    let script = format!(
        "mount -t tmpfs -o ro tmpfs {ro} || exit 90; \
         for kind in readiness liveness; do \"$BIN\" $kind --state-dir {ro}/state {vol}; echo \"rc=$?\"; done",
        ro = ro.display(),
        vol = env.vol.path().display()
    );
    let mut cmd = assert_cmd::Command::new("unshare");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("BIN", BIN)
        .timeout(RUN_TIMEOUT)
        .args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let out = run(&mut cmd);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for line in [lines[0], lines[2]] {
        assert!(line.starts_with("cannot determine: state dir"), "{out}");
        assert!(line.contains("Read-only file system"), "{out}");
        assert!(
            line.contains("mount an emptyDir and pass --state-dir"),
            "{out}"
        );
    }
    assert_eq!(lines[1], "rc=3", "{out}");
    assert_eq!(lines[3], "rc=0", "{out}");
    assert!(lines[2].ends_with("(passing: --on-error pass)"), "{out}");
}
