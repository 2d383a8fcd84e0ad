//! A kubelet-faithful ConfigMap/Secret volume writer, std only, so that the
//! walkthrough example (examples/walkthrough.rs) can include it too.
//!
//! [`ConfigMapVolume`] replays, step by step, what the kubelet's
//! `pkg/volume/util/atomic_writer.go` (v1.28+) does to a mounted volume:
//! payload in a hidden `..<UTC timestamp>.<random digits>` dir, `..data_tmp`
//! renamed over `..data`, user-visible top-level symlinks `name -> ..data/name`,
//! removal of deleted keys and of the old dir, and no write at all when the
//! payload is unchanged. A hook can pause between steps so tests can probe a
//! half-updated volume. [`FsGroup`] models what a pod's
//! `securityContext.fsGroup` makes the kubelet do to the volume's files.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const DATA_DIR: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

// ---------------------------------------------------------------------------
// ConfigMap volume emulation
// ---------------------------------------------------------------------------

/// The points between the kubelet's write steps where a hook is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// New `..<ts>` dir exists and holds every file; `..data` still old.
    PayloadWritten,
    /// `..data_tmp -> ..<new ts>` exists; `..data` still old.
    TmpLinkCreated,
    /// `rename(..data_tmp, ..data)` done; new top-level keys not linked yet,
    /// deleted keys are dangling links.
    Swapped,
    /// Missing top-level links created; deleted keys still dangling.
    VisibleLinksCreated,
    /// Top-level links of deleted keys removed; old `..<ts>` dir still there.
    OldLinksRemoved,
    /// Old `..<ts>` dir removed: the update is complete.
    Done,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Payload identical to what is on disk and nothing removed: no write.
    Unchanged,
    /// A new timestamped dir (its name) became `..data`.
    Written(String),
}

/// How the kubelet applies a pod's `securityContext.fsGroup` to a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsGroup {
    /// No fsGroup: the files keep their owner and mode.
    Off,
    /// v1.20 (seen on a real node, `shared/realnode.md`): the ownership
    /// pass runs over the whole volume at every pod sync
    /// ([`ConfigMapVolume::sync`]): lchown to the group, chmod g+r (and
    /// setgid, g+x on dirs). Every ctime moves; contents and mtimes never.
    EverySync,
    /// v1.35: the ownership is set inside the atomic writer, on the new
    /// payload before the swap (a 0400 file becomes 0440, dirs get setgid);
    /// a sync changes nothing.
    InWriter,
}

/// The group a pod's fsGroup names in these tests.
pub const FS_GROUP_GID: u32 = 2000;

/// A ConfigMap/Secret volume directory, written the way the kubelet does.
#[derive(Debug, Clone)]
pub struct ConfigMapVolume {
    dir: PathBuf,
    /// File mode of every payload file (defaultMode of the volume).
    pub mode: u32,
    /// What the pod's fsGroup makes the kubelet do.
    pub fs_group: FsGroup,
}

