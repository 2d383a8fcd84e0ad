//! The rollout in doc/adoption.md ("Adopting across a fleet") run as written:
//! each step's probe commands, taken from the guide, against a volume whose
//! config drifts. Only what a test cannot wait for is shortened (`--grace`
//! to 1s, `--stagger` to 0s); the state dir, the app check and every other
//! flag stay. The invariant the guide is about: no step fails readiness for
//! drift unless the same step's liveness acts on it too (nothing else ever
//! ends drift in a pod, so such a step takes every replica out of its
//! Services for good).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use crate::support::*;

/// One `**N. …**` step of the guide: its number and the probe commands of
/// its YAML blocks, each as the strings of its `command: [...]` array.
struct Step {
    number: u32,
    commands: Vec<Vec<String>>,
}

fn guide() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("doc/adoption.md");
    std::fs::read_to_string(path).unwrap()
}

/// The "Adopting across a fleet" section, up to its next `###` heading.
fn fleet_section(text: &str) -> &str {
    let start = text
        .find("## Adopting across a fleet")
        .expect("doc/adoption.md has the rollout section");
    let rest = &text[start..];
    let end = rest.find("\n### ").unwrap_or(rest.len());
    &rest[..end]
}

/// The double-quoted strings of `command: [ ... ]` arrays in `text`.
fn command_arrays(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("command: [") {
        let after = &rest[at + "command: [".len()..];
        let end = after.find(']').expect("a closed command array");
        let strings = after[..end]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        found.push(strings);
        rest = &after[end..];
    }
    found
}

fn steps(section: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for part in section.split("\n**").skip(1) {
        let Some((number, _)) = part.split_once(". ") else {
            continue;
        };
        let Ok(number) = number.parse() else {
            continue;
        };
        steps.push(Step {
            number,
            commands: command_arrays(part),
        });
    }
    steps
}

/// A local app that answers every request with 200.
fn healthy_app() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

/// The guide's command for this machine: the binary's own arguments with the
/// state dir and watched path replaced by the test's, the app's URL pointed
/// at `port`, the windows shortened.
fn localised(cmd: &[String], env: &TestEnv, port: u16) -> (String, Vec<String>) {
    assert_eq!(cmd[0], "/probe/driftprobe", "{cmd:?}");
    let sub = cmd[1].clone();
    let mut args = Vec::new();
    let mut it = cmd[2..cmd.len() - 1].iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--state-dir" => {
                it.next(); // TestEnv::cmd passes its own.
            }
            "--grace" | "--stagger" => {
                it.next();
                args.push(arg.clone());
                args.push(if arg == "--grace" { "1s" } else { "0s" }.into());
            }
            "--http-get" => {
                let url = it.next().unwrap();
                let path = url.splitn(4, '/').nth(3).unwrap_or("");
                args.push(arg.clone());
                args.push(format!("http://127.0.0.1:{port}/{path}"));
            }
            _ => args.push(arg.clone()),
        }
    }
    args.push(env.vol.path().to_string_lossy().into_owned());
    (sub, args)
}

#[test]
fn every_step_of_the_rollout_keeps_readiness_from_failing_alone() {
    let text = guide();
    let section = fleet_section(&text);
    let steps = steps(section);
    assert_eq!(
        steps.iter().map(|s| s.number).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "the guide's four steps"
    );
    let port = healthy_app();
    let mut acted = Vec::new();
    for step in &steps {
        assert!(
            !step.commands.is_empty(),
            "step {} has no probe",
            step.number
        );
        // Step 4 reloads nginx: tests/reload/nginx.rs runs that for real.
        if step
            .commands
            .iter()
            .any(|c| c.iter().any(|a| a == "reload"))
        {
            continue;
        }
        let env = TestEnv::new();
        env.vol.write(&[("app.yaml", "port: 80\n")]);
        let probes: Vec<_> = step
            .commands
            .iter()
            .map(|c| localised(c, &env, port))
            .collect();
        // The baseline a container records at start (the files here are
        // newer than this machine's PID 1, so a probe alone would say "no
        // baseline").
        env.init();
        for (sub, args) in &probes {
            env.run(sub, args).ok();
        }
        env.vol.write(&[("app.yaml", "port: 8080\n")]);
        for (sub, args) in &probes {
            let first = env.run(sub, args); // the drift is seen: its window starts
            assert_eq!(
                first.code, 0,
                "step {}, {sub}: inside the window: {first}",
                step.number
            );
        }
        sleep(Duration::from_millis(1300));
        let outs: Vec<_> = probes
            .iter()
            .map(|(sub, args)| (sub.as_str(), env.run(sub, args)))
            .collect();
        for (sub, out) in &outs {
            out.no_panic();
            assert!(
                out.code == 0 || out.code == 1 && out.line().contains("drift:"),
                "step {}, {sub}: neither ok nor failing for drift: {out}",
                step.number
            );
        }
        let fails = |kind: &str| outs.iter().any(|(s, o)| *s == kind && o.code == 1);
        assert!(
            !fails("readiness") || fails("liveness"),
            "step {}: readiness fails for drift while liveness does not act: every replica would stay out of its Services",
            step.number
        );
        acted.push((step.number, fails("liveness")));
    }
    // Observe first, act last: the rollout's order, as run.
    assert_eq!(acted, [(1, false), (2, false), (3, true)], "{acted:?}");
}

/// The state dir every step passes is one the guide mounts: an unmountable
/// default (`/tmp/driftprobe` under readOnlyRootFilesystem) makes readiness
/// "cannot determine" in every replica.
#[test]
fn every_steps_state_dir_is_mounted_in_the_guide() {
    let text = guide();
    let section = fleet_section(&text);
    let mounts: Vec<&str> = section
        .lines()
        .filter_map(|l| l.split_once("mountPath: ").map(|(_, m)| m))
        .map(|m| m.trim_end_matches(['}', ' ', ',']))
        .collect();
    let commands = command_arrays(section);
    assert!(commands.len() >= 5, "{commands:?}");
    for cmd in commands {
        let dir = cmd
            .iter()
            .position(|a| a == "--state-dir")
            .map(|i| cmd[i + 1].as_str());
        let dir = dir.unwrap_or_else(|| panic!("no --state-dir in {cmd:?}"));
        assert!(
            mounts.contains(&dir),
            "{dir} is not mounted in the guide (mounts: {mounts:?}): {cmd:?}"
        );
    }
}
