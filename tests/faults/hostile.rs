//! Hostile and odd inputs: a state file turned into a symlink to
//! /etc/shadow, a planted /tmp/driftprobe, a huge tree, a path component
//! swapped during the walk, names with newlines, a file growing while it
//! is hashed, a key we may not read, and trees past the walk's budgets (a
//! sparse 1 TiB file, a symlink fan-out, 5,000 nested volumes, 100,000
//! empty directories, a state bigger than the old fixed cap). Each ends in
//! a clear line and a safe code, never a panic, never file contents on the
//! output.

use crate::support::{as_uid, driftprobe, run, sh_in_private_mounts, Out, TestEnv};
use crate::{tally, Tmpfs};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn probe(env: &TestEnv, sub: &str, grace: &str, path: &Path) -> Out {
    let mut cmd = env.cmd(sub);
    cmd.args(["--grace", grace]).arg(path);
    let out = run(&mut cmd);
    out.no_panic();
    out
}

#[test]
fn a_state_file_swapped_for_a_symlink_to_etc_shadow() {
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    env.init();
    let file = env.state_file();
    let shadow_before = fs::read("/etc/shadow").unwrap();
    fs::remove_file(&file).unwrap();
    symlink("/etc/shadow", &file).unwrap();
    for sub in ["status", "readiness", "liveness"] {
        let mut cmd = env.cmd(sub);
        cmd.arg(env.vol.path());
        let out = run(&mut cmd);
        out.no_panic();
        // status only reads; readiness notes it and writes its own file.
        if sub != "liveness" {
            assert!(
                out.stderr.contains("the state file is a symlink; ignored")
                    || out.stdout.contains("the state file is a symlink; ignored"),
                "{sub}: {out}"
            );
        }
        assert!(
            !out.stdout.contains("root:") && !out.stderr.contains("root:"),
            "{out}"
        );
        // Not a verdict of "ok" without a baseline we trust.
        assert!(!out.stdout.starts_with("ok:"), "{sub}: {out}");
    }
    assert_eq!(fs::read("/etc/shadow").unwrap(), shadow_before, "followed");
    // The probe replaced the link (never through it) with its own file.
    let meta = fs::symlink_metadata(&file).unwrap();
    assert!(meta.is_file(), "{meta:?}");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    tally(
        "state file swapped for a symlink to /etc/shadow",
        3,
        0,
        0,
        "",
    );
}

#[test]
fn a_state_dir_planted_in_a_sticky_tmp_by_another_user() {
    // A private /tmp (sticky, 1777) in a mount namespace; uid 4242 plants
    // /tmp/driftprobe before the probe's first run.
    let script = r#"
        exec 3<"$BIN" || exit 90
        mount -t tmpfs -o mode=1777 tmpfs /tmp || exit 91
        for mode in 0700 0777; do
            rm -rf /tmp/driftprobe
            setpriv --reuid=4242 --regid=4242 --clear-groups mkdir -m $mode /tmp/driftprobe
            setpriv --reuid=4242 --regid=4242 --clear-groups ln -s /etc /tmp/driftprobe/x 2>/dev/null
            for kind in readiness liveness; do
                /proc/self/fd/3 $kind --grace 0 /etc/hostname; echo "rc=$?"
            done
        done
        rm -rf /tmp/driftprobe
        setpriv --reuid=4242 --regid=4242 --clear-groups ln -s /etc /tmp/driftprobe
        /proc/self/fd/3 readiness --grace 0 /etc/hostname; echo "rc=$?"
    "#;
    let out = sh_in_private_mounts(script);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    for pair in lines[..8].chunks(2) {
        assert!(
            pair[0].starts_with(
                "cannot determine: state dir /tmp/driftprobe: owned by uid 4242, not us; refusing"
            ),
            "{out}"
        );
    }
    // Readiness: cannot determine (3); liveness passes (no restart).
    assert_eq!(
        [lines[1], lines[3], lines[5], lines[7]],
        ["rc=3", "rc=0", "rc=3", "rc=0"],
        "{out}"
    );
    assert!(
        lines[8].contains("is a symlink; refusing to follow it"),
        "{out}"
    );
    assert_eq!(lines[9], "rc=3", "{out}");
    tally(
        "/tmp/driftprobe planted by another user",
        5,
        0,
        0,
        "sticky 1777 /tmp",
    );
}

