//! Every flag of every command, grouped as the commands share them: which
//! files ([`FilesArgs`], with the walk's budgets), where their state lives
//! ([`WatchArgs`]), and what a probe does ([`ProbeArgs`], with the app's own
//! check in [`AppArgs`]). Each flag has its `DRIFTPROBE_*` variable. A group
//! flattened into a command carries a plain comment, not a doc comment:
//! with `defer`, a flattened struct's doc comment would replace its
//! command's about text.

use super::values::{
    parse_bool, parse_count, parse_deadline, parse_depth, parse_env_pair, parse_pid, parse_size,
};
use crate::time::parse_duration;
use clap::{Args, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

// Which files: the paths and the excludes (shared by every command).
// A plain comment, not a doc comment: with `defer`, a flattened struct's
// doc comment would replace its command's about text.
#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Watched files or directories (ConfigMap/Secret mount points);
    /// DRIFTPROBE_PATHS is a `:`-separated list.
    // No value_delimiter: an argument is one value (`/data/cv:1` is one
    // path); only the variable is a list, split in `try_parse_from`.
    #[arg(value_name = "PATH", required = true, env = "DRIFTPROBE_PATHS")]
    pub paths: Vec<PathBuf>,
    /// Ignore files matching GLOB (`*.bak`, `certs/*.pem`); repeatable;
    /// DRIFTPROBE_EXCLUDE is a `,`-separated list.
    #[arg(long = "exclude", value_name = "GLOB", env = "DRIFTPROBE_EXCLUDE")]
    pub excludes: Vec<String>,
    #[command(flatten)]
    pub budgets: BudgetArgs,
}

// What one walk of the watched paths may cost (README, "Budgets"); past
// any of them the answer is "cannot determine" (plain comment: see
// FilesArgs). The defaults are digest::DEFAULT_BUDGETS.
/// The help heading of the budget flags.
const BUDGETS: &str = "Budgets (past one: cannot determine)";

#[derive(Debug, Args)]
pub struct BudgetArgs {
    /// Entries walked, of every kind: files, directories, symlinks.
    #[arg(long, help_heading = BUDGETS, value_name = "N", env = "DRIFTPROBE_MAX_ENTRIES", default_value = "20000", value_parser = parse_count)]
    pub max_entries: u64,
    /// Directory levels below a watched path (at most 255).
    #[arg(long, help_heading = BUDGETS, value_name = "N", env = "DRIFTPROBE_MAX_DEPTH", default_value = "32", value_parser = parse_depth)]
    pub max_depth: u32,
    /// Bytes hashed per probe (files served from the stat cache are free):
    /// 256MiB, 1GiB, 65536.
    #[arg(long, help_heading = BUDGETS, value_name = "SIZE", env = "DRIFTPROBE_MAX_BYTES", default_value = "256MiB", value_parser = parse_size)]
    pub max_bytes: u64,
    /// Total bytes of all names walked (their paths below the watched path).
    #[arg(long, help_heading = BUDGETS, value_name = "SIZE", env = "DRIFTPROBE_MAX_NAME_BYTES", default_value = "1MiB", value_parser = parse_size)]
    pub max_name_bytes: u64,
    /// Wall time for walking and hashing, retries included; keep it under
    /// the probe's timeoutSeconds.
    #[arg(long, help_heading = BUDGETS, value_name = "DURATION", env = "DRIFTPROBE_DEADLINE", default_value = "500ms", value_parser = parse_deadline)]
    pub deadline: Duration,
}

// The watched paths and where their state lives (plain comment: see FilesArgs).
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub files: FilesArgs,
    /// Directory for the state file (use an emptyDir with readOnlyRootFilesystem).
    #[arg(
        long,
        value_name = "DIR",
        env = "DRIFTPROBE_STATE_DIR",
        default_value = "/tmp/driftprobe"
    )]
    pub state_dir: PathBuf,
    /// Hash every file, bypassing the stat cache.
    #[arg(long, env = "DRIFTPROBE_FULL", value_parser = parse_bool)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Record the current files even if this container already has a
    /// baseline, or they cannot be proven unchanged since it started.
    #[arg(long, env = "DRIFTPROBE_FORCE", value_parser = parse_bool)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// The command to exec after recording the baseline.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

// `--on-invalid` is readiness's: liveness always holds an invalid config.
// Still accepted (a pod spec may share one command line between the
// probes), so the probe can warn that it does nothing, but not offered in
// liveness's help, man page or completions.
#[derive(Debug, Args)]
#[command(mut_arg("on_invalid", |a| a.hide(true)))]
pub struct LivenessArgs {
    /// How long drift may last before the probe fails (e.g. 5m).
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_LIVENESS_GRACE", default_value = "0s", value_parser = parse_duration)]
    pub grace: Duration,
    #[command(flatten)]
    pub probe: ProbeArgs,
}

