//! The one escaping rule for everything driftprobe prints.
//!
//! A probe's stdout becomes a kubelet Event ("Liveness probe failed: …"),
//! and names, paths, validator output, URLs, process names and error
//! messages can all come from someone hostile: a file named
//! `x\nok: config matches` must not forge a second line, an ESC sequence
//! must not repaint a terminal, U+202E must not reverse what `kubectl
//! describe` shows. So every such byte goes through [`bytes`] (one-to-one:
//! `\` itself is escaped, invalid UTF-8 keeps its bytes as `\xNN` rather
//! than turning into U+FFFD) before it is put into a message, and every
//! line goes through [`line`] once more as it is written ([`crate::Report`]
//! does that), which escapes the same characters but leaves `\` alone, so
//! text already escaped passes unchanged and anything missed is still made
//! harmless.
//!
//! Escaped: C0 controls (newline, carriage return, tab, ESC, VT, FF, NUL,
//! …), DEL, C1 controls (NEL U+0085, CSI U+009B, …), the line and paragraph
//! separators U+2028/U+2029, and the bidirectional controls (U+061C,
//! U+200E/U+200F, U+202A–U+202E, U+2066–U+2069), each as the `\xNN` of
//! its UTF-8 bytes.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether `c` is printed as `\xNN` escapes (not counting `\`).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Raw bytes (a file name, a path, a validator's output) as printable
/// text on one line, one-to-one.
pub fn bytes(raw: &[u8]) -> String {
    escape(raw, true)
}

/// A path, as [`bytes`].
pub fn path(p: &Path) -> String {
    bytes(p.as_os_str().as_bytes())
}

/// Text about to be written as one line: the unsafe characters escaped,
/// `\` kept (so the output of [`bytes`] is unchanged).
pub fn line(text: &str) -> String {
    escape(text.as_bytes(), false)
}

/// A message that quotes some of `inputs` verbatim (clap's usage errors
/// quote the offending argument or `DRIFTPROBE_*` value), made safe: each
/// quoted input that holds anything [`bytes`] escapes is replaced by what
/// [`bytes`] makes of it (so a newline inside a value cannot start a line
/// of its own), then every line goes through [`line`].
pub fn quoting(message: &str, inputs: &[Vec<u8>]) -> String {
    let mut quoted: Vec<(String, String)> = Vec::new();
    for input in inputs {
        // The whole value, the part after `--flag=`, and the items of a
        // `:`/`,`-separated list: clap may quote any of them.
        let after_eq = input
            .iter()
            .position(|&b| b == b'=')
            .map(|i| &input[i + 1..]);
        let parts = input.split(|&b| b == b':' || b == b',');
        for piece in std::iter::once(&input[..]).chain(after_eq).chain(parts) {
            let shown = String::from_utf8_lossy(piece).into_owned();
            if !shown.is_empty() && shown.chars().any(|c| is_unsafe(c) || c == '\u{fffd}') {
                quoted.push((shown, bytes(piece)));
            }
        }
    }
    // Longest first: a list item must not break up the whole value.
    quoted.sort_by_key(|(raw, _)| std::cmp::Reverse(raw.len()));
    let mut text = message.to_string();
    for (raw, shown) in &quoted {
        text = text.replace(raw.as_str(), shown);
    }
    text.split('\n').map(line).collect::<Vec<_>>().join("\n")
}

/// The one escaping function: `backslash` says whether `\` itself is
/// escaped (as `\\`).
fn escape(raw: &[u8], backslash: bool) -> String {
    // Nearly every name is printable ASCII: copied as is.
    if raw
        .iter()
        .all(|&b| (b' '..b'\x7f').contains(&b) && (b != b'\\' || !backslash))
    {
        return String::from_utf8_lossy(raw).into_owned();
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' && backslash {
                out.push_str("\\\\");
            } else if is_unsafe(c) {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    escape_byte(&mut out, b);
                }
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            escape_byte(&mut out, b);
        }
    }
    out
}

/// `\xNN`, lower-case hex.
fn escape_byte(out: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\x");
    out.push(DIGITS[(b >> 4) as usize] as char);
    out.push(DIGITS[(b & 15) as usize] as char);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undoes [`bytes`], to show it is one-to-one.
    fn unescape(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match (b[i], b.get(i + 1)) {
                (b'\\', Some(b'\\')) => {
                    out.push(b'\\');
                    i += 2;
                }
                (b'\\', Some(b'x')) => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 4;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        out
    }

    #[test]
    fn escapes_what_could_forge_or_hide_a_line() {
        assert_eq!(bytes(b"plain.yaml"), "plain.yaml");
        assert_eq!(bytes("café".as_bytes()), "café");
        assert_eq!(bytes(b"bad\xff"), "bad\\xff");
        assert_eq!(bytes(b"x\nok: y"), "x\\x0aok: y");
        assert_eq!(
            bytes(b"a\rb\x1b[2Kc\x0bd\x0ce\0"),
            "a\\x0db\\x1b[2Kc\\x0bd\\x0ce\\x00"
        );
        assert_eq!(bytes(b"back\\x"), "back\\\\x");
        assert_eq!(bytes(b"del\x7f"), "del\\x7f");
        assert_eq!(bytes("nel\u{85}".as_bytes()), "nel\\xc2\\x85");
        assert_eq!(
            bytes("ls\u{2028}ps\u{2029}".as_bytes()),
            "ls\\xe2\\x80\\xa8ps\\xe2\\x80\\xa9"
        );
        assert_eq!(
            bytes("rlo\u{202e}fdp.exe".as_bytes()),
            "rlo\\xe2\\x80\\xaefdp.exe"
        );
        assert_eq!(
            bytes("iso\u{2066}x\u{2069}".as_bytes()),
            "iso\\xe2\\x81\\xa6x\\xe2\\x81\\xa9"
        );
        // Other non-ASCII text is kept.
        assert_eq!(bytes("日本\u{2010}".as_bytes()), "日本\u{2010}");
    }

    #[test]
    fn bytes_is_one_to_one_and_line_keeps_its_output() {
        let samples: [&[u8]; 7] = [
            b"",
            b"a\\x0ab",
            b"a\nb",
            b"\\\\xff\xff",
            "\u{202e}\u{85}\\".as_bytes(),
            b"\xe2\x80",
            b"\xc2",
        ];
        for s in samples {
            let e = bytes(s);
            assert_eq!(unescape(&e), s, "{e}");
            assert_eq!(line(&e), e);
            assert!(!e.chars().any(is_unsafe), "{e}");
        }
    }

    #[test]
    fn quoted_inputs_cannot_start_a_line() {
        let msg = "error: invalid value '1\nok: fine' for '--grace <DURATION>': bad\n\nUsage: x\n";
        let inputs = [b"--grace=1\nok: fine".to_vec(), b"/etc/config".to_vec()];
        assert_eq!(
            quoting(msg, &inputs),
            "error: invalid value '1\\x0aok: fine' for '--grace <DURATION>': bad\n\nUsage: x\n"
        );
        // Not UTF-8: clap shows U+FFFD; printed as the bytes were.
        let msg = "error: invalid value 'a\u{fffd}' for '--grace'";
        assert_eq!(
            quoting(msg, &[b"a\xff".to_vec()]),
            "error: invalid value 'a\\xff' for '--grace'"
        );
    }

    #[test]
    fn line_escapes_everything_but_the_backslash() {
        assert_eq!(line("a\\x0a\nok: b"), "a\\x0a\\x0aok: b");
        assert_eq!(line("\u{2028}\u{1b}"), "\\xe2\\x80\\xa8\\x1b");
    }
}
