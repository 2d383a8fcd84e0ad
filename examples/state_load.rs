//! Times loading a state file (`state::parse`: the bytes already read) of
//! 20 and of 1,000 watched files, as a probe does on every run: build it
//! like the static probe (scripts/static-build.sh's flags, `--example
//! state_load`) and run it on an idle machine.

use driftprobe::state::{self, Loaded};
use std::hint::black_box;
use std::time::Instant;

/// A state file as a probe writes it for `n` files: the baseline's
/// manifest and the stat cache, one entry each per file.
fn state_text(n: usize) -> String {
    let sha = |i: usize| format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let name = |i: usize| format!("conf.d/section-{i:04}/settings.yaml");
    let files: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"path":"{}","sha256":"{}","size":{}}}"#,
                name(i),
                sha(i),
                100 + i
            )
        })
        .collect();
    let cache: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"path":"{}","dev":66306,"ino":{},"size":{},"mtime_ns":1795633298236123456,"ctime_ns":1795633298236123456,"sha256":"{}"}}"#,
                name(i),
                4_000_000 + i,
                100 + i,
                sha(i)
            )
        })
        .collect();
    format!(
        r#"{{"format":"driftprobe-state","version":1,"container":{{"boot_id":"c99bc119-fc27-4f4e-b98f-195f17a3210c","pid1_start_ticks":24}},"paths":["/etc/config"],"baseline":{{"digest":"{}","recorded_at":1795633298236,"source":"init","files":[{}]}},"drift":null,"cache":[{}],"validations":[],"reloads":[],"warnings":[],"given_seq":3}}"#,
        sha(7),
        files.join(","),
        cache.join(",")
    )
}

fn main() {
    for n in [20, 1_000] {
        let text = state_text(n);
        assert!(matches!(state::parse(text.as_bytes()), Loaded::Found(_)));
        let rounds = 200_000 / n;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..rounds {
                black_box(state::parse(black_box(text.as_bytes())));
            }
            best = best.min(start.elapsed().as_nanos() as f64 / rounds as f64);
        }
        println!(
            "{n:>5} files, {:>7} bytes: {:>10.0} ns per load (best of 5 x {rounds})",
            text.len(),
            best
        );
    }
}
