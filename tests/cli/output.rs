//! What reaches stdout and stderr (issue 13 items 9–11, issue 19 item 5):
//! one line per probe whatever the names, paths and validator say; no
//! validator output and no digest in a probe line (it becomes an Event);
//! hostile names escaped in `status`, human and JSON; a keyed digest for
//! Secrets; an overdue line that stays the same from probe to probe.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::*;

/// Characters that must never be printed raw (crate::escape's list).
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Exactly one line, ending in a newline, with nothing unsafe in it.
#[track_caller]
fn one_clean_line(out: &Out) {
    assert_eq!(out.stdout.matches('\n').count(), 1, "one line: {out}");
    assert!(out.stdout.ends_with('\n'), "{out}");
    assert!(!out.stdout.contains('\u{fffd}'), "no U+FFFD: {out}");
    clean(out);
}

/// Nothing unsafe on stdout or stderr (newlines end lines).
#[track_caller]
fn clean(out: &Out) {
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let bad: Vec<char> = text.chars().filter(|&c| unsafe_char(c)).collect();
        assert!(bad.is_empty(), "raw {bad:?} on {name}: {out}");
    }
}

/// Any run of `n` or more hex digits: a digest or a prefix of one.
fn hex_run(text: &str, n: usize) -> Option<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() >= n)
        .map(str::to_string)
}

/// A hostile name: a newline that would start a forged `ok:` line, ESC,
/// CR, NEL, the line separator, a right-to-left override, a byte that is
/// not UTF-8.
const HOSTILE: &[u8] =
    b"x\nok: config matches the baseline\x1b[2K\r\xc2\x85\xe2\x80\xa8\xe2\x80\xaefdp.\xff";
/// How [`HOSTILE`] is printed: every one of those escaped, one-to-one.
const HOSTILE_SHOWN: &str =
    "x\\x0aok: config matches the baseline\\x1b[2K\\x0d\\xc2\\x85\\xe2\\x80\\xa8\\xe2\\x80\\xaefdp.\\xff";

fn plain_dir(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.path(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("app.yaml"), "v: 1\n").unwrap();
    dir
}

#[test]
fn an_unreadable_file_name_cannot_forge_a_second_line() {
    let env = TestEnv::new();
    fs::set_permissions(env.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = plain_dir(&env, "cfg");
    let name = os(HOSTILE);
    let secret = dir.join(&name);
    fs::write(&secret, "k").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let state = env.path("state4242");
    fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(4242), Some(4242)).unwrap();
    for sub in ["readiness", "liveness", "init", "status"] {
        let out = run(as_uid(4242)
            .arg(sub)
            .arg("--state-dir")
            .arg(&state)
            .arg(&dir));
        out.no_panic();
        one_clean_line(&out);
        assert!(
            out.stdout.starts_with("cannot determine: cannot read "),
            "{sub}: {out}"
        );
        assert!(
            out.stdout
                .contains(&format!("/{HOSTILE_SHOWN}: Permission denied")),
            "{sub}: {out}"
        );
    }
}

#[test]
fn hostile_names_in_a_drift_line_are_escaped() {
    let env = TestEnv::new();
    let dir = plain_dir(&env, "cfg");
    run(env.cmd("init").arg(&dir)).expect(0, "baseline recorded");
    fs::write(dir.join(os(HOSTILE)), "new").unwrap();
    let out = run(env.cmd("liveness").args(["--grace", "0"]).arg(&dir));
    out.drift();
    one_clean_line(&out);
    assert!(out.stdout.contains(HOSTILE_SHOWN), "{out}");
}

/// The hostile name as a watched directory and as files under it, for
/// `status`, with a validation on record.
fn hostile_status_env() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let dir = env.path(std::str::from_utf8(&HOSTILE[..2]).unwrap()); // "x\n"
    let dir = PathBuf::from(os(
        &[dir.as_os_str().as_bytes(), b"\xe2\x80\xae\x01"].concat()
    ));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("app.yaml"), "v: 1\n").unwrap();
    fs::write(dir.join(os(b"gone\x1b]0;owned\x07")), "1").unwrap();
    run(env.cmd("init").arg(&dir)).expect(0, "baseline recorded");
    fs::remove_file(dir.join(os(b"gone\x1b]0;owned\x07"))).unwrap();
    fs::write(dir.join(os(HOSTILE)), "new").unwrap();
    fs::write(dir.join(os(b"bidi\xe2\x81\xa6x\xe2\x81\xa9\x7f")), "new").unwrap();
    (env, dir)
}

