//! kill -9 at random points while probes write state, as the kubelet does
//! to a probe past its `timeoutSeconds`. After every kill the state file is
//! a whole old or whole new file, and the next complete probe neither
//! panics, nor reports a drift that did not happen, nor forgets one that
//! did (its start time is kept across kills). A readiness probe running
//! beside a third of them answers as the config is.

use crate::support::{run, TestEnv, BIN};
use crate::{load_state, tally, wall_ms};
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills per run; `DRIFTPROBE_CRASH_RUNS` raises it (scripts/faults.sh).
fn runs() -> usize {
    std::env::var("DRIFTPROBE_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// xorshift64*: reproducible from the seed printed on failure.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn probe_cmd(env: &TestEnv) -> Command {
    probe_kind(env, "liveness")
}

fn probe_kind(env: &TestEnv, kind: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args([kind, "--state-dir"])
        .arg(&env.state_dir)
        .args(["--grace", "1h"])
        .arg(env.vol.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn kill_9_mid_write_loses_nothing() {
    let seed = std::env::var("DRIFTPROBE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| wall_ms() as u64 | 1);
    eprintln!("crash seed {seed} (DRIFTPROBE_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let env = TestEnv::new();
    let (a, b) = ("v: A\n", "v: B\n");
    env.vol.write(&[("app.yaml", a)]);
    env.init();
    let file = env.state_file();
    let tmp = file.with_file_name(format!(
        ".{}.tmp",
        file.file_name().unwrap().to_string_lossy()
    ));

    // How long a whole probe takes here: kills land anywhere inside it.
    let mut took: Vec<Duration> = (0..9)
        .map(|_| {
            let t = Instant::now();
            probe_cmd(&env).status().unwrap();
            t.elapsed()
        })
        .collect();
    took.sort();
    let span_us = (took[4].as_micros() as u64 * 12 / 10).max(200);

    let (mut drifted, mut floor, mut since) = (false, 0i64, None::<i64>);
    let (mut torn_tmp, mut changed_by_killed, mut lost, mut false_restarts) = (0, 0, 0, 0);
    let mut concurrent = 0;
    let n = runs();
    for i in 0..n {
        // Half the time the ConfigMap flips: every flip is a state write.
        if rng.below(2) == 0 {
            drifted = !drifted;
            if drifted {
                floor = wall_ms();
                since = None;
            }
            env.vol.write(&[("app.yaml", if drifted { b } else { a })]);
        }
        let before = fs::read(&file).unwrap();
        // A third of the time readiness runs at the same moment, as the
        // kubelet does: it waits on the lock the killed probe held.
        let neighbour = (rng.below(3) == 0).then(|| {
            probe_kind(&env, "readiness")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        });
        let mut child = probe_cmd(&env).spawn().unwrap();
        // Half the kills anywhere, half late, where the save happens.
        let delay = if rng.below(2) == 0 {
            rng.below(span_us)
        } else {
            span_us / 2 + rng.below(span_us / 2)
        };
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        if tmp.exists() {
            torn_tmp += 1;
        }
        if let Some(n) = neighbour {
            let out = n.wait_with_output().unwrap();
            let line = String::from_utf8_lossy(&out.stdout);
            let want = if drifted { "drift:" } else { "ok:" };
            assert!(
                out.status.code() == Some(0) && line.starts_with(want),
                "kill {i} (seed {seed}): concurrent readiness said {:?}: {line}",
                out.status
            );
            concurrent += 1;
        }

        // Whole old or whole new, never a torn or empty file.
        let after = fs::read(&file).unwrap();
        if after != before {
            changed_by_killed += 1;
            assert!(
                matches!(
                    driftprobe::state::parse(&after),
                    driftprobe::state::Loaded::Found(_)
                ),
                "kill {i} (seed {seed}): state neither old nor a whole new file: {:?}",
                String::from_utf8_lossy(&after)
            );
        }

        // The next probe completes: ok iff the config is the baseline.
        let mut cmd = env.cmd("liveness");
        cmd.args(["--grace", "1h"]).arg(env.vol.path());
        let out = run(&mut cmd);
        out.no_panic();
        if out.code != 0 {
            false_restarts += 1;
        }
        assert_eq!(out.code, 0, "kill {i} (seed {seed}): {out}");
        assert!(
            !out.stderr.contains("starting over"),
            "kill {i} (seed {seed}): state lost: {out}"
        );
        let st = load_state(&file);
        if drifted {
            assert!(
                out.stdout.starts_with("drift:"),
                "kill {i} (seed {seed}): {out}"
            );
            let d = st.drift.expect("a drift record");
            // Not before the change; once seen, never moved (not forgotten).
            assert!(
                d.since >= floor,
                "kill {i}: drift since {} < {floor}",
                d.since
            );
            if since.is_some_and(|s| s != d.since) {
                lost += 1;
            }
            assert_eq!(
                *since.get_or_insert(d.since),
                d.since,
                "kill {i} (seed {seed})"
            );
        } else {
            assert!(
                out.stdout.starts_with("ok:"),
                "kill {i} (seed {seed}): {out}"
            );
            assert_eq!(st.drift, None, "kill {i} (seed {seed}): phantom drift");
        }
    }
    eprintln!(
        "{n} kills within {span_us} us: state replaced in {changed_by_killed} kill windows, \
         {torn_tmp} left a half-written temp file, {concurrent} beside a readiness probe"
    );
    assert!(changed_by_killed > 0, "no kill came late enough to write");
    tally(
        "kill -9 during a probe that writes state",
        n,
        lost,
        false_restarts,
        &format!(
            "state replaced in {changed_by_killed} kill windows, {torn_tmp} kills mid-save; \
             {concurrent} beside a readiness probe"
        ),
    );
}

/// A host process with a SIGHUP handler that records each one at once
/// (`wait` is interrupted by a trapped signal): killed on drop.
struct HupApp(std::process::Child, std::path::PathBuf);

impl HupApp {
    fn start(env: &TestEnv) -> HupApp {
        let got = env.path("hups");
        let script = format!(
            "trap 'echo got >> {}' HUP; while :; do sleep 1 & wait $!; done",
            got.display()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let app = HupApp(child, got);
        let status = format!("/proc/{}/status", app.0.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        // SigCgt holds SIGHUP (bit 0) once the trap is set.
        while !fs::read_to_string(&status)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.strip_prefix("SigCgt:")
                    .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                    .is_some_and(|m| m & 1 != 0)
            })
        {
            assert!(Instant::now() < deadline, "the app never set its HUP trap");
            std::thread::sleep(Duration::from_millis(10));
        }
        app
    }

    fn hups(&self) -> usize {
        fs::read_to_string(&self.1)
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// Waits up to 2 s for at least `n` signals; the count then.
    fn wait_for(&self, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.hups() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.hups()
    }
}

impl Drop for HupApp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// kill -9 at random points of a probe that reloads the app by signal
/// (issue 19.3): every change still reaches the app (the next probe
/// signals, or settles the claim the killed one left), and the next probe
/// passes. A probe killed between its claim and `kill(2)`, or between
/// `kill(2)` and marking its claim sent (one pwrite), is followed by a
/// second signal: counted, not a failure.
#[test]
fn kill_9_during_a_signal_reload_loses_no_reload() {
    let seed = std::env::var("DRIFTPROBE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| wall_ms() as u64 | 1);
    eprintln!("signal crash seed {seed} (DRIFTPROBE_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "v: 0\n")]);
    let app = HupApp::start(&env);
    let pid = app.0.id().to_string();
    env.init();
    let opts = [
        "--grace",
        "0",
        "--on-drift",
        "reload",
        "--pid",
        pid.as_str(),
    ];
    let reload = || {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .args(["liveness", "--state-dir"])
            .arg(&env.state_dir)
            .args(opts)
            .arg(env.vol.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let mut change = 0;
    let mut next_change = || {
        change += 1;
        env.vol.write(&[("app.yaml", format!("v: {change}\n"))]);
    };

    // How long a whole reload takes here: kills land anywhere inside it.
    let mut took: Vec<Duration> = (0..9)
        .map(|_| {
            next_change();
            let t = Instant::now();
            reload().status().unwrap();
            t.elapsed()
        })
        .collect();
    took.sort();
    let span_us = (took[4].as_micros() as u64 * 12 / 10).max(200);
    let mut expected = app.wait_for(9);
    assert_eq!(expected, 9, "one signal per change without kills");

    let n = (runs() / 5).max(1);
    let (mut lost, mut false_restarts, mut settled) = (0, 0, 0);
    for i in 0..n {
        next_change();
        let mut child = reload().spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(span_us)));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();

        let mut cmd = env.cmd("liveness");
        cmd.args(opts).arg(env.vol.path());
        let out = run(&mut cmd);
        out.no_panic();
        if out.code != 0 {
            false_restarts += 1;
        }
        assert_eq!(out.code, 0, "kill {i} (seed {seed}): {out}");
        assert!(
            out.stdout.starts_with("reloaded:") || out.stdout.starts_with("ok:"),
            "kill {i} (seed {seed}): {out}"
        );
        assert!(
            !out.stderr.contains("starting over"),
            "kill {i} (seed {seed}): state lost: {out}"
        );
        if out.stderr.contains("taken as sent") {
            settled += 1;
        }
        // This change reached the app, once or (rarely) twice.
        let now = app.wait_for(expected + 1);
        if now <= expected {
            lost += 1;
        }
        assert!(
            now > expected,
            "kill {i} (seed {seed}): the change was never signalled: {out}"
        );
        expected = now;
    }
    std::thread::sleep(Duration::from_millis(200));
    let twice = app.hups().saturating_sub(9 + n);
    eprintln!("{n} kills within {span_us} us: {twice} changes signalled twice, {settled} claims settled as sent");
    tally(
        "kill -9 during a signal reload",
        n,
        lost,
        false_restarts,
        &format!(
            "every change signalled; {twice} signalled twice (killed between claim or kill(2) and its mark), \
             {settled} claims of killed probes taken as sent"
        ),
    );
}
