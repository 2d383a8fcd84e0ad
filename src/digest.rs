//! Walks the watched paths and hashes them into a [`Snapshot`]: a sorted
//! manifest of (name, SHA-256 of content) and one tree digest over it.
//!
//! It knows the kubelet's ConfigMap/Secret volume layout (see
//! `shared/kubernetes.md` §1): user-visible names are symlinks into `..data`,
//! which points at a timestamped payload directory swapped atomically on
//! update. A directory holding a `..data` symlink is read through that
//! payload directory in one go, and the `..data` target is read again after
//! the walk: if it moved, or a payload file vanished, the whole walk is
//! retried, so a snapshot is always wholly old or wholly new, never a mix.
//! A watched path nested inside a volume (`conf/app` of a projected volume)
//! is read through the enclosing volume's `..data` target the same way.
//! Names starting with `..` are never walked.
//!
//! The walk keeps its own stack of open directories (no recursion a tree
//! can deepen) and stops at the first of its [`Budgets`] it exceeds:
//! entries, depth, bytes hashed, name bytes, and a deadline.
//!
//! Symlinks are followed with loop detection; FIFOs, sockets and devices are
//! reported and never opened. File contents are streamed through the hash
//! with a fixed buffer and never kept, never printed.
//!
//! A per-file stat cache (device, inode, size, mtime, ctime → digest) from
//! the previous probe lets an unchanged tree skip re-hashing. It only keeps
//! files whose timestamps were more than [`RACY_MARGIN_NS`] old when hashed,
//! so a write inside the file system's timestamp granularity is never missed.
//!
//! Inside a read-only kubelet volume the ctime is left out of the key: the
//! kubelet's fsGroup ownership pass moves it at every pod sync, while new
//! content always comes as new files (a new inode) in a new payload dir.
//!
//! This module reads files; it knows nothing of baselines or state files.

use crate::glob::Glob;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A file whose mtime or ctime is younger than this when hashed is hashed
/// again next time instead of being trusted from the stat cache.
pub const RACY_MARGIN_NS: i64 = 1_000_000_000;
/// How often a walk torn by a concurrent kubelet update is retried.
const MAX_ATTEMPTS: u32 = 50;

/// What one snapshot may cost. Past any of these the walk stops with
/// [`DigestError::Budget`] ("cannot determine"), so a huge or hostile tree
/// costs a probe a bounded amount of time, memory and I/O, never a hang or
/// a crash. The command line sets them (`--max-entries` and so on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Entries walked, of every kind (files, directories, symlinks, special
    /// files, the watched paths themselves); excluded ones do not count.
    pub max_entries: u64,
    /// Levels below a watched path.
    pub max_depth: u32,
    /// Bytes read and hashed by one snapshot (stat-cache hits read nothing).
    pub max_bytes: u64,
    /// Total bytes of the names of every entry walked, as the manifest and
    /// the state file write them.
    pub max_name_bytes: u64,
    /// Wall time of the whole snapshot, retries included; also checked
    /// while a large file is hashed.
    pub deadline: Duration,
}

/// The defaults: well inside the kubelet's default 1 s probe timeout, and
/// far above any real ConfigMap or Secret (1 MiB each, names included).
pub const DEFAULT_BUDGETS: Budgets = Budgets {
    max_entries: 20_000,
    max_depth: 32,
    max_bytes: 256 << 20,
    max_name_bytes: 1 << 20,
    deadline: Duration::from_millis(500),
};

impl Default for Budgets {
    fn default() -> Self {
        DEFAULT_BUDGETS
    }
}

/// One of the [`Budgets`], for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Entries,
    Depth,
    Bytes,
    NameBytes,
    Deadline,
}

impl Budget {
    /// The flag that sets it, without the dashes.
    pub fn flag(self) -> &'static str {
        match self {
            Budget::Entries => "max-entries",
            Budget::Depth => "max-depth",
            Budget::Bytes => "max-bytes",
            Budget::NameBytes => "max-name-bytes",
            Budget::Deadline => "deadline",
        }
    }

    /// Its environment variable.
    pub fn env(self) -> &'static str {
        match self {
            Budget::Entries => "DRIFTPROBE_MAX_ENTRIES",
            Budget::Depth => "DRIFTPROBE_MAX_DEPTH",
            Budget::Bytes => "DRIFTPROBE_MAX_BYTES",
            Budget::NameBytes => "DRIFTPROBE_MAX_NAME_BYTES",
            Budget::Deadline => "DRIFTPROBE_DEADLINE",
        }
    }
}

impl Budgets {
    /// The limit of `b`, written the way it is typed.
    pub fn limit(&self, b: Budget) -> String {
        match b {
            Budget::Entries => self.max_entries.to_string(),
            Budget::Depth => self.max_depth.to_string(),
            Budget::Bytes => format_size(self.max_bytes),
            Budget::NameBytes => format_size(self.max_name_bytes),
            Budget::Deadline => crate::time::format_duration(self.deadline),
        }
    }
}

/// `256MiB`, `1GiB`, `1536KiB`, `1000`: the largest binary unit that
/// divides `n`, as `--max-bytes` accepts it.
pub fn format_size(n: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n != 0 && n.trailing_zeros() >= shift {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// One regular file of the watched set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name as shown to users; see [`Walker`] for how it is formed.
    pub path: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub size: u64,
}

/// Something in the watched tree that is not part of the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// Stat data that identifies an unchanged file, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFile {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub sha256: String,
}

