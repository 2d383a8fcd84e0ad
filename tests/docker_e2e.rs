//! Docker end-to-end test: driftprobe used the way a pod uses it, with the
//! kubelet's part played by this test.
//!
//! - Images are built `FROM scratch` (no registry needed) from the static binaries
//!   of `scripts/static-build.sh` (target/static/amd64): the probe image with
//!   `Dockerfile.static --target prebuilt-amd64`, the app image from `examples/demo_server.rs` (a server that reads
//!   its config once and serves it on 127.0.0.1).
//! - "Init container": `driftprobe install /probe/driftprobe` into a named volume
//!   backed by a 0777 host dir, as an emptyDir is.
//! - App container: the volume at /probe (read-only) and a bind-mounted config dir
//!   written by the kubelet-faithful ConfigMap emulation of tests/support (bind
//!   mounts update live, like a ConfigMap volume). `--network host`.
//! - Liveness: `docker exec … /probe/driftprobe liveness --grace …` every period; on
//!   `FAILURE_THRESHOLD` consecutive failures the container is removed and created
//!   again (a Kubernetes restart is a new container: fresh writable layer, volumes
//!   kept), never `docker restart`.
//!
//! Asserted: after a config change the app is restarted exactly once, not before
//! the grace window, serves the new config over HTTP, and is not restarted again.
//! The whole scenario runs under each kubelet of `support::KUBELETS`: without
//! fsGroup, with the v1.20 ownership pass before every probe (ctimes move, issue
//! 18), and with the ownership set inside the atomic writer.
//!
//! Skipped with a message when docker cannot run or the static binaries are
//! missing, unless `DRIFTPROBE_REQUIRE_E2E=1` (set by .ci/run), which turns every
//! skip into a failure.

mod support;

use std::env;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{ConfigMapVolume, Kubelet, KUBELETS};

/// `--grace` of the liveness probe.
const GRACE: Duration = Duration::from_secs(4);
/// `periodSeconds`.
const PERIOD: Duration = Duration::from_secs(1);
/// `failureThreshold`.
const FAILURE_THRESHOLD: u32 = 2;
/// `timeoutSeconds` (generous: the machine may be busy compiling).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the app may take to answer HTTP after its container starts.
const APP_START_TIMEOUT: Duration = Duration::from_secs(15);

/// Where scripts/static-build.sh leaves the binaries this machine runs, under
/// the target dir.
const STATIC: &str = "static/amd64";
const CONFIG_KEY: &str = "config.txt";

#[test]
fn config_change_restarts_app_once_after_grace() {
    let Some(bins) = preflight() else { return };
    for kubelet in KUBELETS {
        eprintln!("kubelet: {}", kubelet.name);
        let mut res = Resources::new();
        let mut cluster = Cluster::setup(&bins, &mut res, kubelet);
        scenario(&mut cluster);
    }
}

fn scenario(cluster: &mut Cluster) {
    // Steady state: v1 served, every probe passes with "ok:".
    cluster.start_app();
    cluster.wait_for_body("v1\n");
    for _ in 0..3 {
        let p = cluster.tick();
        cluster.check(
            p.code == 0 && p.line.starts_with("ok:"),
            "probe before the change must pass with ok:",
        );
    }
    cluster.check(cluster.restarts.is_empty(), "no restart before the change");

    // The ConfigMap changes; the kubelet rewrites the volume atomically.
    let changed_at = Instant::now();
    cluster.volume.write(&[(CONFIG_KEY, "v2\n")]);
    cluster.note("config changed to v2");

    let deadline = changed_at + GRACE + PERIOD * (FAILURE_THRESHOLD + 10);
    while cluster.restarts.is_empty() && Instant::now() < deadline {
        let p = cluster.tick();
        if p.at < changed_at + GRACE {
            cluster.check(p.code == 0, "a probe inside the grace window must pass");
        }
        if p.code == 0 {
            cluster.check(
                p.line.starts_with("drift:") || p.line.starts_with("ok:"),
                "a passing probe prints ok: or drift:",
            );
        } else {
            cluster.check(
                p.code == 1 && p.line.starts_with("drift:"),
                "a failing probe exits 1 with drift:",
            );
        }
    }
    cluster.check(
        cluster.restarts.len() == 1,
        "the app must be restarted after the grace window",
    );
    let restarted_after = cluster.restarts[0] - changed_at;
    cluster.check(
        restarted_after >= GRACE,
        "the restart must not come before the grace window ends",
    );

    // The new container starts with the new config.
    cluster.wait_for_body("v2\n");

    // And stays: no second restart, probes pass with "ok:" well past another grace window.
    let until = Instant::now() + GRACE + PERIOD * (FAILURE_THRESHOLD + 2);
    while Instant::now() < until {
        let p = cluster.tick();
        cluster.check(
            p.code == 0 && p.line.starts_with("ok:"),
            "probes after the restart must pass with ok:",
        );
    }
    cluster.check(
        cluster.restarts.len() == 1,
        "the app must be restarted exactly once",
    );
    cluster.check(
        cluster.http_body().as_deref() == Some("v2\n"),
        "the app still serves v2",
    );
    cluster.note(&format!(
        "restart came {restarted_after:?} after the change (grace {GRACE:?})"
    ));
    eprintln!("{}", cluster.log.join("\n"));
}

