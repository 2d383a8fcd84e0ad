//! `--on-drift reload --reload-url`: the probe's HTTP client against tiny
//! in-test servers that answer 2xx, 500, slowly, never, close without an
//! answer, or are not there at all. Each server records the request heads
//! it got, so the tests see when a request was (not) made.

use super::common::*;
use crate::support::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a fake server does with a connection once it has read the request.
#[derive(Clone, Copy)]
pub(super) enum Behaviour {
    /// Answer with this raw response after this delay.
    Answer(Duration, &'static str),
    /// Close the connection without a byte.
    Close,
    /// Keep the connection open and never answer.
    Silent,
    /// Answer with this raw response, then keep the connection open
    /// (ignoring `Connection: close`).
    AnswerAndHold(&'static str),
    /// Write these parts one by one, 100 ms apart (interim answers first).
    Parts(&'static [&'static str]),
}

pub(super) const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
const FAILED: &str = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 46\r\n\r\nfailed to reload config: line 3: bad\nmore\n...\n";

/// A server on a free loopback port, one thread per connection, until
/// dropped.
pub(super) struct Fake {
    pub(super) port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    pub(super) fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (heads.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (h, s) = (h.clone(), s.clone());
                        std::thread::spawn(move || serve(conn, behaviour, &h, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Fake { port, heads, stop }
    }

    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/-/reload", self.port)
    }

    /// The request heads received so far.
    pub(super) fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut conn: TcpStream, behaviour: Behaviour, heads: &Mutex<Vec<String>>, stop: &AtomicBool) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    heads
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    match behaviour {
        Behaviour::Answer(delay, response) => {
            std::thread::sleep(delay);
            let _ = conn.write_all(response.as_bytes());
        }
        Behaviour::Close => {}
        Behaviour::Parts(parts) => {
            for p in parts {
                let _ = conn.write_all(p.as_bytes());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Behaviour::AnswerAndHold(response) => {
            let _ = conn.write_all(response.as_bytes());
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Behaviour::Silent => {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A baseline, then a change whose grace window (0) is over.
fn drifted_env() -> (TestEnv, String, String) {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    let d1 = env.digest();
    env.vol.write(&[("app.conf", "v2\n")]);
    let d2 = env.digest();
    (env, d1, d2)
}

fn reload_probe(env: &TestEnv, url: &str, extra: &[&str]) -> Out {
    let mut args = vec!["--grace", "0", "--on-drift", "reload", "--reload-url", url];
    args.extend_from_slice(extra);
    env.on_vol("liveness", &args)
}

/// A reload probe (`--reload-timeout 5s`) in a thread, returned once the
/// server got its request: the answer is still to come.
fn reload_under_way(env: &TestEnv, server: &Fake) -> std::thread::JoinHandle<Out> {
    let mut cmd = env.cmd("liveness");
    cmd.args([
        "--grace",
        "0",
        "--on-drift",
        "reload",
        "--reload-timeout",
        "5s",
    ])
    .args(["--reload-url", &server.url()])
    .arg(env.vol.path());
    let slow = std::thread::spawn(move || Out::from_output(cmd.output().unwrap()));
    assert!(
        wait_until(Duration::from_secs(5), || !server.heads().is_empty()),
        "the reload request was not made"
    );
    slow
}

/// The baseline is still `d1` and no reload was recorded.
#[track_caller]
fn baseline_kept(env: &TestEnv, d1: &str) {
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["baseline"]["digest"], d1, "{v}");
    assert_eq!(v["state"], "drift", "{v}");
    assert_eq!(v["reloads"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn a_2xx_answer_reloads_and_records_the_new_baseline() {
    let server = Fake::start(Behaviour::Answer(Duration::ZERO, OK));
    let (env, d1, d2) = drifted_env();
    // Inside the grace window no request is made.
    env.on_vol(
        "liveness",
        &[
            "--grace",
            "1h",
            "--on-drift",
            "reload",
            "--reload-url",
            &server.url(),
        ],
    )
    .expect(0, "drift:");
    assert!(server.heads().is_empty(), "{:?}", server.heads());

    let out = reload_probe(&env, &server.url(), &[]);
    out.expect(0, "reloaded:")
        .contains(&format!(
            "1 changed (app.conf): POST {} answered 200; now the baseline",
            server.url()
        ))
        .lacks(&d2[..12])
        .lacks(&d1[..12]);
    let heads = server.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with("POST /-/reload HTTP/1.1\r\n"),
        "{heads:?}"
    );
    assert!(
        heads[0].contains(&format!("\r\nHost: 127.0.0.1:{}\r\n", server.port)),
        "{heads:?}"
    );
    // The new baseline holds: no second request.
    reload_probe(&env, &server.url(), &[]).ok();
    assert_eq!(server.heads().len(), 1);

    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["baseline"]["digest"], d2.as_str(), "{v}");
    assert_eq!(v["baseline"]["source"], "reload", "{v}");
    let reloads = v["reloads"].as_array().expect("reloads");
    assert_eq!(reloads.len(), 1, "{v}");
    assert_eq!(reloads[0]["signal"], "POST", "{v}");
    assert_eq!(reloads[0]["pid"], 0, "{v}");
    assert_eq!(reloads[0]["target"], server.url().as_str(), "{v}");
    assert_eq!(reloads[0]["from_digest"], d1.as_str(), "{v}");
    assert_eq!(reloads[0]["to_digest"], d2.as_str(), "{v}");
    let text = env.on_vol("status", &[]);
    assert!(
        text.stdout.contains(&format!(
            "POST {}, {} -> {}",
            server.url(),
            &d1[..12],
            &d2[..12]
        )),
        "{text}"
    );
}

/// Set by environment variables, with a validator: one probe validates,
/// sends the request and records the answer.
#[test]
fn the_method_is_configurable() {
    let server = Fake::start(Behaviour::Answer(Duration::ZERO, OK));
    let (env, _, _) = drifted_env();
    let mut cmd = env.cmd("liveness");
    cmd.env("DRIFTPROBE_RELOAD_URL", server.url())
        .env("DRIFTPROBE_RELOAD_METHOD", "PUT")
        .env("DRIFTPROBE_VALIDATE", "true")
        .args(["--grace", "0", "--on-drift", "reload"])
        .arg(env.vol.path());
    run(&mut cmd).expect(0, "reloaded:").contains("PUT http://");
    assert!(server.heads()[0].starts_with("PUT /-/reload HTTP/1.1\r\n"));
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["validations"][0]["ok"], true, "{v}");
    assert_eq!(v["reloads"][0]["signal"], "PUT", "{v}");
    // status shows times as RFC 3339 (the state file keeps ms).
    let at = v["reloads"][0]["at"].as_str().unwrap_or_default();
    assert!(at.starts_with("20") && at.ends_with('Z'), "{v}");
}

/// The files change again while the app is being asked: the answer was for
/// the config before, so nothing is recorded and the next probe asks again.
#[test]
fn files_that_change_during_the_request_are_asked_about_again() {
    let server = Fake::start(Behaviour::Answer(Duration::from_millis(1_000), OK));
    let (env, d1, _) = drifted_env();
    let slow = reload_under_way(&env, &server);
    env.vol.write(&[("app.conf", "v3\n")]);
    let d3 = env.digest();
    let out = slow.join().unwrap();
    out.expect(1, "drift:")
        .contains("the files changed again during the reload request");
    not_reloaded(&out);
    baseline_kept(&env, &d1);
    reload_probe(&env, &server.url(), &["--reload-timeout", "5s"]).expect(0, "reloaded:");
    assert_eq!(server.heads().len(), 2);
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["baseline"]["digest"], d3.as_str(), "{v}");
}

/// The status code says why; the reason phrase and the body are never shown
/// (an app's error page may quote its config, which can be a Secret).
#[test]
fn a_500_keeps_the_old_baseline_says_why_and_is_retried() {
    let server = Fake::start(Behaviour::Answer(Duration::ZERO, FAILED));
    let (env, d1, _) = drifted_env();
    for attempt in 1..=2 {
        let out = reload_probe(&env, &server.url(), &[]);
        out.expect(1, "drift:").contains(&format!(
            "reload failed: POST {} answered 500\n",
            server.url()
        ));
        out.lacks("Internal Server Error");
        not_reloaded(&out);
        assert!(!out.stdout.contains("line 3"), "no body: {out}");
        assert!(!out.stderr.contains("line 3"), "no body: {out}");
        assert_eq!(server.heads().len(), attempt, "asked again on every probe");
        baseline_kept(&env, &d1);
    }
}

#[test]
fn a_connection_closed_without_an_answer_is_a_failure() {
    let server = Fake::start(Behaviour::Close);
    let (env, d1, _) = drifted_env();
    let out = reload_probe(&env, &server.url(), &[]);
    out.expect(1, "drift:")
        .contains("reload failed: POST ")
        .contains("closed the connection without an answer");
    not_reloaded(&out);
    assert_eq!(server.heads().len(), 1);
    baseline_kept(&env, &d1);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let server = Fake::start(Behaviour::Silent);
    let (env, d1, _) = drifted_env();
    let start = Instant::now();
    let out = reload_probe(&env, &server.url(), &["--reload-timeout", "300ms"]);
    let took = start.elapsed();
    out.expect(1, "drift:")
        .contains("reload failed: POST ")
        .contains("gave no answer within 300ms");
    not_reloaded(&out);
    assert!(
        took < Duration::from_millis(1_500),
        "the probe took {took:?}: --reload-timeout 300ms not honoured"
    );
    assert_eq!(server.heads().len(), 1, "the request was sent");
    baseline_kept(&env, &d1);
}

#[test]
fn a_slow_answer_within_the_timeout_is_a_reload() {
    let server = Fake::start(Behaviour::Answer(Duration::from_millis(700), OK));
    let (env, _, d2) = drifted_env();
    let out = reload_probe(&env, &server.url(), &["--reload-timeout", "3s"]);
    out.expect(0, "reloaded:").contains("answered 200");
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["baseline"]["digest"], d2.as_str(), "{v}");
    // The same server past a shorter timeout: no reload.
    env.vol.write(&[("app.conf", "v3\n")]);
    reload_probe(&env, &server.url(), &["--reload-timeout", "200ms"])
        .expect(1, "drift:")
        .contains("gave no answer within 200ms");
}

#[test]
fn a_refused_connection_is_a_failure() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (env, d1, _) = drifted_env();
    let url = format!("http://127.0.0.1:{port}/-/reload");
    let out = reload_probe(&env, &url, &[]);
    out.expect(1, "drift:")
        .contains(&format!("reload failed: POST {url} refused the connection"));
    not_reloaded(&out);
    baseline_kept(&env, &d1);
}

/// A connection that is never accepted (the app's listen queue is full, or
/// a firewall drops the SYN): the connect itself times out.
#[test]
fn a_connect_that_hangs_times_out() {
    // A listening socket with a backlog of 0 that never accepts: once its
    // queue holds a connection, the kernel drops further SYNs.
    // SAFETY: plain socket calls on a socket this test owns; the address is
    // a local sockaddr_in of the size given.
    let (fd, port) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let sa = (&addr as *const libc::sockaddr_in).cast::<libc::sockaddr>();
        assert_eq!(libc::bind(fd, sa, len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        let mut len = len;
        let out = (&mut addr as *mut libc::sockaddr_in).cast::<libc::sockaddr>();
        assert_eq!(libc::getsockname(fd, out, &mut len), 0);
        (fd, u16::from_be(addr.sin_port))
    };
    let target: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let fillers: Vec<_> = (0..3)
        .filter_map(|_| TcpStream::connect_timeout(&target, Duration::from_millis(200)).ok())
        .collect();
    assert!(
        TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_err(),
        "the listen queue should be full"
    );
    let (env, d1, _) = drifted_env();
    let url = format!("http://127.0.0.1:{port}/-/reload");
    let start = Instant::now();
    let out = reload_probe(&env, &url, &["--reload-timeout", "300ms"]);
    let took = start.elapsed();
    out.expect(1, "drift:").contains(&format!(
        "reload failed: POST {url} gave no answer within 300ms"
    ));
    assert!(
        took < Duration::from_millis(1_500),
        "the probe took {took:?}"
    );
    baseline_kept(&env, &d1);
    drop(fillers);
    // SAFETY: closes the socket opened above.
    unsafe { libc::close(fd) };
}

/// The request is made without the state lock: while the app takes its
/// time to answer, the other probe gets the lock at once (it gives up after
/// --lock-timeout, 800ms by default).
#[test]
fn a_slow_reload_does_not_hold_the_lock() {
    let server = Fake::start(Behaviour::Answer(Duration::from_millis(2_500), OK));
    let (env, _, _) = drifted_env();
    let slow = reload_under_way(&env, &server);
    let start = Instant::now();
    let other = env.on_vol("readiness", &["--grace", "1h"]);
    assert!(
        start.elapsed() < Duration::from_millis(1_000),
        "readiness waited {:?} while the reload request was under way",
        start.elapsed()
    );
    other.expect(0, "drift:");
    slow.join().unwrap().expect(0, "reloaded:");
}

#[test]
fn bad_reload_options_are_usage_errors_before_any_drift() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    for (args, why) in [
        (
            vec!["--reload-url", "https://127.0.0.1:9090/-/reload"],
            "https is not supported",
        ),
        (
            vec!["--reload-url", "http://prometheus:9090/-/reload"],
            "resolves no host names",
        ),
        (vec!["--reload-url", "127.0.0.1:9090"], "expected http://"),
        (
            vec![
                "--reload-url",
                "http://127.0.0.1/",
                "--reload-method",
                "post it",
            ],
            "--reload-method",
        ),
        (
            vec!["--reload-url", "http://127.0.0.1/", "--reload-timeout", "0"],
            "--reload-timeout",
        ),
        (
            vec!["--reload-url", "http://127.0.0.1/", "--signal", "HUP"],
            "cannot be used with",
        ),
    ] {
        let mut full = vec!["--on-drift", "reload"];
        full.extend_from_slice(&args);
        let out = env.on_vol("liveness", &full);
        out.no_panic();
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert!(out.stderr.contains(why), "{args:?}: {out}");
    }
}

/// An env var that differs from its file cannot be reloaded over HTTP any
/// more than by a signal: no request, and liveness fails so that a restart
/// picks up the new value.
#[test]
fn env_drift_is_not_reloaded_over_http() {
    let server = Fake::start(Behaviour::Answer(Duration::ZERO, OK));
    let env = TestEnv::new();
    env.vol.write(&[("log_level", "info")]);
    let app = Proc::spawn(
        std::process::Command::new("sleep")
            .arg("60")
            .env("LOG_LEVEL", "info"),
    );
    let pid = app.pid().to_string();
    let env_opt = format!("LOG_LEVEL={}", env.vol.path().join("log_level").display());
    env.init();
    env.vol.write(&[("log_level", "debug")]);
    for _ in 0..2 {
        let out = reload_probe(&env, &server.url(), &["--env", &env_opt, "--pid", &pid]);
        out.drift()
            .contains("LOG_LEVEL")
            .contains("a reload cannot change environment variables");
        not_reloaded(&out);
        no_values(&out, &["info", "debug"]);
    }
    assert!(server.heads().is_empty(), "{:?}", server.heads());
}

/// The reload options are checked whenever they are given, not only with
/// `--on-drift reload`; given without it (a pod env var shared by both
/// probes) they are a warning, never a reason to fail.
#[test]
fn reload_options_without_on_drift_reload_are_checked_and_warned_about() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    for (sub, args, why) in [
        (
            "liveness",
            vec!["--reload-url", "https://nope/"],
            "https is not supported",
        ),
        (
            "readiness",
            vec!["--reload-url", "http://prometheus/"],
            "resolves no host names",
        ),
        (
            "liveness",
            vec!["--on-drift", "adopt", "--reload-url", "127.0.0.1:9090"],
            "expected http://",
        ),
        (
            "liveness",
            vec![
                "--reload-url",
                "http://127.0.0.1/",
                "--reload-method",
                "post it",
            ],
            "--reload-method",
        ),
        ("readiness", vec!["--signal", "BOGUS"], "unknown signal"),
    ] {
        let out = env.on_vol(sub, &args);
        out.no_panic();
        assert_eq!(out.code, 2, "{sub} {args:?}: {out}");
        assert!(out.stderr.contains(why), "{sub} {args:?}: {out}");
    }
    for (sub, args, flag) in [
        (
            "readiness",
            vec!["--reload-url", "http://127.0.0.1:9/"],
            "--reload-url",
        ),
        (
            "liveness",
            vec!["--on-drift", "adopt", "--reload-url", "http://127.0.0.1:9/"],
            "--reload-url",
        ),
        ("liveness", vec!["--signal", "USR1"], "--signal"),
    ] {
        let out = env.on_vol(sub, &args);
        out.expect(0, "ok:");
        assert!(
            out.stderr.contains(&format!(
                "warning: {flag} is ignored without --on-drift reload"
            )),
            "{sub} {args:?}: {out}"
        );
    }
    // The same from the pod's environment.
    let mut cmd = env.cmd("readiness");
    cmd.env("DRIFTPROBE_RELOAD_URL", "http://127.0.0.1:9/")
        .arg(env.vol.path());
    let out = run(&mut cmd);
    out.expect(0, "ok:");
    assert!(out.stderr.contains("--reload-url is ignored"), "{out}");
    // Nothing to warn about when the reload options are not given.
    let out = env.on_vol("readiness", &[]);
    assert!(out.stderr.is_empty(), "{out}");
}

/// Neither the reason phrase ("Bad") nor the body is shown, and a server that keeps the connection open after its answer does not hold
/// the probe until --reload-timeout: the status line is all that is read.
#[test]
fn the_status_line_is_enough() {
    let server = Fake::start(Behaviour::AnswerAndHold(
        "HTTP/1.1 400 Bad\r\nContent-Length: 4\r\n\r\ncafe",
    ));
    let (env, d1, _) = drifted_env();
    let start = Instant::now();
    let out = reload_probe(&env, &server.url(), &["--reload-timeout", "5s"]);
    let took = start.elapsed();
    out.expect(1, "drift:").contains(&format!(
        "reload failed: POST {} answered 400\n",
        server.url()
    ));
    assert!(!out.stdout.contains("Bad"), "no reason phrase: {out}");
    assert!(!out.stdout.contains("cafe"), "no body: {out}");
    assert!(
        took < Duration::from_millis(2_500),
        "the probe took {took:?}"
    );
    baseline_kept(&env, &d1);
}

/// Interim answers (`100 Continue`, `103 Early Hints`) come before the
/// final one and are skipped (RFC 9110): the reload is the 200 after them,
/// not a failure that sends the request again at the next probe.
#[test]
fn interim_1xx_answers_are_skipped() {
    let server = Fake::start(Behaviour::Parts(&[
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        OK,
    ]));
    let (env, _, d2) = drifted_env();
    let out = reload_probe(&env, &server.url(), &["--reload-timeout", "3s"]);
    out.expect(0, "reloaded:").contains("answered 200;");
    reload_probe(&env, &server.url(), &["--reload-timeout", "3s"]).expect(0, "ok:");
    assert_eq!(server.heads().len(), 1, "asked once: {:?}", server.heads());
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["baseline"]["digest"], d2.as_str(), "{v}");

    // An interim answer and then a failure is the failure.
    let server = Fake::start(Behaviour::Parts(&["HTTP/1.1 100 Continue\r\n\r\n", FAILED]));
    let (env, d1, _) = drifted_env();
    reload_probe(&env, &server.url(), &["--reload-timeout", "3s"])
        .expect(1, "drift:")
        .contains("answered 500\n");
    baseline_kept(&env, &d1);
}
