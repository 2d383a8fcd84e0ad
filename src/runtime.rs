//! Recognises the runtimes whose default on a reload signal is not a
//! reload, although `/proc/PID/status` shows the signal as caught:
//!
//! - **Go**: the runtime installs a handler for every signal, so `SigCgt`
//!   has SIGHUP; but unless the program called `signal.Notify` for it, the
//!   runtime exits on SIGHUP (SIGINT, SIGTERM, …) and does nothing on the
//!   others (SIGUSR1, SIGUSR2, …). Told by the executable's `.go.buildinfo`
//!   ELF section (every Go program since 1.13 has one), or, in an
//!   executable without section headers, by the build-info magic where Go's
//!   own `debug/buildinfo` looks for it: the start of the first writable
//!   segment, 16-byte aligned.
//! - **JVM**: catches SIGHUP, SIGINT and SIGTERM to run its shutdown hooks,
//!   then exits. Told by the executable's name (`java`) or `libjvm.so` in
//!   the process's memory maps.
//!
//! Every read is bounded (a few KiB of ELF headers, at most [`MAX_MAPS`] of
//! maps) and everything read is taken as hostile: a file that is not ELF,
//! is truncated, or holds offsets and counts that make no sense is "not
//! recognised", never a panic. Not recognised is not "safe": the probe
//! still checks after a signal that the target lives ([`crate::signal`]).
//! Deciding what to do about a runtime is `probe`'s.

use crate::smallfile;
use nix::sys::signal::Signal;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A runtime whose default on a reload signal is not to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Go,
    Jvm,
}

/// At most this many section (or program) headers are read.
const MAX_HEADERS: u64 = 1024;
/// At most this much of the section-name table is read.
const MAX_NAMES: u64 = 64 * 1024;
/// Go's `debug/buildinfo` searches this much of the data segment.
const MAX_DATA: u64 = 64 * 1024;
/// At most this much of `/proc/PID/maps` is read (a JVM's is some 100 KiB).
pub const MAX_MAPS: u64 = 4 * 1024 * 1024;
const SECTION: &[u8] = b".go.buildinfo";
const MAGIC: &[u8] = b"\xff Go buildinf:";

/// What `pid` runs, if it is one of the runtimes above. `None` also when
/// it cannot be told (no such process, not ours to read).
pub fn of(proc_root: &Path, pid: i32) -> Option<Runtime> {
    let dir = proc_root.join(pid.to_string());
    if let Ok((exe, _)) = smallfile::open(&dir.join("exe"), usize::MAX) {
        if is_go(&exe) {
            return Some(Runtime::Go);
        }
    }
    let named_java = std::fs::read_link(dir.join("exe")).is_ok_and(|target| {
        target.file_name().is_some_and(|n| {
            let n = n.as_encoded_bytes();
            n == b"java" || n == b"java (deleted)"
        })
    });
    if named_java {
        return Some(Runtime::Jvm);
    }
    let maps = smallfile::open(&dir.join("maps"), usize::MAX).ok()?.0;
    maps_have_libjvm(maps, MAX_MAPS).then_some(Runtime::Jvm)
}

/// Why `sig` must not be sent to `pid` (named `name`), running `runtime`,
/// unless the app says it handles it (`--signal-handled`).
pub fn refusal(runtime: Runtime, pid: i32, name: &str, sig: Signal) -> String {
    use Signal::*;
    let exits = matches!(
        sig,
        SIGHUP
            | SIGINT
            | SIGTERM
            | SIGQUIT
            | SIGILL
            | SIGTRAP
            | SIGABRT
            | SIGBUS
            | SIGFPE
            | SIGSEGV
            | SIGSYS
            | SIGSTKFLT
    );
    match runtime {
        Runtime::Go => format!(
            "pid {pid} ({name}) is a Go program, which {} {sig} unless it calls signal.Notify for it (pass \
             --signal-handled if it does, or use --reload-url)",
            if exits { "exits on" } else { "ignores" }
        ),
        Runtime::Jvm => format!(
            "pid {pid} ({name}) is a JVM, which {} {sig} unless the app handles it with sun.misc.Signal (pass \
             --signal-handled if it does, or use --reload-url, e.g. Spring's /actuator/refresh)",
            if exits {
                "runs its shutdown hooks and exits on"
            } else {
                "does not reload on"
            }
        ),
    }
}

/// The ELF header fields needed here, and how to read numbers.
struct Elf {
    wide: bool,
    big: bool,
}

