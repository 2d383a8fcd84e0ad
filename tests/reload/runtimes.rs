//! `--on-drift reload` by signal against real Go and Java programs (issue
//! 17 §2): both runtimes catch SIGHUP (`SigCgt` has it) and exit on it
//! unless the program installed its own handler. Without
//! `--signal-handled` the probe must not signal them; with it, a program
//! that dies of the signal is a failed reload, never `reloaded:`.
//!
//! The programs are built here, into the test's temp dir, from the
//! standard library only (Go with `GOPROXY=off`, `GOTOOLCHAIN=local` and a
//! build cache under cargo's target dir; Java with `javac`): no network.
//! Skips (with a message) when `go` or `javac`/`java` is missing, unless
//! `DRIFTPROBE_REQUIRE_E2E=1`, which makes a skip a failure.

use super::common::*;
use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

const V1: [(&str, &str); 1] = [("app.yaml", "v: 1\n")];
const V2: [(&str, &str); 1] = [("app.yaml", "v: 2\n")];

/// The Go "app": `server GOT [notify]` writes `GOT.ready` once running,
/// and with `notify` calls signal.Notify for SIGHUP, appending a `got`
/// line to GOT on each one. Without it, the runtime's default applies.
const GO_APP: &str = r#"package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	got := os.Args[1]
	if len(os.Args) > 2 && os.Args[2] == "notify" {
		c := make(chan os.Signal, 4)
		signal.Notify(c, syscall.SIGHUP)
		go func() {
			for range c {
				f, err := os.OpenFile(got, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				if err == nil {
					f.WriteString("got\n")
					f.Close()
				}
			}
		}()
	}
	os.WriteFile(got+".ready", []byte("ready\n"), 0o644)
	for {
		time.Sleep(time.Second)
	}
}
"#;

/// The Java "app": `App GOT [handle]`, the same with sun.misc.Signal.
const JAVA_APP: &str = r#"import java.nio.file.*;

public class App {
    public static void main(String[] args) throws Exception {
        final Path got = Paths.get(args[0]);
        if (args.length > 1 && args[1].equals("handle")) {
            sun.misc.Signal.handle(new sun.misc.Signal("HUP"), s -> {
                try {
                    Files.write(got, "got\n".getBytes(), StandardOpenOption.CREATE, StandardOpenOption.APPEND);
                } catch (Exception e) {
                }
            });
        }
        Files.write(Paths.get(args[0] + ".ready"), "ready\n".getBytes());
        Thread.sleep(Long.MAX_VALUE);
    }
}
"#;

fn find(candidates: &[&str], name: &str) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            let out = StdCommand::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (!s.is_empty()).then(|| PathBuf::from(s))
        })
}

/// Builds the Go app as `DIR/server`; `None` (after saying why) without Go.
fn build_go(test: &str, dir: &Path) -> Option<PathBuf> {
    let Some(go) = find(&["/usr/local/go/bin/go", "/usr/lib/go/bin/go"], "go") else {
        skip_e2e(test, "go is not installed");
        return None;
    };
    let src = dir.join("gosrc");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("main.go"), GO_APP).unwrap();
    fs::write(src.join("go.mod"), "module server\n\ngo 1.21\n").unwrap();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build-cache");
    let out = dir.join("server");
    let built = StdCommand::new(&go)
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .env("GOCACHE", &cache)
        .env("GOPATH", dir.join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .output()
        .expect("run go build");
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(out)
}

/// Compiles the Java app in `DIR`; `None` (after saying why) without a JDK.
fn build_java(test: &str, dir: &Path) -> Option<PathBuf> {
    let (Some(javac), Some(java)) = (find(&[], "javac"), find(&[], "java")) else {
        skip_e2e(test, "javac/java (a JDK) is not installed");
        return None;
    };
    let src = dir.join("App.java");
    fs::write(&src, JAVA_APP).unwrap();
    let built = StdCommand::new(javac)
        .args(["-nowarn", "-d"])
        .arg(dir)
        .arg(&src)
        .output()
        .expect("run javac");
    assert!(
        built.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(java)
}

/// `--on-drift reload` with grace 0 (the volume is added by `on_vol`).
fn reload_opts<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--grace", "0", "--on-drift", "reload"];
    v.extend_from_slice(extra);
    v
}

