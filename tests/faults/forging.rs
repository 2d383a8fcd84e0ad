//! Forging lines (issue 13.9): names, a watched path and validator output
//! made of everything that could end a line, repaint a terminal or reorder
//! what `kubectl describe` shows. Every output line of every command stays
//! one line with nothing raw in it: the kubelet's Event holds exactly what
//! the probe meant to say.

use crate::support::{os, run, write_executable, Out, TestEnv};
use crate::tally;
use std::fs;

/// Bytes that must never reach the output raw, one per name.
const TRICKS: &[&[u8]] = &[
    b"\n",
    b"\r",
    b"\x1b[2J",
    b"\x0b",
    b"\x0c",
    b"\x7f",
    b"\xc2\x85",     // NEL
    b"\xc2\x9b31m",  // CSI
    b"\xe2\x80\xa8", // LINE SEPARATOR
    b"\xe2\x80\xa9", // PARAGRAPH SEPARATOR
    b"\xe2\x80\xae", // RIGHT-TO-LEFT OVERRIDE
    b"\xe2\x81\xa6", // LEFT-TO-RIGHT ISOLATE
    b"\xff\xfe",     // not UTF-8
];

fn forged(out: &Out, lines: Option<usize>) -> bool {
    let raw = out.stdout.chars().chain(out.stderr.chars()).any(|c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{fffd}')
    });
    let extra = lines.is_some_and(|n| out.stdout.lines().count() != n);
    out.no_panic();
    raw || extra
}

#[test]
fn forging_lines_with_names_paths_and_validator_output() {
    let env = TestEnv::new();
    let mut runs = 0;
    let mut bad = Vec::new();
    let validator = env.path("v.sh");
    let mut script = String::from("#!/bin/sh\nprintf '");
    for t in TRICKS {
        for b in *t {
            script.push_str(&format!("\\{b:03o}"));
        }
        script.push_str("ok: fine ");
    }
    script.push_str("\\n' >&2\nexit 1\n");
    write_executable(&validator, script.as_bytes());
    for (i, trick) in TRICKS.iter().enumerate() {
        // Its own state dir; the watched dir's own name carries the trick too.
        let env = TestEnv::new();
        let dir = env.path(&format!("d{i}"));
        let dir =
            std::path::PathBuf::from(os(&[dir.as_os_str().as_encoded_bytes(), trick].concat()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("app.yaml"), "v: 1\n").unwrap();
        let cmd = |sub: &str| env.cmd(sub);
        run(cmd("init").arg(&dir)).expect(0, "baseline recorded");
        let name = [b"a", *trick, b"ok: config matches the baseline"].concat();
        fs::write(dir.join(os(&name)), "x").unwrap();
        let outs = [
            (
                run(cmd("liveness").args(["--grace", "0"]).arg(&dir)),
                Some(1),
            ),
            (
                run(cmd("readiness").args(["--grace", "1h"]).arg(&dir)),
                Some(1),
            ),
            (
                run(cmd("readiness")
                    .args(["--grace", "0", "--on-invalid", "fail", "--validate"])
                    .arg(&validator)
                    .arg(&dir)),
                Some(1),
            ),
            (run(cmd("status").arg(&dir)), None),
            (run(cmd("status").arg("--json").arg(&dir)), None),
            (run(env.cmd("digest").arg("--json").arg(&dir)), None),
            (
                run(env.cmd("digest").arg(&dir).arg(dir.join("absent"))),
                Some(1),
            ),
        ];
        for (out, lines) in outs {
            runs += 1;
            if forged(&out, lines) {
                bad.push(out);
            }
        }
    }
    assert!(bad.is_empty(), "forged or raw output: {bad:#?}");
    tally(
        "forging lines: hostile names, watched paths, validator output",
        runs,
        0,
        0,
        "no second line, no raw control, separator or bidi character",
    );
}
