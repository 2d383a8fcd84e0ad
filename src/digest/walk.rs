//! One attempt at walking every watched path. walkdir walks each
//! directory tree, down to where a kubelet volume starts; the walk keeps
//! its own stack of those walks (no recursion a tree can deepen), and
//! checks every entry against the [`Budgets`](super::Budgets) as it goes.
//!
//! Symlinks are followed with loop detection (walkdir's within one tree,
//! ours across volumes); FIFOs, sockets and devices are reported and never
//! opened. Kubelet volumes are read by `volume.rs`, files by `cache.rs`;
//! the retry of a torn walk is `mod.rs`'s.

use super::budget::past;
use super::cache::wall_ns;
use super::stat::{Parent, Stat};
use super::{display_root, escape_name, tree_digest};
use super::{CachedFile, DigestError, Entry, Skipped, Snapshot, Walker};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use walkdir::WalkDir;

/// Why one attempt stopped early.
pub(super) enum Stop {
    /// A concurrent update tore the walk; start again.
    Retry(PathBuf),
    Fatal(DigestError),
}

pub(super) type Step<T = ()> = Result<T, Stop>;

pub(super) fn fatal(path: &Path, source: io::Error) -> Stop {
    Stop::Fatal(DigestError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

pub(super) fn is_gone(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound) || e.raw_os_error() == Some(nix::libc::ENOTDIR)
}

/// The io::Error inside a walkdir error (whose own wrapping hides the OS
/// error code); a loop walkdir found itself is ELOOP.
fn plain_walk_error(e: walkdir::Error) -> io::Error {
    e.into_io_error()
        .unwrap_or_else(|| io::Error::from_raw_os_error(nix::libc::ELOOP))
}

pub(super) fn is_loop(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::ELOOP)
}

/// One attempt at walking everything.
pub(super) struct Walk<'w> {
    pub(super) walker: &'w Walker<'w>,
    /// Each file found, with its stat-cache entry when it may be trusted
    /// next time.
    pub(super) files: Vec<(Entry, Option<CachedFile>)>,
    pub(super) skipped: Vec<Skipped>,
    pub(super) missing: Vec<String>,
    pub(super) newest: Option<i64>,
    /// The newest ctime outside kubelet volumes, of the current root.
    pub(super) outside: Option<i64>,
    /// `outside` of each root done.
    pub(super) per_root: Vec<Option<i64>>,
    /// The kubelet volume whose payload is being walked is read-only: its
    /// files' stat-cache entries ignore ctimes.
    pub(super) ro_volume: bool,
    pub(super) hashed_bytes: u64,
    /// Every `..data` link read, with the target it had.
    pub(super) links: Vec<(PathBuf, PathBuf)>,
    /// The directories being read, innermost last: the walk's explicit
    /// stack (walkdir keeps its own inside each frame). Nothing here
    /// recurses, so no tree can overflow the call stack; its height is
    /// bounded by the depth budget.
    pub(super) stack: Vec<Frame<'w>>,
    /// (depth, (dev, ino)) of every directory above the one being read,
    /// across frames: a directory met again below itself is a loop.
    /// walkdir sees loops within one frame only, and through symlinks only.
    pub(super) ancestors: Vec<(u32, (u64, u64))>,
    /// Entries and name bytes counted against the budgets so far.
    pub(super) entries: u64,
    pub(super) name_bytes: u64,
    pub(super) deadline: Option<Instant>,
    pub(super) started_ns: i64,
    /// The read buffer, allocated by the first file that is hashed: a walk
    /// served from the stat cache never touches (page-faults) its
    /// [`READ_BUFFER`](super::cache::READ_BUFFER) bytes.
    pub(super) buf: Vec<u8>,
    /// The directory walkdir's entries come from, to stat them in.
    parent: Parent,
}

/// Keeps an entry in a walkdir walk: not a kubelet internal (`..*`), not
/// excluded. Past the deadline every entry is kept, so the walk stops at
/// the next one instead of reading on through a directory of skipped names.
pub(super) type Keep<'w> = Box<dyn FnMut(&walkdir::DirEntry) -> bool + 'w>;