#[derive(Debug, Args)]
pub struct ReadinessArgs {
    /// How long drift may last before the probe fails.
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_READINESS_GRACE", default_value = "0s", value_parser = parse_duration)]
    pub grace: Duration,
    #[command(flatten)]
    pub probe: ProbeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    /// Exit 0 (the reason is still printed).
    Pass,
    /// Exit 3 (the kubelet counts it as a failure).
    Fail,
}

/// Readiness while a new config fails --validate (not an `OnError`: an
/// invalid config is a verdict, exit 1, not "cannot determine", exit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnInvalid {
    /// Exit 0: keep serving on the running config (the reason is printed).
    Pass,
    /// Exit 1: the pod leaves its Services until the config is fixed.
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnDrift {
    /// Fail the probe (liveness: the kubelet restarts the container).
    Fail,
    /// Signal the app to reload (or call --reload-url), adopt the new
    /// config as baseline, pass.
    Reload,
    /// Adopt the new config as baseline and pass (apps that reload by
    /// themselves; with --validate, readiness still guards bad configs).
    Adopt,
    /// Observe only: print the verdict with `(report only)` and pass; never
    /// fail for drift or an invalid config, never reload or adopt (a gradual
    /// rollout, with --log-changes). "Cannot determine" still follows
    /// --on-error.
    Report,
}

