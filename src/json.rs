//! A small JSON codec for the state file and the `--json` outputs, in
//! place of serde (which cost ~27 KiB of the static binary's size budget).
//!
//! [`parse`] reads a document into a [`Value`] tree and is strict: integers
//! only (the state holds no fractions), each within 64 bits, no trailing
//! garbage, no bad escapes or lone surrogates, no raw control characters
//! in strings, nesting at most [`MAX_DEPTH`] deep. It never panics and
//! allocates in proportion to its input. [`pretty`] writes a tree the way
//! `serde_json::to_string_pretty` does (two-space indent, for `--json`
//! output), [`compact`] the way `serde_json::to_string` does (the state
//! file: any build, old or new, reads either).
//!
//! This module knows nothing of what the documents mean: state.rs and
//! status.rs map their types to and from [`Value`].

use std::borrow::Cow;
use std::fmt;

/// Deeper nesting than this is not ours (the state file needs 4 levels).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every integer a state file holds fits in i64 or u64.
    Int(i128),
    Str(String),
    Arr(Vec<Value>),
    /// Keys in document order (duplicates are kept; [`Value::get`] refuses them).
    Obj(Vec<(Key, Value)>),
}

/// An object's key: a name the program knows (written by [`obj`], or
/// read by [`parse_known`]) is borrowed, not allocated.
pub type Key = Cow<'static, str>;

/// Why a document or a field is unusable: "line 3, column 7: …" or
/// "field `drift.since`: …".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn field_err(name: &str, what: &str) -> Error {
    Error(format!("field `{name}`: {what}"))
}

impl Value {
    /// The value of `key` in an object; `Ok(None)` when absent. A key
    /// given twice is an error, as it is for serde's derived structs.
    pub fn get(&self, key: &str) -> Result<Option<&Value>> {
        let Value::Obj(pairs) = self else {
            return Err(field_err(key, "not inside an object"));
        };
        let mut found = None;
        for (k, v) in pairs {
            if *k == *key {
                if found.is_some() {
                    return Err(field_err(key, "given twice"));
                }
                found = Some(v);
            }
        }
        Ok(found)
    }

    /// The value of a required `key`.
    pub fn req(&self, key: &str) -> Result<&Value> {
        self.get(key)?.ok_or_else(|| field_err(key, "missing"))
    }

    /// `key` decoded with `f`, or `None` when absent or null.
    pub fn opt<T>(&self, key: &str, f: impl Fn(&Value, &str) -> Result<T>) -> Result<Option<T>> {
        match self.get(key)? {
            None | Some(Value::Null) => Ok(None),
            Some(v) => f(v, key).map(Some),
        }
    }

    pub fn str(&self, name: &str) -> Result<String> {
        match self {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(field_err(name, "expected a string")),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self {
            Value::Bool(b) => Ok(*b),
            _ => Err(field_err(name, "expected true or false")),
        }
    }

    fn int<T: TryFrom<i128>>(&self, name: &str) -> Result<T> {
        match self {
            Value::Int(n) => T::try_from(*n).map_err(|_| field_err(name, "number out of range")),
            _ => Err(field_err(name, "expected an integer")),
        }
    }

    pub fn i64(&self, name: &str) -> Result<i64> {
        self.int(name)
    }
    pub fn u64(&self, name: &str) -> Result<u64> {
        self.int(name)
    }
    pub fn i32(&self, name: &str) -> Result<i32> {
        self.int(name)
    }
    pub fn u32(&self, name: &str) -> Result<u32> {
        self.int(name)
    }

    /// Each element decoded with `f`.
    pub fn list<T>(&self, name: &str, f: impl Fn(&Value, &str) -> Result<T>) -> Result<Vec<T>> {
        match self {
            Value::Arr(items) => items.iter().map(|v| f(v, name)).collect(),
            _ => Err(field_err(name, "expected a list")),
        }
    }
}

/// `key` decoded with `f` where absent means `T::default()` (serde's
/// `#[serde(default)]`).
pub fn or_default<T: Default>(
    obj: &Value,
    key: &str,
    f: impl Fn(&Value, &str) -> Result<T>,
) -> Result<T> {
    match obj.get(key)? {
        None => Ok(T::default()),
        Some(v) => f(v, key),
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Str(s.clone())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Int(i128::from(n))
            }
        }
    )*};
}
from_int!(i32, u32, i64, u64);
impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Int(n as i128)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

/// A list of strings.
pub fn strings(items: &[String]) -> Value {
    Value::Arr(items.iter().map(Value::from).collect())
}