/// Where a frame's entries come from.
pub(super) enum Source<'w> {
    /// A directory tree, walked by walkdir down to where a nested kubelet
    /// volume starts.
    Tree(walkdir::FilterEntry<walkdir::IntoIter, Keep<'w>>),
    /// A kubelet volume's own directory, read for the real directories
    /// beside its symlinks only (volumes mounted inside it): its files
    /// are read through the payload directory instead.
    Mounts(fs::ReadDir),
}

/// A directory being read.
pub(super) struct Frame<'w> {
    pub(super) source: Source<'w>,
    /// The directory read (for a kubelet volume, its payload directory).
    pub(super) dir: PathBuf,
    /// Its name relative to the watched path (`""` for the path itself).
    pub(super) rel: String,
    /// Which watched path it is under.
    pub(super) index: usize,
    /// Levels below the watched path (0 for the path itself).
    pub(super) depth: u32,
    /// Read through a kubelet `..data` target: a vanished entry means a
    /// torn walk.
    pub(super) in_payload: bool,
}

/// `rel`, the name of directory `dir` relative to the watched path, joined
/// with what `path` has below `dir`, escaped as the manifest writes it.
fn rel_below(dir: &Path, rel: &str, path: &Path) -> String {
    // walkdir builds every path by joining names onto `dir`: a byte prefix.
    let bytes = path.as_os_str().as_bytes();
    let below = match bytes.strip_prefix(dir.as_os_str().as_bytes()) {
        Some(below) => below.strip_prefix(b"/").unwrap_or(below),
        None => bytes,
    };
    if below.is_empty() {
        return rel.to_string();
    }
    let below = escape_name(below);
    if rel.is_empty() {
        below
    } else {
        format!("{rel}/{below}")
    }
}

impl<'w> Walk<'w> {
    /// A walk of `walker`'s paths, to end by `deadline`.
    pub(super) fn new(walker: &'w Walker<'w>, deadline: Option<Instant>) -> Self {
        Walk {
            walker,
            // The last walk's cache names about as many files as this one
            // finds: no reallocation copies the list as it grows.
            files: Vec::with_capacity(walker.cache.len()),
            skipped: Vec::new(),
            missing: Vec::new(),
            newest: None,
            outside: None,
            per_root: Vec::new(),
            ro_volume: false,
            hashed_bytes: 0,
            links: Vec::new(),
            stack: Vec::new(),
            ancestors: Vec::new(),
            entries: 0,
            name_bytes: 0,
            deadline,
            started_ns: wall_ns(),
            buf: Vec::new(),
            parent: Parent::default(),
        }
    }

    /// The snapshot a completed walk found, `retries` torn walks after the
    /// first. `known`: a manifest and its digest (the baseline's); a walk
    /// that found the same manifest takes that digest instead of hashing
    /// the manifest again.
    pub(super) fn into_snapshot(self, retries: u32, known: Option<(&[Entry], &str)>) -> Snapshot {
        // One sort puts the manifest in canonical order and the stat cache
        // in the order lookups expect. It sorts indices: moving the found
        // entries themselves (a name, a digest and stat data each) through
        // the sort cost more than comparing their names.
        let mut found = self.files;
        let mut order: Vec<usize> = (0..found.len()).collect();
        order.sort_unstable_by(|&a, &b| found[a].0.path.cmp(&found[b].0.path));
        order.dedup_by(|a, b| found[*a].0.path == found[*b].0.path);
        let mut files = Vec::with_capacity(order.len());
        let mut cache = Vec::with_capacity(order.len());
        for i in order {
            let (entry, stat) = &mut found[i];
            let empty = Entry {
                path: String::new(),
                sha256: String::new(),
                size: 0,
            };
            files.push(std::mem::replace(entry, empty));
            cache.extend(stat.take());
        }
        let digest = match known {
            Some((manifest, digest)) if manifest == files.as_slice() => digest.to_string(),
            _ => tree_digest(&files),
        };
        // Directories are read in the order the file system gives: sort
        // what is shown.
        let mut skipped = self.skipped;
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Snapshot {
            digest,
            files,
            skipped,
            missing: self.missing,
            newest_change_ns: self.newest,
            outside_volumes_ns: self.per_root,
            volumes: self
                .links
                .iter()
                .filter_map(|(l, _)| l.parent().map(Path::to_path_buf))
                .collect(),
            cache,
            hashed_bytes: self.hashed_bytes,
            retries,
        }
    }

