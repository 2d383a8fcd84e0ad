//! Reading a kubelet ConfigMap/Secret volume (doc/digest.md, "Digest
//! semantics"): a directory holding a `..data` symlink is read through the
//! payload directory that `..data` names when first met, a watched path
//! nested inside a volume through the enclosing volume's `..data`, and every
//! `..data` is read again after the walk: if one moved, the walk may hold a
//! mix of two versions and is retried. The real directories beside a volume's
//! symlinks are other volumes mounted inside it, walked too.

use super::read_only;
use super::stat::Stat;
use super::walk::{fatal, is_gone, is_loop, Step, Stop, Walk};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

impl Walk<'_> {
    /// Checks that every `..data` read during the walk still names the
    /// target it had; if one moved, the walk may hold a mix: retry.
    pub(super) fn links_unmoved(&self) -> Step {
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

    /// Where to read watched path `root` from, and whether that is inside
    /// a kubelet volume. The nearest ancestor holding a `..data` symlink
    /// is the volume (when the path's next component there is one of its
    /// symlinks, not a real directory: that would be another volume
    /// mounted inside it): the path is then read through the `..data`
    /// target recorded now, so every file under it comes from one payload
    /// directory, and a swap shows as a moved `..data` after the walk.
    /// Paths that name kubelet internals (`..*`) are read as given.
    pub(super) fn through_volume(&mut self, root: &Path) -> Step<(PathBuf, bool)> {
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
    pub(super) fn kubelet_payload(&mut self, dir: &Path) -> Step<Option<PathBuf>> {
        let link = dir.join("..data");
        let lmeta = match fs::symlink_metadata(&link) {
            Ok(m) if m.file_type().is_symlink() => Stat::from(&m),
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

    /// One entry of a kubelet volume's own directory: a real directory
    /// there is a volume mounted inside it, walked; the rest (its
    /// symlinks, `..data`, the payload) is read through the payload.
    pub(super) fn mount(&mut self, entry: &fs::DirEntry) -> Step {
        let name = entry.file_name();
        let Some(top) = self.stack.last() else {
            return Ok(());
        };
        // Mounts are real directories: the entry's type from readdir says
        // so without a stat per kubelet symlink. The rest (every key's
        // symlink) is passed over before its path and name are made.
        let wanted =
            !name.as_bytes().starts_with(b"..") && entry.file_type().is_ok_and(|t| t.is_dir());
        if !wanted {
            // Even a directory of nothing but skipped names ends.
            return self.check_deadline(top.index, &top.rel);
        }
        let path = top.dir.join(&name);
        let (index, in_payload, rel, depth) = self.place(&path, 1);
        self.check_deadline(index, &rel)?;
        if self.walker.excludes.iter().any(|g| g.is_match(&rel)) {
            return Ok(());
        }
        self.count(index, &rel, depth)?;
        self.child(index, &path, entry, &rel, in_payload, depth)
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
            Ok(m) => Stat::from(&m),
            Err(e) if is_gone(&e) => return self.vanished(path, in_payload),
            Err(e) => return Err(fatal(path, e)),
        };
        let meta = if lmeta.is_symlink() {
            self.note(&lmeta, in_payload);
            match fs::metadata(path) {
                Ok(m) => Stat::from(&m),
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
}
