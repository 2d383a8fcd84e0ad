//! Test support: a kubelet-faithful ConfigMap/Secret volume writer and helpers
//! that run the real `driftprobe` binary with a pinned, clean environment.
//!
//! [`ConfigMapVolume`] (in `volume.rs`, std only, so that
//! examples/walkthrough.rs can include it too) replays, step by step, what the
//! kubelet's `pkg/volume/util/atomic_writer.go` (v1.28+) does to a mounted
//! volume: `..data_tmp` renamed over `..data`, symlink fix-up, removal of the
//! old dir, no write at all when the payload is unchanged.
//!
//! [`TestEnv`] owns a temp dir with one such volume and a per-test state dir,
//! and runs the binary as [`Out`] (exit code + stdout + stderr). [`Ns`]
//! runs it in new namespaces via `unshare`: [`Ns::pid`] gives the probe a
//! fresh PID 1 (a "restarted container"). Its own tests are in
//! tests/support_selftest.rs, so that they run once.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;

/// Path of the binary cargo built for this test target. The helpers below
/// run [`program`] instead, which is this binary unless the environment
/// names another one.
pub const BIN: &str = env!("CARGO_BIN_EXE_driftprobe");

/// Upper bound for any single run of the binary: a hang (e.g. opening a FIFO)
/// becomes a test failure instead of a stuck test suite.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);

mod volume;
pub use volume::*;

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// What the helpers execute as "driftprobe": [`BIN`], or
/// `DRIFTPROBE_TEST_BIN` (another build, e.g. the static arm64 one), run
/// through `DRIFTPROBE_TEST_RUNNER` when that is set (e.g. `qemu-aarch64`:
/// words split on whitespace). A runner is baked into a one-line `sh`
/// wrapper so that every way of starting the binary (`setpriv`, `nsenter`,
/// `"$BIN"` in a script) gets it, and the probe keeps the wrapper's PID
/// (`exec`).
pub fn program() -> &'static str {
    static PROGRAM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PROGRAM.get_or_init(|| {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let bin = var("DRIFTPROBE_TEST_BIN").unwrap_or_else(|| BIN.to_string());
        let Some(runner) = var("DRIFTPROBE_TEST_RUNNER") else {
            return bin;
        };
        let bin = fs::canonicalize(&bin)
            .unwrap_or_else(|e| panic!("DRIFTPROBE_TEST_BIN={bin}: {e}"))
            .to_str()
            .expect("a UTF-8 binary path")
            .to_string();
        let quote = |w: &str| format!("'{}'", w.replace('\'', r"'\''"));
        let words: Vec<String> = runner.split_whitespace().map(quote).collect();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("driftprobe-runner.{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create the runner wrapper's dir");
        let wrapper = dir.join("driftprobe");
        let script = format!(
            "#!/bin/sh\nexec {} {} \"$@\"\n",
            words.join(" "),
            quote(&bin)
        );
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        write_executable(&wrapper, script.as_bytes());
        wrapper.to_str().expect("a UTF-8 target dir").to_string()
    })
}

/// Writes `bytes` to `path` as a mode 0755 executable, through a child `sh`
/// fed by a pipe. Not with `fs::write` from here: the test process is
/// multi-threaded, and a child that another test forks while this process
/// holds the file open for writing inherits that descriptor until it execs,
/// so executing the file in that window fails with ETXTBSY ("Text file
/// busy"). The child's descriptor is never shared.
pub fn write_executable(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut child = std::process::Command::new("sh")
        .args(["-c", "umask 022 && cat >\"$1\" && chmod 0755 \"$1\"", "sh"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sh to write an executable");
    let mut stdin = child.stdin.take().expect("a piped stdin");
    stdin
        .write_all(bytes)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    drop(stdin);
    let status = child.wait().expect("wait for sh");
    assert!(
        status.success(),
        "writing {} failed: {status}",
        path.display()
    );
}

/// The built binary with a clean environment (only PATH kept), stdin closed
/// and a timeout.
pub fn driftprobe() -> Command {
    let mut cmd = Command::new(program());
    clean_env(&mut cmd);
    cmd
}

/// Only PATH, and `DRIFTPROBE_FORCE=true`: these tests run `init` in the
/// host's PID namespace, whose PID 1 is older than every file they write,
/// so `init`'s proof (files unchanged since the entrypoint started) would
/// never hold. Tests of the proof remove it (`env_remove`).
pub fn clean_env(cmd: &mut Command) {
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("DRIFTPROBE_FORCE", "true");
    // The debug binary on a machine shared by parallel tests must not turn
    // a walk into "budget: deadline (500ms) exceeded"; tests of the
    // deadline pass --deadline, which beats the variable.
    cmd.env("DRIFTPROBE_DEADLINE", "20s");
    cmd.timeout(RUN_TIMEOUT);
}

/// The built binary run as another user (`setpriv`, no supplementary
/// groups), clean env, timeout: append the subcommand and its arguments.
pub fn as_uid(uid: u32) -> Command {
    let mut cmd = Command::new("setpriv");
    clean_env(&mut cmd);
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "--", program()]);
    cmd
}