    pub(super) fn all_roots(&mut self) -> Step {
        let roots = self.walker.roots;
        for (index, root) in roots.iter().enumerate() {
            self.outside = None;
            self.root(index, root)?;
            self.drain()?;
            self.per_root.push(self.outside);
        }
        // Did any `..data` move while we read? Then we may hold a mix.
        self.links_unmoved()
    }

    /// The name of `rel` (relative to watched path `index`) in the manifest.
    pub(super) fn name(&self, index: usize, rel: &str) -> String {
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
    pub(super) fn shown(&self, index: usize, rel: &str) -> String {
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
    pub(super) fn note(&mut self, m: &Stat, in_volume: bool) {
        let c = m.ctime_ns;
        self.newest = Some(self.newest.map_or(c, |n| n.max(c)));
        if !in_volume {
            self.outside = Some(self.outside.map_or(c, |n| n.max(c)));
        }
    }

    fn root(&mut self, index: usize, root: &Path) -> Step {
        self.check_deadline(index, "")?;
        self.count(index, "", 0)?;
        // Inside a kubelet volume, at any depth: read through `..data`.
        let (path, in_volume) = self.through_volume(root)?;
        let lmeta = match fs::symlink_metadata(&path) {
            Ok(m) => Stat::from(&m),
            Err(e) if is_gone(&e) => {
                // A torn read shows as a moved `..data` at the end.
                self.missing.push(display_root(root));
                return Ok(());
            }
            Err(e) => return Err(fatal(&path, e)),
        };
        let meta = if lmeta.is_symlink() {
            self.note(&lmeta, in_volume);
            match fs::metadata(&path) {
                Ok(m) => Stat::from(&m),
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

    /// Enters directory `dir`, `depth` levels down: a kubelet volume is
    /// read through its payload directory, with the real directories beside
    /// its symlinks (volumes mounted inside it, a Secret at /etc/app/certs
    /// in a ConfigMap at /etc/app) after it. Returns whether `dir` is a
    /// plain directory for the caller to walk; `false` if it was a loop
    /// (skipped) or a volume (frames pushed).
    fn dir(
        &mut self,
        index: usize,
        dir: &Path,
        meta: &Stat,
        rel: &str,
        in_payload: bool,
        depth: u32,
    ) -> Step<bool> {
        // Directories met at this depth or deeper are no longer above us.
        while self.ancestors.last().is_some_and(|a| a.0 >= depth) {
            self.ancestors.pop();
        }
        if !self.first_visit(index, rel, (meta.dev, meta.ino), depth) {
            return Ok(false);
        }
        // Directories are noted here, not by `entry`: the payload dir and
        // the volume dir itself are the volume's.
        let payload = self.kubelet_payload(dir)?;
        self.note(meta, in_payload || payload.is_some());
        let Some(payload) = payload else {
            return Ok(true);
        };
        // A stack: the frame pushed last is read first.
        let entries = match fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) if is_gone(&e) => return self.vanished(dir, in_payload).map(|()| false),
            Err(e) => return Err(fatal(dir, e)),
        };
        self.push(Source::Mounts(entries), index, dir, rel, in_payload, depth);
        let id = match fs::metadata(&payload) {
            Ok(m) => {
                let m = Stat::from(&m);
                self.note(&m, true);
                (m.dev, m.ino)
            }
            Err(e) if is_gone(&e) => return self.vanished(&payload, true).map(|()| false),
            Err(e) => return Err(fatal(&payload, e)),
        };
        if self.first_visit(index, rel, id, depth) {
            self.walk(index, &payload, rel, true, depth);
        }
        Ok(false)
    }

    /// Records directory `id` as an ancestor of what follows, unless it is
    /// one already (a loop: skipped, `false`).
    fn first_visit(&mut self, index: usize, rel: &str, id: (u64, u64), depth: u32) -> bool {
        if self.ancestors.iter().any(|a| a.1 == id) {
            let name = self.name(index, rel);
            self.skip(name, "directory loop, not followed".into());
            return false;
        }
        self.ancestors.push((depth, id));
        true
    }

    fn push(
        &mut self,
        source: Source<'w>,
        index: usize,
        dir: &Path,
        rel: &str,
        in_payload: bool,
        depth: u32,
    ) {
        self.stack.push(Frame {
            source,
            dir: dir.to_path_buf(),
            rel: rel.to_string(),
            index,
            depth,
            in_payload,
        });
    }

    /// Pushes a frame walking the tree below directory `dir` with walkdir:
    /// symlinks followed (walkdir detects the loops they make), `..*`
    /// names and excluded ones filtered out before they are descended.
    /// Unsorted: the manifest is sorted once, by escaped name, at the end;
    /// sorting each directory would read it whole before the budgets or
    /// the deadline could stop it, even when excluded.
    fn walk(&mut self, index: usize, dir: &Path, rel: &str, in_payload: bool, depth: u32) {
        let (excludes, deadline) = (self.walker.excludes, self.deadline);
        let (base, prefix) = (dir.to_path_buf(), rel.to_string());
        let keep: Keep<'w> = Box::new(move |e| {
            let wanted = !e.file_name().as_bytes().starts_with(b"..")
                && (excludes.is_empty() || {
                    let rel = rel_below(&base, &prefix, e.path());
                    !excludes.iter().any(|g| g.is_match(&rel))
                });
            wanted || past(deadline)
        });
        let tree = WalkDir::new(dir)
            .follow_links(true)
            .min_depth(1)
            .into_iter()
            .filter_entry(keep);
        self.push(Source::Tree(tree), index, dir, rel, in_payload, depth);
    }

    /// Reads entries off the innermost frame until the stack is empty:
    /// files are hashed on the way, directories push frames.
    fn drain(&mut self) -> Step {
        while let Some(top) = self.stack.last_mut() {
            match &mut top.source {
                Source::Tree(tree) => match tree.next() {
                    None => drop(self.stack.pop()),
                    Some(Ok(entry)) => self.tree_entry(&entry)?,
                    Some(Err(e)) => self.tree_error(e)?,
                },
                Source::Mounts(entries) => match entries.next() {
                    None => drop(self.stack.pop()),
                    Some(Ok(entry)) => self.mount(&entry)?,
                    Some(Err(e)) => {
                        let (dir, in_payload) = (top.dir.clone(), top.in_payload);
                        self.stack.pop();
                        if !is_gone(&e) {
                            return Err(fatal(&dir, e));
                        }
                        self.vanished(&dir, in_payload)?;
                    }
                },
            }
        }
        Ok(())
    }

    /// The innermost frame's watched path index, whether it is in a
    /// payload, and the name and depth of `path` found in it.
    pub(super) fn place(&self, path: &Path, below: usize) -> (usize, bool, String, u32) {
        let Some(top) = self.stack.last() else {
            return (0, false, String::new(), 0);
        };
        let below = u32::try_from(below).unwrap_or(u32::MAX);
        (
            top.index,
            top.in_payload,
            rel_below(&top.dir, &top.rel, path),
            top.depth.saturating_add(below),
        )
    }

    /// Stops walkdir from descending into the directory it just gave the
    /// frame at `at`.
    fn skip_dir(&mut self, at: usize) {
        if let Some(Frame {
            source: Source::Tree(tree),
            ..
        }) = self.stack.get_mut(at)
        {
            tree.skip_current_dir();
        }
    }

    /// One entry walkdir found in the innermost frame (a symlink already
    /// followed to what it points at).
    fn tree_entry(&mut self, e: &walkdir::DirEntry) -> Step {
        let path = e.path();
        let (index, in_payload, rel, depth) = self.place(path, e.depth());
        self.check_deadline(index, &rel)?;
        self.count(index, &rel, depth)?;
        if e.path_is_symlink() {
            match fs::symlink_metadata(path) {
                Ok(l) => self.note(&Stat::from(&l), in_payload),
                Err(e) if is_gone(&e) => return self.vanished(path, in_payload),
                Err(e) => return Err(fatal(path, e)),
            }
        }
        // A followed symlink is statted through it, by path; anything else
        // in the directory walkdir has open.
        let meta = match e.path_is_symlink() {
            true => e
                .metadata()
                .map(|m| Stat::from(&m))
                .map_err(plain_walk_error),
            false => self.parent.lstat(path),
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) if is_gone(&e) => return self.vanished(path, in_payload),
            Err(e) => return Err(fatal(path, e)),
        };
        // walkdir has opened what it took for a directory and walks it
        // next, unless told otherwise.
        let at = self.stack.len() - 1;
        if e.file_type().is_dir() && meta.is_dir() {
            if !self.dir(index, path, &meta, &rel, in_payload, depth)? {
                self.skip_dir(at);
            }
            return Ok(());
        }
        // Swapped between walkdir's look and ours: ours counts.
        if e.file_type().is_dir() {
            self.skip_dir(at);
        }
        self.entry(index, path, &rel, &meta, in_payload, depth)
    }

