//! The state file: what a container instance recorded as its baseline, when
//! drift was first seen, and the stat cache that keeps probes cheap.
//!
//! One small versioned JSON file per watched path set, in a 0700 state dir
//! (default `/tmp/driftprobe`). It holds names, sizes, SHA-256 digests and
//! stat data, never file contents. Writes are atomic (temp file, fsync,
//! rename) and happen only while holding an exclusive `flock` on a sibling
//! `.lock` file, because the kubelet runs liveness and readiness execs
//! concurrently. Nothing is opened through a symlink: a link planted in a
//! shared `/tmp` makes driftprobe refuse, not follow.
//!
//! The state is keyed to the container instance ([`ContainerId`]: PID 1's
//! start time and the boot id), so a restarted container whose emptyDir
//! kept the old file starts a fresh baseline. This module stores and
//! loads; deciding what the state means is the verdict's and the probe's job.

use crate::digest::{plain_io, CachedFile, Entry};
use crate::time::Millis;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The value of the `format` field.
pub const FORMAT: &str = "driftprobe-state";
/// The current `version`; a newer one is refused, not guessed at.
pub const VERSION: u32 = 1;
/// State files are small; anything bigger is not ours.
const MAX_STATE_BYTES: u64 = 32 * 1024 * 1024;

/// Identifies one container instance: a restart starts a new PID 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerId {
    pub boot_id: String,
    /// Field 22 of `/proc/1/stat`: clock ticks after boot.
    pub pid1_start_ticks: u64,
}

/// Where PID 1 and the boot come from (overridable for tests of /proc faults).
pub struct Proc {
    pub root: PathBuf,
}

impl Default for Proc {
    fn default() -> Self {
        Proc {
            root: PathBuf::from("/proc"),
        }
    }
}

impl Proc {
    /// This container instance's identity.
    pub fn container(&self) -> Result<ContainerId, StateError> {
        let boot_id = self.read("sys/kernel/random/boot_id")?.trim().to_string();
        Ok(ContainerId {
            boot_id,
            pid1_start_ticks: self.start_ticks(1)?,
        })
    }

    /// Wall-clock time PID 1 started, never later than the truth.
    ///
    /// `starttime` counts clock ticks (10 ms) since boot; the boot's wall
    /// time is taken as CLOCK_REALTIME - CLOCK_BOOTTIME, precise to the
    /// nanosecond (`btime` in /proc/stat, whole seconds, is the fallback).
    /// Ticks are truncated, so the result can only be early: the safe side
    /// for "did this file change after the container started?".
    pub fn pid1_started_at(&self) -> Result<Millis, StateError> {
        let boot = match boot_wall_time_ms() {
            Some(b) => b,
            None => self.btime_ms()?,
        };
        let ticks = self.start_ticks(1)?;
        let hz = clock_ticks_per_second();
        Ok(boot + (ticks as i64).saturating_mul(1000) / hz)
    }

    fn btime_ms(&self) -> Result<Millis, StateError> {
        let stat = self.read("stat")?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|s| s * 1000)
            .ok_or_else(|| StateError::Proc {
                path: self.root.join("stat"),
                reason: "no btime line".into(),
            })
    }

    /// Field 22 (`starttime`) of `/proc/PID/stat`.
    pub fn start_ticks(&self, pid: i32) -> Result<u64, StateError> {
        let rel = format!("{pid}/stat");
        let stat = self.read(&rel)?;
        // The command name (field 2) may hold spaces and parentheses: split
        // after the last ')'. Fields from there start at 3 (state).
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(22 - 3))
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| StateError::Proc {
                path: self.root.join(rel),
                reason: "unexpected format".into(),
            })
    }

    pub fn read(&self, rel: &str) -> Result<String, StateError> {
        let path = self.root.join(rel);
        fs::read_to_string(&path).map_err(|e| StateError::Proc {
            reason: plain_io(&e),
            path,
        })
    }
}