// The app's own health check, ANDed into the probe's verdict: at most one
// (plain comment: a doc comment would become the subcommand's about text).
#[derive(Debug, Args)]
pub struct AppArgs {
    /// Also check the app like a kubelet httpGet probe: GET URL
    /// (http://IP[:PORT]/PATH, IP a literal or localhost; no https, no
    /// DNS); 200-399 passes, redirects are not followed.
    #[arg(
        long,
        value_name = "URL",
        env = "DRIFTPROBE_HTTP_GET",
        conflicts_with_all = ["tcp_socket", "exec"]
    )]
    pub http_get: Option<String>,
    /// Also check the app like a kubelet tcpSocket probe: a TCP connect to
    /// [HOST:]PORT (HOST an IP literal or localhost) [default host:
    /// 127.0.0.1].
    #[arg(
        long,
        value_name = "[HOST:]PORT",
        env = "DRIFTPROBE_TCP_SOCKET",
        conflicts_with = "exec"
    )]
    pub tcp_socket: Option<String>,
    /// Also check the app like a kubelet exec probe: run CMD (split like
    /// --validate, no shell); exit 0 passes. Its output is never shown.
    #[arg(long, value_name = "CMD", env = "DRIFTPROBE_EXEC")]
    pub exec: Option<String>,
    /// The app check fails if it has no answer within this long (counted
    /// inside the probe's timeoutSeconds, before the files are looked at).
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_APP_TIMEOUT", default_value = "500ms", value_parser = parse_deadline)]
    pub app_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    #[command(flatten)]
    pub app: AppArgs,
    /// What "cannot determine" exits with [default: pass for liveness, so a
    /// broken probe never restarts healthy pods; fail for readiness].
    #[arg(long, value_enum, ignore_case = true, env = "DRIFTPROBE_ON_ERROR")]
    pub on_error: Option<OnError>,
    /// How long to wait for a concurrent probe holding the state lock.
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_LOCK_TIMEOUT", default_value = "800ms", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Spread restarts/reloads of replicas: add a per-pod offset in
    /// [0, DURATION) to the grace window, derived from the hostname.
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_STAGGER", default_value = "0s", value_parser = parse_duration)]
    pub stagger: Duration,
    /// What to do once drift outlasts the grace window.
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        env = "DRIFTPROBE_ON_DRIFT",
        default_value = "fail"
    )]
    pub on_drift: OnDrift,
    /// Signal sent by --on-drift reload (HUP, SIGUSR1, 10, ...) [default:
    /// HUP].
    // No clap default: a --signal given without --on-drift reload is
    // warned about, so the probe must see whether it was given.
    #[arg(long, value_name = "NAME", env = "DRIFTPROBE_SIGNAL")]
    pub signal: Option<String>,
    /// The app reloads on --signal although its runtime's default is to
    /// exit or do nothing (a Go program that calls signal.Notify, a JVM app
    /// with sun.misc.Signal.handle): signal it anyway. Without it a Go or
    /// JVM target is not signalled. Either way the probe checks that the
    /// target is still running after the signal.
    #[arg(long, env = "DRIFTPROBE_SIGNAL_HANDLED", value_parser = parse_bool)]
    pub signal_handled: bool,
    /// --on-drift reload by an HTTP request instead of a signal:
    /// http://IP[:PORT]/PATH, IP a literal or localhost (no https, no DNS).
    #[arg(
        long,
        value_name = "URL",
        env = "DRIFTPROBE_RELOAD_URL",
        conflicts_with = "signal"
    )]
    pub reload_url: Option<String>,
    /// Header sent with the --reload-url request, `Name: value`
    /// (repeatable). A value `@PATH` is read from that file (e.g. a mounted
    /// Secret) at each request, surrounding whitespace trimmed; values are
    /// never shown. DRIFTPROBE_RELOAD_HEADER holds one header per line.
    #[arg(
        long = "reload-header",
        value_name = "NAME: VALUE",
        env = "DRIFTPROBE_RELOAD_HEADER",
        hide_env_values = true
    )]
    pub reload_headers: Vec<String>,
    /// HTTP method of the --reload-url request.
    #[arg(
        long,
        value_name = "METHOD",
        env = "DRIFTPROBE_RELOAD_METHOD",
        default_value = "POST"
    )]
    pub reload_method: String,
    /// No 2xx answer within this long: not reloaded (keep the probe's
    /// timeoutSeconds above it).
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_RELOAD_TIMEOUT", default_value = "500ms", value_parser = parse_duration)]
    pub reload_timeout: Duration,
    /// Process to signal and read --env from [default: the container's
    /// entrypoint: PID 1, or with shareProcessNamespace the first process of
    /// this container].
    #[arg(long, value_name = "PID", env = "DRIFTPROBE_PID", conflicts_with_all = ["pidfile", "process"], value_parser = parse_pid)]
    pub pid: Option<i32>,
    /// Read the process to signal from this pidfile.
    #[arg(
        long,
        value_name = "PATH",
        env = "DRIFTPROBE_PIDFILE",
        conflicts_with = "process"
    )]
    pub pidfile: Option<PathBuf>,
    /// Signal the oldest process with this name (from /proc/*/comm).
    #[arg(long, value_name = "NAME", env = "DRIFTPROBE_PROCESS")]
    pub process: Option<String>,
    /// Command that checks a new config before it is restarted or reloaded
    /// into (split on whitespace, quotes respected, no shell); run once per
    /// new digest.
    #[arg(long, value_name = "CMD", env = "DRIFTPROBE_VALIDATE")]
    pub validate: Option<String>,
    /// Kill the validator after this long (no answer: held, asked again
    /// after a minute) [default: what is left of --probe-timeout less 200ms
    /// since the probe started: 800ms for the kubelet's default
    /// timeoutSeconds: 1]. Keep the probe's timeoutSeconds above it.
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_VALIDATE_TIMEOUT", value_parser = parse_duration)]
    pub validate_timeout: Option<Duration>,
    /// Readiness while the new config is invalid; liveness always holds
    /// (and warns when given it on its command line).
    /// `pass` keeps serving the old config; `fail` takes the pod out of its
    /// Services (a bad edit reaches every replica: all of them).
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        env = "DRIFTPROBE_ON_INVALID",
        default_value = "pass"
    )]
    pub on_invalid: OnInvalid,
    /// `--on-invalid` was typed on the command line (not taken from
    /// DRIFTPROBE_ON_INVALID, which a pod sets for both probes): liveness
    /// warns that it ignores it.
    #[arg(skip)]
    pub on_invalid_typed: bool,
    /// Environment variable NAME the app started with must equal the
    /// content of PATH (the same ConfigMap key mounted as a file); repeatable;
    /// DRIFTPROBE_ENV is a `,`-separated list.
    #[arg(long = "env", value_name = "NAME=PATH", env = "DRIFTPROBE_ENV", value_parser = parse_env_pair)]
    pub env: Vec<(String, PathBuf)>,
    /// Mirror each change of this probe's verdict (ok, drift, invalid, ...)
    /// as one line to the container's log: the stdout of the entrypoint (or
    /// of --pid/--pidfile/--process), so `kubectl logs` shows it.
    #[arg(long, env = "DRIFTPROBE_LOG_CHANGES", value_parser = parse_bool)]
    pub log_changes: bool,
    /// The probe's timeoutSeconds: the time the kubelet gives it. The
    /// default --validate-timeout is taken from it, and the probe warns when
    /// the --app-timeout, --validate-timeout and --reload-timeout it uses
    /// cannot fit inside it together, less 200ms.
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_PROBE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub probe_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Machine-readable output (schema in the README).
    #[arg(long, env = "DRIFTPROBE_JSON", value_parser = parse_bool)]
    pub json: bool,
    /// Show this pod's offset for the probes' --stagger window.
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_STAGGER", value_parser = parse_duration)]
    pub stagger: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    #[command(flatten)]
    pub files: FilesArgs,
    /// Print the per-file manifest as JSON.
    #[arg(long, env = "DRIFTPROBE_JSON", value_parser = parse_bool)]
    pub json: bool,
    /// Key the digest with HMAC-SHA-256 (for Secrets; the same key file in CI and the pod).
    #[arg(long, value_name = "PATH", env = "DRIFTPROBE_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Where to put the copy (e.g. /probe/driftprobe on an emptyDir).
    #[arg(value_name = "DEST", env = "DRIFTPROBE_INSTALL_DEST")]
    pub dest: PathBuf,
}

#[cfg(feature = "completions")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[cfg(feature = "completions")]
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum, ignore_case = true, value_name = "SHELL")]
    pub shell: Shell,
}

#[cfg(feature = "completions")]
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (init, run, liveness, ...).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}
