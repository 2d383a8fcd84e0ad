//! The walkthrough: a ConfigMap update played end to end on this machine, with
//! no cluster and no root.
//!
//!     cargo run --release --example walkthrough
//!
//! The "pod" is a temp dir and the "kubelet" is this program: it writes the config
//! volume exactly as the kubelet does (tests/support/volume.rs, the emulation the
//! tests use: `..data` swapped to a new timestamped dir), starts the demo app
//! (examples/demo_server.rs) under `driftprobe run`, runs the readiness and liveness
//! probes every period and counts their failureThreshold as the kubelet does, and
//! restarts the "container" when liveness gives up. Three acts: a restart onto the
//! new config, a reload in place by SIGHUP, and a broken config held back by
//! `--validate`. Time is shrunk: a 1s period and a 3s grace window.
//!
//! Safety on a laptop: every probe gets `--pid` of the demo app this program
//! started (the default target, the container's entrypoint, would be the host's
//! init here) and `--state-dir` inside the temp dir; the environment of every child
//! is cleared (no `DRIFTPROBE_*` from your shell). Only its own children are ever
//! signalled or killed.

#[path = "../tests/support/volume.rs"]
mod volume;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};
use volume::ConfigMapVolume;

/// periodSeconds of both probes (10s in a real pod).
const PERIOD: Duration = Duration::from_secs(1);
/// `--grace` of liveness, and of readiness in act 1 (5m in a real pod).
const GRACE: &str = "3s";
/// Readiness in acts 2 and 3: a safety net that fails only if no reload happened.
const READINESS_GRACE_WITH_RELOAD: &str = "6s";
const LIVENESS_FAILURE_THRESHOLD: u32 = 3;
/// The longest any act waits for something, in probe periods.
const MAX_TICKS: u32 = 15;

const V1: &str = "greeting: hello\n";
const V2: &str = "greeting: bonjour\n";
const BROKEN: &str = "greeting hola\n";
const V3: &str = "greeting: hola\n";

fn main() -> ExitCode {
    match walkthrough() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("walkthrough: {e}");
            ExitCode::FAILURE
        }
    }
}

fn walkthrough() -> Result<(), String> {
    let bins = binaries()?;
    let tmp = tempfile::Builder::new()
        .prefix("driftprobe-walkthrough.")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let clock = Clock {
        start: Instant::now(),
        root: tmp.path().display().to_string(),
    };
    println!("driftprobe is an exec probe for Kubernetes. When the container starts it records a digest of the");
    println!("mounted ConfigMap/Secret files (the baseline); on every probe it compares the files with it.");
    println!(
        "The kubelet updates those files in place, but most apps read their config once, at start:"
    );
    println!("readiness and liveness fail once the difference outlasts --grace (the same window for both, so the");
    println!("pod leaves its Service only just before its restart), and the kubelet restarts the container onto");
    println!("the new config; or driftprobe reloads the app by a signal.");
    println!();
    println!(
        "This walkthrough plays a ConfigMap update on this machine, the way the kubelet does it."
    );
    println!(
        "The pod lives in $POD = {}; this program plays the kubelet and `kubectl edit`.",
        clock.root
    );
    println!(
        "Time is shrunk: probes every {}s (10s in a pod), --grace {GRACE} (minutes in a pod).",
        PERIOD.as_secs()
    );
    act_restart(&bins, &clock, tmp.path())?;
    act_reload(&bins, &clock, tmp.path())?;
    act_validate(&bins, &clock, tmp.path())?;
    println!();
    println!("What you saw:");
    println!("  1. The app reads its config once. driftprobe compared the files with the baseline `run` recorded,");
    println!("     counted down the grace window, then failed readiness (out of the Service) and liveness:");
    println!("     the kubelet restarted the container, which started with the new config.");
    println!("  2. With --on-drift reload, liveness sent SIGHUP to the app and adopted the new config: no restart.");
    println!("  3. With --validate, a broken edit never reached the app (`invalid:`, probes pass); the fix did.");
    println!(
        "Next: the pod spec in README.md (\"In a pod\"), examples/kustomize/, examples/helm/."
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The three acts
// ---------------------------------------------------------------------------

fn act_restart(bins: &Bins, clock: &Clock, root: &Path) -> Result<(), String> {
    let mut pod = Pod::new(bins, clock, root, "restart", Mode::Restart)?;
    pod.header("1/3 restart: the app only reads its config at start, so liveness restarts it (--on-drift fail, the default)");
    pod.deploy(V1)?;
    pod.edit(V2, "greeting: hello -> greeting: bonjour")?;
    pod.tick_until(|p| p.restarts == 1, "a restart")?;
    pod.tick_until(|p| p.ready, "readiness")?;
    pod.show_served()?;
    Ok(())
}

fn act_reload(bins: &Bins, clock: &Clock, root: &Path) -> Result<(), String> {
    let mut pod = Pod::new(bins, clock, root, "reload", Mode::Reload)?;
    pod.header("2/3 reload: the app re-reads its config on SIGHUP, so liveness reloads it in place (--on-drift reload)");
    pod.deploy(V1)?;
    pod.edit(V2, "greeting: hello -> greeting: bonjour")?;
    pod.tick_until(|p| p.last_liveness.starts_with("reloaded:"), "a reload")?;
    pod.wait_for_log("SIGHUP")?;
    pod.show_served()?;
    pod.expect_no_restart()
}

fn act_validate(bins: &Bins, clock: &Clock, root: &Path) -> Result<(), String> {
    let mut pod = Pod::new(bins, clock, root, "validate", Mode::Validate)?;
    pod.header("3/3 validate: a broken edit is held back by --validate (demo_server --check, like nginx -t)");
    pod.deploy(V1)?;
    pod.edit(
        BROKEN,
        "greeting: hello -> greeting hola (the colon is missing)",
    )?;
    pod.tick_until(|p| p.last_liveness.starts_with("invalid:"), "a validation")?;
    pod.tick()?;
    pod.show_served()?;
    pod.edit(V3, "fixed: greeting: hola")?;
    pod.tick_until(|p| p.last_liveness.starts_with("reloaded:"), "a reload")?;
    pod.wait_for_log("SIGHUP")?;
    pod.show_served()?;
    pod.expect_no_restart()
}

// ---------------------------------------------------------------------------
// The pod: a config volume, a container, two probes
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Restart,
    Reload,
    Validate,
}

#[derive(Clone, Copy)]
enum Kind {
    Liveness,
    Readiness,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
        }
    }
}

