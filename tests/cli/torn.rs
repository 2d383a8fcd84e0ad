//! Consistent snapshots while the kubelet swaps `..data`: probes racing a
//! writer thread, and deterministic probes at each pause point of an update.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

const OLD: [(&str, &str); 4] = [
    ("a.conf", "alpha=old\n"),
    ("b.conf", "beta=old\n"),
    ("nested/c/d", "delta=old\n"),
    ("z", "zeta=old\n"),
];
const NEW: [(&str, &str); 4] = [
    ("a.conf", "alpha=new\n"),
    ("b.conf", "beta=new\n"),
    ("nested/c/d", "delta=new\n"),
    ("z", "zeta=new\n"),
];

/// Minimum number of `..data` swaps the writer must perform while probes run.
const MIN_SWAPS: usize = 2000;
const PROBE_THREADS: usize = 1;
const MIN_PROBES_PER_THREAD: usize = 100;

/// Digest and per-file manifest (path -> sha256) of a static copy of `payload`.
fn reference(
    env: &TestEnv,
    name: &str,
    payload: &[(&str, &str)],
) -> (String, BTreeMap<String, String>) {
    let vol = env.volume(name);
    vol.write(payload);
    let digest = env.digest_of(&[vol.path()]);
    (
        digest,
        manifest(&run(env.cmd("digest").arg("--json").arg(vol.path()))),
    )
}

fn manifest(out: &Out) -> BTreeMap<String, String> {
    out.no_panic();
    assert_eq!(out.code, 0, "digest --json: {out}");
    let v: serde_json::Value =
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files: {out}"))
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Runs `writer` (one swap per call) in a thread while `PROBE_THREADS` threads
/// call `probe` until the writer did `MIN_SWAPS` swaps and each thread probed
/// at least `MIN_PROBES_PER_THREAD` times. Returns (swaps, probes).
fn race<W, P>(mut writer: W, probe: P) -> (usize, usize)
where
    W: FnMut(usize) + Send + 'static,
    P: Fn() + Send + Sync + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let probes = Arc::new(AtomicUsize::new(0));
    let w = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                writer(i);
                i += 1;
                swaps.store(i, Ordering::Relaxed);
                // A little air between swaps (the kubelet swaps at most once
                // per sync); varied so probes hit every phase.
                thread::sleep(Duration::from_micros(50 + (i as u64 * 37) % 150));
            }
        })
    };
    let probe = Arc::new(probe);
    let deadline = Instant::now() + Duration::from_secs(60);
    let handles: Vec<_> = (0..PROBE_THREADS)
        .map(|_| {
            let (swaps, probes, probe) = (swaps.clone(), probes.clone(), probe.clone());
            thread::spawn(move || {
                let mut n = 0;
                while n < MIN_PROBES_PER_THREAD || swaps.load(Ordering::Relaxed) < MIN_SWAPS {
                    probe();
                    n += 1;
                    probes.fetch_add(1, Ordering::Relaxed);
                    assert!(Instant::now() < deadline, "race took too long");
                }
            })
        })
        .collect();
    let mut panic = None;
    for h in handles {
        if let Err(e) = h.join() {
            panic.get_or_insert(e);
        }
    }
    stop.store(true, Ordering::Relaxed);
    w.join().expect("writer thread");
    if let Some(e) = panic {
        std::panic::resume_unwind(e);
    }
    (
        swaps.load(Ordering::Relaxed),
        probes.load(Ordering::Relaxed),
    )
}

#[test]
fn identical_swaps_never_drift() {
    let env = Arc::new(TestEnv::new());
    env.vol.write(&OLD);
    env.init();
    let (d_old, _) = reference(&env, "ref-old", &OLD);
    let vol = env.vol.clone();
    let e = env.clone();
    let i = Arc::new(AtomicUsize::new(0));
    let (swaps, probes) = race(
        move |_| {
            vol.write_forced(&OLD);
        },
        move || {
            let n = i.fetch_add(1, Ordering::Relaxed);
            match n % 3 {
                0 => {
                    e.liveness("0").ok();
                }
                1 => {
                    e.readiness("0").ok();
                }
                _ => assert_eq!(e.digest(), d_old, "digest during identical rewrites"),
            }
        },
    );
    assert!(swaps >= MIN_SWAPS, "only {swaps} swaps");
    eprintln!("identical_swaps_never_drift: {swaps} swaps, {probes} probes");
    env.liveness("0").ok();
}

