//! The command line: every flag, its `DRIFTPROBE_*` environment variable,
//! its help text. Only this module knows clap; [`WatchArgs::resolve`] turns
//! the raw flags into the plain [`WatchSet`] the rest of the crate uses.
//! Probes are configured in pod specs, so every option has an environment
//! variable as well as a flag.

use crate::glob::Glob;
use crate::time::parse_duration;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  # CI: put the config's digest into a pod-template annotation
  driftprobe digest config/

  # postStart hook or wrapper: record what the app starts with
  driftprobe init /etc/config
  driftprobe run /etc/config -- /app/server --config /etc/config/app.yaml

  # exec probes (readiness fails at once, liveness restarts after 5m)
  driftprobe readiness /etc/config
  driftprobe liveness --grace 5m --stagger 2m /etc/config

  # reload in place instead of restarting, after `nginx -t` approves
  driftprobe liveness --on-drift reload --signal HUP --pidfile /run/nginx.pid \\
      --validate 'nginx -t' /etc/nginx/conf.d

  # what changed, for humans or scripts
  driftprobe status /etc/config
  driftprobe status --json /etc/config

Exit codes: 0 healthy (or drift inside the grace window), 1 drift past the
grace window, 2 usage error, 3 cannot determine (see --on-error).
Every option can also be set with the environment variable shown.";

/// Exec probe that detects drift of mounted ConfigMap/Secret files from the
/// baseline the container started with.
#[derive(Debug, Parser)]
#[command(name = "driftprobe", version, after_help = EXAMPLES, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record the baseline for this container instance (postStart hook).
    ///
    /// Running it again in the same container instance is a no-op unless
    /// --force is given.
    Init(InitArgs),
    /// Record the baseline, then exec CMD (same PID, signals pass through).
    Run(RunArgs),
    /// Liveness probe: exit 1 once drift outlasts the grace window.
    Liveness(LivenessArgs),
    /// Readiness probe: exit 1 once drift outlasts the grace window.
    Readiness(ReadinessArgs),
    /// Show the baseline, the current digest, drift and per-file changes.
    Status(StatusArgs),
    /// Print the tree digest of PATHs (for a pod-template annotation).
    Digest(DigestArgs),
    /// Copy this executable to DEST (init container: no shell or cp needed).
    Install(InstallArgs),
}

/// Which files: the paths and the excludes (shared by every command).
#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Watched files or directories (ConfigMap/Secret mount points).
    #[arg(
        value_name = "PATH",
        required = true,
        env = "DRIFTPROBE_PATHS",
        value_delimiter = ':'
    )]
    pub paths: Vec<PathBuf>,
    /// Ignore files matching GLOB (`*.bak`, `certs/*.pem`); repeatable.
    #[arg(
        long = "exclude",
        value_name = "GLOB",
        env = "DRIFTPROBE_EXCLUDE",
        value_delimiter = ','
    )]
    pub excludes: Vec<String>,
}

/// The watched paths and where their state lives.
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
    #[arg(long, env = "DRIFTPROBE_FULL")]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Record a new baseline even if this container already has one.
    #[arg(long, env = "DRIFTPROBE_FORCE")]
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

#[derive(Debug, Args)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnDrift {
    /// Fail the probe (liveness: the kubelet restarts the container).
    Fail,
    /// Signal the app to reload, adopt the new config as baseline, pass.
    Reload,
    /// Adopt the new config as baseline and pass (apps that reload by
    /// themselves; with --validate, readiness still guards bad configs).
    Adopt,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// What "cannot determine" exits with [default: pass for liveness, so a
    /// broken probe never restarts healthy pods; fail for readiness].
    #[arg(long, value_enum, env = "DRIFTPROBE_ON_ERROR")]
    pub on_error: Option<OnError>,
    /// How long to wait for a concurrent probe holding the state lock.
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_LOCK_TIMEOUT", default_value = "800ms", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Spread restarts/reloads of replicas: add a per-pod offset in
    /// [0, DURATION) to the grace window, derived from the hostname.
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_STAGGER", default_value = "0s", value_parser = parse_duration)]
    pub stagger: Duration,
    /// What to do once drift outlasts the grace window.
    #[arg(long, value_enum, env = "DRIFTPROBE_ON_DRIFT", default_value = "fail")]
    pub on_drift: OnDrift,
    /// Signal sent by --on-drift reload (HUP, SIGUSR1, 10, ...).
    #[arg(
        long,
        value_name = "NAME",
        env = "DRIFTPROBE_SIGNAL",
        default_value = "HUP"
    )]
    pub signal: String,
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
    /// after a minute). Keep the probe's timeoutSeconds above it.
    #[arg(long, value_name = "DURATION", env = "DRIFTPROBE_VALIDATE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub validate_timeout: Duration,
    /// Readiness while the new config is invalid; liveness always holds.
    /// `pass` keeps serving the old config; `fail` takes the pod out of its
    /// Services (a bad edit reaches every replica: all of them).
    #[arg(
        long,
        value_enum,
        env = "DRIFTPROBE_ON_INVALID",
        default_value = "pass"
    )]
    pub on_invalid: OnError,
    /// Environment variable NAME the app started with must equal the
    /// content of PATH (the same ConfigMap key mounted as a file); repeatable.
    #[arg(long = "env", value_name = "NAME=PATH", env = "DRIFTPROBE_ENV", value_delimiter = ',', value_parser = parse_env_pair)]
    pub env: Vec<(String, PathBuf)>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Machine-readable output (schema in the README).
    #[arg(long, env = "DRIFTPROBE_JSON")]
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
    #[arg(long, env = "DRIFTPROBE_JSON")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Where to put the copy (e.g. /probe/driftprobe on an emptyDir).
    #[arg(value_name = "DEST", env = "DRIFTPROBE_INSTALL_DEST")]
    pub dest: PathBuf,
}

