//! Recording the baseline explicitly: `init` (postStart hook), `run`
//! (wrapper that then execs the app), and `install` (the init-container
//! copy of this binary). Also the plumbing every state-using command
//! shares: resolving the watch set, identifying the container instance,
//! opening the state dir, taking a snapshot.

use crate::cli::{WatchArgs, WatchSet};
use crate::digest::{plain_io, CachedFile, Snapshot, Walker};
use crate::exit::Code;
use crate::state::{self, Baseline, ContainerId, Loaded, Proc, State, StateDir};
use crate::time::{self, Millis};
use crate::Report;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// How long `init`/`run`/`status` wait for a probe holding the lock.
const COMMAND_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a command could not go on.
#[derive(Debug)]
pub enum Failure {
    /// A bad value on the command line (exit 2).
    Usage(String),
    /// Cannot determine (exit 3).
    Unknown(String),
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Unknown(e.to_string())
    }
}

/// Everything needed to load and save this container's state.
pub struct Opened {
    pub watch: WatchSet,
    pub proc: Proc,
    pub container: ContainerId,
    pub dir: StateDir,
    pub key: String,
}

pub fn open(args: &WatchArgs) -> Result<Opened, Failure> {
    open_with(args, true)
}

/// Like [`open`], but creates and changes nothing (for `status`): a missing
/// state dir reads as "no state yet".
pub fn open_existing(args: &WatchArgs) -> Result<Opened, Failure> {
    open_with(args, false)
}

fn open_with(args: &WatchArgs, create: bool) -> Result<Opened, Failure> {
    let watch = args.resolve().map_err(Failure::Usage)?;
    let proc = Proc::default();
    let container = proc.container()?;
    let dir = if create {
        StateDir::open(&watch.state_dir)?
    } else {
        StateDir::existing(&watch.state_dir)?
    };
    let key = state::key(&watch.names(), &watch.exclude_texts());
    Ok(Opened {
        watch,
        proc,
        container,
        dir,
        key,
    })
}

impl Opened {
    /// Hashes the watched files, reusing `cache` for unchanged ones.
    pub fn snapshot(&self, cache: &[CachedFile]) -> Result<Snapshot, Failure> {
        Ok(Walker {
            roots: &self.watch.roots,
            excludes: &self.watch.excludes,
            cache,
            full: self.watch.full,
        }
        .snapshot()?)
    }

    /// The state this container instance wrote, if any, and a note when a
    /// file was there but belongs to another instance or cannot be used.
    pub fn previous(&self, loaded: Loaded) -> (Option<State>, Option<String>) {
        match loaded {
            Loaded::Absent => (None, None),
            Loaded::Found(s) if s.container == self.container => (Some(*s), None),
            Loaded::Found(_) => (
                None,
                Some("the state file is from an earlier container instance (restarted); starting over".into()),
            ),
            Loaded::Unusable(reason) => (None, Some(format!("{reason}; starting over"))),
        }
    }

    /// A new state for this container instance, with the warnings about
    /// its watch set (subPath, service-account token) still to be shown.
    pub fn fresh_state(&self) -> State {
        let mut st = State::new(self.container.clone(), self.watch.names());
        st.warnings =
            crate::inspect::warnings(&self.watch.roots, &self.proc.root.join("self/mountinfo"));
        st.warnings_pending = !st.warnings.is_empty();
        st
    }
}

pub fn new_baseline(snap: &Snapshot, now: Millis, source: &str) -> Baseline {
    Baseline {
        digest: snap.digest.clone(),
        recorded_at: now,
        source: source.into(),
        files: snap.files.clone(),
    }
}

/// "1 file", "12 files".
pub fn files(n: usize) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

/// First 12 hex digits: enough to tell digests apart in a one-line message.
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

pub fn failure_report(f: Failure) -> Report {
    match f {
        Failure::Usage(m) => Report::usage(m),
        Failure::Unknown(m) => Report::new(Code::Unknown, format!("cannot determine: {m}")),
    }
}

fn missing_warnings(snap: &Snapshot) -> Vec<String> {
    snap.missing
        .iter()
        .map(|m| {
            format!("driftprobe: warning: watched path {m} does not exist (recorded as empty)")
        })
        .collect()
}

/// `init`: record the baseline unless this container already has one.
pub fn init(args: &WatchArgs, force: bool) -> Report {
    match record(args, if force { "init --force" } else { "init" }, force) {
        Ok(r) => r,
        Err(f) => failure_report(f),
    }
}

