//! The state file's bytes: [`parse`] reads them straight into the typed
//! [`State`], telling corrupt, foreign and newer files apart and naming the
//! field at fault; [`json_compact`] and [`json_pretty`] write the state and
//! every `--json` document, as serde_json does but with the characters a
//! terminal or a log should never see raw escaped.

use super::{Loaded, State, FORMAT, OLDEST_VERSION, VERSION};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

/// Parses state bytes, telling corrupt, foreign and newer files apart.
pub fn parse(bytes: &[u8]) -> Loaded {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Loaded::Unusable("the state file is empty (interrupted write?)".into());
    }
    // One pass, straight into the typed state: what every probe reads.
    let typed = match serde_json::from_slice::<State>(bytes) {
        Ok(st) if st.format == FORMAT && (OLDEST_VERSION..=VERSION).contains(&st.version) => {
            return Loaded::Found(Box::new(st))
        }
        other => other,
    };
    // Unusable: a second look at the format and version alone says why.
    let corrupt =
        |why: String| Loaded::Unusable(format!("the state file is corrupt ({why}); ignored"));
    let head = match serde_json::from_slice::<Head>(bytes) {
        Ok(h) => h,
        Err(e) => return corrupt(e.to_string()),
    };
    if head.format.as_deref() != Some(FORMAT) {
        return Loaded::Unusable("the state file was not written by driftprobe; ignored".into());
    }
    match head.version {
        Some(v) if v.is_f64() => return corrupt("field `version`: expected an integer".into()),
        Some(v)
            if v.as_u64()
                .is_some_and(|v| (u64::from(OLDEST_VERSION)..=u64::from(VERSION)).contains(&v)) => {
        }
        Some(v) if v.as_u64() > Some(u64::from(VERSION)) => {
            return Loaded::Unusable(format!(
                "the state file has version {v}, newer than this driftprobe's {VERSION}; ignored"
            ))
        }
        _ => return Loaded::Unusable("the state file has no usable version; ignored".into()),
    }
    match typed {
        Ok(st) => Loaded::Found(Box::new(st)),
        Err(e) => corrupt(field_error(bytes, e)),
    }
}

/// What [`parse`] reads of a file that is not a usable state.
#[derive(Deserialize)]
struct Head {
    format: Option<String>,
    version: Option<serde_json::Number>,
}

/// Why `bytes` is not a state: serde_json's reason, and for a value of
/// the wrong type or range, the field it belongs to.
fn field_error(bytes: &[u8], e: serde_json::Error) -> String {
    if e.classify() != serde_json::error::Category::Data || e.to_string().contains("field `") {
        return e.to_string();
    }
    // Where the parser stopped: the line's start, plus the column.
    let line_start = match e.line() {
        0 | 1 => 0,
        n => bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .nth(n - 2)
            .map_or(bytes.len(), |(i, _)| i + 1),
    };
    let upto = &bytes[..line_start.saturating_add(e.column()).min(bytes.len())];
    match last_key(upto) {
        Some(key) => format!("field `{key}`: {e}"),
        None => e.to_string(),
    }
}

/// The last object key in `text` (a JSON document cut short), if it is a
/// name such as the state's own (never text from a value).
fn last_key(text: &[u8]) -> Option<&str> {
    let (mut key, mut string, mut start) = (None, None, 0);
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in text.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => (in_string, string) = (false, Some(start..i)),
                _ => {}
            }
        } else {
            match b {
                b'"' => (in_string, start) = (true, i + 1),
                b':' => key = string.take(),
                b' ' | b'\t' | b'\n' | b'\r' => {}
                _ => string = None,
            }
        }
    }
    let key = &text[key?];
    key.iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        .then(|| std::str::from_utf8(key).ok())?
}

/// `value` as serde_json writes it without whitespace (the state and
/// shared files: only programs read them), with [`crate::escape`]'s unsafe
/// characters escaped.
pub fn json_compact<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    write_json(value, Escaping(serde_json::ser::CompactFormatter))
}

