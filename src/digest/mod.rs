//! Hashes the watched paths into a [`Snapshot`]: a sorted manifest of
//! (name, SHA-256 of content) and one tree digest over it. This file is
//! the public face: the snapshot and its parts, the manifest digest, the
//! errors, and the retry that makes a snapshot consistent.
//!
//! It knows the kubelet's ConfigMap/Secret volume layout (see doc/digest.md,
//! "Digest semantics"): user-visible names are symlinks into `..data`, which
//! points at a timestamped payload directory swapped atomically on update. A
//! directory holding a `..data` symlink is read through that payload
//! directory in one go, and the `..data` target is read again after the walk:
//! if it moved, or a payload file vanished, the whole walk is retried, so a
//! snapshot is always wholly old or wholly new, never a mix. A watched path
//! nested inside a volume (`conf/app` of a projected volume) is read through
//! the enclosing volume's `..data` target the same way. Names starting with
//! `..` are never walked.
//!
//! The parts, one concept each: `walk` (one attempt at walking every
//! watched path: walkdir's trees and the stack of volumes between them),
//! `volume` (reading a kubelet volume through `..data`), `budget` (what a
//! snapshot may cost, and the "cannot determine" past that), and `cache`
//! (hashing one file, or trusting the previous probe's digest of it).
//!
//! This module reads files; it knows nothing of baselines or state files.

mod budget;
mod cache;
mod stat;
#[cfg(test)]
mod tests;
mod volume;
mod walk;

pub use budget::{format_size, Budget, Budgets, DEFAULT_BUDGETS};
pub use cache::{CachedFile, RACY_MARGIN_NS};

use crate::glob::Glob;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use walk::{Stop, Walk};

/// How often a walk torn by a concurrent kubelet update is retried.
const MAX_ATTEMPTS: u32 = 50;

/// One regular file of the watched set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Name as shown to users; see [`Walker`] for how it is formed.
    pub path: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub size: u64,
}

/// Something in the watched tree that is not part of the digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
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
            DigestError::Budget { budget, limit, at } => budget.exceeded(f, limit, at),
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

/// Lower-case hex of `bytes`.
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

/// Is `path` on a read-only mount? Unknown counts as writable.
pub fn read_only(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

impl Walker<'_> {
    /// Takes a consistent snapshot, retrying walks torn by a kubelet update.
    pub fn snapshot(&self) -> Result<Snapshot, DigestError> {
        self.snapshot_known(None)
    }

    /// [`Walker::snapshot`], given a manifest whose digest is known (the
    /// baseline's `files` and `digest`, which is always made from them):
    /// when the files found are the same, that digest is the snapshot's
    /// and the manifest is not hashed again. An unchanged tree then costs
    /// no SHA-256 at all.
    pub fn snapshot_known(&self, known: Option<(&[Entry], &str)>) -> Result<Snapshot, DigestError> {
        // A deadline too far away to represent is no deadline.
        let deadline = Instant::now().checked_add(self.budgets.deadline);
        let mut last = PathBuf::new();
        for attempt in 0..MAX_ATTEMPTS {
            let mut walk = Walk::new(self, deadline);
            match walk.all_roots() {
                Ok(()) => return Ok(walk.into_snapshot(attempt, known)),
                Err(Stop::Fatal(e)) => return Err(e),
                Err(Stop::Retry(path)) => {
                    last = path;
                    pause_before_retry(attempt, deadline);
                }
            }
        }
        Err(DigestError::Unstable { path: last })
    }
}

/// Gives a kubelet update in progress a moment (longer after each torn
/// attempt, never past the deadline) before the walk starts again.
fn pause_before_retry(attempt: u32, deadline: Option<Instant>) {
    let mut pause = Duration::from_millis(u64::from(attempt.min(10)));
    if let Some(d) = deadline {
        pause = pause.min(d.saturating_duration_since(Instant::now()));
    }
    std::thread::sleep(pause);
}

/// A watched path as messages and manifests show it: escaped, without a
/// trailing `/` (but `/` itself stays).
pub fn display_root(root: &Path) -> String {
    let s = escape_name(root.as_os_str().as_bytes());
    if s.len() > 1 {
        s.trim_end_matches('/').to_string()
    } else {
        s
    }
}