/// The wall-clock time of boot in ms: CLOCK_REALTIME - CLOCK_BOOTTIME,
/// rounded down (a millisecond early at worst).
fn boot_wall_time_ms() -> Option<Millis> {
    let read = |clock| {
        let mut ts = nix::libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid, writable timespec.
        let rc = unsafe { nix::libc::clock_gettime(clock, &mut ts) };
        (rc == 0).then(|| i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
    };
    let since_boot = read(nix::libc::CLOCK_BOOTTIME)?;
    let wall = read(nix::libc::CLOCK_REALTIME)?;
    i64::try_from((wall - since_boot).div_euclid(1_000_000)).ok()
}

fn clock_ticks_per_second() -> i64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz
    } else {
        100
    }
}

/// The recorded baseline: what the app started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub digest: String,
    pub recorded_at: Millis,
    /// `init`, `run`, `lazy` (first probe, proven by ctimes), `reload`.
    pub source: String,
    pub files: Vec<Entry>,
}

/// The config differs from the baseline since `since`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub since: Millis,
    /// Why there is no baseline to compare with, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unproven: Option<String>,
    /// The last look found the new config invalid: the first valid config
    /// after it starts a fresh grace window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

/// The cached result of `--validate` for one digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub ok: bool,
    pub at: Millis,
    /// First lines the validator printed (or why it could not run).
    pub output: String,
    /// No answer (timed out, could not start): held like a rejection, but
    /// asked again later instead of forever.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transient: bool,
}

/// One in-place reload done by `--on-drift reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reload {
    pub at: Millis,
    pub signal: String,
    pub pid: i32,
    pub target: String,
    pub from_digest: String,
    pub to_digest: String,
}

/// Everything a container instance remembers between probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub format: String,
    pub version: u32,
    pub container: ContainerId,
    pub paths: Vec<String>,
    pub baseline: Option<Baseline>,
    pub drift: Option<Drift>,
    #[serde(default)]
    pub cache: Vec<CachedFile>,
    #[serde(default)]
    /// (digest, result), oldest first.
    pub validations: Vec<(String, Validation)>,
    #[serde(default)]
    pub reloads: Vec<Reload>,
    /// Warnings about the watch set for this container instance.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Recorded by `init`/`run`, not yet printed by a probe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warnings_pending: bool,
    /// `--env` variables whose file differs from the app's environment, and
    /// since when. Only probes given `--env NAME` update NAME's entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_drift: Vec<EnvDrift>,
    /// A probe is running `--validate` on this digest right now (outside
    /// the lock); others hold instead of starting a second validator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validating: Option<Validating>,
}

/// An environment variable that differs from its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvDrift {
    pub name: String,
    pub since: Millis,
}

/// A validation under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validating {
    pub digest: String,
    pub started: Millis,
}

impl State {
    pub fn new(container: ContainerId, paths: Vec<String>) -> State {
        State {
            format: FORMAT.into(),
            version: VERSION,
            container,
            paths,
            baseline: None,
            drift: None,
            cache: Vec::new(),
            validations: Vec::new(),
            reloads: Vec::new(),
            warnings: Vec::new(),
            warnings_pending: false,
            env_drift: Vec::new(),
            validating: None,
        }
    }
}

/// What was found in the state file.
#[derive(Debug)]
pub enum Loaded {
    /// No state file yet.
    Absent,
    Found(Box<State>),
    /// A file is there but cannot be used; the reason says why.
    Unusable(String),
}

#[derive(Debug)]
pub enum StateError {
    Dir { path: PathBuf, reason: String },
    Io { path: PathBuf, reason: String },
    Proc { path: PathBuf, reason: String },
    LockTimeout { path: PathBuf, waited: Duration },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Dir { path, reason } => {
                write!(f, "state dir {}: {reason}", path.display())
            }
            StateError::Io { path, reason } => write!(f, "state file {}: {reason}", path.display()),
            StateError::Proc { path, reason } => write!(
                f,
                "cannot identify the container from {}: {reason}",
                path.display()
            ),
            StateError::LockTimeout { path, waited } => write!(
                f,
                "state file {} stayed locked by another probe for {}",
                path.display(),
                crate::time::format_duration(*waited)
            ),
        }
    }
}

impl std::error::Error for StateError {}

fn io_err(path: &Path, e: &io::Error) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        reason: plain_io(e),
    }
}