/// The watched files as they were at one consistent instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Hex SHA-256 over the sorted manifest.
    pub digest: String,
    /// Sorted by `path`.
    pub files: Vec<Entry>,
    pub skipped: Vec<Skipped>,
    /// Watched paths that do not exist (their files count as removed).
    pub missing: Vec<String>,
    /// The newest ctime (ns since the epoch) of anything walked: files,
    /// directories, symlinks, `..data`. `None` if nothing was found.
    pub newest_change_ns: Option<i64>,
    /// Per watched path (in order), the newest ctime of what was walked
    /// outside kubelet volumes; `None` if everything was inside one (or
    /// nothing was found). Inside a volume a ctime also moves when the
    /// kubelet's fsGroup pass chowns the files: the lazy-baseline proof
    /// dates volumes by [`Snapshot::volumes`] instead.
    pub outside_volumes_ns: Vec<Option<i64>>,
    /// Every kubelet volume read through (a dir whose `..data` was read).
    pub volumes: Vec<PathBuf>,
    /// Stat cache to hand to the next walk.
    pub cache: Vec<CachedFile>,
    /// Bytes actually read (0 when everything came from the cache).
    pub hashed_bytes: u64,
    /// How many torn walks were thrown away.
    pub retries: u32,
}

#[derive(Debug)]
pub enum DigestError {
    /// A path exists but cannot be read (permissions, I/O error).
    Unreadable { path: PathBuf, source: io::Error },
    /// The tree kept changing under every attempt.
    Unstable { path: PathBuf },
    /// The walk went past one of its [`Budgets`].
    Budget {
        budget: Budget,
        /// The limit, as typed (`20000`, `256MiB`, `500ms`).
        limit: String,
        /// The watched path joined with the name where it happened
        /// (escaped for one line).
        at: String,
    },
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::Unreadable { path, source } => {
                write!(
                    f,
                    "cannot read {}: {}",
                    crate::escape::path(path),
                    plain_io(source)
                )
            }
            DigestError::Unstable { path } => write!(
                f,
                "{} kept changing during {MAX_ATTEMPTS} attempts to read it consistently",
                crate::escape::path(path)
            ),
            DigestError::Budget { budget, limit, at } => {
                let (flag, env) = (budget.flag(), budget.env());
                write!(f, "budget: {flag} ({limit}) exceeded at {at}; ")?;
                match budget {
                    Budget::Deadline => write!(
                        f,
                        "raise --{flag} ({env}), keeping it under the probe's timeoutSeconds"
                    ),
                    Budget::Bytes => write!(
                        f,
                        "leave big files out with --exclude, or raise --{flag} ({env})"
                    ),
                    _ => write!(
                        f,
                        "watch the config dirs only, leave some out with --exclude, or raise --{flag} ({env})"
                    ),
                }
            }
        }
    }
}

impl std::error::Error for DigestError {}

/// An io::Error without the "(os error N)" noise.
pub fn plain_io(e: &io::Error) -> String {
    let mut s = e.to_string();
    if let Some(i) = s.find(" (os error") {
        s.truncate(i);
    }
    s
}

/// Displays a file name from raw bytes, with the one escaping rule of
/// [`crate::escape`]: UTF-8 as is, except `\`, control characters, line
/// separators and bidi controls, which (like bytes that are not UTF-8) are
/// written as `\xNN`, so that the mapping is one-to-one and names never
/// break the one-line output.
pub fn escape_name(bytes: &[u8]) -> String {
    crate::escape::bytes(bytes)
}

/// Hex SHA-256 of the canonical manifest encoding: for each file, sorted by
/// name, `name NUL sha256-hex LF`.
pub fn tree_digest(files: &[Entry]) -> String {
    let mut h = Sha256::new();
    for e in files {
        h.update(e.path.as_bytes());
        h.update([0u8]);
        h.update(e.sha256.as_bytes());
        h.update([b'\n']);
    }
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// What to walk and how.
pub struct Walker<'a> {
    /// Watched paths as given. With one path, names are relative to it (a
    /// watched file is named by its file name), so a digest does not depend
    /// on where the volume is mounted. With several, each name is the
    /// watched path joined with the relative name.
    pub roots: &'a [PathBuf],
    pub excludes: &'a [Glob],
    /// The previous walk's stat cache.
    pub cache: &'a [CachedFile],
    /// Ignore the stat cache and hash every file.
    pub full: bool,
    /// What the snapshot may cost.
    pub budgets: Budgets,
}

/// Why one attempt stopped early.
enum Stop {
    /// A concurrent update tore the walk; start again.
    Retry(PathBuf),
    Fatal(DigestError),
}

type Step<T = ()> = Result<T, Stop>;

fn fatal(path: &Path, source: io::Error) -> Stop {
    Stop::Fatal(DigestError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

fn is_gone(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound) || e.raw_os_error() == Some(nix::libc::ENOTDIR)
}

fn is_loop(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::ELOOP)
}

fn ctime_ns(m: &Metadata) -> i64 {
    m.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.ctime_nsec())
}

