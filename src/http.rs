//! The small HTTP/1.1 client behind `--reload-url`: one request to the
//! app in the probe's own pod, answered before a deadline, reduced to its
//! status code. Never the reason phrase, a header or the body: any of them
//! may quote the app's config, which can be a Secret, and the probe's line
//! ends up in the pod's events.
//!
//! Plain `http://` to an IP literal (`127.0.0.1`, `[::1]`, the pod IP) or
//! `localhost` only: no TLS, and no DNS, because a static glibc binary
//! cannot load the NSS modules `getaddrinfo` needs. A socket with send and
//! receive timeouts, a non-blocking `connect` waited for with `poll`, and a
//! few lines of parsing instead of an HTTP crate, to keep the static
//! binary small (doc/performance.md has its size). What an answer means
//! (reload done or not) is for `reload_http` and `probe`.

use crate::digest::plain_io;
use crate::time::format_duration;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6};
use nix::sys::time::TimeVal;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

/// At most this much of an answer is read, looking for the end of the
/// status line: nothing after it is read.
const MAX_ANSWER: usize = 4096;
/// At most this many interim (1xx) answers are skipped before the final one.
const MAX_INTERIM: usize = 16;

/// A parsed `http://` URL with an IP address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The address to connect to, and the port.
    ip: IpAddr,
    port: u16,
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
        Url::parse_text(text).map_err(|why| format!("{flag} {text:?}: {why}"))
    }

    fn parse_text(text: &str) -> Result<Url, &'static str> {
        let scheme = |s: &str| {
            text.get(..s.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(s))
        };
        if scheme("https:") {
            return Err(
                "https is not supported: driftprobe speaks plain http to the app in its own pod",
            );
        }
        if !scheme("http://") {
            return Err("expected http://HOST[:PORT]/PATH");
        }
        let rest = &text[7..];
        if !rest.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("spaces, control and non-ASCII characters must be percent-encoded");
        }
        let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        // A fragment is never sent.
        let tail = tail.split('#').next().unwrap_or("");
        let (ip, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (ip, after) = v6.split_once(']').unwrap_or(("", ""));
                let port = (!after.is_empty()).then(|| after.strip_prefix(':').unwrap_or("?"));
                (ip.parse::<Ipv6Addr>().ok().map(IpAddr::V6), port)
            }
            None => {
                let (name, port) = match authority.split_once(':') {
                    Some((name, port)) => (name, Some(port)),
                    None => (authority, None),
                };
                let name = match name.eq_ignore_ascii_case("localhost") {
                    true => "127.0.0.1",
                    false => name,
                };
                (name.parse::<Ipv4Addr>().ok().map(IpAddr::V4), port)
            }
        };
        let ip = ip.ok_or(
            "not an IP address, and driftprobe resolves no host names (a static binary has no DNS): use \
             127.0.0.1, [::1], localhost or the pod IP",
        )?;
        let port = match port.map(str::parse::<i32>) {
            None => 80,
            Some(Ok(n @ 1..=65535)) => n as u16,
            Some(_) => return Err("bad port"),
        };
        Ok(Url {
            ip,
            port,
            host: authority.to_string(),
            target: format!("/{}", tail.strip_prefix('/').unwrap_or(tail)),
        })
    }
}

