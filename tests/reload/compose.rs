//! The app's own health check composed into the probes (issue 17 §1):
//! `--http-get` against in-test servers (2xx/3xx/5xx, silent, trickling,
//! endless headers, a body and headers holding a secret), `--tcp-socket`
//! against a listener that is or is not there, `--exec` with commands that
//! pass, fail, print a secret or hang with a background child; the line
//! names the app first and the files after it; the env-var forms.

use super::common::*;
use super::http::{Behaviour, Fake, OK};
use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "s3cr3t-Hunter2";

/// A 503 whose reason phrase, headers and body all carry the secret.
const FAILING: &str = "HTTP/1.1 503 s3cr3t-Hunter2 unavailable\r\nX-Token: s3cr3t-Hunter2\r\nContent-Length: 32\r\n\r\ndb password is s3cr3t-Hunter2\n..";

/// A baseline the files still match.
fn matching() -> TestEnv {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env
}

fn health(server: &Fake) -> String {
    format!("http://127.0.0.1:{}/actuator/health?token=abc", server.port)
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The probe run `sub` on the volume with `opts`, and how long it took.
fn timed(env: &TestEnv, sub: &str, opts: &[&str]) -> (Out, Duration) {
    let t = Instant::now();
    let out = env.on_vol(sub, opts);
    (out, t.elapsed())
}

#[test]
fn http_get_passes_on_2xx_and_3xx_like_the_kubelet() {
    let env = matching();
    for answer in [
        OK,
        "HTTP/1.1 204 No Content\r\n\r\n",
        // A redirect is not followed: it passes as it is.
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    ] {
        let server = Fake::start(Behaviour::Answer(Duration::ZERO, answer));
        env.on_vol("readiness", &["--http-get", &health(&server)])
            .ok();
        let heads = server.heads();
        assert_eq!(
            heads.len(),
            1,
            "one request, no redirect followed: {heads:?}"
        );
        assert!(
            heads[0].starts_with("GET /actuator/health?token=abc HTTP/1.1\r\n"),
            "{heads:?}"
        );
    }
}

#[test]
fn a_failing_app_fails_the_probe_with_codes_only() {
    let env = matching();
    let server = Fake::start(Behaviour::Answer(Duration::ZERO, FAILING));
    for sub in ["readiness", "liveness"] {
        let out = env.on_vol(sub, &["--http-get", &health(&server)]);
        // Exit 1 for liveness too (a failing app is a verdict, not a
        // "cannot determine" that --on-error pass would let through); the
        // query (it may carry a token) is not shown either.
        out.expect(1, "app: HTTP 503 from /actuator/health");
        assert_eq!(out.line(), "app: HTTP 503 from /actuator/health", "{out}");
        no_values(&out, &[SECRET, "token=abc", "unavailable"]);
    }
    for code in [
        "404 Not Found",
        "500 Internal Server Error",
        "101 Switching Protocols",
    ] {
        let answer: &'static str = format!("HTTP/1.1 {code}\r\n\r\n").leak();
        let server = Fake::start(Behaviour::Answer(Duration::ZERO, answer));
        let out = env.on_vol("readiness", &["--http-get", &health(&server)]);
        let n = &code[..3];
        out.expect(1, &format!("app: HTTP {n} from /actuator/health"));
    }
}

#[test]
fn refused_and_silent_apps_are_named_within_the_app_timeout() {
    let env = matching();
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let (out, _) = timed(&env, "liveness", &["--http-get", &url]);
    out.expect(1, &format!("app: connection refused on 127.0.0.1:{port}"));

    let server = Fake::start(Behaviour::Silent);
    let (out, took) = timed(
        &env,
        "readiness",
        &["--http-get", &health(&server), "--app-timeout", "300ms"],
    );
    out.expect(
        1,
        &format!("app: no answer from 127.0.0.1:{} within 300ms", server.port),
    );
    assert!(took < Duration::from_millis(1500), "took {took:?}: {out}");
}

/// An --app-timeout longer than the probe's deadline is cut to it: the
/// probe, not the kubelet (which kills it at --probe-timeout), says the
/// app gave no answer, and names it.
#[test]
fn a_silent_app_is_named_within_the_probe_timeout() {
    let env = matching();
    let server = Fake::start(Behaviour::Silent);
    let (out, took) = timed(
        &env,
        "liveness",
        &["--http-get", &health(&server), "--app-timeout", "5s"],
    );
    out.expect(
        1,
        &format!("app: no answer from 127.0.0.1:{} within ", server.port),
    );
    assert!(!out.stdout.contains("within 5s"), "{out}");
    assert!(took < Duration::from_millis(1500), "took {took:?}: {out}");
    // The option is still a misconfiguration, said with what it costs.
    assert!(
        out.stderr
            .contains("--app-timeout 5s cannot fit inside --probe-timeout 1s"),
        "{out}"
    );
}

/// A server that, for every connection, writes `first`, then `each` every
/// `every` until the client goes away: a slowloris status line, or
/// headers that never end.
fn dripping(first: &'static str, each: &'static str, every: Duration) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let s = s.clone();
            std::thread::spawn(move || {
                conn.set_nonblocking(false).unwrap();
                let mut head = [0u8; 1024];
                let _ = conn.read(&mut head);
                if conn.write_all(first.as_bytes()).is_err() {
                    return;
                }
                while !s.load(Ordering::Relaxed) && conn.write_all(each.as_bytes()).is_ok() {
                    std::thread::sleep(every);
                }
            });
        }
    });
    (port, stop)
}