/// An object from (key, value) pairs, in order.
pub fn obj(pairs: Vec<(&'static str, Value)>) -> Value {
    Value::Obj(
        pairs
            .into_iter()
            .map(|(k, v)| (Cow::Borrowed(k), v))
            .collect(),
    )
}

/// Parses one JSON document; whitespace around it is allowed, nothing else.
pub fn parse(bytes: &[u8]) -> Result<Value> {
    parse_known(bytes, &[])
}

/// [`parse`], with the object keys a document is expected to hold: those
/// are borrowed from `known` instead of allocated (a state file of 1,000
/// files holds 20,000 keys). Put the most frequent first.
pub fn parse_known(bytes: &[u8], known: &'static [&'static str]) -> Result<Value> {
    let mut p = Parser {
        bytes,
        pos: 0,
        known,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos < bytes.len() {
        return Err(p.err("trailing characters after the document"));
    }
    Ok(v)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    known: &'static [&'static str],
}

impl Parser<'_> {
    fn err(&self, what: &str) -> Error {
        let upto = &self.bytes[..self.pos.min(self.bytes.len())];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = upto.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        Error(format!("line {line}, column {col}: {what}"))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            None => Err(self.err("unexpected end of the document")),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(open @ (b'[' | b'{')) => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nested too deeply"));
                }
                self.pos += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                self.ws();
                if self.eat(close) {
                    return Ok(if open == b'[' {
                        Value::Arr(Vec::new())
                    } else {
                        Value::Obj(Vec::new())
                    });
                }
                // Room for the state's objects (at most 7 keys) up front:
                // one allocation, where growing from empty takes two.
                let mut items = Vec::new();
                let mut pairs = Vec::with_capacity(if open == b'{' { 8 } else { 0 });
                loop {
                    self.ws();
                    if open == b'[' {
                        items.push(self.value(depth + 1)?);
                    } else {
                        if self.peek() != Some(b'"') {
                            return Err(self.err("expected a key in quotes"));
                        }
                        let key = self.key()?;
                        self.ws();
                        if !self.eat(b':') {
                            return Err(self.err("expected ':'"));
                        }
                        self.ws();
                        pairs.push((key, self.value(depth + 1)?));
                    }
                    self.ws();
                    if self.eat(close) {
                        break;
                    }
                    if !self.eat(b',') {
                        return Err(self.err("expected ',' or a closing bracket"));
                    }
                }
                Ok(if open == b'[' {
                    Value::Arr(items)
                } else {
                    Value::Obj(pairs)
                })
            }
            Some(_) => Err(self.err("expected a value")),
        }
    }

    /// An integer: `-?(0|[1-9][0-9]*)`, within i64/u64.
    fn number(&mut self) -> Result<Value> {
        let neg = self.eat(b'-');
        let start = self.pos;
        let mut mag: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            mag = mag
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| self.err("number too large"))?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 {
            return Err(self.err("expected a digit"));
        }
        if digits > 1 && self.bytes[start] == b'0' {
            return Err(self.err("leading zero in a number"));
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(self.err("expected an integer"));
        }
        let n = if neg {
            -i128::from(mag)
        } else {
            i128::from(mag)
        };
        if n < i128::from(i64::MIN) {
            return Err(self.err("number too large"));
        }
        Ok(Value::Int(n))
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|b| (b as char).to_digit(16))
                .ok_or_else(|| self.err("bad \\u escape"))?;
            n = n * 16 + d;
            self.pos += 1;
        }
        Ok(n)
    }

    /// An object key: one of `known` when it is, without allocating.
    fn key(&mut self) -> Result<Key> {
        let start = self.pos + 1;
        if let Some(len) = self.plain_len(start) {
            let text = &self.bytes[start..start + len];
            if let Some(k) = self.known.iter().find(|k| k.as_bytes() == text) {
                self.pos = start + len + 1;
                return Ok(Cow::Borrowed(k));
            }
        }
        self.string().map(Cow::Owned)
    }

    /// The length of the string from `start` (past its opening quote) when
    /// it is closed and holds no escape or control character.
    fn plain_len(&self, start: usize) -> Option<usize> {
        let rest = self.bytes.get(start..)?;
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        (rest[len] == b'"').then_some(len)
    }

    fn string(&mut self) -> Result<String> {
        // Past the opening quote. The common case, a string without
        // escapes: one scan, one copy.
        self.pos += 1;
        let start = self.pos;
        if let Some(len) = self.plain_len(start) {
            let text = &self.bytes[start..start + len];
            self.pos = start + len + 1;
            return match std::str::from_utf8(text) {
                Ok(t) => Ok(t.to_owned()),
                Err(_) => Err(self.err("string is not UTF-8")),
            };
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                0..=0x1f => return Err(self.err("control character in a string")),
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return Err(self.err("lone surrogate in a \\u escape"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone surrogate in a \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)
                                .ok_or_else(|| self.err("lone surrogate in a \\u escape"))?
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("bad escape in a string"));
                        }
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"))
    }
}

/// The document as `serde_json::to_string_pretty` writes it (for people:
/// `status --json`).
pub fn pretty(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, Some(0));
    out
}