/// `sh -c script` in a private mount namespace (`unshare --mount`), so that
/// what it mounts or plants (a `/tmp/driftprobe` of another user, say) is
/// gone afterwards; the script finds the binary in `$BIN`.
pub fn sh_in_private_mounts(script: &str) -> Out {
    let mut cmd = Command::new("unshare");
    clean_env(&mut cmd);
    cmd.env("BIN", program())
        .args(["--mount", "--propagation", "private", "sh", "-c", script]);
    run(&mut cmd)
}

/// An end-to-end test whose tool or daemon is missing: it skips, saying
/// why, unless `DRIFTPROBE_REQUIRE_E2E=1` (set by .ci/run), which makes the
/// skip a failure.
pub fn skip_e2e(test: &str, reason: &str) {
    if std::env::var("DRIFTPROBE_REQUIRE_E2E").is_ok_and(|v| v == "1") {
        panic!("{test} required (DRIFTPROBE_REQUIRE_E2E=1) but {reason}");
    }
    eprintln!("SKIPPED {test}: {reason} (set DRIFTPROBE_REQUIRE_E2E=1 to make this a failure)");
}

/// Result of one run of the binary.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit code; -1 when killed by a signal (also: by the run timeout).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn from_output(o: std::process::Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// The single stdout line (panics unless stdout is exactly one line).
    pub fn line(&self) -> &str {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "expected exactly one stdout line: {self}");
        lines[0]
    }

    /// Assert exit code and that the single stdout line starts with `prefix`.
    #[track_caller]
    pub fn expect(&self, code: i32, prefix: &str) -> &Self {
        self.no_panic();
        assert_eq!(self.code, code, "exit code: {self}");
        assert!(
            self.line().starts_with(prefix),
            "stdout should start with {prefix:?}: {self}"
        );
        self
    }

    /// Assert the run exited 0 with an `ok:` line.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect(0, "ok:")
    }

    /// Assert `drift:` with exit 1 (past grace).
    #[track_caller]
    pub fn drift(&self) -> &Self {
        self.expect(1, "drift:")
    }

    /// Assert stdout contains `needle`.
    #[track_caller]
    pub fn contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout should contain {needle:?}: {self}"
        );
        self
    }

    /// Assert neither stdout nor stderr contains `needle`.
    #[track_caller]
    pub fn lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle) && !self.stderr.contains(needle),
            "output should not contain {needle:?}: {self}"
        );
        self
    }

    /// Assert the binary did not panic (no Rust panic message on stderr,
    /// and not killed by a signal such as SIGABRT from panic=abort).
    #[track_caller]
    pub fn no_panic(&self) -> &Self {
        assert!(!self.stderr.contains("panicked"), "binary panicked: {self}");
        assert!(
            self.code >= 0,
            "binary was killed by a signal or timed out: {self}"
        );
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n  exit: {}\n  stdout: {:?}\n  stderr: {:?}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run a prepared command and collect its result.
pub fn run(cmd: &mut Command) -> Out {
    Out::from_output(cmd.output().expect("spawn driftprobe"))
}

/// A temp dir holding a ConfigMap volume (`config/`) and a state dir path
/// (`state/`, not created: the binary must create it).
pub struct TestEnv {
    /// Mounts made for this test (dropped, so unmounted, first).
    pub mounts: Vec<Unmount>,
    pub tmp: tempfile::TempDir,
    pub vol: ConfigMapVolume,
    pub state_dir: PathBuf,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("driftprobe-test.")
            .tempdir()
            .expect("tempdir");
        let vol = ConfigMapVolume::new(tmp.path().join("config"));
        let state_dir = tmp.path().join("state");
        TestEnv {
            mounts: Vec::new(),
            tmp,
            vol,
            state_dir,
        }
    }

    /// A new empty path inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Another ConfigMap volume inside the temp dir.
    pub fn volume(&self, name: &str) -> ConfigMapVolume {
        ConfigMapVolume::new(self.path(name))
    }

    /// `driftprobe SUB [--state-dir STATE]` (the flag only for stateful subcommands),
    /// with DRIFTPROBE_STATE_DIR pinned to the same dir as a safety net so no
    /// test ever touches the default /tmp/driftprobe.
    pub fn cmd(&self, sub: &str) -> Command {
        let mut cmd = driftprobe();
        cmd.env("DRIFTPROBE_STATE_DIR", &self.state_dir);
        cmd.arg(sub);
        if matches!(sub, "init" | "run" | "liveness" | "readiness" | "status") {
            cmd.arg("--state-dir").arg(&self.state_dir);
        }
        cmd
    }

    /// `driftprobe SUB [--state-dir STATE] ARGS...`
    pub fn run<S: AsRef<OsStr>>(&self, sub: &str, args: &[S]) -> Out {
        let mut cmd = self.cmd(sub);
        cmd.args(args);
        run(&mut cmd)
    }

    /// `driftprobe SUB [--state-dir STATE] OPTS... <volume dir>`
    pub fn on_vol(&self, sub: &str, opts: &[&str]) -> Out {
        let mut cmd = self.cmd(sub);
        cmd.args(opts).arg(self.vol.path());
        run(&mut cmd)
    }

    /// `WRAPPER... SUB --state-dir STATE OPTS... <volume dir>`: the binary
    /// run through another program (`nsenter … BIN`, `setpriv … BIN`);
    /// `wrapper` ends with the binary. Clean env, timeout.
    pub fn on_vol_via<S: AsRef<OsStr>>(&self, wrapper: &[S], sub: &str, opts: &[&str]) -> Out {
        let (program, args) = wrapper.split_first().expect("a wrapper program");
        let mut cmd = Command::new(program);
        clean_env(&mut cmd);
        cmd.env("DRIFTPROBE_STATE_DIR", &self.state_dir)
            .args(args)
            .arg(sub)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(opts)
            .arg(self.vol.path());
        run(&mut cmd)
    }

    /// `init` on the volume; asserts success.
    pub fn init(&self) -> Out {
        let out = self.on_vol("init", &[]);
        out.no_panic();
        assert_eq!(out.code, 0, "init failed: {out}");
        out
    }

    /// `liveness --grace G` on the volume.
    pub fn liveness(&self, grace: &str) -> Out {
        self.on_vol("liveness", &["--grace", grace])
    }

    /// `readiness --grace G` on the volume.
    pub fn readiness(&self, grace: &str) -> Out {
        self.on_vol("readiness", &["--grace", grace])
    }

    /// `digest PATH...` → the 64-hex digest (asserts success and format).
    pub fn digest_of<P: AsRef<OsStr>>(&self, paths: &[P]) -> String {
        let out = self.run("digest", paths);
        digest_line(&out)
    }

    /// Digest of this env's volume.
    pub fn digest(&self) -> String {
        self.digest_of(&[self.vol.path()])
    }

    /// The single `*.json` file in the state dir (searched recursively).
    pub fn state_file(&self) -> PathBuf {
        let files = json_files(&self.state_dir);
        assert_eq!(
            files.len(),
            1,
            "expected exactly one *.json in state dir, found {files:?}"
        );
        files.into_iter().next().expect("one file")
    }
}