/// `value` as `serde_json::to_string_pretty` writes it (two-space indent:
/// `status --json`, `digest --json`), with [`crate::escape`]'s unsafe
/// characters escaped.
pub fn json_pretty<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    write_json(value, Escaping(serde_json::ser::PrettyFormatter::new()))
}

fn write_json<T: Serialize + ?Sized, F: serde_json::ser::Formatter>(
    value: &T,
    formatter: F,
) -> Result<String, String> {
    let mut out = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// A formatter that also writes DEL, the C1 controls, U+2028/U+2029 and the
/// bidi controls as `\uXXXX` (serde_json escapes only what JSON requires):
/// a document shown on a terminal or in a log shows none of them raw.
struct Escaping<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for Escaping<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        text: &str,
    ) -> io::Result<()> {
        if text.bytes().all(|b| b < 0x7f) {
            return w.write_all(text.as_bytes());
        }
        let mut from = 0;
        for (at, c) in text.char_indices() {
            if crate::escape::is_unsafe(c) {
                w.write_all(&text.as_bytes()[from..at])?;
                write!(w, "\\u{:04x}", c as u32)?;
                from = at + c.len_utf8();
            }
        }
        w.write_all(&text.as_bytes()[from..])
    }

    // The layout is the wrapped formatter's.
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::CachedFile;
    use crate::state::tests::sample;
    use crate::state::{Drift, EnvDrift, Reload, ValidationUnderWay};

    #[test]
    fn bad_files_are_told_apart() {
        let reason = |bytes: &[u8]| match parse(bytes) {
            Loaded::Unusable(r) => r,
            other => panic!("{other:?}"),
        };
        assert!(reason(b"").contains("empty"));
        assert!(reason(b"{\"format\": \"driftprobe-st").contains("corrupt"));
        assert!(reason(b"{\"hello\": 1}").contains("not written by driftprobe"));
        assert!(reason(b"[1,2]").contains("corrupt"));
        assert!(reason(br#"{"format": 5}"#).contains("corrupt"));
        assert!(reason(b"\x00\xff").contains("corrupt"));
        assert!(reason(br#"{"format":"driftprobe-state","version":9}"#).contains("newer"));
        assert!(reason(br#"{"format":"driftprobe-state","version":1}"#).contains("corrupt"));
        // The field at fault is named.
        let mut bad = serde_json::to_value(sample()).unwrap();
        bad["drift"] = serde_json::json!({"since": "yesterday"});
        let why = reason(bad.to_string().as_bytes());
        assert!(
            reason(serde_json::to_string_pretty(&bad).unwrap().as_bytes())
                .contains("field `since`: invalid type")
        );
        assert!(
            why.starts_with("the state file is corrupt (field `since`: invalid type: string"),
            "{why}"
        );
        // Never a value's text taken for a key, nor a name not ours.
        assert_eq!(last_key(br#"{"a":{"b":"x\":y","#), Some("b"));
        assert_eq!(last_key(br#"{"a":1,"Not ours":2"#), None);
    }

    #[test]
    fn reads_and_writes_version_1_files_as_serde_did() {
        // Written by driftprobe 0.1.0 with serde_json (init, a change, a
        // validated reload attempt).
        let old = include_str!("../../tests/faults/fixtures/state-v1-serde.json");
        let Loaded::Found(st) = parse(old.as_bytes()) else {
            panic!("the serde-era file does not load");
        };
        assert_eq!(st.validations[0].1.command, "/bin/true");
        assert_eq!(st.drift.as_ref().map(|d| d.held), Some(false));
        // Every field kept, in serde's order: pretty-printed, it is the
        // same file byte for byte.
        assert_eq!(format!("{}\n", json_pretty(&st).unwrap()), old);
        // What a save writes now (compact) is the same document without
        // the whitespace, which older builds read too.
        let saved = json_compact(&st).unwrap();
        assert!(!saved.contains('\n'));
        let serde: serde_json::Value = serde_json::from_str(&saved).unwrap();
        assert_eq!(
            serde,
            serde_json::from_str::<serde_json::Value>(old).unwrap()
        );
        // Every optional field set survives a round trip.
        let mut full = *st;
        full.drift = Some(Drift {
            since: -5,
            since_boot: Some(7),
            unproven: Some("no \"baseline\"\n".into()),
            held: true,
        });
        full.validations[0].1.transient = true;
        full.warnings_pending = true;
        full.env_drift = vec![EnvDrift {
            name: "A".into(),
            since: i64::MAX,
            since_boot: None,
        }];
        full.validating = Some(ValidationUnderWay {
            digest: "d".into(),
            until: 1,
            until_boot: Some(2),
            pgid: Some(-1),
            leader_start: Some(u64::MAX),
            owner: Some(7),
            owner_start: Some(42),
        });
        full.cache = vec![CachedFile {
            path: "p\u{1}".into(),
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: i64::MIN,
            ctime_ns: 5,
            sha256: "s".into(),
        }];
        full.reloads = vec![Reload {
            at: 1,
            signal: "SIGHUP".into(),
            pid: 1,
            target: "t".into(),
            from_digest: "a".into(),
            to_digest: "b".into(),
        }];
        let text = json_compact(&full).unwrap();
        match parse(text.as_bytes()) {
            Loaded::Found(back) => assert_eq!(*back, full),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn version_2_writes_each_file_as_a_row_and_version_1_stays_as_it_was() {
        let old = include_str!("../../tests/faults/fixtures/state-v1-serde.json");
        let Loaded::Found(v1) = parse(old.as_bytes()) else {
            panic!("the version 1 file does not load");
        };
        assert_eq!(v1.version, 1);
        // The same state in version 2: rows, and read back the same.
        let mut v2 = *v1.clone();
        v2.version = VERSION;
        v2.cache = vec![CachedFile {
            path: "app.yaml".into(),
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: -4,
            ctime_ns: 5,
            sha256: "s".into(),
        }];
        let text = json_compact(&v2).unwrap();
        assert!(
            text.contains(r#""cache":[["app.yaml",1,2,3,-4,5,"s"]]"#),
            "{text}"
        );
        let files = &v2.baseline.as_ref().unwrap().files[0];
        let row = format!(
            r#""files":[["{}","{}",{}]"#,
            files.path, files.sha256, files.size
        );
        assert!(text.contains(&row), "{text}");
        match parse(text.as_bytes()) {
            Loaded::Found(back) => assert_eq!(*back, v2),
            other => panic!("{other:?}"),
        }
        // A version 1 state is written as version 1, readable by 0.1.0.
        let mut same = *v1;
        same.cache = v2.cache.clone();
        let text = json_compact(&same).unwrap();
        assert!(
            text.contains(r#""version":1,"#) && text.contains(r#""cache":[{"path":"app.yaml","#)
        );
        // Past this build's version: newer, ignored.
        let newer = format!(
            r#"{{"format":"driftprobe-state","version":{}}}"#,
            VERSION + 1
        );
        match parse(newer.as_bytes()) {
            Loaded::Unusable(why) => assert!(why.contains("newer"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_is_serde_jsons_with_unsafe_characters_escaped() {
        let doc = serde_json::json!({
            "list": [1, {}],
            "empty": [],
            "s": "\u{7f}\u{1f}\u{8}\u{2028}\u{202e}é\"\\",
        });
        assert_eq!(
            json_pretty(&doc).unwrap(),
            "{\n  \"empty\": [],\n  \"list\": [\n    1,\n    {}\n  ],\n  \"s\": \"\\u007f\\u001f\\b\\u2028\\u202eé\\\"\\\\\"\n}"
        );
        assert_eq!(
            json_compact(&doc).unwrap(),
            r#"{"empty":[],"list":[1,{}],"s":"\u007f\u001f\b\u2028\u202eé\"\\"}"#
        );
    }
}
