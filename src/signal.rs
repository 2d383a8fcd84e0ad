//! Signalling the app to reload: parsing `--signal`, reading how the
//! target handles it (`/proc/PID/status`), refusing a signal it has no
//! handler for, delivering it, and checking that the target survived it.
//! Which process is the target is [`crate::proc`]'s job; when to signal,
//! the probe's.

use crate::proc::comm;
use crate::proc::Proc;
use crate::smallfile;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Parses `HUP`, `SIGHUP`, `hup` or `1`.
pub fn parse_signal(name: &str) -> Result<Signal, String> {
    let trimmed = name.trim();
    if let Ok(n) = trimmed.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| format!("--signal {name:?}: no such signal number"));
    }
    let upper = trimmed.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full)
        .map_err(|_| format!("--signal {name:?}: unknown signal (try HUP, USR1, USR2, TERM)"))
}

/// What a process does with a signal, from its `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A handler is installed (`SigCgt`): the app can reload on it.
    Caught,
    /// Ignored (`SigIgn`): delivered, and nothing happens.
    Ignored,
    /// The default action: PID 1 of a namespace drops it, anyone else
    /// usually dies of it.
    Default,
}

/// How `pid` handles `sig`; `None` when unknown (the signal is sent anyway).
pub fn disposition(proc_root: &Path, pid: i32, sig: Signal) -> Option<Disposition> {
    let status =
        smallfile::read_to_string(&proc_root.join(format!("{pid}/status")), smallfile::SMALL)
            .ok()?;
    let has = |field: &str| -> Option<bool> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        let mask = u64::from_str_radix(line[field.len()..].trim(), 16).ok()?;
        Some(mask & (1u64 << ((sig as i32) - 1)) != 0)
    };
    Some(if has("SigCgt:")? {
        Disposition::Caught
    } else if has("SigIgn:")? {
        Disposition::Ignored
    } else {
        Disposition::Default
    })
}

/// Sends `sig` to `pid`, refusing unless the process has a handler for it
/// ([`may_signal`], then [`deliver`]).
pub fn send(proc_root: &Path, pid: i32, sig: Signal) -> Result<(), String> {
    may_signal(proc_root, pid, sig)?;
    deliver(pid, sig, &comm(proc_root, pid))
}

/// Refuses to signal a process that has no handler for `sig`: PID 1 of a
/// namespace would silently drop it (the kernel's rule; `kill` still
/// returns 0), a process that ignores it would do nothing, and any other
/// process would be killed by most signals. Either way "reloaded" would be
/// a lie.
pub fn may_signal(proc_root: &Path, pid: i32, sig: Signal) -> Result<(), String> {
    let name = comm(proc_root, pid);
    match disposition(proc_root, pid, sig) {
        Some(Disposition::Ignored) => {
            Err(format!(
                "pid {pid} ({name}) ignores {sig}, so it cannot reload on it"
            ))
        }
        Some(Disposition::Default) if pid == 1 => {
            Err(format!(
                "pid 1 ({name}) has no handler for {sig}, and the kernel drops unhandled signals sent to PID 1"
            ))
        }
        Some(Disposition::Default) => {
            Err(format!(
                "pid {pid} ({name}) has no handler for {sig}: it would not reload, and most signals would kill it"
            ))
        }
        Some(Disposition::Caught) | None => Ok(()),
    }
}

/// `kill(2)`: nothing else, so that a probe records what it is about to
/// do right before and what it did right after. `name` is the target's
/// `comm`, for messages.
pub fn deliver(pid: i32, sig: Signal, name: &str) -> Result<(), String> {
    kill(Pid::from_raw(pid), sig).map_err(|e| match e {
        nix::errno::Errno::ESRCH => format!("no process {pid}"),
        nix::errno::Errno::EPERM => format!(
            "not permitted to signal pid {pid} ({name}): the probe runs as another user or lacks CAP_KILL"
        ),
        other => format!("cannot signal pid {pid} ({name}): {}", other.desc()),
    })
}

/// How long after a signal its target must still be running for the
/// reload to count: a Go program without `signal.Notify` exits within
/// microseconds, a JVM's shutdown with trivial hooks within tens of ms.
pub const SURVIVAL: Duration = Duration::from_millis(150);

/// Is `pid` (started at `start_ticks`) still running, and not a zombie,
/// for all of `within` after a signal? Polled every 10ms; `false` as soon
/// as it is gone. A /proc that cannot be read counts as running: this
/// check only adds to what was known before it.
pub fn survives(proc: &Proc, pid: i32, start_ticks: u64, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        if proc.running(pid, start_ticks) == Some(false) {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(10)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("HUP"), Ok(Signal::SIGHUP));
        assert_eq!(parse_signal("sigusr1"), Ok(Signal::SIGUSR1));
        assert_eq!(parse_signal("15"), Ok(Signal::SIGTERM));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn handler_detection_reads_sigcgt_and_sigign() {
        // This test process does not catch SIGUSR2; Rust ignores SIGPIPE.
        let me = std::process::id() as i32;
        let proc_root = Path::new("/proc");
        assert_eq!(
            disposition(proc_root, me, Signal::SIGUSR2),
            Some(Disposition::Default)
        );
        assert_eq!(
            disposition(proc_root, me, Signal::SIGPIPE),
            Some(Disposition::Ignored)
        );
        assert_eq!(disposition(proc_root, i32::MAX, Signal::SIGUSR2), None);
        let err = send(proc_root, me, Signal::SIGPIPE).unwrap_err();
        assert!(err.contains("ignores SIGPIPE"), "{err}");
    }

    #[test]
    fn survival_is_checked_by_pid_start_time_and_zombie_state() {
        let proc = Proc::default();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = proc.start_ticks(pid).unwrap();
        assert!(survives(&proc, pid, start, Duration::from_millis(30)));
        // Another start time: another process under the same pid.
        assert!(!survives(&proc, pid, start + 1, Duration::from_millis(30)));
        // Killed and not reaped: a zombie, not a survivor; seen at once.
        child.kill().unwrap();
        let t = Instant::now();
        assert!(!survives(&proc, pid, start, Duration::from_secs(5)));
        assert!(t.elapsed() < Duration::from_secs(1));
        let _ = child.wait();
        assert!(!survives(&proc, pid, start, Duration::from_millis(30)));
    }
}
