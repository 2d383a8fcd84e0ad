//! The `driftprobe` executable: parse, run, print one line, exit.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = driftprobe::cli::parse();
    let report = driftprobe::run(cli);
    // The verdict first: the kubelet keeps the start of the combined output
    // for the event. A closed stdout/stderr must not turn into a panic.
    // Plain writes, no formatting: each line is already a String.
    if !report.stdout.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(report.stdout.as_bytes());
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
    let mut err = std::io::stderr().lock();
    for line in &report.stderr {
        let _ = err.write_all(line.as_bytes());
        let _ = err.write_all(b"\n");
    }
    report.code.into()
}