#[test]
fn swaps_between_versions_are_never_mixed() {
    let env = Arc::new(TestEnv::new());
    env.vol.write(&OLD);
    env.init();
    let (d_old, m_old) = reference(&env, "ref-old", &OLD);
    let (d_new, m_new) = reference(&env, "ref-new", &NEW);
    assert_ne!(d_old, d_new);
    let vol = env.vol.clone();
    let e = env.clone();
    let i = Arc::new(AtomicUsize::new(0));
    let seen_new = Arc::new(AtomicUsize::new(0));
    let seen_new2 = seen_new.clone();
    let (swaps, probes) = race(
        move |n| {
            let WriteOutcome::Written(_) = (if n % 2 == 0 {
                vol.write(&NEW)
            } else {
                vol.write(&OLD)
            }) else {
                panic!("every alternate write changes the payload")
            };
        },
        move || {
            let n = i.fetch_add(1, Ordering::Relaxed);
            match n % 3 {
                0 => {
                    let d = e.digest();
                    assert!(
                        d == d_old || d == d_new,
                        "mixed digest {d} (old {d_old}, new {d_new})"
                    );
                    if d == d_new {
                        seen_new2.fetch_add(1, Ordering::Relaxed);
                    }
                }
                1 => {
                    let m = manifest(&run(e.cmd("digest").arg("--json").arg(e.vol.path())));
                    assert!(m == m_old || m == m_new, "mixed manifest {m:?}");
                }
                _ => {
                    // Baseline is OLD; a torn read would show 1..3 changed
                    // or added/removed keys. Inside grace: exit 0.
                    let out = e.liveness("1h");
                    out.no_panic();
                    assert_eq!(out.code, 0, "{out}");
                    let line = out.line();
                    assert!(
                        line.starts_with("ok:")
                            || (line.starts_with("drift:")
                                && line.contains("4 changed")
                                && !line.contains("added")
                                && !line.contains("removed")),
                        "verdict must be exactly old or exactly new: {out}"
                    );
                }
            }
        },
    );
    assert!(swaps >= MIN_SWAPS, "only {swaps} swaps");
    eprintln!("swaps_between_versions_are_never_mixed: {swaps} swaps, {probes} probes");
    assert!(
        seen_new.load(Ordering::Relaxed) > 0,
        "never observed the new version"
    );
}

/// Probes at each pause point of one update where the key set stays the
/// same: before the swap the old version, after it the new one.
#[test]
fn mid_update_pause_points_same_keys() {
    let env = TestEnv::new();
    env.vol.write(&OLD);
    env.init();
    let (d_old, _) = reference(&env, "ref-old", &OLD);
    let (d_new, _) = reference(&env, "ref-new", &NEW);
    let mut steps = 0;
    env.vol
        .write_with_hook(&NEW, false, |step| {
            steps += 1;
            let d = env.digest();
            match step {
                Step::PayloadWritten | Step::TmpLinkCreated => {
                    assert_eq!(
                        d, d_old,
                        "at {step:?}: new ts dir / ..data_tmp must not be walked"
                    );
                    env.liveness("0").ok();
                }
                _ => {
                    assert_eq!(d, d_new, "at {step:?}");
                    env.liveness("1h").expect(0, "drift:").contains("4 changed");
                }
            }
        })
        .unwrap();
    assert_eq!(steps, 6);
}

/// The same with keys added and removed: between the swap and the symlink
/// fix-up, the new key is not linked at the top level yet and the removed key
/// is a dangling link. The `..data` target already holds the whole new
/// version, so a probe that reads through it sees exactly the new version.
#[test]
fn mid_update_pause_points_added_and_removed_keys() {
    let env = TestEnv::new();
    let old = [("a", "1"), ("b", "2"), ("n/x", "x")];
    let new = [("a", "9"), ("c", "3"), ("n/x", "x")];
    env.vol.write(&old);
    env.init();
    let (d_old, _) = reference(&env, "ref-old", &old);
    let (d_new, _) = reference(&env, "ref-new", &new);
    env.vol
        .write_with_hook(&new, false, |step| {
            let out = env.run("digest", &[env.vol.path()]);
            let live = env.liveness("1h");
            match step {
                Step::PayloadWritten | Step::TmpLinkCreated => {
                    assert_eq!(digest_line(&out), d_old, "at {step:?}");
                    live.ok();
                }
                _ => {
                    assert_eq!(
                        digest_line(&out),
                        d_new,
                        "at {step:?}: must be the whole new version"
                    );
                    live.expect(0, "drift:")
                        .contains("1 changed")
                        .contains("1 added")
                        .contains("1 removed");
                }
            }
        })
        .unwrap();
}

