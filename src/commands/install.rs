//! `install DEST`: copy this executable into a shared volume from an init
//! container, which needs neither a shell nor `cp`.

use crate::digest::plain_io;
use crate::exit::Code;
use crate::Report;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// `install DEST`: copy this executable there atomically, mode 0755.
pub fn install(dest: &Path) -> Report {
    match copy_self(dest) {
        Ok(size) => Report::new(
            Code::Healthy,
            format!(
                "installed driftprobe {} ({} bytes) to {}",
                env!("CARGO_PKG_VERSION"),
                size,
                dest.display()
            ),
        ),
        Err(m) => Report::new(
            Code::Unknown,
            format!("cannot install to {}: {m}", dest.display()),
        ),
    }
}

fn copy_self(dest: &Path) -> Result<u64, String> {
    let bytes = fs::read("/proc/self/exe")
        .map_err(|e| format!("cannot read /proc/self/exe: {}", plain_io(&e)))?;
    let name = dest
        .file_name()
        .ok_or_else(|| "DEST must name a file, e.g. /probe/driftprobe".to_string())?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    if dest.is_dir() {
        return Err("DEST is a directory; name the file, e.g. /probe/driftprobe".into());
    }
    fs::create_dir_all(&parent)
        .map_err(|e| format!("cannot create {}: {}", parent.display(), plain_io(&e)))?;
    // Unique: in an init container the pid is 1 at every run, and a run
    // killed mid-copy leaves its temp file behind.
    let prefix = format!(".{}.tmp.", name.to_string_lossy());
    clear_stale_copies(&parent, &prefix);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let tmp = parent.join(format!("{prefix}{}.{nanos:x}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.set_permissions(fs::Permissions::from_mode(0o755))?;
        f.sync_all()?;
        fs::rename(&tmp, dest)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(plain_io(&e));
    }
    Ok(bytes.len() as u64)
}

/// A temp file an install left behind is stale once nobody has written it
/// for this long (a copy takes milliseconds).
const STALE_COPY: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the temp files (`.NAME.tmp.*`) of installs killed mid-copy, once
/// stale: a concurrent install's fresh one is left alone. Best effort.
fn clear_stale_copies(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().as_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        // Not followed: a symlink is removed, never what it points to.
        let stale = entry.metadata().is_ok_and(|m| {
            !m.is_dir()
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= STALE_COPY)
        });
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}
