//! A tiny HTTP server that reads its config file once, at start, and serves it.
//!
//! This is the kind of application driftprobe exists for: it never notices when the
//! mounted ConfigMap changes, so only a restart makes it pick up the new content.
//! The docker end-to-end test (tests/docker_e2e.rs) runs it in a `FROM scratch`
//! image, so it is built statically by `scripts/static-build.sh`; the walkthrough
//! (examples/walkthrough.rs) runs it on the host.
//!
//! Usage: `demo_server [--reload-on-hup] [CONFIG_PATH [PORT]]`, or the env vars
//! `DEMO_CONFIG` and `DEMO_PORT` (defaults `/config/config.txt` and `8080`). It
//! listens on 127.0.0.1 only and answers `GET /` with the file's content as it was
//! at start; every other path gets 404. By default it installs no signal handler:
//! as PID 1 of a container it is stopped with SIGKILL (`docker rm -f`, or the
//! kubelet after the grace period). With `--reload-on-hup` it handles SIGHUP by
//! reading the file again (what `driftprobe liveness --on-drift reload` asks for).
//!
//! `GET /healthz` is its own health check (what a kubelet `httpGet` probe, or
//! `driftprobe readiness --http-get`, asks): `503` for the first
//! `DEMO_READY_AFTER` seconds after start (default 0: never), then `200`, like an
//! app that takes a while to warm up. Its 503 page quotes the config, as error
//! pages do (driftprobe must never pass a body on).
//!
//! `demo_server --check CONFIG_PATH` is its config check (like `nginx -t`): every
//! line that is not empty or a `#` comment must read `key: value`; exit 0 if so,
//! else exit 1 with the first bad line's number (never its content).

use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set by the SIGHUP handler, cleared by the thread that re-reads the config.
static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hup(_: nix::libc::c_int) {
    HUP.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let mut args: Vec<String> = env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--check") {
        return match args.get(1) {
            Some(path) => check(path),
            None => {
                eprintln!("demo_server: usage: demo_server --check CONFIG_PATH");
                ExitCode::from(2)
            }
        };
    }
    let reload_on_hup = args.first().map(String::as_str) == Some("--reload-on-hup");
    if reload_on_hup {
        args.remove(0);
    }
    let mut args = args.into_iter();
    let path = args
        .next()
        .or_else(|| env::var("DEMO_CONFIG").ok())
        .unwrap_or_else(|| "/config/config.txt".to_string());
    let port = args
        .next()
        .or_else(|| env::var("DEMO_PORT").ok())
        .unwrap_or_else(|| "8080".to_string());

    let body = match fs::read(&path) {
        Ok(body) => body,
        Err(err) => {
            eprintln!("demo_server: cannot read config {path}: {err}");
            return ExitCode::from(1);
        }
    };
    let listener = match TcpListener::bind(format!("127.0.0.1:{port}")) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("demo_server: cannot listen on 127.0.0.1:{port}: {err}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "demo_server: serving {path} ({} bytes) on 127.0.0.1:{port}",
        body.len()
    );
    let ready_at = Instant::now()
        + Duration::from_secs(
            env::var("DEMO_READY_AFTER")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        );
    let body = Arc::new(Mutex::new(body));
    if reload_on_hup {
        if let Err(err) = reload_on_sighup(path, Arc::clone(&body)) {
            eprintln!("demo_server: cannot handle SIGHUP: {err}");
            return ExitCode::from(1);
        }
    }

    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let current = body.lock().map(|b| b.clone()).unwrap_or_default();
                let ready = Instant::now() >= ready_at;
                if let Err(err) = answer(stream, &current, ready) {
                    eprintln!("demo_server: request failed: {err}");
                }
            }
            Err(err) => eprintln!("demo_server: accept failed: {err}"),
        }
    }
    ExitCode::SUCCESS
}

/// Installs a SIGHUP handler and a thread that re-reads `path` after each one.
fn reload_on_sighup(path: String, body: Arc<Mutex<Vec<u8>>>) -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_hup),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGHUP, &action) }?;
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(20));
        if !HUP.swap(false, Ordering::SeqCst) {
            continue;
        }
        match fs::read(&path) {
            Ok(new) => {
                // Serve the new config first, then say so: whoever reads this
                // line and then asks must get the new answer.
                let len = new.len();
                if let Ok(mut b) = body.lock() {
                    *b = new;
                }
                eprintln!("demo_server: SIGHUP: read {path} again ({len} bytes), now serving it");
            }
            Err(err) => {
                eprintln!("demo_server: SIGHUP: cannot read {path}: {err}; keeping the old config")
            }
        }
    });
    Ok(())
}

/// `--check PATH`: exit 0 if every line is empty, a comment or `key: value`.
fn check(path: &str) -> ExitCode {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("demo_server: cannot read config {path}: {err}");
            return ExitCode::from(1);
        }
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ok = matches!(line.split_once(": "), Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty());
        if !ok {
            println!("demo_server: {path} line {}: expected `key: value`", n + 1);
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

/// Reads one request head and writes one response; the connection is then closed.
/// `ready`: what `/healthz` says.
fn answer(stream: TcpStream, body: &[u8], ready: bool) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the headers so the client does not see a reset before our reply.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }

    let mut parts = request_line.split_whitespace();
    let starting = [&b"starting; config: "[..], body].concat();
    let (status, body) = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/")) => ("200 OK", body),
        (Some("GET"), Some("/healthz")) if ready => ("200 OK", &b"ok\n"[..]),
        (Some("GET"), Some("/healthz")) => ("503 Service Unavailable", &starting[..]),
        _ => ("404 Not Found", &b"not found\n"[..]),
    };
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}
