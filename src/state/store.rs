//! The state dir and the files in it: a directory that is ours alone
//! (owned by us, not writable by others; default `/tmp/driftprobe`, 0700;
//! in a shared dir such as an emptyDir, a private `driftprobe-<euid>`
//! inside it), opened once, every file reached through that descriptor.
//! Writes are atomic (temp file, fsync, rename) and happen only while
//! holding an exclusive `flock` on a sibling `.lock` file ([`Locked`]),
//! because the kubelet runs liveness and readiness execs concurrently.
//! Nothing is opened through a symlink: a link planted in a shared `/tmp`
//! makes driftprobe refuse, not follow. What the bytes mean is
//! [`super::codec`]'s.

use super::{json_compact, parse, Loaded, State, StateError};
use crate::digest::plain_io;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, Flock, FlockArg, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The most the container's shared file (`container.shared`: the files
/// given to the app, one entry each, and the reload claim) is read: room
/// for the default budgets' worst case several times over, so budgets
/// raised in the pod's env still fit.
const SHARED_MAX_BYTES: u64 = 64 << 20;

fn io_err(path: &Path, e: &io::Error) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        reason: plain_io(e),
    }
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
fn direct_exposure(path: &Path, st: &FileStat, euid: u32) -> Option<String> {
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
        let Some(fd) = open_named(path, create)? else {
            return Ok(StateDir::absent(path, None));
        };
        let st = fstat(fd.as_raw_fd()).map_err(|e| dir_err(path, errno_text(e)))?;
        let owned = st.st_uid == euid;
        if ours_alone {
            if !owned {
                return Err(dir_err(path, planted(st.st_uid)));
            }
            tighten(&fd, st.st_mode, create).map_err(|e| dir_err(path, e))?;
        } else if !owned || st.st_mode & 0o022 != 0 {
            return Self::open_private(path, &fd, &st, euid, create);
        }
        Ok(StateDir {
            path: path.to_path_buf(),
            fd: Some(fd),
            exposure: direct_exposure(path, &st, euid),
        })
    }

    /// A dir that is not ours alone (an emptyDir is root's, 0777): the
    /// private `driftprobe-<euid>` inside it, made when allowed; the dir
    /// itself is not changed.
    fn open_private(
        path: &Path,
        parent: &OwnedFd,
        st: &FileStat,
        euid: u32,
        create: bool,
    ) -> Result<StateDir, StateError> {
        let name = format!("driftprobe-{euid}");
        let sub = path.join(&name);
        let exposure = rename_exposure(&sub, path, st.st_mode, st.st_uid, euid);
        let Some(sub_fd) = open_private_sub(path, parent.as_raw_fd(), &name, st, create)? else {
            return Ok(StateDir::absent(&sub, exposure));
        };
        let sst = fstat(sub_fd.as_raw_fd()).map_err(|e| dir_err(&sub, errno_text(e)))?;
        if sst.st_uid != euid {
            return Err(dir_err(&sub, planted(sst.st_uid)));
        }
        tighten(&sub_fd, sst.st_mode, create).map_err(|e| dir_err(&sub, e))?;
        Ok(StateDir {
            path: sub,
            fd: Some(sub_fd),
            exposure,
        })
    }

    /// No state dir yet (only when nothing may be created): no state yet.
    fn absent(path: &Path, exposure: Option<String>) -> StateDir {
        StateDir {
            path: path.to_path_buf(),
            fd: None,
            exposure,
        }
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

fn dir_err(path: &Path, reason: String) -> StateError {
    StateError::Dir {
        path: path.to_path_buf(),
        reason,
    }
}

/// Opens the dir the user named (never through a symlink), creating it
/// and any missing parents (0700) when `create`; `None` when it does not
/// exist and may not be made.
fn open_named(path: &Path, create: bool) -> Result<Option<OwnedFd>, StateError> {
    let fd = match open_dir_at(None, path) {
        Err(Errno::ENOENT) if create => {
            create_named(path)?;
            open_dir_at(None, path)
        }
        r => r,
    };
    match fd {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) if !create => Ok(None),
        Err(e) => Err(dir_err(
            path,
            describe_open_error(e, fs::symlink_metadata(path)),
        )),
    }
}

fn create_named(path: &Path) -> Result<(), StateError> {
    let Err(e) = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    else {
        return Ok(());
    };
    // A concurrent probe may have made it: look again.
    if fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let hint = match e.raw_os_error() {
        Some(nix::libc::EROFS) => {
            " (readOnlyRootFilesystem? mount an emptyDir and pass --state-dir)"
        }
        Some(nix::libc::EACCES | nix::libc::EPERM) => NOT_WRITABLE_HINT,
        _ => "",
    };
    Err(dir_err(
        path,
        format!("cannot create it: {}{hint}", plain_io(&e)),
    ))
}

/// Opens the private subdir `name` of `parent` (the dir at `path`, whose
/// stat is `st`), making it (0700) when `create`; `None` when it does not
/// exist and may not be made.
fn open_private_sub(
    path: &Path,
    parent: RawFd,
    name: &str,
    st: &FileStat,
    create: bool,
) -> Result<Option<OwnedFd>, StateError> {
    let sub = path.join(name);
    let opened = match open_dir_at(Some(parent), Path::new(name)) {
        Err(Errno::ENOENT) if create => {
            match mkdirat(Some(parent), name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => {
                    return Err(dir_err(
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
            open_dir_at(Some(parent), Path::new(name))
        }
        r => r,
    };
    match opened {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) if !create => Ok(None),
        Err(e) => Err(dir_err(&sub, describe_sub_error(parent, name, e))),
    }
}

/// Why the private subdir `name` of `parent` could not be opened.
fn describe_sub_error(parent: RawFd, name: &str, e: Errno) -> String {
    match fstatat(Some(parent), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(s) if s.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() => {
            SYMLINK_REASON.to_string()
        }
        Ok(s) if s.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFDIR.bits() => {
            "is not a directory".to_string()
        }
        _ => errno_text(e),
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
        let json = json_compact(state).map_err(|reason| StateError::Io {
            path: self.path.clone(),
            reason,
        })?;
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

#[cfg(test)]
mod tests;
