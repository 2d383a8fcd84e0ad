//! What a probe does beyond judging: signal the app to reload (or ask it
//! to over HTTP), run the `--validate` command, read the environment the
//! app was started with. Everything here touches processes or the app's
//! port; the decisions stay in `probe` and `verdict`.

use crate::digest::plain_io;
use crate::http::{self, Url};
use crate::smallfile;
use crate::state::{Proc, Validation};
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
use std::str::FromStr;
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
pub fn kill_stale_validator(proc_root: &Path, pgid: i32, leader_start: u64) {
    if pgid <= 1 {
        return;
    }
    let proc = Proc {
        root: proc_root.to_path_buf(),
    };
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

/// Which process gets the reload signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The container's entrypoint: PID 1, or with `shareProcessNamespace`
    /// the first process of this container ([`Proc::init_pid`]).
    Entrypoint,
    Pid(i32),
    Pidfile(PathBuf),
    Process(String),
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Entrypoint => "the container's entrypoint".into(),
            Target::Pid(p) => format!("pid {p}"),
            Target::Pidfile(p) => format!("pidfile {}", p.display()),
            Target::Process(n) => format!("process {n}"),
        }
    }

    /// The pid this target names right now.
    pub fn resolve(&self, proc_root: &Path) -> Result<i32, String> {
        match self {
            Target::Entrypoint => Ok(Proc {
                root: proc_root.to_path_buf(),
            }
            .init_pid()),
            Target::Pid(p) if *p > 0 => Ok(*p),
            Target::Pid(p) => Err(format!("--pid {p}: not a process id")),
            Target::Pidfile(path) => {
                let text = smallfile::read_to_string(path, smallfile::TINY).map_err(|e| {
                    format!("cannot read pidfile {}: {}", path.display(), plain_io(&e))
                })?;
                match text.trim().parse::<i32>() {
                    Ok(p) if p > 0 => Ok(p),
                    _ => Err(format!(
                        "pidfile {} does not hold a process id",
                        path.display()
                    )),
                }
            }
            Target::Process(name) => find_process(proc_root, name),
        }
    }
}

/// The oldest process whose `comm` is `name` (the master, not a worker).
/// The kernel keeps only the first 15 bytes of a name in `comm`.
fn find_process(proc_root: &Path, name: &str) -> Result<i32, String> {
    let want = name.as_bytes().get(..15).unwrap_or(name.as_bytes());
    Proc {
        root: proc_root.to_path_buf(),
    }
    .oldest_process(|pid| {
        let comm = smallfile::read(&proc_root.join(format!("{pid}/comm")), smallfile::TINY)
            .unwrap_or_default();
        comm.strip_suffix(b"\n").unwrap_or(&comm) == want
    })
    .ok_or_else(|| format!("no process named {name:?} in {}", proc_root.display()))
}

/// The process name, for messages.
pub fn comm(proc_root: &Path, pid: i32) -> String {
    smallfile::read_to_string(&proc_root.join(format!("{pid}/comm")), smallfile::TINY)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
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

/// At most this many `--reload-header`s, each value at most this long.
const MAX_HEADERS: usize = 32;
const MAX_HEADER_VALUE: usize = 8 * 1024;
/// Header names driftprobe writes itself (the request's framing).
const OWN_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "user-agent",
];

/// A `--reload-header`. Its value may be a credential: it is never part
/// of a message, and `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    value: HeaderValue,
}

#[derive(Clone, PartialEq, Eq)]
enum HeaderValue {
    Inline(String),
    /// `@PATH`: read at each request.
    File(PathBuf),
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            HeaderValue::Inline(_) => write!(f, "Header({}: <value>)", self.name),
            HeaderValue::File(p) => write!(f, "Header({}: @{})", self.name, p.display()),
        }
    }
}