/// Asserts `out` is a successful `digest` run and returns the hex digest.
#[track_caller]
pub fn digest_line(out: &Out) -> String {
    out.no_panic();
    assert_eq!(out.code, 0, "digest failed: {out}");
    let line = out.line().trim().to_string();
    assert!(
        line.len() == 64
            && line
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "digest must be 64 lowercase hex chars: {out}"
    );
    line
}

/// All regular `*.json` files under `dir`, recursively.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&p, out),
                Ok(t) if t.is_file() && p.extension() == Some(OsStr::new("json")) => out.push(p),
                _ => {}
            }
        }
    }
    walk(dir, &mut out);
    out.sort();
    out
}

/// Every byte of every regular file under `dir`, recursively (for "secret
/// never stored" checks).
pub fn all_bytes_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&p, out),
                Ok(t) if t.is_file() => {
                    if let Ok(b) = fs::read(&p) {
                        out.push((p, b));
                    }
                }
                _ => {}
            }
        }
    }
    walk(dir, &mut out);
    out
}

/// `haystack` contains `needle` as a byte substring.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------
// A fresh PID namespace = a restarted container
// ---------------------------------------------------------------------------

/// `unshare FLAGS --fork --kill-child ARGV...`: a namespace whose first
/// process runs ARGV. `init_pid` is that process's host PID (PID 1 when
/// `--pid` is among the flags). Probes run inside with `nsenter`.
pub struct Ns {
    unshare: std::process::Child,
    pub init_pid: u32,
    nsenter_flags: Vec<&'static str>,
}

