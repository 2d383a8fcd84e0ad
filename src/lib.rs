//! driftprobe: an exec liveness/readiness probe that records the config a
//! container started with (the baseline) and reports when the mounted
//! ConfigMap/Secret files drift from it.
//!
//! The flow of one invocation reads top to bottom: [`cli`] parses,
//! [`digest`] hashes the watched files, [`state`] loads and saves what this
//! container recorded (and [`shared`] what its probes share), [`verdict`] compares, [`action`] reacts (reload
//! signal or [`http`] request, validation command), [`exit`] names the
//! outcome. [`run`] wires
//! them; `main` only prints its [`Report`].

pub mod action;
pub mod baseline;
pub mod cli;
#[cfg(feature = "completions")]
pub mod completions;
pub mod digest;
pub mod exit;
pub mod glob;
pub mod http;
pub mod inspect;
pub mod json;
pub mod probe;
pub mod shared;
pub mod state;
pub mod status;
pub mod time;
pub mod verdict;

use cli::{Cli, Command};
use exit::Code;

/// What one invocation has to say: one line for stdout (the kubelet event),
/// warnings for stderr, and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub code: Code,
    pub stdout: String,
    pub stderr: Vec<String>,
}

impl Report {
    pub fn new(code: Code, stdout: impl Into<String>) -> Report {
        Report {
            code,
            stdout: stdout.into(),
            stderr: Vec::new(),
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
}

/// Runs one parsed command line. `run` (the subcommand) only returns if
/// the exec failed.
pub fn run(cli: Cli) -> Report {
    match cli.command {
        Command::Init(args) => baseline::init(&args.watch, args.force),
        Command::Run(args) => baseline::run(&args.watch, &args.command),
        Command::Liveness(args) => probe::probe(probe::Kind::Liveness, args.grace, &args.probe),
        Command::Readiness(args) => probe::probe(probe::Kind::Readiness, args.grace, &args.probe),
        Command::Status(args) => status::status(&args.watch, args.json, args.stagger),
        Command::Digest(args) => status::digest(&args.files, args.json),
        Command::Install(args) => baseline::install(&args.dest),
        #[cfg(feature = "completions")]
        Command::Completions(args) => completions::completions(args.shell),
        #[cfg(feature = "completions")]
        Command::Man(args) => completions::man(args.command.as_deref()),
    }
}