fn mtime_ns(m: &Metadata) -> i64 {
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

/// Is `path` on a read-only mount? Unknown counts as writable.
pub fn read_only(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

fn wall_ns() -> i64 {
    crate::time::now().saturating_mul(1_000_000)
}

/// Whether the deadline (if any) has passed.
fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

impl Walker<'_> {
    /// Takes a consistent snapshot, retrying walks torn by a kubelet update.
    pub fn snapshot(&self) -> Result<Snapshot, DigestError> {
        // A deadline too far away to represent is no deadline.
        let deadline = Instant::now().checked_add(self.budgets.deadline);
        let mut last = PathBuf::new();
        for attempt in 0..MAX_ATTEMPTS {
            let mut walk = Walk {
                walker: self,
                files: Vec::new(),
                skipped: Vec::new(),
                missing: Vec::new(),
                newest: None,
                outside: None,
                per_root: Vec::new(),
                ro_volume: false,
                hashed_bytes: 0,
                links: Vec::new(),
                stack: Vec::new(),
                entries: 0,
                name_bytes: 0,
                deadline,
                started_ns: wall_ns(),
                buf: Vec::new(),
            };
            match walk.all_roots() {
                Ok(()) => {
                    // One sort puts the manifest in canonical order and
                    // the stat cache in the order lookups expect.
                    let mut found = walk.files;
                    found.sort_unstable_by(|a, b| a.0.path.cmp(&b.0.path));
                    found.dedup_by(|a, b| a.0.path == b.0.path);
                    let mut files = Vec::with_capacity(found.len());
                    let mut cache = Vec::with_capacity(found.len());
                    for (entry, stat) in found {
                        files.push(entry);
                        cache.extend(stat);
                    }
                    // Directories are read in the order the file system
                    // gives: sort what is shown.
                    let mut skipped = walk.skipped;
                    skipped.sort_by(|a, b| a.path.cmp(&b.path));
                    return Ok(Snapshot {
                        digest: tree_digest(&files),
                        files,
                        skipped,
                        missing: walk.missing,
                        newest_change_ns: walk.newest,
                        outside_volumes_ns: walk.per_root,
                        volumes: walk
                            .links
                            .iter()
                            .filter_map(|(l, _)| l.parent().map(Path::to_path_buf))
                            .collect(),
                        cache,
                        hashed_bytes: walk.hashed_bytes,
                        retries: attempt,
                    });
                }
                Err(Stop::Fatal(e)) => return Err(e),
                Err(Stop::Retry(path)) => {
                    last = path;
                    let mut pause = Duration::from_millis(u64::from(attempt.min(10)));
                    if let Some(d) = deadline {
                        pause = pause.min(d.saturating_duration_since(Instant::now()));
                    }
                    std::thread::sleep(pause);
                }
            }
        }
        Err(DigestError::Unstable { path: last })
    }
}

/// One attempt at walking everything.
struct Walk<'w> {
    walker: &'w Walker<'w>,
    /// Each file found, with its stat-cache entry when it may be trusted
    /// next time.
    files: Vec<(Entry, Option<CachedFile>)>,
    skipped: Vec<Skipped>,
    missing: Vec<String>,
    newest: Option<i64>,
    /// The newest ctime outside kubelet volumes, of the current root.
    outside: Option<i64>,
    /// `outside` of each root done.
    per_root: Vec<Option<i64>>,
    /// The kubelet volume whose payload is being walked is read-only: its
    /// files' stat-cache entries ignore ctimes.
    ro_volume: bool,
    hashed_bytes: u64,
    /// Every `..data` link read, with the target it had.
    links: Vec<(PathBuf, PathBuf)>,
    /// The directories being read, innermost last: the walk's explicit
    /// stack. Nothing here recurses, so no tree can overflow the call
    /// stack; its height is bounded by the depth budget.
    stack: Vec<Frame>,
    /// Entries and name bytes counted against the budgets so far.
    entries: u64,
    name_bytes: u64,
    deadline: Option<Instant>,
    started_ns: i64,
    /// The read buffer, allocated by the first file that is hashed: a walk
    /// served from the stat cache never touches (page-faults) its 64 KiB.
    buf: Vec<u8>,
}

/// A directory being read.
struct Frame {
    entries: fs::ReadDir,
    /// The directory read (for a kubelet volume, its payload directory).
    dir: PathBuf,
    /// Its name relative to the watched path (`""` for the path itself).
    rel: String,
    /// Which watched path it is under.
    index: usize,
    /// Levels below the watched path (0 for the path itself).
    depth: u32,
    /// (dev, ino), for loop detection.
    id: (u64, u64),
    /// Read through a kubelet `..data` target: a vanished entry means a
    /// torn walk.
    in_payload: bool,
    /// Only the real directories in it (volumes mounted inside a kubelet
    /// volume, beside its symlinks).
    mounts_only: bool,
}

