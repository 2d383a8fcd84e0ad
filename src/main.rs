//! The `driftprobe` executable: parse, run, print one line, exit.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = driftprobe::cli::parse();
    let report = driftprobe::run(cli);
    // The verdict first: the kubelet keeps the start of the combined output
    // for the event. A closed stdout/stderr must not turn into a panic.
    if !report.stdout.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", report.stdout);
        let _ = out.flush();
    }
    let mut err = std::io::stderr().lock();
    for line in &report.stderr {
        let _ = writeln!(err, "{line}");
    }
    report.code.into()
}
