//! What a probe's options ask it to do once drift is found (fail, reload by
//! signal or HTTP, adopt, report) and with which validator, checked up
//! front so that a typo fails at once; and the misconfigurations those
//! options make visible (timeouts that cannot fit, paths never there, a
//! state dir that cannot be written).

use super::{left_for_a_step, probe_deadline};
use crate::cli::{OnDrift, ProbeArgs};
use crate::proc::Target;
use crate::time::format_duration;
use crate::watch::Failure;
use crate::{reload_http, signal, validator};
use std::time::{Duration, Instant};

/// What to do once drift outlasts the grace window.
pub(super) enum Response {
    Fail,
    Reload(nix::sys::signal::Signal, Target),
    /// `--reload-url`: an HTTP request instead of a signal.
    Http(reload_http::HttpReload),
    Adopt,
    /// `--on-drift report`: observe only; pass, say `(report only)`.
    Report,
}

/// The options that only matter once drift is found, checked up front so
/// a typo fails at once (exit 2), not on the day the config changes.
pub(super) struct Reaction {
    pub(super) response: Response,
    pub(super) validator: Option<Vec<String>>,
    /// Options given that this probe does not use, for stderr.
    pub(super) warnings: Vec<String>,
}

pub(super) fn reaction(args: &ProbeArgs) -> Result<Reaction, Failure> {
    // The reload options are checked whenever they are given, used only
    // with --on-drift reload. Given without it they are a warning, not an
    // error: pod env vars (DRIFTPROBE_RELOAD_URL, DRIFTPROBE_SIGNAL) reach
    // the readiness probe too, which rightly has no --on-drift reload.
    let headers = reload_http::parse_headers(&args.reload_headers).map_err(Failure::Usage)?;
    let mut warnings = Vec::new();
    if !headers.is_empty() && args.reload_url.is_none() {
        warnings
            .push("driftprobe: warning: --reload-header is ignored without --reload-url".into());
    }
    let http = match &args.reload_url {
        Some(url) => Some(
            reload_http::HttpReload::new(url, &args.reload_method, args.reload_timeout, headers)
                .map_err(Failure::Usage)?,
        ),
        None => None,
    };
    let signal =
        signal::parse_signal(args.signal.as_deref().unwrap_or("HUP")).map_err(Failure::Usage)?;
    let response = match (args.on_drift, http) {
        (OnDrift::Reload, Some(http)) => Response::Http(http),
        (OnDrift::Reload, None) => Response::Reload(signal, app_target(args)),
        (on_drift, _) => {
            let unused = [
                ("--reload-url", args.reload_url.is_some()),
                ("--signal", args.signal.is_some()),
                ("--signal-handled", args.signal_handled),
            ];
            for (flag, _) in unused.iter().filter(|(_, given)| *given) {
                warnings.push(format!(
                    "driftprobe: warning: {flag} is ignored without --on-drift reload"
                ));
            }
            match on_drift {
                OnDrift::Adopt => Response::Adopt,
                OnDrift::Report => Response::Report,
                _ => Response::Fail,
            }
        }
    };
    let validator = match &args.validate {
        Some(v) if !v.trim().is_empty() => {
            let argv = validator::split_command(v).map_err(Failure::Usage)?;
            // A typo must not silently hold every config change forever.
            if validator::find_program(&argv[0]).is_none() {
                return Err(Failure::Usage(format!(
                    "--validate: {} is not an executable in PATH",
                    argv[0]
                )));
            }
            Some(argv)
        }
        _ => None,
    };
    Ok(Reaction {
        response,
        validator,
        warnings,
    })
}

/// The app's process: `--pidfile`, `--process`, `--pid`, or by default the
/// container's entrypoint (PID 1 unless the pod shares its PID namespace).
pub(super) fn app_target(args: &ProbeArgs) -> Target {
    if let Some(p) = &args.pidfile {
        Target::Pidfile(p.clone())
    } else if let Some(n) = &args.process {
        Target::Process(n.clone())
    } else {
        args.pid.map_or(Target::Entrypoint, Target::Pid)
    }
}

/// How long the validator may run: `--validate-timeout`, or what is left
/// of [`probe_deadline`] since the probe `started`.
pub(super) fn validate_timeout(args: &ProbeArgs, started: Instant) -> Duration {
    args.validate_timeout
        .unwrap_or_else(|| left_for_a_step(args, started))
}

/// The misconfigurations this probe can see from its options and this
/// look: each one makes the probe silently useless, so each is said once
/// per container (stderr and the container's log) and shown by `status`.
/// `missing`: watched paths that do not exist; `unsaved`: why the state
/// could not be saved.
pub fn misconfigurations(
    reaction_reloads_by_http: bool,
    args: &ProbeArgs,
    missing: &[String],
    unsaved: Option<&str>,
) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(fit) = timeouts_that_cannot_fit(reaction_reloads_by_http, args) {
        found.push(fit);
    }
    found.extend(missing.iter().map(|m| missing_path(m)));
    if let Some(why) = unsaved {
        found.push(format!(
            "the state dir cannot be written ({why}): drift and reloads are not remembered between probes; \
             use a writable emptyDir (--state-dir)"
        ));
    }
    found
}

/// The misconfiguration of a watched path `m` that does not exist.
pub(super) fn missing_path(m: &str) -> String {
    format!("watched path {m} does not exist: nothing there is watched (a typo, or a volume not mounted?)")
}

/// The slow steps one probe may take one after the other must fit
/// together inside [`probe_deadline`]: if they cannot, what that costs,
/// step by step.
fn timeouts_that_cannot_fit(reloads_by_http: bool, args: &ProbeArgs) -> Option<String> {
    let deadline = probe_deadline(args);
    // Each step with its timeout and what a slow one costs.
    let mut parts: Vec<(&str, Duration, &str)> = Vec::new();
    if args.app.http_get.is_some() || args.app.tcp_socket.is_some() || args.app.exec.is_some() {
        let t = args.app.app_timeout;
        // Cut to what fits (see `probe`); only alone can it not fit.
        let cost = "the app check is cut short to what fits, so an app slower than that fails the \
                    probe although --app-timeout allows it";
        parts.push(("--app-timeout", t, if t > deadline { cost } else { "" }));
    }
    if let (Some(_), Some(t)) = (&args.validate, args.validate_timeout) {
        let cost = "a slow validator is killed with the probe every time and the new config is never applied";
        parts.push(("--validate-timeout", t, cost));
    }
    if reloads_by_http {
        let cost = "a slow reload is killed with the probe and never recorded";
        parts.push(("--reload-timeout", args.reload_timeout, cost));
    }
    if parts.iter().map(|(_, t, _)| *t).sum::<Duration>() <= deadline {
        return None;
    }
    let join = |each: &dyn Fn(&(&str, Duration, &str)) -> String, by: &str| {
        let all: Vec<String> = parts.iter().map(each).filter(|s| !s.is_empty()).collect();
        all.join(by)
    };
    let named = join(
        &|(flag, t, _)| format!("{flag} {}", format_duration(*t)),
        " + ",
    );
    let flags = join(&|(flag, _, _)| flag.to_string(), " + ");
    let costs = join(&|(_, _, cost)| cost.to_string(), "; ");
    Some(format!(
        "{named} cannot fit inside --probe-timeout {}, where the kubelet kills the probe ({costs}): set \
         --probe-timeout to the probe's timeoutSeconds and keep {flags} under it, less 200ms",
        format_duration(args.probe_timeout)
    ))
}
