//! Helpers local to these tests: signal-handler checks, status JSON,
//! polling.

use crate::support::*;
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
        // "not reloaded: …" is the opposite.
        !out.stdout.lines().any(|l| l.starts_with("reloaded"))
            && !out.stdout.contains("; reloaded")
            && !out.stdout.contains("sent SIG"),
        "must not claim a reload: {out}"
    );
}