// ---------------------------------------------------------------------------
// Preflight: skip only when docker or the binaries are genuinely unavailable.
// ---------------------------------------------------------------------------

struct Binaries {
    driftprobe: PathBuf,
    demo_server: PathBuf,
}

fn preflight() -> Option<Binaries> {
    let skip = |reason: String| support::skip_e2e("docker e2e test", &reason);

    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            skip(format!(
                "`docker info` failed (is dockerd running?): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        Err(err) => {
            skip(format!("cannot run the docker client: {err}"));
            return None;
        }
    }

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let release = target_dir.join(STATIC);
    let bins = Binaries {
        driftprobe: release.join("driftprobe"),
        demo_server: release.join("demo_server"),
    };
    for bin in [&bins.driftprobe, &bins.demo_server] {
        if !bin.is_file() {
            skip(format!(
                "static binary {} is missing: run scripts/static-build.sh first (scripts/test.sh does)",
                bin.display()
            ));
            return None;
        }
    }
    Some(bins)
}

// ---------------------------------------------------------------------------
// The pod and the kubelet's probe loop.
// ---------------------------------------------------------------------------

/// One probe run, as the kubelet sees it.
struct Probe {
    at: Instant,
    code: i32,
    line: String,
}

struct Cluster {
    app_image: String,
    app_name: String,
    probe_volume: String,
    volume: ConfigMapVolume,
    port: u16,
    start: Instant,
    consecutive_failures: u32,
    restarts: Vec<Instant>,
    log: Vec<String>,
}