/// The file name stem for a watched path set: the same paths and excludes
/// always map to the same state file, different sets never share one.
pub fn key(paths: &[String], excludes: &[String]) -> String {
    let mut h = Sha256::new();
    for p in paths {
        h.update(b"p\0");
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    for x in excludes {
        h.update(b"x\0");
        h.update(x.as_bytes());
        h.update(b"\0");
    }
    let digest = h.finalize();
    let mut s = String::from("watch-");
    for b in &digest[..8] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A validated state directory.
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Creates the directory (mode 0700) if needed and checks it is a real
    /// directory, not a symlink someone planted.
    pub fn open(path: &Path) -> Result<StateDir, StateError> {
        let dir_err = |reason: String| StateError::Dir {
            path: path.to_path_buf(),
            reason,
        };
        match fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(path)
                    .map_err(|e| dir_err(format!("cannot create it: {}", plain_io(&e))))?;
            }
            Err(e) => return Err(dir_err(plain_io(&e))),
        }
        let meta = fs::symlink_metadata(path).map_err(|e| dir_err(plain_io(&e)))?;
        if meta.file_type().is_symlink() {
            return Err(dir_err(
                "is a symlink; refusing to follow it (point --state-dir at a real directory)"
                    .into(),
            ));
        }
        if !meta.is_dir() {
            return Err(dir_err("is not a directory".into()));
        }
        Ok(StateDir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, key: &str) -> PathBuf {
        self.path.join(format!("{key}.json"))
    }

    /// Takes the exclusive lock for `key`, waiting at most `timeout`.
    pub fn lock(&self, key: &str, timeout: Duration) -> Result<Locked, StateError> {
        let lock_path = self.path.join(format!("{key}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| io_err(&lock_path, &e))?;
        let start = Instant::now();
        let mut file = file;
        let flock = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(guard) => break guard,
                Err((f, nix::errno::Errno::EWOULDBLOCK)) | Err((f, nix::errno::Errno::EINTR)) => {
                    if start.elapsed() >= timeout {
                        return Err(StateError::LockTimeout {
                            path: lock_path,
                            waited: start.elapsed(),
                        });
                    }
                    file = f;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((_, errno)) => {
                    return Err(io_err(&lock_path, &io::Error::from(errno)));
                }
            }
        };
        Ok(Locked {
            _lock: flock,
            path: self.file(key),
            tmp: self.path.join(format!(".{key}.json.tmp")),
            dir: self.path.clone(),
        })
    }

    /// Reads the state without the lock (atomic renames make this safe).
    pub fn peek(&self, key: &str) -> Loaded {
        load(&self.file(key))
    }
}

/// The state file while holding its lock: only a `Locked` can save.
pub struct Locked {
    _lock: Flock<File>,
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
}

impl Locked {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Loaded {
        load(&self.path)
    }

    /// Atomically replaces the state file: temp file (0600, never through a
    /// symlink), fsync, rename, fsync the directory.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let json = serde_json::to_vec_pretty(state).map_err(|e| StateError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        // A probe killed mid-save (the kubelet SIGKILLs on timeout) may
        // have left the temp file; we hold the lock, so it is ours to drop.
        match fs::remove_file(&self.tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&self.tmp, &e)),
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&self.tmp)
            .map_err(|e| io_err(&self.tmp, &e))?;
        f.write_all(&json)
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err(&self.tmp, &e))?;
        drop(f);
        fs::rename(&self.tmp, &self.path).map_err(|e| io_err(&self.path, &e))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn load(path: &Path) -> Loaded {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Absent,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Loaded::Unusable("the state file is a symlink; ignored".into())
        }
        Err(e) => return Loaded::Unusable(format!("cannot read the state file: {}", plain_io(&e))),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Loaded::Unusable(format!("cannot read the state file: {}", plain_io(&e))),
    };
    if !meta.is_file() {
        return Loaded::Unusable("the state file is not a regular file; ignored".into());
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Loaded::Unusable(format!(
            "the state file belongs to uid {}, not to us; ignored",
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Loaded::Unusable("the state file is writable by others; ignored".into());
    }
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_STATE_BYTES + 1).read_to_end(&mut bytes) {
        return Loaded::Unusable(format!("cannot read the state file: {}", plain_io(&e)));
    }
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Loaded::Unusable("the state file is too large to be ours; ignored".into());
    }
    parse(&bytes)
}

