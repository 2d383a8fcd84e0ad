//! Makes what a probe concludes visible where the kubelet does not show it:
//! a passing probe's output is thrown away, so a drift inside the grace
//! window, an invalid config held back or a liveness "cannot determine"
//! that passes are otherwise silent. With `--log-changes` each change of
//! a probe's verdict *class* ([`Class`]) is written as one line to the
//! container's log (the entrypoint's stdout, which `kubectl logs` and the
//! log pipeline read); misconfigurations ([`crate::probe`] finds them) are
//! written once per container whatever the flag.
//!
//! This module classifies a line, decides from what was last mirrored
//! ([`Mirrored`], kept in the state) whether anything is new, and writes
//! one line without ever blocking. Loading and saving the state is the
//! probe's job.

use crate::state::Mirrored;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, stat, FileStat, Mode, SFlag};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

/// Defines [`Class`]: each `Variant "name",` is a class whose lines start
/// `name:`. A new class is one line below.
macro_rules! classes {
    ($($variant:ident $name:literal,)*) => {
        /// What kind of verdict a probe line gives.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Class {
            $($variant,)*
            /// `drift:` while the grace window runs (the probe passes).
            DriftInGrace,
            /// Anything else: `cannot determine: …`.
            CannotDetermine,
        }

        impl Class {
            pub fn name(self) -> &'static str {
                match self {
                    $(Class::$variant => $name,)*
                    Class::DriftInGrace => "drift-in-grace",
                    Class::CannotDetermine => "cannot determine",
                }
            }

            /// The class whose lines start `name:`, if any.
            fn by_prefix(line: &str) -> Option<Class> {
                let (head, _) = line.split_once(':')?;
                $(if head == $name {
                    return Some(Class::$variant);
                })*
                None
            }
        }
    };
}

classes! {
    Ok "ok",
    Drift "drift",
    Invalid "invalid",
    Validating "validating",
    Reloading "reloading",
    Reloaded "reloaded",
    Adopted "adopted",
    // The app failed its own check (`--http-get`, `--tcp-socket`,
    // `--exec`): the probe's whole line, app first, whatever the files say.
    App "app",
}

impl Class {
    /// The class of a probe's line; `in_grace`: the drift it reports is
    /// still inside its window.
    pub fn of(line: &str, in_grace: bool) -> Class {
        match Class::by_prefix(line) {
            Some(Class::Drift) if in_grace => Class::DriftInGrace,
            Some(c) => c,
            None => Class::CannotDetermine,
        }
    }
}

/// What is new since `rec` was last mirrored: misconfigurations not
/// reported yet, and whether the verdict class changed (`class` is `None`
/// without `--log-changes`: not tracked). Updates `rec` to the present.
pub fn news(rec: &mut Mirrored, class: Option<Class>, problems: &[String]) -> (Vec<String>, bool) {
    let fresh: Vec<String> = problems
        .iter()
        .filter(|p| !rec.problems.contains(p))
        .cloned()
        .collect();
    // Solved ones are forgotten: should they come back, they are told again.
    rec.problems = problems.to_vec();
    let changed = match class {
        Some(c) if rec.class.as_deref() != Some(c.name()) => {
            rec.class = Some(c.name().into());
            true
        }
        _ => false,
    };
    (fresh, changed)
}

/// The longest line written: under `PIPE_BUF` (4096), so a write to a pipe
/// is all or nothing, never half a line interleaved with the app's output.
pub const MAX_LINE: usize = 1024;

/// The line as written: `driftprobe liveness: <line>`, escaped (one line,
/// no control characters) and cut to [`MAX_LINE`] with its newline.
pub fn log_line(probe: &str, line: &str) -> String {
    let mut text = crate::escape::line(&format!("driftprobe {probe}: {line}"));
    if text.len() > MAX_LINE - 1 {
        let mut cut = MAX_LINE - 4;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text.push('\n');
    text
}

/// The inode of the first PID namespace (`PROC_PID_INIT_INO`): the host's.
const HOST_PID_NS: &str = "pid:[4026531836]";

/// Whether this process runs in the host's PID namespace (not in a
/// container's), where PID 1 is the machine's init.
pub fn in_host_pid_namespace(proc_root: &Path) -> bool {
    std::fs::read_link(proc_root.join("self/ns/pid")).is_ok_and(|l| l.as_os_str() == HOST_PID_NS)
}

/// What a file type is called in messages.
fn kind_of(st: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFIFO => "pipe",
        SFlag::S_IFSOCK => "socket",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFREG => "file",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFLNK => "symlink",
        _ => "special file",
    }
}

fn writable_kind(st: &FileStat) -> bool {
    matches!(kind_of(st), "pipe" | "socket" | "character device" | "file")
}