#[test]
fn trickling_and_endless_answers_end_at_the_app_timeout() {
    let env = matching();
    for (first, each, every) in [
        // Slowloris: the status line, one byte at a time, never ended.
        ("H", "T", Duration::from_millis(50)),
        // An interim answer whose headers never end, quickly...
        (
            "HTTP/1.1 100 Continue\r\n",
            "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            Duration::from_millis(1),
        ),
        // ... and slowly.
        (
            "HTTP/1.1 103 Early Hints\r\n",
            "Link: </s3cr3t-Hunter2.css>\r\n",
            Duration::from_millis(40),
        ),
    ] {
        let (port, stop) = dripping(first, each, every);
        let url = format!("http://127.0.0.1:{port}/healthz");
        let (out, took) = timed(
            &env,
            "readiness",
            &["--http-get", &url, "--app-timeout", "300ms"],
        );
        stop.store(true, Ordering::Relaxed);
        out.expect(1, "app: ");
        no_values(&out, &[SECRET, "Early Hints"]);
        assert!(
            took < Duration::from_millis(1500),
            "{first:?}: took {took:?}: {out}"
        );
    }
    // A final answer with endless headers passes at once: nothing after
    // its status line is read.
    let (port, stop) = dripping(
        "HTTP/1.1 200 OK\r\n",
        "X-Pad: a\r\n",
        Duration::from_millis(20),
    );
    let url = format!("http://127.0.0.1:{port}/healthz");
    let (out, took) = timed(
        &env,
        "readiness",
        &["--http-get", &url, "--app-timeout", "5s"],
    );
    stop.store(true, Ordering::Relaxed);
    out.ok();
    assert!(took < Duration::from_millis(2500), "took {took:?}: {out}");
}

#[test]
fn the_line_says_app_first_then_drift() {
    let env = matching();
    env.vol.write(&[("app.conf", "v2\n")]);
    let server = Fake::start(Behaviour::Answer(Duration::ZERO, FAILING));
    let out = env.on_vol(
        "liveness",
        &["--grace", "0", "--http-get", &health(&server)],
    );
    out.expect(
        1,
        "app: HTTP 503 from /actuator/health; drift: 1 changed (app.conf)",
    );
    no_values(&out, &[SECRET]);
    // Drift inside its grace window still shows after the app's failure.
    let out = env.on_vol(
        "readiness",
        &["--grace", "5m", "--http-get", &health(&server)],
    );
    out.expect(
        1,
        "app: HTTP 503 from /actuator/health; drift: 1 changed (app.conf)",
    )
    .contains("left)");
    // A passing app leaves the files' verdict as it was.
    let up = Fake::start(Behaviour::Answer(Duration::ZERO, OK));
    env.on_vol("liveness", &["--grace", "0", "--http-get", &health(&up)])
        .drift();
    env.on_vol("readiness", &["--grace", "5m", "--http-get", &health(&up)])
        .expect(0, "drift: 1 changed (app.conf)");
}