/// A process id: a positive number.
fn parse_pid(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{s:?} is not a process id")),
    }
}

fn parse_env_pair(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, got {s:?}"))?;
    if name.is_empty() || path.is_empty() || name.contains('\0') {
        return Err(format!("expected NAME=PATH, got {s:?}"));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

/// The watched set, resolved: absolute roots, compiled excludes.
#[derive(Debug, Clone)]
pub struct WatchSet {
    /// As given, made absolute (not canonicalized: kubelet volumes are
    /// symlink farms, and the user-visible path is what identifies them).
    pub roots: Vec<PathBuf>,
    pub excludes: Vec<Glob>,
    pub state_dir: PathBuf,
    pub full: bool,
}

impl WatchSet {
    /// The roots as strings, for the state key and messages.
    pub fn names(&self) -> Vec<String> {
        self.roots.iter().map(|p| p.display().to_string()).collect()
    }

    pub fn exclude_texts(&self) -> Vec<String> {
        self.excludes
            .iter()
            .map(|g| g.as_str().to_string())
            .collect()
    }
}

/// Makes `p` absolute against the current directory without resolving
/// symlinks, written one way: `/etc/config/`, `/etc/config/.` and
/// `//etc//config` are all `/etc/config` (one state file for all). `..`
/// stays as given.
pub fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(p),
            Err(_) => p.to_path_buf(),
        }
    };
    joined.components().collect()
}

fn compile_excludes(texts: &[String]) -> Result<Vec<Glob>, String> {
    texts
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| Glob::new(t))
        .collect()
}

impl FilesArgs {
    /// The roots made absolute, each once, in the order given, and the
    /// compiled excludes.
    pub fn resolve(&self) -> Result<(Vec<PathBuf>, Vec<Glob>), String> {
        let mut roots: Vec<PathBuf> = Vec::new();
        for p in &self.paths {
            if p.as_os_str().is_empty() {
                continue;
            }
            let abs = absolute(p);
            if !roots.contains(&abs) {
                roots.push(abs);
            }
        }
        if roots.is_empty() {
            return Err("no PATH given (as arguments or in DRIFTPROBE_PATHS)".into());
        }
        Ok((roots, compile_excludes(&self.excludes)?))
    }
}

impl WatchArgs {
    pub fn resolve(&self) -> Result<WatchSet, String> {
        let (roots, excludes) = self.files.resolve()?;
        Ok(WatchSet {
            roots,
            excludes,
            state_dir: absolute(&self.state_dir),
            full: self.full,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn each_path_is_watched_once() {
        let files = FilesArgs {
            paths: vec![
                "/a".into(),
                "/a/".into(),
                "".into(),
                "/b".into(),
                "/a/.".into(),
            ],
            excludes: vec!["*.bak".into(), "".into()],
        };
        let (roots, excludes) = files.resolve().unwrap();
        assert_eq!(roots, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(excludes.len(), 1);
        let none = FilesArgs {
            paths: vec!["".into()],
            excludes: vec![],
        };
        assert!(none.resolve().is_err());
    }

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn paths_are_written_one_way() {
        for p in [
            "/etc/config",
            "/etc/config/",
            "/etc/config/.",
            "//etc/./config//",
        ] {
            assert_eq!(absolute(Path::new(p)), Path::new("/etc/config"), "{p}");
        }
        assert_eq!(absolute(Path::new("/a/../b/")), Path::new("/a/../b"));
        assert_eq!(absolute(Path::new("/")), Path::new("/"));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute(Path::new("./x/")), cwd.join("x"));
        let cli =
            Cli::try_parse_from(["driftprobe", "init", "/etc/config/.", "/etc/config/"]).unwrap();
        let Command::Init(args) = cli.command else {
            panic!("not init")
        };
        let watch = args.watch.resolve().unwrap();
        assert_eq!(watch.roots, [PathBuf::from("/etc/config")]);
        assert_eq!(watch.names(), ["/etc/config"]);
    }

    #[test]
    fn parses_a_probe_line_from_a_pod_spec() {
        let cli = Cli::try_parse_from([
            "driftprobe",
            "liveness",
            "--grace",
            "5m",
            "--exclude",
            "*.bak",
            "--env",
            "LOG_LEVEL=/etc/config/log_level",
            "/etc/config",
        ])
        .unwrap();
        let Command::Liveness(args) = cli.command else {
            panic!("not liveness")
        };
        assert_eq!(args.grace, Duration::from_secs(300));
        assert_eq!(args.probe.watch.files.excludes, ["*.bak"]);
        assert_eq!(
            args.probe.env,
            [(
                "LOG_LEVEL".to_string(),
                PathBuf::from("/etc/config/log_level")
            )]
        );
        assert_eq!(args.probe.on_drift, OnDrift::Fail);
    }

    #[test]
    fn run_takes_the_command_after_double_dash() {
        let cli = Cli::try_parse_from(["driftprobe", "run", "/etc/config", "--", "app", "--flag"])
            .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.watch.files.paths, [PathBuf::from("/etc/config")]);
        assert_eq!(args.command, ["app", "--flag"]);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for argv in [
            vec!["driftprobe", "liveness", "--grace", "5 minutes", "/x"],
            vec!["driftprobe", "readiness", "--on-error", "maybe", "/x"],
            vec!["driftprobe", "liveness", "--env", "NOEQUALS", "/x"],
            vec!["driftprobe", "liveness"],
            vec!["driftprobe", "run", "/x"],
        ] {
            let err = Cli::try_parse_from(&argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
    }
}