/// Writes `text` (one [`log_line`]) once to the stdout of process `pid`
/// (`/proc/PID/fd/1` under `proc_root`). Never blocks: the file is opened
/// `O_NONBLOCK` (a new open file description, so the app's own stdout is
/// left as it was), and a full pipe or one nobody reads is an error, not a
/// wait. Anything but a pipe, socket, character device or regular file is
/// refused before it is opened (opening a device can have effects of its
/// own), and what was opened must be what was looked at.
pub fn write_to_stdout_of(proc_root: &Path, pid: i32, text: &str) -> Result<(), String> {
    let path = proc_root.join(format!("{pid}/fd/1"));
    let shown = format!("the stdout of pid {pid}");
    let plain = |e: Errno| crate::digest::plain_io(&std::io::Error::from(e));
    let seen = stat(&path).map_err(|e| format!("cannot look at {shown}: {}", plain(e)))?;
    if !writable_kind(&seen) {
        return Err(format!(
            "{shown} is a {}, not a pipe, socket, character device or file: not written",
            kind_of(&seen)
        ));
    }
    let flags =
        OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = match open(&path, flags, Mode::empty()) {
        Ok(fd) => fd,
        // A FIFO without a reader (O_NONBLOCK); a socket cannot be reopened.
        Err(Errno::ENXIO) => {
            return Err(format!(
                "cannot open {shown} ({}): no reader, or a socket (which cannot be reopened)",
                kind_of(&seen)
            ))
        }
        Err(e) => return Err(format!("cannot open {shown}: {}", plain(e))),
    };
    // SAFETY: open just returned this descriptor; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let opened = fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .map_err(|e| format!("cannot look at {shown}: {}", plain(e)))?;
    if (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino) || !writable_kind(&opened) {
        return Err(format!("{shown} changed while it was opened: not written"));
    }
    match nix::unistd::write(&fd, text.as_bytes()) {
        Ok(n) if n == text.len() => Ok(()),
        Ok(n) => Err(format!(
            "{shown} took {n} of {} bytes of the line",
            text.len()
        )),
        Err(Errno::EAGAIN) => Err(format!(
            "{shown} ({}) is full (nobody reads it): line dropped",
            kind_of(&seen)
        )),
        Err(e) => Err(format!("cannot write to {shown}: {}", plain(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified_by_their_prefix() {
        assert_eq!(Class::of("ok: config matches", false), Class::Ok);
        assert_eq!(Class::of("drift: 1 changed (a)", false), Class::Drift);
        assert_eq!(Class::of("drift: 1 changed (a)", true), Class::DriftInGrace);
        assert_eq!(Class::of("invalid: x", false), Class::Invalid);
        assert_eq!(Class::of("validating: x", true), Class::Validating);
        assert_eq!(Class::of("reloading: x", false), Class::Reloading);
        assert_eq!(Class::of("reloaded: x", false), Class::Reloaded);
        assert_eq!(Class::of("adopted: x", false), Class::Adopted);
        assert_eq!(
            Class::of("app: exec false exited 1; drift: x", true),
            Class::App
        );
        assert_eq!(
            Class::of("cannot determine: budget", false),
            Class::CannotDetermine
        );
        // A prefix is the whole word before the colon.
        assert_eq!(Class::of("okay: no", false), Class::CannotDetermine);
        assert_eq!(Class::of("", false), Class::CannotDetermine);
    }

    #[test]
    fn only_changes_and_new_problems_are_news() {
        let mut rec = Mirrored {
            probe: "liveness".into(),
            ..Mirrored::default()
        };
        assert_eq!(news(&mut rec, Some(Class::Ok), &[]), (vec![], true));
        assert_eq!(news(&mut rec, Some(Class::Ok), &[]), (vec![], false));
        assert_eq!(news(&mut rec, Some(Class::Drift), &[]), (vec![], true));
        let p = vec!["a".to_string()];
        assert_eq!(news(&mut rec, Some(Class::Drift), &p), (p.clone(), false));
        assert_eq!(news(&mut rec, Some(Class::Drift), &p), (vec![], false));
        // Without --log-changes the class is not tracked.
        assert_eq!(news(&mut rec, None, &p), (vec![], false));
        assert_eq!(rec.class.as_deref(), Some("drift"));
        // A solved problem that comes back is told again.
        news(&mut rec, None, &[]);
        assert_eq!(news(&mut rec, None, &p), (p.clone(), false));
    }

    #[test]
    fn the_log_line_is_one_escaped_line_under_pipe_buf() {
        assert_eq!(
            log_line("liveness", "drift: x\nok: forged"),
            "driftprobe liveness: drift: x\\x0aok: forged\n"
        );
        let long = log_line("readiness", &"é".repeat(5000));
        assert!(long.len() <= MAX_LINE, "{}", long.len());
        assert!(long.ends_with("...\n"));
        assert_eq!(long.matches('\n').count(), 1);
    }

    #[test]
    fn refuses_what_is_not_a_pipe_socket_device_or_file() {
        // This process's fd 1 redirected to a directory is not possible
        // here; a fake /proc whose fd/1 links to a directory is.
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("7/fd")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("7/fd/1")).unwrap();
        let e = write_to_stdout_of(tmp.path(), 7, "x\n").unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
        // A regular file is appended to.
        let f = tmp.path().join("log");
        std::fs::write(&f, "app\n").unwrap();
        std::fs::remove_file(tmp.path().join("7/fd/1")).unwrap();
        std::os::unix::fs::symlink(&f, tmp.path().join("7/fd/1")).unwrap();
        write_to_stdout_of(tmp.path(), 7, "line\n").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "app\nline\n");
    }
}
