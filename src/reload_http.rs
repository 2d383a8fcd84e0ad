//! `--reload-url`: the reload asked for by an HTTP request. Checks the
//! method, URL and timeout up front, parses the `--reload-header`s (whose
//! values may be credentials read from a mounted Secret, and never reach a
//! message), and sends the request through [`crate::http`].

use crate::digest::plain_io;
use crate::http::{self, Url};
use crate::smallfile;
use std::path::PathBuf;
use std::time::Duration;

/// At most this many `--reload-header`s, each value at most this long.
const MAX_HEADERS: usize = 32;
const MAX_HEADER_VALUE: usize = 8 * 1024;
/// Header names driftprobe writes itself (the request's framing).
const OWN_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "user-agent",
];

/// A `--reload-header`. Its value may be a credential: it is never part
/// of a message, and `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    value: HeaderValue,
}

#[derive(Clone, PartialEq, Eq)]
enum HeaderValue {
    Inline(String),
    /// `@PATH`: read at each request.
    File(PathBuf),
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            HeaderValue::Inline(_) => write!(f, "Header({}: <value>)", self.name),
            HeaderValue::File(p) => write!(f, "Header({}: @{})", self.name, p.display()),
        }
    }
}

impl Header {
    /// Parses `Name: value` (the `n`th header, for messages that must not
    /// quote it). The name must be an HTTP token and not one driftprobe
    /// sets; an inline value visible ASCII, spaces and tabs.
    pub fn parse(text: &str, n: usize) -> Result<Header, String> {
        let flag = format!("--reload-header #{n}");
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| format!("{flag}: expected 'Name: value' (no ':' in it)"))?;
        let name = name.trim_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(format!(
                "{flag}: the name is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)"
            ));
        }
        if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "--reload-header {name}: driftprobe sets that header itself"
            ));
        }
        let value = trim_value(value);
        let value = match value.strip_prefix('@') {
            Some("") => return Err(format!("--reload-header {name}: '@' without a file")),
            Some(path) => HeaderValue::File(PathBuf::from(path)),
            None => {
                check_value(value.as_bytes())
                    .map_err(|why| format!("--reload-header {name}: the value {why}"))?;
                HeaderValue::Inline(value.to_string())
            }
        };
        Ok(Header {
            name: name.to_string(),
            value,
        })
    }

    /// The value to send: inline, or read from its file now (capped,
    /// surrounding whitespace and the trailing newline trimmed). `Err`
    /// says why not, without the value.
    pub fn value(&self) -> Result<String, String> {
        let path = match &self.value {
            HeaderValue::Inline(v) => return Ok(v.clone()),
            HeaderValue::File(p) => p,
        };
        let name = &self.name;
        let raw = smallfile::read(path, MAX_HEADER_VALUE).map_err(|e| {
            format!(
                "--reload-header {name}: cannot read its value from {}: {}",
                path.display(),
                plain_io(&e)
            )
        })?;
        let text = std::str::from_utf8(&raw)
            .ok()
            .map(trim_value)
            .filter(|v| check_value(v.as_bytes()).is_ok())
            .ok_or_else(|| {
                format!(
                    "--reload-header {name}: the value in {} holds a control or non-ASCII character",
                    path.display()
                )
            })?;
        Ok(text.to_string())
    }
}

/// A header value without the whitespace around it (a Secret file's
/// trailing newline included).
fn trim_value(v: &str) -> &str {
    v.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A value that can go on one header line: visible ASCII, spaces, tabs.
fn check_value(v: &[u8]) -> Result<(), &'static str> {
    if v.len() > MAX_HEADER_VALUE {
        return Err("is longer than 8 KiB");
    }
    match v.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        true => Ok(()),
        false => Err("holds a control or non-ASCII character (CR and LF included)"),
    }
}

/// `--reload-url`: the app is asked to reload by an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReload {
    pub method: String,
    pub url: Url,
    pub timeout: Duration,
    pub headers: Vec<Header>,
}

/// Parses every `--reload-header`, so a bad one fails at once (exit 2).
pub fn parse_headers(texts: &[String]) -> Result<Vec<Header>, String> {
    if texts.len() > MAX_HEADERS {
        return Err(format!(
            "--reload-header: at most {MAX_HEADERS} headers, got {}",
            texts.len()
        ));
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Header::parse(t, i + 1))
        .collect()
}

impl HttpReload {
    /// Checks the flags up front, so a typo fails at once (exit 2), not on
    /// the day the config changes.
    pub fn new(
        url: &str,
        method: &str,
        timeout: Duration,
        headers: Vec<Header>,
    ) -> Result<HttpReload, String> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "--reload-method {method:?}: expected a method such as POST, PUT or GET"
            ));
        }
        if timeout.is_zero() {
            return Err("--reload-timeout must be more than 0".into());
        }
        Ok(HttpReload {
            method: method.into(),
            url: Url::parse("--reload-url", url)?,
            timeout,
            headers,
        })
    }

    /// Sends the request. `Ok` says what answered (2xx); `Err` why the
    /// reload is not known to be done. Header values read from files are
    /// read now: a rotated Secret is sent as it is now.
    pub fn call(&self) -> Result<String, String> {
        let mut headers = Vec::with_capacity(self.headers.len());
        for h in &self.headers {
            match h.value() {
                Ok(v) => headers.push((h.name.as_str(), v)),
                Err(e) => return Err(format!("{} {} not sent: {e}", self.method, self.url)),
            }
        }
        let result = http::request_with(&self.method, &self.url, &headers, self.timeout);
        let what = result.as_ref().unwrap_or_else(|e| e);
        let said = format!("{} {} {what}", self.method, self.url);
        match result {
            Ok(_) => Ok(said),
            Err(_) => Err(said),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn reload_headers_parse_and_hide_their_values() {
        let h = Header::parse("X-Key:  s3cret \t", 1).unwrap();
        assert_eq!(
            (h.name.as_str(), h.value()),
            ("X-Key", Ok("s3cret".to_string()))
        );
        assert_eq!(format!("{h:?}"), "Header(X-Key: <value>)");
        let empty = Header::parse("X-Empty:", 1).unwrap();
        assert_eq!(empty.value(), Ok(String::new()));
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("token");
        fs::write(&file, "Bearer abc\r\n").unwrap();
        let h = Header::parse(&format!("Authorization: @{}", file.display()), 1).unwrap();
        assert_eq!(h.value(), Ok("Bearer abc".to_string()));
        fs::write(&file, "Bearer abc\nX-Injected: 1\n").unwrap();
        let e = h.value().unwrap_err();
        assert!(e.contains("control") && !e.contains("abc"), "{e}");
        for bad in [
            "nocolon s3cret",
            "A B: s3cret",
            ": s3cret",
            "Host: s3cret",
            "X: s3\ncret",
            "X: s3cret\u{e9}",
        ] {
            let e = Header::parse(bad, 3).unwrap_err();
            assert!(!e.contains("s3"), "{bad:?}: {e}");
        }
        assert!(Header::parse("A B: x", 3)
            .unwrap_err()
            .starts_with("--reload-header #3: "));
        assert!(parse_headers(&vec!["X-A: 1".to_string(); 33]).is_err());
        assert_eq!(
            parse_headers(&vec!["X-A: 1".to_string(); 32]).map(|h| h.len()),
            Ok(32)
        );
    }
}