impl Walk<'_> {
    fn all_roots(&mut self) -> Step {
        let roots = self.walker.roots;
        for (index, root) in roots.iter().enumerate() {
            self.outside = None;
            self.root(index, root)?;
            self.drain()?;
            self.per_root.push(self.outside);
        }
        // Did any `..data` move while we read? Then we may hold a mix.
        for (link, target) in &self.links {
            match fs::read_link(link) {
                Ok(now) if &now == target => {}
                Ok(_) => return Err(Stop::Retry(link.clone())),
                Err(e) if is_gone(&e) => return Err(Stop::Retry(link.clone())),
                Err(e) => return Err(fatal(link, e)),
            }
        }
        Ok(())
    }

    /// The name of `rel` (relative to watched path `index`) in the manifest.
    fn name(&self, index: usize, rel: &str) -> String {
        let roots = self.walker.roots;
        if roots.len() == 1 {
            if rel.is_empty() {
                let root = &roots[0];
                return escape_name(root.file_name().unwrap_or(root.as_os_str()).as_bytes());
            }
            return rel.to_string();
        }
        self.shown(index, rel)
    }

    /// Watched path `index` joined with `rel`, for messages.
    fn shown(&self, index: usize, rel: &str) -> String {
        let root = display_root(&self.walker.roots[index]);
        if rel.is_empty() {
            root
        } else if root.ends_with('/') {
            format!("{root}{rel}")
        } else {
            format!("{root}/{rel}")
        }
    }

    /// Notes a ctime; `in_volume`: of something inside a kubelet volume
    /// (the volume dir, `..data`, a key's symlink, the payload).
    fn note(&mut self, m: &Metadata, in_volume: bool) {
        let c = ctime_ns(m);
        self.newest = Some(self.newest.map_or(c, |n| n.max(c)));
        if !in_volume {
            self.outside = Some(self.outside.map_or(c, |n| n.max(c)));
        }
    }

    /// Stops the walk past budget `b`, at `rel` under watched path `index`.
    fn over(&self, b: Budget, index: usize, rel: &str) -> Stop {
        Stop::Fatal(DigestError::Budget {
            budget: b,
            limit: self.walker.budgets.limit(b),
            at: self.shown(index, rel),
        })
    }

    fn check_deadline(&self, index: usize, rel: &str) -> Step {
        if past(self.deadline) {
            return Err(self.over(Budget::Deadline, index, rel));
        }
        Ok(())
    }

    /// Counts one entry `depth` levels below watched path `index` against
    /// the entries, depth and name budgets.
    fn count(&mut self, index: usize, rel: &str, depth: u32) -> Step {
        let budgets = self.walker.budgets;
        self.entries += 1;
        if self.entries > budgets.max_entries {
            return Err(self.over(Budget::Entries, index, rel));
        }
        if depth > budgets.max_depth {
            return Err(self.over(Budget::Depth, index, rel));
        }
        // The name as the manifest writes it: the watched path's prefix
        // too when there are several.
        let prefix = match self.walker.roots.len() {
            1 => 0,
            _ => display_root(&self.walker.roots[index]).len() + 1,
        };
        let len = if rel.is_empty() {
            self.name(index, rel).len()
        } else {
            prefix + rel.len()
        };
        self.name_bytes = self.name_bytes.saturating_add(len as u64);
        if self.name_bytes > budgets.max_name_bytes {
            return Err(self.over(Budget::NameBytes, index, rel));
        }
        Ok(())
    }

    fn root(&mut self, index: usize, root: &Path) -> Step {
        self.check_deadline(index, "")?;
        self.count(index, "", 0)?;
        // Inside a kubelet volume, at any depth: read through `..data`.
        let (path, in_volume) = self.through_volume(root)?;
        let lmeta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if is_gone(&e) => {
                // A torn read shows as a moved `..data` at the end.
                self.missing.push(display_root(root));
                return Ok(());
            }
            Err(e) => return Err(fatal(&path, e)),
        };
        let meta = if lmeta.file_type().is_symlink() {
            self.note(&lmeta, in_volume);
            match fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if is_gone(&e) || is_loop(&e) => {
                    self.missing.push(display_root(root));
                    return Ok(());
                }
                Err(e) => return Err(fatal(&path, e)),
            }
        } else {
            lmeta
        };
        self.entry(index, &path, "", &meta, in_volume, 0)
    }

    /// Where to read watched path `root` from, and whether that is inside
    /// a kubelet volume. The nearest ancestor holding a `..data` symlink
    /// is the volume (when the path's next component there is one of its
    /// symlinks, not a real directory: that would be another volume
    /// mounted inside it): the path is then read through the `..data`
    /// target recorded now, so every file under it comes from one payload
    /// directory, and a swap shows as a moved `..data` after the walk.
    /// Paths that name kubelet internals (`..*`) are read as given.
    fn through_volume(&mut self, root: &Path) -> Step<(PathBuf, bool)> {
        let plain = Ok((root.to_path_buf(), false));
        // Components below `dir`, innermost first.
        let mut below = Vec::new();
        let mut dir = root;
        while let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) {
            if name.as_bytes().starts_with(b"..") {
                return plain;
            }
            below.push(name);
            dir = parent;
            let is_volume =
                fs::symlink_metadata(dir.join("..data")).is_ok_and(|m| m.file_type().is_symlink());
            if !is_volume {
                continue;
            }
            if fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_dir()) {
                return plain;
            }
            let Some(payload) = self.kubelet_payload(dir)? else {
                return plain;
            };
            let path = below.iter().rev().fold(payload, |p, c| p.join(c));
            return Ok((path, true));
        }
        plain
    }

    /// If `dir` holds a `..data` symlink, records its target and returns the
    /// payload directory it points at.
    fn kubelet_payload(&mut self, dir: &Path) -> Step<Option<PathBuf>> {
        let link = dir.join("..data");
        let lmeta = match fs::symlink_metadata(&link) {
            Ok(m) if m.file_type().is_symlink() => m,
            Ok(_) => return Ok(None),
            Err(e) if is_gone(&e) => return Ok(None),
            Err(e) => return Err(fatal(&link, e)),
        };
        self.note(&lmeta, true);
        let target = match fs::read_link(&link) {
            Ok(t) => t,
            Err(e) if is_gone(&e) => return Err(Stop::Retry(link)),
            Err(e) => return Err(fatal(&link, e)),
        };
        let payload = dir.join(&target);
        self.ro_volume = read_only(dir);
        if !self.links.iter().any(|(l, _)| l == &link) {
            self.links.push((link, target));
        }
        Ok(Some(payload))
    }

    /// Starts reading directory `dir`: a kubelet volume through its payload
    /// directory, and the real directories beside its symlinks (volumes
    /// mounted inside this one, a Secret at /etc/app/certs in a ConfigMap
    /// at /etc/app) after it.
    fn dir(
        &mut self,
        index: usize,
        dir: &Path,
        meta: &Metadata,
        rel: &str,
        in_payload: bool,
        depth: u32,
    ) -> Step {
        let id = (meta.dev(), meta.ino());
        // Directories are noted here, not by `entry`: the payload dir and
        // the volume dir itself are the volume's.
        let payload = self.kubelet_payload(dir)?;
        self.note(meta, in_payload || payload.is_some());
        let Some(payload) = payload else {
            return self.open(index, dir, Some(id), rel, in_payload, depth, false);
        };
        // A stack: the frame pushed last is read first.
        self.open(index, dir, Some(id), rel, in_payload, depth, true)?;
        self.open(index, &payload, None, rel, true, depth, false)
    }

    /// Pushes a frame reading the entries of `dir` (its (dev, ino) if
    /// known), unless it is one of the directories already being read
    /// below it (a loop).
    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        index: usize,
        dir: &Path,
        id: Option<(u64, u64)>,
        rel: &str,
        in_payload: bool,
        depth: u32,
        mounts_only: bool,
    ) -> Step {
        let id = match id {
            Some(id) => id,
            None => match fs::metadata(dir) {
                Ok(m) => {
                    self.note(&m, in_payload);
                    (m.dev(), m.ino())
                }
                Err(e) if is_gone(&e) => return self.vanished(dir, in_payload),
                Err(e) => return Err(fatal(dir, e)),
            },
        };
        // Frames of a lower depth are this directory's ancestors (both of
        // a kubelet volume's frames are: its symlinks lead into its payload).
        if self.stack.iter().any(|f| f.depth < depth && f.id == id) {
            let name = self.name(index, rel);
            self.skip(name, "directory loop, not followed".into());
            return Ok(());
        }
        let entries = match fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) if is_gone(&e) => return self.vanished(dir, in_payload),
            Err(e) => return Err(fatal(dir, e)),
        };
        self.stack.push(Frame {
            entries,
            dir: dir.to_path_buf(),
            rel: rel.to_string(),
            index,
            depth,
            id,
            in_payload,
            mounts_only,
        });
        Ok(())
    }

    /// Reads entries off the innermost frame until the stack is empty:
    /// files are hashed on the way, directories push frames.
    fn drain(&mut self) -> Step {
        let (deadline, excludes) = (self.deadline, self.walker.excludes);
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(());
            };
            let (index, depth, in_payload) = (top.index, top.depth, top.in_payload);
            let entry = match top.entries.next() {
                None => {
                    self.stack.pop();
                    continue;
                }
                Some(Ok(entry)) => entry,
                Some(Err(e)) => {
                    let dir = top.dir.clone();
                    self.stack.pop();
                    if is_gone(&e) {
                        self.vanished(&dir, in_payload)?;
                        continue;
                    }
                    return Err(fatal(&dir, e));
                }
            };
            let name = entry.file_name();
            // Mounts are real directories: the entry's type from readdir
            // says so without a stat per kubelet symlink.
            let wanted = !name.as_bytes().starts_with(b"..")
                && (!top.mounts_only || entry.file_type().is_ok_and(|t| t.is_dir()));
            if !wanted {
                // Even a directory of nothing but skipped names ends.
                if past(deadline) {
                    let rel = top.rel.clone();
                    return Err(self.over(Budget::Deadline, index, &rel));
                }
                continue;
            }
            let escaped = escape_name(name.as_bytes());
            let rel = if top.rel.is_empty() {
                escaped
            } else {
                format!("{}/{escaped}", top.rel)
            };
            let path = top.dir.join(&name);
            self.check_deadline(index, &rel)?;
            if excludes.iter().any(|g| g.is_match(&rel)) {
                continue;
            }
            self.count(index, &rel, depth + 1)?;
            self.child(index, &path, &entry, &rel, in_payload, depth + 1)?;
        }
    }

    /// `entry` is `path`'s entry in the directory being read: its lstat
    /// is taken relative to that directory, not by looking up every
    /// component of `path` again.
    fn child(
        &mut self,
        index: usize,
        path: &Path,
        entry: &fs::DirEntry,
        rel: &str,
        in_payload: bool,
        depth: u32,
    ) -> Step {
        let lmeta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if is_gone(&e) => return self.vanished(path, in_payload),
            Err(e) => return Err(fatal(path, e)),
        };
        let meta = if lmeta.file_type().is_symlink() {
            self.note(&lmeta, in_payload);
            match fs::metadata(path) {
                Ok(m) => m,
                Err(e) if is_gone(&e) => {
                    if in_payload {
                        return Err(Stop::Retry(path.into()));
                    }
                    let name = self.name(index, rel);
                    self.skip(name, "dangling symlink".into());
                    return Ok(());
                }
                Err(e) if is_loop(&e) => {
                    let name = self.name(index, rel);
                    self.skip(name, "symlink loop".into());
                    return Ok(());
                }
                Err(e) => return Err(fatal(path, e)),
            }
        } else {
            lmeta
        };
        self.entry(index, path, rel, &meta, in_payload, depth)
    }

    /// Starts walking a directory, hashes a file, or skips anything else.
    fn entry(
        &mut self,
        index: usize,
        path: &Path,
        rel: &str,
        meta: &Metadata,
        in_payload: bool,
        depth: u32,
    ) -> Step {
        let ft = meta.file_type();
        if !ft.is_dir() {
            self.note(meta, in_payload);
        }
        if ft.is_dir() {
            self.dir(index, path, meta, rel, in_payload, depth)
        } else if ft.is_file() {
            self.file(index, path, rel, meta, in_payload)
        } else {
            let name = self.name(index, rel);
            self.skip(name, special_kind(meta));
            Ok(())
        }
    }

    /// A path disappeared mid-walk: a torn kubelet update (retry), or an
    /// ordinary file removed just now (it is simply not there).
    fn vanished(&mut self, path: &Path, in_payload: bool) -> Step {
        if in_payload {
            Err(Stop::Retry(path.into()))
        } else {
            Ok(())
        }
    }

    fn skip(&mut self, path: String, reason: String) {
        self.skipped.push(Skipped { path, reason });
    }

    fn file(
        &mut self,
        index: usize,
        path: &Path,
        rel: &str,
        meta: &Metadata,
        in_payload: bool,
    ) -> Step {
        let name = self.name(index, rel);
        // Only the kubelet writes a read-only volume, and never in place:
        // the ctime (moved by its fsGroup pass) says nothing there.
        let trust_mtime = in_payload && self.ro_volume;
        if !self.walker.full {
            // The cache is stored sorted by name (a snapshot's order); an
            // entry not found that way is simply hashed again.
            let cache = self.walker.cache;
            let found = cache.binary_search_by(|c| c.path.as_str().cmp(&name));
            if let Some(c) = found.ok().map(|i| &cache[i]) {
                if c.dev == meta.dev()
                    && c.ino == meta.ino()
                    && c.size == meta.size()
                    && c.mtime_ns == mtime_ns(meta)
                    && (trust_mtime || c.ctime_ns == ctime_ns(meta))
                {
                    let entry = Entry {
                        path: name,
                        sha256: c.sha256.clone(),
                        size: c.size,
                    };
                    self.files.push((entry, Some(c.clone())));
                    return Ok(());
                }
            }
        }
        // O_NONBLOCK: if the path was swapped for a FIFO since the stat,
        // opening it must not hang the probe.
        let mut file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if is_gone(&e) => return self.vanished(path, in_payload),
            Err(e) => return Err(fatal(path, e)),
        };
        let fmeta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return Err(fatal(path, e)),
        };
        if !fmeta.is_file() {
            self.skip(name, special_kind(&fmeta));
            return Ok(());
        }
        // A file that cannot fit in what is left of the byte budget (a
        // sparse 1T file) is refused before a byte is read.
        if self.hashed_bytes.saturating_add(fmeta.size()) > self.walker.budgets.max_bytes {
            return Err(self.over(Budget::Bytes, index, rel));
        }
        // Only the bytes there when we looked: a file that keeps growing
        // must not keep the probe reading past the kubelet's timeout.
        let sha256 = self.hash(&mut file, fmeta.size(), path, index, rel)?;
        // Written to while we read it: what we hashed is not a settled
        // state, so it is never cached (the next probe reads it again).
        let settled = file.metadata().is_ok_and(|m| {
            (m.size(), mtime_ns(&m)) == (fmeta.size(), mtime_ns(&fmeta))
                && (trust_mtime || ctime_ns(&m) == ctime_ns(&fmeta))
        });
        let newest = match trust_mtime {
            true => mtime_ns(&fmeta),
            false => mtime_ns(&fmeta).max(ctime_ns(&fmeta)),
        };
        let stable = settled && newest.saturating_add(RACY_MARGIN_NS) < self.started_ns;
        let cached = stable.then(|| CachedFile {
            path: name.clone(),
            dev: fmeta.dev(),
            ino: fmeta.ino(),
            size: fmeta.size(),
            mtime_ns: mtime_ns(&fmeta),
            ctime_ns: ctime_ns(&fmeta),
            sha256: sha256.clone(),
        });
        let entry = Entry {
            path: name,
            sha256,
            size: fmeta.size(),
        };
        self.files.push((entry, cached));
        Ok(())
    }

    /// SHA-256 of the first `size` bytes of `file` (fewer if it shrank),
    /// watching the deadline between reads.
    fn hash(
        &mut self,
        file: &mut File,
        size: u64,
        path: &Path,
        index: usize,
        rel: &str,
    ) -> Step<String> {
        let mut h = Sha256::new();
        if self.buf.is_empty() {
            self.buf = vec![0u8; 64 * 1024];
        }
        let mut file = file.take(size);
        loop {
            if past(self.deadline) {
                return Err(self.over(Budget::Deadline, index, rel));
            }
            match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    h.update(&self.buf[..n]);
                    self.hashed_bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fatal(path, e)),
            }
        }
        Ok(hex(&h.finalize()))
    }
}

