//! What a baseline is made of ([`new_baseline`]), how one is described in
//! messages ([`file_count`], [`short_digest`]), and the proof that lets a
//! baseline be recorded after the app started ([`unchanged_since_start`]):
//! the probes' lazy baseline and `init` record one only when the watched
//! content cannot have changed since the container's entrypoint started.

use crate::digest::{plain_io, read_only, Snapshot};
use crate::state::Baseline;
use crate::time::{clock_time, Millis};
use crate::watch::{Failure, Opened};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A baseline of the files in `snap`, recorded at `now` by `source`
/// (`init`, `run`, `lazy`, ...).
pub fn new_baseline(snap: &Snapshot, now: Millis, source: &str) -> Baseline {
    Baseline {
        digest: snap.digest.clone(),
        recorded_at: now,
        source: source.into(),
        files: snap.files.clone(),
    }
}

/// "1 file", "12 files".
pub fn file_count(n: usize) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

/// First 12 hex digits: enough to tell digests apart in `status` (never
/// in a probe line: see README, "What a digest reveals").
pub fn short_digest(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
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
        let subpaths = crate::mount_warnings::subpath_mounts(roots, mountinfo);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Walker;
    use std::os::unix::fs::PermissionsExt;

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
