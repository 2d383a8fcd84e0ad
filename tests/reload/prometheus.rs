//! A real Prometheus reloaded in place over HTTP (`POST /-/reload`, what
//! configmap-reload and prometheus-config-reloader do from a sidecar): its
//! config file lives in a ConfigMap volume written by the kubelet
//! emulation, the probe runs as the kubelet would with `--on-drift reload
//! --reload-url … --validate "promtool check config FILE"`, and Prometheus's
//! own API says what it runs: `/api/v1/status/config` and the metrics
//! `prometheus_config_last_reload_successful`,
//! `prometheus_config_last_reload_success_timestamp_seconds` and
//! `process_start_time_seconds`.
//!
//! Each test starts its own Prometheus on a free loopback port with its own
//! TSDB dir (the Debian package's service plays no part). Skips (with a
//! message) when prometheus or promtool is not installed, unless
//! `DRIFTPROBE_REQUIRE_E2E=1`, which makes a skip a failure.

use super::common::*;
use crate::support::*;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `name` in `PATH`, or `DRIFTPROBE_<NAME>` if set.
fn find_tool(name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(format!("DRIFTPROBE_{}", name.to_uppercase())) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A Prometheus this test started (`--web.enable-lifecycle`), stopped on
/// drop (TERM, then KILL).
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Prometheus {
    fn start(bin: &PathBuf, config: &std::path::Path, dir: &std::path::Path) -> Prometheus {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
            l.local_addr().unwrap().port()
        };
        let log = dir.join("prometheus.log");
        let child = StdCommand::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start prometheus");
        let mut p = Prometheus { child, port, log };
        let ready = wait_until(Duration::from_secs(30), || {
            get(p.port, "/-/ready").is_ok_and(|(code, _)| code == 200)
        });
        assert!(
            ready && p.child.try_wait().unwrap().is_none(),
            "prometheus did not become ready; log:\n{}",
            p.log()
        );
        p
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The config Prometheus runs, from its API (as YAML).
    #[track_caller]
    fn running_config(&self) -> String {
        let (code, body) = get(self.port, "/api/v1/status/config").expect("GET status/config");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("status/config JSON");
        v["data"]["yaml"].as_str().expect("data.yaml").to_string()
    }

    /// The value of an unlabelled metric from `/metrics`.
    #[track_caller]
    fn metric(&self, name: &str) -> f64 {
        let (code, body) = get(self.port, "/metrics").expect("GET /metrics");
        assert_eq!(code, 200);
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on the process this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 GET: status code and body.
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("bad response {resp:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {head:?}"))?;
    Ok((code, body.to_string()))
}

fn config(interval: &str, port: u16, extra_job: bool) -> String {
    let mut c = format!(
        "global:\n  scrape_interval: {interval}\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    );
    if extra_job {
        c.push_str(
            "  - job_name: extra\n    static_configs:\n      - targets: [\"127.0.0.1:9\"]\n",
        );
    }
    c
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn prometheus_reloaded_over_http_after_grace_and_never_into_a_broken_config() {
    let (Some(prometheus), Some(promtool)) = (find_tool("prometheus"), find_tool("promtool"))
    else {
        return skip_e2e(
            "prometheus end-to-end test",
            "prometheus/promtool are not installed (apt-get install --no-install-recommends prometheus)",
        );
    };

    let env = TestEnv::new();
    let dir = env.path("prometheus");
    fs::create_dir_all(&dir).unwrap();
    // The config file as the pod sees it: through the volume's symlinks.
    let file = env.vol.path().join("prometheus.yml");
    // The port is only known once Prometheus runs; it scrapes itself
    // through a placeholder target first, which the test does not look at.
    env.vol
        .write(&[("prometheus.yml", config("15s", 9, false))]);
    let prom = Prometheus::start(&prometheus, &file, &dir);
    let port = prom.port;
    let started = prom.metric("process_start_time_seconds");
    let pid = prom.child.id();
    assert_eq!(prom.metric("prometheus_config_last_reload_successful"), 1.0);
    let first_reload = prom.metric("prometheus_config_last_reload_success_timestamp_seconds");
    assert!(prom.running_config().contains("scrape_interval: 15s"));

    let url = format!("http://127.0.0.1:{port}/-/reload");
    let validate = format!("{} check config {}", promtool.display(), file.display());
    let liveness = || {
        env.on_vol(
            "liveness",
            &[
                "--grace",
                "2s",
                "--on-drift",
                "reload",
                "--reload-url",
                &url,
                // Prometheus answers once the new config is loaded: a few ms
                // here, but the test machine may be busy.
                "--reload-timeout",
                "5s",
                "--validate",
                &validate,
            ],
        )
    };
    env.init();
    let d1 = env.digest();
    liveness().ok();

    // A new scrape interval and a new job: nothing happens inside the grace
    // window, then the probe reloads Prometheus in place.
    let changed_at = now_secs();
    env.vol
        .write(&[("prometheus.yml", config("7s", port, true))]);
    let d2 = env.digest();
    liveness()
        .expect(0, "drift:")
        .contains("1 changed (prometheus.yml)")
        .contains("grace 2s");
    let running = prom.running_config();
    assert!(running.contains("scrape_interval: 15s"), "{running}");
    assert!(!running.contains("job_name: extra"), "{running}");
    assert_eq!(
        prom.metric("prometheus_config_last_reload_success_timestamp_seconds"),
        first_reload,
        "reloaded inside the grace window"
    );
    std::thread::sleep(Duration::from_millis(2_100));
    liveness().expect(0, "reloaded:").contains(&format!(
        "1 changed (prometheus.yml): POST {url} answered 200"
    ));
    let running = prom.running_config();
    assert!(running.contains("scrape_interval: 7s"), "{running}");
    assert!(running.contains("job_name: extra"), "{running}");
    assert_eq!(prom.metric("prometheus_config_last_reload_successful"), 1.0);
    let reloaded_at = prom.metric("prometheus_config_last_reload_success_timestamp_seconds");
    assert!(
        reloaded_at >= changed_at + 2.0,
        "reloaded at {reloaded_at}, before the grace window (2s from {changed_at}) was over"
    );
    // In place: the same process, never restarted.
    assert!(prom.child.id() == pid && fs::metadata(format!("/proc/{pid}")).is_ok());
    assert_eq!(prom.metric("process_start_time_seconds"), started);
    liveness().ok();

    // A broken config: promtool rejects it, no reload request is made (it
    // would have set prometheus_config_last_reload_successful to 0), and
    // Prometheus keeps the last good config, also long after the grace
    // window.
    env.vol.write(&[(
        "prometheus.yml",
        "global:\n  scrape_interval: banana\n".to_string(),
    )]);
    let d_bad = env.digest();
    for _ in 0..2 {
        let out = liveness();
        out.expect(0, "invalid:")
            .contains("1 changed (prometheus.yml)")
            .contains("rejected by the validator (exit 1), keeping the running config")
            .lacks("not a valid duration string");
        not_reloaded(&out);
        std::thread::sleep(Duration::from_millis(2_100));
    }
    assert_eq!(prom.metric("prometheus_config_last_reload_successful"), 1.0);
    assert_eq!(
        prom.metric("prometheus_config_last_reload_success_timestamp_seconds"),
        reloaded_at
    );
    let running = prom.running_config();
    assert!(running.contains("scrape_interval: 7s"), "{running}");
    assert!(prom
        .log()
        .contains("Completed loading of configuration file"));
    assert_eq!(prom.metric("process_start_time_seconds"), started);

    // status: one reload by HTTP, the rejected config's validation.
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["baseline"]["digest"], d2.as_str(), "{v}");
    let reloads = v["reloads"].as_array().expect("reloads");
    assert_eq!(reloads.len(), 1, "{v}");
    assert_eq!(reloads[0]["signal"], "POST", "{v}");
    assert_eq!(reloads[0]["pid"], 0, "{v}");
    assert_eq!(reloads[0]["target"], url.as_str(), "{v}");
    assert_eq!(reloads[0]["from_digest"], d1.as_str(), "{v}");
    assert_eq!(reloads[0]["to_digest"], d2.as_str(), "{v}");
    let bad = v["validations"]
        .as_array()
        .expect("validations")
        .iter()
        .find(|x| x["digest"] == d_bad.as_str())
        .unwrap_or_else(|| panic!("no validation of the broken config: {v}"));
    assert_eq!(bad["ok"], false, "{v}");
    assert_eq!(bad["outcome"], "exit 1", "{v}");
    assert!(
        bad["output"]
            .as_str()
            .is_some_and(|o| o.contains("not a valid duration string")),
        "{v}"
    );
}