#[test]
fn a_tree_of_100000_files_is_refused_clearly() {
    let env = TestEnv::new();
    // On a tmpfs: 100,000 empty files cost inodes only, and no disk.
    let big = env.path("big");
    let _fs = Tmpfs::mount(&big, "16m");
    for d in 0..100 {
        let dir = big.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..1_000 {
            fs::File::create(dir.join(format!("f{f:03}"))).unwrap();
        }
    }
    let started = std::time::Instant::now();
    let mut init = env.cmd("init");
    init.arg(&big);
    let out = run(&mut init);
    out.no_panic();
    assert_eq!(out.code, 3, "{out}");
    let readiness = probe(&env, "readiness", "0s", &big);
    let liveness = probe(&env, "liveness", "0s", &big);
    for out in [&out, &readiness] {
        assert!(
            out.stdout
                .starts_with("cannot determine: budget: max-entries (20000) exceeded at "),
            "{out}"
        );
        assert!(out.stdout.contains("--exclude"), "the fix is named: {out}");
    }
    assert_eq!(readiness.code, 3, "{readiness}");
    assert_eq!(
        liveness.code, 0,
        "no restart for a tree we refuse: {liveness}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "refusing took {:?}",
        started.elapsed()
    );
    tally(
        "budget: max-entries, a watched tree of 100,000 files",
        3,
        0,
        0,
        "refused: cannot determine (readiness exit 3, liveness passes)",
    );
}

#[test]
fn a_path_component_swapped_during_the_walk() {
    // /w/link -> a or b, flipped atomically (rename of a new link) as fast
    // as possible while probes walk /w/link. a and b hold the same bytes:
    // no probe may ever see a drift.
    let env = TestEnv::new();
    let w = env.path("w");
    for side in ["a", "b"] {
        for i in 0..20 {
            let dir = w.join(side).join(format!("sub{}", i % 4));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("k{i}")), format!("value {i}\n")).unwrap();
        }
    }
    symlink("a", w.join("link")).unwrap();
    let watched = w.join("link");
    let mut init = env.cmd("init");
    init.arg(&watched);
    assert_eq!(run(&mut init).code, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, w) = (stop.clone(), w.clone());
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = if flips.is_multiple_of(2) { "b" } else { "a" };
                let _ = fs::remove_file(w.join("link.tmp"));
                symlink(target, w.join("link.tmp")).unwrap();
                fs::rename(w.join("link.tmp"), w.join("link")).unwrap();
                flips += 1;
            }
            flips
        })
    };
    let runs = 100;
    for _ in 0..runs {
        let out = probe(&env, "liveness", "0s", &watched);
        assert!(
            out.code == 0 && out.stdout.starts_with("ok:")
                || out.stdout.starts_with("cannot determine"),
            "a swap of identical trees looked like a drift: {out}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(flips > 100, "only {flips} flips");
    tally(
        "symlinked path component swapped during the walk",
        runs,
        0,
        0,
        &format!("{flips} swaps"),
    );
}

#[test]
fn file_names_with_newlines_stay_on_one_line() {
    let env = TestEnv::new();
    let dir = env.path("odd");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("a"), "1").unwrap();
    fs::write(dir.join("b"), "2").unwrap();
    let plain = env.digest_of(&[&dir]);
    // "a\nb" is one name, not two: the manifest cannot be confused.
    fs::write(dir.join("a\nb"), "3").unwrap();
    let odd = env.digest_of(&[&dir]);
    assert_ne!(plain, odd);
    let mut init = env.cmd("init");
    init.arg(&dir);
    assert_eq!(run(&mut init).code, 0);
    fs::write(dir.join("a\nb"), "4").unwrap();
    fs::write(dir.join("x\ny\rz"), "5").unwrap();
    let out = probe(&env, "liveness", "0s", &dir);
    out.drift();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let mut status = env.cmd("status");
    status.arg("--json").arg(&dir);
    let st = run(&mut status);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    // Control characters in names are shown escaped, as everywhere.
    assert_eq!(v["changes"]["changed"][0], "a\\x0ab", "{st}");
    assert_eq!(v["changes"]["added"][0], "x\\x0ay\\x0dz", "{st}");
    tally("file names with newlines", 4, 0, 0, "");
}

