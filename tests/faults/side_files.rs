//! The files a probe reads besides the watched tree (`--pidfile`, the
//! `--env` value files; `/proc` goes through the same reader) made
//! hostile: a FIFO (opening it would wait for a writer forever), `/dev/zero`
//! (never ends), a sparse 1 TB file. Each is refused at once with a line
//! that says why, inside the kubelet's timeout, with bounded memory.

use crate::support::{run, Out, TestEnv};
use crate::tally;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Well inside the kubelet's default timeoutSeconds (1s), with room for a
/// loaded test machine.
const FAST: Duration = Duration::from_secs(3);

/// The hostile files, made in `env`'s temp dir: (what, path).
fn hostile(env: &TestEnv) -> Vec<(&'static str, PathBuf)> {
    let fifo = env.path("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let sparse = env.path("sparse");
    fs::File::create(&sparse).unwrap().set_len(1 << 40).unwrap();
    vec![
        ("a FIFO", fifo),
        ("a character device", PathBuf::from("/dev/zero")),
        ("larger than", sparse),
    ]
}

fn probe(env: &TestEnv, sub: &str, opts: &[&str]) -> (Out, Duration) {
    let mut cmd = env.cmd(sub);
    cmd.args(opts)
        .arg(env.vol.path())
        .timeout(Duration::from_secs(20));
    let start = Instant::now();
    let out = run(&mut cmd);
    let took = start.elapsed();
    out.no_panic();
    (out, took)
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// `--on-drift reload --pidfile P`: once drift is overdue the pidfile is
/// read. A hostile one is a failed reload (drift, exit 1: the kubelet
/// restarts onto the new config, the safe fallback), said at once.
#[test]
fn a_hostile_pidfile_is_refused_at_once() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    env.vol.write(&[("app.conf", "v2\n")]);
    let mut runs = 0;
    for (what, path) in hostile(&env) {
        let pidfile = show(&path);
        let opts = [
            "--grace",
            "0",
            "--on-drift",
            "reload",
            "--pidfile",
            &pidfile,
        ];
        let (out, took) = probe(&env, "liveness", &opts);
        runs += 1;
        out.expect(1, "drift:")
            .contains("reload failed: cannot read pidfile")
            .contains(what);
        assert!(took < FAST, "{what}: took {took:?}: {out}");
    }
    tally(
        "side files: FIFO, /dev/zero, 1 TB sparse as --pidfile",
        runs,
        0,
        0,
        "refused at once; reload failed, drift reported",
    );
}

/// `--env NAME=P`: the value file is read at every probe. A hostile one is
/// "cannot determine" (liveness passes it, readiness fails), never a hang
/// or a drift.
#[test]
fn a_hostile_env_value_file_is_refused_at_once() {
    let env = TestEnv::new();
    env.vol.write(&[("app.conf", "v1\n")]);
    env.init();
    let me = std::process::id().to_string();
    let mut runs = 0;
    for (what, path) in hostile(&env) {
        let pair = format!("HOME={}", show(&path));
        for (sub, code) in [("liveness", 0), ("readiness", 3)] {
            let (out, took) = probe(&env, sub, &["--pid", &me, "--env", &pair]);
            runs += 1;
            out.expect(code, "cannot determine:")
                .contains("--env")
                .contains(what);
            assert!(took < FAST, "{what}: took {took:?}: {out}");
        }
    }
    tally(
        "side files: FIFO, /dev/zero, 1 TB sparse as --env file",
        runs,
        0,
        0,
        "cannot determine at once",
    );
}
