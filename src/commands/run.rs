//! `run`: record the baseline, then exec the app in the same process (same
//! PID, so signals pass through). A baseline that cannot be recorded never
//! stops the app.

use super::init::{record, How};
use crate::cli::WatchArgs;
use crate::digest::plain_io;
use crate::escape;
use crate::exit::Code;
use crate::watch::failure_report;
use crate::Report;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

/// `run`: record the baseline, then exec the command. A baseline that
/// cannot be recorded is reported on stderr but never stops the app.
pub fn run(args: &WatchArgs, command: &[OsString]) -> Report {
    let mut err = io::stderr().lock();
    match record(args, How::Run) {
        Ok(report) => {
            // The container log says what the app starts with.
            let _ = writeln!(err, "driftprobe: {}", escape::line(&report.stdout));
            for w in &report.stderr {
                let _ = writeln!(err, "{}", escape::line(w));
            }
        }
        Err(f) => {
            let r = failure_report(f);
            let _ = writeln!(
                err,
                "driftprobe: warning: starting without a baseline: {}{}",
                escape::line(r.stdout.trim_start_matches("cannot determine: ")),
                escape::line(&r.stderr.join(" "))
            );
        }
    }
    drop(err);
    let Some((program, rest)) = command.split_first() else {
        return Report::usage("run: no command given after --");
    };
    let e = crate::validator::exec(program, rest);
    let name = escape::bytes(program.as_bytes());
    let code = if e.kind() == io::ErrorKind::NotFound {
        Code::NotFound
    } else {
        Code::CannotExecute
    };
    Report::new(code, "").warn(format!("driftprobe: cannot exec {name}: {}", plain_io(&e)))
}
