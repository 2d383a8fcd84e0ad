//! State files cross architectures: one written by the arm64 build is read
//! by the amd64 one and the other way round (a node pool may mix both, and a
//! state dir on a shared volume outlives the pod that wrote it).
//!
//! The amd64 side is the binary cargo built for this test; the arm64 side is
//! scripts/static-build.sh's `target/static/arm64/driftprobe`, run through
//! `qemu-aarch64` (Debian's qemu-user). Skipped with a message when either is
//! missing, unless `DRIFTPROBE_REQUIRE_E2E=1` (set by .ci/run).

mod support;

use std::path::{Path, PathBuf};

use support::{clean_env, driftprobe, run, Out, TestEnv};

/// The arm64 binary and its runner, or why the test cannot run.
fn arm64() -> Result<(String, PathBuf), String> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target_dir.join("static/arm64/driftprobe");
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: run scripts/static-build.sh",
            bin.display()
        ));
    }
    let runner = if std::env::consts::ARCH == "aarch64" {
        String::new()
    } else {
        let found = std::process::Command::new("qemu-aarch64")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err("qemu-aarch64 is not installed (apt-get install qemu-user)".into());
        }
        "qemu-aarch64".into()
    };
    Ok((runner, bin))
}

/// `SUB --state-dir STATE ARGS... VOLUME` with one build or the other.
fn on_vol(env: &TestEnv, arm: Option<&(String, PathBuf)>, sub: &str, args: &[&str]) -> Out {
    let mut cmd = match arm {
        None => driftprobe(),
        Some((runner, bin)) if runner.is_empty() => {
            let mut cmd = assert_cmd::Command::new(bin);
            clean_env(&mut cmd);
            cmd
        }
        Some((runner, bin)) => {
            let mut cmd = assert_cmd::Command::new(runner);
            clean_env(&mut cmd);
            cmd.arg(bin);
            cmd
        }
    };
    cmd.arg(sub)
        .arg("--state-dir")
        .arg(&env.state_dir)
        .args(args)
        .arg(env.vol.path());
    run(&mut cmd)
}

#[test]
fn state_files_cross_architectures() {
    let arm = match arm64() {
        Ok(arm) => arm,
        Err(reason) => return support::skip_e2e("cross-architecture state test", &reason),
    };
    for (writer, reader) in [(Some(&arm), None), (None, Some(&arm))] {
        let name = |b: Option<&_>| if b.is_some() { "arm64" } else { "amd64" };
        let env = TestEnv::new();
        env.vol.write(&[("app.yaml", "a: 1\n"), ("nested/k", "v")]);
        let init = on_vol(&env, writer, "init", &[]);
        assert_eq!(init.code, 0, "{} init: {init}", name(writer));
        on_vol(&env, reader, "liveness", &["--grace", "0"])
            .ok()
            .contains("2 files");
        env.vol.write(&[("app.yaml", "a: 2\n"), ("nested/k", "v")]);
        let drift = on_vol(&env, reader, "liveness", &["--grace", "0"]);
        drift.drift().contains("1 changed");
        // And back: the state the reader just saved is read by the writer.
        on_vol(&env, writer, "readiness", &["--grace", "0"]).drift();
        env.vol.write(&[("app.yaml", "a: 1\n"), ("nested/k", "v")]);
        on_vol(&env, writer, "liveness", &["--grace", "0"]).ok();
        on_vol(&env, reader, "liveness", &["--grace", "0"]).ok();
    }
}