struct Pod<'a> {
    bins: &'a Bins,
    clock: &'a Clock,
    mode: Mode,
    vol: ConfigMapVolume,
    state_dir: PathBuf,
    port: u16,
    container: Option<Container>,
    restarts: u32,
    ready: bool,
    liveness_failures: u32,
    last_liveness: String,
    last_readiness: String,
    next_tick: Instant,
}

/// The running "container": `driftprobe run … -- demo_server …`, and its log.
struct Container {
    child: Child,
    log: Receiver<String>,
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<'a> Pod<'a> {
    fn new(
        bins: &'a Bins,
        clock: &'a Clock,
        root: &Path,
        name: &str,
        mode: Mode,
    ) -> Result<Pod<'a>, String> {
        let dir = root.join(name);
        Ok(Pod {
            bins,
            clock,
            mode,
            vol: ConfigMapVolume::new(dir.join("config")),
            state_dir: dir.join("state"),
            port: free_port()?,
            container: None,
            restarts: 0,
            ready: false,
            liveness_failures: 0,
            last_liveness: String::new(),
            last_readiness: String::new(),
            next_tick: Instant::now(),
        })
    }

    fn config_file(&self) -> PathBuf {
        self.vol.path().join("app.conf")
    }

    /// The probe's options for `kind` (the exec command of the pod spec).
    fn probe_args(&self, kind: Kind) -> Vec<String> {
        let mut args = vec![
            kind.name().to_string(),
            "--state-dir".into(),
            self.state_dir.display().to_string(),
            "--grace".into(),
        ];
        match (kind, self.mode) {
            (Kind::Readiness, Mode::Reload | Mode::Validate) => {
                args.push(READINESS_GRACE_WITH_RELOAD.into())
            }
            _ => args.push(GRACE.into()),
        }
        if let (Kind::Liveness, Mode::Reload | Mode::Validate) = (kind, self.mode) {
            args.extend(["--on-drift", "reload", "--signal", "HUP", "--pid"].map(String::from));
            args.push(match &self.container {
                Some(c) => c.child.id().to_string(),
                None => "APP_PID".into(), // the header, before the app starts
            });
        }
        if self.mode == Mode::Validate {
            args.push("--validate".into());
            args.push(format!(
                "{} --check {}",
                quote(&self.bins.app.display().to_string()),
                quote(&self.config_file().display().to_string())
            ));
        }
        args.push(self.vol.path().display().to_string());
        args
    }

    fn header(&self, title: &str) {
        println!();
        println!("== {title}");
        let show = |kind: Kind, period: &str| {
            let args: Vec<String> = self.probe_args(kind).iter().map(|a| quote(a)).collect();
            let cmd = self.clock.shorten(&self.bins.shorten(&args.join(" ")));
            println!("   {:<9}  driftprobe {cmd}", kind.name());
            println!("   {:<9}  (every {}s, {period})", "", PERIOD.as_secs());
        };
        show(Kind::Readiness, "failureThreshold 1");
        show(Kind::Liveness, "failureThreshold 3");
        if self.mode != Mode::Restart {
            println!(
                "   (--pid: the demo app's PID, so that nothing else on this machine is signalled;"
            );
            println!("    in a pod, leave it out: the default is the container's entrypoint;");
            println!(
                "    readiness has a longer window: it fails only if the reload does not happen)"
            );
        }
    }