impl Header {
    /// Parses `Name: value` (the `n`th header, for messages that must not
    /// quote it). The name must be an HTTP token and not one driftprobe
    /// sets; an inline value visible ASCII, spaces and tabs.
    pub fn parse(text: &str, n: usize) -> Result<Header, String> {
        let flag = format!("--reload-header #{n}");
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| format!("{flag}: expected 'Name: value' (no ':' in it)"))?;
        let name = name.trim_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(format!(
                "{flag}: the name is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)"
            ));
        }
        if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "--reload-header {name}: driftprobe sets that header itself"
            ));
        }
        let value = trim_value(value);
        let value = match value.strip_prefix('@') {
            Some("") => return Err(format!("--reload-header {name}: '@' without a file")),
            Some(path) => HeaderValue::File(PathBuf::from(path)),
            None => {
                check_value(value.as_bytes())
                    .map_err(|why| format!("--reload-header {name}: the value {why}"))?;
                HeaderValue::Inline(value.to_string())
            }
        };
        Ok(Header {
            name: name.to_string(),
            value,
        })
    }

    /// The value to send: inline, or read from its file now (capped,
    /// surrounding whitespace and the trailing newline trimmed). `Err`
    /// says why not, without the value.
    pub fn value(&self) -> Result<String, String> {
        let path = match &self.value {
            HeaderValue::Inline(v) => return Ok(v.clone()),
            HeaderValue::File(p) => p,
        };
        let name = &self.name;
        let raw = smallfile::read(path, MAX_HEADER_VALUE).map_err(|e| {
            format!(
                "--reload-header {name}: cannot read its value from {}: {}",
                path.display(),
                plain_io(&e)
            )
        })?;
        let text = std::str::from_utf8(&raw)
            .ok()
            .map(trim_value)
            .filter(|v| check_value(v.as_bytes()).is_ok())
            .ok_or_else(|| {
                format!(
                    "--reload-header {name}: the value in {} holds a control or non-ASCII character",
                    path.display()
                )
            })?;
        Ok(text.to_string())
    }
}

/// A header value without the whitespace around it (a Secret file's
/// trailing newline included).
fn trim_value(v: &str) -> &str {
    v.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A value that can go on one header line: visible ASCII, spaces, tabs.
fn check_value(v: &[u8]) -> Result<(), &'static str> {
    if v.len() > MAX_HEADER_VALUE {
        return Err("is longer than 8 KiB");
    }
    match v.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        true => Ok(()),
        false => Err("holds a control or non-ASCII character (CR and LF included)"),
    }
}

/// `--reload-url`: the app is asked to reload by an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReload {
    pub method: String,
    pub url: Url,
    pub timeout: Duration,
    pub headers: Vec<Header>,
}

/// Parses every `--reload-header`, so a bad one fails at once (exit 2).
pub fn parse_headers(texts: &[String]) -> Result<Vec<Header>, String> {
    if texts.len() > MAX_HEADERS {
        return Err(format!(
            "--reload-header: at most {MAX_HEADERS} headers, got {}",
            texts.len()
        ));
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Header::parse(t, i + 1))
        .collect()
}

impl HttpReload {
    /// Checks the flags up front, so a typo fails at once (exit 2), not on
    /// the day the config changes.
    pub fn new(
        url: &str,
        method: &str,
        timeout: Duration,
        headers: Vec<Header>,
    ) -> Result<HttpReload, String> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "--reload-method {method:?}: expected a method such as POST, PUT or GET"
            ));
        }
        if timeout.is_zero() {
            return Err("--reload-timeout must be more than 0".into());
        }
        Ok(HttpReload {
            method: method.into(),
            url: Url::parse("--reload-url", url)?,
            timeout,
            headers,
        })
    }

    /// Sends the request. `Ok` says what answered (2xx); `Err` why the
    /// reload is not known to be done. Header values read from files are
    /// read now: a rotated Secret is sent as it is now.
    pub fn call(&self) -> Result<String, String> {
        let mut headers = Vec::with_capacity(self.headers.len());
        for h in &self.headers {
            match h.value() {
                Ok(v) => headers.push((h.name.as_str(), v)),
                Err(e) => return Err(format!("{} {} not sent: {e}", self.method, self.url)),
            }
        }
        let result = http::request_with(&self.method, &self.url, &headers, self.timeout);
        let what = result.as_ref().unwrap_or_else(|e| e);
        let said = format!("{} {} {what}", self.method, self.url);
        match result {
            Ok(_) => Ok(said),
            Err(_) => Err(said),
        }
    }
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
/// `posix_spawnp` because std's process machinery costs ~50 KB of the
/// static binary (issue 4).
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

