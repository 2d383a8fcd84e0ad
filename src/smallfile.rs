//! Reads of the small files the probe reads besides the watched tree:
//! `--pidfile`, the files `--env` compares, `/proc` files, the mount table.
//! Any of them can be hostile or simply wrong: a FIFO would block the
//! probe past the kubelet's timeout, `/dev/zero` never ends, a sparse 1 TB
//! file would be read to the end. So each is opened without blocking and
//! without becoming a controlling tty, must be a regular file (`/proc`
//! files are), and is read only up to a cap, with a message that says
//! which rule it broke. The watched tree is `digest`'s, with its own rules.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A pidfile, `/proc/PID/comm`, `/proc/PID/stat`, the hostname, boot id.
pub const TINY: usize = 4 * 1024;
/// `/proc/PID/status`, `/proc/PID/cgroup`.
pub const SMALL: usize = 64 * 1024;
/// A `--env` file: the kernel caps one environment string at 128 KiB
/// (MAX_ARG_STRLEN), so a value file cannot usefully be larger.
pub const ENV_VALUE: usize = 128 * 1024;
/// `/proc/PID/environ`, `/proc/stat`, `/proc/self/mountinfo`.
pub const LARGE: usize = 1024 * 1024;

/// The whole of `path`, if it is a regular file of at most `cap` bytes.
pub fn read(path: &Path, cap: usize) -> io::Result<Vec<u8>> {
    let (file, len) = open(path, cap)?;
    // Room for the whole file and one byte more (to see it end) up front:
    // /proc files say 0, and growing from 32 bytes up costs a read each.
    let room = (len as usize).max(4095).min(cap) + 1;
    let mut buf = Vec::with_capacity(room);
    file.take(cap as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > cap {
        return Err(too_large(cap));
    }
    Ok(buf)
}

/// [`read`] as text (`/proc` files, pidfiles). Not UTF-8: an error.
pub fn read_to_string(path: &Path, cap: usize) -> io::Result<String> {
    String::from_utf8(read(path, cap)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Opens `path` for a capped read: O_NONBLOCK (opening a FIFO does not
/// wait for a writer), O_NOCTTY, and refuses anything but a regular file
/// or one whose size already says it is over `cap`.
pub fn open(path: &Path, cap: usize) -> io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    let t = meta.file_type();
    if !t.is_file() {
        let what = if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_dir() {
            "a directory"
        } else {
            "not a file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({what})"),
        ));
    }
    // /proc files say 0 here: the read itself is capped as well.
    if meta.len() > cap as u64 {
        return Err(too_large(cap));
    }
    Ok((file, meta.len()))
}

fn too_large(cap: usize) -> io::Error {
    let size = if cap.is_multiple_of(1024) {
        format!("{} KiB", cap / 1024)
    } else {
        format!("{cap} bytes")
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than {size}, more than this file should hold"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn small_regular_files_and_proc_files_are_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("app.pid");
        std::fs::write(&f, "42\n").unwrap();
        assert_eq!(read_to_string(&f, TINY).unwrap(), "42\n");
        let stat = read_to_string(Path::new("/proc/self/stat"), TINY).unwrap();
        assert!(stat.contains(')'), "{stat}");
        assert!(!read(Path::new("/proc/self/environ"), LARGE)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn fifos_devices_and_big_files_are_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let start = Instant::now();
        let e = read(&fifo, TINY).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let e = read(Path::new("/dev/zero"), TINY).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read(d.path(), TINY).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let big = d.path().join("big");
        let f = File::create(&big).unwrap();
        f.set_len(1 << 40).unwrap();
        let e = read(&big, TINY).unwrap_err();
        assert!(e.to_string().contains("larger than 4 KiB"), "{e}");
        std::fs::write(&big, vec![b'1'; TINY + 1]).unwrap();
        assert!(read(&big, TINY).is_err());
        std::fs::write(&big, vec![b'1'; TINY]).unwrap();
        assert_eq!(read(&big, TINY).unwrap().len(), TINY);
    }
}
