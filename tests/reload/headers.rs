//! `--reload-header 'Name: value'` on the `--reload-url` request (issue 17
//! §2: Spring's `/actuator/refresh` usually needs a credential): sent as
//! given, `@PATH` read from a file at each request, bad headers a usage
//! error, and no value ever in a probe line, `status`, an error or `--help`.

use super::common::*;
use super::http::{Behaviour, Fake, OK};
use crate::support::*;
use std::fs;
use std::time::Duration;

/// Distinctive values that must never be printed.
const FILE_SECRET: &str = "tok-7f3a9c-DRIFTPROBE-FILE-SECRET";
const INLINE_SECRET: &str = "inl-51be0d-DRIFTPROBE-INLINE-SECRET";

fn drifted() -> TestEnv {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env.vol.write(&[("app.conf", "v2\n")]);
    env
}

fn reload<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--grace", "0", "--on-drift", "reload", "--reload-url", url];
    v.extend_from_slice(extra);
    v
}

#[track_caller]
fn silent(out: &Out) {
    out.no_panic();
    no_values(out, &[FILE_SECRET, INLINE_SECRET, "Bearer "]);
}

#[test]
fn headers_are_sent_and_their_values_never_shown() {
    let server = Fake::start(Behaviour::Answer(Duration::ZERO, OK));
    let env = drifted();
    let token = env.path("token");
    // As a Secret key made with `echo`: a trailing newline.
    fs::write(&token, format!("Bearer {FILE_SECRET}\n")).unwrap();
    let from_file = format!("Authorization: @{}", token.display());
    let inline = format!("X-Refresh-Key:{INLINE_SECRET}");
    let url = server.url();
    let out = env.on_vol(
        "liveness",
        &reload(
            &url,
            &["--reload-header", &from_file, "--reload-header", &inline],
        ),
    );
    out.expect(0, "reloaded:");
    silent(&out);
    let heads = server.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].contains(&format!("\r\nAuthorization: Bearer {FILE_SECRET}\r\n")),
        "{heads:?}"
    );
    assert!(
        heads[0].contains(&format!("\r\nX-Refresh-Key: {INLINE_SECRET}\r\n")),
        "{heads:?}"
    );
    assert!(heads[0].ends_with("\r\n\r\n"), "{heads:?}");
    for args in [&["--json"][..], &[]] {
        silent(&env.on_vol("status", args));
    }
    let state = fs::read_dir(&env.state_dir)
        .unwrap()
        .flatten()
        .map(|e| fs::read(e.path()).unwrap_or_default())
        .collect::<Vec<_>>()
        .concat();
    assert!(
        !contains_bytes(&state, FILE_SECRET.as_bytes())
            && !contains_bytes(&state, INLINE_SECRET.as_bytes()),
        "a header value in the state dir"
    );

    // The file is read at each request: a rotated Secret is sent as it
    // is now. Through the environment variable, one header per line.
    fs::write(&token, "Bearer rotated-value\n").unwrap();
    env.vol.write(&[("app.conf", "v3\n")]);
    let mut cmd = env.cmd("liveness");
    cmd.env(
        "DRIFTPROBE_RELOAD_HEADER",
        format!("{from_file}\nX-Second: two, with a comma\n"),
    )
    .args(reload(&url, &[]))
    .arg(env.vol.path());
    let out = run(&mut cmd);
    out.expect(0, "reloaded:");
    let heads = server.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(
        heads[1]
            .contains("\r\nAuthorization: Bearer rotated-value\r\nX-Second: two, with a comma\r\n"),
        "{heads:?}"
    );
}

#[test]
fn a_header_file_that_cannot_be_used_is_a_failed_reload_without_its_value() {
    let server = Fake::start(Behaviour::Answer(Duration::ZERO, OK));
    let env = drifted();
    let token = env.path("token");
    let header = format!("Authorization: @{}", token.display());
    let url = server.url();
    // Missing.
    let out = env.on_vol("liveness", &reload(&url, &["--reload-header", &header]));
    out.expect(1, "drift:").contains(&format!(
        "; reload failed: POST {url} not sent: --reload-header Authorization: cannot read its value from {}",
        token.display()
    ));
    silent(&out);
    // A value that would inject a header line, or is not text.
    for bad in [
        format!("Bearer {FILE_SECRET}\r\nX-Injected: 1\n"),
        format!("Bearer {FILE_SECRET}\0"),
        format!("Bearer {FILE_SECRET}\u{e9}"),
    ] {
        fs::write(&token, &bad).unwrap();
        let out = env.on_vol("liveness", &reload(&url, &["--reload-header", &header]));
        out.expect(1, "drift:")
            .contains("holds a control or non-ASCII character")
            .lacks("X-Injected");
        silent(&out);
    }
    // Too large, and not a regular file.
    fs::write(&token, "x".repeat(9000)).unwrap();
    let out = env.on_vol("liveness", &reload(&url, &["--reload-header", &header]));
    out.expect(1, "drift:").contains("reload failed");
    let dir = format!("Authorization: @{}", env.state_dir.display());
    let out = env.on_vol("liveness", &reload(&url, &["--reload-header", &dir]));
    out.expect(1, "drift:").contains("not a regular file");
    assert!(server.heads().is_empty(), "{:?}", server.heads());
}

#[test]
fn bad_headers_are_usage_errors_that_do_not_quote_the_value() {
    let env = drifted();
    let url = "http://127.0.0.1:9/-/refresh";
    for (header, says) in [
        (
            format!("Authorization {INLINE_SECRET}"),
            "expected 'Name: value'",
        ),
        (format!("Bad Name: {INLINE_SECRET}"), "not an HTTP token"),
        (format!(": {INLINE_SECRET}"), "not an HTTP token"),
        (format!("Host: {INLINE_SECRET}"), "sets that header itself"),
        (
            format!("content-length: {INLINE_SECRET}"),
            "sets that header itself",
        ),
        (
            format!("X-Key: {INLINE_SECRET}\r\nX-Injected: 1"),
            "control",
        ),
        (format!("X-Key: {INLINE_SECRET}\u{7f}"), "control"),
        ("X-Key: @".to_string(), "'@' without a file"),
    ] {
        let out = env.on_vol("liveness", &reload(url, &["--reload-header", &header]));
        out.no_panic();
        assert_eq!(out.code, 2, "{header:?}: {out}");
        assert!(out.stderr.contains(says), "{header:?}: {out}");
        silent(&out);
    }
    // Checked whenever given, like --reload-url: readiness too.
    let out = env.on_vol(
        "readiness",
        &["--reload-header", &format!("Bad Name: {INLINE_SECRET}")],
    );
    assert_eq!(out.code, 2, "{out}");
    silent(&out);
    // Given without --reload-url: a warning.
    let out = env.on_vol(
        "readiness",
        &["--grace", "1h", "--reload-header", "X-Key: v"],
    );
    assert!(
        out.stderr
            .contains("--reload-header is ignored without --reload-url"),
        "{out}"
    );
    // --help never shows the variable's value.
    let mut cmd = env.cmd("liveness");
    cmd.env(
        "DRIFTPROBE_RELOAD_HEADER",
        format!("X-Key: {INLINE_SECRET}"),
    )
    .arg("--help");
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("--reload-header"), "{out}");
    silent(&out);
}