/// The document as `serde_json::to_string` writes it: no whitespace (the
/// state file, which only programs read: a third smaller than pretty, and
/// quicker to parse).
pub fn compact(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, None);
    out
}

/// `level`: the indent level when pretty, `None` when compact.
fn write_value(out: &mut String, v: &Value, level: Option<usize>) {
    let inner = level.map(|l| l + 1);
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Str(s) => write_str(out, s),
        Value::Arr(items) => {
            write_seq(out, '[', ']', items.len(), level, |out, i| {
                write_value(out, &items[i], inner)
            });
        }
        Value::Obj(pairs) => {
            write_seq(out, '{', '}', pairs.len(), level, |out, i| {
                write_str(out, &pairs[i].0);
                out.push_str(if level.is_some() { ": " } else { ":" });
                write_value(out, &pairs[i].1, inner);
            });
        }
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_seq(
    out: &mut String,
    open: char,
    close: char,
    len: usize,
    level: Option<usize>,
    mut item: impl FnMut(&mut String, usize),
) {
    out.push(open);
    for i in 0..len {
        if i > 0 {
            out.push(',');
        }
        if let Some(level) = level {
            out.push('\n');
            indent(out, level + 1);
        }
        item(out, i);
    }
    if let (Some(level), true) = (level, len > 0) {
        out.push('\n');
        indent(out, level);
    }
    out.push(close);
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // Control characters, and (unlike serde_json) also DEL, C1,
            // U+2028/U+2029 and the bidi controls: a `--json` document on a
            // terminal or in a log shows none of them raw (crate::escape).
            c if crate::escape::is_unsafe(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes() {
        let v = obj(vec![
            ("a", Value::from("x\"y\\z\n\t\u{1}é😀")),
            ("b", Value::Arr(vec![])),
            ("c", Value::Obj(vec![])),
            ("d", Value::Arr(vec![Value::from(-5i64), Value::Null])),
            ("e", Value::from(u64::MAX)),
            ("f", Value::from(i64::MIN)),
            ("g", Value::from(true)),
        ]);
        let text = pretty(&v);
        assert_eq!(parse(text.as_bytes()), Ok(v));
    }

    #[test]
    fn writes_like_serde_json_pretty() {
        let v = obj(vec![
            ("list", Value::Arr(vec![Value::from(1u32), obj(vec![])])),
            ("empty", Value::Arr(vec![])),
            ("s", Value::from("\u{7f}\u{1f}\u{8}\u{2028}\u{202e}é")),
        ]);
        assert_eq!(
            pretty(&v),
            "{\n  \"list\": [\n    1,\n    {}\n  ],\n  \"empty\": [],\n  \"s\": \"\\u007f\\u001f\\b\\u2028\\u202eé\"\n}"
        );
    }

    #[test]
    fn writes_compact_like_serde_json() {
        let v = obj(vec![
            ("list", Value::Arr(vec![Value::from(1u32), obj(vec![])])),
            ("empty", Value::Arr(vec![])),
            ("o", obj(vec![("k", Value::from("a b"))])),
        ]);
        let text = compact(&v);
        assert_eq!(text, r#"{"list":[1,{}],"empty":[],"o":{"k":"a b"}}"#);
        assert_eq!(parse(text.as_bytes()), Ok(v));
    }

    #[test]
    fn known_keys_are_borrowed_and_read_the_same() {
        let text = br#"{"a":1,"b":{"a":"x"},"c\u0041":[{"b":2}]}"#;
        let v = parse_known(text, &["a", "b"]).unwrap();
        assert_eq!(Ok(v.clone()), parse(text));
        let Value::Obj(pairs) = &v else { panic!() };
        assert!(matches!(pairs[0].0, Cow::Borrowed("a")));
        assert!(matches!(&pairs[2].0, Cow::Owned(k) if k == "cA"));
    }

    #[test]
    fn rejects_what_is_not_strict_json() {
        for bad in [
            "",
            "{",
            "{}x",
            "{} {}",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "01",
            "-",
            "1.5",
            "1e3",
            "18446744073709551616",
            "-9223372036854775809",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"a\nb\"",
            "\"\u{0}\"",
            "nul",
            "tru",
            "[\"\\",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} parsed");
        }
        assert!(parse(b"\"\xff\"").is_err());
        assert_eq!(
            parse(b"-9223372036854775808"),
            Ok(Value::Int(i128::from(i64::MIN)))
        );
        assert_eq!(
            parse("\"\\ud83d\\ude00\"".as_bytes()),
            Ok(Value::from("😀"))
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = "[".repeat(100_000);
        let err = parse(deep.as_bytes()).unwrap_err();
        assert!(err.0.contains("nested too deeply"), "{err}");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn errors_say_where() {
        let err = parse(b"{\n  \"a\": tru\n}").unwrap_err();
        assert_eq!(err.0, "line 2, column 8: expected a value");
        let v = parse(br#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(v.get("a").unwrap_err().0, "field `a`: given twice");
    }
}