/// Names of `--env NAME=PATH` pairs whose value in the environment `pid`
/// was started with differs from the current content of PATH. Values are
/// compared, never printed. A PATH that does not exist is not compared.
///
/// `/proc/PID/environ` shows the memory the environment was placed in at
/// exec, not a copy: a program that rewrites that area for its process
/// title (nginx does, so does perl's `$0 = …`) leaves the title or padding
/// there. Then no variable can be told, found or not: "cannot determine"
/// (the error), never a drift. A variable absent from an intact environment
/// is a drift.
pub fn env_drift(
    proc_root: &Path,
    pid: i32,
    pairs: &[(String, PathBuf)],
) -> Result<Vec<String>, String> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let environ_path = proc_root.join(format!("{pid}/environ"));
    let environ = smallfile::read(&environ_path, smallfile::LARGE).map_err(|e| {
        format!(
            "cannot read the environment the app started with ({}): {}",
            environ_path.display(),
            plain_io(&e)
        )
    })?;
    let entries = environ_entries(&environ).map_err(|why| {
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "cannot tell the value of {} the app started with: {} no longer holds an environment ({why}); the app \
             rewrote that memory, e.g. for its process title as nginx does",
            names.join(", "),
            environ_path.display()
        )
    })?;
    let mut drifted = Vec::new();
    for (name, path) in pairs {
        let started_with = entries.iter().find_map(|kv| {
            let rest = kv.strip_prefix(name.as_bytes())?;
            rest.strip_prefix(b"=")
        });
        let current = match smallfile::read(path, smallfile::ENV_VALUE) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {}", path.display(), plain_io(&e))),
        };
        if started_with != Some(current.as_slice()) {
            drifted.push(name.clone());
        }
    }
    Ok(drifted)
}

