//! A tiny HTTP server that reads its config file once, at start, and serves it.
//!
//! This is the kind of application driftprobe exists for: it never notices when the
//! mounted ConfigMap changes, so only a restart makes it pick up the new content.
//! The docker end-to-end test (tests/docker_e2e.rs) runs it in a `FROM scratch`
//! image, so it uses nothing but std and is built statically by
//! `scripts/static-build.sh`.
//!
//! Usage: `demo_server [CONFIG_PATH [PORT]]`, or the env vars `DEMO_CONFIG` and
//! `DEMO_PORT` (defaults `/config/config.txt` and `8080`). It listens on
//! 127.0.0.1 only and answers `GET /` with the file's content as it was at start;
//! every other path gets 404. It installs no signal handler: as PID 1 of a container
//! it is stopped with SIGKILL (`docker rm -f`, or the kubelet after the grace period).

use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
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

    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(err) = answer(stream, &body) {
                    eprintln!("demo_server: request failed: {err}");
                }
            }
            Err(err) => eprintln!("demo_server: accept failed: {err}"),
        }
    }
    ExitCode::SUCCESS
}

/// Reads one request head and writes one response; the connection is then closed.
fn answer(stream: TcpStream, body: &[u8]) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the headers so the client does not see a reset before our reply.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }

    let mut parts = request_line.split_whitespace();
    let (status, body) = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/")) => ("200 OK", body),
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