#[test]
fn a_failing_app_is_not_passed_by_on_error_pass() {
    // The state dir is a file: cannot determine, which liveness passes
    // by default; not with the app down.
    let env = matching();
    let blocker = env.path("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let state = blocker.join("state");
    let port = closed_port();
    let out = run(driftprobe()
        .args(["liveness", "--state-dir"])
        .arg(&state)
        .args(["--tcp-socket", &port.to_string()])
        .arg(env.vol.path()));
    out.expect(
        1,
        &format!("app: connection refused on 127.0.0.1:{port}; cannot determine: "),
    )
    .lacks("passing");
    // Without the app check: passes, as before.
    let out = run(driftprobe()
        .args(["liveness", "--state-dir"])
        .arg(&state)
        .arg(env.vol.path()));
    out.expect(0, "cannot determine: ")
        .contains("(passing: --on-error pass)");
}

#[test]
fn tcp_socket_passes_when_connect_succeeds() {
    let env = matching();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    env.on_vol("liveness", &["--tcp-socket", &port]).ok();
    env.on_vol("readiness", &["--tcp-socket", &format!("localhost:{port}")])
        .ok();
    drop(listener);
    env.on_vol("readiness", &["--tcp-socket", &format!("127.0.0.1:{port}")])
        .expect(1, &format!("app: connection refused on 127.0.0.1:{port}"));
}

#[test]
fn exec_checks_pass_on_exit_0_and_never_show_their_output() {
    let env = matching();
    env.on_vol("liveness", &["--exec", "true"]).ok();
    env.on_vol("readiness", &["--exec", "false"])
        .expect(1, "app: exec false exited 1");
    let script = format!("echo {SECRET}; echo {SECRET} >&2; exit 3");
    let out = env.on_vol("readiness", &["--exec", &format!("sh -c '{script}'")]);
    assert_eq!(out.line(), "app: exec sh exited 3", "{out}");
    no_values(&out, &[SECRET]);
}

/// Whether `pid` is gone (or a zombie waiting to be reaped).
fn gone(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    matches!(state, None | Some("Z"))
}

#[test]
fn a_hanging_exec_check_leaves_no_process_behind() {
    let env = matching();
    let pidfile = env.path("bg.pid");
    let cmd = format!(
        "sh -c 'sleep 30 & echo $! > {}; exec sleep 30'",
        pidfile.display()
    );
    let (out, took) = timed(
        &env,
        "liveness",
        &["--exec", &cmd, "--app-timeout", "300ms"],
    );
    out.expect(1, "app: exec sh gave no answer within 300ms");
    assert!(took < Duration::from_millis(1500), "took {took:?}: {out}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || gone(pid)),
        "the check's background child {pid} survived the probe"
    );
}

#[test]
fn every_app_flag_has_its_variable() {
    let env = matching();
    let up = Fake::start(Behaviour::Answer(Duration::ZERO, OK));
    let down = Fake::start(Behaviour::Answer(Duration::ZERO, FAILING));
    let silent = Fake::start(Behaviour::Silent);
    let probe = |var: &str, value: &str, extra: &[(&str, &str)]| {
        let mut cmd = env.cmd("readiness");
        cmd.env(var, value).arg(env.vol.path());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    probe("DRIFTPROBE_HTTP_GET", &health(&up), &[]).ok();
    probe("DRIFTPROBE_HTTP_GET", &health(&down), &[])
        .expect(1, "app: HTTP 503 from /actuator/health");
    probe(
        "DRIFTPROBE_HTTP_GET",
        &health(&silent),
        &[("DRIFTPROBE_APP_TIMEOUT", "200ms")],
    )
    .expect(1, "app: no answer from ")
    .contains("within 200ms");
    let port = closed_port().to_string();
    probe("DRIFTPROBE_TCP_SOCKET", &port, &[])
        .expect(1, &format!("app: connection refused on 127.0.0.1:{port}"));
    probe("DRIFTPROBE_EXEC", "false", &[]).expect(1, "app: exec false exited 1");
    probe("DRIFTPROBE_EXEC", "true", &[]).ok();
    // An empty variable is unset: no check.
    probe("DRIFTPROBE_EXEC", "", &[]).ok();
}

#[test]
fn bad_app_checks_are_usage_errors() {
    let env = matching();
    for (opts, why) in [
        (
            &["--http-get", "http://127.0.0.1/", "--tcp-socket", "80"][..],
            "cannot be used with",
        ),
        (
            &["--tcp-socket", "80", "--exec", "true"],
            "cannot be used with",
        ),
        (
            &["--http-get", "https://127.0.0.1/"],
            "https is not supported",
        ),
        (
            &["--http-get", "http://app:8080/"],
            "resolves no host names",
        ),
        (&["--tcp-socket", "localhost"], "port is required"),
        (&["--exec", "/no/such/check"], "not an executable in PATH"),
        (
            &["--exec", "true", "--app-timeout", "0"],
            "must be above zero",
        ),
    ] {
        let out = env.on_vol("readiness", opts);
        out.no_panic();
        assert_eq!(out.code, 2, "{opts:?}: {out}");
        assert!(out.stderr.contains(why), "{opts:?}: {out}");
    }
}

#[test]
fn the_validator_gets_what_the_app_check_left() {
    // The app answers after 400ms; the validator, given no
    // --validate-timeout, gets what is left of the probe's 800ms.
    let env = matching();
    env.vol.write(&[("app.conf", "v2\n")]);
    let slow = Fake::start(Behaviour::Answer(Duration::from_millis(400), OK));
    let (out, took) = timed(
        &env,
        "liveness",
        &[
            "--grace",
            "0",
            "--validate",
            "sleep 5",
            "--http-get",
            &health(&slow),
        ],
    );
    out.expect(0, "invalid: ")
        .contains("could not be validated (timed out after ");
    let ms: u64 = out
        .stdout
        .split("timed out after ")
        .nth(1)
        .and_then(|r| r.split("ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no timeout in ms: {out}"));
    assert!((50..=400).contains(&ms), "validator had {ms}ms: {out}");
    assert!(took < Duration::from_millis(1800), "took {took:?}: {out}");
}
