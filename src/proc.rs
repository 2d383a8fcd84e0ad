//! The container's processes as /proc shows them: this container
//! instance's identity ([`ContainerId`]: its entrypoint's start time and
//! the boot id) and when it started, the fields of `/proc/PID/stat`, the
//! pod's hostname, and finding the process a `--pid`, `--pidfile`,
//! `--process` or the default names ([`Target`]). Everything is read
//! through one [`Proc`] handle, whose root tests point at a fake /proc.

use crate::digest::plain_io;
use crate::smallfile;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Identifies one container instance: a restart starts a new entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerId {
    pub boot_id: String,
    /// Field 22 of `/proc/PID/stat` of the container's entrypoint
    /// ([`Proc::init_pid`]): clock ticks after boot. Named for PID 1, which
    /// it was before `shareProcessNamespace` was handled.
    #[serde(rename = "pid1_start_ticks")]
    pub init_start_ticks: u64,
}

/// Where the container's processes and the boot come from (overridable for
/// tests of /proc faults).
pub struct Proc {
    pub root: PathBuf,
}

impl Default for Proc {
    fn default() -> Self {
        Proc {
            root: PathBuf::from("/proc"),
        }
    }
}

impl Proc {
    /// This container instance's identity.
    pub fn container(&self) -> Result<ContainerId, ProcError> {
        let boot_id = self.read("sys/kernel/random/boot_id")?.trim().to_string();
        Ok(ContainerId {
            boot_id,
            init_start_ticks: self.start_ticks(self.init_pid())?,
        })
    }

    /// The container's entrypoint: PID 1, unless PID 1 lives in another
    /// mount namespace (`shareProcessNamespace: true` makes it the pod's
    /// `pause`). Then it is the oldest live process that shares our mount
    /// namespace: the first process of this container. Where a namespace
    /// link is not ours to read (`pause` runs as another user), the
    /// world-readable cgroup membership tells containers apart instead;
    /// when neither can be read, PID 1 it is.
    pub fn init_pid(&self) -> i32 {
        let mnt_ns = |pid: &str| fs::read_link(self.root.join(pid).join("ns/mnt")).ok();
        let cgroup =
            |pid: &str| smallfile::read(&self.root.join(pid).join("cgroup"), smallfile::SMALL).ok();
        // Our cgroup only when a namespace link cannot be read (rarely).
        let (our_ns, our_cgroup) = (mnt_ns("self"), std::cell::OnceCell::new());
        let same_container = |pid: &str| -> Option<bool> {
            if let (Some(ours), Some(theirs)) = (&our_ns, mnt_ns(pid)) {
                return Some(*ours == theirs);
            }
            match (our_cgroup.get_or_init(|| cgroup("self")), cgroup(pid)) {
                (Some(ours), Some(theirs)) => Some(*ours == theirs),
                _ => None,
            }
        };
        if same_container("1") != Some(false) {
            return 1;
        }
        self.oldest_process(|pid| same_container(&pid.to_string()) == Some(true))
            .unwrap_or(1)
    }

