//! The state file: what a container instance recorded as its baseline, when
//! drift was first seen, and the stat cache that keeps probes cheap.
//!
//! One small versioned JSON file per watched path set, in a state dir that
//! is ours alone: owned by us, not writable by others (default
//! `/tmp/driftprobe`, 0700; in a shared dir such as an emptyDir, a private
//! `driftprobe-<euid>` inside it). The dir is opened once and every file is
//! reached through that descriptor. The file holds names, sizes, SHA-256
//! digests and stat data, never file contents. Writes are atomic (temp
//! file, fsync, rename) and happen only while holding an exclusive `flock`
//! on a sibling `.lock` file, because the kubelet runs liveness and
//! readiness execs concurrently. Nothing is opened through a symlink: a
//! link planted in a shared `/tmp` makes driftprobe refuse, not follow.
//!
//! The state is keyed to the container instance ([`ContainerId`]: the start
//! time of the container's entrypoint, [`Proc::init_pid`], and the boot
//! id), so a restarted container whose emptyDir kept the old file starts a
//! fresh baseline. This module stores and loads; deciding what the state
//! means is the verdict's and the probe's job.

use crate::digest::{plain_io, Budgets, CachedFile, Entry};
use crate::json::{self, obj, or_default, strings, Value};
use crate::smallfile;
use crate::time::{Millis, Stamp};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, Flock, FlockArg, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The value of the `format` field.
pub const FORMAT: &str = "driftprobe-state";
/// The current `version`; a newer one is refused, not guessed at.
pub const VERSION: u32 = 1;
/// The largest state file a walk within `budgets` can make us write, and
/// so the most the loader reads: what a probe writes, the next one can read
/// back (a file too large to read would be re-recorded, and rewritten, by
/// every probe). Per file the state holds two entries (the baseline's and
/// the stat cache's), each a fixed part and the name; JSON at most doubles
/// a name as the digest writes it (`\` and `"` are escaped), and the rest
/// (validator output, reloads, warnings, the watched paths) is bounded by
/// the probe's own limits, well under [`OTHER_BYTES`].
pub fn max_state_bytes(budgets: &Budgets) -> u64 {
    ENTRY_BYTES
        .saturating_mul(2)
        .saturating_mul(budgets.max_entries)
        .saturating_add(budgets.max_name_bytes.saturating_mul(2 * 2))
        .saturating_add(OTHER_BYTES)
}

/// The most one file's entry (baseline or stat cache) takes besides its
/// name: the stat-cache entry with every number at its widest is 225.
const ENTRY_BYTES: u64 = 256;
/// Everything in the state that does not grow with the watched files.
const OTHER_BYTES: u64 = 4 << 20;
/// The most the container's shared file (`container.shared`: the files
/// given to the app, one entry each, and the reload claim) is read: room
/// for the default budgets' worst case several times over, so budgets
/// raised in the pod's env still fit.
const SHARED_MAX_BYTES: u64 = 64 << 20;

/// Identifies one container instance: a restart starts a new entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerId {
    pub boot_id: String,
    /// Field 22 of `/proc/PID/stat` of the container's entrypoint
    /// ([`Proc::init_pid`]): clock ticks after boot.
    pub init_start_ticks: u64,
}

/// Where the container's processes and the boot come from (overridable for
/// tests of /proc faults).
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
            init_start_ticks: self.start_ticks(self.init_pid())?,
        })
    }

    /// The container's entrypoint: PID 1, unless PID 1 lives in another
    /// mount namespace (`shareProcessNamespace: true` makes it the pod's
    /// `pause`). Then it is the oldest live process that shares our mount
    /// namespace: the first process of this container. Where a namespace
    /// link is not ours to read (`pause` runs as another user), the
    /// world-readable cgroup membership tells containers apart instead;
    /// when neither can be read, PID 1 it is.
    pub fn init_pid(&self) -> i32 {
        let mnt_ns = |pid: &str| fs::read_link(self.root.join(pid).join("ns/mnt")).ok();
        let cgroup =
            |pid: &str| smallfile::read(&self.root.join(pid).join("cgroup"), smallfile::SMALL).ok();
        // Our cgroup only when a namespace link cannot be read (rarely).
        let (our_ns, our_cgroup) = (mnt_ns("self"), std::cell::OnceCell::new());
        let same_container = |pid: &str| -> Option<bool> {
            if let (Some(ours), Some(theirs)) = (&our_ns, mnt_ns(pid)) {
                return Some(*ours == theirs);
            }
            match (our_cgroup.get_or_init(|| cgroup("self")), cgroup(pid)) {
                (Some(ours), Some(theirs)) => Some(*ours == theirs),
                _ => None,
            }
        };
        if same_container("1") != Some(false) {
            return 1;
        }
        self.oldest_process(|pid| same_container(&pid.to_string()) == Some(true))
            .unwrap_or(1)
    }

    /// The oldest live process (earliest start, then lowest pid) other
    /// than this one for which `wanted(pid)` holds. Zombies never count.
    pub fn oldest_process(&self, mut wanted: impl FnMut(i32) -> bool) -> Option<i32> {
        let me = fs::read_link(self.root.join("self"))
            .ok()
            .and_then(|l| l.to_str().and_then(|s| s.parse::<i32>().ok()))
            .unwrap_or_else(|| std::process::id() as i32);
        let mut best: Option<(u64, i32)> = None;
        for entry in fs::read_dir(&self.root).ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if pid == me || !wanted(pid) {
                continue;
            }
            let Ok(stat) = smallfile::read_to_string(&entry.path().join("stat"), smallfile::TINY)
            else {
                continue;
            };
            // A zombie (exited, not reaped) or dead process is not running.
            if matches!(parse_stat_field(&stat, 3), Some("Z" | "X" | "x") | None) {
                continue;
            }
            let Some(start) = parse_stat_field(&stat, 22).and_then(|f| f.parse::<u64>().ok())
            else {
                continue;
            };
            if best.is_none_or(|b| (start, pid) < b) {
                best = Some((start, pid));
            }
        }
        best.map(|(_, pid)| pid)
    }

    /// This process as the proc root names it: its pid and start time.
    pub fn me(&self) -> Option<(i32, u64)> {
        let pid = fs::read_link(self.root.join("self"))
            .ok()
            .and_then(|l| l.to_str().and_then(|s| s.parse::<i32>().ok()))?;
        Some((pid, self.start_ticks(pid).ok()?))
    }

    /// Is `pid` still the live (not zombie) process that started at
    /// `start_ticks`? `None` when that cannot be told.
    pub fn running(&self, pid: i32, start_ticks: u64) -> Option<bool> {
        if pid <= 0 {
            return Some(false);
        }
        let stat = match smallfile::read_to_string(
            &self.root.join(format!("{pid}/stat")),
            smallfile::TINY,
        ) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(false),
            Err(_) => return None,
        };
        let state = parse_stat_field(&stat, 3)?;
        let start = parse_stat_field(&stat, 22)?.parse::<u64>().ok()?;
        Some(start == start_ticks && !matches!(state, "Z" | "X" | "x"))
    }

    /// The start time of `pid` if it is a live process (not a zombie):
    /// `None` for a process that exited, even one not reaped yet.
    pub fn live_start_ticks(&self, pid: i32) -> Option<u64> {
        let start = self.start_ticks(pid).ok()?;
        self.running(pid, start)?.then_some(start)
    }

    /// Wall-clock time the container's entrypoint ([`Proc::init_pid`])
    /// started, never later than the truth.
    ///
    /// `starttime` counts clock ticks (10 ms) since boot; the boot's wall
    /// time is taken as CLOCK_REALTIME - CLOCK_BOOTTIME, precise to the
    /// nanosecond (`btime` in /proc/stat, whole seconds, is the fallback).
    /// Ticks are truncated, so the result can only be early: the safe side
    /// for "did this file change after the container started?".
    pub fn init_started_at(&self) -> Result<Millis, StateError> {
        self.started_at(self.start_ticks(self.init_pid())?)
    }

    /// Wall-clock time of `ticks` after boot (a `starttime`), rounded down.
    pub fn started_at(&self, ticks: u64) -> Result<Millis, StateError> {
        let boot = match boot_wall_time_ms() {
            Some(b) => b,
            None => self.btime_ms()?,
        };
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
        let f = self.stat_field(pid, 22)?;
        f.parse().map_err(|_| StateError::Proc {
            path: self.root.join(format!("{pid}/stat")),
            reason: "unexpected format".into(),
        })
    }

    /// Field `field` of `/proc/PID/stat`, numbered as in proc(5): 1 is the
    /// pid, 2 the command name (without its parentheses), 3 the state
    /// (`R`, `S`, `Z`…), 4 the parent pid, 22 the start time.
    pub fn stat_field(&self, pid: i32, field: usize) -> Result<String, StateError> {
        let rel = format!("{pid}/stat");
        let stat = self.read(&rel)?;
        parse_stat_field(&stat, field)
            .map(str::to_string)
            .ok_or_else(|| StateError::Proc {
                path: self.root.join(rel),
                reason: "unexpected format".into(),
            })
    }

    pub fn read(&self, rel: &str) -> Result<String, StateError> {
        let path = self.root.join(rel);
        // Capped, never blocking: `smallfile`.
        smallfile::read_to_string(&path, smallfile::LARGE).map_err(|e| StateError::Proc {
            reason: plain_io(&e),
            path,
        })
    }
}

