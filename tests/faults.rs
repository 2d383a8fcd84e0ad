//! Fault injection (issue 7): the real binary is killed mid-write, run on
//! a full or read-only state dir, under a stepped wall clock, against
//! hostile state dirs and odd trees; the parsers are hammered by property
//! tests. Each test tallies what it did (`tally`), and `scripts/faults.sh
//! --readme` turns the tallies into the table in doc/faults.md.

mod support;

mod faults {
    mod clock;
    mod crash;
    mod disk;
    mod forging;
    mod fsgroup;
    mod fuzz;
    mod hostile;
    mod side_files;
}

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One row of the faults table (doc/faults.md): `runs` injected faults of one
/// class, `lost` drifts forgotten or states lost, `false_restarts` liveness
/// failures without a drift past its grace window. Appended to the file
/// named by `DRIFTPROBE_FAULTS_TALLY` (tab-separated), if set.
pub fn tally(class: &str, runs: usize, lost: usize, false_restarts: usize, note: &str) {
    let line = format!("{class}\t{runs}\t{lost}\t{false_restarts}\t{note}\n");
    eprint!("tally: {line}");
    if let Some(path) = std::env::var_os("DRIFTPROBE_FAULTS_TALLY") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the tally file");
        f.write_all(line.as_bytes()).expect("write the tally file");
    }
}

/// Milliseconds since the epoch, as the binary's wall clock reads them.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The state file as the binary's own parser reads it.
pub fn load_state(path: &std::path::Path) -> driftprobe::state::State {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match driftprobe::state::parse(&bytes) {
        driftprobe::state::Loaded::Found(s) => *s,
        other => panic!("{}: {other:?}", path.display()),
    }
}

/// A small tmpfs mounted on `dir` for one test, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs (needs root)");
        Tmpfs(dir.to_path_buf())
    }

    pub fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount {opts}");
    }

    /// Writes zeros into `fill` until the file system says ENOSPC.
    pub fn fill(&self) -> PathBuf {
        let path = self.0.join("fill");
        let mut f = fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