impl ConfigMapVolume {
    /// Use `dir` as the volume's target dir (created if missing, like the
    /// kubelet's volume mount point).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        fs::create_dir_all(&dir).expect("create volume dir");
        ConfigMapVolume {
            dir,
            mode: 0o644,
            fs_group: FsGroup::Off,
        }
    }

    /// One pod sync of the kubelet with nothing to update: the payload is
    /// rewritten only if it changed (never here), and under
    /// [`FsGroup::EverySync`] the ownership pass runs over the volume.
    pub fn sync(&self) {
        if self.fs_group == FsGroup::EverySync {
            set_ownership(&self.dir).expect("fsGroup ownership pass");
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Current `..data` target (the timestamped dir name), if any.
    pub fn data_target(&self) -> Option<String> {
        fs::read_link(self.dir.join(DATA_DIR))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// Project `payload` into the volume like the kubelet's AtomicWriter.Write.
    pub fn write<K: AsRef<str>, V: AsRef<[u8]>>(&self, payload: &[(K, V)]) -> WriteOutcome {
        self.write_with_hook(payload, false, |_| {})
            .expect("ConfigMapVolume::write")
    }

    /// Same bytes, new timestamped dir: what a volume looks like after the
    /// kubelet rewrote it (e.g. after a restart of the kubelet or an
    /// unrelated change that was reverted). Skips the "unchanged" shortcut.
    pub fn write_forced<K: AsRef<str>, V: AsRef<[u8]>>(&self, payload: &[(K, V)]) -> WriteOutcome {
        self.write_with_hook(payload, true, |_| {})
            .expect("ConfigMapVolume::write_forced")
    }

    /// The full algorithm, calling `hook` after each step (see [`Step`]).
    pub fn write_with_hook<K, V, F>(
        &self,
        payload: &[(K, V)],
        force: bool,
        mut hook: F,
    ) -> io::Result<WriteOutcome>
    where
        K: AsRef<str>,
        V: AsRef<[u8]>,
        F: FnMut(Step),
    {
        // (1) validate and clean the payload.
        let mut clean: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (k, v) in payload {
            let k = validate_path(k.as_ref())?;
            clean.insert(k, v.as_ref().to_vec());
        }

        // (2) the current timestamped dir.
        let data_path = self.dir.join(DATA_DIR);
        let old_ts = match fs::read_link(&data_path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };

        let mut to_remove = BTreeSet::new();
        if let Some(old) = &old_ts {
            let old_path = self.dir.join(old);
            // (3) paths of the old version that the payload no longer has.
            to_remove = paths_to_remove(&clean, &old_path)?;
            // (4) nothing to do when every file is byte-identical.
            if !force && !should_write_payload(&clean, &old_path)? && to_remove.is_empty() {
                return Ok(WriteOutcome::Unchanged);
            }
        }

        // (5) new timestamped dir, 0755 whatever the umask.
        let ts_dir = new_timestamp_dir(&self.dir)?;
        let ts_name = ts_dir
            .file_name()
            .expect("ts dir name")
            .to_string_lossy()
            .into_owned();

        // (6) write the payload (mkdir -p 0777&~umask, write, chmod mode).
        for (rel, bytes) in &clean {
            let full = ts_dir.join(rel);
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&full, bytes)?;
            fs::set_permissions(&full, fs::Permissions::from_mode(self.mode))?;
        }
        if self.fs_group == FsGroup::InWriter {
            set_ownership(&ts_dir)?;
        }
        hook(Step::PayloadWritten);

        // (8) ..data_tmp -> new dir (relative).
        let tmp_path = self.dir.join(DATA_TMP);
        if let Err(e) = symlink(&ts_name, &tmp_path) {
            let _ = fs::remove_dir_all(&ts_dir);
            return Err(e);
        }
        hook(Step::TmpLinkCreated);

        // (9) the atomic swap.
        if let Err(e) = fs::rename(&tmp_path, &data_path) {
            let _ = fs::remove_file(&tmp_path);
            let _ = fs::remove_dir_all(&ts_dir);
            return Err(e);
        }
        hook(Step::Swapped);

        // (10) missing top-level links: only the first path component.
        for rel in clean.keys() {
            let top = rel.split('/').next().expect("non-empty path");
            let visible = self.dir.join(top);
            match fs::read_link(&visible) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    symlink(Path::new(DATA_DIR).join(top), &visible)?;
                }
                _ => {}
            }
        }
        hook(Step::VisibleLinksCreated);

        // (11) links of deleted keys: only top-level entries.
        let mut last_err = None;
        for p in &to_remove {
            if p.contains('/') {
                continue;
            }
            if let Err(e) = fs::remove_file(self.dir.join(p)) {
                last_err = Some(e);
            }
        }
        if let Some(e) = last_err {
            return Err(e);
        }
        hook(Step::OldLinksRemoved);

        // (12) the old timestamped dir.
        if let Some(old) = &old_ts {
            if !old.as_os_str().is_empty() {
                fs::remove_dir_all(self.dir.join(old))?;
            }
        }
        hook(Step::Done);

        Ok(WriteOutcome::Written(ts_name))
    }
}

