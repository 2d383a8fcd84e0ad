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
//! Names starting with `..` are never walked.
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
//! This module reads files; it knows nothing of baselines or state files.

use crate::glob::Glob;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A file whose mtime or ctime is younger than this when hashed is hashed
/// again next time instead of being trusted from the stat cache.
pub const RACY_MARGIN_NS: i64 = 1_000_000_000;
/// How often a walk torn by a concurrent kubelet update is retried.
const MAX_ATTEMPTS: u32 = 50;
/// A guard against symlink farms that fan out without looping.
const MAX_FILES: usize = 20_000;

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
    Unreadable {
        path: PathBuf,
        source: io::Error,
    },
    /// The tree kept changing under every attempt.
    Unstable {
        path: PathBuf,
    },
    TooManyFiles,
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::Unreadable { path, source } => {
                write!(f, "cannot read {}: {}", path.display(), plain_io(source))
            }
            DigestError::Unstable { path } => write!(
                f,
                "{} kept changing during {MAX_ATTEMPTS} attempts to read it consistently",
                path.display()
            ),
            DigestError::TooManyFiles => {
                write!(
                    f,
                    "more than {MAX_FILES} files under the watched paths: watch the config dirs only, or leave some out with --exclude"
                )
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

/// Displays a file name from raw bytes: UTF-8 as is, everything else (and
/// control characters and `\`) escaped as `\xNN`, so that the mapping is
/// one-to-one and names never break the one-line output.
pub fn escape_name(bytes: &[u8]) -> String {
    // Nearly every name is printable ASCII without `\`: copied as is.
    if bytes
        .iter()
        .all(|&b| (b' '..b'\x7f').contains(&b) && b != b'\\')
    {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if c.is_control() {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    escape_byte(&mut out, b);
                }
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            escape_byte(&mut out, b);
        }
    }
    out
}

