//! Running commands without a shell: the `--validate` command (once per
//! new digest, killed with its whole process group at its timeout, its
//! first lines of output kept), the runner behind it and `--exec`
//! ([`run_command`]), splitting a command line into words, finding a
//! program as `execvp` does, and the `exec` that `driftprobe run` ends in.

use crate::digest::plain_io;
use crate::proc::Proc;
use crate::state::Validation;
use crate::time;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, pipe2, Pid};
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most this much validator output is kept (first lines).
const VALIDATOR_LINES: usize = 5;
const VALIDATOR_CHARS: usize = 600;
/// Bytes of each validator output stream read into memory.
const VALIDATOR_KEEP: usize = 16 * 1024;

/// Kills what is left of a validator whose probe was killed (the kubelet's
/// probe timeout): its process group, if `pgid` still names it. A pid is
/// not reused while its process group lives, so the group is ours to kill
/// when its leader is gone or is the same process (same start time).
pub fn kill_stale_validator(proc: &Proc, pgid: i32, leader_start: u64) {
    if pgid <= 1 {
        return;
    }
    match proc.start_ticks(pgid) {
        Ok(ticks) if ticks != leader_start => {} // another process now
        _ => {
            let _ = kill(Pid::from_raw(-pgid), Signal::SIGKILL);
        }
    }
}

/// Finds `program` as `execvp` would: a path with a `/` as is, a bare name
/// in `PATH`. `None` if there is no executable file there.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Splits a command line: whitespace separates words; single quotes,
/// double quotes and backslashes work as in a shell. No shell is run.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    split_words("--validate", line)
}

/// [`split_command`] for the option `flag` (named in its errors).
pub fn split_words(flag: &str, line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err(format!("{flag} {line:?}: unclosed single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch) => word.push(ch),
                            None => return Err(format!("{flag} {line:?}: trailing backslash")),
                        },
                        Some(ch) => word.push(ch),
                        None => return Err(format!("{flag} {line:?}: unclosed double quote")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(ch) => {
                    in_word = true;
                    word.push(ch)
                }
                None => return Err(format!("{flag} {line:?}: trailing backslash")),
            },
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err(format!("{flag}: empty command"));
    }
    Ok(words)
}

/// Runs the validator once, killing it after `timeout`. Exit 0 = valid.
/// `started` learns the validator's pid (= its process group) as soon as it
/// runs, so that a probe killed meanwhile leaves a trace to clean up.
pub fn validate(argv: &[String], timeout: Duration, started: &mut dyn FnMut(i32)) -> Validation {
    // Stamped when the answer is in, so a slow validator's answer is not
    // born stale.
    // The validator answered "no": how (`outcome`, nothing it printed) and
    // its first lines (`output`, only for `status`).
    let invalid = |outcome: String, output: String| Validation {
        ok: false,
        at: time::now(),
        output,
        outcome,
        transient: false,
        command: argv.join(" "),
    };
    // No answer: the config is held, and asked about again later.
    let no_answer = |outcome: String, output: String| Validation {
        transient: true,
        ..invalid(outcome, output)
    };
    let Some(program) = argv.first() else {
        return invalid("empty validator command".into(), String::new());
    };
    let (ending, raw) = run_command(argv, timeout, started);
    let output = first_lines(&raw);
    match ending {
        Ending::CannotRun(why) => no_answer(
            format!("cannot run validator {program}: {why}"),
            String::new(),
        ),
        Ending::Broken(why) => no_answer(format!("validator {program}: {why}"), String::new()),
        Ending::TimedOut => no_answer(
            format!("timed out after {}", time::format_duration(timeout)),
            output,
        ),
        Ending::Exited(0) => Validation {
            ok: true,
            ..invalid("exit 0".into(), output)
        },
        Ending::Exited(c) => invalid(format!("exit {c}"), output),
        Ending::Signalled => invalid("killed by a signal".into(), output),
    }
}

