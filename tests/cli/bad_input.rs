//! Hostile trees: FIFOs and sockets (never opened), symlink loops, dangling
//! links, non-UTF-8 names, a 1 GiB sparse file (constant memory).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

fn json(out: &Out) -> serde_json::Value {
    out.no_panic();
    assert_eq!(out.code, 0, "digest --json: {out}");
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("invalid JSON ({e}): {out}"))
}

fn paths_in(v: &serde_json::Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} array: {v}"))
        .iter()
        .map(|f| f["path"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A plain (non-kubelet) dir with one regular file.
fn plain_dir(env: &TestEnv) -> std::path::PathBuf {
    let dir = env.path("plain");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("real.conf"), "real").unwrap();
    dir
}

fn probe(env: &TestEnv, dir: &Path, sub: &str, grace: &str) -> Out {
    run(env.cmd(sub).args(["--grace", grace]).arg(dir))
}

fn init(env: &TestEnv, dir: &Path) {
    let out = run(env.cmd("init").arg(dir));
    out.no_panic();
    assert_eq!(out.code, 0, "init: {out}");
}

#[test]
fn fifo_and_socket_are_skipped_without_hanging() {
    let env = TestEnv::new();
    let dir = plain_dir(&env);
    let st = std::process::Command::new("mkfifo")
        .arg(dir.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success(), "mkfifo");
    let _sock = std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();

    let t = Instant::now();
    let d = env.digest_of(&[&dir]);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "digest took {:?}",
        t.elapsed()
    );
    let v = json(&run(env.cmd("digest").arg("--json").arg(&dir)));
    assert_eq!(v["digest"].as_str(), Some(d.as_str()));
    let files = paths_in(&v, "files");
    assert_eq!(files.len(), 1, "only real.conf is hashed: {v}");
    assert!(files[0].ends_with("real.conf"), "{v}");
    let skipped = paths_in(&v, "skipped");
    assert!(
        skipped.iter().any(|p| p.ends_with("pipe")),
        "FIFO reported as skipped: {v}"
    );
    assert!(
        skipped.iter().any(|p| p.ends_with("sock")),
        "socket reported as skipped: {v}"
    );

    init(&env, &dir);
    probe(&env, &dir, "liveness", "0").ok();
    fs::write(dir.join("real.conf"), "changed").unwrap();
    probe(&env, &dir, "liveness", "0")
        .drift()
        .contains("1 changed");
}

#[test]
fn symlink_loops_terminate() {
    let env = TestEnv::new();
    let dir = plain_dir(&env);
    symlink("self", dir.join("self")).unwrap();
    symlink("b", dir.join("a")).unwrap();
    symlink("a", dir.join("b")).unwrap();
    fs::create_dir(dir.join("sub")).unwrap();
    fs::write(dir.join("sub/file"), "f").unwrap();
    symlink("..", dir.join("sub/up")).unwrap();
    symlink(".", dir.join("sub/here")).unwrap();

    let t = Instant::now();
    let d1 = env.digest_of(&[&dir]);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "digest took {:?}",
        t.elapsed()
    );
    assert_eq!(env.digest_of(&[&dir]), d1, "stable");
    let v = json(&run(env.cmd("digest").arg("--json").arg(&dir)));
    let files = paths_in(&v, "files");
    assert!(
        files.len() <= 8,
        "loops must not be walked repeatedly: {files:?}"
    );
    assert!(files.iter().any(|p| p.ends_with("real.conf")), "{v}");
    assert!(files.iter().any(|p| p.ends_with("sub/file")), "{v}");

    init(&env, &dir);
    probe(&env, &dir, "liveness", "0").ok();
    fs::write(dir.join("sub/file"), "changed").unwrap();
    probe(&env, &dir, "liveness", "0").drift();
}

