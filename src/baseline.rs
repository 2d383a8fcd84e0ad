//! Recording the baseline explicitly: `init` (postStart hook), `run`
//! (wrapper that then execs the app), and `install` (the init-container
//! copy of this binary). Also the plumbing every state-using command
//! shares: resolving the watch set, identifying the container instance,
//! opening the state dir, taking a snapshot; and the proof that the files
//! are what the app started with ([`unchanged_since_start`]), used by
//! `init` and by the probes' lazy baseline.

use crate::cli::{WatchArgs, WatchSet};
use crate::digest::{plain_io, read_only, CachedFile, Snapshot, Walker};
use crate::escape;
use crate::exit::Code;
use crate::state::{self, Baseline, ContainerId, Drift, Loaded, Proc, State, StateDir};
use crate::time::{self, clock_time, Millis};
use crate::Report;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
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
    /// The largest state file the budgets let a walk produce: the most
    /// [`state::Locked::load`] reads.
    pub fn max_state_bytes(&self) -> u64 {
        state::max_state_bytes(&self.watch.budgets)
    }

    /// Hashes the watched files, reusing `cache` for unchanged ones.
    pub fn snapshot(&self, cache: &[CachedFile]) -> Result<Snapshot, Failure> {
        Ok(Walker {
            roots: &self.watch.roots,
            excludes: &self.watch.excludes,
            cache,
            full: self.watch.full,
            budgets: self.watch.budgets,
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
        st.warnings.extend(self.dir.exposure().map(str::to_string));
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

/// First 12 hex digits: enough to tell digests apart in `status` (never
/// in a probe line: see README, "What a digest reveals").
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
///
/// A postStart hook runs after the entrypoint started, so `init` vouches
/// only for files it can prove unchanged since then (the lazy baseline's
/// proof); otherwise it records a drift without a baseline, as the first
/// probe would, and still exits 0 (a failing postStart hook kills the
/// container). `--force` records the current files whatever the proof.
pub fn init(args: &WatchArgs, force: bool) -> Report {
    let how = if force { How::Force } else { How::Prove };
    match record(args, how) {
        Ok(r) => r,
        Err(f) => failure_report(f),
    }
}

/// How `record` may record a baseline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// `init`: only what [`unchanged_since_start`] proves.
    Prove,
    /// `init --force`: the current files, replacing any baseline.
    Force,
    /// `run`: the current files; the app has not started yet.
    Run,
}

fn record(args: &WatchArgs, how: How) -> Result<Report, Failure> {
    let force = how != How::Prove;
    let opened = open(args)?;
    let locked = opened.dir.lock(&opened.key, COMMAND_LOCK_TIMEOUT)?;
    let (previous, note) = opened.previous(locked.load(opened.max_state_bytes()));
    if let Some(b) = previous.as_ref().and_then(|s| s.baseline.as_ref()) {
        if !force {
            return Ok(Report::new(
                Code::Healthy,
                format!(
                    "baseline already recorded at {} by {} ({}); nothing to do (--force replaces it)",
                    time::rfc3339(b.recorded_at),
                    b.source,
                    files(b.files.len())
                ),
            ));
        }
    }
    let cache = previous.as_ref().map(|s| s.cache.as_slice()).unwrap_or(&[]);
    let snap = opened.snapshot(cache)?;
    let fresh = previous.is_none();
    let replaced = previous.as_ref().is_some_and(|s| s.baseline.is_some());
    let mut st = previous.unwrap_or_else(|| opened.fresh_state());
    let proof = match how {
        How::Run => Ok(()),
        How::Prove => unchanged_since_start(&opened, &snap)?,
        // Asked only to name the source: --force records whatever it says.
        How::Force => unchanged_since_start(&opened, &snap).unwrap_or(Err(String::new())),
    };
    let source = match (how, &proof) {
        (How::Run, _) => "run",
        (How::Force, Err(_)) => "init --force",
        (How::Force, Ok(())) if replaced => "init --force",
        _ => "init",
    };
    if let (How::Prove, Err(why)) = (how, proof) {
        // What the first probe would have found: a drift without a
        // baseline (its grace window, if one was already running, goes on).
        if st.drift.is_none() {
            st.drift = Some(Drift::starting(time::Stamp::now(), Some(why.clone())));
        }
        st.cache = snap.cache.clone();
        locked.save(&st)?;
        let mut report = Report::new(
            Code::Healthy,
            format!(
                "drift: no baseline, cannot prove the config is unchanged since the container started: {why} (the \
                 probes report it as drift; `driftprobe run` records the baseline before the app starts)"
            ),
        );
        report.stderr.extend(missing_warnings(&snap));
        if let Some(n) = note {
            report = report.warn(format!("driftprobe: {n}"));
        }
        return Ok(report);
    }
    st.baseline = Some(new_baseline(&snap, time::now(), source));
    st.drift = None;
    // What the app was given before this baseline is in it already.
    st.given_seq = crate::shared::peek(&opened.dir, &opened.container).map_or(0, |s| s.seq);
    st.cache = snap.cache.clone();
    locked.save(&st)?;
    let mut report = Report::new(
        Code::Healthy,
        format!(
            "baseline recorded ({}) for {}",
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
    match record(args, How::Run) {
        Ok(report) => {
            // The container log says what the app starts with.
            let _ = writeln!(err, "driftprobe: {}", escape::line(&report.stdout));
            for w in &report.stderr {
                let _ = writeln!(err, "{}", escape::line(w));
            }
        }
        Err(f) => {
            let r = failure_report(f);
            let _ = writeln!(
                err,
                "driftprobe: warning: starting without a baseline: {}{}",
                escape::line(r.stdout.trim_start_matches("cannot determine: ")),
                escape::line(&r.stderr.join(" "))
            );
        }
    }
    drop(err);
    let Some((program, rest)) = command.split_first() else {
        return Report::usage("run: no command given after --");
    };
    let e = crate::action::exec(program, rest);
    let name = escape::bytes(program.as_bytes());
    let code = if e.kind() == io::ErrorKind::NotFound {
        Code::NotFound
    } else {
        Code::CannotExecute
    };
    Report::new(code, "").warn(format!("driftprobe: cannot exec {name}: {}", plain_io(&e)))
}

/// The proof behind a baseline recorded after the entrypoint started (the
/// probes' lazy baseline, `init`): `Ok(Ok(()))` when the content under the
/// watched paths cannot have changed since the container's entrypoint
/// started, `Ok(Err(why))` when that cannot be shown.
///
/// Each part is dated by something that moves whenever its content does,
/// and compared with the entrypoint's start:
/// - a read-only kubelet volume (a directory holding `..data`): the newest
///   mtime of the volume dir, its `..data` link and the payload dir the
///   link points at. The kubelet's atomic writer swaps `..data` (a rename
///   in the volume dir) on every content update; its fsGroup ownership
///   pass (chown/chmod, at every pod sync on older kubelets) moves ctimes
///   only; and nothing in the container can write there;
/// - a read-only kubelet subPath mount (one file bind-mounted from a
///   payload dir): that file's mtime (the kubelet never writes into it);
/// - anything else: ctimes, which only the kernel sets. A writable
///   directory laid out like a kubelet volume is dated by ctimes too;
/// - a watched path that does not exist: its nearest existing ancestor,
///   dated the same way (creating or removing an entry moves the
///   directory's times).
pub fn unchanged_since_start(
    opened: &Opened,
    snap: &Snapshot,
) -> Result<Result<(), String>, Failure> {
    // The entrypoint found when identifying the container: no second scan.
    let started = opened.proc.started_at(opened.container.init_start_ticks)?;
    let mountinfo = opened.proc.root.join("self/mountinfo");
    let newest = match newest_content_change(&opened.watch.roots, snap, &mountinfo) {
        Ok(Some(ns)) => ns.div_euclid(1_000_000),
        Ok(None) => return Ok(Err("nothing to examine under the watched paths".into())),
        Err(why) => return Ok(Err(why)),
    };
    if newest < started {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "files changed at {} after the container started at {}",
            clock_time(newest),
            clock_time(started)
        )))
    }
}

/// The newest time (ns since the epoch) the content under `roots` may have
/// changed, dated as [`unchanged_since_start`] says; `Err` when a part
/// cannot be dated.
pub fn newest_content_change(
    roots: &[PathBuf],
    snap: &Snapshot,
    mountinfo: &Path,
) -> Result<Option<i64>, String> {
    let mut newest: Option<i64> = None;
    let mut add = |t: i64| newest = Some(newest.map_or(t, |n| n.max(t)));
    if snap.volumes.iter().all(|v| read_only(v)) {
        let subpaths = crate::inspect::subpath_mounts(roots, mountinfo);
        for (i, root) in roots.iter().enumerate() {
            if subpaths.contains(root) && read_only(root) {
                let m = fs::metadata(root).map_err(|e| cannot_date(root, &e))?;
                add(mtime_ns(&m));
            } else if let Some(Some(t)) = snap.outside_volumes_ns.get(i) {
                add(*t);
            }
        }
        for v in &snap.volumes {
            add(volume_written_ns(v)?);
        }
    } else if let Some(t) = snap.newest_change_ns {
        add(t);
    }
    for root in roots {
        if let Some(t) = absent_dated(root)? {
            add(t);
        }
    }
    Ok(newest)
}

fn cannot_date(path: &Path, e: &io::Error) -> String {
    format!("cannot date {}: {}", shown(path), plain_io(e))
}

/// A path for the one-line output: escaped like every file name.
fn shown(path: &Path) -> String {
    crate::digest::escape_name(path.as_os_str().as_bytes())
}

fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

fn ctime_ns(m: &fs::Metadata) -> i64 {
    m.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.ctime_nsec())
}