fn ready(got: &Path) -> bool {
    let mut r = got.as_os_str().to_owned();
    r.push(".ready");
    Path::new(&r).exists()
}

fn alive(pid: u32, comm: &str) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let running = stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'));
    running && stat.contains(&format!("({comm})"))
}

/// The app as PID 1 of a PID namespace, started with `argv`, ready.
fn pid1(argv: &[&str], comm: &str, got: &Path) -> Ns {
    pid1_logging_to(argv, comm, got, Stdio::null())
}

/// [`pid1`] with its stdout (the container's log) on `stdout`.
fn pid1_logging_to(argv: &[&str], comm: &str, got: &Path, stdout: Stdio) -> Ns {
    let ns = Ns::start_with_stdout(&["--pid", "--mount-proc"], argv, comm, stdout);
    assert!(
        wait_until(Duration::from_secs(20), || ready(got)),
        "{argv:?} never became ready"
    );
    ns
}

/// A Go program without signal.Notify, as the container's PID 1: today's
/// probe sent SIGHUP and said `reloaded:` while the app exited. Now: the
/// first probe warns, the reload is refused with the reason, and the app
/// lives; with --signal-handled the app dies and the probe never says
/// `reloaded:` (PID 1's death ends the namespace, the probe with it).
#[test]
fn go_without_notify_is_not_signalled() {
    let test = "go_without_notify_is_not_signalled";
    let env = TestEnv::new();
    let Some(server) = build_go(test, env.tmp.path()) else {
        return;
    };
    env.vol.write(&V1);
    let got = env.path("got");
    let log = env.path("container.log");
    let ns = pid1_logging_to(
        &[server.to_str().unwrap(), got.to_str().unwrap()],
        "server",
        &got,
        Stdio::from(fs::File::create(&log).unwrap()),
    );
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);

    // The first probe says it at once, as a misconfiguration: on stderr
    // and in the container's log once, and status keeps saying it.
    let first = ns.on_vol(&env, "liveness", &reload_opts(&[]));
    first.ok();
    let warning =
        "misconfigured: --on-drift reload will not signal: pid 1 (server) is a Go program, which exits on \
                   SIGHUP unless it calls signal.Notify for it";
    assert!(first.stderr.contains(warning), "{first}");
    let again = ns.on_vol(&env, "liveness", &reload_opts(&[]));
    assert!(!again.stderr.contains("Go program"), "said once: {again}");
    let status = ns.on_vol(&env, "status", &[]);
    assert!(
        status.stdout.contains(&format!("liveness: {warning}")),
        "{status}"
    );
    assert_eq!(status.stdout.matches("Go program").count(), 1, "{status}");
    let logged = fs::read_to_string(&log).unwrap();
    assert_eq!(logged.matches("Go program").count(), 1, "{logged}");
    assert!(
        logged.contains(&format!("driftprobe liveness: {warning}")),
        "{logged}"
    );

    env.vol.write(&V2);
    for _ in 0..2 {
        let out = ns.on_vol(&env, "liveness", &reload_opts(&[]));
        out.expect(1, "drift:")
            .contains("1 changed (app.yaml)")
            .contains(
                "; not reloaded: pid 1 (server) is a Go program, which exits on SIGHUP unless it calls \
                 signal.Notify for it (pass --signal-handled if it does, or use --reload-url)",
            );
        not_reloaded(&out);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(ns.init_pid, "server"), "the Go app must live");
    let v = json(&ns.on_vol(&env, "status", &["--json"]));
    assert_eq!(v["state"], "drift", "{v}");
    assert_eq!(v["reloads"].as_array().map(Vec::len), Some(0), "{v}");

    // Told it handles HUP when it does not: the signal kills PID 1, the
    // kernel kills everything in its namespace, the probe included; it
    // must not have said `reloaded:` first.
    let out = ns.on_vol(&env, "liveness", &reload_opts(&["--signal-handled"]));
    assert_ne!(out.code, 0, "{out}");
    not_reloaded(&out);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(ns.init_pid, "server")),
        "the Go app was expected to die of SIGHUP"
    );
}