/// How a command run by [`run_command`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signalled,
    /// Killed, with its process group, at the timeout.
    TimedOut,
    /// It could not be started: why.
    CannotRun(String),
    /// Starting or waiting for it failed otherwise (pipes, waitpid): why.
    Broken(String),
}

/// Runs `argv` (non-empty, searched in `PATH`) in its own process group,
/// stdin from /dev/null, killing the group after `timeout` and, once the
/// command ended, whatever it left running in the background. `started`
/// learns its pid as soon as it runs. Returns how it ended and the first
/// bytes of its stderr then stdout (at most `VALIDATOR_KEEP` of each).
pub fn run_command(
    argv: &[String],
    timeout: Duration,
    started: &mut dyn FnMut(i32),
) -> (Ending, Vec<u8>) {
    let broken = |e: Errno| (Ending::Broken(plain_io(&e.into())), Vec::new());
    if argv.is_empty() {
        return (Ending::CannotRun("empty command".into()), Vec::new());
    }
    // waitpid needs SIGCHLD at its default: an inherited SIG_IGN would
    // have the kernel reap the command and lose its exit status.
    // SAFETY: restoring the default disposition installs no handler.
    let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
    let (err_read, err_write) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return broken(e),
    };
    let (out_read, out_write) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return broken(e),
    };
    let pid = match spawn(argv, &out_write, &err_write) {
        Ok(pid) => pid,
        Err(e) => return (Ending::CannotRun(plain_io(&e)), Vec::new()),
    };
    // The command leads its own process group: a timeout kills all it
    // started, and nothing it left running in the background survives it.
    let group = Pid::from_raw(-pid.as_raw());
    started(pid.as_raw());
    // Only the child writes: keep no write end, or the pipes never end.
    drop((out_write, err_write));
    // Read both pipes while waiting, so a chatty command cannot block on
    // a full pipe. No threads: poll() from here.
    let mut out = Output {
        pipes: [Some(File::from(err_read)), Some(File::from(out_read))],
        kept: Default::default(),
    };
    let start = Instant::now();
    let status = loop {
        out.read_ready(PollTimeout::from(5u16));
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) if start.elapsed() >= timeout => {
                let _ = kill(group, Signal::SIGKILL);
                while waitpid(pid, None) == Err(Errno::EINTR) {}
                break None;
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => break Some(status),
            Err(e) => {
                let _ = kill(group, Signal::SIGKILL);
                return broken(e);
            }
        }
    };
    let _ = kill(group, Signal::SIGKILL);
    // Take what is still buffered, without waiting for any grandchild that
    // keeps the pipes open.
    for _ in 0..64 {
        if !out.read_ready(PollTimeout::ZERO) {
            break;
        }
    }
    let ending = match status {
        None => Ending::TimedOut,
        Some(WaitStatus::Exited(_, c)) => Ending::Exited(c),
        Some(_) => Ending::Signalled,
    };
    (ending, out.kept.concat())
}

