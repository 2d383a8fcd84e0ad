//! The small HTTP/1.1 client behind `--reload-url` and `--reload-check`:
//! one request to the app in the probe's own pod, answered before a
//! deadline, reduced to a status code and a short reason.
//!
//! Plain `http://` to an IP literal (`127.0.0.1`, `[::1]`, the pod IP) or
//! `localhost` only: no TLS, and no DNS, because a static glibc binary
//! cannot load the NSS modules `getaddrinfo` needs. That keeps it a few KiB
//! of `std::net` instead of an HTTP crate, within the binary's size budget.
//! What an answer means (reload done or not) is for `action` and `probe`.

use crate::digest::plain_io;
use crate::time::format_duration;
use nix::libc;
use std::ffi::CString;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// At most this much of an answer is read: the status line, the headers
/// and the start of the body (for the reason of a failure).
const MAX_ANSWER: usize = 4096;
/// At most this many characters of a reason are shown.
const REASON_CHARS: usize = 100;

/// A parsed `http://` URL with an IP address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub addr: SocketAddr,
    /// `Host` header: the authority as written (`localhost:9090`).
    host: String,
    /// Path and query, `/` at least.
    target: String,
}

impl Url {
    /// Parses `http://HOST[:PORT][/PATH][?QUERY]`, HOST being an IPv4
    /// literal, a bracketed IPv6 literal or `localhost` (127.0.0.1).
    /// `flag` names the option in error messages.
    pub fn parse(flag: &str, text: &str) -> Result<Url, String> {
        let bad = |why: &str| format!("{flag} {text:?}: {why}");
        let Some(rest) = text
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &text[7..])
        else {
            return Err(bad(if text.to_ascii_lowercase().starts_with("https:") {
                "https is not supported: driftprobe speaks plain http to the app in its own pod"
            } else {
                "expected http://HOST[:PORT]/PATH"
            }));
        };
        if !rest.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "spaces, control and non-ASCII characters must be percent-encoded",
            ));
        }
        let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        // A fragment is never sent.
        let tail = tail.split('#').next().unwrap_or("");
        let target = match tail.starts_with('/') {
            true => tail.to_string(),
            false => format!("/{tail}"),
        };
        let (ip, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let Some((ip, after)) = v6.split_once(']') else {
                    return Err(bad("unclosed ["));
                };
                let port = (!after.is_empty()).then(|| after.strip_prefix(':').unwrap_or("?"));
                (ip_literal(ip, true), port)
            }
            None if authority.contains('@') => {
                return Err(bad("user names and passwords are not supported"))
            }
            None => {
                let (name, port) = match authority.split_once(':') {
                    Some((name, port)) => (name, Some(port)),
                    None => (authority, None),
                };
                let ip = match name.eq_ignore_ascii_case("localhost") {
                    true => Some(IpAddr::from([127, 0, 0, 1])),
                    false => ip_literal(name, false),
                };
                (ip, port)
            }
        };
        let ip = ip.ok_or_else(|| {
            bad("not an IP address, and driftprobe resolves no host names (a static binary has no DNS): use \
                 127.0.0.1, [::1], localhost or the pod IP")
        })?;
        let port = match port.map(str::parse::<i32>) {
            None => 80,
            Some(Ok(n @ 1..=65535)) => n as u16,
            Some(_) => return Err(bad("bad port")),
        };
        Ok(Url {
            addr: SocketAddr::new(ip, port),
            host: authority.to_string(),
            target,
        })
    }
}

/// An IPv4 (dotted quad) or IPv6 literal, by the C library's `inet_pton`
/// (no resolver involved, and smaller than std's parsers).
fn ip_literal(text: &str, v6: bool) -> Option<IpAddr> {
    let c = CString::new(text).ok()?;
    let mut bytes = [0u8; 16];
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    extern "C" {
        // POSIX, in every libc; the libc crate does not declare it.
        fn inet_pton(
            af: libc::c_int,
            src: *const libc::c_char,
            dst: *mut libc::c_void,
        ) -> libc::c_int;
    }
    // SAFETY: `c` is NUL-terminated and `bytes` holds the 16 bytes of the
    // largest address inet_pton writes.
    let rc = unsafe { inet_pton(family, c.as_ptr(), bytes.as_mut_ptr().cast()) };
    match (rc, v6) {
        (1, true) => Some(IpAddr::from(bytes)),
        (1, false) => Some(IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])),
        _ => None,
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.host, self.target)
    }
}

/// The final answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: u16,
    /// The reason phrase, and for a failure the first line of the body,
    /// made one short printable line.
    pub reason: String,
}

impl Answer {
    pub fn success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.reason.is_empty() {
            write!(f, " {}", self.reason)?;
        }
        Ok(())
    }
}

