//! The stat data the walk uses, whether it came from std's `Metadata` or
//! from an `fstatat` relative to an open directory, and that directory:
//! walkdir names each entry by its full path, so a stat by that path makes
//! the kernel look up every component again; statting the entry's name in
//! its open directory looks up one.

use super::cache::{ctime_ns, mtime_ns};
use nix::sys::stat::{fstatat, FileStat, SFlag};
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// One `stat`'s worth of what the walk looks at.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stat {
    /// The file type bits of `st_mode`.
    kind: u32,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
    pub(super) ctime_ns: i64,
}

impl From<&Metadata> for Stat {
    fn from(m: &Metadata) -> Self {
        Stat {
            kind: m.mode() & SFlag::S_IFMT.bits(),
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: mtime_ns(m),
            ctime_ns: ctime_ns(m),
        }
    }
}

impl From<FileStat> for Stat {
    // The same conversions as std's `MetadataExt` on Linux, so a file
    // statted either way gets the same stat-cache key.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn from(s: FileStat) -> Self {
        let ns = |secs: i64, nsec: i64| secs.saturating_mul(1_000_000_000).saturating_add(nsec);
        Stat {
            kind: (s.st_mode as u32) & SFlag::S_IFMT.bits(),
            dev: s.st_dev as u64,
            ino: s.st_ino as u64,
            size: s.st_size as u64,
            mtime_ns: ns(i64::from(s.st_mtime), i64::from(s.st_mtime_nsec)),
            ctime_ns: ns(i64::from(s.st_ctime), i64::from(s.st_ctime_nsec)),
        }
    }
}

impl Stat {
    fn is(&self, kind: SFlag) -> bool {
        self.kind == kind.bits()
    }

    pub(super) fn is_dir(&self) -> bool {
        self.is(SFlag::S_IFDIR)
    }

    pub(super) fn is_file(&self) -> bool {
        self.is(SFlag::S_IFREG)
    }

    pub(super) fn is_symlink(&self) -> bool {
        self.is(SFlag::S_IFLNK)
    }

    /// What a file that is neither a directory nor a regular file is, for
    /// the skipped list.
    pub(super) fn special_kind(&self) -> String {
        let kind = if self.is(SFlag::S_IFIFO) {
            "FIFO"
        } else if self.is(SFlag::S_IFSOCK) {
            "socket"
        } else if self.is(SFlag::S_IFBLK) || self.is(SFlag::S_IFCHR) {
            "device"
        } else {
            "special file"
        };
        format!("{kind}, not read")
    }
}

/// The directory of the entries walkdir gave last, opened once a second
/// entry there shows it pays: a directory of one entry costs a plain stat,
/// as before, not an open and a close on top.
#[derive(Default)]
pub(super) struct Parent {
    /// The directory's path as walkdir spells its entries' (`dir/`): their
    /// full path minus the name.
    path: Vec<u8>,
    /// Open once a second entry was met; `None` before, or if it could not
    /// be opened (the stats then go by full path).
    dir: Option<File>,
    /// Whether opening `path` was tried: a directory that cannot be opened
    /// is not tried again for each of its entries.
    tried: bool,
}

impl Parent {
    /// The lstat of `path`, an entry walkdir read from its parent directory.
    pub(super) fn lstat(&mut self, path: &Path) -> io::Result<Stat> {
        let bytes = path.as_os_str().as_bytes();
        let name = path.file_name().map_or(&b""[..], |n| n.as_bytes());
        let parent = match bytes.strip_suffix(name) {
            Some(parent) if !name.is_empty() && parent.ends_with(b"/") => parent,
            _ => return std::fs::symlink_metadata(path).map(|m| Stat::from(&m)),
        };
        if self.path != parent {
            self.path.clear();
            self.path.extend_from_slice(parent);
            self.dir = None;
            self.tried = false;
            return std::fs::symlink_metadata(path).map(|m| Stat::from(&m));
        }
        if !self.tried {
            self.tried = true;
            // O_DIRECTORY: what was a directory is still one, or this
            // fails and the stats go by path, which reports what it is now.
            self.dir = OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
                .open(std::ffi::OsStr::from_bytes(parent))
                .ok();
        }
        match &self.dir {
            Some(dir) => fstatat(
                Some(dir.as_raw_fd()),
                name,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(Stat::from)
            .map_err(io::Error::from),
            None => std::fs::symlink_metadata(path).map(|m| Stat::from(&m)),
        }
    }
}