impl Elf {
    fn num(&self, b: &[u8], at: usize, len: usize) -> Option<u64> {
        let bytes = b.get(at..at.checked_add(len)?)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if self.big {
                bytes[i]
            } else {
                bytes[len - 1 - i]
            };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    }

    /// A word: 8 bytes in a 64-bit file, 4 in a 32-bit one.
    fn word(&self, b: &[u8], at64: usize, at32: usize) -> Option<u64> {
        match self.wide {
            true => self.num(b, at64, 8),
            false => self.num(b, at32, 4),
        }
    }

    fn half(&self, b: &[u8], at64: usize, at32: usize) -> Option<u64> {
        self.num(b, if self.wide { at64 } else { at32 }, 2)
    }
}

/// Exactly `len` bytes at `offset`, or `None`.
fn read_at(file: &File, offset: u64, len: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

/// Is `file` a Go executable? Reads the ELF header, then either the
/// section headers and their name table, or (no sections) the program
/// headers and the start of the first writable segment.
pub fn is_go(file: &File) -> bool {
    go_elf(file).unwrap_or(false)
}

fn go_elf(file: &File) -> Option<bool> {
    let mut head = [0u8; 64];
    let got = file.read_at(&mut head, 0).ok()?;
    let head = &head[..got];
    if head.get(..4)? != b"\x7fELF" {
        return None;
    }
    let elf = Elf {
        wide: match head.get(4)? {
            1 => false,
            2 => true,
            _ => return None,
        },
        big: match head.get(5)? {
            1 => false,
            2 => true,
            _ => return None,
        },
    };
    let shoff = elf.word(head, 0x28, 0x20)?;
    let shentsize = elf.half(head, 0x3a, 0x2e)?;
    let shnum = elf.half(head, 0x3c, 0x30)?;
    let shstrndx = elf.half(head, 0x3e, 0x32)?;
    if shoff != 0 && shnum != 0 {
        return sections_name_go(file, &elf, shoff, shentsize, shnum, shstrndx);
    }
    let phoff = elf.word(head, 0x20, 0x1c)?;
    let phentsize = elf.half(head, 0x36, 0x2a)?;
    let phnum = elf.half(head, 0x38, 0x2c)?;
    segment_holds_magic(file, &elf, phoff, phentsize, phnum)
}

fn sections_name_go(
    file: &File,
    elf: &Elf,
    shoff: u64,
    entsize: u64,
    count: u64,
    names_index: u64,
) -> Option<bool> {
    let min = if elf.wide { 64 } else { 40 };
    if !(min..=256).contains(&entsize) || count > MAX_HEADERS || names_index >= count {
        return None;
    }
    let table = read_at(file, shoff, entsize * count)?;
    let header = |i: u64| table.get((i * entsize) as usize..((i + 1) * entsize) as usize);
    // sh_offset and sh_size of a section.
    let place = |h: &[u8]| Some((elf.word(h, 24, 16)?, elf.word(h, 32, 20)?));
    let (names_at, names_len) = place(header(names_index)?)?;
    let names = read_at(file, names_at, names_len.min(MAX_NAMES))?;
    for i in 0..count {
        let h = header(i)?;
        let name_at = usize::try_from(elf.num(h, 0, 4)?).ok()?;
        let Some(rest) = names.get(name_at..) else {
            continue;
        };
        let name = rest.split(|b| *b == 0).next().unwrap_or(rest);
        if name == SECTION {
            return Some(true);
        }
    }
    Some(false)
}

fn segment_holds_magic(
    file: &File,
    elf: &Elf,
    phoff: u64,
    entsize: u64,
    count: u64,
) -> Option<bool> {
    let min = if elf.wide { 56 } else { 32 };
    if !(min..=256).contains(&entsize) || count > MAX_HEADERS || phoff == 0 {
        return None;
    }
    let table = read_at(file, phoff, entsize * count)?;
    const PT_LOAD: u64 = 1;
    const PF_X: u64 = 1;
    const PF_W: u64 = 2;
    for i in 0..count {
        let h = table.get((i * entsize) as usize..((i + 1) * entsize) as usize)?;
        let flags = elf.num(h, if elf.wide { 4 } else { 24 }, 4)?;
        if elf.num(h, 0, 4)? != PT_LOAD || flags & (PF_X | PF_W) != PF_W {
            continue;
        }
        let offset = elf.word(h, 8, 4)?;
        let size = elf.word(h, 32, 16)?.min(MAX_DATA);
        let mut data = vec![0u8; usize::try_from(size).ok()?];
        let got = file.read_at(&mut data, offset).ok()?;
        data.truncate(got);
        // Go aligns the build info to 16 bytes.
        return Some(data.chunks(16).any(|c| c.starts_with(MAGIC)));
    }
    Some(false)
}

/// Does a maps listing name `libjvm.so` as a mapped file, within the first
/// `cap` bytes? Read in pieces, so a huge listing costs no memory.
pub fn maps_have_libjvm(mut maps: impl Read, cap: u64) -> bool {
    const NEEDLE: &[u8] = b"/libjvm.so";
    let mut chunk = vec![0u8; 64 * 1024];
    // The end of the previous piece, in case the name spans two.
    let mut carry: Vec<u8> = Vec::new();
    let mut read = 0u64;
    while read < cap {
        let want = chunk.len().min((cap - read) as usize);
        let n = match maps.read(&mut chunk[..want]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        read += n as u64;
        carry.extend_from_slice(&chunk[..n]);
        // A mapped file's name ends its line.
        let hit = carry
            .windows(NEEDLE.len() + 1)
            .any(|w| w.starts_with(NEEDLE) && matches!(w[NEEDLE.len()], b'\n' | b' '));
        if hit {
            return true;
        }
        let keep = carry.len().saturating_sub(NEEDLE.len());
        carry.drain(..keep);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal little-endian 64-bit ELF file: header, a name table and
    /// the section headers, naming the sections `names`.
    fn elf64(names: &[&str]) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut offsets = Vec::new();
        for n in names.iter().chain([&".shstrtab"]) {
            offsets.push(strtab.len() as u32);
            strtab.extend_from_slice(n.as_bytes());
            strtab.push(0);
        }
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        let str_at = f.len() as u64;
        f.extend_from_slice(&strtab);
        while !f.len().is_multiple_of(8) {
            f.push(0);
        }
        let shoff = f.len() as u64;
        let count = offsets.len() as u16 + 1; // with the null section
        f.extend_from_slice(&[0u8; 64]);
        for (i, off) in offsets.iter().enumerate() {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&off.to_le_bytes());
            if i == offsets.len() - 1 {
                h[24..32].copy_from_slice(&str_at.to_le_bytes());
                h[32..40].copy_from_slice(&(strtab.len() as u64).to_le_bytes());
            }
            f.extend_from_slice(&h);
        }
        f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&count.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&(count - 1).to_le_bytes());
        f
    }

    fn file_of(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("exe");
        std::fs::write(&p, bytes).unwrap();
        let f = File::open(&p).unwrap();
        (d, f)
    }

    fn go(bytes: &[u8]) -> bool {
        is_go(&file_of(bytes).1)
    }

    #[test]
    fn go_is_told_by_its_buildinfo_section() {
        assert!(go(&elf64(&[".text", ".go.buildinfo", ".data"])));
        assert!(!go(&elf64(&[".text", ".data", ".go.buildinfox"])));
        assert!(!go(&elf64(&[".text", ".go.buildinf"])));
    }

    #[test]
    fn real_executables() {
        // The test binary is Rust; /bin/sh is C.
        let me = File::open(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_go(&me));
        assert!(!is_go(&File::open("/bin/sh").unwrap()));
        assert_eq!(of(Path::new("/proc"), std::process::id() as i32), None);
    }

    #[test]
    fn hostile_executables_are_not_recognised() {
        let good = elf64(&[".go.buildinfo"]);
        // Not ELF, empty, every truncation of a Go one.
        assert!(!go(b"#!/bin/sh\necho hi\n"));
        assert!(!go(b""));
        for len in 0..good.len() {
            assert!(!go(&good[..len]), "truncated to {len}");
        }
        // Absurd counts, sizes and offsets.
        let mut bad = good.clone();
        bad[0x3c..0x3e].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(!go(&bad), "65535 sections");
        let mut bad = good.clone();
        bad[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!go(&bad), "section headers past the end");
        let mut bad = good.clone();
        bad[0x3a..0x3c].copy_from_slice(&1u16.to_le_bytes());
        assert!(!go(&bad), "1-byte section headers");
        let mut bad = good.clone();
        bad[0x3e..0x40].copy_from_slice(&999u16.to_le_bytes());
        assert!(!go(&bad), "name table index out of range");
        let mut bad = good.clone();
        bad[4] = 9;
        assert!(!go(&bad), "unknown class");
        // A name table that claims 2^64-1 bytes is read only up to its cap
        // (and is then past the end: not recognised, nothing allocated).
        let mut bad = good.clone();
        let last = bad.len() - 64;
        bad[last + 32..last + 40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!go(&bad));
        // Name offsets past the table are skipped.
        let mut bad = good.clone();
        let first = bad.len() - 128;
        bad[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!go(&bad));
    }

    #[test]
    fn a_huge_sparse_executable_is_read_only_where_it_points() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("huge");
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(&elf64(&[".go.buildinfo"])).unwrap();
        f.set_len(1 << 40).unwrap();
        let start = std::time::Instant::now();
        assert!(is_go(&File::open(&p).unwrap()));
        // Section headers at the end of 1 TiB of holes: not read either.
        let mut head = elf64(&[".text"]);
        head[0x28..0x30].copy_from_slice(&((1u64 << 40) - 4096).to_le_bytes());
        std::fs::write(&p, &head).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        assert!(!is_go(&File::open(&p).unwrap()));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn without_sections_the_magic_in_the_data_segment_tells() {
        // 64-bit LE, no section headers, two program headers: text (R+X),
        // data (R+W) starting with the magic.
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        let phoff = 64u64;
        f[0x20..0x28].copy_from_slice(&phoff.to_le_bytes());
        f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        f[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        let data_at = 64 + 2 * 56;
        for (flags, offset) in [(5u32, 0u64), (6u32, data_at as u64)] {
            let mut h = [0u8; 56];
            h[..4].copy_from_slice(&1u32.to_le_bytes());
            h[4..8].copy_from_slice(&flags.to_le_bytes());
            h[8..16].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&64u64.to_le_bytes());
            f.extend_from_slice(&h);
        }
        let mut with = f.clone();
        with.extend_from_slice(MAGIC);
        with.resize(with.len() + 64, 0);
        assert!(go(&with));
        let mut without = f;
        without.extend_from_slice(b"\xff Go buildinfx:");
        without.resize(without.len() + 64, 0);
        assert!(!go(&without));
    }

    #[test]
    fn libjvm_in_maps() {
        let line =
            |path: &str| format!("7f0000000000-7f0000001000 r-xp 00000000 08:01 1234   {path}\n");
        let jvm = [
            line("/usr/lib/jvm/java-17/lib/server/libjvm.so"),
            line("[heap]"),
        ]
        .concat();
        assert!(maps_have_libjvm(jvm.as_bytes(), MAX_MAPS));
        let deleted = line("/opt/jdk/lib/server/libjvm.so (deleted)");
        assert!(maps_have_libjvm(deleted.as_bytes(), MAX_MAPS));
        assert!(!maps_have_libjvm(
            line("/usr/lib/libjvm.so.bak").as_bytes(),
            MAX_MAPS
        ));
        assert!(!maps_have_libjvm(
            line("/usr/lib/x86_64-linux-gnu/libc.so.6").as_bytes(),
            MAX_MAPS
        ));
        // Far down a long listing, across a piece boundary.
        let mut long = line("/x").repeat(10_000);
        long.push_str(&jvm);
        assert!(maps_have_libjvm(long.as_bytes(), MAX_MAPS));
        // Past the cap: not read, not recognised.
        assert!(!maps_have_libjvm(long.as_bytes(), 1000));
        // An endless, hostile listing costs the cap and no more.
        assert!(!maps_have_libjvm(std::io::repeat(b'/'), 1 << 20));
        // Not text at all.
        assert!(!maps_have_libjvm(&[0xffu8; 100_000][..], MAX_MAPS));
    }

    #[test]
    fn refusals_say_what_happens_and_what_to_do() {
        let go_hup = refusal(Runtime::Go, 1, "server", Signal::SIGHUP);
        assert_eq!(
            go_hup,
            "pid 1 (server) is a Go program, which exits on SIGHUP unless it calls signal.Notify for it (pass \
             --signal-handled if it does, or use --reload-url)"
        );
        assert!(refusal(Runtime::Go, 7, "s", Signal::SIGUSR1).contains("ignores SIGUSR1"));
        let jvm = refusal(Runtime::Jvm, 1, "java", Signal::SIGHUP);
        assert!(
            jvm.contains("is a JVM, which runs its shutdown hooks and exits on SIGHUP"),
            "{jvm}"
        );
        assert!(refusal(Runtime::Jvm, 1, "java", Signal::SIGUSR2)
            .contains("does not reload on SIGUSR2"));
    }
}
