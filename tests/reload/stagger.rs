//! `--stagger`: a deterministic per-pod offset in [0, DURATION) from the
//! hostname (the pod name), shown by `status` and added to the grace window.
//! Hostnames are set in a private UTS namespace (`unshare --uts`).

use super::common::json;
use crate::support::*;
use std::process::Command as StdCommand;

const WINDOW_MS: u64 = 600_000;

/// Runs `driftprobe ARGS...` (state dir pinned) once per hostname inside
/// one private UTS namespace; returns the outputs in order.
fn with_hostnames(env: &TestEnv, names: &[String], args: &[&str]) -> Vec<Out> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let outdir = env.path(&format!("uts-out-{n}"));
    std::fs::create_dir_all(&outdir).unwrap();
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let mut script = String::new();
    for (i, n) in names.iter().enumerate() {
        script.push_str(&format!(
            "hostname '{n}' || exit 99\n'{bin}' {args} > '{o}/{i}.out' 2> '{o}/{i}.err'; echo $? > '{o}/{i}.code'\n",
            bin = BIN,
            args = quoted.join(" "),
            o = outdir.display(),
        ));
    }
    let st = StdCommand::new("unshare")
        .args(["--uts", "sh", "-c", &script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DRIFTPROBE_STATE_DIR", &env.state_dir)
        .status()
        .expect("unshare --uts");
    assert!(st.success(), "unshare --uts script failed (needs root)");
    (0..names.len())
        .map(|i| {
            let read = |ext: &str| {
                std::fs::read_to_string(outdir.join(format!("{i}.{ext}"))).unwrap_or_default()
            };
            Out {
                code: read("code").trim().parse().unwrap_or(-1),
                stdout: read("out"),
                stderr: read("err"),
            }
        })
        .collect()
}

fn offsets(env: &TestEnv, names: &[String]) -> Vec<u64> {
    let vol = env.vol.path().to_str().unwrap().to_string();
    let state = env.state_dir.to_str().unwrap().to_string();
    with_hostnames(
        env,
        names,
        &[
            "status",
            "--state-dir",
            &state,
            "--stagger",
            "10m",
            "--json",
            &vol,
        ],
    )
    .iter()
    .map(|out| {
        let v = json(out);
        let ms = v["stagger_offset_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("stagger_offset_ms missing: {v}"));
        assert!(ms < WINDOW_MS, "offset {ms} not in [0, 10m): {v}");
        ms
    })
    .collect()
}

#[test]
fn offset_is_per_hostname_deterministic_and_bounded() {
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "a: 1\n")]);
    env.init();
    let names: Vec<String> = ["web-7d9f8c-abcde", "web-7d9f8c-xyz12", "web-7d9f8c-abcde"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let o = offsets(&env, &names);
    assert_eq!(o[0], o[2], "same hostname, same offset: {o:?}");
    assert_ne!(o[0], o[1], "different hostnames, different offsets: {o:?}");

    // Without --stagger: null.
    let v = json(&env.on_vol("status", &["--json"]));
    assert!(v["stagger_offset_ms"].is_null(), "{v}");

    // 100 replica names spread over the window (10 buckets of 1 minute).
    let many: Vec<String> = (0..100).map(|i| format!("web-5c8d7b9f4-{i:05x}")).collect();
    let o = offsets(&env, &many);
    let mut buckets = [0u32; 10];
    for ms in &o {
        buckets[(ms / 60_000) as usize] += 1;
    }
    let chi2: f64 = buckets
        .iter()
        .map(|&n| (f64::from(n) - 10.0).powi(2) / 10.0)
        .sum();
    assert!(chi2 < 27.9, "offsets cluster: {buckets:?} (chi2 {chi2})");
}

/// The offset is added to the grace window: with `--grace 0 --stagger 10m`
/// a pod whose offset is over a minute is still inside its window.
#[test]
fn offset_extends_the_grace_window() {
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "a: 1\n")]);
    env.init();
    env.vol.write(&[("app.yaml", "a: 2\n")]);
    // Find a hostname whose offset is comfortably large.
    let names: Vec<String> = (0..20).map(|i| format!("api-6f5d4-{i:05x}")).collect();
    let o = offsets(&env, &names);
    let (name, _ms) = names
        .iter()
        .zip(&o)
        .find(|(_, ms)| **ms > 120_000)
        .map(|(n, ms)| (n.clone(), *ms))
        .expect("some offset over 2 minutes among 20 names");
    let vol = env.vol.path().to_str().unwrap().to_string();
    let state = env.state_dir.to_str().unwrap().to_string();
    let outs = with_hostnames(
        &env,
        &[name.clone(), name.clone()],
        &[
            "liveness",
            "--state-dir",
            &state,
            "--grace",
            "0",
            "--stagger",
            "10m",
            &vol,
        ],
    );
    let out = &outs[0];
    out.expect(0, "drift:").contains("stagger");
    assert_eq!(outs[1].code, 0, "{}", outs[1]);
    // Without the stagger the same drift is past its window.
    env.liveness("0").drift();
}