/// The `NAME=value` entries of an environment block as the kernel placed
/// it at exec: strings each ended by a NUL, each with a name before its
/// `=`. Anything else (a string without `=`, an empty one, no final NUL:
/// a process title and its padding) means the block was rewritten: `Err`
/// says how, without quoting it.
fn environ_entries(block: &[u8]) -> Result<Vec<&[u8]>, String> {
    if block.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = block.strip_suffix(b"\0") else {
        return Err("it does not end with a NUL".into());
    };
    let mut entries = Vec::new();
    for (i, entry) in body.split(|b| *b == 0).enumerate() {
        if entry.is_empty() {
            return Err(format!("entry {} is empty", i + 1));
        }
        if entry.iter().position(|b| *b == b'=').unwrap_or(0) == 0 {
            return Err(format!("entry {} is not NAME=value", i + 1));
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_environ_is_told_from_an_intact_one() {
        assert_eq!(environ_entries(b""), Ok(vec![]));
        assert_eq!(
            environ_entries(b"A=1\0PATH=/bin\0EMPTY=\0"),
            Ok(vec![&b"A=1"[..], b"PATH=/bin", b"EMPTY="])
        );
        // perl's `$0 = "t"`: spaces, then a NUL; nginx: the title's tail,
        // then NUL padding; a title running to the end: no NUL.
        for rewritten in [
            &b"                      \0"[..],
            b"process -c /etc/nginx.conf\0\0\0\0\0",
            b"\0\0\0\0\0\0",
            b"A=1\0B=2",
            b"A=1\0=x\0",
        ] {
            assert!(environ_entries(rewritten).is_err(), "{rewritten:?}");
        }
    }

    #[test]
    fn env_drift_never_calls_a_rewritten_environ_drift() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir(root.join("7")).unwrap();
        let file = root.join("level");
        fs::write(&file, "info").unwrap();
        let pairs = [("LOG_LEVEL".to_string(), file.clone())];
        fs::write(root.join("7/environ"), b"LOG_LEVEL=info\0HOME=/\0").unwrap();
        assert_eq!(env_drift(root, 7, &pairs), Ok(vec![]));
        // Really absent from an intact environment: drift.
        fs::write(root.join("7/environ"), b"HOME=/\0").unwrap();
        assert_eq!(
            env_drift(root, 7, &pairs),
            Ok(vec!["LOG_LEVEL".to_string()])
        );
        // Rewritten: cannot tell, and says which variable and why.
        fs::write(root.join("7/environ"), b"r process\0\0\0\0").unwrap();
        let e = env_drift(root, 7, &pairs).unwrap_err();
        assert!(
            e.contains("LOG_LEVEL") && e.contains("no longer holds an environment"),
            "{e}"
        );
        assert!(!e.contains("r process"), "quotes the rewritten memory: {e}");
    }

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("HUP"), Ok(Signal::SIGHUP));
        assert_eq!(parse_signal("sigusr1"), Ok(Signal::SIGUSR1));
        assert_eq!(parse_signal("15"), Ok(Signal::SIGTERM));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

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
    fn process_names_longer_than_comm_are_found() {
        let d = tempfile::tempdir().unwrap();
        let exe = d.path().join("driftprobe-test-long-name");
        fs::copy("/bin/sleep", &exe).unwrap();
        let mut child = std::process::Command::new(&exe).arg("30").spawn().unwrap();
        // comm changes at exec, a moment after spawn returns.
        let mut found = Err(String::new());
        for _ in 0..200 {
            found = find_process(Path::new("/proc"), "driftprobe-test-long-name");
            if found.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, Ok(child.id() as i32));
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

    #[test]
    fn reload_headers_parse_and_hide_their_values() {
        let h = Header::parse("X-Key:  s3cret \t", 1).unwrap();
        assert_eq!(
            (h.name.as_str(), h.value()),
            ("X-Key", Ok("s3cret".to_string()))
        );
        assert_eq!(format!("{h:?}"), "Header(X-Key: <value>)");
        let empty = Header::parse("X-Empty:", 1).unwrap();
        assert_eq!(empty.value(), Ok(String::new()));
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("token");
        fs::write(&file, "Bearer abc\r\n").unwrap();
        let h = Header::parse(&format!("Authorization: @{}", file.display()), 1).unwrap();
        assert_eq!(h.value(), Ok("Bearer abc".to_string()));
        fs::write(&file, "Bearer abc\nX-Injected: 1\n").unwrap();
        let e = h.value().unwrap_err();
        assert!(e.contains("control") && !e.contains("abc"), "{e}");
        for bad in [
            "nocolon s3cret",
            "A B: s3cret",
            ": s3cret",
            "Host: s3cret",
            "X: s3\ncret",
            "X: s3cret\u{e9}",
        ] {
            let e = Header::parse(bad, 3).unwrap_err();
            assert!(!e.contains("s3"), "{bad:?}: {e}");
        }
        assert!(Header::parse("A B: x", 3)
            .unwrap_err()
            .starts_with("--reload-header #3: "));
        assert!(parse_headers(&vec!["X-A: 1".to_string(); 33]).is_err());
        assert_eq!(
            parse_headers(&vec!["X-A: 1".to_string(); 32]).map(|h| h.len()),
            Ok(32)
        );
    }

    #[test]
    fn targets_resolve() {
        let d = tempfile::tempdir().unwrap();
        let pf = d.path().join("app.pid");
        fs::write(&pf, "4242\n").unwrap();
        let proc_root = Path::new("/proc");
        assert_eq!(Target::Pidfile(pf.clone()).resolve(proc_root), Ok(4242));
        fs::write(&pf, "garbage").unwrap();
        assert!(Target::Pidfile(pf)
            .resolve(proc_root)
            .unwrap_err()
            .contains("does not hold"));
        assert!(Target::Pidfile(d.path().join("gone.pid"))
            .resolve(proc_root)
            .unwrap_err()
            .contains("cannot read pidfile"));
        assert!(Target::Pid(0).resolve(proc_root).is_err());
        assert!(Target::Process("no-such-process-name".into())
            .resolve(proc_root)
            .is_err());
    }
}
