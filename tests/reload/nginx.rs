//! A real nginx reloaded in place: its server config is included from a
//! ConfigMap volume written by the kubelet emulation, the probe signals the
//! master found via its pidfile, and HTTP proves what is being served.
//!
//! Skips (with a message) when nginx is not installed, unless
//! `DRIFTPROBE_REQUIRE_E2E=1`, which makes a skip a failure.

use super::common::*;
use crate::support::*;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

const NGINX_CANDIDATES: [&str; 3] = ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"];

fn find_nginx() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DRIFTPROBE_NGINX") {
        return Some(PathBuf::from(p));
    }
    NGINX_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            let out = StdCommand::new("sh")
                .args(["-c", "command -v nginx"])
                .output()
                .ok()?;
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (!s.is_empty()).then(|| PathBuf::from(s))
        })
}

/// A running nginx master (`daemon off`, so it is our child). Drop stops it
/// (TERM, then KILL of the master and the workers it started).
struct Nginx {
    master: Child,
    prefix: PathBuf,
}

impl Nginx {
    fn pid(&self) -> u32 {
        self.master.id()
    }

    fn pidfile(&self) -> PathBuf {
        self.prefix.join("nginx.pid")
    }

    fn alive(&mut self) -> bool {
        self.master.try_wait().ok().flatten().is_none()
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }

    fn workers(&self) -> Vec<i32> {
        let pid = self.pid();
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let workers = self.workers();
        // SAFETY: plain kill(2) on pids this test started (the master and its children).
        unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.master.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
        for w in workers {
            // Only if it is still nginx (the pid was not reused).
            let comm = fs::read_to_string(format!("/proc/{w}/comm")).unwrap_or_default();
            if comm.trim() == "nginx" {
                // SAFETY: as above.
                unsafe { libc::kill(w, libc::SIGKILL) };
            }
        }
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

/// One HTTP/1.0 GET of `/`: the body, or the error.
fn get(port: u16) -> Result<String, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("bad response {resp:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("not 200: {head:?}"));
    }
    Ok(body.to_string())
}

/// Polls until nginx serves `want` (or panics after a few seconds).
#[track_caller]
fn wait_serving(port: u16, want: &str, ng: &Nginx) {
    let mut last = Err(String::new());
    let ok = wait_until(Duration::from_secs(6), || {
        last = get(port);
        last.as_deref() == Ok(want)
    });
    assert!(
        ok,
        "nginx should serve {want:?}, last answer {last:?}; error log:\n{}",
        ng.error_log()
    );
}

/// After a reload: waits until the workers that served the old config
/// have exited (nginx lets them finish gracefully, and until then they may
/// still accept connections), then until `want` is served, consistently.
#[track_caller]
fn wait_reloaded(port: u16, want: &str, ng: &Nginx, old_workers: &[i32]) {
    let gone = wait_until(Duration::from_secs(6), || {
        let now = ng.workers();
        !now.is_empty() && old_workers.iter().all(|w| !now.contains(w))
    });
    assert!(
        gone,
        "nginx did not replace its workers {old_workers:?} (now {:?}): not reloaded; error log:\n{}",
        ng.workers(),
        ng.error_log()
    );
    wait_serving(port, want, ng);
    still_serving(port, want, ng);
}

/// Asserts nginx serves `want` now and keeps serving it for a moment
/// (a reload that should not have happened would show up within that).
#[track_caller]
fn still_serving(port: u16, want: &str, ng: &Nginx) {
    for _ in 0..5 {
        assert_eq!(
            get(port).as_deref(),
            Ok(want),
            "nginx must still serve {want:?}; error log:\n{}",
            ng.error_log()
        );
        std::thread::sleep(Duration::from_millis(60));
    }
}

fn site(body: &str) -> String {
    format!("location / {{\n    return 200 \"{body}\";\n}}\n")
}

fn main_conf(prefix: &Path, vol: &Path, port: u16) -> String {
    let p = prefix.display();
    // As root, keep the workers root: they then need no access to the temp dir.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root root;\n"
    } else {
        ""
    };
    format!(
        "{user}daemon off;
master_process on;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        include {vol}/*.conf;
    }}
}}
",
        vol = vol.display()
    )
}

#[test]
fn nginx_reloaded_in_place_after_grace_and_never_into_a_broken_config() {
    let Some(nginx) = find_nginx() else {
        return skip_e2e(
            "nginx end-to-end test",
            "nginx is not installed (apt-get install nginx)",
        );
    };

    let env = TestEnv::new();
    let prefix = env.path("nginx");
    fs::create_dir_all(prefix.join("tmp")).unwrap();
    let conf = prefix.join("nginx.conf");
    let port = free_port();
    fs::write(&conf, main_conf(&prefix, env.vol.path(), port)).unwrap();
    env.vol.write(&[("site.conf", site("v1"))]);

    // The validator, exactly as a pod spec would give it.
    let nginx_s = nginx.display().to_string();
    let validate = format!(
        "{nginx_s} -t -e {p}/error.log -c {c} -p {p}",
        c = conf.display(),
        p = prefix.display()
    );
    let t = StdCommand::new(&nginx)
        .args(["-t", "-e"])
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(&prefix)
        .output()
        .expect("run nginx -t");
    assert!(
        t.status.success(),
        "nginx -t on the initial config: {}",
        String::from_utf8_lossy(&t.stderr)
    );

    let master = StdCommand::new(&nginx)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(&prefix)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut ng = Nginx { master, prefix };
    let pidfile = ng.pidfile();
    assert!(
        wait_until(Duration::from_secs(5), || fs::read_to_string(&pidfile)
            .is_ok_and(|s| s.trim() == ng.pid().to_string())),
        "nginx did not write its pidfile; error log:\n{}",
        ng.error_log()
    );
    wait_serving(port, "v1", &ng);
    let master_pid = ng.pid();
    assert!(catches(master_pid, 1), "the nginx master catches SIGHUP");

    let pf = pidfile.to_str().unwrap().to_string();
    let reload_args: Vec<&str> = vec![
        "--grace",
        "1s",
        "--on-drift",
        "reload",
        "--signal",
        "HUP",
        "--pidfile",
        &pf,
        "--validate",
        &validate,
    ];
    let liveness = || env.on_vol("liveness", &reload_args);
    let readiness = |on_invalid: &str| {
        env.on_vol(
            "readiness",
            &[
                "--grace",
                "0",
                "--validate",
                &validate,
                "--on-invalid",
                on_invalid,
            ],
        )
    };

    let init = env.init();
    assert!(init.stdout.starts_with("baseline recorded"), "{init}");
    let d1 = env.digest();
    liveness().ok();
    readiness("fail").ok();

    // v1 -> v2: inside the grace window nothing happens to nginx.
    env.vol.write(&[("site.conf", site("v2"))]);
    let d2 = env.digest();
    liveness()
        .expect(0, "drift:")
        .contains("1 changed (site.conf)")
        .contains("grace 1s");
    still_serving(port, "v1", &ng);
    std::thread::sleep(Duration::from_millis(1100));
    let workers = ng.workers();
    let out = liveness();
    out.expect(0, "reloaded:")
        .contains("1 changed (site.conf)")
        .contains(&format!("sent SIGHUP to pid {master_pid} (nginx)"));
    wait_reloaded(port, "v2", &ng, &workers);
    assert!(ng.alive(), "nginx master exited");
    assert_eq!(ng.pid(), master_pid);
    assert_eq!(
        fs::read_to_string(&pidfile).unwrap().trim(),
        master_pid.to_string()
    );
    liveness().ok();
    readiness("fail").ok();

    // A broken edit: validation fails, nothing is reloaded, ever.
    env.vol.write(&[(
        "site.conf",
        "location / {\n    return 200 \"v-broken\"\n}\n",
    )]);
    let d_bad = env.digest();
    let out = liveness();
    // The line says how the validator answered, never what it printed
    // (issue 13.10: it may quote a Secret); `status` has that.
    out.expect(0, "invalid:")
        .contains("site.conf")
        .contains("rejected by the validator (exit 1)")
        .lacks("[emerg]");
    not_reloaded(&out);
    readiness("fail")
        .expect(1, "invalid:")
        .contains("site.conf")
        .lacks("[emerg]");
    env.on_vol("status", &[])
        .contains("INVALID (exit 1): ")
        .contains("[emerg]")
        .contains("unexpected \"}\"");
    readiness("pass").expect(0, "invalid:");
    still_serving(port, "v2", &ng);
    // Long past the grace window: still not reloaded into it.
    std::thread::sleep(Duration::from_millis(1100));
    let out = liveness();
    out.expect(0, "invalid:")
        .contains("rejected by the validator");
    not_reloaded(&out);
    still_serving(port, "v2", &ng);
    assert_eq!(ng.pid(), master_pid);

    // The fix: v3 is valid; the normal path (grace, then reload) resumes.
    env.vol.write(&[("site.conf", site("v3"))]);
    let d3 = env.digest();
    let out = liveness();
    out.expect(0, "drift:").contains("1 changed (site.conf)");
    still_serving(port, "v2", &ng);
    std::thread::sleep(Duration::from_millis(1100));
    let workers = ng.workers();
    liveness()
        .expect(0, "reloaded:")
        .contains(&format!("pid {master_pid}"));
    wait_reloaded(port, "v3", &ng, &workers);
    assert!(ng.alive(), "nginx master exited");
    assert_eq!(
        fs::read_to_string(&pidfile).unwrap().trim(),
        master_pid.to_string()
    );
    liveness().ok();
    readiness("fail").ok();

    // status --json: both reloads and all three validations.
    let st = env.on_vol("status", &["--json"]);
    assert_eq!(st.code, 0, "{st}");
    let v = json(&st);
    assert_eq!(v["state"], "matches", "{v}");
    assert_eq!(v["baseline"]["digest"], d3.as_str(), "{v}");
    let reloads = v["reloads"].as_array().expect("reloads");
    assert_eq!(reloads.len(), 2, "{v}");
    for (r, (from, to)) in reloads.iter().zip([(&d1, &d2), (&d2, &d3)]) {
        assert_eq!(r["signal"], "SIGHUP", "{v}");
        assert_eq!(r["pid"], master_pid, "{v}");
        assert_eq!(r["target"], format!("pidfile {pf}").as_str(), "{v}");
        assert_eq!(r["from_digest"], from.as_str(), "{v}");
        assert_eq!(r["to_digest"], to.as_str(), "{v}");
    }
    let vals = v["validations"].as_array().expect("validations");
    let find = |d: &str| {
        vals.iter()
            .find(|x| x["digest"] == d)
            .unwrap_or_else(|| panic!("no validation for {d}: {v}"))
    };
    assert_eq!(vals.len(), 3, "{v}");
    assert_eq!(find(&d2)["ok"], true, "{v}");
    assert_eq!(find(&d3)["ok"], true, "{v}");
    let bad = find(&d_bad);
    assert_eq!(bad["ok"], false, "{v}");
    assert!(
        bad["output"].as_str().unwrap_or("").contains("[emerg]"),
        "{v}"
    );
    // The master never changed: reloaded in place, not restarted.
    assert!(ng.alive());
    assert_eq!(ng.pid(), master_pid);
}

/// The validator runs once per new digest, not on every probe.
#[test]
fn validator_runs_once_per_digest() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "good 1\n")]);
    env.init();
    let count = env.path("validator-runs");
    let validate = format!(
        "sh -c 'echo run >> {c}; grep -q good {f}'",
        c = count.display(),
        f = env.vol.path().join("app.conf").display()
    );
    let runs = || {
        fs::read_to_string(&count)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let probe = |grace: &str| env.on_vol("liveness", &["--grace", grace, "--validate", &validate]);
    probe("1h").ok();
    assert_eq!(
        runs(),
        0,
        "no validation while the config matches the baseline"
    );
    env.vol.write(&[("app.conf", "bad 2\n")]);
    for _ in 0..3 {
        probe("1h").expect(0, "invalid:").contains("app.conf");
        probe("0").expect(0, "invalid:");
    }
    assert_eq!(runs(), 1, "validated once for the bad digest");
    env.vol.write(&[("app.conf", "good 3\n")]);
    probe("1h").expect(0, "drift:");
    probe("0").drift();
    assert_eq!(runs(), 2);
    // Back to the bad bytes: the cached verdict is reused.
    env.vol.write(&[("app.conf", "bad 2\n")]);
    probe("0").expect(0, "invalid:");
    assert_eq!(runs(), 2);
}