/// The kubelet's `SetVolumeOwnership` (`pkg/volume/volume_linux.go`): over
/// everything under `dir`, symlinks not followed: lchown to the fsGroup;
/// then, except for symlinks, chmod adding g+r (read-only volume), and
/// setgid + g+x on directories. Both move ctimes and nothing else.
fn set_ownership(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    lchown(dir, None, Some(FS_GROUP_GID))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mut mode = meta.mode() & 0o7777 | 0o440;
    if meta.is_dir() {
        mode |= 0o2000 | 0o110;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    if meta.is_dir() {
        for entry in fs::read_dir(dir)? {
            set_ownership(&entry?.path())?;
        }
    }
    Ok(())
}

/// k/k validatePath + filepath.Clean.
fn validate_path(p: &str) -> io::Result<String> {
    let bad = |msg: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{msg}: {p:?}"),
        ))
    };
    if p.is_empty() {
        return bad("invalid path: must not be empty");
    }
    if p.starts_with('/') {
        return bad("invalid path: must be relative path");
    }
    if p.len() > 4096 {
        return bad("invalid path: too long");
    }
    let items: Vec<&str> = p.split('/').collect();
    for item in &items {
        if *item == ".." {
            return bad("invalid path: must not contain '..'");
        }
        if item.len() > 255 {
            return bad("invalid path: file name too long");
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return bad("invalid path: must not start with '..'");
    }
    let cleaned: Vec<&str> = items
        .into_iter()
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if cleaned.is_empty() {
        return bad("invalid path: nothing left after cleaning");
    }
    Ok(cleaned.join("/"))
}

/// Every relative path (files and dirs) under the old ts dir that is neither
/// a payload path nor a parent of one.
fn paths_to_remove(
    payload: &BTreeMap<String, Vec<u8>>,
    old_ts: &Path,
) -> io::Result<BTreeSet<String>> {
    let mut existing = BTreeSet::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let p = entry.path();
            let rel = p
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .into_owned();
            out.insert(rel);
            if entry.file_type()?.is_dir() {
                walk(base, &p, out)?;
            }
        }
        Ok(())
    }
    match walk(old_ts, old_ts, &mut existing) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e),
    }
    let mut wanted = BTreeSet::new();
    for file in payload.keys() {
        let mut sub = file.as_str();
        loop {
            wanted.insert(sub.to_string());
            match sub.rfind('/') {
                Some(i) => sub = &sub[..i],
                None => break,
            }
        }
    }
    Ok(existing.difference(&wanted).cloned().collect())
}

fn should_write_payload(payload: &BTreeMap<String, Vec<u8>>, old_ts: &Path) -> io::Result<bool> {
    for (rel, bytes) in payload {
        let p = old_ts.join(rel);
        match fs::symlink_metadata(&p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            _ => {}
        }
        if fs::read(&p)? != *bytes {
            return Ok(true);
        }
    }
    Ok(false)
}

/// os.MkdirTemp(dir, "..2006_01_02_15_04_05.") then chmod 0755.
fn new_timestamp_dir(dir: &Path) -> io::Result<PathBuf> {
    let prefix = format!("..{}.", utc_timestamp(SystemTime::now()));
    for _ in 0..10_000 {
        let p = dir.join(format!("{prefix}{}", random_u32()));
        match fs::create_dir(&p) {
            Ok(()) => {
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
                return Ok(p);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free ts dir name",
    ))
}

/// `2006_01_02_15_04_05` in UTC.
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}_{m:02}_{d:02}_{:02}_{:02}_{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn random_u32() -> u32 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ nanos
        ^ (u64::from(std::process::id()) << 32);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) as u32
}