impl Cluster {
    /// Builds both images, creates the volumes and runs the init container.
    fn setup(bins: &Binaries, res: &mut Resources, kubelet: Kubelet) -> Cluster {
        let id = format!(
            "driftprobe-e2e-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let work = res.dir.path();

        // Probe image: Dockerfile.static's prebuilt-amd64 stage, in a context
        // holding only that file and the static binary.
        let ctx = work.join("probe-context");
        let bin_dir = ctx.join("target").join(STATIC);
        fs::create_dir_all(&bin_dir).unwrap();
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile.static"),
            ctx.join("Dockerfile.static"),
        )
        .unwrap();
        fs::copy(&bins.driftprobe, bin_dir.join("driftprobe")).unwrap();
        let probe_image = format!("{id}-probe:latest");
        docker_build(
            &ctx,
            &[
                "--target",
                "prebuilt-amd64",
                "-f",
                "Dockerfile.static",
                "-t",
                &probe_image,
            ],
        );
        res.images.push(probe_image.clone());

        // App image: the demo server and a world-writable /tmp (as in distroless
        // images; ADD of a tar keeps mode 1777, COPY of a dir would not).
        let ctx = work.join("app-context");
        fs::create_dir_all(ctx.join("tmp")).unwrap();
        fs::set_permissions(ctx.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::copy(&bins.demo_server, ctx.join("demo_server")).unwrap();
        run_ok(Command::new("tar").current_dir(&ctx).args([
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-cf",
            "tmp.tar",
            "tmp",
        ]));
        fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY demo_server /demo_server\nADD tmp.tar /\nUSER 65532\nENTRYPOINT [\"/demo_server\"]\n",
        )
        .unwrap();
        let app_image = format!("{id}-app:latest");
        docker_build(&ctx, &["-t", &app_image]);
        res.images.push(app_image.clone());

        // emptyDir: a 0777 host dir, as a named volume that outlives containers.
        let empty_dir = work.join("probe-emptydir");
        fs::create_dir(&empty_dir).unwrap();
        fs::set_permissions(&empty_dir, fs::Permissions::from_mode(0o777)).unwrap();
        let probe_volume = format!("{id}-probe");
        let device = format!("device={}", empty_dir.display());
        docker_ok(&[
            "volume",
            "create",
            "--driver",
            "local",
            "--opt",
            "type=none",
            "--opt",
            "o=bind",
            "--opt",
            &device,
            &probe_volume,
        ]);
        res.volumes.push(probe_volume.clone());

        // Init container: the image's own user (65532), nothing but the binary.
        let init_name = format!("{id}-init");
        res.containers.push(init_name.clone());
        let mount = format!("{probe_volume}:/probe");
        let out = docker(&[
            "run",
            "--name",
            &init_name,
            "-v",
            &mount,
            &probe_image,
            "install",
            "/probe/driftprobe",
        ]);
        assert!(
            out.status.success(),
            "init container `driftprobe install /probe/driftprobe` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let installed = empty_dir.join("driftprobe");
        let mode = fs::metadata(&installed)
            .unwrap_or_else(|e| panic!("install did not create {}: {e}", installed.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "installed probe must have mode 0755");
        assert_eq!(
            fs::read(&installed).unwrap(),
            fs::read(&bins.driftprobe).unwrap(),
            "installed probe must be a byte copy of the binary"
        );

        // The ConfigMap volume, written before the pod starts.
        let mut volume = ConfigMapVolume::new(work.join("configmap"));
        volume.fs_group = kubelet.fs_group;
        volume.write(&[(CONFIG_KEY, "v1\n")]);
        // The kubelet mounts volumes before it creates the container. The lazy
        // baseline compares ctimes with PID 1's start at whole-second precision,
        // so leave a clear gap, as on a real node.
        support::sleep_past_second();

        // A free loopback port for the app (host network).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();

        let app_name = format!("{id}-app");
        res.containers.push(app_name.clone());
        Cluster {
            app_image,
            app_name,
            probe_volume,
            volume,
            port,
            start: Instant::now(),
            consecutive_failures: 0,
            restarts: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Creates and starts the app container (a new one each time).
    fn start_app(&mut self) {
        let probe_mount = format!("{}:/probe:ro", self.probe_volume);
        let config_mount = format!("{}:/config:ro", self.volume.path().display());
        let config = format!("/config/{CONFIG_KEY}");
        let port = self.port.to_string();
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &self.app_name,
            "--network",
            "host",
            "-v",
            &probe_mount,
            "-v",
            &config_mount,
            &self.app_image,
            &config,
            &port,
        ]);
        self.note("app container created");
    }

    /// One period of the kubelet's liveness worker: wait, exec the probe, count
    /// failures, and re-create the container at the threshold.
    fn tick(&mut self) -> Probe {
        sleep(PERIOD);
        // A pod sync (the fsGroup ownership pass, for a v1.20 kubelet).
        self.volume.sync();
        let probe = self.exec_probe();
        self.note(&format!("probe exit {}: {}", probe.code, probe.line));
        if probe.code == 0 {
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures += 1;
            if self.consecutive_failures >= FAILURE_THRESHOLD {
                self.consecutive_failures = 0;
                self.note(
                    "liveness failure threshold reached: killing and re-creating the container",
                );
                docker_ok(&["rm", "-f", &self.app_name]);
                self.restarts.push(Instant::now());
                self.start_app();
            }
        }
        probe
    }

    fn exec_probe(&mut self) -> Probe {
        let grace = format!("{}s", GRACE.as_secs());
        let at = Instant::now();
        let mut child = Command::new("docker")
            .args([
                "exec",
                &self.app_name,
                "/probe/driftprobe",
                "liveness",
                "--grace",
                &grace,
                "/config",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn docker exec");
        // timeoutSeconds: a probe that hangs counts as a failure.
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if at.elapsed() > PROBE_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            sleep(Duration::from_millis(10));
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let (code, line) = match status {
            None => (-1, format!("probe timed out after {PROBE_TIMEOUT:?}")),
            Some(status) => (
                status.code().unwrap_or(-1),
                stdout.lines().next().unwrap_or("").to_string(),
            ),
        };
        if !stderr.trim().is_empty() {
            self.note(&format!("probe stderr: {}", stderr.trim()));
        }
        Probe { at, code, line }
    }

    fn http_body(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream
            .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    }

    fn wait_for_body(&mut self, want: &str) {
        let deadline = Instant::now() + APP_START_TIMEOUT;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.http_body();
            if last.as_deref() == Some(want) {
                self.note(&format!("app serves {want:?}"));
                return;
            }
            sleep(Duration::from_millis(100));
        }
        self.check(
            false,
            &format!("app must serve {want:?} over HTTP, last answer {last:?}"),
        );
    }

    /// Fails the test with the whole timeline and the app's log.
    fn check(&self, cond: bool, what: &str) {
        if cond {
            return;
        }
        let logs = docker(&["logs", &self.app_name]);
        panic!(
            "{what}\n--- timeline ---\n{}\n--- docker logs {} ---\n{}{}",
            self.log.join("\n"),
            self.app_name,
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr)
        );
    }

    fn note(&mut self, what: &str) {
        let line = format!("{:>7.2}s  {what}", self.start.elapsed().as_secs_f64());
        self.log.push(line);
    }
}

// ---------------------------------------------------------------------------
// Docker helpers and cleanup.
// ---------------------------------------------------------------------------

/// Everything the test created; removed on drop, also when the test panics.
struct Resources {
    dir: tempfile::TempDir,
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

impl Resources {
    fn new() -> Resources {
        Resources {
            dir: tempfile::tempdir().expect("temp dir"),
            containers: Vec::new(),
            volumes: Vec::new(),
            images: Vec::new(),
        }
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = docker(&["rm", "-f", name]);
        }
        for name in &self.volumes {
            let _ = docker(&["volume", "rm", "-f", name]);
        }
        for name in &self.images {
            let _ = docker(&["rmi", "-f", name]);
        }
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

fn docker_ok(args: &[&str]) -> String {
    run_ok(Command::new("docker").args(args))
}

fn docker_build(context: &Path, args: &[&str]) {
    run_ok(
        Command::new("docker")
            .arg("build")
            .arg("-q")
            .args(args)
            .arg(context),
    );
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