/// Parses state bytes, telling corrupt, foreign and newer files apart.
pub fn parse(bytes: &[u8]) -> Loaded {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Loaded::Unusable("the state file is empty (interrupted write?)".into());
    }
    #[derive(Deserialize)]
    struct Header {
        #[serde(default)]
        format: Option<String>,
        #[serde(default)]
        version: Option<u64>,
    }
    let header: Header = match serde_json::from_slice(bytes) {
        Ok(h) => h,
        Err(e) => {
            return Loaded::Unusable(format!(
                "the state file is corrupt (line {}, column {}); ignored",
                e.line(),
                e.column()
            ))
        }
    };
    if header.format.as_deref() != Some(FORMAT) {
        return Loaded::Unusable("the state file was not written by driftprobe; ignored".into());
    }
    match header.version {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) if v > u64::from(VERSION) => {
            return Loaded::Unusable(format!(
                "the state file has version {v}, newer than this driftprobe's {VERSION}; ignored"
            ))
        }
        _ => return Loaded::Unusable("the state file has no usable version; ignored".into()),
    }
    match serde_json::from_slice::<State>(bytes) {
        Ok(s) => Loaded::Found(Box::new(s)),
        Err(e) => Loaded::Unusable(format!(
            "the state file is corrupt (line {}, column {}); ignored",
            e.line(),
            e.column()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State::new(
            ContainerId {
                boot_id: "b".into(),
                pid1_start_ticks: 7,
            },
            vec!["/etc/config".into()],
        )
    }

    #[test]
    fn round_trips_and_is_private() {
        let d = tempfile::tempdir().unwrap();
        let dir = StateDir::open(&d.path().join("state")).unwrap();
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let locked = dir.lock("k", Duration::from_secs(1)).unwrap();
        assert!(matches!(locked.load(), Loaded::Absent));
        locked.save(&sample()).unwrap();
        match locked.load() {
            Loaded::Found(s) => assert_eq!(*s, sample()),
            other => panic!("{other:?}"),
        }
        let mode = fs::metadata(locked.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn second_locker_times_out() {
        let d = tempfile::tempdir().unwrap();
        let dir = StateDir::open(d.path()).unwrap();
        let _held = dir.lock("k", Duration::from_secs(1)).unwrap();
        let err = dir.lock("k", Duration::from_millis(20)).err().unwrap();
        assert!(err.to_string().contains("locked by another probe"), "{err}");
    }

    #[test]
    fn symlinked_dir_is_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", d.path().join("link")).unwrap();
        let err = StateDir::open(&d.path().join("link")).err().unwrap();
        assert!(err.to_string().contains("symlink"), "{err}");
    }

    #[test]
    fn bad_files_are_told_apart() {
        let reason = |bytes: &[u8]| match parse(bytes) {
            Loaded::Unusable(r) => r,
            other => panic!("{other:?}"),
        };
        assert!(reason(b"").contains("empty"));
        assert!(reason(b"{\"format\": \"driftprobe-st").contains("corrupt"));
        assert!(reason(b"{\"hello\": 1}").contains("not written by driftprobe"));
        assert!(reason(b"[1,2]").contains("corrupt"));
        assert!(reason(br#"{"format": 5}"#).contains("corrupt"));
        assert!(reason(b"\x00\xff").contains("corrupt"));
        assert!(reason(br#"{"format":"driftprobe-state","version":9}"#).contains("newer"));
        assert!(reason(br#"{"format":"driftprobe-state","version":1}"#).contains("corrupt"));
    }

    #[test]
    fn keys_separate_watch_sets() {
        let a = key(&["/a".into()], &[]);
        assert_eq!(a, key(&["/a".into()], &[]));
        assert_ne!(a, key(&["/b".into()], &[]));
        assert_ne!(a, key(&["/a".into()], &["*.bak".into()]));
        assert!(a.starts_with("watch-") && a.len() == 22);
    }

    #[test]
    fn reads_the_live_container_identity() {
        let p = Proc::default();
        let id = p.container().unwrap();
        assert!(!id.boot_id.is_empty());
        let started = p.pid1_started_at().unwrap();
        assert!(started <= crate::time::now());
        // The precise boot time agrees with /proc/stat's whole-second btime.
        let precise = boot_wall_time_ms().unwrap();
        let btime = p.btime_ms().unwrap();
        assert!((precise - btime).abs() < 2_000, "{precise} vs {btime}");
    }
}
