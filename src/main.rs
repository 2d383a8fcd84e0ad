//! The `driftprobe` executable: parse, run, print one line, exit.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = driftprobe::cli::parse();
    let report = driftprobe::run(cli);
    report.print(&mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    report.code.into()
}