    /// The ConfigMap is created, the kubelet mounts it and starts the
    /// container; the probes run until the pod is Ready.
    fn deploy(&mut self, content: &str) -> Result<(), String> {
        self.write(content)?;
        self.clock.say(
            "kubelet",
            format!(
                "mounts ConfigMap app-config at {}: app.conf -> ..data/app.conf, ..data -> {}",
                self.vol.path().display(),
                self.vol.data_target().unwrap_or_default()
            ),
        );
        self.start()?;
        self.show_served()?;
        self.tick_until(|p| p.ready, "readiness")
    }

    fn write(&self, content: &str) -> Result<(), String> {
        self.vol
            .write_with_hook(&[("app.conf", content)], false, |_| {})
            .map(|_| ())
            .map_err(|e| format!("cannot write the config volume: {e}"))
    }

    /// `kubectl edit configmap`, then the kubelet's atomic update of the volume.
    fn edit(&mut self, content: &str, what: &str) -> Result<(), String> {
        self.clock
            .say("kubectl", format!("edit configmap app-config: {what}"));
        self.write(content)?;
        self.clock.say(
            "kubelet",
            format!(
                "writes the new files to {}, swaps ..data to it (nobody tells the app)",
                self.vol.data_target().unwrap_or_default()
            ),
        );
        self.show_served()
    }