/// A TCP socket connected within `timeout`; its reads and writes block
/// until the timeouts [`set_timeout`] gives them.
fn connect(url: &Url, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    let family = match url.ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let sock = socket::socket(family, SockType::Stream, flags, None)?;
    let started = match url.ip {
        IpAddr::V4(ip) => socket::connect(
            sock.as_raw_fd(),
            &SockaddrIn::from(std::net::SocketAddrV4::new(ip, url.port)),
        ),
        IpAddr::V6(ip) => socket::connect(
            sock.as_raw_fd(),
            &SockaddrIn6::from(std::net::SocketAddrV6::new(ip, url.port, 0, 0)),
        ),
    };
    match started {
        Ok(()) => {}
        Err(Errno::EINPROGRESS) => {
            // Writable once the handshake ended, either way: SO_ERROR says which.
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
                match poll(&mut fds, poll_timeout(left)) {
                    Ok(0) => return Err(ErrorKind::TimedOut.into()),
                    Ok(_) => break,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match socket::getsockopt(&sock, sockopt::SocketError)? {
                0 => {}
                errno => return Err(io::Error::from_raw_os_error(errno)),
            }
        }
        Err(e) => return Err(e.into()),
    }
    // Reads and writes block, each bounded by its socket timeout.
    let stream = TcpStream::from(sock);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// A poll timeout of at least 1 ms (0 would not wait at all).
fn poll_timeout(d: Duration) -> PollTimeout {
    let ms = d.as_millis().clamp(1, i32::MAX as u128);
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

/// Which of a socket's timeouts to set.
#[derive(Clone, Copy)]
enum Direction {
    Send,
    Receive,
}

/// Sets `SO_SNDTIMEO` or `SO_RCVTIMEO` (at least 1ms: 0 means "never").
fn set_timeout(sock: &TcpStream, direction: Direction, timeout: Duration) -> io::Result<()> {
    let t = timeout.max(Duration::from_millis(1));
    let tv = TimeVal::new(
        t.as_secs().min(i32::MAX as u64) as _,
        t.subsec_micros() as _,
    );
    match direction {
        Direction::Send => socket::setsockopt(sock, sockopt::SendTimeout, &tv)?,
        Direction::Receive => socket::setsockopt(sock, sockopt::ReceiveTimeout, &tv)?,
    }
    Ok(())
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.host, self.target)
    }
}

impl Url {
    /// `[HOST:]PORT` (`--tcp-socket`): HOST as in a URL (IP literal,
    /// bracketed IPv6, `localhost`), 127.0.0.1 if left out; the port is
    /// required.
    pub fn parse_socket(flag: &str, text: &str) -> Result<Url, String> {
        let bad = |why: &str| format!("{flag} {text:?}: {why}");
        let port_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let authority = if port_only {
            format!("127.0.0.1:{text}")
        } else {
            text.to_string()
        };
        if authority.contains(['/', '?', '#', '@']) {
            return Err(bad("expected [HOST:]PORT"));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && !port.contains(']'));
        if !has_port {
            return Err(bad("expected [HOST:]PORT (the port is required)"));
        }
        Url::parse_text(&format!("http://{authority}/")).map_err(bad)
    }

    /// The path, without the query (which may carry a token): what a
    /// probe line names.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// `HOST:PORT` as written, with the port even when it was left out.
    pub fn endpoint(&self) -> String {
        match self.host.rsplit_once(':') {
            Some((_, p)) if !p.contains(']') => self.host.clone(),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Why a request got no final HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// The connection was refused: nothing listens on that port.
    Refused,
    /// No final status line within the timeout (nor a refusal).
    Late,
    /// Only an interim (1xx) answer came before the end: its code.
    NoFinal(usize),
    /// Anything else, said after "METHOD URL" (no byte of the answer in it).
    Other(String),
}

/// Sends `METHOD url` (no body, `Connection: close`) and reads the status
/// line of the answer, all within `timeout`. What happened, to be read
/// after "METHOD URL": `Ok("answered 200")` for a 2xx; otherwise `Err` with
/// the status code, or why there was no HTTP answer.
///
/// Never the body: an app's error page may quote its config, which can be
/// a Secret, and the probe's line ends up in the pod's events.
pub fn request(method: &str, url: &Url, timeout: Duration) -> Result<String, String> {
    request_with(method, url, &[], timeout)
}

/// [`request`] with more header lines (`--reload-header`), checked by
/// the caller to be a token and a one-line value. Their values may be
/// credentials: no message here holds any part of the request.
pub fn request_with(
    method: &str,
    url: &Url,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<String, String> {
    match exchange(method, url, headers, timeout) {
        Ok(code) if code / 100 == 2 => Ok(format!("answered {code}")),
        Ok(code) => Err(format!("answered {code}")),
        Err(NoAnswer::Refused) => {
            Err("refused the connection (is the app listening on that port?)".into())
        }
        Err(NoAnswer::Late) => Err(format!(
            "gave no answer within {}",
            format_duration(timeout)
        )),
        Err(NoAnswer::NoFinal(code)) => Err(format!("answered {code} but no final status")),
        Err(NoAnswer::Other(why)) => Err(why),
    }
}

/// Whether a TCP connection to `url`'s address and port is accepted
/// within `timeout` (`--tcp-socket`: like the kubelet's tcpSocket probe,
/// nothing is sent; the connection is closed at once).
pub fn connects(url: &Url, timeout: Duration) -> Result<(), NoAnswer> {
    connect(url, timeout).map(drop).map_err(no_answer)
}

/// An I/O error as [`NoAnswer`].
fn no_answer(e: io::Error) -> NoAnswer {
    match e.kind() {
        ErrorKind::ConnectionRefused => NoAnswer::Refused,
        ErrorKind::WouldBlock | ErrorKind::TimedOut => NoAnswer::Late,
        _ => NoAnswer::Other(format!("failed: {}", plain_io(&e))),
    }
}

/// Sends `METHOD url` and reads the final answer's status line within
/// `timeout`: its code, whatever the code. Nothing after
/// the status line is read (no header, no body), and a server that
/// trickles bytes or never ends its interim answers' headers ends at the
/// timeout or after `MAX_ANSWER` bytes.
pub fn exchange(
    method: &str,
    url: &Url,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<usize, NoAnswer> {
    let deadline = Instant::now() + timeout;
    let head = request_head(method, url, headers);
    let mut stream = connect(url, timeout).map_err(no_answer)?;
    send(&mut stream, &head, deadline)?;
    let (buf, interim) = read_status_line(&mut stream, deadline)?;
    final_status(&buf, interim, deadline)
}

/// The request line and headers of `METHOD url`, with no body.
fn request_head(method: &str, url: &Url, headers: &[(&str, String)]) -> String {
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: driftprobe\r\nContent-Length: 0\r\nConnection: close\r\n",
        url.target, url.host,
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Writes `head` to the connected `stream` before `deadline`.
fn send(stream: &mut TcpStream, head: &str, deadline: Instant) -> Result<(), NoAnswer> {
    // What the connect left of the deadline, not the whole timeout again.
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(NoAnswer::Late);
    }
    set_timeout(stream, Direction::Send, left).map_err(no_answer)?;
    stream.write_all(head.as_bytes()).map_err(no_answer)
}

/// Reads until the final status line is in: nothing after it matters,
/// and a server that ignores `Connection: close` must not hold the probe
/// to the deadline. Interim answers (`100 Continue`, `103 Early Hints`: a
/// status line and headers, RFC 9110 section 15.2) come before it and are
/// skipped whole. Or MAX_ANSWER bytes of one answer, the end, or the
/// deadline. Returns what was read of the last answer, and how many
/// interim answers were skipped.
fn read_status_line(
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<(Vec<u8>, usize), NoAnswer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut interim = 0;
    loop {
        match status_line(&buf) {
            Some(code) if is_interim(code) => {
                if let Some(end) = head_end(&buf) {
                    buf.drain(..end);
                    interim += 1;
                    if interim > MAX_INTERIM {
                        return Err(NoAnswer::Other(format!(
                            "answered with more than {MAX_INTERIM} interim (1xx) responses and no final status"
                        )));
                    }
                    continue;
                }
            }
            Some(_) => break,
            None => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if buf.len() >= MAX_ANSWER || left.is_zero() {
            break;
        }
        match set_timeout(stream, Direction::Receive, left).and_then(|()| stream.read(&mut chunk)) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if buf.is_empty() && interim == 0 => return Err(no_answer(e)),
            Err(_) => break,
        }
    }
    Ok((buf, interim))
}

/// The final answer's code in what [`read_status_line`] read, or why
/// there is none.
fn final_status(buf: &[u8], interim: usize, deadline: Instant) -> Result<usize, NoAnswer> {
    match status_line(buf) {
        Some(code) if is_interim(code) => match Instant::now() >= deadline {
            true => Err(NoAnswer::Late),
            false => Err(NoAnswer::NoFinal(code)),
        },
        Some(answer) => Ok(answer),
        None if Instant::now() >= deadline => Err(NoAnswer::Late),
        None if buf.is_empty() && interim > 0 => Err(NoAnswer::Other(
            "closed the connection after an interim (1xx) answer, without a final status".into(),
        )),
        None if buf.is_empty() => Err(NoAnswer::Other(
            "closed the connection without an answer".into(),
        )),
        // Not even its first line is shown: it is not known what it holds.
        None => Err(NoAnswer::Other(
            "answered, but not with an HTTP/1.x status line".into(),
        )),
    }
}

/// An interim answer, followed by the final one on the same connection.
/// `101 Switching Protocols` is final (and never asked for here).
fn is_interim(code: usize) -> bool {
    code / 100 == 1 && code != 101
}

/// The end of an answer's head (status line and headers): just past the
/// blank line that closes it.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses `HTTP/1.x NNN reason` once the first line is in: the code (the
/// reason phrase is not kept).
fn status_line(buf: &[u8]) -> Option<usize> {
    let line = String::from_utf8_lossy(&buf[..find(buf, b"\n")?]);
    // "1 200 OK": the minor version, the code, the reason phrase.
    let rest = line.strip_prefix("HTTP/1.")?;
    let b = rest.as_bytes();
    if b.get(1) != Some(&b' ') || !matches!(b.get(5), None | Some(b' ' | b'\r')) {
        return None;
    }
    rest.get(2..5)?
        .parse::<usize>()
        .ok()
        .filter(|c| (100..=999).contains(c))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
        assert_eq!((u.ip, u.port), (IpAddr::from([127, 0, 0, 1]), 9090));
        assert_eq!(u.to_string(), "http://127.0.0.1:9090/-/reload");
        let u = url("HTTP://localhost:8080").unwrap();
        assert_eq!((u.ip, u.port), (IpAddr::from([127, 0, 0, 1]), 8080));
        assert_eq!(u.target, "/");
        let u = url("http://[::1]:9901/reload?x=1#frag").unwrap();
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!((u.ip, u.port), (IpAddr::from(one), 9901));
        assert_eq!(u.target, "/reload?x=1");
        assert_eq!(u.host, "[::1]:9901");
        let u = url("http://10.1.2.3?a").unwrap();
        assert_eq!((u.ip, u.port), (IpAddr::from([10, 1, 2, 3]), 80));
        assert_eq!(u.target, "/?a");
        assert_eq!(url("http://[::1]/").unwrap().port, 80);
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
            ("http://[::1/", "not an IP address"),
            ("http://[fe80::1%eth0]:80/", "not an IP address"),
            ("http://[127.0.0.1]/", "not an IP address"),
            ("http://1.2.3/", "not an IP address"),
            ("http://1.2.3.256/", "not an IP address"),
            (
                &format!("http://[{}]/", "1:".repeat(40)),
                "not an IP address",
            ),
            ("http://u:p@127.0.0.1/", "not an IP address"),
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

    /// One answer from a loopback server that writes `parts` with a pause
    /// between them (so interim answers arrive on their own).
    fn answer_of(parts: &'static [&'static str]) -> Result<String, String> {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = [0u8; 512];
            let _ = conn.read(&mut head);
            for p in parts {
                let _ = conn.write_all(p.as_bytes());
                std::thread::sleep(Duration::from_millis(30));
            }
        });
        let u = url(&format!("http://127.0.0.1:{port}/-/reload")).unwrap();
        let answer = request("POST", &u, Duration::from_secs(3));
        server.join().unwrap();
        answer
    }

    #[test]
    fn interim_answers_are_skipped() {
        assert_eq!(
            answer_of(&["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"]),
            Ok("answered 200".into())
        );
        // Two in one packet, one with headers, then the final answer.
        assert_eq!(
            answer_of(&[
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
                "HTTP/1.1 204 No Content\r\n\r\n",
            ]),
            Ok("answered 204".into())
        );
        assert_eq!(
            answer_of(&["HTTP/1.1 102 Processing\n\n", "HTTP/1.1 500 Boom\r\n\r\n"]),
            Err("answered 500".into())
        );
        assert_eq!(
            answer_of(&["HTTP/1.1 100 Continue\r\n\r\n"]),
            Err(
                "closed the connection after an interim (1xx) answer, without a final status"
                    .into()
            )
        );
        assert_eq!(
            answer_of(&["HTTP/1.1 100 Continue\r\nX: y\r\n"]),
            Err("answered 100 but no final status".into())
        );
        // Switching protocols is not interim: never asked for, not a 2xx.
        assert_eq!(
            answer_of(&["HTTP/1.1 101 Switching Protocols\r\n\r\n"]),
            Err("answered 101".into())
        );
        let many: &'static str = "HTTP/1.1 100 Continue\r\n\r\n".repeat(40).leak();
        let parts: &'static [&'static str] = vec![many].leak();
        assert!(answer_of(parts)
            .unwrap_err()
            .contains("interim (1xx) responses"));
    }

    #[test]
    fn heads_end_at_the_blank_line() {
        assert_eq!(head_end(b"HTTP/1.1 100 x\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"HTTP/1.1 100 x\n\nrest"), Some(16));
        assert_eq!(head_end(b"HTTP/1.1 100 x\r\nA: b\r\n"), None);
    }

    #[test]
    fn status_lines_give_their_code_only() {
        assert_eq!(status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_line(b"HTTP/1.0 204\r\n"), Some(204));
        assert_eq!(status_line(b"HTTP/1.1 200 OK"), None, "line not complete");
        assert_eq!(status_line(b"HTTP/1.1 2000 x\n"), None);
        assert_eq!(status_line(b"HTTP/1.1x200 OK\n"), None);
        assert_eq!(status_line(b"HTTP/1.1 099 x\n"), None);
        assert_eq!(status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_line("HTTP/1.1 2\u{e9}0 x\n".as_bytes()), None);
        assert_eq!(status_line(b"HTTP/1.1 503 password=hunter2\r\n"), Some(503));
    }
}