/// Field `field` (1-based, as in proc(5)) of a `/proc/PID/stat` line. The
/// command name (field 2) may hold spaces and parentheses: it runs from the
/// first '(' to the last ')', and fields from 3 on follow that.
pub fn parse_stat_field(stat: &str, field: usize) -> Option<&str> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    match field {
        0 => None,
        1 => Some(stat[..open].trim()).filter(|s| !s.is_empty()),
        2 => stat.get(open + 1..close),
        n => stat[close + 1..].split_whitespace().nth(n - 3),
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    pub digest: String,
    pub recorded_at: Millis,
    /// `init`, `run`, `lazy` (first probe, proven by ctimes), `reload`.
    pub source: String,
    pub files: Vec<Entry>,
}

/// The config differs from the baseline since `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Wall-clock time the drift was first seen (shown to people; measured
    /// from only when `since_boot` is missing).
    pub since: Millis,
    /// The same moment on CLOCK_BOOTTIME of this boot, which wall-clock
    /// steps do not move: the grace window is measured on it.
    pub since_boot: Option<Millis>,
    /// Why there is no baseline to compare with, when there is none.
    pub unproven: Option<String>,
    /// The last look found the new config invalid: the first valid config
    /// after it starts a fresh grace window.
    pub held: bool,
}

/// The cached result of `--validate` for one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    pub ok: bool,
    pub at: Millis,
    /// First lines the validator printed, escaped (crate::escape). Only
    /// `status` shows them: they may quote a Secret (`nginx -t` names the
    /// upstream it could not parse), and the probe line goes to Events.
    pub output: String,
    /// How it answered, with nothing from its output: `exit 1`, `timed out
    /// after 10s`, `cannot run validator X: …`. Empty in older states.
    pub outcome: String,
    /// No answer (timed out, could not start): held like a rejection, but
    /// asked again later instead of forever.
    pub transient: bool,
    /// The validator that answered: probes with different `--validate`
    /// commands do not share answers.
    pub command: String,
}

/// One in-place reload done by `--on-drift reload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    pub at: Millis,
    pub signal: String,
    pub pid: i32,
    pub target: String,
    pub from_digest: String,
    pub to_digest: String,
}

/// What one probe kind last mirrored to the container's log
/// ([`crate::mirror`]): kept so that a line is written once per change,
/// not at every probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mirrored {
    /// `liveness` or `readiness`.
    pub probe: String,
    /// The last verdict class logged (`--log-changes` only).
    pub class: Option<String>,
    /// The misconfigurations already reported (stderr and log line).
    pub problems: Vec<String>,
    /// Why the last line could not be written, shown by `status`.
    pub failed: Option<String>,
}

/// Everything a container instance remembers between probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub format: String,
    pub version: u32,
    pub container: ContainerId,
    pub paths: Vec<String>,
    pub baseline: Option<Baseline>,
    pub drift: Option<Drift>,
    pub cache: Vec<CachedFile>,
    /// (digest, result), oldest first.
    pub validations: Vec<(String, Validation)>,
    pub reloads: Vec<Reload>,
    /// Warnings about the watch set for this container instance.
    pub warnings: Vec<String>,
    /// Recorded by `init`/`run`, not yet printed by a probe.
    pub warnings_pending: bool,
    /// `--env` variables whose file differs from the app's environment, and
    /// since when. Only probes given `--env NAME` update NAME's entry.
    pub env_drift: Vec<EnvDrift>,
    /// A probe is running `--validate` on this digest right now (outside
    /// the lock); others hold instead of starting a second validator.
    pub validating: Option<Validating>,
    /// The last sequence number of the container's shared file
    /// ([`crate::shared`]) applied to this watch set's baseline: what the
    /// app was given (by any probe's reload or adoption) since then is
    /// applied at the next look.
    pub given_seq: u64,
    /// A probe that reloads by signal has checked its target's runtime
    /// (Go, JVM: [`crate::runtime`]) for this container instance, and
    /// warned if the signal would not be sent.
    pub runtime_checked: bool,
    /// What each probe kind last mirrored to the container's log.
    pub mirrored: Vec<Mirrored>,
}

/// An environment variable that differs from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvDrift {
    pub name: String,
    pub since: Millis,
    /// As [`Drift::since_boot`].
    pub since_boot: Option<Millis>,
}

impl Drift {
    /// A drift first seen at `at`.
    pub fn starting(at: Stamp, unproven: Option<String>) -> Drift {
        Drift {
            since: at.wall,
            since_boot: at.boot,
            unproven,
            held: false,
        }
    }

    /// When it was first seen, on both clocks.
    pub fn started(&self) -> Stamp {
        Stamp {
            wall: self.since,
            boot: self.since_boot,
        }
    }
}

impl EnvDrift {
    pub fn started(&self) -> Stamp {
        Stamp {
            wall: self.since,
            boot: self.since_boot,
        }
    }
}

/// A validation under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validating {
    pub digest: String,
    /// When the validator is overdue (its timeout, plus slack): a marker
    /// left by a probe the kubelet killed expires then.
    pub until: Millis,
    /// The same deadline on CLOCK_BOOTTIME (see [`Drift::since_boot`]).
    pub until_boot: Option<Millis>,
    /// The validator's process group and its leader's start time, so that
    /// the next probe can kill what a killed probe left running.
    pub pgid: Option<i32>,
    pub leader_start: Option<u64>,
    /// The probe running the validator, and its start time: once it is
    /// gone (the kubelet killed it at timeoutSeconds) no answer will come.
    pub owner: Option<i32>,
    pub owner_start: Option<u64>,
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
            given_seq: 0,
            runtime_checked: false,
            mirrored: Vec::new(),
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

/// The default `--state-dir`. Unlike a directory the user names, it is
/// ours alone: one that belongs to another user was planted, and is refused.
pub const DEFAULT_DIR: &str = "/tmp/driftprobe";

