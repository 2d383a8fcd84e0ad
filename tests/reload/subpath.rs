//! subPath detection: a watched path that is a single-file bind mount (what
//! the kubelet does for `subPath`) never changes; the first probe of a
//! container warns once on stderr and `status` keeps showing it.
//!
//! Each "container" is a private mount + PID namespace whose PID 1 is a
//! shell that did the bind mount and then sleeps; probes run inside it
//! with nsenter. Its PID 1 starts after the files were written, so the
//! lazy baseline applies and the probes are plain `ok:`.

use super::common::*;
use crate::support::*;
use std::fs;
use std::path::Path;

/// A container whose PID 1 optionally bind-mounts `src` onto `target`.
fn container(src: &Path, target: &Path, bind: bool) -> Ns {
    let script = if bind {
        format!(
            "mount --bind '{}' '{}' && exec sleep 600",
            src.display(),
            target.display()
        )
    } else {
        "exec sleep 600".to_string()
    };
    Ns::start(
        &[
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--mount-proc",
        ],
        &["sh", "-c", &script],
        "sleep",
    )
}

/// `..2026_…/app.yaml` as the kubelet's subPath source, plus a plain file
/// at the container path the app reads.
fn setup(env: &TestEnv) -> (std::path::PathBuf, std::path::PathBuf) {
    env.vol.write(&[("app.yaml", "a: 1\n")]);
    let src = env
        .vol
        .path()
        .join(env.vol.data_target().unwrap())
        .join("app.yaml");
    let etc = env.path("etc");
    fs::create_dir(&etc).unwrap();
    let target = etc.join("app.yaml");
    fs::write(&target, "placeholder\n").unwrap();
    (src, target)
}

fn assert_subpath_warning(out: &Out, target: &Path) {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("subPath"))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one subPath warning: {out}");
    assert!(
        lines[0].contains(&target.display().to_string()),
        "the warning names the path: {out}"
    );
}

#[test]
fn single_file_bind_mount_warns_once_and_status_keeps_it() {
    let env = TestEnv::new();
    let (src, target) = setup(&env);
    sleep_past_second();
    let ns = container(&src, &target, true);
    let t = target.as_os_str();
    // The bind mount is in place: the probe sees the ConfigMap's content.
    let d = run(ns.driftprobe().arg("digest").arg(t));
    assert_eq!(d.code, 0, "{d}");
    assert_eq!(digest_line(&d), env.digest_of(&[&src]));

    let first = ns.run(&env, "readiness", &[t]);
    first.ok();
    assert_subpath_warning(&first, &target);
    for sub in ["readiness", "liveness", "readiness"] {
        let again = ns.run(&env, sub, &[t]);
        again.ok();
        assert!(
            !again.stderr.contains("subPath"),
            "warned again on a later probe of the same container: {again}"
        );
    }
    let v = json(&ns.run(&env, "status", &[std::ffi::OsStr::new("--json"), t]));
    let warnings = v["warnings"].as_array().expect("warnings");
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.as_str().unwrap_or("").contains("subPath"))
            .count(),
        1,
        "{v}"
    );
    let human = ns.run(&env, "status", &[t]);
    assert!(human.stdout.contains("subPath"), "{human}");

    // A restarted container (new PID 1, same state dir) warns again, once.
    drop(ns);
    let ns = container(&src, &target, true);
    let first = ns.run(&env, "readiness", &[t]);
    first.ok();
    assert_subpath_warning(&first, &target);
    let again = ns.run(&env, "readiness", &[t]);
    assert!(!again.stderr.contains("subPath"), "{again}");
}

#[test]
fn plain_file_and_whole_volume_do_not_warn() {
    let env = TestEnv::new();
    let (src, target) = setup(&env);
    sleep_past_second();
    let ns = container(&src, &target, false);
    for path in [target.as_path(), env.vol.path()] {
        let p = path.as_os_str();
        let out = ns.run(&env, "readiness", &[p]);
        out.ok();
        assert!(!out.stderr.contains("subPath"), "{out}");
        let v = json(&ns.run(&env, "status", &[std::ffi::OsStr::new("--json"), p]));
        assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
    }
}

/// With the recommended `init` (postStart) the first probe must still warn:
/// README "The first probe of each container warns once on stderr, and
/// `status` keeps showing it".
#[test]
fn subpath_warning_also_after_init() {
    let env = TestEnv::new();
    let (src, target) = setup(&env);
    let ns = container(&src, &target, true);
    let t = target.as_os_str();
    let init = ns.run(&env, "init", &[t]);
    assert_eq!(init.code, 0, "{init}");
    let first = ns.run(&env, "readiness", &[t]);
    first.ok();
    let warned_at_init = init.stderr.contains("subPath");
    assert!(
        warned_at_init || first.stderr.contains("subPath"),
        "neither init nor the first probe warned about the subPath mount:\ninit: {init}\nprobe: {first}"
    );
    let again = ns.run(&env, "readiness", &[t]);
    assert!(!again.stderr.contains("subPath"), "{again}");
    let v = json(&ns.run(&env, "status", &[std::ffi::OsStr::new("--json"), t]));
    assert!(
        v["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str().unwrap_or("").contains("subPath"))),
        "status must show the subPath warning: {v}"
    );
}