    /// The oldest live process (earliest start, then lowest pid) other
    /// than this one for which `wanted(pid)` holds. Zombies never count.
    pub fn oldest_process(&self, mut wanted: impl FnMut(i32) -> bool) -> Option<i32> {
        let me = fs::read_link(self.root.join("self"))
            .ok()
            .and_then(|l| l.to_str().and_then(|s| s.parse::<i32>().ok()))
            .unwrap_or_else(|| std::process::id() as i32);
        let mut best: Option<(u64, i32)> = None;
        for entry in fs::read_dir(&self.root).ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if pid == me || !wanted(pid) {
                continue;
            }
            let Ok(stat) = smallfile::read_to_string(&entry.path().join("stat"), smallfile::TINY)
            else {
                continue;
            };
            // A zombie (exited, not reaped) or dead process is not running.
            if matches!(parse_stat_field(&stat, 3), Some("Z" | "X" | "x") | None) {
                continue;
            }
            let Some(start) = parse_stat_field(&stat, 22).and_then(|f| f.parse::<u64>().ok())
            else {
                continue;
            };
            if best.is_none_or(|b| (start, pid) < b) {
                best = Some((start, pid));
            }
        }
        best.map(|(_, pid)| pid)
    }

    /// This process as the proc root names it: its pid and start time.
    pub fn me(&self) -> Option<(i32, u64)> {
        let pid = fs::read_link(self.root.join("self"))
            .ok()
            .and_then(|l| l.to_str().and_then(|s| s.parse::<i32>().ok()))?;
        Some((pid, self.start_ticks(pid).ok()?))
    }

    /// Is `pid` still the live (not zombie) process that started at
    /// `start_ticks`? `None` when that cannot be told.
    pub fn running(&self, pid: i32, start_ticks: u64) -> Option<bool> {
        if pid <= 0 {
            return Some(false);
        }
        let stat = match smallfile::read_to_string(
            &self.root.join(format!("{pid}/stat")),
            smallfile::TINY,
        ) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(false),
            Err(_) => return None,
        };
        let state = parse_stat_field(&stat, 3)?;
        let start = parse_stat_field(&stat, 22)?.parse::<u64>().ok()?;
        Some(start == start_ticks && !matches!(state, "Z" | "X" | "x"))
    }

    /// The start time of `pid` if it is a live process (not a zombie):
    /// `None` for a process that exited, even one not reaped yet.
    pub fn live_start_ticks(&self, pid: i32) -> Option<u64> {
        let start = self.start_ticks(pid).ok()?;
        self.running(pid, start)?.then_some(start)
    }

    /// Wall-clock time the container's entrypoint ([`Proc::init_pid`])
    /// started, never later than the truth.
    ///
    /// `starttime` counts clock ticks (10 ms) since boot; the boot's wall
    /// time is taken as CLOCK_REALTIME - CLOCK_BOOTTIME, precise to the
    /// nanosecond (`btime` in /proc/stat, whole seconds, is the fallback).
    /// Ticks are truncated, so the result can only be early: the safe side
    /// for "did this file change after the container started?".
    pub fn init_started_at(&self) -> Result<Millis, ProcError> {
        self.started_at(self.start_ticks(self.init_pid())?)
    }

    /// Wall-clock time of `ticks` after boot (a `starttime`), rounded down.
    pub fn started_at(&self, ticks: u64) -> Result<Millis, ProcError> {
        let boot = match crate::time::boot_wall_time_ms() {
            Some(b) => b,
            None => self.btime_ms()?,
        };
        Ok(boot.saturating_add(crate::time::ticks_to_boot_ms(ticks)))
    }

    fn btime_ms(&self) -> Result<Millis, ProcError> {
        let stat = self.read("stat")?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|s| s * 1000)
            .ok_or_else(|| ProcError {
                path: self.root.join("stat"),
                reason: "no btime line".into(),
            })
    }

    /// Field 22 (`starttime`) of `/proc/PID/stat`.
    pub fn start_ticks(&self, pid: i32) -> Result<u64, ProcError> {
        let f = self.stat_field(pid, 22)?;
        f.parse().map_err(|_| ProcError {
            path: self.root.join(format!("{pid}/stat")),
            reason: "unexpected format".into(),
        })
    }

    /// Field `field` of `/proc/PID/stat`, numbered as in proc(5): 1 is the
    /// pid, 2 the command name (without its parentheses), 3 the state
    /// (`R`, `S`, `Z`…), 4 the parent pid, 22 the start time.
    pub fn stat_field(&self, pid: i32, field: usize) -> Result<String, ProcError> {
        let rel = format!("{pid}/stat");
        let stat = self.read(&rel)?;
        parse_stat_field(&stat, field)
            .map(str::to_string)
            .ok_or_else(|| ProcError {
                path: self.root.join(rel),
                reason: "unexpected format".into(),
            })
    }

    /// The pod name (the container's UTS hostname).
    pub fn hostname(&self) -> String {
        smallfile::read_to_string(&self.root.join("sys/kernel/hostname"), smallfile::TINY)
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default()
    }

    pub fn read(&self, rel: &str) -> Result<String, ProcError> {
        let path = self.root.join(rel);
        // Capped, never blocking: `smallfile`.
        smallfile::read_to_string(&path, smallfile::LARGE).map_err(|e| ProcError {
            reason: plain_io(&e),
            path,
        })
    }
}