/// The same Go program as a process other than PID 1 (`--pid`): with
/// --signal-handled it is signalled, dies, and the probe says so:
/// `reload failed: … exited after SIGHUP`; nothing is adopted or given.
#[test]
fn go_that_dies_of_the_signal_is_a_failed_reload() {
    let test = "go_that_dies_of_the_signal_is_a_failed_reload";
    let env = TestEnv::new();
    let Some(server) = build_go(test, env.tmp.path()) else {
        return;
    };
    env.vol.write(&V1);
    env.init();
    let got = env.path("got");
    let app = Proc::spawn(StdCommand::new(&server).arg(&got));
    assert!(wait_until(Duration::from_secs(10), || ready(&got)));
    let pid = app.pid().to_string();
    env.vol.write(&V2);
    // Refused without the flag.
    let out = env.on_vol("liveness", &reload_opts(&["--pid", &pid]));
    out.expect(1, "drift:").contains(&format!(
        "not reloaded: pid {pid} (server) is a Go program, which exits on SIGHUP"
    ));
    assert!(alive(app.pid(), "server"));
    let out = env.on_vol(
        "liveness",
        &reload_opts(&["--pid", &pid, "--signal-handled"]),
    );
    out.expect(1, "drift:").contains(&format!(
        "; reload failed: pid {pid} (server) exited after SIGHUP"
    ));
    not_reloaded(&out);
    assert!(!alive(app.pid(), "server"));
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["state"], "drift", "{v}");
    assert_eq!(v["reloads"].as_array().map(Vec::len), Some(0), "{v}");
    // Nothing was given to the app: the shared file records no reload.
    let shared = fs::read_to_string(env.state_dir.join("container.shared")).unwrap_or_default();
    assert!(!shared.contains("\"reload\""), "{shared}");
    // The zombie it left (not reaped yet) is no process to signal.
    let out = env.on_vol(
        "liveness",
        &reload_opts(&["--pid", &pid, "--signal-handled"]),
    );
    out.expect(1, "drift:")
        .contains(&format!("reload failed: no process {pid}"));
}

/// A Go program that calls signal.Notify(SIGHUP), with --signal-handled:
/// reloaded, and still the same process.
#[test]
fn go_with_notify_and_signal_handled_is_reloaded() {
    let test = "go_with_notify_and_signal_handled_is_reloaded";
    let env = TestEnv::new();
    let Some(server) = build_go(test, env.tmp.path()) else {
        return;
    };
    env.vol.write(&V1);
    let got = env.path("got");
    let ns = pid1(
        &[server.to_str().unwrap(), got.to_str().unwrap(), "notify"],
        "server",
        &got,
    );
    let start = fs::read_to_string(format!("/proc/{}/stat", ns.init_pid)).unwrap();
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    let first = ns.on_vol(&env, "liveness", &reload_opts(&["--signal-handled"]));
    first.ok();
    assert!(!first.stderr.contains("Go program"), "{first}");
    env.vol.write(&V2);
    let out = ns.on_vol(&env, "liveness", &reload_opts(&["--signal-handled"]));
    out.expect(0, "reloaded:")
        .contains("sent SIGHUP to pid 1 (server)");
    assert!(
        wait_until(Duration::from_secs(5), || hups(&got) == 1),
        "the Go app never got its SIGHUP"
    );
    let now = fs::read_to_string(format!("/proc/{}/stat", ns.init_pid)).unwrap();
    let starttime = |s: &str| {
        s.rsplit_once(") ")
            .map(|(_, r)| r.split(' ').nth(19).map(str::to_string))
    };
    assert_eq!(starttime(&start), starttime(&now), "the same process");
    assert!(alive(ns.init_pid, "server"));
    ns.on_vol(&env, "liveness", &reload_opts(&["--signal-handled"]))
        .ok();
}