#[test]
fn status_escapes_hostile_names_in_both_forms() {
    let (env, dir) = hostile_status_env();
    let human = run(env.cmd("status").arg(&dir));
    human.no_panic();
    assert_eq!(human.code, 1, "{human}");
    clean(&human);
    assert!(!human.stdout.contains('\u{fffd}'), "{human}");
    let watching = human.stdout.lines().next().unwrap();
    assert!(watching.ends_with("/x\\x0a\\xe2\\x80\\xae\\x01"), "{human}");
    for shown in [
        HOSTILE_SHOWN,
        "gone\\x1b]0;owned\\x07",
        "bidi\\xe2\\x81\\xa6x\\xe2\\x81\\xa9\\x7f",
    ] {
        assert!(human.stdout.contains(shown), "{shown}: {human}");
    }

    let json = run(env.cmd("status").arg("--json").arg(&dir));
    json.no_panic();
    clean(&json);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        v["paths"][0]
            .as_str()
            .unwrap()
            .ends_with("/x\\x0a\\xe2\\x80\\xae\\x01"),
        "{v}"
    );
    assert_eq!(v["changes"]["removed"][0], "gone\\x1b]0;owned\\x07", "{v}");
    let added: Vec<&str> = v["changes"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(added.contains(&HOSTILE_SHOWN), "{v}");
}

/// A validator that quotes a credential, with terminal and line tricks.
fn leaky_validator(env: &TestEnv) -> PathBuf {
    let script = env.path("validate.sh");
    write_executable(
        &script,
        b"#!/bin/sh\n\
         printf 'invalid port in upstream \"admin:Pa55w0rd@db:5432x\"\\033[2K\\r\\342\\200\\250ok: fine\\302\\205x\\n' >&2\n\
         exit 7\n",
    );
    script
}

#[test]
fn validator_output_stays_out_of_the_probe_line() {
    let env = TestEnv::new();
    env.vol
        .write(&[("nginx.conf", "proxy_pass http://admin:Pa55w0rd@db:5432;\n")]);
    env.init();
    env.vol
        .write(&[("nginx.conf", "proxy_pass http://admin:Pa55w0rd@db:5432x;\n")]);
    let script = leaky_validator(&env);
    let validate = script.to_str().unwrap();
    for (sub, code) in [("liveness", 0), ("readiness", 1)] {
        let out = env.on_vol(
            sub,
            &[
                "--grace",
                "0",
                "--validate",
                validate,
                "--on-invalid",
                "fail",
            ],
        );
        out.expect(code, "invalid:")
            .contains("1 changed (nginx.conf)")
            .contains("rejected by the validator (exit 7)")
            .contains("driftprobe status")
            .lacks("Pa55w0rd")
            .lacks("upstream");
        one_clean_line(&out);
    }
    // status (needs kubectl exec, as the Secret itself) has the output,
    // escaped one-to-one.
    let shown = "invalid port in upstream \"admin:Pa55w0rd@db:5432x\"\\x1b[2K\\x0d\\xe2\\x80\\xa8ok: fine\\xc2\\x85x";
    let st = env.on_vol("status", &[]);
    clean(&st);
    st.contains(&format!("INVALID (exit 7): {shown}"));
    let js = env.on_vol("status", &["--json"]);
    clean(&js);
    let v: serde_json::Value = serde_json::from_str(&js.stdout).unwrap();
    let val = &v["validations"][0];
    assert_eq!(val["outcome"], "exit 7", "{v}");
    assert_eq!(val["output"], shown, "{v}");
}

#[test]
fn probe_lines_carry_no_digest() {
    let env = TestEnv::new();
    env.vol.write(&[("pin", "4821")]);
    let d1 = env.digest();
    let init = env.init();
    let ok = env.liveness("0");
    ok.ok();
    env.vol.write(&[("pin", "4822")]);
    let d2 = env.digest();
    let adopted = env.on_vol("liveness", &["--grace", "0", "--on-drift", "adopt"]);
    adopted.expect(0, "adopted:");
    let again = env.readiness("0");
    again.ok();
    let forced = env.on_vol("init", &["--force"]);
    // The harness forces `init` (DRIFTPROBE_FORCE): not this once.
    let noop = run(env
        .cmd("init")
        .env("DRIFTPROBE_FORCE", "false")
        .arg(env.vol.path()));
    noop.expect(0, "baseline already recorded");
    env.vol.write(&[("pin", "4823")]);
    let drift = env.liveness("0");
    drift.drift();
    for out in [&init, &ok, &adopted, &again, &forced, &noop, &drift] {
        one_clean_line(out);
        for d in [&d1, &d2] {
            out.lacks(&d[..8]);
        }
        assert_eq!(hex_run(&out.stdout, 8), None, "{out}");
    }
}

#[test]
fn an_overdue_line_is_the_same_at_every_probe() {
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "v: 1\n")]);
    env.init();
    env.vol.write(&[("app.yaml", "v: 2\n")]);
    let first = env.liveness("1s");
    first.expect(0, "drift:");
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    let a = env.liveness("1s");
    a.drift();
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let b = env.liveness("1s");
    b.drift();
    // The kubelet folds identical Events only.
    assert_eq!(a.stdout, b.stdout);
    assert!(a.stdout.contains("(grace 1s, ended "), "{a}");
}

