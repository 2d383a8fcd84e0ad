//! Helpers local to these tests: namespaces running an arbitrary PID 1,
//! signal-handler checks, status JSON, polling.

use crate::support::*;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

/// `true` once `cond` holds, polling every 20 ms for at most `timeout`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Does `pid` catch `signo`, per `SigCgt` in /proc/PID/status?
pub fn catches(pid: u32, signo: i32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1u64 << (signo - 1)) != 0)
}

/// A shell loop that appends `got` to `file` on every SIGHUP: an "app"
/// with a reload handler.
pub fn hup_handler_script(file: &Path) -> String {
    format!(
        "trap 'echo got >> {}' HUP; while :; do sleep 0.1; done",
        file.display()
    )
}

/// How many SIGHUPs the handler script recorded.
pub fn hups(file: &Path) -> usize {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == "got")
        .count()
}

/// A host process this test started (killed and reaped on drop).
pub struct Proc(pub Child);

impl Proc {
    pub fn spawn(cmd: &mut StdCommand) -> Proc {
        Proc(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn helper process"),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `unshare FLAGS --fork --kill-child ARGV...`: a namespace whose first
/// process runs ARGV. `init_pid` is that process's host PID (PID 1 when
/// `--pid` is among the flags). Probes run inside with `nsenter`.
pub struct Ns {
    unshare: Child,
    pub init_pid: u32,
    nsenter_flags: Vec<&'static str>,
}

impl Ns {
    /// Starts the namespace and waits until its first process has exec'd
    /// `comm` (so /proc is remounted and the program is running).
    pub fn start(flags: &[&'static str], argv: &[&str], comm: &str) -> Ns {
        let mut unshare = StdCommand::new("unshare")
            .args(flags)
            .args(["--fork", "--kill-child"])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let pid = unshare.id();
        let children = format!("/proc/{pid}/task/{pid}/children");
        let deadline = Instant::now() + Duration::from_secs(10);
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
            assert!(Instant::now() < deadline, "namespace did not come up");
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

    /// `nsenter --target INIT <ns flags> -- driftprobe`, clean env, timeout.
    pub fn driftprobe(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new("nsenter");
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.timeout(RUN_TIMEOUT);
        cmd.arg("--target")
            .arg(self.init_pid.to_string())
            .args(&self.nsenter_flags)
            .arg("--")
            .arg(BIN);
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

/// Parses `status --json` output (any exit code; asserts no panic).
#[track_caller]
pub fn json(out: &Out) -> serde_json::Value {
    out.no_panic();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("status --json: {e}: {out}"))
}

/// Asserts that none of `secrets` appears in stdout or stderr.
#[track_caller]
pub fn no_values(out: &Out, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "the value {s:?} must never be printed: {out}"
        );
    }
}

/// Asserts the run did not pretend to reload.
#[track_caller]
pub fn not_reloaded(out: &Out) {
    assert!(
        !out.stdout.contains("reloaded") && !out.stdout.contains("sent SIG"),
        "must not claim a reload: {out}"
    );
}