pub fn display_root(root: &Path) -> String {
    let s = escape_name(root.as_os_str().as_bytes());
    if s.len() > 1 {
        s.trim_end_matches('/').to_string()
    } else {
        s
    }
}

fn special_kind(m: &Metadata) -> String {
    let ft = m.file_type();
    let kind = if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "special file"
    };
    format!("{kind}, not read")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn snap(roots: &[PathBuf]) -> Snapshot {
        Walker {
            roots,
            excludes: &[],
            cache: &[],
            full: false,
            budgets: Budgets::default(),
        }
        .snapshot()
        .unwrap()
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn digest_is_sha256_of_the_canonical_manifest() {
        let d = tmp();
        fs::write(d.path().join("b"), "2").unwrap();
        fs::write(d.path().join("a"), "1").unwrap();
        let s = snap(&[d.path().to_path_buf()]);
        let names: Vec<_> = s.files.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // sha256("1"), sha256("2")
        let one = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";
        let two = "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35";
        assert_eq!(s.files[0].sha256, one);
        let mut h = Sha256::new();
        h.update(format!("a\0{one}\nb\0{two}\n"));
        assert_eq!(s.digest, hex(&h.finalize()));
    }

    #[test]
    fn kubelet_layout_is_read_through_data_once() {
        let d = tmp();
        let ts = d.path().join("..2026_11_25_16_20_03.123");
        fs::create_dir_all(ts.join("nested/deep")).unwrap();
        fs::write(ts.join("app.yaml"), "x: 1").unwrap();
        fs::write(ts.join("nested/deep/k"), "v").unwrap();
        symlink("..2026_11_25_16_20_03.123", d.path().join("..data")).unwrap();
        symlink("..data/app.yaml", d.path().join("app.yaml")).unwrap();
        symlink("..data/nested", d.path().join("nested")).unwrap();
        let s = snap(&[d.path().to_path_buf()]);
        let names: Vec<_> = s.files.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["app.yaml", "nested/deep/k"]);
        assert!(s.skipped.is_empty());
    }

    #[test]
    fn ctimes_inside_kubelet_volumes_are_kept_apart() {
        let d = tmp();
        let vol = d.path().join("vol");
        let ts = vol.join("..2026_11_25_16_20_03.1");
        fs::create_dir_all(&ts).unwrap();
        fs::write(ts.join("k"), "v").unwrap();
        symlink("..2026_11_25_16_20_03.1", vol.join("..data")).unwrap();
        symlink("..data/k", vol.join("k")).unwrap();
        let plain = d.path().join("plain");
        fs::create_dir(&plain).unwrap();
        fs::write(plain.join("f"), "x").unwrap();
        // The volume, a key in it, a plain dir: only the last has ctimes
        // outside a volume; both the first two name the volume.
        let s = snap(&[vol.clone(), vol.join("k"), plain.clone()]);
        assert_eq!(s.outside_volumes_ns.len(), 3);
        assert_eq!(s.outside_volumes_ns[..2], [None, None]);
        let f = ctime_ns(&fs::metadata(plain.join("f")).unwrap());
        assert!(s.outside_volumes_ns[2].is_some_and(|t| t >= f));
        assert_eq!(s.volumes, [vol]);
        assert!(s.newest_change_ns >= s.outside_volumes_ns[2]);
    }

    #[test]
    fn volumes_mounted_inside_a_kubelet_volume_are_walked() {
        let d = tmp();
        let ts = d.path().join("..2026_11_25_16_20_03.1");
        fs::create_dir_all(&ts).unwrap();
        fs::write(ts.join("app.conf"), "a").unwrap();
        symlink("..2026_11_25_16_20_03.1", d.path().join("..data")).unwrap();
        symlink("..data/app.conf", d.path().join("app.conf")).unwrap();
        // A second volume mounted at certs/: its own kubelet layout.
        let certs = d.path().join("certs");
        let cts = certs.join("..2026_11_25_16_20_04.2");
        fs::create_dir_all(&cts).unwrap();
        fs::write(cts.join("tls.crt"), "c").unwrap();
        symlink("..2026_11_25_16_20_04.2", certs.join("..data")).unwrap();
        symlink("..data/tls.crt", certs.join("tls.crt")).unwrap();
        let s = snap(&[d.path().to_path_buf()]);
        let names: Vec<_> = s.files.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["app.conf", "certs/tls.crt"]);
    }

    #[test]
    fn special_files_loops_and_dangling_links_are_skipped() {
        let d = tmp();
        nix::unistd::mkfifo(&d.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        symlink("nowhere", d.path().join("dangling")).unwrap();
        symlink("loop", d.path().join("loop")).unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        symlink("..", d.path().join("sub/up")).unwrap();
        fs::write(d.path().join("real"), "r").unwrap();
        let s = snap(&[d.path().to_path_buf()]);
        let names: Vec<_> = s.files.iter().map(|e| e.path.as_str()).collect();
        // `sub/up/real` goes through a loop back to the root: skipped.
        assert_eq!(names, ["real"]);
        let reasons: Vec<_> = s
            .skipped
            .iter()
            .map(|k| (k.path.as_str(), k.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("dangling", "dangling symlink"),
                ("fifo", "FIFO, not read"),
                ("loop", "symlink loop"),
                ("sub/up", "directory loop, not followed")
            ]
        );
    }

    #[test]
    fn stat_cache_skips_old_unchanged_files_only() {
        let d = tmp();
        let f = d.path().join("f");
        fs::write(&f, "one").unwrap();
        let roots = [d.path().to_path_buf()];
        let first = snap(&roots);
        // Just written: too young to trust next time.
        assert!(first.cache.is_empty());
        assert_eq!(first.hashed_bytes, 3);
        // Pretend it is old: a cache entry with matching stat data is used.
        let meta = fs::metadata(&f).unwrap();
        let cached = vec![CachedFile {
            path: "f".into(),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: mtime_ns(&meta),
            ctime_ns: ctime_ns(&meta),
            sha256: "cafe".into(),
        }];
        let walker = Walker {
            roots: &roots,
            excludes: &[],
            cache: &cached,
            full: false,
            budgets: Budgets::default(),
        };
        let s = walker.snapshot().unwrap();
        assert_eq!(s.files[0].sha256, "cafe");
        assert_eq!(s.hashed_bytes, 0);
        let full = Walker {
            full: true,
            ..walker
        }
        .snapshot()
        .unwrap();
        assert_ne!(full.files[0].sha256, "cafe");
    }

    fn walk_with(roots: &[PathBuf], budgets: Budgets) -> Result<Snapshot, DigestError> {
        Walker {
            roots,
            excludes: &[],
            cache: &[],
            full: false,
            budgets,
        }
        .snapshot()
    }

    fn budget_of(r: Result<Snapshot, DigestError>) -> (Budget, String) {
        match r {
            Err(DigestError::Budget { budget, at, .. }) => (budget, at),
            other => panic!("not a budget error: {other:?}"),
        }
    }

    #[test]
    fn every_budget_stops_the_walk_and_is_named() {
        let d = tmp();
        let root = d.path().join("w");
        fs::create_dir_all(root.join("a/b/c")).unwrap();
        fs::write(root.join("a/b/c/deep"), "x").unwrap();
        fs::write(root.join("big"), vec![b'z'; 100]).unwrap();
        for i in 0..5 {
            fs::write(root.join(format!("f{i}")), "1").unwrap();
        }
        let roots = [root.clone()];
        let all = walk_with(&roots, DEFAULT_BUDGETS).unwrap();
        assert_eq!(all.files.len(), 7);
        // w, a, a/b, a/b/c, a/b/c/deep, big, f0..f4: 11 entries.
        fn b(f: impl FnOnce(&mut Budgets)) -> Budgets {
            let mut b = DEFAULT_BUDGETS;
            f(&mut b);
            b
        }
        assert!(walk_with(&roots, b(|b| b.max_entries = 11)).is_ok());
        let (which, _) = budget_of(walk_with(&roots, b(|b| b.max_entries = 10)));
        assert_eq!(which, Budget::Entries);
        assert!(walk_with(&roots, b(|b| b.max_depth = 4)).is_ok());
        let (which, at) = budget_of(walk_with(&roots, b(|b| b.max_depth = 3)));
        assert_eq!(
            (which, at),
            (Budget::Depth, format!("{}/a/b/c/deep", root.display()))
        );
        assert!(walk_with(&roots, b(|b| b.max_bytes = 106)).is_ok());
        let (which, at) = budget_of(walk_with(&roots, b(|b| b.max_bytes = 105)));
        assert_eq!(which, Budget::Bytes);
        assert!(at.ends_with("/big") || at.contains("/f"), "{at}");
        // Names: "w" + "a" "a/b" "a/b/c" "a/b/c/deep" "big" "f0".."f4".
        let names = 1 + 1 + 3 + 5 + 10 + 3 + 5 * 2;
        assert!(walk_with(&roots, b(|b| b.max_name_bytes = names)).is_ok());
        let (which, _) = budget_of(walk_with(&roots, b(|b| b.max_name_bytes = names - 1)));
        assert_eq!(which, Budget::NameBytes);
        let (which, _) = budget_of(walk_with(
            &roots,
            b(|b| b.deadline = Duration::from_nanos(1)),
        ));
        assert_eq!(which, Budget::Deadline);
        // The message names the budget, its limit and the way out.
        let e = walk_with(&roots, b(|b| b.max_entries = 10)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("budget: max-entries (10) exceeded at "),
            "{text}"
        );
        assert!(
            text.contains("--exclude") && text.contains("DRIFTPROBE_MAX_ENTRIES"),
            "{text}"
        );
        let e = walk_with(&roots, b(|b| b.max_bytes = 1 << 20 | 1)).map(|s| s.files.len());
        assert_eq!(e.unwrap(), 7);
        assert_eq!(
            DEFAULT_BUDGETS.limit(Budget::Bytes),
            "256MiB",
            "shown as typed"
        );
        assert_eq!(DEFAULT_BUDGETS.limit(Budget::Deadline), "500ms");
    }

    #[test]
    fn excluded_entries_do_not_count() {
        let d = tmp();
        for i in 0..10 {
            fs::write(d.path().join(format!("{i}.bak")), "b").unwrap();
        }
        fs::write(d.path().join("app.conf"), "a").unwrap();
        let roots = [d.path().to_path_buf()];
        let excludes = [Glob::new("*.bak").unwrap()];
        let budgets = Budgets {
            max_entries: 2,
            ..DEFAULT_BUDGETS
        };
        let s = Walker {
            roots: &roots,
            excludes: &excludes,
            cache: &[],
            full: false,
            budgets,
        }
        .snapshot()
        .unwrap();
        assert_eq!(s.files.len(), 1);
    }

    #[test]
    fn a_path_nested_in_a_volume_is_read_through_data() {
        // `..data` says version 1; the top-level symlink `conf` still leads
        // to version 2's dir (as between two steps of a kubelet update).
        // Every file under conf/app must come from what `..data` names.
        let d = tmp();
        for (ts, v) in [("..ts1", "one"), ("..ts2", "two")] {
            fs::create_dir_all(d.path().join(ts).join("conf/app")).unwrap();
            fs::write(d.path().join(ts).join("conf/app/x"), v).unwrap();
            fs::write(d.path().join(ts).join("conf/app/y"), v).unwrap();
        }
        symlink("..ts1", d.path().join("..data")).unwrap();
        symlink("..ts2/conf", d.path().join("conf")).unwrap();
        let one = {
            let e = tmp();
            fs::write(e.path().join("x"), "one").unwrap();
            fs::write(e.path().join("y"), "one").unwrap();
            snap(&[e.path().to_path_buf()]).digest
        };
        let dir = d.path().join("conf/app");
        assert_eq!(snap(std::slice::from_ref(&dir)).digest, one);
        // A watched file two levels down, alone or with a sibling.
        let x = d.path().join("conf/app/x");
        let s = snap(std::slice::from_ref(&x));
        assert_eq!(s.files[0].sha256, format!("{:x}", Sha256::digest(b"one")));
        let both = snap(&[x.clone(), d.path().join("conf/app/y")]);
        assert!(both
            .files
            .iter()
            .all(|f| f.size == 3 && f.sha256 == s.files[0].sha256));
        // A real directory beside the symlinks is another volume (or none):
        // read as it is.
        fs::create_dir(d.path().join("mnt")).unwrap();
        fs::write(d.path().join("mnt/m"), "m").unwrap();
        let m = snap(&[d.path().join("mnt/m")]);
        assert_eq!(m.files.len(), 1);
        assert!(m.missing.is_empty());
    }

    #[test]
    fn names_escape_non_utf8_and_control_bytes() {
        assert_eq!(escape_name(b"plain.yaml"), "plain.yaml");
        assert_eq!(escape_name(b"caf\xc3\xa9"), "café");
        assert_eq!(escape_name(b"bad\xff"), "bad\\xff");
        assert_eq!(escape_name(b"new\nline"), "new\\x0aline");
        assert_eq!(escape_name(b"back\\x"), "back\\\\x");
        // The ASCII fast path's edges: space is kept, DEL is a control.
        assert_eq!(escape_name(b"a b~"), "a b~");
        assert_eq!(escape_name(b"del\x7f"), "del\\x7f");
    }

    #[test]
    fn one_root_names_are_relative_several_are_qualified() {
        let d = tmp();
        fs::write(d.path().join("a"), "1").unwrap();
        let file = d.path().join("a");
        let one = snap(std::slice::from_ref(&file));
        assert_eq!(one.files[0].path, "a");
        let missing = d.path().join("missing");
        let two = snap(&[d.path().to_path_buf(), missing.clone()]);
        assert_eq!(two.files[0].path, format!("{}/a", d.path().display()));
        assert_eq!(two.missing, [missing.display().to_string()]);
    }
}