/// A plain JVM (shutdown hooks on HUP) as PID 1: refused, alive. The same
/// app with sun.misc.Signal.handle(HUP) and --signal-handled: reloaded.
#[test]
fn jvm_is_signalled_only_when_the_app_handles_it() {
    let test = "jvm_is_signalled_only_when_the_app_handles_it";
    let env = TestEnv::new();
    let dir = env.tmp.path().to_path_buf();
    let Some(java) = build_java(test, &dir) else {
        return;
    };
    let java = java.to_str().unwrap().to_string();
    let cp = dir.to_str().unwrap().to_string();
    let jvm = |got: &Path, extra: &[&str]| -> Ns {
        let mut argv = vec![
            java.as_str(),
            "-Xmx64m",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            cp.as_str(),
            "App",
            got.to_str().unwrap(),
        ];
        argv.extend_from_slice(extra);
        pid1(&argv, "java", got)
    };

    env.vol.write(&V1);
    let got = env.path("got-default");
    let ns = jvm(&got, &[]);
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    let first = ns.on_vol(&env, "liveness", &reload_opts(&[]));
    first.ok();
    assert!(first.stderr.contains("is a JVM"), "{first}");
    env.vol.write(&V2);
    let out = ns.on_vol(&env, "liveness", &reload_opts(&[]));
    out.expect(1, "drift:").contains(
        "; not reloaded: pid 1 (java) is a JVM, which runs its shutdown hooks and exits on SIGHUP unless the \
         app handles it with sun.misc.Signal (pass --signal-handled if it does, or use --reload-url",
    );
    not_reloaded(&out);
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(ns.init_pid, "java"), "the JVM must live");
    drop(ns);

    // A fresh container whose app handles HUP itself.
    let env = TestEnv::new();
    env.vol.write(&V1);
    let got = env.path("got-handled");
    let ns = jvm(&got, &["handle"]);
    assert_eq!(ns.on_vol(&env, "init", &[]).code, 0);
    ns.on_vol(&env, "liveness", &reload_opts(&["--signal-handled"]))
        .ok();
    env.vol.write(&V2);
    let out = ns.on_vol(&env, "liveness", &reload_opts(&["--signal-handled"]));
    out.expect(0, "reloaded:")
        .contains("sent SIGHUP to pid 1 (java)");
    assert!(
        wait_until(Duration::from_secs(5), || hups(&got) == 1),
        "the JVM's handler never ran"
    );
    assert!(alive(ns.init_pid, "java"));

    // A plain JVM that is not PID 1, signalled on a false --signal-handled:
    // its shutdown takes a few ms, and the probe sees it go.
    let env = TestEnv::new();
    env.vol.write(&V1);
    env.init();
    let got = env.path("got-host");
    let app = Proc::spawn(
        StdCommand::new(&java)
            .args(["-Xmx64m", "-XX:TieredStopAtLevel=1", "-cp", &cp, "App"])
            .arg(&got),
    );
    assert!(wait_until(Duration::from_secs(20), || ready(&got)));
    let pid = app.pid().to_string();
    env.vol.write(&V2);
    let out = env.on_vol(
        "liveness",
        &reload_opts(&["--pid", &pid, "--signal-handled"]),
    );
    out.expect(1, "drift:").contains(&format!(
        "; reload failed: pid {pid} (java) exited after SIGHUP"
    ));
    not_reloaded(&out);
}