/// Starts `argv` (searched in `PATH`) with stdin from /dev/null and
/// stdout/stderr on the given pipe ends, in the state std's `Command`
/// would leave it: SIGPIPE at its default, no signal blocked. Plain
/// `posix_spawnp`: std's process machinery would enlarge the static
/// binary.
fn spawn(argv: &[String], stdout: &OwnedFd, stderr: &OwnedFd) -> io::Result<Pid> {
    let args = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ptrs: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    ptrs.push(std::ptr::null_mut());
    let check = |rc: libc::c_int| match rc {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    };
    extern "C" {
        static environ: *const *mut libc::c_char;
    }
    // SAFETY: every pointer handed over is valid for the call (the argv
    // CStrings and `ptrs` outlive it, `ptrs` ends with NULL); the attr and
    // file actions are initialised before use and destroyed after.
    unsafe {
        let mut actions = std::mem::zeroed::<libc::posix_spawn_file_actions_t>();
        let mut attr = std::mem::zeroed::<libc::posix_spawnattr_t>();
        check(libc::posix_spawn_file_actions_init(&mut actions))?;
        if let Err(e) = check(libc::posix_spawnattr_init(&mut attr)) {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return Err(e);
        }
        let mut empty = std::mem::zeroed::<libc::sigset_t>();
        let mut pipe = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut empty);
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let mut pid: libc::pid_t = 0;
        let result = check(libc::posix_spawn_file_actions_addopen(
            &mut actions,
            0,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY,
            0,
        ))
        .and_then(|()| {
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions,
                stdout.as_raw_fd(),
                1,
            ))
        })
        .and_then(|()| {
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions,
                stderr.as_raw_fd(),
                2,
            ))
        })
        .and_then(|()| check(libc::posix_spawnattr_setsigmask(&mut attr, &empty)))
        .and_then(|()| check(libc::posix_spawnattr_setpgroup(&mut attr, 0)))
        .and_then(|()| check(libc::posix_spawnattr_setsigdefault(&mut attr, &pipe)))
        .and_then(|()| {
            check(libc::posix_spawnattr_setflags(
                &mut attr,
                (libc::POSIX_SPAWN_SETSIGMASK
                    | libc::POSIX_SPAWN_SETSIGDEF
                    | libc::POSIX_SPAWN_SETPGROUP) as libc::c_short,
            ))
        })
        .and_then(|()| {
            check(libc::posix_spawnp(
                &mut pid,
                ptrs[0],
                &actions,
                &attr,
                ptrs.as_ptr(),
                environ,
            ))
        });
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result.map(|()| Pid::from_raw(pid))
    }
}

/// Replaces this process with `program` (searched in `PATH`), resetting
/// SIGPIPE and the signal mask as std's `CommandExt::exec` does. Returns
/// only on failure.
pub fn exec(program: &OsStr, args: &[OsString]) -> io::Error {
    let cstring = |s: &OsStr| CString::new(s.as_bytes());
    let argv = match std::iter::once(program)
        .chain(args.iter().map(OsString::as_os_str))
        .map(cstring)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) => a,
        Err(e) => return e.into(),
    };
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: restoring the default disposition installs no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    match execvp(&argv[0], &argv) {
        Err(e) => e.into(),
        Ok(never) => match never {},
    }
}

/// The validator's stderr and stdout (in that order), each read until end
/// of file but kept only up to `VALIDATOR_KEEP` bytes.
struct Output {
    pipes: [Option<File>; 2],
    kept: [Vec<u8>; 2],
}

