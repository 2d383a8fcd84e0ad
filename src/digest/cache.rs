//! One regular file into an [`Entry`]: its digest trusted from the
//! previous probe's stat cache when nothing about it changed, or else its
//! bytes streamed through SHA-256 with a fixed buffer (never kept, never
//! printed) within the byte budget and the deadline.
//!
//! The stat cache keys a digest by (device, inode, size, mtime, ctime). It
//! only keeps files whose timestamps were more than [`RACY_MARGIN_NS`] old
//! when hashed, so a write inside the file system's timestamp granularity
//! is never missed. Inside a read-only kubelet volume the ctime is left out
//! of the key: the kubelet's fsGroup ownership pass moves it at every pod
//! sync, while new content always comes as new files (a new inode) in a
//! new payload dir.

use super::budget::past;
use super::stat::Stat;
use super::walk::{fatal, is_gone, Step, Walk};
use super::{hex, Budget, Entry};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// A file whose mtime or ctime is younger than this when hashed is hashed
/// again next time instead of being trusted from the stat cache.
pub const RACY_MARGIN_NS: i64 = 1_000_000_000;

/// The read buffer's size: bytes hashed per read. 16 KiB, not more: each
/// read's copy out of the page cache is then still in the CPU's cache when
/// it is hashed. With 64 KiB the reads' system time was 2.5× as long and
/// hashing 500 MiB about 0.8× `openssl dgst -sha256` (8 KiB reads) instead
/// of 1.1× (bench row 2a, doc/performance.md).
pub(super) const READ_BUFFER: usize = 16 * 1024;

/// Stat data that identifies an unchanged file, and its digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedFile {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub sha256: String,
}

pub(super) fn ctime_ns(m: &Metadata) -> i64 {
    m.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.ctime_nsec())
}

pub(super) fn mtime_ns(m: &Metadata) -> i64 {
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

pub(super) fn wall_ns() -> i64 {
    crate::time::now().saturating_mul(1_000_000)
}

/// Opens `path` for reading. O_NONBLOCK: if the path was swapped for a
/// FIFO since the stat, opening it must not hang the probe.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
}

impl<'w> Walk<'w> {
    /// Adds regular file `path` (named `rel` under watched path `index`)
    /// to the manifest: from the stat cache, or hashed.
    pub(super) fn file(
        &mut self,
        index: usize,
        path: &Path,
        rel: &str,
        meta: &Stat,
        in_payload: bool,
    ) -> Step {
        let name = self.name(index, rel);
        // Only the kubelet writes a read-only volume, and never in place:
        // the ctime (moved by its fsGroup pass) says nothing there.
        let trust_mtime = in_payload && self.ro_volume;
        if let Some(c) = self.cache_hit(&name, meta, trust_mtime) {
            let entry = Entry {
                path: name,
                sha256: c.sha256.clone(),
                size: c.size,
            };
            self.files.push((entry, Some(c.clone())));
            return Ok(());
        }
        let mut file = match open_nonblocking(path) {
            Ok(f) => f,
            Err(e) if is_gone(&e) => return self.vanished(path, in_payload),
            Err(e) => return Err(fatal(path, e)),
        };
        let fmeta = match file.metadata() {
            Ok(m) => Stat::from(&m),
            Err(e) => return Err(fatal(path, e)),
        };
        if !fmeta.is_file() {
            self.skip(name, fmeta.special_kind());
            return Ok(());
        }
        // A file that cannot fit in what is left of the byte budget (a
        // sparse 1T file) is refused before a byte is read.
        if self.hashed_bytes.saturating_add(fmeta.size) > self.walker.budgets.max_bytes {
            return Err(self.over(Budget::Bytes, index, rel));
        }
        // Only the bytes there when we looked: a file that keeps growing
        // must not keep the probe reading past the kubelet's timeout.
        let sha256 = self.hash(&mut file, fmeta.size, path, index, rel)?;
        let cached = self
            .trusted_next_time(&file, &fmeta, trust_mtime)
            .then(|| CachedFile {
                path: name.clone(),
                dev: fmeta.dev,
                ino: fmeta.ino,
                size: fmeta.size,
                mtime_ns: fmeta.mtime_ns,
                ctime_ns: fmeta.ctime_ns,
                sha256: sha256.clone(),
            });
        let entry = Entry {
            path: name,
            sha256,
            size: fmeta.size,
        };
        self.files.push((entry, cached));
        Ok(())
    }

    /// The previous probe's entry for `name`, if its stat data still
    /// matches `meta` (and the cache is in use at all).
    fn cache_hit(&self, name: &str, meta: &Stat, trust_mtime: bool) -> Option<&'w CachedFile> {
        if self.walker.full {
            return None;
        }
        // The cache is stored sorted by name (a snapshot's order); an
        // entry not found that way is simply hashed again.
        let cache = self.walker.cache;
        let found = cache.binary_search_by(|c| c.path.as_str().cmp(name));
        found.ok().map(|i| &cache[i]).filter(|c| {
            c.dev == meta.dev
                && c.ino == meta.ino
                && c.size == meta.size
                && c.mtime_ns == meta.mtime_ns
                && (trust_mtime || c.ctime_ns == meta.ctime_ns)
        })
    }

    /// Whether the digest just taken of `file` (stat data `fmeta` before
    /// reading) may be trusted by the next probe: the file was not written
    /// to while it was read, and its timestamps are older than the racy
    /// margin, so a later write would move them.
    fn trusted_next_time(&self, file: &File, fmeta: &Stat, trust_mtime: bool) -> bool {
        // Written to while we read it: what we hashed is not a settled
        // state, so it is never cached (the next probe reads it again).
        let settled = file.metadata().is_ok_and(|m| {
            (m.size(), mtime_ns(&m)) == (fmeta.size, fmeta.mtime_ns)
                && (trust_mtime || ctime_ns(&m) == fmeta.ctime_ns)
        });
        let newest = match trust_mtime {
            true => fmeta.mtime_ns,
            false => fmeta.mtime_ns.max(fmeta.ctime_ns),
        };
        settled && newest.saturating_add(RACY_MARGIN_NS) < self.started_ns
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
            self.buf = vec![0u8; READ_BUFFER];
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
