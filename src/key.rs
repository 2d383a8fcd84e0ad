//! Keyed digests for Secrets: `digest --key-file PATH`.
//!
//! A plain SHA-256 of a file is a public function of its content: whoever
//! sees the digest of a Secret holding `pin=4821` tries the 10⁴ PINs and
//! has it back in milliseconds. Keyed with HMAC-SHA-256 and a key that CI
//! and the pod share (a key file, typically from its own Secret), the same
//! digest tells nothing to anyone without the key, and still lets CI and
//! `kubectl exec … driftprobe digest --key-file …` compare.
//!
//! The keyed tree digest is HMAC-SHA-256 over the same canonical manifest
//! as [`crate::digest::tree_digest`] (`name NUL sha256 LF` per file,
//! sorted), printed as `hmac-sha256:<hex>`; a file's keyed value is the
//! HMAC of `name NUL sha256`. This module only computes: the walk is
//! digest's, the printing status's.

use crate::digest::{hex, Entry};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::Path;

/// A key file larger than this is not a key (and is not read whole).
pub const MAX_KEY_BYTES: u64 = 64 * 1024;

/// The key's bytes (never printed).
pub struct Key(Vec<u8>);

impl Key {
    /// Reads the key file: a regular file (or a symlink to one, as in a
    /// Secret volume) of at most [`MAX_KEY_BYTES`], not empty. One trailing
    /// newline (`\n` or `\r\n`) is not part of the key, so a key written
    /// with `echo` in CI and the same bytes in a Secret agree.
    pub fn load(path: &Path) -> Result<Key, String> {
        let shown = crate::escape::path(path);
        let why = |e: std::io::Error| {
            format!(
                "--key-file {shown}: cannot read it: {}",
                crate::digest::plain_io(&e)
            )
        };
        // Non-blocking, regular files only, capped: a FIFO or /dev/zero
        // put in its place must not hang the command or fill memory.
        let mut bytes = crate::smallfile::read(path, MAX_KEY_BYTES as usize).map_err(why)?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(format!("--key-file {shown}: empty; a key needs at least one byte (32 random bytes are plenty)"));
        }
        Ok(Key(bytes))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// The keyed tree digest, `hmac-sha256:<64 hex digits>`.
    pub fn tree(&self, files: &[Entry]) -> String {
        let mut m = self.mac();
        for e in files {
            m.update(e.path.as_bytes());
            m.update(&[0u8]);
            m.update(e.sha256.as_bytes());
            m.update(b"\n");
        }
        format!("hmac-sha256:{}", hex(&m.finalize().into_bytes()))
    }

    /// One file's keyed value (hex): bound to its name, so equal contents
    /// under two names do not show as equal.
    pub fn file(&self, e: &Entry) -> String {
        let mut m = self.mac();
        m.update(e.path.as_bytes());
        m.update(&[0u8]);
        m.update(e.sha256.as_bytes());
        hex(&m.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry(path: &str, sha: &str) -> Entry {
        Entry {
            path: path.into(),
            sha256: sha.into(),
            size: 4,
        }
    }

    fn key_file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn rfc_4231_test_case_2() {
        // HMAC-SHA-256 of "what do ya want for nothing?" with key "Jefe".
        let k = Key(b"Jefe".to_vec());
        let mut m = k.mac();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn keyed_digests_depend_on_the_key_and_the_files() {
        let files = [entry("pin", "aa"), entry("user", "bb")];
        let a = Key(b"key-a".to_vec());
        let b = Key(b"key-b".to_vec());
        assert_eq!(a.tree(&files), a.tree(&files));
        assert_ne!(a.tree(&files), b.tree(&files));
        assert_ne!(a.tree(&files), a.tree(&files[..1]));
        assert!(a.tree(&files).starts_with("hmac-sha256:"));
        assert_eq!(a.tree(&files).len(), "hmac-sha256:".len() + 64);
        // Same content, two names: two values.
        assert_ne!(a.file(&entry("x", "aa")), a.file(&entry("y", "aa")));
    }

    #[test]
    fn key_files_are_checked() {
        let with_newline = Key::load(key_file(b"s3cret\n").path()).unwrap();
        let with_crlf = Key::load(key_file(b"s3cret\r\n").path()).unwrap();
        let bare = Key::load(key_file(b"s3cret").path()).unwrap();
        assert_eq!(with_newline.0, bare.0);
        assert_eq!(with_crlf.0, bare.0);
        for bad in [&b""[..], b"\n"] {
            let e = Key::load(key_file(bad).path()).err().unwrap();
            assert!(e.contains("empty"), "{e}");
        }
        let big = vec![b'k'; MAX_KEY_BYTES as usize + 1];
        assert!(Key::load(key_file(&big).path())
            .err()
            .unwrap()
            .contains("larger"));
        let dir = tempfile::tempdir().unwrap();
        assert!(Key::load(dir.path()).err().unwrap().contains("directory"));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(Key::load(&fifo).err().unwrap().contains("FIFO"));
        let e = Key::load(&dir.path().join("absent")).err().unwrap();
        assert!(e.contains("cannot read"), "{e}");
    }
}