/// Sends `METHOD url` (no body, `Connection: close`) and reads the answer,
/// all within `timeout`. `Err` when there is no HTTP answer: refused, timed
/// out, closed or garbled.
pub fn request(method: &str, url: &Url, timeout: Duration) -> Result<Answer, String> {
    let deadline = Instant::now() + timeout;
    let late = || format!("no answer within {}", format_duration(timeout));
    let failed = |e: std::io::Error| match e.kind() {
        ErrorKind::ConnectionRefused => {
            "connection refused (is the app listening on that port?)".into()
        }
        ErrorKind::WouldBlock | ErrorKind::TimedOut => late(),
        _ => plain_io(&e),
    };
    let head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: driftprobe\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        url.target, url.host,
    );
    let mut stream = TcpStream::connect_timeout(&url.addr, timeout).map_err(failed)?;
    stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.write_all(head.as_bytes()))
        .map_err(failed)?;
    // Read until a 2xx status line is in (its body does not matter), the
    // end of the answer (the server closes after it: Connection: close),
    // MAX_ANSWER bytes, or the deadline.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while buf.len() < MAX_ANSWER && !status_line(&buf).is_some_and(|a| a.success()) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match stream
            .set_read_timeout(Some(left))
            .and_then(|()| stream.read(&mut chunk))
        {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if buf.is_empty() => return Err(failed(e)),
            Err(_) => break,
        }
    }
    match status_line(&buf) {
        Some(mut answer) => {
            // A failure's body often says why (Prometheus: "failed to
            // reload config: ..."); its first line is added to the reason.
            let body = find(&buf, b"\r\n\r\n").map_or(&[][..], |i| &buf[i + 4..]);
            let first = one_line(body);
            if !answer.success() && !first.is_empty() && first != answer.reason {
                answer.reason = format!("{}: {first}", answer.reason);
            }
            Ok(answer)
        }
        None if Instant::now() >= deadline => Err(late()),
        None if buf.is_empty() => Err("connection closed without an answer".into()),
        None => Err(format!("not an HTTP answer: {}", one_line(&buf))),
    }
}

/// Parses `HTTP/1.x NNN reason` once the first line is in.
fn status_line(buf: &[u8]) -> Option<Answer> {
    let line = String::from_utf8_lossy(&buf[..find(buf, b"\n")?]);
    // "1 200 OK": the minor version, the code, the reason phrase.
    let rest = line.strip_prefix("HTTP/1.")?;
    let b = rest.as_bytes();
    if b.get(1) != Some(&b' ') || !matches!(b.get(5), None | Some(b' ' | b'\r')) {
        return None;
    }
    let code = rest
        .get(2..5)?
        .parse::<i32>()
        .ok()
        .filter(|c| (100..=999).contains(c))?;
    Some(Answer {
        code: code as u16,
        reason: one_line(&b[5..]),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first line of `bytes` that says something (not blank, not a hex
/// chunk size), control characters replaced, cut to `REASON_CHARS`
/// characters: never more than one short line.
fn one_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or("");
    let mut out: String = line
        .chars()
        .take(REASON_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if line.chars().count() > REASON_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Result<Url, String> {
        Url::parse("--reload-url", s)
    }

    #[test]
    fn urls_with_ip_literals_and_localhost() {
        let u = url("http://127.0.0.1:9090/-/reload").unwrap();
        assert_eq!(u.addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(u.to_string(), "http://127.0.0.1:9090/-/reload");
        let u = url("HTTP://localhost:8080").unwrap();
        assert_eq!(u.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(u.target, "/");
        let u = url("http://[::1]:9901/reload?x=1#frag").unwrap();
        assert_eq!(u.addr, "[::1]:9901".parse().unwrap());
        assert_eq!(u.target, "/reload?x=1");
        assert_eq!(u.host, "[::1]:9901");
        let u = url("http://10.1.2.3?a").unwrap();
        assert_eq!(u.addr, "10.1.2.3:80".parse().unwrap());
        assert_eq!(u.target, "/?a");
        assert_eq!(url("http://[::1]/").unwrap().addr.port(), 80);
    }

    #[test]
    fn bad_urls_say_why() {
        for (text, why) in [
            ("https://127.0.0.1/-/reload", "https is not supported"),
            ("127.0.0.1:9090/-/reload", "expected http://"),
            ("ftp://127.0.0.1/", "expected http://"),
            ("http://prometheus:9090/-/reload", "resolves no host names"),
            ("http://my.svc.cluster.local/", "resolves no host names"),
            ("http://", "resolves no host names"),
            ("http://127.0.0.1:99999/", "bad port"),
            ("http://127.0.0.1:0/", "bad port"),
            ("http://127.0.0.1:/", "bad port"),
            ("http://127.0.0.1::80/", "bad port"),
            ("http://[::1]:/", "bad port"),
            ("http://[::1]x/", "bad port"),
            ("http://[::1/", "unclosed ["),
            ("http://[fe80::1%eth0]:80/", "not an IP address"),
            ("http://[127.0.0.1]/", "not an IP address"),
            ("http://1.2.3/", "not an IP address"),
            ("http://1.2.3.256/", "not an IP address"),
            ("http://u:p@127.0.0.1/", "passwords"),
            ("http://127.0.0.1/a b", "percent-encoded"),
            ("http://127.0.0.1/\r\nX: y", "percent-encoded"),
            ("http://127.0.0.1/é", "percent-encoded"),
            ("", "expected http://"),
        ] {
            let err = url(text).unwrap_err();
            assert!(err.starts_with("--reload-url "), "{text}: {err}");
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn status_lines_and_reasons() {
        let answer = |b: &[u8]| status_line(b).map(|a| a.to_string());
        assert_eq!(answer(b"HTTP/1.1 200 OK\r\n"), Some("200 OK".into()));
        assert_eq!(answer(b"HTTP/1.0 204\r\n"), Some("204".into()));
        assert_eq!(answer(b"HTTP/1.1 200 OK"), None, "line not complete");
        assert_eq!(answer(b"HTTP/1.1 2000 x\n"), None);
        assert_eq!(answer(b"HTTP/1.1x200 OK\n"), None);
        assert_eq!(answer(b"HTTP/1.1 099 x\n"), None);
        assert_eq!(answer(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(answer("HTTP/1.1 2é0 x\n".as_bytes()), None);
        let long = format!("HTTP/1.0 404 {}\n", "x".repeat(500));
        let a = status_line(long.as_bytes()).unwrap();
        assert_eq!(a.reason.chars().count(), REASON_CHARS + 1);
        // A chunk size line is skipped, control characters replaced.
        assert_eq!(
            one_line(b"\r\n1a\r\nnot ready\x1b[1m yet\r\n0\r\n"),
            "not ready?[1m yet"
        );
    }
}