/// A validated state directory, held open: every file in it is opened,
/// renamed and removed relative to this descriptor, so the directory cannot
/// be swapped for another (or a symlink) between the check and the use.
///
/// The directory must belong to us (the effective uid) and not be writable
/// by group or others. A directory the user named that does not qualify (an
/// emptyDir is root's and mode 0777 while the probe runs as uid 65532) is
/// not changed: a private `driftprobe-<euid>` directory inside it is used.
/// The default dir is ours: if another user owns it, driftprobe refuses; if
/// its mode is too open, it is set back to 0700.
pub struct StateDir {
    /// The directory actually used, for messages.
    path: PathBuf,
    /// `None` when [`StateDir::existing`] found no state dir: no state yet.
    fd: Option<OwnedFd>,
    /// Why another user could rename or remove the directory (and with it
    /// the drift record), if one can: see [`rename_exposure`].
    exposure: Option<String>,
}

/// Why `dir`, an entry of `parent` (mode `mode`, owner `owner`), could be
/// renamed or removed by another user: a parent that others may write and
/// that is not sticky (an emptyDir is 0777), or one another non-root user
/// owns. Such a user can move our directory away before every probe, so
/// the drift record vanishes and the grace window never ends. `None` when
/// only we (and root) can.
pub fn rename_exposure(
    dir: &Path,
    parent: &Path,
    mode: u32,
    owner: u32,
    euid: u32,
) -> Option<String> {
    let sticky = mode & 0o1000 != 0;
    let who = if mode & 0o002 != 0 && !sticky {
        "anyone"
    } else if mode & 0o020 != 0 && !sticky {
        "its group"
    } else if owner != euid && owner != 0 && mode & 0o200 != 0 {
        "its owner"
    } else {
        return None;
    };
    Some(format!(
        "the state dir {} can be renamed or removed by another user: {} is writable by {who} (mode {:o}, owner uid \
         {owner}){}, so the drift record could vanish before every probe; use a dir only this uid can write in, or \
         a sticky one such as /dev/shm (--state-dir /dev/shm/driftprobe)",
        dir.display(),
        parent.display(),
        mode & 0o7777,
        if sticky { "" } else { " and not sticky" },
    ))
}

/// [`rename_exposure`] of a directory used as it is: looked up in its
/// parent. A mount point cannot be renamed (EBUSY): never exposed.
fn direct_exposure(path: &Path, st: &nix::sys::stat::FileStat, euid: u32) -> Option<String> {
    let parent = path.parent()?;
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let meta = fs::metadata(parent).ok()?;
    if meta.dev() != st.st_dev {
        return None;
    }
    rename_exposure(path, parent, meta.mode(), meta.uid(), euid)
}