/// When the kubelet last wrote the volume at `dir`: the newest mtime of the
/// dir, its `..data` link and the payload dir.
fn volume_written_ns(dir: &Path) -> Result<i64, String> {
    let link = dir.join("..data");
    let times = [
        fs::metadata(dir).map_err(|e| cannot_date(dir, &e))?,
        fs::symlink_metadata(&link).map_err(|e| cannot_date(&link, &e))?,
        fs::metadata(&link).map_err(|e| cannot_date(&link, &e))?,
    ];
    Ok(times.iter().map(mtime_ns).max().unwrap_or(i64::MAX))
}

/// A watched path that does not exist is dated by its nearest existing
/// ancestor: the kubelet volume it is in, else that directory's ctime.
/// `None` when the path exists.
fn absent_dated(root: &Path) -> Result<Option<i64>, String> {
    match fs::metadata(root) {
        Ok(_) => return Ok(None),
        Err(e) if gone(&e) => {}
        Err(e) => return Err(cannot_date(root, &e)),
    }
    if fs::symlink_metadata(root).is_ok() {
        // Where it points may have held something since the start.
        return Err(format!(
            "watched path {} is a dangling symlink",
            shown(root)
        ));
    }
    let mut dir = root;
    let meta = loop {
        dir = match dir.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => return Err(format!("cannot date {}: no existing ancestor", shown(root))),
        };
        match fs::metadata(dir) {
            Ok(m) => break m,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(cannot_date(dir, &e)),
        }
    };
    let volume = dir
        .ancestors()
        .find(|a| fs::symlink_metadata(a.join("..data")).is_ok_and(|m| m.file_type().is_symlink()));
    match volume {
        Some(v) if read_only(v) => volume_written_ns(v).map(Some),
        _ => Ok(Some(ctime_ns(&meta))),
    }
}

fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || matches!(
            e.raw_os_error(),
            Some(nix::libc::ENOTDIR) | Some(nix::libc::ELOOP)
        )
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
    // Unique: in an init container the pid is 1 at every run, and a run
    // killed mid-copy leaves its temp file behind.
    let prefix = format!(".{}.tmp.", name.to_string_lossy());
    clear_stale_copies(&parent, &prefix);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let tmp = parent.join(format!("{prefix}{}.{nanos:x}", std::process::id()));
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

/// A temp file an install left behind is stale once nobody has written it
/// for this long (a copy takes milliseconds).
const STALE_COPY: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the temp files (`.NAME.tmp.*`) of installs killed mid-copy, once
/// stale: a concurrent install's fresh one is left alone. Best effort.
fn clear_stale_copies(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().as_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        // Not followed: a symlink is removed, never what it points to.
        let stale = entry.metadata().is_ok_and(|m| {
            !m.is_dir()
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= STALE_COPY)
        });
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_path_is_dated_by_its_nearest_existing_ancestor() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("conf");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("here"), "x").unwrap();
        let ctime = ctime_ns(&fs::metadata(&dir).unwrap());
        assert_eq!(absent_dated(&dir.join("here")), Ok(None));
        assert_eq!(absent_dated(&dir.join("gone")), Ok(Some(ctime)));
        assert_eq!(absent_dated(&dir.join("a/b/c")), Ok(Some(ctime)));
        // Through a file: ENOTDIR counts as absent too.
        assert_eq!(absent_dated(&dir.join("here/x")), Ok(Some(ctime)));
        std::os::unix::fs::symlink("nowhere", dir.join("dangling")).unwrap();
        let err = absent_dated(&dir.join("dangling")).unwrap_err();
        assert!(err.contains("dangling symlink"), "{err}");
    }

    #[test]
    fn a_writable_volume_layout_is_dated_by_ctimes() {
        let d = tempfile::tempdir().unwrap();
        let vol = d.path().join("vol");
        let ts = vol.join("..2026_11_25_16_20_03.1");
        fs::create_dir_all(&ts).unwrap();
        fs::write(ts.join("k"), "v").unwrap();
        std::os::unix::fs::symlink("..2026_11_25_16_20_03.1", vol.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/k", vol.join("k")).unwrap();
        let roots = [vol.clone()];
        let snap = Walker {
            roots: &roots,
            excludes: &[],
            cache: &[],
            full: false,
            budgets: crate::digest::Budgets::default(),
        }
        .snapshot()
        .unwrap();
        assert!(!read_only(&vol));
        let newest = newest_content_change(&roots, &snap, Path::new("/nonexistent"));
        assert_eq!(newest, Ok(snap.newest_change_ns));
        // A chmod (what fsGroup does) moves it: the conservative side.
        fs::set_permissions(ts.join("k"), fs::Permissions::from_mode(0o440)).unwrap();
        let moved = ctime_ns(&fs::metadata(ts.join("k")).unwrap());
        let snap = Walker {
            roots: &roots,
            excludes: &[],
            cache: &[],
            full: false,
            budgets: crate::digest::Budgets::default(),
        }
        .snapshot()
        .unwrap();
        let newest = newest_content_change(&roots, &snap, Path::new("/nonexistent"));
        assert!(newest.unwrap().is_some_and(|t| t >= moved));
    }
}