    /// Starts the container: `driftprobe run` records the baseline, then
    /// execs the demo app (same PID).
    fn start(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(&self.bins.driftprobe);
        clean_env(&mut cmd);
        cmd.arg("run")
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg(self.vol.path())
            .arg("--")
            .arg(&self.bins.app);
        if self.mode != Mode::Restart {
            cmd.arg("--reload-on-hup");
        }
        cmd.arg(self.config_file())
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let shown = format!(
            "driftprobe run {} -- demo_server{} {} {}",
            self.vol.path().display(),
            if self.mode == Mode::Restart {
                ""
            } else {
                " --reload-on-hup"
            },
            self.config_file().display(),
            self.port
        );
        self.clock
            .say("kubelet", format!("starts the container: {shown}"));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bins.driftprobe.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, log) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.container = Some(Container { child, log });
        self.ready = false;
        self.liveness_failures = 0;
        self.wait_for_log("serving")
    }

    /// Kills the container (the kubelet's SIGKILL after the grace period).
    fn stop(&mut self) {
        if let Some(mut c) = self.container.take() {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
    }

    /// Prints the container's log lines until one contains `needle`.
    fn wait_for_log(&mut self, needle: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = self.container.as_mut().ok_or("no container")?;
            let left = deadline.saturating_duration_since(Instant::now());
            match c.log.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.clock.say("container", line);
                    if found {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("the container logged no {needle:?} within 10s"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = c.child.wait().map_err(|e| e.to_string())?;
                    return Err(format!(
                        "the container exited ({status}) before logging {needle:?}"
                    ));
                }
            }
        }
    }

    fn print_log(&mut self) {
        while let Some(line) = self.container.as_ref().and_then(|c| c.log.try_recv().ok()) {
            self.clock.say("container", line);
        }
    }

    /// What the app answers on `GET /` right now.
    fn show_served(&mut self) -> Result<(), String> {
        self.print_log();
        let body = http_get(self.port)?;
        self.clock
            .say("app", format!("GET / answers {:?}", body.trim_end()));
        Ok(())
    }

    /// One probe period: liveness, then readiness, as the kubelet runs them.
    fn tick(&mut self) -> Result<(), String> {
        let now = Instant::now();
        if self.next_tick > now {
            thread::sleep(self.next_tick - now);
        }
        self.next_tick = Instant::now() + PERIOD;
        self.print_log();

        let (ok, line) = self.probe(Kind::Liveness)?;
        self.liveness_failures = if ok { 0 } else { self.liveness_failures + 1 };
        let note = if ok {
            String::new()
        } else {
            format!(
                "   failure {}/{LIVENESS_FAILURE_THRESHOLD}",
                self.liveness_failures
            )
        };
        self.show(Kind::Liveness, ok, &line, &note);
        self.last_liveness = line;

        if self.liveness_failures >= LIVENESS_FAILURE_THRESHOLD {
            self.restarts += 1;
            self.clock.say(
                "kubelet",
                format!(
                    "liveness failed {LIVENESS_FAILURE_THRESHOLD} times in a row: kills the container and starts a new one (restarts: {})",
                    self.restarts
                ),
            );
            self.stop();
            return self.start();
        }

        let (ok, line) = self.probe(Kind::Readiness)?;
        let note = match (self.ready, ok) {
            (false, true) => "   -> Ready: in the Service's endpoints",
            (true, false) => "   -> NotReady: out of the Service's endpoints",
            _ => "",
        };
        self.show(Kind::Readiness, ok, &line, note);
        self.ready = ok;
        self.last_readiness = line;
        Ok(())
    }

    /// Prints a probe's result, unless it repeats the previous `ok:` line.
    fn show(&self, kind: Kind, ok: bool, line: &str, note: &str) {
        let last = match kind {
            Kind::Liveness => &self.last_liveness,
            Kind::Readiness => &self.last_readiness,
        };
        if line == last && note.is_empty() {
            return;
        }
        let code = if ok { "exit 0" } else { "exit 1" };
        self.clock.say(kind.name(), format!("{code}  {line}{note}"));
    }

    /// Runs one probe as the kubelet's exec would: (passed, stdout line).
    fn probe(&self, kind: Kind) -> Result<(bool, String), String> {
        let mut cmd = Command::new(&self.bins.driftprobe);
        clean_env(&mut cmd);
        let out = cmd
            .args(self.probe_args(kind))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run the {} probe: {e}", kind.name()))?;
        for w in String::from_utf8_lossy(&out.stderr).lines() {
            self.clock.say(kind.name(), w);
        }
        let line = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        Ok((out.status.success(), line))
    }

    /// Probe periods until `done` holds, at most [`MAX_TICKS`].
    fn tick_until(&mut self, done: impl Fn(&Self) -> bool, what: &str) -> Result<(), String> {
        for _ in 0..MAX_TICKS {
            self.tick()?;
            if done(self) {
                return Ok(());
            }
        }
        Err(format!("no {what} after {MAX_TICKS} probe periods"))
    }

    fn expect_no_restart(&self) -> Result<(), String> {
        match self.restarts {
            0 => Ok(()),
            n => Err(format!(
                "the container was restarted {n} times, expected none"
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Output and helpers
// ---------------------------------------------------------------------------

/// The timeline: seconds since the start, who, what.
struct Clock {
    start: Instant,
    /// The temp dir, shown as `$POD`.
    root: String,
}

impl Clock {
    fn say(&self, who: &str, what: impl AsRef<str>) {
        let t = self.start.elapsed().as_secs_f64();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{t:6.1}s  {who:<9}  {}", self.shorten(what.as_ref()));
        let _ = out.flush();
    }

    fn shorten(&self, text: &str) -> String {
        text.replace(&self.root, "$POD")
    }
}

/// The two programs the walkthrough runs.
struct Bins {
    driftprobe: PathBuf,
    app: PathBuf,
}

impl Bins {
    /// Shows the programs by name rather than by their path under target/.
    fn shorten(&self, text: &str) -> String {
        text.replace(&self.app.display().to_string(), "demo_server")
    }
}

/// `driftprobe` and `demo_server`, built with the same profile as this
/// example: under `cargo run` they are (re)built first.
fn binaries() -> Result<Bins, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let examples = exe.parent().ok_or("no examples dir")?;
    let profile = examples.parent().ok_or("no profile dir")?;
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = Command::new(cargo);
        build.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--bin",
            "driftprobe",
            "--example",
            "demo_server",
        ]);
        if profile.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build failed ({status})"));
        }
    }
    let bins = Bins {
        driftprobe: profile.join("driftprobe"),
        app: examples.join("demo_server"),
    };
    for b in [&bins.driftprobe, &bins.app] {
        if !b.is_file() {
            return Err(format!(
                "{} is not built; run the walkthrough with: cargo run --release --example walkthrough",
                b.display()
            ));
        }
    }
    Ok(bins)
}

/// `s` as a shell would need it written: in single quotes if it holds a
/// space or a quote (the `--validate` command is split the same way).
fn quote(s: &str) -> String {
    if s.contains([' ', '\'', '"']) {
        format!("'{}'", s.replace('\'', "'\\''"))
    } else {
        s.to_string()
    }
}

/// Only PATH is kept: no `DRIFTPROBE_*` variable of the caller's shell may
/// change what the probes do (or which process they signal).
fn clean_env(cmd: &mut Command) {
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

fn http_get(port: u16) -> Result<String, String> {
    let fail = |e: std::io::Error| format!("GET http://127.0.0.1:{port}/ failed: {e}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(fail)?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(fail)?;
    let mut response = String::new();
    s.read_to_string(&mut response).map_err(fail)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default())
}
