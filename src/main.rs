//! The `driftprobe` executable: parse, run, print one line, exit.

use std::process::ExitCode;

#[cfg(target_env = "musl")]
mod musl_alloc;

// musl's malloc is slow on the probe's many small allocations: the musl
// builds bring their own (musl_alloc.rs says why and what it measured).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: musl_alloc::Locked = musl_alloc::Locked::new();

fn main() -> ExitCode {
    let cli = driftprobe::cli::parse();
    let report = driftprobe::run(cli);
    report.print(&mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    report.code.into()
}