#[test]
fn a_file_growing_while_hashed() {
    use sha2::{Digest, Sha256};
    let env = TestEnv::new();
    let dir = env.path("grow");
    fs::create_dir(&dir).unwrap();
    let log = dir.join("big.conf");
    fs::write(&log, vec![b'a'; 4 << 20]).unwrap();
    let mut init = env.cmd("init");
    init.arg(&dir);
    assert_eq!(run(&mut init).code, 0);
    // ~30 MB/s of appends while files are hashed.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, log) = (stop.clone(), log.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = fs::OpenOptions::new().append(true).open(log).unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.write_all(&[b'b'; 65536]).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    // The writer thread may not have run yet on a loaded machine: the
    // first probe must see a file that has already grown.
    let grown = std::time::Instant::now();
    while fs::metadata(&log).unwrap().len() == 4 << 20 {
        assert!(grown.elapsed().as_secs() < 30, "the writer never appended");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut seen = Vec::new();
    for _ in 0..5 {
        let out = probe(&env, "liveness", "1h", &dir);
        assert_eq!(out.code, 0, "{out}");
        assert!(out.stdout.starts_with("drift:"), "{out}");
        let out = env.run("digest", &[OsStr::new("--json"), dir.as_os_str()]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let f = &v["files"][0];
        seen.push((
            f["size"].as_u64().unwrap(),
            f["sha256"].as_str().unwrap().to_string(),
        ));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // Each digest covers exactly the bytes the file had when it was
    // looked at (a prefix: the file only grew), not whatever the writer
    // added during the read.
    let bytes = fs::read(&log).unwrap();
    for (size, sha) in &seen {
        let want = driftprobe::digest::hex(&Sha256::digest(&bytes[..*size as usize]));
        assert_eq!(&want, sha, "size {size} of {}", bytes.len());
    }
    // The stat cache kept no hash of a half-read file: once the file is
    // quiet the probe agrees with a fresh digest, and with the baseline
    // once its bytes are back.
    let fresh = env.digest_of(&[&dir]);
    let mut status = env.cmd("status");
    status.arg("--json").arg(&dir);
    let v: serde_json::Value = serde_json::from_str(&run(&mut status).stdout).unwrap();
    assert_eq!(v["current"]["digest"], fresh.as_str());
    fs::write(&log, vec![b'a'; 4 << 20]).unwrap();
    probe(&env, "liveness", "1h", &dir).ok();
    tally("a file growing while it is hashed", 11, 0, 0, "");
}

#[test]
fn a_key_we_may_not_read() {
    let env = TestEnv::new();
    env.vol
        .write(&[("app.yaml", "v: 1\n"), ("secret.key", "TOPSECRET\n")]);
    fs::set_permissions(env.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data = fs::read_link(env.vol.path().join("..data")).unwrap();
    let key = env.vol.path().join(data).join("secret.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let state = env.path("state4242");
    fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(4242), Some(4242)).unwrap();
    let as_4242 = |sub: &str| {
        let out = run(as_uid(4242)
            .arg(sub)
            .arg("--state-dir")
            .arg(&state)
            .arg(env.vol.path()));
        out.no_panic();
        assert!(!out.stdout.contains("TOPSECRET") && !out.stderr.contains("TOPSECRET"));
        out
    };
    let init = as_4242("init");
    assert_eq!(init.code, 3, "{init}");
    for out in [&init, &as_4242("readiness")] {
        assert!(
            out.stdout.starts_with("cannot determine: cannot read"),
            "{out}"
        );
        assert!(
            out.stdout.contains("secret.key: Permission denied"),
            "{out}"
        );
    }
    assert_eq!(as_4242("readiness").code, 3);
    assert_eq!(as_4242("liveness").code, 0, "never a restart for this");
    let _ = driftprobe; // the plain helper is used by other modules
    tally(
        "a key unreadable by permissions",
        4,
        0,
        0,
        "cannot determine (readiness exit 3, liveness passes)",
    );
}

/// Another uid sharing a 0777 emptyDir (not sticky) can rename our private
/// `driftprobe-<euid>` away before every probe: the drift record vanishes
/// and the grace window starts over. Nothing in the dir can stop that, so
/// it is counted as lost, and the probe warns about the layout (stderr,
/// `status`); in a sticky parent the rename is refused and nothing is lost.
#[test]
fn another_uid_renames_the_private_state_dir() {
    let mut lost = [0, 0];
    for (i, mode) in [0o777, 0o1777].into_iter().enumerate() {
        let env = TestEnv::new();
        env.vol.write(&[("app.yaml", "v: 1\n")]);
        fs::set_permissions(env.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let shared = env.path("emptydir");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(mode)).unwrap();
        let exposed = mode & 0o1000 == 0;
        let warning = "can be renamed or removed by another user";
        let probe = |sub: &str, opts: &[&str]| {
            let mut cmd = driftprobe();
            cmd.arg(sub)
                .arg("--state-dir")
                .arg(&shared)
                .args(opts)
                .arg(env.vol.path());
            let out = run(&mut cmd);
            out.no_panic();
            out
        };
        let out = probe("init", &[]);
        assert_eq!(out.code, 0, "{out}");
        assert_eq!(
            out.stderr.contains(warning),
            exposed,
            "mode {mode:o}: {out}"
        );
        for json in [false, true] {
            let out = probe("status", if json { &["--json"] } else { &[] });
            assert_eq!(
                out.stdout.contains(warning),
                exposed,
                "mode {mode:o}: {out}"
            );
        }
        env.vol.write(&[("app.yaml", "v: 2\n")]);
        let first = probe("liveness", &["--grace", "1h"]);
        first.expect(0, "drift:");
        let since = |o: &Out| {
            let rest = o.stdout.rsplit(" since ").next().unwrap_or_default();
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        std::thread::sleep(std::time::Duration::from_millis(1_100));
        let renamed = as_uid_cmd(
            4242,
            "mv",
            &[
                shared.join("driftprobe-0").as_os_str(),
                shared.join("moved").as_os_str(),
            ],
        );
        assert_eq!(renamed, exposed, "mode {mode:o}: rename by another uid");
        let after = probe("liveness", &["--grace", "1h"]);
        after.expect(0, "drift:");
        if since(&after) != since(&first) {
            lost[i] += 1;
            // The fresh state warns again.
            assert!(after.stderr.contains(warning), "{after}");
        }
    }
    assert_eq!(lost, [1, 0], "lost drift records (0777, 1777)");
    tally(
        "state dir renamed by another uid (0777 emptyDir, not sticky)",
        1,
        lost[0],
        0,
        "known limit: the drift record is lost; warned on stderr and in status (use a sticky or private parent)",
    );
    tally(
        "state dir renamed by another uid (sticky parent)",
        1,
        lost[1],
        0,
        "the rename is refused",
    );
}

/// `CMD ARGS...` as `uid` (no groups); whether it succeeded.
fn as_uid_cmd(uid: u32, cmd: &str, args: &[&OsStr]) -> bool {
    std::process::Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "--", cmd])
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// `readiness` and `liveness` on `path`: a tree past a budget is refused
/// by name, as "cannot determine" (readiness exit 3, liveness passes: no
/// restart). Unless `opts` set a deadline, both run twice: with the
/// default 500 ms deadline (timed; on a busy machine the deadline may come
/// first), and with the test harness's long one (the named budget it is).
/// Returns the slowest timed run.
fn refused(env: &TestEnv, path: &Path, opts: &[&str], budget: &str) -> Duration {
    let mut passes = vec![(opts.to_vec(), true)];
    if !opts.contains(&"--deadline") {
        let mut timed = opts.to_vec();
        timed.extend(["--deadline", "500ms"]);
        passes = vec![(timed, false), (opts.to_vec(), true)];
    }
    let mut slowest = Duration::ZERO;
    for (opts, exact) in passes {
        for (sub, code) in [("readiness", 3), ("liveness", 0)] {
            let mut cmd = env.cmd(sub);
            cmd.args(["--grace", "0s"]).args(&opts).arg(path);
            let started = Instant::now();
            let out = run(&mut cmd);
            if !exact || opts.contains(&"--deadline") {
                slowest = slowest.max(started.elapsed());
            }
            out.no_panic();
            assert_eq!(out.code, code, "{sub}: {out}");
            let named = format!("cannot determine: budget: {budget} exceeded at ");
            let line = &out.stdout;
            assert!(
                line.starts_with(&named)
                    || (!exact && line.starts_with("cannot determine: budget: deadline (500ms)")),
                "{sub} {opts:?}: {out}"
            );
            assert_eq!(out.stdout.lines().count(), 1, "{out}");
        }
    }
    slowest
}

/// What a refused probe may take on a busy test machine: the 500 ms
/// deadline of the walk, the process around it, and slack for a debug
/// build sharing two CPUs (the bench measures the release binary).
const REFUSED_WITHIN: Duration = Duration::from_secs(3);

#[test]
fn budget_a_sparse_1_tib_file() {
    let env = TestEnv::new();
    let dir = env.path("sparse");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("app.conf"), "a=1\n").unwrap();
    let huge = fs::File::create(dir.join("huge")).unwrap();
    huge.set_len(1 << 40).unwrap();
    // Bigger than the byte budget: refused before a byte is read.
    let took = refused(&env, &dir, &[], "max-bytes (256MiB)");
    assert!(took < REFUSED_WITHIN, "took {took:?}");
    // With room in the byte budget, the deadline stops the hashing.
    let took = refused(
        &env,
        &dir,
        &["--max-bytes", "2TiB", "--deadline", "300ms"],
        "deadline (300ms)",
    );
    assert!(took < REFUSED_WITHIN, "took {took:?}");
    // `digest` (CI) has the same budgets.
    let out = env.run("digest", &[dir.as_os_str()]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stdout
            .contains("budget: max-bytes (256MiB) exceeded at "),
        "{out}"
    );
    tally(
        "budget: a sparse 1 TiB file (max-bytes, deadline)",
        7,
        0,
        0,
        "refused within the deadline: cannot determine",
    );
}

#[test]
fn budget_a_symlink_fan_out() {
    // 20 directories, each holding two symlinks to the next and no file:
    // 2^20 paths. Every entry counts, so the walk stops at 20,000.
    let env = TestEnv::new();
    let fan = env.path("fan");
    for i in 0..20 {
        let d = fan.join(format!("d{i:02}"));
        fs::create_dir_all(&d).unwrap();
        for link in ["a", "b"] {
            symlink(format!("../d{:02}", i + 1), d.join(link)).unwrap();
        }
    }
    fs::create_dir(fan.join("d20")).unwrap();
    // Symlinks and directories count, not only files.
    let took = refused(&env, &fan.join("d00"), &[], "max-entries (20000)");
    assert!(took < REFUSED_WITHIN, "took {took:?}");
    tally(
        "budget: a symlink fan-out of 2^20 paths (max-entries)",
        4,
        0,
        0,
        "refused within the deadline: cannot determine",
    );
}

/// A chain of kubelet volumes nested 5,000 deep: each level's payload
/// holds the next level's volume dir. Built with *at() calls, since the
/// paths outgrow PATH_MAX.
fn nested_volume_chain(top: &Path, levels: usize) {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    use nix::unistd::symlinkat;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let open = |at: Option<i32>, name: &Path| {
        let fd = openat(
            at,
            name,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .unwrap_or_else(|e| panic!("openat {}: {e}", name.display()));
        // SAFETY: openat just returned this descriptor; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let ts = "..2026_01_01_00_00_00.1";
    fs::create_dir_all(top).unwrap();
    let mut level = open(None, top);
    for _ in 0..levels {
        let at = Some(level.as_raw_fd());
        mkdirat(at, ts, Mode::from_bits_truncate(0o755)).unwrap();
        symlinkat(ts, at, "..data").unwrap();
        symlinkat("..data/v", at, "v").unwrap();
        symlinkat("..data/key", at, "key").unwrap();
        let payload = open(at, Path::new(ts));
        let inside = Some(payload.as_raw_fd());
        mkdirat(inside, "v", Mode::from_bits_truncate(0o755)).unwrap();
        fs::write(format!("/proc/self/fd/{}/key", payload.as_raw_fd()), "k").unwrap();
        level = open(inside, Path::new("v"));
    }
}

#[test]
fn budget_a_5000_deep_chain_of_nested_volumes() {
    let env = TestEnv::new();
    let top = env.path("chain");
    // On its own tmpfs: dropped by an unmount, not a walk 5,000 deep.
    let _fs = Tmpfs::mount(&top, "64m");
    nested_volume_chain(&top, 5000);
    let took = refused(&env, &top, &[], "max-depth (32)");
    assert!(took < REFUSED_WITHIN, "took {took:?}");
    // A deeper budget walks deeper, and still nothing recurses.
    let took = refused(&env, &top, &["--max-depth", "100"], "max-depth (100)");
    assert!(took < REFUSED_WITHIN, "took {took:?}");
    tally(
        "budget: 5,000 nested kubelet volumes (max-depth)",
        8,
        0,
        0,
        "refused, no stack overflow: cannot determine",
    );
}

#[test]
fn budget_100000_empty_directories() {
    let env = TestEnv::new();
    let top = env.path("dirs");
    let _fs = Tmpfs::mount(&top, "64m");
    for i in 0..100_000 {
        fs::create_dir(top.join(format!("{i:06}"))).unwrap();
    }
    let took = refused(&env, &top, &[], "max-entries (20000)");
    assert!(took < REFUSED_WITHIN, "took {took:?}");
    tally(
        "budget: 100,000 empty directories (max-entries)",
        4,
        0,
        0,
        "refused within the deadline: cannot determine",
    );
}

/// Issue 13.8: 18,400 files with ~1 KB paths made `init` write a 41 MB
/// state the next probe refused as too large (and then every probe
/// rewrote it). With budgets raised for such a tree, the loader's limit
/// grows with them: the probe reads back what init wrote, and an
/// unchanged tree is not written again.
#[test]
fn budget_a_state_larger_than_32_mib_is_read_back() {
    let env = TestEnv::new();
    let top = env.path("long");
    let _fs = Tmpfs::mount(&top, "256m");
    let mut dir = top.clone();
    for c in ["a", "b", "c", "d"] {
        dir = dir.join(c.repeat(240));
    }
    fs::create_dir_all(&dir).unwrap();
    for i in 0..18_400 {
        fs::write(dir.join(format!("key-{i:05}.conf")), "v").unwrap();
    }
    // Old enough for the stat cache (younger files are hashed again).
    std::thread::sleep(Duration::from_millis(1100));
    let budgets = [
        ("DRIFTPROBE_MAX_NAME_BYTES", "32MiB"),
        ("DRIFTPROBE_DEADLINE", "20s"),
    ];
    let go = |sub: &str| {
        let mut cmd = env.cmd(sub);
        cmd.envs(budgets);
        if sub != "init" {
            cmd.args(["--grace", "0s"]);
        }
        let out = run(cmd.arg(&top));
        out.no_panic();
        out
    };
    let init = go("init");
    assert_eq!(init.code, 0, "{init}");
    let state = env.state_file();
    let size = fs::metadata(&state).unwrap().len();
    assert!(size > 32 << 20, "the state is only {size} bytes");
    let first = go("liveness");
    first.ok();
    assert!(!first.stderr.contains("too large"), "{first}");
    let written = fs::metadata(&state).unwrap().modified().unwrap();
    for _ in 0..2 {
        let out = go("readiness");
        out.ok();
        assert!(out.stderr.is_empty(), "{out}");
    }
    assert_eq!(
        fs::metadata(&state).unwrap().modified().unwrap(),
        written,
        "an unchanged tree rewrote the state"
    );
    tally(
        "budget: a 40 MB state (18,400 files, 1 KB paths) read back",
        4,
        0,
        0,
        "state limit sized from the budgets; unchanged tree: no write",
    );
}