fn open_dir_at(at: Option<RawFd>, name: &Path) -> nix::Result<OwnedFd> {
    let fd = openat(
        at,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn errno_text(e: Errno) -> String {
    plain_io(&io::Error::from(e))
}

impl StateDir {
    /// Opens the state dir, creating it (mode 0700, with any missing
    /// parents) or the private subdirectory if needed.
    pub fn open(path: &Path) -> Result<StateDir, StateError> {
        Self::open_with(path, true, path == Path::new(DEFAULT_DIR))
    }

    /// Opens the state dir without creating or changing anything (for
    /// `status`, which never writes). A missing dir is not an error: it
    /// holds no state yet, and [`StateDir::peek`] says so.
    pub fn existing(path: &Path) -> Result<StateDir, StateError> {
        Self::open_with(path, false, path == Path::new(DEFAULT_DIR))
    }

    /// `ours_alone`: the dir is driftprobe's own (the default), not one the
    /// user handed us that others may share.
    fn open_with(path: &Path, create: bool, ours_alone: bool) -> Result<StateDir, StateError> {
        let euid = nix::unistd::geteuid().as_raw();
        let err = |p: &Path, reason: String| StateError::Dir {
            path: p.to_path_buf(),
            reason,
        };
        let absent = |p: &Path, exposure| StateDir {
            path: p.to_path_buf(),
            fd: None,
            exposure,
        };

        let fd = match open_dir_at(None, path) {
            Err(Errno::ENOENT) if create => {
                if let Err(e) = fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(path)
                {
                    // A concurrent probe may have made it: look again.
                    if fs::symlink_metadata(path).is_err() {
                        let hint = match e.raw_os_error() {
                            Some(nix::libc::EROFS) => {
                                " (readOnlyRootFilesystem? mount an emptyDir and pass --state-dir)"
                            }
                            Some(nix::libc::EACCES | nix::libc::EPERM) => NOT_WRITABLE_HINT,
                            _ => "",
                        };
                        return Err(err(
                            path,
                            format!("cannot create it: {}{hint}", plain_io(&e)),
                        ));
                    }
                }
                open_dir_at(None, path)
            }
            r => r,
        };
        let fd = match fd {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(absent(path, None)),
            Err(e) => {
                return Err(err(
                    path,
                    describe_open_error(e, fs::symlink_metadata(path)),
                ))
            }
        };
        let st = fstat(fd.as_raw_fd()).map_err(|e| err(path, errno_text(e)))?;
        let owned = st.st_uid == euid;
        if ours_alone {
            if !owned {
                return Err(err(path, planted(st.st_uid)));
            }
            tighten(&fd, st.st_mode, create).map_err(|e| err(path, e))?;
            return Ok(StateDir {
                path: path.to_path_buf(),
                fd: Some(fd),
                exposure: direct_exposure(path, &st, euid),
            });
        }
        if owned && st.st_mode & 0o022 == 0 {
            return Ok(StateDir {
                path: path.to_path_buf(),
                fd: Some(fd),
                exposure: direct_exposure(path, &st, euid),
            });
        }

        // Not ours alone: use (or make) a private directory inside it.
        let name = format!("driftprobe-{euid}");
        let sub = path.join(&name);
        let exposure = rename_exposure(&sub, path, st.st_mode, st.st_uid, euid);
        let parent = fd.as_raw_fd();
        let opened = match open_dir_at(Some(parent), Path::new(&name)) {
            Err(Errno::ENOENT) if create => {
                match mkdirat(Some(parent), name.as_str(), Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(err(
                            &sub,
                            format!(
                                "cannot create it: {} ({} is not ours alone: owned by uid {}, mode {:o})",
                                errno_text(e),
                                path.display(),
                                st.st_uid,
                                st.st_mode & 0o7777
                            ),
                        ))
                    }
                }
                open_dir_at(Some(parent), Path::new(&name))
            }
            r => r,
        };
        let sub_fd = match opened {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(absent(&sub, exposure)),
            Err(e) => {
                let lstat = fstatat(Some(parent), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW);
                let reason = match lstat {
                    Ok(s) if s.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() => {
                        SYMLINK_REASON.to_string()
                    }
                    Ok(s) if s.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFDIR.bits() => {
                        "is not a directory".to_string()
                    }
                    _ => errno_text(e),
                };
                return Err(err(&sub, reason));
            }
        };
        let sst = fstat(sub_fd.as_raw_fd()).map_err(|e| err(&sub, errno_text(e)))?;
        if sst.st_uid != euid {
            return Err(err(&sub, planted(sst.st_uid)));
        }
        tighten(&sub_fd, sst.st_mode, create).map_err(|e| err(&sub, e))?;
        Ok(StateDir {
            path: sub,
            fd: Some(sub_fd),
            exposure,
        })
    }

    /// Why another user could rename or remove this directory, if one can.
    pub fn exposure(&self) -> Option<&str> {
        self.exposure.as_deref()
    }

    /// The directory actually used (maybe the private `driftprobe-<euid>`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state file's path, for messages (files are opened through the
    /// directory's descriptor, never by this path).
    pub fn file(&self, key: &str) -> PathBuf {
        self.path.join(format!("{key}.json"))
    }

    fn fd(&self) -> Result<&OwnedFd, StateError> {
        self.fd.as_ref().ok_or_else(|| StateError::Dir {
            path: self.path.clone(),
            reason: "does not exist".into(),
        })
    }

    /// Takes the exclusive lock for `key`, waiting at most `timeout`.
    pub fn lock(&self, key: &str, timeout: Duration) -> Result<Locked, StateError> {
        self.lock_file(&format!("{key}.lock"), &format!("{key}.json"), timeout)
    }

    /// Takes the exclusive lock `lock_name` for the file `name` in this
    /// dir, waiting at most `timeout`.
    pub fn lock_file(
        &self,
        lock_name: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Locked, StateError> {
        let dir = self.fd()?;
        let lock_path = self.path.join(lock_name);
        let open = |flags| {
            openat(
                Some(dir.as_raw_fd()),
                lock_name,
                flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        };
        // A state dir that went read-only (or full of inodes) after the
        // baseline was recorded: an existing lock file still locks when
        // opened read-only, and the probe judges by the recorded state
        // even though it cannot save (see `Locked::save`'s callers).
        let raw = match open(OFlag::O_RDWR | OFlag::O_CREAT) {
            Err(e @ (Errno::EROFS | Errno::EACCES | Errno::ENOSPC | Errno::EDQUOT)) => {
                open(OFlag::O_RDONLY).map_err(|_| io_err(&lock_path, &io::Error::from(e)))
            }
            r => r.map_err(|e| io_err(&lock_path, &io::Error::from(e))),
        }?;
        // SAFETY: openat just returned this descriptor; nothing else owns it.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        let start = Instant::now();
        let flock = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(guard) => break guard,
                Err((f, Errno::EWOULDBLOCK)) | Err((f, Errno::EINTR)) => {
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
        let dir = dir.try_clone().map_err(|e| io_err(&self.path, &e))?;
        Ok(Locked {
            _lock: flock,
            dir,
            path: self.path.join(name),
            name: name.to_string(),
            tmp: format!(".{name}.tmp"),
        })
    }

    /// Reads the state without the lock (atomic renames make this safe),
    /// if it is at most `max_bytes` ([`max_state_bytes`]).
    pub fn peek(&self, key: &str, max_bytes: u64) -> Loaded {
        match &self.fd {
            Some(dir) => load(dir, &format!("{key}.json"), max_bytes),
            None => Loaded::Absent,
        }
    }

    /// Reads the file `name` without its lock (see [`Locked::read_bytes`]).
    pub fn peek_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        match &self.fd {
            Some(dir) => read_bytes(dir, name, SHARED_MAX_BYTES),
            None => Ok(None),
        }
    }
}

const SYMLINK_REASON: &str =
    "is a symlink; refusing to follow it (point --state-dir at a real directory)";

fn planted(uid: u32) -> String {
    format!("owned by uid {uid}, not us; refusing (another user may have planted it)")
}

/// What to do about a state dir this user cannot use.
const NOT_WRITABLE_HINT: &str =
    " (not usable by this user: mount an emptyDir and pass --state-dir)";

/// Why a state dir could not be opened with O_DIRECTORY|O_NOFOLLOW.
fn describe_open_error(e: Errno, lstat: io::Result<fs::Metadata>) -> String {
    match (e, lstat) {
        (Errno::ELOOP | Errno::ENOTDIR, Ok(m)) if m.file_type().is_symlink() => {
            SYMLINK_REASON.into()
        }
        (Errno::ENOTDIR, Ok(m)) if !m.is_dir() => "is not a directory".into(),
        (Errno::EACCES, _) => format!("{}{NOT_WRITABLE_HINT}", errno_text(e)),
        _ => errno_text(e),
    }
}

/// Our own directory back to 0700 when group or others may use it (only
/// when allowed to write: `status` changes nothing).
fn tighten(fd: &OwnedFd, mode: u32, allowed: bool) -> Result<(), String> {
    if allowed && mode & 0o077 != 0 {
        fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(0o700))
            .map_err(|e| format!("cannot set its mode to 0700: {}", errno_text(e)))?;
    }
    Ok(())
}

/// The state file while holding its lock: only a `Locked` can save.
pub struct Locked {
    _lock: Flock<File>,
    /// The state dir (its own descriptor, so a `Locked` outlives nothing).
    dir: OwnedFd,
    /// For messages.
    path: PathBuf,
    name: String,
    tmp: String,
}

impl Locked {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state, if it is at most `max_bytes` ([`max_state_bytes`]).
    pub fn load(&self, max_bytes: u64) -> Loaded {
        load(&self.dir, &self.name, max_bytes)
    }

    /// The file as it is now, opened for writing in place (never through a
    /// symlink).
    pub fn open_written(&self) -> Result<File, StateError> {
        let raw = openat(
            Some(self.dir.as_raw_fd()),
            self.name.as_str(),
            OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(&self.path, &io::Error::from(e)))?;
        // SAFETY: openat just returned this descriptor; nothing else owns it.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// The file's bytes: `None` when there is none yet, `Err` why one that
    /// is there cannot be used (symlink, not ours, writable by others, too
    /// large).
    pub fn read_bytes(&self) -> Result<Option<Vec<u8>>, String> {
        read_bytes(&self.dir, &self.name, SHARED_MAX_BYTES)
    }

    /// Atomically replaces the state file: temp file (0600, never through a
    /// symlink), fsync, rename, fsync the directory; all relative to the
    /// directory's descriptor.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        // Compact: only programs read it (`status` shows it to people).
        let json = json::compact(&state.to_json());
        self.write_bytes(json.as_bytes(), true)
    }

    /// Atomically replaces the file with `bytes` and a newline, as
    /// [`Locked::save`]; `sync` false leaves out the fsyncs (for a file that
    /// only matters within one boot: a process killed mid-way loses
    /// nothing that was renamed into place).
    pub fn write_bytes(&self, bytes: &[u8], sync: bool) -> Result<(), StateError> {
        let dir = self.dir.as_raw_fd();
        let tmp_path = self.path.with_file_name(&self.tmp);
        let fail = |p: &Path, e: Errno| io_err(p, &io::Error::from(e));
        // A probe killed mid-save (the kubelet SIGKILLs on timeout) may
        // have left the temp file; we hold the lock, so it is ours to drop.
        match unlinkat(Some(dir), self.tmp.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail(&tmp_path, e)),
        }
        let raw = openat(
            Some(dir),
            self.tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| fail(&tmp_path, e))?;
        // SAFETY: openat just returned this descriptor; nothing else owns it.
        let mut f = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        // A temp file that cannot be completed (ENOSPC) goes at once: left
        // in place it would hold space on a full disk until the next save.
        let drop_tmp = || {
            let _ = unlinkat(Some(dir), self.tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        };
        let written = f
            .write_all(bytes)
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| if sync { f.sync_all() } else { Ok(()) });
        drop(f);
        written.map_err(|e| {
            drop_tmp();
            io_err(&tmp_path, &e)
        })?;
        renameat(Some(dir), self.tmp.as_str(), Some(dir), self.name.as_str()).map_err(|e| {
            drop_tmp();
            fail(&self.path, e)
        })?;
        if sync {
            let _ = nix::unistd::fsync(dir);
        }
        Ok(())
    }
}

/// Loads `name` from the state dir `dir`, never through a symlink.
fn load(dir: &OwnedFd, name: &str, max_bytes: u64) -> Loaded {
    match read_bytes(dir, name, max_bytes) {
        Ok(None) => Loaded::Absent,
        Ok(Some(bytes)) => parse(&bytes),
        Err(why) => Loaded::Unusable(why),
    }
}

/// Reads `name` from the state dir `dir`, never through a symlink, only if
/// it is a regular file of ours that others cannot write.
fn read_bytes(dir: &OwnedFd, name: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, String> {
    let raw = match openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => return Err("the state file is a symlink; ignored".into()),
        Err(e) => return Err(format!("cannot read the state file: {}", errno_text(e))),
    };
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Err(format!("cannot read the state file: {}", plain_io(&e))),
    };
    if !meta.is_file() {
        return Err("the state file is not a regular file; ignored".into());
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(format!(
            "the state file belongs to uid {}, not to us; ignored",
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err("the state file is writable by others; ignored".into());
    }
    // Room for the whole file and one byte more (to see it end): the
    // `take` wrapper hides the size, and growing from 32 bytes up costs
    // a read and a copy per doubling.
    if meta.len() > max_bytes {
        return Err("the state file is too large to be ours; ignored".into());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    if let Err(e) = file
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
    {
        return Err(format!("cannot read the state file: {}", plain_io(&e)));
    }
    if bytes.len() as u64 > max_bytes {
        return Err("the state file is too large to be ours; ignored".into());
    }
    Ok(Some(bytes))
}

/// Every key of the state file, the ones repeated per file first: the
/// parser borrows these instead of allocating each (see `json::parse_known`).
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "path", "sha256", "size", "dev", "ino", "mtime_ns", "ctime_ns",
    "format", "version", "container", "boot_id", "pid1_start_ticks", "paths",
    "baseline", "digest", "recorded_at", "source", "files", "drift", "since",
    "since_boot", "unproven", "held", "cache", "validations", "ok", "at",
    "output", "transient", "command", "reloads", "signal", "pid", "target",
    "from_digest", "to_digest", "warnings", "warnings_pending", "env_drift",
    "name", "validating", "until", "until_boot", "pgid", "leader_start",
    "owner", "owner_start", "outcome", "given_seq", "runtime_checked",
    "mirrored", "probe", "class", "problems", "failed",
];

/// Parses state bytes, telling corrupt, foreign and newer files apart.
pub fn parse(bytes: &[u8]) -> Loaded {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Loaded::Unusable("the state file is empty (interrupted write?)".into());
    }
    let corrupt =
        |e: json::Error| Loaded::Unusable(format!("the state file is corrupt ({e}); ignored"));
    let doc = match json::parse_known(bytes, KEYS) {
        Ok(v @ Value::Obj(_)) => v,
        Ok(_) => return corrupt(json::Error("not an object".into())),
        Err(e) => return corrupt(e),
    };
    match doc.get("format") {
        Ok(Some(Value::Str(f))) if f == FORMAT => {}
        Ok(None | Some(Value::Str(_))) => {
            return Loaded::Unusable("the state file was not written by driftprobe; ignored".into())
        }
        Ok(Some(_)) => return corrupt(json::Error("field `format`: expected a string".into())),
        Err(e) => return corrupt(e),
    }
    match doc.get("version") {
        Ok(Some(Value::Int(v))) if *v == i128::from(VERSION) => {}
        Ok(Some(Value::Int(v))) if *v > i128::from(VERSION) => {
            return Loaded::Unusable(format!(
                "the state file has version {v}, newer than this driftprobe's {VERSION}; ignored"
            ))
        }
        Ok(None | Some(Value::Int(_))) => {
            return Loaded::Unusable("the state file has no usable version; ignored".into())
        }
        Ok(Some(_)) => return corrupt(json::Error("field `version`: expected an integer".into())),
        Err(e) => return corrupt(e),
    }
    match State::from_json(&doc) {
        Ok(s) => Loaded::Found(Box::new(s)),
        Err(e) => corrupt(e),
    }
}

// The state file's JSON: field names and order as serde wrote them for
// version 1, optional fields left out when empty as before.

/// `key: value` only when `keep`.
fn push_if(pairs: &mut Vec<(&'static str, Value)>, keep: bool, key: &'static str, v: Value) {
    if keep {
        pairs.push((key, v));
    }
}

/// A list of `f(item)`.
fn list<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    Value::Arr(items.iter().map(f).collect())
}

fn string_list(v: &Value, name: &str) -> json::Result<Vec<String>> {
    v.list(name, Value::str)
}

/// `digest --json` and the baseline's manifest.
pub fn entry_json(e: &Entry) -> Value {
    obj(vec![
        ("path", (&e.path).into()),
        ("sha256", (&e.sha256).into()),
        ("size", e.size.into()),
    ])
}

fn entry_from(v: &Value, _: &str) -> json::Result<Entry> {
    Ok(Entry {
        path: v.req("path")?.str("path")?,
        sha256: v.req("sha256")?.str("sha256")?,
        size: v.req("size")?.u64("size")?,
    })
}

pub fn skipped_json(k: &crate::digest::Skipped) -> Value {
    obj(vec![
        ("path", (&k.path).into()),
        ("reason", (&k.reason).into()),
    ])
}

fn cached_json(c: &CachedFile) -> Value {
    obj(vec![
        ("path", (&c.path).into()),
        ("dev", c.dev.into()),
        ("ino", c.ino.into()),
        ("size", c.size.into()),
        ("mtime_ns", c.mtime_ns.into()),
        ("ctime_ns", c.ctime_ns.into()),
        ("sha256", (&c.sha256).into()),
    ])
}

fn cached_from(v: &Value, _: &str) -> json::Result<CachedFile> {
    Ok(CachedFile {
        path: v.req("path")?.str("path")?,
        dev: v.req("dev")?.u64("dev")?,
        ino: v.req("ino")?.u64("ino")?,
        size: v.req("size")?.u64("size")?,
        mtime_ns: v.req("mtime_ns")?.i64("mtime_ns")?,
        ctime_ns: v.req("ctime_ns")?.i64("ctime_ns")?,
        sha256: v.req("sha256")?.str("sha256")?,
    })
}

impl ContainerId {
    fn to_json(&self) -> Value {
        obj(vec![
            ("boot_id", (&self.boot_id).into()),
            ("pid1_start_ticks", self.init_start_ticks.into()),
        ])
    }

    fn from_json(v: &Value, _: &str) -> json::Result<ContainerId> {
        Ok(ContainerId {
            boot_id: v.req("boot_id")?.str("boot_id")?,
            init_start_ticks: v.req("pid1_start_ticks")?.u64("pid1_start_ticks")?,
        })
    }
}

impl Baseline {
    fn to_json(&self) -> Value {
        obj(vec![
            ("digest", (&self.digest).into()),
            ("recorded_at", self.recorded_at.into()),
            ("source", (&self.source).into()),
            ("files", list(&self.files, entry_json)),
        ])
    }

    fn from_json(v: &Value, _: &str) -> json::Result<Baseline> {
        Ok(Baseline {
            digest: v.req("digest")?.str("digest")?,
            recorded_at: v.req("recorded_at")?.i64("recorded_at")?,
            source: v.req("source")?.str("source")?,
            files: v.req("files")?.list("files", entry_from)?,
        })
    }
}

impl Drift {
    fn to_json(&self) -> Value {
        let mut p = vec![("since", self.since.into())];
        push_if(
            &mut p,
            self.since_boot.is_some(),
            "since_boot",
            self.since_boot.into(),
        );
        push_if(
            &mut p,
            self.unproven.is_some(),
            "unproven",
            self.unproven.as_ref().into(),
        );
        push_if(&mut p, self.held, "held", true.into());
        obj(p)
    }

    fn from_json(v: &Value, _: &str) -> json::Result<Drift> {
        Ok(Drift {
            since: v.req("since")?.i64("since")?,
            since_boot: v.opt("since_boot", Value::i64)?,
            unproven: v.opt("unproven", Value::str)?,
            held: or_default(v, "held", Value::bool)?,
        })
    }
}

impl Validation {
    fn to_json(&self) -> Value {
        let mut p = vec![
            ("ok", self.ok.into()),
            ("at", self.at.into()),
            ("output", (&self.output).into()),
        ];
        push_if(
            &mut p,
            !self.outcome.is_empty(),
            "outcome",
            (&self.outcome).into(),
        );
        push_if(&mut p, self.transient, "transient", true.into());
        p.push(("command", (&self.command).into()));
        obj(p)
    }

    fn from_json(v: &Value, _: &str) -> json::Result<Validation> {
        Ok(Validation {
            ok: v.req("ok")?.bool("ok")?,
            at: v.req("at")?.i64("at")?,
            output: v.req("output")?.str("output")?,
            outcome: or_default(v, "outcome", Value::str)?,
            transient: or_default(v, "transient", Value::bool)?,
            command: or_default(v, "command", Value::str)?,
        })
    }
}

/// A `(digest, validation)` pair, written as a two-element list.
fn validation_pair_from(v: &Value, name: &str) -> json::Result<(String, Validation)> {
    match v {
        Value::Arr(pair) if pair.len() == 2 => {
            Ok((pair[0].str(name)?, Validation::from_json(&pair[1], name)?))
        }
        _ => Err(json::Error(format!(
            "field `{name}`: expected [digest, result]"
        ))),
    }
}

impl Reload {
    fn to_json(&self) -> Value {
        self.to_json_at(self.at.into())
    }

    /// The record with `at` as given: ms in the state file, an RFC 3339
    /// time in `status --json`.
    pub fn to_json_at(&self, at: Value) -> Value {
        obj(vec![
            ("at", at),
            ("signal", (&self.signal).into()),
            ("pid", self.pid.into()),
            ("target", (&self.target).into()),
            ("from_digest", (&self.from_digest).into()),
            ("to_digest", (&self.to_digest).into()),
        ])
    }

    fn from_json(v: &Value, _: &str) -> json::Result<Reload> {
        Ok(Reload {
            at: v.req("at")?.i64("at")?,
            signal: v.req("signal")?.str("signal")?,
            pid: v.req("pid")?.i32("pid")?,
            target: v.req("target")?.str("target")?,
            from_digest: v.req("from_digest")?.str("from_digest")?,
            to_digest: v.req("to_digest")?.str("to_digest")?,
        })
    }
}

impl EnvDrift {
    fn to_json(&self) -> Value {
        let mut p = vec![("name", (&self.name).into()), ("since", self.since.into())];
        push_if(
            &mut p,
            self.since_boot.is_some(),
            "since_boot",
            self.since_boot.into(),
        );
        obj(p)
    }

    fn from_json(v: &Value, _: &str) -> json::Result<EnvDrift> {
        Ok(EnvDrift {
            name: v.req("name")?.str("name")?,
            since: v.req("since")?.i64("since")?,
            since_boot: v.opt("since_boot", Value::i64)?,
        })
    }
}

impl Mirrored {
    fn to_json(&self) -> Value {
        let mut p = vec![("probe", (&self.probe).into())];
        if let Some(c) = &self.class {
            p.push(("class", c.into()));
        }
        push_if(
            &mut p,
            !self.problems.is_empty(),
            "problems",
            strings(&self.problems),
        );
        if let Some(f) = &self.failed {
            p.push(("failed", f.into()));
        }
        obj(p)
    }

    fn from_json(v: &Value, _: &str) -> json::Result<Mirrored> {
        Ok(Mirrored {
            probe: v.req("probe")?.str("probe")?,
            class: v.opt("class", Value::str)?,
            problems: or_default(v, "problems", string_list)?,
            failed: v.opt("failed", Value::str)?,
        })
    }
}

impl Validating {
    fn to_json(&self) -> Value {
        let mut p = vec![
            ("digest", (&self.digest).into()),
            ("until", self.until.into()),
        ];
        push_if(
            &mut p,
            self.until_boot.is_some(),
            "until_boot",
            self.until_boot.into(),
        );
        push_if(&mut p, self.pgid.is_some(), "pgid", self.pgid.into());
        push_if(
            &mut p,
            self.leader_start.is_some(),
            "leader_start",
            self.leader_start.into(),
        );
        push_if(&mut p, self.owner.is_some(), "owner", self.owner.into());
        push_if(
            &mut p,
            self.owner_start.is_some(),
            "owner_start",
            self.owner_start.into(),
        );
        obj(p)
    }

    fn from_json(v: &Value, _: &str) -> json::Result<Validating> {
        Ok(Validating {
            digest: v.req("digest")?.str("digest")?,
            until: v.req("until")?.i64("until")?,
            until_boot: v.opt("until_boot", Value::i64)?,
            pgid: v.opt("pgid", Value::i32)?,
            leader_start: v.opt("leader_start", Value::u64)?,
            owner: v.opt("owner", Value::i32)?,
            owner_start: v.opt("owner_start", Value::u64)?,
        })
    }
}

impl State {
    /// The state file's document.
    pub fn to_json(&self) -> Value {
        let mut p = vec![
            ("format", (&self.format).into()),
            ("version", self.version.into()),
            ("container", self.container.to_json()),
            ("paths", strings(&self.paths)),
            (
                "baseline",
                self.baseline
                    .as_ref()
                    .map_or(Value::Null, Baseline::to_json),
            ),
            (
                "drift",
                self.drift.as_ref().map_or(Value::Null, Drift::to_json),
            ),
            ("cache", list(&self.cache, cached_json)),
            (
                "validations",
                list(&self.validations, |(d, v)| {
                    Value::Arr(vec![d.into(), v.to_json()])
                }),
            ),
            ("reloads", list(&self.reloads, Reload::to_json)),
            ("warnings", strings(&self.warnings)),
        ];
        push_if(
            &mut p,
            self.warnings_pending,
            "warnings_pending",
            true.into(),
        );
        push_if(
            &mut p,
            !self.env_drift.is_empty(),
            "env_drift",
            list(&self.env_drift, EnvDrift::to_json),
        );
        if let Some(v) = &self.validating {
            p.push(("validating", v.to_json()));
        }
        push_if(
            &mut p,
            self.given_seq > 0,
            "given_seq",
            self.given_seq.into(),
        );
        push_if(&mut p, self.runtime_checked, "runtime_checked", true.into());
        push_if(
            &mut p,
            !self.mirrored.is_empty(),
            "mirrored",
            list(&self.mirrored, Mirrored::to_json),
        );
        obj(p)
    }

    /// Reads a state document (format and version already checked).
    pub fn from_json(v: &Value) -> json::Result<State> {
        Ok(State {
            format: v.req("format")?.str("format")?,
            version: v.req("version")?.u32("version")?,
            container: ContainerId::from_json(v.req("container")?, "container")?,
            paths: string_list(v.req("paths")?, "paths")?,
            baseline: v.opt("baseline", Baseline::from_json)?,
            drift: v.opt("drift", Drift::from_json)?,
            cache: or_default(v, "cache", |c, n| c.list(n, cached_from))?,
            validations: or_default(v, "validations", |c, n| c.list(n, validation_pair_from))?,
            reloads: or_default(v, "reloads", |c, n| c.list(n, Reload::from_json))?,
            warnings: or_default(v, "warnings", string_list)?,
            warnings_pending: or_default(v, "warnings_pending", Value::bool)?,
            env_drift: or_default(v, "env_drift", |c, n| c.list(n, EnvDrift::from_json))?,
            validating: v.opt("validating", Validating::from_json)?,
            given_seq: or_default(v, "given_seq", Value::u64)?,
            runtime_checked: or_default(v, "runtime_checked", Value::bool)?,
            mirrored: or_default(v, "mirrored", |c, n| c.list(n, Mirrored::from_json))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::DEFAULT_BUDGETS;

    /// Ample for the small states of these tests.
    const LIMIT: u64 = 1 << 20;

    /// The biggest state a walk within `budgets` leads to: every file at
    /// its widest numbers, names whose JSON is twice their length, both
    /// lists full, the validator outputs and reloads at their caps.
    fn largest_state(budgets: &Budgets) -> State {
        let n = budgets.max_entries;
        let name_len = (budgets.max_name_bytes / n) as usize;
        let mut st = sample();
        let name = |i: u64| {
            let mut s = format!("{i}");
            while s.len() < name_len {
                s.push(if s.len() % 2 == 0 { '"' } else { '\\' });
            }
            s
        };
        let sha = "f".repeat(64);
        let files: Vec<Entry> = (0..n)
            .map(|i| Entry {
                path: name(i),
                sha256: sha.clone(),
                size: u64::MAX,
            })
            .collect();
        st.cache = (0..n)
            .map(|i| CachedFile {
                path: name(i),
                dev: u64::MAX,
                ino: u64::MAX,
                size: u64::MAX,
                mtime_ns: i64::MIN,
                ctime_ns: i64::MIN,
                sha256: sha.clone(),
            })
            .collect();
        st.baseline = Some(Baseline {
            digest: sha.clone(),
            recorded_at: i64::MIN,
            source: "init --force".into(),
            files,
        });
        st.validations = (0..16)
            .map(|i| {
                let v = Validation {
                    ok: false,
                    at: i64::MIN,
                    output: "\u{1}".repeat(16 * 1024),
                    outcome: "\u{1}".repeat(8 * 1024),
                    transient: true,
                    command: "x".repeat(4096),
                };
                (format!("{sha}{i}"), v)
            })
            .collect();
        st.reloads = (0..20)
            .map(|_| Reload {
                at: i64::MIN,
                signal: "SIGRTMIN+15".into(),
                pid: i32::MIN,
                target: "x".repeat(4096),
                from_digest: sha.clone(),
                to_digest: sha.clone(),
            })
            .collect();
        st
    }

    #[test]
    fn what_a_walk_within_the_budgets_writes_can_be_read_back() {
        let small = Budgets {
            max_entries: 100,
            max_name_bytes: 100 * 4000,
            ..DEFAULT_BUDGETS
        };
        for budgets in [DEFAULT_BUDGETS, small] {
            let st = largest_state(&budgets);
            let text = json::compact(&st.to_json());
            let limit = max_state_bytes(&budgets);
            assert!(
                text.len() as u64 <= limit,
                "{} bytes > {limit} for {budgets:?}",
                text.len()
            );
        }
        // And not much more: the worst case fills most of the limit.
        let st = largest_state(&DEFAULT_BUDGETS);
        let text = json::compact(&st.to_json()).len() as u64;
        let limit = max_state_bytes(&DEFAULT_BUDGETS);
        assert!(text > limit / 2, "{text} of {limit}");
    }

    #[test]
    fn a_state_file_over_the_limit_is_not_read() {
        let d = tempfile::tempdir().unwrap();
        let dir = StateDir::open(&d.path().join("state")).unwrap();
        let locked = dir.lock("k", Duration::from_secs(1)).unwrap();
        locked.save(&sample()).unwrap();
        let size = fs::metadata(locked.path()).unwrap().len();
        assert!(matches!(locked.load(size), Loaded::Found(_)));
        match locked.load(size - 1) {
            Loaded::Unusable(why) => assert!(why.contains("too large"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(dir.peek("k", size), Loaded::Found(_)));
    }

    fn sample() -> State {
        State::new(
            ContainerId {
                boot_id: "b".into(),
                init_start_ticks: 7,
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
        assert!(matches!(locked.load(LIMIT), Loaded::Absent));
        locked.save(&sample()).unwrap();
        match locked.load(LIMIT) {
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

    fn mode_of(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn chown(p: &Path, uid: u32) {
        std::os::unix::fs::chown(p, Some(uid), None).unwrap();
    }

    fn euid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    /// A uid that is not ours.
    fn other_uid() -> u32 {
        if euid() == 4242 {
            4243
        } else {
            4242
        }
    }

    fn can_chown() -> bool {
        euid() == 0
    }

    #[test]
    fn a_shared_dir_gets_a_private_subdir_and_is_left_alone() {
        if !can_chown() {
            eprintln!("skipped: needs root to chown");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let shared = d.path().join("state");
        fs::create_dir(&shared).unwrap();
        chown(&shared, 0);
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        // An emptyDir: root's, 0777. Ours only if we are root; then it is
        // still shared (world-writable), so not used as is either.
        let dir = StateDir::open(&shared).unwrap();
        let private = shared.join(format!("driftprobe-{}", euid()));
        assert_eq!(dir.path(), private);
        assert_eq!(dir.file("k"), private.join("k.json"));
        assert_eq!(mode_of(&shared), 0o777, "the user's dir is not changed");
        assert_eq!(mode_of(&private), 0o700);
        dir.lock("k", Duration::from_secs(1))
            .unwrap()
            .save(&sample())
            .unwrap();
        assert!(private.join("k.json").is_file());
        // Owned by someone else: same.
        chown(&shared, other_uid());
        let again = StateDir::open(&shared).unwrap();
        assert_eq!(again.path(), private);
        assert!(matches!(again.peek("k", LIMIT), Loaded::Found(_)));
        // A read-only look finds it too.
        let ro = StateDir::existing(&shared).unwrap();
        assert!(matches!(ro.peek("k", LIMIT), Loaded::Found(_)));
    }

    #[test]
    fn a_planted_private_subdir_is_refused() {
        if !can_chown() {
            eprintln!("skipped: needs root to chown");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let shared = d.path().join("state");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let private = shared.join(format!("driftprobe-{}", euid()));
        fs::create_dir(&private).unwrap();
        chown(&private, other_uid());
        let err = StateDir::open(&shared).err().unwrap().to_string();
        assert!(
            err.contains(&format!("owned by uid {}, not us; refusing", other_uid())),
            "{err}"
        );
        assert!(err.contains(&private.display().to_string()), "{err}");
        fs::remove_dir(&private).unwrap();
        std::os::unix::fs::symlink(d.path(), &private).unwrap();
        let err = StateDir::open(&shared).err().unwrap().to_string();
        assert!(err.contains("symlink"), "{err}");
    }

    #[test]
    fn the_default_dir_must_be_ours() {
        let d = tempfile::tempdir().unwrap();
        let own = d.path().join("driftprobe");
        fs::create_dir(&own).unwrap();
        fs::set_permissions(&own, fs::Permissions::from_mode(0o777)).unwrap();
        // Ours but too open: `status` leaves it, a probe sets it to 0700.
        let ro = StateDir::open_with(&own, false, true).unwrap();
        assert_eq!(ro.path(), own);
        assert_eq!(mode_of(&own), 0o777);
        let dir = StateDir::open_with(&own, true, true).unwrap();
        assert_eq!(dir.path(), own);
        assert_eq!(mode_of(&own), 0o700);
        if !can_chown() {
            return;
        }
        chown(&own, other_uid());
        let err = StateDir::open_with(&own, true, true)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            format!(
                "state dir {}: owned by uid {}, not us; refusing (another user may have planted it)",
                own.display(),
                other_uid()
            )
        );
        assert_eq!(fs::read_dir(&own).unwrap().count(), 0, "nothing made in it");
    }

    #[test]
    fn existing_creates_nothing() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("a/b");
        let dir = StateDir::existing(&missing).unwrap();
        assert!(matches!(dir.peek("k", LIMIT), Loaded::Absent));
        assert_eq!(dir.file("k"), missing.join("k.json"));
        assert!(dir.lock("k", Duration::from_millis(10)).is_err());
        assert!(!d.path().join("a").exists());
        // A shared dir without our private subdir: nothing made either.
        let shared = d.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let dir = StateDir::existing(&shared).unwrap();
        assert!(matches!(dir.peek("k", LIMIT), Loaded::Absent));
        assert_eq!(fs::read_dir(&shared).unwrap().count(), 0);
        // A file is not a state dir.
        fs::write(d.path().join("f"), "").unwrap();
        let err = StateDir::existing(&d.path().join("f")).err().unwrap();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn files_are_reached_through_the_opened_dir() {
        // Renaming the dir away and planting a symlink in its place does
        // not redirect an open StateDir.
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state");
        let dir = StateDir::open(&path).unwrap();
        fs::rename(&path, d.path().join("moved")).unwrap();
        fs::create_dir(d.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), &path).unwrap();
        dir.lock("k", Duration::from_secs(1))
            .unwrap()
            .save(&sample())
            .unwrap();
        assert!(d.path().join("moved/k.json").is_file());
        assert_eq!(fs::read_dir(d.path().join("elsewhere")).unwrap().count(), 0);
    }

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(parse_stat_field(stat, 1), Some("42"));
        assert_eq!(parse_stat_field(stat, 2), Some("a) b (c)"));
        assert_eq!(parse_stat_field(stat, 3), Some("S"));
        assert_eq!(parse_stat_field(stat, 4), Some("1"));
        assert_eq!(parse_stat_field(stat, 22), Some("12345"));
        assert_eq!(parse_stat_field(stat, 40), None);
        assert_eq!(parse_stat_field("garbage", 3), None);
    }

    /// A fake /proc: `procs` are (pid, mount ns, state, starttime).
    fn fake_proc(me: i32, procs: &[(i32, &str, &str, u64)]) -> (tempfile::TempDir, Proc) {
        let d = tempfile::tempdir().unwrap();
        for (pid, ns, state, start) in procs {
            let p = d.path().join(pid.to_string());
            fs::create_dir_all(p.join("ns")).unwrap();
            std::os::unix::fs::symlink(format!("mnt:[{ns}]"), p.join("ns/mnt")).unwrap();
            fs::write(p.join("cgroup"), format!("0::/pod/{ns}\n")).unwrap();
            fs::write(
                p.join("stat"),
                format!("{pid} (x y) {state} 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0\n"),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink(me.to_string(), d.path().join("self")).unwrap();
        let proc = Proc {
            root: d.path().to_path_buf(),
        };
        (d, proc)
    }

    #[test]
    fn init_pid_is_pid1_in_our_mount_namespace() {
        let (_d, p) = fake_proc(
            9,
            &[(1, "A", "S", 100), (5, "A", "S", 50), (9, "A", "R", 900)],
        );
        assert_eq!(p.init_pid(), 1);
    }

    #[test]
    fn init_pid_with_a_shared_process_namespace() {
        // PID 1 is pause (ns P); our container (ns A) has an entrypoint 7,
        // an older zombie 6, children, and us (9); another container (B)
        // started earlier.
        let (_d, p) = fake_proc(
            9,
            &[
                (1, "P", "S", 10),
                (3, "B", "S", 20),
                (6, "A", "Z", 30),
                (7, "A", "S", 40),
                (8, "A", "S", 40),
                (12, "A", "S", 41),
                (9, "A", "R", 35),
            ],
        );
        assert_eq!(p.init_pid(), 7);
        assert_eq!(p.start_ticks(p.init_pid()).unwrap(), 40);
        assert_eq!(p.stat_field(7, 2).unwrap(), "x y");
        // Nobody else in our namespace: PID 1 after all.
        let (_d, p) = fake_proc(9, &[(1, "P", "S", 10), (9, "A", "R", 35)]);
        assert_eq!(p.init_pid(), 1);
        // Namespaces unreadable: PID 1.
        let (d, p) = fake_proc(
            9,
            &[(1, "P", "S", 10), (7, "A", "S", 40), (9, "A", "R", 50)],
        );
        // pause's namespace link unreadable (another user): cgroups tell.
        fs::remove_file(d.path().join("1/ns/mnt")).unwrap();
        assert_eq!(p.init_pid(), 7);
        // Neither readable: PID 1.
        fs::remove_file(d.path().join("1/cgroup")).unwrap();
        assert_eq!(p.init_pid(), 1);
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
    fn reads_and_writes_version_1_files_as_serde_did() {
        // Written by driftprobe 0.1.0 with serde_json (init, a change, a
        // validated reload attempt).
        let old = include_str!("../tests/faults/fixtures/state-v1-serde.json");
        let Loaded::Found(st) = parse(old.as_bytes()) else {
            panic!("the serde-era file does not load");
        };
        assert_eq!(st.validations[0].1.command, "/bin/true");
        assert_eq!(st.drift.as_ref().map(|d| d.held), Some(false));
        // Every field kept, in serde's order: pretty-printed, it is the
        // same file byte for byte.
        assert_eq!(format!("{}\n", json::pretty(&st.to_json())), old);
        // What a save writes now (compact) is the same document without
        // the whitespace, which serde_json (older builds) reads too.
        let saved = json::compact(&st.to_json());
        assert!(!saved.contains('\n'));
        assert_eq!(json::parse(saved.as_bytes()), json::parse(old.as_bytes()));
        let serde: serde_json::Value = serde_json::from_str(&saved).unwrap();
        assert_eq!(
            serde,
            serde_json::from_str::<serde_json::Value>(old).unwrap()
        );
        // Every optional field set survives a round trip.
        let mut full = *st;
        full.drift = Some(Drift {
            since: -5,
            since_boot: Some(7),
            unproven: Some("no \"baseline\"\n".into()),
            held: true,
        });
        full.validations[0].1.transient = true;
        full.warnings_pending = true;
        full.env_drift = vec![EnvDrift {
            name: "A".into(),
            since: i64::MAX,
            since_boot: None,
        }];
        full.validating = Some(Validating {
            digest: "d".into(),
            until: 1,
            until_boot: Some(2),
            pgid: Some(-1),
            leader_start: Some(u64::MAX),
            owner: Some(7),
            owner_start: Some(42),
        });
        full.cache = vec![CachedFile {
            path: "p\u{1}".into(),
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: i64::MIN,
            ctime_ns: 5,
            sha256: "s".into(),
        }];
        full.reloads = vec![Reload {
            at: 1,
            signal: "SIGHUP".into(),
            pid: 1,
            target: "t".into(),
            from_digest: "a".into(),
            to_digest: "b".into(),
        }];
        let text = json::compact(&full.to_json());
        match parse(text.as_bytes()) {
            Loaded::Found(back) => assert_eq!(*back, full),
            other => panic!("{other:?}"),
        }
        // Every key it writes is one the parser borrows (KEYS).
        fn keys_known(v: &Value) {
            match v {
                Value::Obj(pairs) => pairs.iter().for_each(|(k, v)| {
                    assert!(KEYS.contains(&&**k), "{k} is not in KEYS");
                    keys_known(v);
                }),
                Value::Arr(items) => items.iter().for_each(keys_known),
                _ => {}
            }
        }
        keys_known(&full.to_json());
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
    fn a_parent_others_may_write_exposes_the_state_dir() {
        let d = Path::new("/e/driftprobe-7");
        let p = Path::new("/e");
        // emptyDir: root's, 0777, not sticky.
        let e = rename_exposure(d, p, 0o40777, 0, 7).unwrap();
        assert!(
            e.contains("writable by anyone (mode 777, owner uid 0) and not sticky"),
            "{e}"
        );
        assert!(rename_exposure(d, p, 0o40775, 0, 7)
            .unwrap()
            .contains("its group"));
        // Sticky (/tmp, /dev/shm), or only root or we can write: safe.
        assert_eq!(rename_exposure(d, p, 0o41777, 0, 7), None);
        assert_eq!(rename_exposure(d, p, 0o40755, 0, 7), None);
        assert_eq!(rename_exposure(d, p, 0o40700, 7, 7), None);
        // Another user's dir: its owner may rename, sticky or not.
        assert!(rename_exposure(d, p, 0o41777, 8, 7)
            .unwrap()
            .contains("its owner"));
    }

    #[test]
    fn reads_the_live_container_identity() {
        let p = Proc::default();
        let id = p.container().unwrap();
        assert!(!id.boot_id.is_empty());
        let started = p.init_started_at().unwrap();
        assert!(started <= crate::time::now());
        // The precise boot time agrees with /proc/stat's whole-second btime.
        let precise = boot_wall_time_ms().unwrap();
        let btime = p.btime_ms().unwrap();
        assert!((precise - btime).abs() < 2_000, "{precise} vs {btime}");
    }
}