/// A probe killed while it waits to see the target survive (the kubelet's
/// timeout) leaves its claim marked sent. The next probe takes such a
/// claim as a reload done only if the target still runs: a Go program
/// that died of the signal (a zombie until reaped, then gone) was given
/// nothing, so the drift stands and the probe fails.
#[test]
fn a_killed_probe_whose_target_died_is_not_taken_as_a_reload() {
    let test = "a_killed_probe_whose_target_died_is_not_taken_as_a_reload";
    if !StdCommand::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return skip_e2e(test, "strace is not installed");
    }
    let env = TestEnv::new();
    let Some(server) = build_go(test, env.tmp.path()) else {
        return;
    };
    env.vol.write(&V1);
    env.init();
    let got = env.path("got");
    let mut app = Proc::spawn(StdCommand::new(&server).arg(&got));
    assert!(wait_until(Duration::from_secs(10), || ready(&got)));
    let pid = app.pid().to_string();
    let opts = [
        "--grace",
        "0",
        "--on-drift",
        "reload",
        "--pid",
        &pid,
        "--signal-handled",
    ];
    env.on_vol("liveness", &opts).expect(0, "ok:");
    env.vol.write(&V2);
    // Held right after its sent mark (its one pwrite), then killed.
    let mut tracer = StdCommand::new("strace")
        .args(["-qq", "-o", "/dev/null", "-e", "trace=pwrite64"])
        .args(["-e", "inject=pwrite64:delay_exit=20000000:when=1"])
        .arg(BIN)
        .args(["liveness", "--state-dir"])
        .arg(&env.state_dir)
        .args(opts)
        .arg(env.vol.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn strace");
    let died = wait_until(Duration::from_secs(10), || !alive(app.pid(), "server"));
    let children =
        fs::read_to_string(format!("/proc/{0}/task/{0}/children", tracer.id())).unwrap_or_default();
    let held = !children.trim().is_empty();
    for child in children.split_whitespace() {
        // SAFETY: kill(2) on the probe this test started (through strace).
        unsafe { libc::kill(child.parse().unwrap(), libc::SIGKILL) };
    }
    let _ = tracer.kill();
    let _ = tracer.wait();
    assert!(died, "the Go app was expected to die of SIGHUP");
    assert!(held, "the probe finished before it was killed");
    let shared = fs::read_to_string(env.state_dir.join("container.shared")).unwrap_or_default();
    assert!(
        shared.contains("\"sent\":true"),
        "a claim marked sent: {shared}"
    );

    // A zombie, then reaped: either way not a reload done.
    for reap in [false, true] {
        if reap {
            let _ = app.0.wait();
        }
        let out = env.on_vol("liveness", &opts);
        out.expect(1, "drift:")
            .contains(&format!("reload failed: no process {pid}"));
        assert!(!out.stderr.contains("taken as sent"), "{out}");
    }
    let v = json(&env.on_vol("status", &["--json"]));
    assert_eq!(v["state"], "drift", "{v}");
}

/// A Go executable without section headers (as `sstrip` leaves one) is
/// still told by the build-info magic at the start of its writable
/// segment, where Go's own debug/buildinfo looks.
#[test]
fn a_go_executable_without_section_headers_is_still_recognised() {
    let test = "a_go_executable_without_section_headers_is_still_recognised";
    let env = TestEnv::new();
    let Some(server) = build_go(test, env.tmp.path()) else {
        return;
    };
    let mut bytes = fs::read(&server).unwrap();
    assert_eq!(
        &bytes[..6],
        b"\x7fELF\x02\x01",
        "a 64-bit little-endian ELF"
    );
    // e_shoff, e_shnum, e_shstrndx: no section headers at all.
    bytes[0x28..0x30].fill(0);
    bytes[0x3c..0x40].fill(0);
    let stripped = env.path("server");
    write_executable(&stripped, &bytes);
    env.vol.write(&V1);
    env.init();
    let got = env.path("got");
    let app = Proc::spawn(StdCommand::new(&stripped).arg(&got));
    assert!(wait_until(Duration::from_secs(10), || ready(&got)));
    let pid = app.pid().to_string();
    env.vol.write(&V2);
    let out = env.on_vol("liveness", &reload_opts(&["--pid", &pid]));
    out.expect(1, "drift:").contains(&format!(
        "not reloaded: pid {pid} (server) is a Go program, which exits on SIGHUP"
    ));
    assert!(alive(app.pid(), "server"));
}