/// Field `field` (1-based, as in proc(5)) of a `/proc/PID/stat` line. The
/// command name (field 2) may hold spaces and parentheses: it runs from the
/// first '(' to the last ')', and fields from 3 on follow that.
pub fn parse_stat_field(stat: &str, field: usize) -> Option<&str> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    match field {
        0 => None,
        1 => Some(stat[..open].trim()).filter(|s| !s.is_empty()),
        2 => stat.get(open + 1..close),
        n => stat[close + 1..].split_whitespace().nth(n - 3),
    }
}

/// Why the container could not be identified from /proc.
#[derive(Debug)]
pub struct ProcError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot identify the container from {}: {}",
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for ProcError {}

/// Which process gets the reload signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The container's entrypoint: PID 1, or with `shareProcessNamespace`
    /// the first process of this container ([`Proc::init_pid`]).
    Entrypoint,
    Pid(i32),
    Pidfile(PathBuf),
    Process(String),
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Entrypoint => "the container's entrypoint".into(),
            Target::Pid(p) => format!("pid {p}"),
            Target::Pidfile(p) => format!("pidfile {}", p.display()),
            Target::Process(n) => format!("process {n}"),
        }
    }

    /// The pid this target names right now.
    pub fn resolve(&self, proc: &Proc) -> Result<i32, String> {
        match self {
            Target::Entrypoint => Ok(proc.init_pid()),
            Target::Pid(p) if *p > 0 => Ok(*p),
            Target::Pid(p) => Err(format!("--pid {p}: not a process id")),
            Target::Pidfile(path) => {
                let text = smallfile::read_to_string(path, smallfile::TINY).map_err(|e| {
                    format!("cannot read pidfile {}: {}", path.display(), plain_io(&e))
                })?;
                match text.trim().parse::<i32>() {
                    Ok(p) if p > 0 => Ok(p),
                    _ => Err(format!(
                        "pidfile {} does not hold a process id",
                        path.display()
                    )),
                }
            }
            Target::Process(name) => find_process(proc, name),
        }
    }
}

/// The oldest process whose `comm` is `name` (the master, not a worker).
/// The kernel keeps only the first 15 bytes of a name in `comm`.
fn find_process(proc: &Proc, name: &str) -> Result<i32, String> {
    let want = name.as_bytes().get(..15).unwrap_or(name.as_bytes());
    proc.oldest_process(|pid| {
        let comm = smallfile::read(&proc.root.join(format!("{pid}/comm")), smallfile::TINY)
            .unwrap_or_default();
        comm.strip_suffix(b"\n").unwrap_or(&comm) == want
    })
    .ok_or_else(|| format!("no process named {name:?} in {}", proc.root.display()))
}