/// `\xNN`, lower-case hex.
fn escape_byte(out: &mut String, b: u8) {
    out.push_str("\\x");
    out.push_str(&hex(&[b]));
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

fn hex(bytes: &[u8]) -> String {
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

fn wall_ns() -> i64 {
    crate::time::now().saturating_mul(1_000_000)
}

impl Walker<'_> {
    /// Takes a consistent snapshot, retrying walks torn by a kubelet update.
    pub fn snapshot(&self) -> Result<Snapshot, DigestError> {
        let mut last = PathBuf::new();
        for attempt in 0..MAX_ATTEMPTS {
            let mut walk = Walk {
                walker: self,
                files: Vec::new(),
                skipped: Vec::new(),
                missing: Vec::new(),
                newest: None,
                hashed_bytes: 0,
                links: Vec::new(),
                ancestors: Vec::new(),
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
                    return Ok(Snapshot {
                        digest: tree_digest(&files),
                        files,
                        skipped: walk.skipped,
                        missing: walk.missing,
                        newest_change_ns: walk.newest,
                        cache,
                        hashed_bytes: walk.hashed_bytes,
                        retries: attempt,
                    });
                }
                Err(Stop::Fatal(e)) => return Err(e),
                Err(Stop::Retry(path)) => {
                    last = path;
                    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(10))));
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
    hashed_bytes: u64,
    /// Every `..data` link read, with the target it had.
    links: Vec<(PathBuf, PathBuf)>,
    /// (dev, ino) of the directories being walked, for loop detection.
    ancestors: Vec<(u64, u64)>,
    started_ns: i64,
    /// The read buffer, allocated by the first file that is hashed: a walk
    /// served from the stat cache never touches (page-faults) its 64 KiB.
    buf: Vec<u8>,
}

impl Walk<'_> {
    fn all_roots(&mut self) -> Step {
        let roots = self.walker.roots;
        for (index, root) in roots.iter().enumerate() {
            self.root(index, root)?;
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
        let root = display_root(&roots[index]);
        if rel.is_empty() {
            root
        } else if root.ends_with('/') {
            format!("{root}{rel}")
        } else {
            format!("{root}/{rel}")
        }
    }

    fn note(&mut self, m: &Metadata) {
        let c = ctime_ns(m);
        self.newest = Some(self.newest.map_or(c, |n| n.max(c)));
    }

    fn root(&mut self, index: usize, root: &Path) -> Step {
        let lmeta = match fs::symlink_metadata(root) {
            Ok(m) => m,
            Err(e) if is_gone(&e) => {
                self.missing.push(display_root(root));
                return Ok(());
            }
            Err(e) => return Err(fatal(root, e)),
        };
        // A watched path inside a kubelet volume is read through `..data`:
        // remember the swap marker for the consistency check.
        let in_volume = self.kubelet_marker_of_parent(root)?;
        let meta = if lmeta.file_type().is_symlink() {
            self.note(&lmeta);
            match fs::metadata(root) {
                Ok(m) => m,
                Err(e) if is_gone(&e) && in_volume => return Err(Stop::Retry(root.into())),
                Err(e) if is_gone(&e) || is_loop(&e) => {
                    self.missing.push(display_root(root));
                    return Ok(());
                }
                Err(e) => return Err(fatal(root, e)),
            }
        } else {
            lmeta
        };
        self.entry(index, root, "", &meta, in_volume)
    }

    /// If `path`'s parent is a kubelet volume, records its `..data` target.
    fn kubelet_marker_of_parent(&mut self, path: &Path) -> Step<bool> {
        match path.parent() {
            Some(parent) => Ok(self.kubelet_payload(parent)?.is_some()),
            None => Ok(false),
        }
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
        self.note(&lmeta);
        let target = match fs::read_link(&link) {
            Ok(t) => t,
            Err(e) if is_gone(&e) => return Err(Stop::Retry(link)),
            Err(e) => return Err(fatal(&link, e)),
        };
        let payload = dir.join(&target);
        if !self.links.iter().any(|(l, _)| l == &link) {
            self.links.push((link, target));
        }
        Ok(Some(payload))
    }

    fn dir(&mut self, index: usize, dir: &Path, rel: &str, in_payload: bool) -> Step {
        let Some(payload) = self.kubelet_payload(dir)? else {
            return self.list(index, dir, rel, in_payload, false);
        };
        self.list(index, &payload, rel, true, false)?;
        // Volumes mounted inside this one (a Secret at /etc/app/certs in a
        // ConfigMap at /etc/app) are real directories at its top level,
        // beside the kubelet's symlinks: walk them too.
        self.list(index, dir, rel, in_payload, true)
    }

    /// Walks the entries of `dir` (never `..*`); with `mounts_only`, only
    /// the real directories among them.
    fn list(
        &mut self,
        index: usize,
        dir: &Path,
        rel: &str,
        in_payload: bool,
        mounts_only: bool,
    ) -> Step {
        let dir = dir.to_path_buf();
        let meta = match fs::metadata(&dir) {
            Ok(m) => m,
            Err(e) if is_gone(&e) => return self.vanished(&dir, in_payload),
            Err(e) => return Err(fatal(&dir, e)),
        };
        self.note(&meta);
        let id = (meta.dev(), meta.ino());
        if self.ancestors.contains(&id) {
            let name = self.name(index, rel);
            self.skip(name, "directory loop, not followed".into());
            return Ok(());
        }
        let reader = match fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if is_gone(&e) => return self.vanished(&dir, in_payload),
            Err(e) => return Err(fatal(&dir, e)),
        };
        let mut names = Vec::new();
        for entry in reader {
            match entry {
                Ok(entry) => {
                    let name = entry.file_name();
                    // Mounts are real directories: the entry's type from
                    // readdir says so without a stat per kubelet symlink.
                    if !name.as_bytes().starts_with(b"..")
                        && (!mounts_only || entry.file_type().is_ok_and(|t| t.is_dir()))
                    {
                        names.push((name, entry));
                    }
                }
                Err(e) if is_gone(&e) => return self.vanished(&dir, in_payload),
                Err(e) => return Err(fatal(&dir, e)),
            }
        }
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.ancestors.push(id);
        for (name, entry) in names {
            let escaped = escape_name(name.as_bytes());
            let child_rel = if rel.is_empty() {
                escaped
            } else {
                format!("{rel}/{escaped}")
            };
            let path = dir.join(&name);
            if self.walker.excludes.iter().any(|g| g.is_match(&child_rel)) {
                continue;
            }
            self.child(index, &path, &entry, &child_rel, in_payload)?;
        }
        self.ancestors.pop();
        Ok(())
    }

    /// `entry` is `path`'s entry in the directory being listed: its lstat
    /// is taken relative to that directory, not by looking up every
    /// component of `path` again.
    fn child(
        &mut self,
        index: usize,
        path: &Path,
        entry: &fs::DirEntry,
        rel: &str,
        in_payload: bool,
    ) -> Step {
        let lmeta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if is_gone(&e) => return self.vanished(path, in_payload),
            Err(e) => return Err(fatal(path, e)),
        };
        let meta = if lmeta.file_type().is_symlink() {
            self.note(&lmeta);
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
        self.entry(index, path, rel, &meta, in_payload)
    }

    /// Walks a directory, hashes a file, or skips anything else.
    fn entry(
        &mut self,
        index: usize,
        path: &Path,
        rel: &str,
        meta: &Metadata,
        in_payload: bool,
    ) -> Step {
        self.note(meta);
        let ft = meta.file_type();
        if ft.is_dir() {
            self.dir(index, path, rel, in_payload)
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
        if self.files.len() >= MAX_FILES {
            return Err(Stop::Fatal(DigestError::TooManyFiles));
        }
        let name = self.name(index, rel);
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
                    && c.ctime_ns == ctime_ns(meta)
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
        // Only the bytes there when we looked: a file that keeps growing
        // must not keep the probe reading past the kubelet's timeout.
        let sha256 = match self.hash(&mut file, fmeta.size()) {
            Ok(h) => h,
            Err(e) => return Err(fatal(path, e)),
        };
        // Written to while we read it: what we hashed is not a settled
        // state, so it is never cached (the next probe reads it again).
        let settled = file.metadata().is_ok_and(|m| {
            (m.size(), mtime_ns(&m), ctime_ns(&m))
                == (fmeta.size(), mtime_ns(&fmeta), ctime_ns(&fmeta))
        });
        let newest = mtime_ns(&fmeta).max(ctime_ns(&fmeta));
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

    /// SHA-256 of the first `size` bytes of `file` (fewer if it shrank).
    fn hash(&mut self, file: &mut File, size: u64) -> io::Result<String> {
        let mut h = Sha256::new();
        if self.buf.is_empty() {
            self.buf = vec![0u8; 64 * 1024];
        }
        let mut file = file.take(size);
        loop {
            match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    h.update(&self.buf[..n]);
                    self.hashed_bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
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