fn key_file(env: &TestEnv, name: &str, bytes: &[u8]) -> PathBuf {
    let p = env.path(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn keyed(env: &TestEnv, key: &Path, dir: &Path) -> String {
    let out = run(env.cmd("digest").arg("--key-file").arg(key).arg(dir));
    out.expect(0, "hmac-sha256:");
    let line = out.line().to_string();
    let hex = line.strip_prefix("hmac-sha256:").unwrap();
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{out}"
    );
    line
}

#[test]
fn keyed_digests_are_stable_and_depend_on_the_key() {
    let env = TestEnv::new();
    env.vol.write(&[("pin", "4821")]);
    let vol = env.vol.path().to_path_buf();
    let a = key_file(&env, "a.key", b"0123456789abcdef0123456789abcdef\n");
    let a_bare = key_file(&env, "a-bare.key", b"0123456789abcdef0123456789abcdef");
    let b = key_file(&env, "b.key", b"another key");
    let ka = keyed(&env, &a, &vol);
    assert_eq!(ka, keyed(&env, &a, &vol), "stable");
    assert_eq!(
        ka,
        keyed(&env, &a_bare, &vol),
        "one trailing newline is not the key"
    );
    assert_ne!(ka, keyed(&env, &b, &vol));
    // The same as CI computes on the files outside a volume.
    let ci = env.path("ci");
    fs::create_dir(&ci).unwrap();
    fs::write(ci.join("pin"), "4821").unwrap();
    assert_eq!(ka, keyed(&env, &a, &ci));
    // DRIFTPROBE_KEY_FILE is the same as the flag.
    let by_env = run(env.cmd("digest").env("DRIFTPROBE_KEY_FILE", &a).arg(&vol));
    assert_eq!(by_env.line(), ka);
    // Nothing of the plain digest in it; a change of content changes it.
    let plain = env.digest();
    assert!(!ka.contains(&plain[..12]));
    env.vol.write(&[("pin", "4822")]);
    assert_ne!(ka, keyed(&env, &a, &vol));

    // --json: keyed per-file values, no plain sha256, no size.
    let js = run(env
        .cmd("digest")
        .args(["--json", "--key-file"])
        .arg(&a)
        .arg(&vol));
    js.no_panic();
    assert_eq!(js.code, 0, "{js}");
    assert!(js.stderr.is_empty(), "{js}");
    let v: serde_json::Value = serde_json::from_str(&js.stdout).unwrap();
    assert!(
        v["digest"].as_str().unwrap().starts_with("hmac-sha256:"),
        "{v}"
    );
    let f = &v["files"][0];
    assert_eq!(f["path"], "pin");
    assert_eq!(f["hmac_sha256"].as_str().map(str::len), Some(64), "{v}");
    assert!(f.get("sha256").is_none() && f.get("size").is_none(), "{v}");
    // Without a key: the warning.
    let plain_js = run(env.cmd("digest").arg("--json").arg(&vol));
    assert_eq!(plain_js.code, 0, "{plain_js}");
    assert!(
        plain_js.stderr.contains("unkeyed SHA-256 digests"),
        "{plain_js}"
    );

    // Bad key files: a usage error naming the flag, never a hang.
    let empty = key_file(&env, "empty.key", b"\n");
    let fifo = env.path("fifo.key");
    nix_mkfifo(&fifo);
    for (bad, why) in [
        (empty, "empty"),
        (env.path("absent.key"), "cannot read"),
        (fifo, "FIFO"),
    ] {
        let out = run(env.cmd("digest").arg("--key-file").arg(&bad).arg(&vol));
        out.no_panic();
        assert_eq!(out.code, 2, "{out}");
        assert!(
            out.stderr.contains("--key-file") && out.stderr.contains(why),
            "{out}"
        );
    }
}

fn nix_mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn a_bad_value_from_the_env_cannot_forge_a_line() {
    let env = TestEnv::new();
    // A DRIFTPROBE_* variable may come from a ConfigMap (envFrom).
    let out = run(env
        .cmd("liveness")
        .env(
            "DRIFTPROBE_LIVENESS_GRACE",
            "1\nok: config matches the baseline\u{1b}[2K\u{2028}",
        )
        .arg(env.vol.path()));
    out.no_panic();
    assert_eq!(out.code, 2, "{out}");
    clean(&out);
    assert!(
        out.stderr
            .contains("'1\\x0aok: config matches the baseline\\x1b[2K\\xe2\\x80\\xa8'"),
        "{out}"
    );
    assert!(!out.stderr.lines().any(|l| l.starts_with("ok:")), "{out}");
}
