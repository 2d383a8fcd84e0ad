//! driftprobe: an exec liveness/readiness probe that records the config a
//! container started with (the baseline) and reports when the mounted
//! ConfigMap/Secret files drift from it.
//!
//! The flow of one invocation reads top to bottom: [`cli`] parses (only it
//! knows clap) and [`run`] hands the command to its module: [`probe`] for
//! `liveness`/`readiness`, [`commands`] for the rest (`init`, `run`,
//! `status`, `digest`, `install`), [`completions`] for completions and man
//! pages (left out of the slim build).
//!
//! A probe opens the watch set ([`watch`]: paths, container identity, state
//! dir), [`digest`] hashes the watched files, [`state`] loads and saves what
//! this container recorded (and [`shared`] what its probes share),
//! [`baseline`] proves a late baseline may be recorded, [`verdict`]
//! compares, and the probe reacts: a reload by [`signal`] (the process found
//! by [`proc`]) or by an HTTP request ([`reload_http`] over [`http`]), the
//! `--validate` command ([`validator`]), `--env` drift ([`env_drift`]).
//! [`app`] runs the app's own health check, ANDed into the verdict;
//! [`mirror`] copies verdict changes to the container's log;
//! [`mount_warnings`] names watch sets that cannot work. [`exit`] names the
//! outcome, and `main` only prints the [`Report`], escaped by [`escape`].
//! [`musl_mem`] gives the static musl builds word-at-a-time byte
//! comparisons.

pub mod app;
pub mod baseline;
pub mod cli;
pub mod commands;
#[cfg(feature = "completions")]
pub mod completions;
pub mod digest;
pub mod env_drift;
pub mod escape;
pub mod exit;
pub mod glob;
pub mod http;
pub mod key;
pub mod mirror;
pub mod mount_warnings;
pub mod musl_mem;
pub mod probe;
pub mod proc;
pub mod reload_http;
pub mod runtime;
pub mod shared;
pub mod signal;
pub mod smallfile;
pub mod state;
pub mod time;
pub mod validator;
pub mod verdict;
pub mod watch;

use cli::{Cli, Command};
use exit::Code;

/// What one invocation has to say: one line for stdout (the kubelet event),
/// or a document for `status`, `digest --json` and the like; warnings for
/// stderr, and the exit code. Everything reaches the terminal through
/// [`Report::print`], which escapes every line ([`escape::line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub code: Code,
    pub stdout: String,
    pub stderr: Vec<String>,
    pub form: Form,
}

/// How [`Report::stdout`] is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// One line: a newline in it is escaped like any control character.
    Line,
    /// Several lines (`\n`-separated), each escaped.
    Document,
    /// Printed as is: only for text driftprobe generates itself from no
    /// input (shell completions, man pages).
    Verbatim,
}

impl Report {
    pub fn new(code: Code, stdout: impl Into<String>) -> Report {
        Report {
            code,
            stdout: stdout.into(),
            stderr: Vec::new(),
            form: Form::Line,
        }
    }

    /// A multi-line answer (`status`, `--json`).
    pub fn document(code: Code, text: impl Into<String>) -> Report {
        Report {
            form: Form::Document,
            ..Report::new(code, text)
        }
    }

    pub fn warn(mut self, line: impl Into<String>) -> Report {
        self.stderr.push(line.into());
        self
    }

    /// A bad option value found after parsing (exit 2).
    pub fn usage(message: impl std::fmt::Display) -> Report {
        Report::new(Code::Usage, "").warn(format!("driftprobe: {message}"))
    }

    /// Writes stdout (the verdict first: the kubelet keeps the start of the
    /// combined output for the event), then each stderr line. Every line
    /// goes through [`escape::line`]: whatever a message holds, it cannot
    /// end its line or forge another. Write errors are ignored: a closed
    /// stdout/stderr must not turn into a panic.
    pub fn print(&self, out: &mut impl std::io::Write, err: &mut impl std::io::Write) {
        if !self.stdout.is_empty() {
            let text = match self.form {
                Form::Line => escape::line(&self.stdout),
                Form::Document => self
                    .stdout
                    .split('\n')
                    .map(escape::line)
                    .collect::<Vec<_>>()
                    .join("\n"),
                Form::Verbatim => self.stdout.clone(),
            };
            let _ = out.write_all(text.as_bytes());
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
        for line in &self.stderr {
            let _ = err.write_all(escape::line(line).as_bytes());
            let _ = err.write_all(b"\n");
        }
        let _ = err.flush();
    }
}

/// Runs one parsed command line. `run` (the subcommand) only returns if
/// the exec failed.
pub fn run(cli: Cli) -> Report {
    match cli.command {
        Command::Init(args) => commands::init(&args.watch, args.force),
        Command::Run(args) => commands::run(&args.watch, &args.command),
        Command::Liveness(args) => probe::probe(probe::Kind::Liveness, args.grace, &args.probe),
        Command::Readiness(args) => probe::probe(probe::Kind::Readiness, args.grace, &args.probe),
        Command::Status(args) => commands::status(&args.watch, args.json, args.stagger),
        Command::Digest(args) => commands::digest(&args.files, args.json, args.key_file.as_deref()),
        Command::Install(args) => commands::install(&args.dest),
        #[cfg(feature = "completions")]
        Command::Completions(args) => completions::completions(args.shell),
        #[cfg(feature = "completions")]
        Command::Man(args) => completions::man(args.command.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(r: &Report) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        r.print(&mut out, &mut err);
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn every_printed_line_is_escaped() {
        let r = Report::new(Code::Unknown, "cannot read /x\nok: fine\u{2028}")
            .warn("driftprobe: \u{1b}[2Kwarning\r");
        assert_eq!(
            printed(&r),
            (
                "cannot read /x\\x0aok: fine\\xe2\\x80\\xa8\n".into(),
                "driftprobe: \\x1b[2Kwarning\\x0d\n".into()
            )
        );
        // A document keeps its lines, each escaped; text already escaped
        // (`\` included) is printed unchanged.
        let doc = Report::document(Code::Healthy, "a: x\\x0a\nb: \u{202e}");
        assert_eq!(printed(&doc).0, "a: x\\x0a\nb: \\xe2\\x80\\xae\n");
        let verbatim = Report {
            form: Form::Verbatim,
            ..Report::new(Code::Healthy, "complete\t-F x")
        };
        assert_eq!(printed(&verbatim).0, "complete\t-F x\n");
    }
}