    /// What walkdir could not read: a dangling symlink or a symlink loop
    /// (skipped), a loop of directories (skipped), something that vanished
    /// (a torn walk inside a payload), or an error that stops the walk.
    fn tree_error(&mut self, err: walkdir::Error) -> Step {
        let Some(top) = self.stack.last() else {
            return Ok(());
        };
        let path = err.path().unwrap_or(&top.dir).to_path_buf();
        let (index, in_payload, rel, depth) = self.place(&path, err.depth());
        // An entry walkdir met (not a failed read of its directory): it
        // counts against the budgets like any other.
        if err.path().is_some() && err.depth() > 0 {
            self.check_deadline(index, &rel)?;
            self.count(index, &rel, depth)?;
        }
        if err.loop_ancestor().is_some() {
            let name = self.name(index, &rel);
            self.skip(name, "directory loop, not followed".into());
            return Ok(());
        }
        let e = plain_walk_error(err);
        if !is_gone(&e) && !is_loop(&e) {
            return Err(fatal(&path, e));
        }
        let link = fs::symlink_metadata(&path).ok().map(|m| Stat::from(&m));
        let Some(link) = link.filter(Stat::is_symlink) else {
            return self.vanished(&path, in_payload);
        };
        self.note(&link, in_payload);
        if is_gone(&e) && in_payload {
            return Err(Stop::Retry(path));
        }
        let name = self.name(index, &rel);
        let why = if is_loop(&e) {
            "symlink loop"
        } else {
            "dangling symlink"
        };
        self.skip(name, why.into());
        Ok(())
    }

    /// Starts walking a directory, hashes a file, or skips anything else.
    pub(super) fn entry(
        &mut self,
        index: usize,
        path: &Path,
        rel: &str,
        meta: &Stat,
        in_payload: bool,
        depth: u32,
    ) -> Step {
        if !meta.is_dir() {
            self.note(meta, in_payload);
        }
        if meta.is_dir() {
            if self.dir(index, path, meta, rel, in_payload, depth)? {
                self.walk(index, path, rel, in_payload, depth);
            }
            Ok(())
        } else if meta.is_file() {
            self.file(index, path, rel, meta, in_payload)
        } else {
            let name = self.name(index, rel);
            self.skip(name, meta.special_kind());
            Ok(())
        }
    }

    /// A path disappeared mid-walk: a torn kubelet update (retry), or an
    /// ordinary file removed just now (it is simply not there).
    pub(super) fn vanished(&mut self, path: &Path, in_payload: bool) -> Step {
        if in_payload {
            Err(Stop::Retry(path.into()))
        } else {
            Ok(())
        }
    }

    pub(super) fn skip(&mut self, path: String, reason: String) {
        self.skipped.push(Skipped { path, reason });
    }
}