impl Output {
    /// Waits up to `wait` for output, then reads once from each pipe that
    /// is ready, closing it at end of file. Returns whether any was ready.
    fn read_ready(&mut self, wait: PollTimeout) -> bool {
        let mut fds: Vec<PollFd> = self
            .pipes
            .iter()
            .flatten()
            .map(|p| PollFd::new(p.as_fd(), PollFlags::POLLIN))
            .collect();
        // With no pipe left open this is just the wait.
        if poll(&mut fds, wait).unwrap_or(0) <= 0 {
            return false;
        }
        let mut ready = fds
            .iter()
            .map(|fd| fd.any().unwrap_or(true))
            .collect::<Vec<_>>()
            .into_iter();
        for (pipe, kept) in self.pipes.iter_mut().zip(&mut self.kept) {
            let Some(file) = pipe else { continue };
            if !ready.next().unwrap_or(false) {
                continue;
            }
            let mut buf = [0u8; 4096];
            match file.read(&mut buf) {
                Ok(0) => *pipe = None,
                Ok(n) => {
                    if kept.len() < VALIDATOR_KEEP {
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => *pipe = None,
            }
        }
        true
    }
}

/// The first few non-empty lines, each escaped (crate::escape, so bytes
/// that are not UTF-8 stay one-to-one), joined with " | ", capped in length.
fn first_lines(raw: &[u8]) -> String {
    let joined = raw
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty())
        .take(VALIDATOR_LINES)
        .map(crate::escape::bytes)
        .collect::<Vec<_>>()
        .join(" | ");
    if joined.chars().count() > VALIDATOR_CHARS {
        let cut: String = joined.chars().take(VALIDATOR_CHARS).collect();
        format!("{cut}…")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_like_execvp_finds_them() {
        assert!(find_program("sh").is_some());
        assert_eq!(find_program("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("ngnix-typo-driftprobe"), None);
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("plain");
        fs::write(&plain, "x").unwrap();
        fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            find_program(plain.to_str().unwrap()),
            None,
            "not executable"
        );
        assert_eq!(find_program("/nonexistent/validator"), None);
    }

    #[test]
    fn command_splitting() {
        assert_eq!(
            split_command("nginx -t -c /etc/nginx/nginx.conf").unwrap(),
            ["nginx", "-t", "-c", "/etc/nginx/nginx.conf"]
        );
        assert_eq!(
            split_command(r#"sh -c 'test -s "$F"' x"#).unwrap(),
            ["sh", "-c", "test -s \"$F\"", "x"]
        );
        assert_eq!(
            split_command(r#"a "b c" d\ e ''"#).unwrap(),
            ["a", "b c", "d e", ""]
        );
        assert!(split_command("a 'b").is_err());
        assert!(split_command("   ").is_err());
    }

    #[test]
    fn validator_outcomes() {
        let mut seen = 0;
        let ok = validate(&["true".into()], Duration::from_secs(5), &mut |pid| {
            seen = pid
        });
        assert!(ok.ok);
        assert!(seen > 1, "the validator's pid is reported");
        let bad = validate(
            &[
                "sh".into(),
                "-c".into(),
                "echo line1; echo line2 >&2; exit 3".into(),
            ],
            Duration::from_secs(5),
            &mut |_| {},
        );
        assert!(!bad.ok && !bad.transient);
        assert_eq!(bad.output, "line2 | line1");
        assert_eq!(bad.outcome, "exit 3");
        let silent = validate(&["false".into()], Duration::from_secs(5), &mut |_| {});
        assert_eq!(
            (silent.outcome.as_str(), silent.output.as_str()),
            ("exit 1", "")
        );
        // What it prints is escaped one-to-one: no raw control character,
        // no U+FFFD.
        let hostile = validate(
            &[
                "printf".into(),
                "a\\033[2Kb\\r\\342\\200\\250c\\377\\nok: d".into(),
            ],
            Duration::from_secs(5),
            &mut |_| {},
        );
        assert_eq!(
            hostile.output,
            "a\\x1b[2Kb\\x0d\\xe2\\x80\\xa8c\\xff | ok: d"
        );
        let slow = validate(
            &["sleep".into(), "5".into()],
            Duration::from_millis(100),
            &mut |_| {},
        );
        assert!(
            !slow.ok && slow.transient && slow.outcome == "timed out after 100ms",
            "{}",
            slow.outcome
        );
        let missing = validate(
            &["/nonexistent/validator".into()],
            Duration::from_secs(1),
            &mut |_| {},
        );
        assert!(
            !missing.ok && missing.transient && missing.outcome.contains("cannot run"),
            "{}",
            missing.outcome
        );
    }

    #[test]
    fn validator_leaves_no_process_behind() {
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("bg.pid");
        for (script, timeout) in [
            // Exits at once, leaving a background process.
            ("sleep 30 & echo $! > \"$0\"", Duration::from_secs(5)),
            // Times out with a background process.
            (
                "sleep 30 & echo $! > \"$0\"; sleep 30",
                Duration::from_millis(300),
            ),
        ] {
            let v = validate(
                &[
                    "sh".into(),
                    "-c".into(),
                    script.into(),
                    pidfile.display().to_string(),
                ],
                timeout,
                &mut |_| {},
            );
            let pid: i32 = fs::read_to_string(&pidfile)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            // Killed: gone, or a zombie waiting for its new parent to reap it.
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat
                    .rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().next());
                if matches!(state, None | Some("Z")) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{script}: background sleep {pid} survived ({v:?})"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