#[test]
fn dangling_symlink_does_not_break_probe() {
    let env = TestEnv::new();
    let dir = plain_dir(&env);
    symlink("..data/gone", dir.join("gone")).unwrap();
    let d1 = env.digest_of(&[&dir]);
    assert_eq!(env.digest_of(&[&dir]), d1);
    init(&env, &dir);
    probe(&env, &dir, "liveness", "0").ok();
    probe(&env, &dir, "readiness", "0").ok();
    fs::write(dir.join("real.conf"), "changed").unwrap();
    probe(&env, &dir, "liveness", "0")
        .drift()
        .contains("1 changed");
}

#[test]
fn non_utf8_file_names() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let dir = plain_dir(&env);
    let name = os(b"caf\xe9-\xff.conf");
    assert!(name.to_str().is_none());
    fs::write(dir.join(&name), "latin1").unwrap();
    let other = os(b"caf\xe9-\xfe.conf");
    fs::write(dir.join(&other), "latin1").unwrap();

    let d1 = env.digest_of(&[&dir]);
    let v = json(&run(env.cmd("digest").arg("--json").arg(&dir)));
    assert_eq!(
        paths_in(&v, "files").len(),
        3,
        "all three files hashed: {v}"
    );
    // Two distinct non-UTF-8 names must not collapse into one path.
    let mut p = paths_in(&v, "files");
    p.dedup();
    assert_eq!(p.len(), 3, "distinct names stay distinct: {v}");

    init(&env, &dir);
    probe(&env, &dir, "liveness", "0").ok();
    fs::write(dir.join(&name), "changed").unwrap();
    assert_ne!(env.digest_of(&[&dir]), d1);
    probe(&env, &dir, "liveness", "0")
        .drift()
        .contains("1 changed");
    let out = run(env.cmd("status").arg(&dir));
    out.no_panic();
    // Renaming to the other invalid name is a change of paths, not content.
    fs::write(dir.join(&name), "latin1").unwrap();
    fs::rename(dir.join(&name), dir.join(os(b"caf\xe9-\xfd.conf"))).unwrap();
    assert_ne!(env.digest_of(&[&dir]), d1);
    let _ = name.as_bytes();
}

/// sha256 of 1 GiB of zero bytes.
const SHA256_1GIB_ZEROS: &str = "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14";

/// The address-space limit the 1 GiB digest must fit in: a sixteenth of the
/// file. Not `ru_maxrss`: a child's peak RSS includes the RSS the parent
/// (this busy, multi-threaded test process) had when it was spawned.
const DIGEST_ADDRESS_SPACE: u64 = 64 << 20;

/// `digest --json` of `dir` with its address space limited to `limit`
/// bytes (RLIMIT_AS, set in the child before exec): the native binary,
/// since an emulator reserves more than that for itself.
fn digest_limited(dir: &Path, limit: u64) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_clear()
        .args(["digest", "--json"])
        // 1 GiB is past the default byte budget and deadline: raised.
        .args(["--max-bytes", "2GiB", "--deadline", "10m"])
        .arg(dir);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.output().expect("run digest")
}

#[test]
fn sparse_1gib_file_constant_memory() {
    let env = TestEnv::new();
    let dir = plain_dir(&env);
    let f = fs::File::create(dir.join("big.img")).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);

    let out = digest_limited(&dir, DIGEST_ADDRESS_SPACE);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "digest of 1 GiB in {} MiB of address space: {} {stdout} {}",
        DIGEST_ADDRESS_SPACE >> 20,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The control: the limit is real, a binary that cannot even map its
    // buffers under a tiny one fails.
    assert!(
        !digest_limited(&dir, 2 << 20).status.success(),
        "2 MiB of address space must not be enough, or the limit is not applied"
    );

    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let big = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap_or("").ends_with("big.img"))
        .unwrap_or_else(|| panic!("big.img in manifest: {v}"));
    assert_eq!(big["size"].as_u64(), Some(1 << 30));
    assert_eq!(big["sha256"].as_str(), Some(SHA256_1GIB_ZEROS));
}