fn record(args: &WatchArgs, source: &str, force: bool) -> Result<Report, Failure> {
    let opened = open(args)?;
    let locked = opened.dir.lock(&opened.key, COMMAND_LOCK_TIMEOUT)?;
    let (previous, note) = opened.previous(locked.load());
    if let Some(b) = previous.as_ref().and_then(|s| s.baseline.as_ref()) {
        if !force {
            return Ok(Report::new(
                Code::Healthy,
                format!(
                    "baseline already recorded at {} by {} (digest {}, {}); nothing to do (--force replaces it)",
                    time::rfc3339(b.recorded_at),
                    b.source,
                    short(&b.digest),
                    files(b.files.len())
                ),
            ));
        }
    }
    let cache = previous.as_ref().map(|s| s.cache.as_slice()).unwrap_or(&[]);
    let snap = opened.snapshot(cache)?;
    let fresh = previous.is_none();
    let mut st = previous.unwrap_or_else(|| opened.fresh_state());
    st.baseline = Some(new_baseline(&snap, time::now(), source));
    st.drift = None;
    // What the app was given before this baseline is in it already.
    st.given_seq = crate::shared::peek(&opened.dir, &opened.container).map_or(0, |s| s.seq);
    st.cache = snap.cache.clone();
    locked.save(&st)?;
    let mut report = Report::new(
        Code::Healthy,
        format!(
            "baseline recorded: digest {} ({}) for {}",
            short(&snap.digest),
            files(snap.files.len()),
            opened.watch.names().join(", ")
        ),
    );
    report.stderr.extend(missing_warnings(&snap));
    if fresh {
        report.stderr.extend(
            st.warnings
                .iter()
                .map(|w| format!("driftprobe: warning: {w}")),
        );
    }
    if let Some(n) = note {
        report = report.warn(format!("driftprobe: {n}"));
    }
    Ok(report)
}

/// `run`: record the baseline, then exec the command. A baseline that
/// cannot be recorded is reported on stderr but never stops the app.
pub fn run(args: &WatchArgs, command: &[OsString]) -> Report {
    let mut err = io::stderr().lock();
    match record(args, "run", true) {
        Ok(report) => {
            // The container log says what the app starts with.
            let _ = writeln!(err, "driftprobe: {}", report.stdout);
            for w in &report.stderr {
                let _ = writeln!(err, "{w}");
            }
        }
        Err(f) => {
            let r = failure_report(f);
            let _ = writeln!(
                err,
                "driftprobe: warning: starting without a baseline: {}{}",
                r.stdout.trim_start_matches("cannot determine: "),
                r.stderr.join(" ")
            );
        }
    }
    drop(err);
    let Some((program, rest)) = command.split_first() else {
        return Report::usage("run: no command given after --");
    };
    let e = crate::action::exec(program, rest);
    let name = program.to_string_lossy();
    let code = if e.kind() == io::ErrorKind::NotFound {
        Code::NotFound
    } else {
        Code::CannotExecute
    };
    Report::new(code, "").warn(format!("driftprobe: cannot exec {name}: {}", plain_io(&e)))
}

/// `install DEST`: copy this executable there atomically, mode 0755.
pub fn install(dest: &Path) -> Report {
    match copy_self(dest) {
        Ok(size) => Report::new(
            Code::Healthy,
            format!(
                "installed driftprobe {} ({} bytes) to {}",
                env!("CARGO_PKG_VERSION"),
                size,
                dest.display()
            ),
        ),
        Err(m) => Report::new(
            Code::Unknown,
            format!("cannot install to {}: {m}", dest.display()),
        ),
    }
}

fn copy_self(dest: &Path) -> Result<u64, String> {
    let bytes = fs::read("/proc/self/exe")
        .map_err(|e| format!("cannot read /proc/self/exe: {}", plain_io(&e)))?;
    let name = dest
        .file_name()
        .ok_or_else(|| "DEST must name a file, e.g. /probe/driftprobe".to_string())?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    if dest.is_dir() {
        return Err("DEST is a directory; name the file, e.g. /probe/driftprobe".into());
    }
    fs::create_dir_all(&parent)
        .map_err(|e| format!("cannot create {}: {}", parent.display(), plain_io(&e)))?;
    let tmp = parent.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.set_permissions(fs::Permissions::from_mode(0o755))?;
        f.sync_all()?;
        fs::rename(&tmp, dest)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(plain_io(&e));
    }
    Ok(bytes.len() as u64)
}