impl Ns {
    /// Starts the namespace and waits until its first process has exec'd
    /// `comm` (so /proc is remounted and the program is running).
    pub fn start(flags: &[&'static str], argv: &[&str], comm: &str) -> Ns {
        Ns::start_with_stdout(flags, argv, comm, Stdio::null())
    }

    /// Like [`Ns::start`], with the first process's stdout on `stdout`
    /// (the container's log, as the runtime gives it a pipe or a file).
    pub fn start_with_stdout(
        flags: &[&'static str],
        argv: &[&str],
        comm: &str,
        stdout: Stdio,
    ) -> Ns {
        let mut unshare = std::process::Command::new("unshare")
            .args(flags)
            .args(["--fork", "--kill-child"])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let pid = unshare.id();
        let children = format!("/proc/{pid}/task/{pid}/children");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let init_pid = loop {
            if let Some(status) = unshare.try_wait().expect("try_wait unshare") {
                let mut err = String::new();
                if let Some(mut e) = unshare.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("unshare {flags:?} {argv:?} failed ({status}): {err} (needs root)");
            }
            let kids = fs::read_to_string(&children).unwrap_or_default();
            if let Some(child) = kids.split_whitespace().next() {
                let child: u32 = child.parse().expect("child pid");
                let c = fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                if c.trim() == comm {
                    break child;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "namespace did not come up"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut nsenter_flags = Vec::new();
        for (u, n) in [
            ("--pid", "--pid"),
            ("--mount", "--mount"),
            ("--mount-proc", "--mount"),
            ("--uts", "--uts"),
        ] {
            if flags.contains(&u) && !nsenter_flags.contains(&n) {
                nsenter_flags.push(n);
            }
        }
        Ns {
            unshare,
            init_pid,
            nsenter_flags,
        }
    }

    /// `nsenter --target INIT <ns flags> -- driftprobe`, clean env (with
    /// `DRIFTPROBE_FORCE`, see `clean_env`), timeout.
    pub fn driftprobe(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new("nsenter");
        clean_env(&mut cmd);
        cmd.arg("--target")
            .arg(self.init_pid.to_string())
            .args(&self.nsenter_flags)
            .arg("--")
            .arg(program());
        cmd
    }

    /// `driftprobe SUB --state-dir STATE ARGS...` inside the namespace.
    pub fn run<S: AsRef<OsStr>>(&self, env: &TestEnv, sub: &str, args: &[S]) -> Out {
        let mut cmd = self.driftprobe();
        cmd.env("DRIFTPROBE_STATE_DIR", &env.state_dir)
            .arg(sub)
            .arg("--state-dir")
            .arg(&env.state_dir)
            .args(args);
        run(&mut cmd)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        // The unshare process this test started; --kill-child takes its child.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

impl Ns {
    /// `unshare --pid --fork --mount-proc --kill-child sleep 600`: a PID
    /// namespace whose PID 1 (the `sleep`) started now. Probes run inside it
    /// via `nsenter --target <sleep> --pid --mount`, so they see the new PID
    /// 1's start time in /proc/1/stat, like a probe exec in a restarted
    /// container. Everything else (files, boot id, state dir) is shared
    /// with the host.
    pub fn pid() -> Ns {
        Ns::start(&["--pid", "--mount-proc"], &["sleep", "600"], "sleep")
    }

    /// Like [`TestEnv::on_vol`], inside the namespace.
    pub fn on_vol(&self, env: &TestEnv, sub: &str, opts: &[&str]) -> Out {
        let target = self.init_pid.to_string();
        let mut wrapper = vec!["nsenter", "--target", &target];
        wrapper.extend(&self.nsenter_flags);
        wrapper.extend(["--", program()]);
        env.on_vol_via(&wrapper, sub, opts)
    }

    /// Like [`Ns::on_vol`] with `paths` instead of the volume, and without
    /// `DRIFTPROBE_FORCE`: `init` has to prove the files unchanged.
    pub fn proving(&self, env: &TestEnv, sub: &str, opts: &[&str], paths: &[&Path]) -> Out {
        let mut cmd = self.driftprobe();
        cmd.env_remove("DRIFTPROBE_FORCE")
            .env("DRIFTPROBE_STATE_DIR", &env.state_dir)
            .arg(sub)
            .arg("--state-dir")
            .arg(&env.state_dir)
            .args(opts)
            .args(paths);
        run(&mut cmd)
    }

    /// `/proc/1/stat` as seen inside the namespace.
    pub fn proc1_stat(&self) -> String {
        let out = std::process::Command::new("nsenter")
            .arg("--target")
            .arg(self.init_pid.to_string())
            .args(&self.nsenter_flags)
            .args(["--", "cat", "/proc/1/stat"])
            .output()
            .expect("nsenter cat");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

// ---------------------------------------------------------------------------
// The kubelets the lazy-baseline proof must hold under
// ---------------------------------------------------------------------------

/// One kubelet behaviour towards a pod's volumes.
#[derive(Debug, Clone, Copy)]
pub struct Kubelet {
    pub name: &'static str,
    pub fs_group: FsGroup,
}

/// Every test of the lazy-baseline proof runs under each of these.
pub const KUBELETS: [Kubelet; 3] = [
    Kubelet {
        name: "no fsGroup",
        fs_group: FsGroup::Off,
    },
    Kubelet {
        name: "fsGroup, ownership pass at every sync (v1.20)",
        fs_group: FsGroup::EverySync,
    },
    Kubelet {
        name: "fsGroup, ownership set in the atomic writer (v1.35)",
        fs_group: FsGroup::InWriter,
    },
];

impl TestEnv {
    /// A [`TestEnv`] whose volume the kubelet `k` writes and syncs.
    pub fn under(k: Kubelet) -> TestEnv {
        let mut env = TestEnv::new();
        env.vol.fs_group = k.fs_group;
        env
    }

    /// Like [`TestEnv::under`], the volume being a Secret's (or a projected
    /// one's): a tmpfs whose root has mode 1777, as the kubelet mounts
    /// them. Mounted in the host's mount namespace, unmounted on drop.
    pub fn secret_under(k: Kubelet) -> TestEnv {
        let mut env = TestEnv::under(k);
        let dir = env.vol.path().to_path_buf();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=1777,size=4m", "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(
            ok.success(),
            "mount tmpfs on {} (needs root)",
            dir.display()
        );
        env.mounts.push(Unmount(dir));
        env
    }

    /// The kubelet's pod syncs since the container started: past the next
    /// whole second (so what a sync moves is newer than a container
    /// started before this call), two syncs.
    pub fn settle_syncs(&self) {
        sleep_past_second();
        self.vol.sync();
        std::thread::sleep(Duration::from_millis(20));
        self.vol.sync();
    }

    /// A container that started now and sees the volume the way a pod
    /// does: read-only (a bind mount remounted `ro` in its own mount
    /// namespace; the kubelet keeps writing through the original path),
    /// with `subpaths` (file, key) bind-mounted read-only from the current
    /// payload dir like subPath mounts. Probes run inside via
    /// [`Ns::on_vol`] / [`Ns::run`].
    pub fn container(&self, subpaths: &[(&Path, &str)]) -> Ns {
        let vol = self.vol.path().display().to_string();
        let mut script =
            format!("mount --bind '{vol}' '{vol}' && mount -o remount,bind,ro '{vol}' '{vol}'");
        let target = self
            .vol
            .data_target()
            .expect("volume written before the container starts");
        for (file, key) in subpaths {
            if !file.exists() {
                fs::write(file, "").expect("subPath mount point");
            }
            let src = format!("{vol}/{target}/{key}");
            let dst = file.display();
            script.push_str(&format!(
                " && mount --bind '{src}' '{dst}' && mount -o remount,bind,ro '{dst}'"
            ));
        }
        script.push_str(" && exec sleep 600");
        Ns::start(&["--pid", "--mount-proc"], &["sh", "-c", &script], "sleep")
    }
}

/// A mount point, unmounted (lazily) on drop.
pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Sleep past the next whole second boundary plus a margin: ctimes and
/// `btime + starttime` are compared at whole-second precision.
pub fn sleep_past_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// Raw OS string from bytes (for non-UTF-8 names).
pub fn os(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(bytes).to_os_string()
}