/// A kubelet that died mid-update leaves `..data_tmp` and an orphan
/// timestamped dir behind: both are internals, never part of the digest.
#[test]
fn stale_data_tmp_and_orphan_ts_dir_are_ignored() {
    let env = TestEnv::new();
    env.vol.write(&OLD);
    env.init();
    let d = env.digest();
    let orphan = env.vol.path().join("..2020_01_01_00_00_00.123456789");
    std::fs::create_dir(&orphan).unwrap();
    std::fs::write(orphan.join("a.conf"), "alpha=orphan\n").unwrap();
    std::fs::write(orphan.join("extra"), "x").unwrap();
    std::os::unix::fs::symlink(
        "..2020_01_01_00_00_00.123456789",
        env.vol.path().join("..data_tmp"),
    )
    .unwrap();
    assert_eq!(env.digest(), d);
    env.liveness("0").ok();
    // The next real update still works and is seen.
    std::fs::remove_file(env.vol.path().join("..data_tmp")).unwrap();
    env.vol.write(&NEW);
    env.liveness("0").drift().contains("4 changed");
}

/// Issue 13.5: projected volumes and `items[].path` put keys two or more
/// levels down (`conf/app/x`). A watched path down there, a directory or
/// files, is read through the volume's `..data` like the volume itself:
/// while the kubelet swaps versions, every digest is wholly old or new.
#[test]
fn nested_paths_inside_a_volume_are_never_mixed() {
    const OLD: [(&str, &str); 4] = [
        ("conf/app/x", "x=old\n"),
        ("conf/app/y", "y=old\n"),
        ("conf/app/deeper/z", "z=old\n"),
        ("top", "top=old\n"),
    ];
    const NEW: [(&str, &str); 4] = [
        ("conf/app/x", "x=new\n"),
        ("conf/app/y", "y=new\n"),
        ("conf/app/deeper/z", "z=new\n"),
        ("top", "top=new\n"),
    ];
    let env = Arc::new(TestEnv::new());
    env.vol.write(&OLD);
    // Three watched sets: a directory two levels down, a file there, and
    // two files (several paths: names carry the path, written VOL/...).
    let sets = |root: &Path| -> Vec<Vec<PathBuf>> {
        vec![
            vec![root.join("conf/app")],
            vec![root.join("conf/app/x")],
            vec![root.join("conf/app/x"), root.join("conf/app/deeper/z")],
        ]
    };
    fn seen_as(env: &TestEnv, paths: &[PathBuf], root: &Path) -> String {
        let out = run(env.cmd("digest").arg("--json").args(paths));
        let root = root.display().to_string();
        manifest(&out)
            .into_iter()
            .map(|(name, sha)| format!("{}={sha}", name.replace(&root, "VOL")))
            .collect::<Vec<_>>()
            .join(",")
    }
    // What each set reads as in each version, from still copies.
    let (old, new) = (env.volume("ref-old"), env.volume("ref-new"));
    old.write(&OLD);
    new.write(&NEW);
    let expected: Vec<(String, String)> = sets(old.path())
        .iter()
        .zip(sets(new.path()))
        .map(|(o, n)| (seen_as(&env, o, old.path()), seen_as(&env, &n, new.path())))
        .collect();
    for (o, n) in &expected {
        assert_ne!(o, n);
    }
    let vol = env.vol.clone();
    let e = env.clone();
    let i = Arc::new(AtomicUsize::new(0));
    let seen_new = Arc::new(AtomicUsize::new(0));
    let seen = seen_new.clone();
    let (swaps, probes) = race(
        move |n| {
            let WriteOutcome::Written(_) = (if n % 2 == 0 {
                vol.write(&NEW)
            } else {
                vol.write(&OLD)
            }) else {
                panic!("every alternate write changes the payload")
            };
        },
        move || {
            let n = i.fetch_add(1, Ordering::Relaxed) % 3;
            let paths = &sets(e.vol.path())[n];
            let got = seen_as(&e, paths, e.vol.path());
            let (old, new) = &expected[n];
            assert!(
                &got == old || &got == new,
                "mixed read of {paths:?}:\n got {got}\n old {old}\n new {new}"
            );
            if &got == new {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        },
    );
    assert!(swaps >= MIN_SWAPS, "only {swaps} swaps");
    eprintln!("nested_paths_inside_a_volume_are_never_mixed: {swaps} swaps, {probes} probes");
    assert!(
        seen_new.load(Ordering::Relaxed) > 0,
        "never saw the new version"
    );
}