/// The process name, for messages.
pub fn comm(proc_root: &Path, pid: i32) -> String {
    smallfile::read_to_string(&proc_root.join(format!("{pid}/comm")), smallfile::TINY)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Duration;

    #[test]
    fn process_names_longer_than_comm_are_found() {
        let d = tempfile::tempdir().unwrap();
        let exe = d.path().join("driftprobe-test-long-name");
        fs::copy("/bin/sleep", &exe).unwrap();
        let mut child = std::process::Command::new(&exe).arg("30").spawn().unwrap();
        // comm changes at exec, a moment after spawn returns.
        let mut found = Err(String::new());
        for _ in 0..200 {
            found = find_process(&Proc::default(), "driftprobe-test-long-name");
            if found.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, Ok(child.id() as i32));
    }

    #[test]
    fn targets_resolve() {
        let d = tempfile::tempdir().unwrap();
        let pf = d.path().join("app.pid");
        fs::write(&pf, "4242\n").unwrap();
        let proc = &Proc::default();
        assert_eq!(Target::Pidfile(pf.clone()).resolve(proc), Ok(4242));
        fs::write(&pf, "garbage").unwrap();
        assert!(Target::Pidfile(pf)
            .resolve(proc)
            .unwrap_err()
            .contains("does not hold"));
        assert!(Target::Pidfile(d.path().join("gone.pid"))
            .resolve(proc)
            .unwrap_err()
            .contains("cannot read pidfile"));
        assert!(Target::Pid(0).resolve(proc).is_err());
        assert!(Target::Process("no-such-process-name".into())
            .resolve(proc)
            .is_err());
    }

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(parse_stat_field(stat, 1), Some("42"));
        assert_eq!(parse_stat_field(stat, 2), Some("a) b (c)"));
        assert_eq!(parse_stat_field(stat, 3), Some("S"));
        assert_eq!(parse_stat_field(stat, 4), Some("1"));
        assert_eq!(parse_stat_field(stat, 22), Some("12345"));
        assert_eq!(parse_stat_field(stat, 40), None);
        assert_eq!(parse_stat_field("garbage", 3), None);
    }

    /// A fake /proc: `procs` are (pid, mount ns, state, starttime).
    fn fake_proc(me: i32, procs: &[(i32, &str, &str, u64)]) -> (tempfile::TempDir, Proc) {
        let d = tempfile::tempdir().unwrap();
        for (pid, ns, state, start) in procs {
            let p = d.path().join(pid.to_string());
            fs::create_dir_all(p.join("ns")).unwrap();
            std::os::unix::fs::symlink(format!("mnt:[{ns}]"), p.join("ns/mnt")).unwrap();
            fs::write(p.join("cgroup"), format!("0::/pod/{ns}\n")).unwrap();
            fs::write(
                p.join("stat"),
                format!("{pid} (x y) {state} 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0\n"),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink(me.to_string(), d.path().join("self")).unwrap();
        let proc = Proc {
            root: d.path().to_path_buf(),
        };
        (d, proc)
    }

    #[test]
    fn init_pid_is_pid1_in_our_mount_namespace() {
        let (_d, p) = fake_proc(
            9,
            &[(1, "A", "S", 100), (5, "A", "S", 50), (9, "A", "R", 900)],
        );
        assert_eq!(p.init_pid(), 1);
    }

    #[test]
    fn init_pid_with_a_shared_process_namespace() {
        // PID 1 is pause (ns P); our container (ns A) has an entrypoint 7,
        // an older zombie 6, children, and us (9); another container (B)
        // started earlier.
        let (_d, p) = fake_proc(
            9,
            &[
                (1, "P", "S", 10),
                (3, "B", "S", 20),
                (6, "A", "Z", 30),
                (7, "A", "S", 40),
                (8, "A", "S", 40),
                (12, "A", "S", 41),
                (9, "A", "R", 35),
            ],
        );
        assert_eq!(p.init_pid(), 7);
        assert_eq!(p.start_ticks(p.init_pid()).unwrap(), 40);
        assert_eq!(p.stat_field(7, 2).unwrap(), "x y");
        // Nobody else in our namespace: PID 1 after all.
        let (_d, p) = fake_proc(9, &[(1, "P", "S", 10), (9, "A", "R", 35)]);
        assert_eq!(p.init_pid(), 1);
        // Namespaces unreadable: PID 1.
        let (d, p) = fake_proc(
            9,
            &[(1, "P", "S", 10), (7, "A", "S", 40), (9, "A", "R", 50)],
        );
        // pause's namespace link unreadable (another user): cgroups tell.
        fs::remove_file(d.path().join("1/ns/mnt")).unwrap();
        assert_eq!(p.init_pid(), 7);
        // Neither readable: PID 1.
        fs::remove_file(d.path().join("1/cgroup")).unwrap();
        assert_eq!(p.init_pid(), 1);
    }

    #[test]
    fn reads_the_live_container_identity() {
        let p = Proc::default();
        let id = p.container().unwrap();
        assert!(!id.boot_id.is_empty());
        let started = p.init_started_at().unwrap();
        assert!(started <= crate::time::now());
        // The precise boot time agrees with /proc/stat's whole-second btime.
        let precise = crate::time::boot_wall_time_ms().unwrap();
        let btime = p.btime_ms().unwrap();
        assert!((precise - btime).abs() < 2_000, "{precise} vs {btime}");
    }
}
