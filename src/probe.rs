//! The liveness and readiness probes: one pass of
//! app check → snapshot → drift record → validation gate → verdict → reload
//! → one line. The app's own check (`--http-get`, `--tcp-socket`,
//! `--exec`, see [`crate::app`]) runs first, outside the lock, and is ANDed
//! in: a failing app fails the probe and is named first in its line.
//!
//! Each look is done under the state lock, and the state is saved only when
//! it changed, so an unchanged tree costs a few `stat`s and no write. The
//! two things done without the lock are running `--validate` (it may take
//! seconds, and the other probe must not time out waiting): the look marks
//! the digest as being validated, the validator runs, and a second look
//! records its answer; and the `--reload-url` request, for the same reason
//! (see [`Step::Call`]).
//!
//! The probes of one container act as one through [`crate::shared`]: each
//! look first applies what any of them gave the app since (a reload by
//! liveness clears readiness's drift on the same files), and a reload is
//! claimed there first, so that one change gets one reload whichever
//! probes carry `--on-drift reload`.

use crate::action::{self, Target};
use crate::app;
use crate::baseline::{self, failure_report, new_baseline, Failure, Opened};
use crate::cli::{OnDrift, OnError, OnInvalid, ProbeArgs};
use crate::digest::Snapshot;
use crate::exit::Code;
use crate::mirror::{self, Class};
use crate::runtime;
use crate::shared::{self, Claim, Given, Intent, Names};
use crate::state::{Drift, Mirrored, Reload, State};
use crate::state::{EnvDrift, Loaded, Locked, Validating, Validation};
use crate::time::{self, clock_time, format_duration, Millis, Stamp};
use crate::verdict::{self, Changes, Verdict};
use crate::Report;
use std::path::Path;
use std::time::{Duration, Instant};

/// Keep this many validation results and reload records in the state.
const KEEP_VALIDATIONS: usize = 16;
const KEEP_RELOADS: usize = 20;
/// A validator that gave no answer (timeout, could not start) is asked
/// again after this long; one that said no, after the longer interval.
const VALIDATE_RETRY_MS: i64 = 60_000;
const REVALIDATE_MS: i64 = 600_000;
/// How long past its own timeout a validation marker is honoured.
const MARKER_SLACK: Duration = Duration::from_secs(2);
/// What a probe keeps back from `--probe-timeout` for itself: the walk's
/// retries, the state save, the line, the exec. See [`probe_deadline`].
const PROBE_MARGIN: Duration = Duration::from_millis(200);
const MIN_VALIDATE: Duration = Duration::from_millis(50);

/// How long from its start a probe may spend on work that can be slow
/// (the validator, and the timeouts of the app's own checks): inside
/// `--probe-timeout` (the kubelet's `timeoutSeconds`, 1s by default, so
/// 800ms), so that the probe, not the kubelet, ends a slow validator and
/// says so. The timeout less 200ms, and never less than half of it.
pub fn probe_deadline(args: &ProbeArgs) -> Duration {
    let t = args.probe_timeout;
    t.saturating_sub(PROBE_MARGIN).max(t / 2)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Liveness,
    Readiness,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
        }
    }

    fn default_on_error(self) -> OnError {
        match self {
            // A broken probe must never restart healthy pods everywhere.
            Kind::Liveness => OnError::Pass,
            // Better not ready than serving on a config we cannot vouch for.
            Kind::Readiness => OnError::Fail,
        }
    }
}

pub fn probe(kind: Kind, grace: Duration, args: &ProbeArgs) -> Report {
    let probe_start = Instant::now();
    let on_error = args.on_error.unwrap_or(kind.default_on_error());
    let app = match app::Check::from_args(&args.app) {
        Ok(app) => app,
        Err(m) => return Report::usage(m),
    };
    // The app's own check first, without the state lock (it may take up
    // to --app-timeout; the validator's default budget shrinks by it). A
    // failing app is a verdict (exit 1), not "cannot determine": the
    // files are still looked at, so the line can say both and drift keeps
    // being tracked.
    let app_failed = app.and_then(|c| c.run().err());
    match (check(kind, grace, args, probe_start), app_failed) {
        (Err(Failure::Usage(m)), _) => Report::usage(m),
        (Ok(report), None) => report,
        (Ok(report), Some(why)) => app_report(&why, report),
        (Err(f), Some(why)) => app_report(&why, failure_report(f)),
        (Err(f), None) => {
            let mut r = failure_report(f);
            if on_error == OnError::Pass {
                r.code = Code::Healthy;
                r.stdout.push_str(" (passing: --on-error pass)");
            }
            mirror_failure(kind, args, &mut r);
            r
        }
    }
}

/// The app failed its check (`why`): exit 1 whatever the files said, the
/// app named first ([`app::line`]).
fn app_report(why: &str, mut files: Report) -> Report {
    if files.code == Code::Usage {
        return files;
    }
    files.stdout = app::line(why, &files.stdout);
    files.code = Code::Drift;
    files
}

/// What to do once drift outlasts the grace window.
enum Response {
    Fail,
    Reload(nix::sys::signal::Signal, Target),
    /// `--reload-url`: an HTTP request instead of a signal.
    Http(action::HttpReload),
    Adopt,
    /// `--on-drift report`: observe only; pass, say `(report only)`.
    Report,
}

/// The options that only matter once drift is found, checked up front so
/// a typo fails at once (exit 2), not on the day the config changes.
struct Reaction {
    response: Response,
    validator: Option<Vec<String>>,
    /// Options given that this probe does not use, for stderr.
    warnings: Vec<String>,
}

fn reaction(args: &ProbeArgs) -> Result<Reaction, Failure> {
    // The reload options are checked whenever they are given, used only
    // with --on-drift reload. Given without it they are a warning, not an
    // error: pod env vars (DRIFTPROBE_RELOAD_URL, DRIFTPROBE_SIGNAL) reach
    // the readiness probe too, which rightly has no --on-drift reload.
    let headers = action::parse_headers(&args.reload_headers).map_err(Failure::Usage)?;
    let mut warnings = Vec::new();
    if !headers.is_empty() && args.reload_url.is_none() {
        warnings
            .push("driftprobe: warning: --reload-header is ignored without --reload-url".into());
    }
    let http = match &args.reload_url {
        Some(url) => Some(
            action::HttpReload::new(url, &args.reload_method, args.reload_timeout, headers)
                .map_err(Failure::Usage)?,
        ),
        None => None,
    };
    let signal =
        action::parse_signal(args.signal.as_deref().unwrap_or("HUP")).map_err(Failure::Usage)?;
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
            let argv = action::split_command(v).map_err(Failure::Usage)?;
            // A typo must not silently hold every config change forever.
            if action::find_program(&argv[0]).is_none() {
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
fn app_target(args: &ProbeArgs) -> Target {
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
fn validate_timeout(args: &ProbeArgs, started: Instant) -> Duration {
    args.validate_timeout.unwrap_or_else(|| {
        probe_deadline(args)
            .saturating_sub(started.elapsed())
            .max(MIN_VALIDATE)
    })
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
    // The slow steps one probe may take one after the other: together
    // they must fit.
    let mut parts: Vec<(&str, Duration)> = Vec::new();
    if args.app.http_get.is_some() || args.app.tcp_socket.is_some() || args.app.exec.is_some() {
        parts.push(("--app-timeout", args.app.app_timeout));
    }
    if let (Some(_), Some(t)) = (&args.validate, args.validate_timeout) {
        parts.push(("--validate-timeout", t));
    }
    if reaction_reloads_by_http {
        parts.push(("--reload-timeout", args.reload_timeout));
    }
    let total = parts.iter().map(|(_, t)| *t).sum::<Duration>();
    if total > probe_deadline(args) {
        let named = parts
            .iter()
            .map(|(flag, t)| format!("{flag} {}", format_duration(*t)))
            .collect::<Vec<_>>()
            .join(" + ");
        let flags = parts
            .iter()
            .map(|(flag, _)| *flag)
            .collect::<Vec<_>>()
            .join(" + ");
        found.push(format!(
            "{named} cannot fit inside --probe-timeout {} (the kubelet kills the probe first, so a slow validator \
             is killed with it every time and the new config is never applied, or a slow reload is never \
             recorded): set --probe-timeout to the probe's timeoutSeconds and keep {flags} under it, less 200ms",
            format_duration(args.probe_timeout)
        ));
    }
    for m in missing {
        found.push(format!(
            "watched path {m} does not exist: nothing there is watched (a typo, or a volume not mounted?)"
        ));
    }
    if let Some(why) = unsaved {
        found.push(format!(
            "the state dir cannot be written ({why}): drift and reloads are not remembered between probes; \
             use a writable emptyDir (--state-dir)"
        ));
    }
    found
}

fn check(
    kind: Kind,
    grace: Duration,
    args: &ProbeArgs,
    probe_start: Instant,
) -> Result<Report, Failure> {
    let reaction = reaction(args)?;
    let opened = baseline::open(&args.watch)?;
    let mut warnings = reaction.warnings.clone();
    if kind == Kind::Liveness && args.on_invalid_typed {
        warnings.push(
            "driftprobe: warning: --on-invalid is ignored by liveness (it always keeps the running config \
             and passes): give it to the readiness probe"
                .into(),
        );
    }
    let mut answer = None;
    let mut called = Called::Not;
    let mut validated = false;
    // Looks made again because another probe gave the app something
    // meanwhile (see `Step::Again`).
    let mut again = 0;
    // The validator runs without the lock (it may take seconds; the other
    // probe must not time out waiting), then the probe looks again. At most
    // once per probe: the kubelet's timeout is for one validation. The same
    // for the reload request.
    loop {
        let locked = opened.dir.lock(&opened.key, args.lock_timeout)?;
        let look = Look {
            kind,
            grace,
            args,
            reaction: &reaction,
            opened: &opened,
            locked: &locked,
            called: &called,
            started: probe_start,
        };
        let may_validate = !validated;
        match look.run(answer.take(), may_validate, &mut warnings)? {
            Step::Done(mut report) => {
                report.stderr = warnings;
                return Ok(report);
            }
            Step::Validate(digest) => {
                drop(locked);
                validated = true;
                let argv = reaction.validator.as_deref().unwrap_or(&[]);
                let mut started = |pid| note_validator(&opened, args, &digest, pid);
                let timeout = validate_timeout(args, probe_start);
                let verdict = action::validate(argv, timeout, &mut started);
                answer = Some((digest, verdict));
            }
            Step::Call(digest, claim) => {
                drop(locked);
                if let Response::Http(http) = &reaction.response {
                    called = Called::Answered(digest, http.call(), Box::new(claim));
                }
            }
            Step::Again if again < MAX_AGAIN => again += 1,
            Step::Again => {
                return Err(Failure::Unknown(
                    "what the probes of this container share kept changing under this probe".into(),
                ))
            }
        }
    }
}

/// The `--reload-url` request this probe made, for the look after it.
enum Called {
    Not,
    /// For this digest: what answered, or why it is not reloaded; and the
    /// claim it was made under, to release.
    Answered(String, Result<String, String>, Box<Claim>),
}

/// How many times a look is made again because the shared file changed
/// between the look and its claim.
const MAX_AGAIN: u32 = 5;

/// What came of asking for the one reload claim of the container.
enum Claimed {
    /// This probe reloads.
    Mine(Claim),
    /// Another probe is reloading right now.
    Busy(Box<Claim>),
    /// Another probe gave the app something since this look began: look
    /// again (it may be this very change).
    Again,
    /// The shared file cannot be locked or written.
    Failed(String),
}

/// What an `--on-drift adopt` probe does with an overdue drift.
enum Adoption {
    Adopt,
    /// Another probe of the container reloads (`liveness` or `readiness`).
    Wait(String),
    Busy(Box<Claim>),
    Again,
}

/// The line of a probe that leaves the reload to the one under way.
fn reloading_line(what: &str, since: Millis, c: &Claim) -> String {
    format!(
        "reloading: {what} since {}: another probe ({}) is reloading the app since {}; keeping the running \
         config meanwhile",
        clock_time(since),
        c.by,
        clock_time(c.at)
    )
}

/// What came of a signal reload.
enum Outcome {
    Done(String),
    Failed(String),
    /// Not signalled: the target's runtime would not reload on it.
    Refused(String),
    Busy(Box<Claim>),
    Again,
}

/// One look at the files under the lock.
struct Look<'a> {
    kind: Kind,
    grace: Duration,
    args: &'a ProbeArgs,
    reaction: &'a Reaction,
    opened: &'a Opened,
    locked: &'a Locked,
    called: &'a Called,
    /// When this probe started (the default validator timeout).
    started: Instant,
}

enum Step {
    Done(Report),
    /// Run the validator on this digest (without the lock), then look again.
    Validate(String),
    /// Another probe gave the app something between this look's start and
    /// its claim: look again.
    Again,
    /// Send the `--reload-url` request for this digest, then look again.
    ///
    /// Without the lock: the app may take up to `--reload-timeout` to
    /// answer (Prometheus answers `/-/reload` once the new config is
    /// loaded), and a concurrent probe gives up on the lock after
    /// `--lock-timeout` (800ms), so holding it across the call would turn a
    /// slow reload into a "cannot determine" of the other probe. The cost:
    /// two probes that both reload (`DRIFTPROBE_ON_DRIFT=reload` in the
    /// pod's env) could both ask for the same config: the claim in the
    /// container's shared file ([`shared`]), taken before the request and
    /// released after it, makes the other one say `reloading:` instead.
    /// The next look records the answer only if the files are still the
    /// ones it was asked for; otherwise the next probe asks again.
    Call(String, Claim),
}

impl Look<'_> {
    /// `answer`: what the validator said about a digest since the last
    /// look; `may_validate`: whether this look may ask for a validation.
    fn run(
        &self,
        answer: Option<(String, Validation)>,
        may_validate: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Step, Failure> {
        let (args, reaction, opened, locked) = (self.args, self.reaction, self.opened, self.locked);
        let (mut previous, note) = opened.previous(locked.load(opened.max_state_bytes()));
        let cache = previous.as_ref().map(|s| s.cache.as_slice()).unwrap_or(&[]);
        let mut snap = opened.snapshot(cache)?;
        // Wall time to record and show; elapsed time on the boot clock.
        let clock = time::Stamp::now();
        let now = clock.wall;
        warnings.extend(note.iter().map(|n| format!("driftprobe: {n}")));

        // The new state starts as the previous one, but with the cache the
        // walk just made: the old cache (thousands of strings in a large
        // tree) is not copied only to be replaced.
        let mut st = match previous.as_mut() {
            Some(p) => {
                let cache = std::mem::take(&mut p.cache);
                let copy = p.clone();
                p.cache = cache;
                copy
            }
            None => first_look(opened, &snap, clock)?,
        };
        st.cache = std::mem::take(&mut snap.cache);
        // What any probe of this container gave the app since this watch
        // set last looked.
        self.share(&mut st, previous.is_none(), &snap, clock, warnings);
        self.check_runtime(&mut st);
        // Once per container: the first probe shows what init/run or its
        // own first look found about the watch set.
        if st.warnings_pending {
            warnings.extend(
                st.warnings
                    .iter()
                    .map(|w| format!("driftprobe: warning: {w}")),
            );
            st.warnings_pending = false;
        }

        // The files: compared with the baseline by every probe.
        if st.baseline.is_some() {
            let base = st.baseline.as_ref().map(|b| b.digest.as_str());
            st.drift = verdict::track(base, &snap.digest, st.drift.as_ref(), clock);
        }
        // Dated by the files instead if it cannot be saved (below).
        let first_seen = st.drift.is_some() && previous.as_ref().is_some_and(|p| p.drift.is_none());
        // Without a recorded baseline a look that cannot be saved has
        // nothing to stand on.
        let baseline_recorded = previous.as_ref().is_some_and(|p| p.baseline.is_some());
        // Environment variables the app started with vs the files they
        // came from: each probe updates only the variables it was given.
        // When they cannot be read, the files are still judged and the drift
        // record kept; only a healthy verdict turns into "cannot determine".
        let proc_root = opened.proc.root.clone();
        let (env_drift, env_error) = if args.env.is_empty() {
            (Vec::new(), None)
        } else {
            match app_target(args)
                .resolve(&proc_root)
                .and_then(|pid| action::env_drift(&proc_root, pid, &args.env))
            {
                Ok(names) => (names, None),
                Err(e) => (Vec::new(), Some(e)),
            }
        };
        for (name, _) in args.env.iter().filter(|_| env_error.is_none()) {
            let seen = st.env_drift.iter().position(|e| &e.name == name);
            match (env_drift.contains(name), seen) {
                (true, None) => st.env_drift.push(EnvDrift {
                    name: name.clone(),
                    since: now,
                    since_boot: clock.boot,
                }),
                (false, Some(i)) => {
                    st.env_drift.remove(i);
                }
                _ => {}
            }
        }
        let env_since = st
            .env_drift
            .iter()
            .filter(|e| env_drift.contains(&e.name))
            .map(EnvDrift::started)
            .reduce(time::Stamp::earlier);

        // The validation gate: once per new digest, never for the baseline,
        // only for probes given --validate.
        let mut hold = None;
        if let Some((digest, v)) = answer {
            // Kept under its own digest even if the files moved on meanwhile.
            st.validations
                .retain(|(d, old)| !(d == &digest && old.command == v.command));
            st.validations.push((digest, v));
            let extra = st.validations.len().saturating_sub(KEEP_VALIDATIONS);
            st.validations.drain(..extra);
            st.validating = None;
        }
        let files_differ = st.baseline.as_ref().is_none_or(|b| b.digest != snap.digest);
        if reaction.validator.is_some() && st.drift.is_some() && files_differ {
            let command = reaction.validator.as_deref().unwrap_or(&[]).join(" ");
            let mark = marker(&st, &snap.digest, clock, &opened.proc);
            match settled_validation(&st, &snap.digest, &command, now) {
                Some(v) if v.ok => {}
                Some(v) if v.transient => hold = Some(Hold::NoAnswer(v.outcome.clone())),
                Some(v) => hold = Some(Hold::Rejected(v.outcome.clone())),
                None if !may_validate => hold = Some(Hold::Validating),
                None if mark == Marker::UnderWay => hold = Some(Hold::Validating),
                None if mark == Marker::Abandoned => {
                    // The probe that ran the validator is gone (the kubelet
                    // killed it at timeoutSeconds) or overdue: no answer
                    // will come. A verdict, not "validating:" forever:
                    // timed out, asked again after a while.
                    if let Some(Validating {
                        pgid: Some(pgid),
                        leader_start: Some(start),
                        ..
                    }) = st.validating.take()
                    {
                        action::kill_stale_validator(&proc_root, pgid, start);
                    }
                    let program = reaction.validator.as_deref().unwrap_or(&[]);
                    let outcome = format!(
                        "validator {} timed out: the probe running it was killed or overdue before it answered \
                         (keep the probe's timeoutSeconds above --validate-timeout)",
                        program.first().map(String::as_str).unwrap_or("?")
                    );
                    hold = Some(Hold::NoAnswer(outcome.clone()));
                    st.validations.push((
                        snap.digest.clone(),
                        Validation {
                            ok: false,
                            at: now,
                            output: String::new(),
                            outcome,
                            transient: true,
                            command,
                        },
                    ));
                    let extra = st.validations.len().saturating_sub(KEEP_VALIDATIONS);
                    st.validations.drain(..extra);
                }
                None => {
                    // A validator left behind by a probe the kubelet killed
                    // dies before a new one starts.
                    if let Some(Validating {
                        pgid: Some(pgid),
                        leader_start: Some(start),
                        ..
                    }) = st.validating.take()
                    {
                        action::kill_stale_validator(&proc_root, pgid, start);
                    }
                    let timeout = validate_timeout(args, self.started);
                    let owner = opened.proc.me();
                    st.validating = Some(Validating {
                        digest: snap.digest.clone(),
                        until: time::after(now, timeout + MARKER_SLACK),
                        until_boot: clock.boot.map(|b| time::after(b, timeout + MARKER_SLACK)),
                        pgid: None,
                        leader_start: None,
                        owner: owner.map(|o| o.0),
                        owner_start: owner.map(|o| o.1),
                    });
                    // The marker only keeps a concurrent probe from running
                    // the same validator at the same time: a state dir that
                    // cannot hold it (full, read-only) costs that, not the
                    // verdict, once a baseline is recorded.
                    if let Err(e) = locked.save(&st) {
                        if !baseline_recorded {
                            return Err(e.into());
                        }
                        warnings.push(format!(
                            "driftprobe: warning: {e}; validating without a marker (another probe may validate \
                             the same config meanwhile, and the answer is not remembered)"
                        ));
                    }
                    return Ok(Step::Validate(snap.digest.clone()));
                }
            }
            // Only a verdict holds the drift record; "being validated" does
            // not restart anyone's grace window.
            if hold != Some(Hold::Validating) {
                st.drift = verdict::gate(st.drift.take(), hold.is_some(), clock);
            }
        }
        if st.drift.is_none() {
            st.validating = None;
        }

        // What this look learned is saved before it is judged and acted
        // on: one save, and only when something changed (an unchanged
        // tree costs no write).
        let mut saved = false;
        let mut unsaved = None;
        if Some(&st) != previous.as_ref() {
            match locked.save(&st) {
                Ok(()) => saved = true,
                // A full or read-only state dir: the verdict comes from the
                // recorded baseline and stands; only this look is not
                // remembered.
                Err(e) if baseline_recorded => {
                    warnings.push(format!(
                        "driftprobe: warning: {e}; judged by the recorded baseline, but this look is not remembered"
                    ));
                    if first_seen {
                        // A drift that cannot be remembered would start its
                        // grace window again at every probe: date it from
                        // the files instead, as the lazy baseline's proof
                        // dates them (in a read-only kubelet volume by its
                        // swap, not by ctimes the fsGroup pass keeps
                        // moving). That is never before the drift began,
                        // so the window can only end late, not early.
                        let start = time::ticks_to_boot_ms(opened.container.init_start_ticks);
                        let mountinfo = opened.proc.root.join("self/mountinfo");
                        let changed =
                            baseline::newest_content_change(&opened.watch.roots, &snap, &mountinfo)
                                .ok()
                                .flatten()
                                .or(snap.newest_change_ns);
                        st.drift = st
                            .drift
                            .take()
                            .map(|d| dated_by_ctime(d, changed, Some(start)));
                    }
                    unsaved = Some(e.to_string());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let drift = verdict::combine(st.drift.as_ref(), env_since);
        // The hostname is read only when a stagger asks for it.
        let offset = if args.stagger.is_zero() {
            Duration::ZERO
        } else {
            verdict::stagger_offset(&hostname(&proc_root), args.stagger)
        };
        let window = self.grace.saturating_add(offset);
        let verdict = verdict::judge(drift.as_ref(), clock, window, hold.is_some());
        let in_grace = !matches!(verdict, Verdict::Overdue { .. });
        let report_only = matches!(reaction.response, Response::Report);
        // `--on-drift report`: every drift-related line says so.
        let only = if report_only { " (report only)" } else { "" };
        // While another probe validates, readiness keeps its normal window.
        let plain = verdict::judge(drift.as_ref(), clock, window, false);
        let changes = match &st.baseline {
            Some(b) => Changes::between(&b.files, &snap.files),
            None => Changes::default(),
        };
        let what = describe(&st, &changes, &env_drift, &snap);
        let window_text = if offset.is_zero() {
            format!("grace {}", format_duration(self.grace))
        } else {
            format!(
                "grace {} + stagger {}",
                format_duration(self.grace),
                format_duration(offset)
            )
        };

        // A reload must be remembered: one that is not would be sent again
        // at every probe (a SIGHUP or POST each period, each printing
        // "reloaded"). So it is made only once this look is known to be
        // saved; a state dir that cannot be written turns it into a plain
        // drift: after the grace window liveness fails and the kubelet
        // restarts the container onto the new config, the safe fallback.
        let reload_due = matches!(verdict, Verdict::Overdue { .. })
            && env_drift.is_empty()
            && matches!(self.called, Called::Not)
            && matches!(reaction.response, Response::Reload(..) | Response::Http(_));
        let cannot_remember = match reload_due {
            true => remember(locked, &st, unsaved.as_deref(), saved).err(),
            false => None,
        };
        // Set when the reload request is to be sent (after saving), with
        // the claim it is sent under.
        let mut call = None;
        // Set once this look released the claim of its reload request.
        let mut released = false;
        // Set when the response changed the state (a new baseline).
        let mut adopted = false;
        let (code, line) = match verdict {
            Verdict::Healthy => {
                let b = st.baseline.as_ref();
                (
                    Code::Healthy,
                    format!(
                        "ok: config matches the baseline ({}, recorded {} by {})",
                        baseline::files(snap.files.len()),
                        b.map(|b| clock_time(b.recorded_at)).unwrap_or_default(),
                        b.map(|b| b.source.as_str()).unwrap_or("?"),
                    ),
                )
            }
            Verdict::Drifting { since, left } => (
                Code::Healthy,
                format!(
                    "drift: {what} since {} ({window_text}, {} left){only}",
                    clock_time(since),
                    format_duration(left)
                ),
            ),
            Verdict::Invalid { since } => {
                let hold = hold.unwrap_or(Hold::Validating);
                let within_grace = matches!(plain, Verdict::Drifting { .. });
                let code = match (self.kind, args.on_invalid) {
                    _ if report_only => Code::Healthy,
                    (Kind::Liveness, _) | (Kind::Readiness, OnInvalid::Pass) => Code::Healthy,
                    (Kind::Readiness, _) if hold == Hold::Validating && within_grace => {
                        Code::Healthy
                    }
                    (Kind::Readiness, OnInvalid::Fail) => Code::Drift,
                };
                (code, format!("{}{only}", hold.line(&what, since)))
            }
            Verdict::Overdue { since, .. } => {
                // A failing line becomes an Event, and the kubelet folds
                // only identical ones: no "exceeded by 1234ms" that ticks
                // at every probe, but the (wall) time the window ended.
                let ended = since.saturating_add(window.as_millis().min(i64::MAX as u128) as i64);
                let overdue = format!(
                    "drift: {what} since {} ({window_text}, ended {})",
                    clock_time(since),
                    clock_time(ended)
                );
                match &reaction.response {
                Response::Fail => (Code::Drift, overdue),
                Response::Report => (Code::Healthy, format!("{overdue}{only}")),
                Response::Reload(..) | Response::Http(..) | Response::Adopt if !env_drift.is_empty() => (
                    Code::Drift,
                    format!("{overdue}; a reload cannot change environment variables, only a restart can"),
                ),
                Response::Reload(..) | Response::Http(_) if cannot_remember.is_some() => (
                    Code::Drift,
                    format!(
                        "{overdue}; not reloaded, the state dir cannot be written ({}): a reload that is not \
                         remembered would be repeated at every probe",
                        cannot_remember.as_deref().unwrap_or_default()
                    ),
                ),
                Response::Reload(signal, target) => {
                    match self.signal_reload(*signal, target, &mut st, &snap, clock, warnings) {
                        Outcome::Done(done) => {
                            adopted = true;
                            (Code::Healthy, format!("reloaded: {what}: {done}"))
                        }
                        Outcome::Failed(why) => (Code::Drift, format!("{overdue}; reload failed: {why}")),
                        Outcome::Refused(why) => (Code::Drift, format!("{overdue}; not reloaded: {why}")),
                        Outcome::Busy(c) => (Code::Healthy, reloading_line(&what, since, &c)),
                        Outcome::Again => return Ok(Step::Again),
                    }
                }
                Response::Http(http) => match self.called {
                    Called::Not => {
                        let files = Names::of(&opened.watch).files(st.baseline.as_ref(), &snap.files);
                        match self.take_claim(files, http.timeout, clock, st.given_seq) {
                            Claimed::Mine(claim) => {
                                call = Some(claim);
                                (Code::Drift, String::new())
                            }
                            Claimed::Busy(c) => (Code::Healthy, reloading_line(&what, since, &c)),
                            Claimed::Again => return Ok(Step::Again),
                            Claimed::Failed(e) => (
                                Code::Drift,
                                format!("{overdue}; not reloaded, the reload cannot be claimed ({e}): two probes could both reload"),
                            ),
                        }
                    }
                    Called::Answered(digest, Ok(said), claim) if *digest == snap.digest => {
                        let target = http.url.to_string();
                        adopted = true;
                        released = true;
                        self.release(claim, true, &mut st, now, warnings);
                        record_reload(&mut st, &http.method, 0, target, &snap, now);
                        (
                            Code::Healthy,
                            format!("reloaded: {what}: {said}; now the baseline"),
                        )
                    }
                    Called::Answered(digest, Err(why), _) if *digest == snap.digest => {
                        (Code::Drift, format!("{overdue}; reload failed: {why}"))
                    }
                    Called::Answered(..) => (
                        Code::Drift,
                        format!("{overdue}; the files changed again during the reload request: asking again on the next probe"),
                    ),
                },
                // Adopting changes nothing in the app: when it cannot be
                // remembered (warned on stderr) the next probe adopts again,
                // harmlessly. Beside a probe that reloads, the reload is
                // left to it: adopting first would swallow the change.
                Response::Adopt => match self.adopt_shared(&mut st, &snap, clock, unsaved.is_none(), warnings) {
                    Adoption::Busy(c) => (Code::Healthy, reloading_line(&what, since, &c)),
                    Adoption::Wait(by) => (
                        Code::Healthy,
                        format!(
                            "reloading: {what} since {}: left to the reload by another probe of this container ({by} \
                             --on-drift reload); not adopted",
                            clock_time(since)
                        ),
                    ),
                    Adoption::Again => return Ok(Step::Again),
                    Adoption::Adopt => {
                        adopted = true;
                        adopt(&mut st, &snap, now, "adopt");
                        (
                            Code::Healthy,
                            format!("adopted: {what}: now the baseline (the app reloads by itself)"),
                        )
                    }
                },
            }
            }
        };

        // The new baseline; a failure to save it was a failure to save
        // the look as well, already warned about.
        if adopted && unsaved.is_none() {
            if let Err(e) = locked.save(&st) {
                warnings.push(format!(
                    "driftprobe: warning: {e}; the new baseline is not remembered"
                ));
            }
        }
        if let Some(claim) = call {
            return Ok(Step::Call(snap.digest.clone(), claim));
        }
        // A request that reloaded nothing (failed, or for files that have
        // changed since) leaves the next reload to whoever comes first.
        if let (Called::Answered(_, _, claim), false) = (self.called, released) {
            self.release(claim, false, &mut st, now, warnings);
        }
        if let (Some(e), Code::Healthy) = (env_error, code) {
            // The files are fine, the environment unknown: no false "ok".
            return Err(Failure::Unknown(format!("--env: {e}")));
        }
        // What is new for the container's log: a changed verdict class
        // (`--log-changes`), a misconfiguration not told yet. Remembered
        // with one more save, only when something was new.
        let by_http = matches!(reaction.response, Response::Http(_));
        // A path missing while the files match the baseline never existed
        // in this container (a typo, a volume not mounted); one that went
        // away since is drift, and its line says so.
        let never_there: &[String] = if st.drift.is_none() {
            &snap.missing
        } else {
            &[]
        };
        let problems = misconfigurations(by_http, args, never_there, unsaved.as_deref());
        let class = args.log_changes.then(|| Class::of(&line, in_grace));
        if mirror(
            self.kind, args, &proc_root, &mut st, class, &problems, &line, warnings,
        ) && unsaved.is_none()
        {
            if let Err(e) = locked.save(&st) {
                warnings.push(format!(
                    "driftprobe: warning: {e}; what was written to the container's log is not remembered"
                ));
            }
        }
        // The answer is the last thing this process does: leave the states
        // and the snapshot to the exit rather than free their thousands of
        // strings one by one (6% of a 1,000-file probe's instructions).
        std::mem::forget((st, previous, snap));
        Ok(Step::Done(Report::new(code, line)))
    }
}

impl Look<'_> {
    /// This probe among the container's reloaders.
    fn reloader(&self) -> shared::Reloader {
        shared::Reloader::of(self.kind.name(), &self.opened.key, &self.opened.watch)
    }

    fn reloads(&self) -> bool {
        matches!(
            self.reaction.response,
            Response::Reload(..) | Response::Http(_)
        )
    }

    /// A live process's start time; `None` once it exited (a zombie too).
    fn start_ticks_of(&self, pid: i32) -> Option<u64> {
        self.opened.proc.live_start_ticks(pid)
    }

    /// Once per container instance, a probe that reloads by signal looks
    /// at its target's runtime: a Go program or a JVM would not be
    /// signalled (see [`runtime`]), and that is said now, on the first
    /// probe's stderr and in `status`, not first on the day the config
    /// changes. A target that cannot be resolved yet (no pidfile) is
    /// looked at by a later probe.
    fn check_runtime(&self, st: &mut State) {
        let Response::Reload(signal, target) = &self.reaction.response else {
            return;
        };
        if self.args.signal_handled || st.runtime_checked {
            return;
        }
        let root = &self.opened.proc.root;
        let Ok(pid) = target.resolve(root) else {
            return;
        };
        st.runtime_checked = true;
        if let Some(rt) = runtime::of(root, pid) {
            let why = runtime::refusal(rt, pid, &action::comm(root, pid), *signal);
            st.warnings
                .push(format!("--on-drift reload will not signal: {why}"));
            st.warnings_pending = true;
        }
    }

    fn lock_shared(&self) -> Result<shared::Held, String> {
        let opened = self.opened;
        shared::lock(&opened.dir, &opened.container, self.args.lock_timeout)
            .map_err(|e| e.to_string())
    }

    /// Is `c` a claim that still stands: an HTTP request under way in a
    /// probe that is still running, within its time? A signal claim never
    /// does once the lock is ours: it is made and ended within one hold.
    fn standing(&self, c: &Claim, now: Stamp) -> bool {
        c.signal.is_none() && c.live(now) && c.holder_alive(|pid| self.start_ticks_of(pid))
    }

    /// Ends a claim in `shared` that no longer stands: one left by a probe
    /// killed after sending its signal counts as that reload done (its
    /// files given); the note for stderr says so. `Err` with a claim that
    /// still stands.
    fn clear_claim(
        &self,
        shared: &mut shared::Shared,
        now: Stamp,
    ) -> Result<Option<String>, Box<Claim>> {
        let Some(c) = shared.claim.take() else {
            return Ok(None);
        };
        if self.standing(&c, now) {
            return Err(Box::new(c));
        }
        let (Some(intent), true) = (&c.signal, c.settle(now, |pid| self.start_ticks_of(pid)))
        else {
            return Ok(None);
        };
        shared.give(&c.files, c.at, "reload");
        Ok(Some(format!(
            "driftprobe: {} sent {} to pid {} at {} and was killed before recording it: taken as sent, not sent \
             again",
            c.by,
            intent.signal,
            intent.pid,
            clock_time(c.at)
        )))
    }

    /// Applies to this watch set's baseline what any probe of the container
    /// gave the app since it last looked; first ends a claim left by a
    /// killed probe, and registers this probe among the reloaders once.
    /// Failures here only cost the sharing: warned.
    fn share(
        &self,
        st: &mut State,
        fresh: bool,
        snap: &Snapshot,
        now: Stamp,
        warnings: &mut Vec<String>,
    ) {
        let opened = self.opened;
        let mut found = shared::peek(&opened.dir, &opened.container);
        let register = self.reloads()
            && found
                .as_ref()
                .is_none_or(|s| !s.reloaders.contains(&self.reloader()));
        let left = |s: &shared::Shared| s.claim.as_ref().is_some_and(|c| !self.standing(c, now));
        if register || found.as_ref().is_some_and(left) {
            match self.lock_shared() {
                Ok(mut held) => {
                    let before = held.shared.clone();
                    match self.clear_claim(&mut held.shared, now) {
                        Ok(note) => warnings.extend(note),
                        // Still standing: put back.
                        Err(c) => held.shared.claim = Some(*c),
                    }
                    if self.reloads() && !held.shared.reloaders.contains(&self.reloader()) {
                        held.shared.reloaders.push(self.reloader());
                    }
                    if held.shared != before {
                        if let Err(e) = held.save() {
                            warnings.push(format!("driftprobe: warning: {e}"));
                        }
                    }
                    found = Some(held.shared);
                }
                Err(e) => warnings.push(format!("driftprobe: warning: {e}")),
            }
        }
        let seq = found.as_ref().map_or(0, |s| s.seq);
        if fresh {
            // A baseline recorded now already holds all that was given.
            st.given_seq = seq;
            return;
        }
        if let Some(sh) = found.as_ref().filter(|_| seq != st.given_seq) {
            // A shared file started over (removed, unusable): all of it.
            let since = if seq < st.given_seq { 0 } else { st.given_seq };
            if let Some(b) = st.baseline.as_mut() {
                Names::of(&opened.watch).apply(sh, since, b, &snap.files);
            }
        }
        st.given_seq = seq;
    }

    /// Claims the container's one reload for this probe's HTTP request
    /// (under the shared lock, inside this watch set's), unless another
    /// probe's claim stands, or the app was given something since this
    /// look applied `applied`.
    fn take_claim(&self, files: Vec<Given>, lasts: Duration, now: Stamp, applied: u64) -> Claimed {
        let mut held = match self.lock_shared() {
            Ok(h) => h,
            Err(e) => return Claimed::Failed(e),
        };
        if let Err(c) = self.clear_claim(&mut held.shared, now) {
            return Claimed::Busy(c);
        }
        if held.shared.seq != applied {
            return match held.save() {
                Ok(()) => Claimed::Again,
                Err(e) => Claimed::Failed(e.to_string()),
            };
        }
        let start = self.start_ticks_of(std::process::id() as i32).unwrap_or(0);
        let claim = shared::claim(
            self.kind.name(),
            &self.opened.key,
            start,
            now,
            lasts,
            files,
            None,
        );
        held.shared.claim = Some(claim.clone());
        match held.save() {
            Ok(()) => Claimed::Mine(claim),
            Err(e) => Claimed::Failed(e.to_string()),
        }
    }

    /// Ends this probe's HTTP claim; `given`: the app got its files
    /// (recorded as given, and as applied to this watch set when nothing
    /// else came between). A claim that expired and was taken over stays.
    fn release(
        &self,
        claim: &Claim,
        given: bool,
        st: &mut State,
        now: Millis,
        warnings: &mut Vec<String>,
    ) {
        let mut held = match self.lock_shared() {
            Ok(h) => h,
            Err(e) => {
                warnings.push(format!(
                    "driftprobe: warning: {e}; the reload claim ends with this probe"
                ));
                return;
            }
        };
        let before = held.shared.seq;
        if given {
            held.shared.give(&claim.files, now, "reload");
        }
        if held
            .shared
            .claim
            .as_ref()
            .is_some_and(|c| c.pid == claim.pid && c.at == claim.at)
        {
            held.shared.claim = None;
        }
        match held.save() {
            Ok(()) if given && before == st.given_seq => st.given_seq = held.shared.seq,
            Ok(()) => {}
            Err(e) => warnings.push(format!(
                "driftprobe: warning: {e}; the reload claim ends with this probe"
            )),
        }
    }

    /// Signals the app within one hold of the shared lock: the claim (with
    /// its target) is saved before `kill(2)`, marked sent right after it,
    /// and ended with the files given. A probe killed after `kill(2)`
    /// leaves a marked claim, and the next probe does not signal again.
    fn signal_reload(
        &self,
        signal: nix::sys::signal::Signal,
        target: &Target,
        st: &mut State,
        snap: &Snapshot,
        now: Stamp,
        warnings: &mut Vec<String>,
    ) -> Outcome {
        let proc = &self.opened.proc;
        let pid = match target.resolve(&proc.root) {
            Ok(pid) => pid,
            Err(e) => return Outcome::Failed(e),
        };
        // Gone, or a zombie (exited, not reaped): nothing to reload.
        let Some(start_ticks) = self.start_ticks_of(pid) else {
            return Outcome::Failed(format!("no process {pid}"));
        };
        if let Err(e) = action::may_signal(&proc.root, pid, signal) {
            return Outcome::Failed(e);
        }
        let name = action::comm(&proc.root, pid);
        // Caught is not handled: Go and the JVM catch SIGHUP to exit.
        if !self.args.signal_handled {
            if let Some(rt) = runtime::of(&proc.root, pid) {
                return Outcome::Refused(runtime::refusal(rt, pid, &name, signal));
            }
        }
        let files = Names::of(&self.opened.watch).files(st.baseline.as_ref(), &snap.files);
        let unclaimed = |e: String| {
            Outcome::Failed(format!(
                "not signalled, the reload cannot be claimed ({e}): two probes could both reload"
            ))
        };
        let mut held = match self.lock_shared() {
            Ok(h) => h,
            Err(e) => return unclaimed(e),
        };
        match self.clear_claim(&mut held.shared, now) {
            Err(c) => return Outcome::Busy(c),
            Ok(Some(note)) => warnings.push(note),
            Ok(None) => {}
        }
        if held.shared.seq != st.given_seq {
            return match held.save() {
                Ok(()) => Outcome::Again,
                Err(e) => unclaimed(e.to_string()),
            };
        }
        let me = self.start_ticks_of(std::process::id() as i32).unwrap_or(0);
        let intent = Intent {
            signal: signal.as_str().into(),
            pid,
            start_ticks,
            sent: false,
        };
        held.shared.claim = Some(shared::claim(
            self.kind.name(),
            &self.opened.key,
            me,
            now,
            Duration::ZERO,
            files.clone(),
            Some(intent),
        ));
        if let Err(e) = held.save() {
            return unclaimed(e.to_string());
        }
        let marker = held.marker();
        let sent = action::deliver(pid, signal, &name);
        if let (Ok(()), Some(m)) = (&sent, &marker) {
            let _ = m.set();
        }
        // A target that died of it was not reloaded, and is not given the
        // files. A probe killed while it waits leaves the claim marked
        // sent, and the next one settles it only if the target lives.
        let sent =
            sent.and_then(
                |()| match action::survives(proc, pid, start_ticks, action::SURVIVAL) {
                    true => Ok(()),
                    false => Err(format!("pid {pid} ({name}) exited after {signal}")),
                },
            );
        held.shared.claim = None;
        if sent.is_ok() {
            held.shared.give(&files, now.wall, "reload");
        }
        match held.save() {
            Ok(()) if sent.is_ok() => st.given_seq = held.shared.seq,
            Ok(()) => {}
            Err(e) => warnings.push(format!("driftprobe: warning: {e}")),
        }
        drop(held);
        if let Err(e) = sent {
            return Outcome::Failed(e);
        }
        record_reload(st, signal.as_str(), pid, target.describe(), snap, now.wall);
        Outcome::Done(format!(
            "sent {signal} to pid {pid} ({name}); now the baseline"
        ))
    }

    /// Before adopting: beside a probe that reloads, leave it to that one
    /// (adopting first would swallow the change); else record the files as
    /// given, so every watch set holding them sees the adoption.
    fn adopt_shared(
        &self,
        st: &mut State,
        snap: &Snapshot,
        now: Stamp,
        remembered: bool,
        warnings: &mut Vec<String>,
    ) -> Adoption {
        let mut held = match self.lock_shared() {
            Ok(h) => h,
            Err(e) => {
                warnings.push(format!(
                    "driftprobe: warning: {e}; adopted for this watch set only"
                ));
                return Adoption::Adopt;
            }
        };
        if let Err(c) = self.clear_claim(&mut held.shared, now) {
            return Adoption::Busy(c);
        }
        if held.shared.seq != st.given_seq {
            let _ = held.save();
            return Adoption::Again;
        }
        // The files that changed: left to a reloader that watches one.
        let files = Names::of(&self.opened.watch).files(st.baseline.as_ref(), &snap.files);
        let before: Vec<Given> = st
            .baseline
            .as_ref()
            .map(|b| Names::of(&self.opened.watch).files(None, &b.files))
            .unwrap_or_default();
        let changed = files
            .iter()
            .filter(|f| !before.contains(f))
            .map(|f| f.path.as_str());
        let by = changed
            .flat_map(|p| held.shared.reloaders.iter().filter(move |r| r.watches(p)))
            .next();
        if let Some(r) = by {
            return Adoption::Wait(r.by.clone());
        }
        if remembered {
            held.shared.give(&files, now.wall, "adopt");
            match held.save() {
                Ok(()) => st.given_seq = held.shared.seq,
                Err(e) => warnings.push(format!(
                    "driftprobe: warning: {e}; adopted for this watch set only"
                )),
            }
        }
        Adoption::Adopt
    }
}

/// Where the container's log is: the stdout of the app's process
/// ([`app_target`]). In the host's PID namespace there is no container
/// entrypoint (PID 1 is the machine's init): never written to by default.
fn log_target(args: &ProbeArgs, proc_root: &Path) -> Result<i32, String> {
    let target = app_target(args);
    if matches!(target, Target::Entrypoint) && mirror::in_host_pid_namespace(proc_root) {
        return Err(
            "this probe runs in the host's PID namespace, which has no container entrypoint (PID 1 is the \
             machine's init): not written (name the process with --pid, --pidfile or --process)"
                .into(),
        );
    }
    target.resolve(proc_root)
}

/// Writes to the container's log what is new for probe `kind` since it
/// last wrote there (see [`mirror::news`]): misconfigurations first (also
/// on stderr), then `line` if its class changed. Records that in `st`
/// (with why a write failed, for `status`); true when `st` changed.
#[allow(clippy::too_many_arguments)]
fn mirror(
    kind: Kind,
    args: &ProbeArgs,
    proc_root: &Path,
    st: &mut State,
    class: Option<Class>,
    problems: &[String],
    line: &str,
    warnings: &mut Vec<String>,
) -> bool {
    let at = st.mirrored.iter().position(|m| m.probe == kind.name());
    let blank = Mirrored {
        probe: kind.name().into(),
        ..Mirrored::default()
    };
    let before = at.map_or_else(|| blank.clone(), |i| st.mirrored[i].clone());
    let mut rec = before.clone();
    let (fresh, changed) = mirror::news(&mut rec, class, problems);
    let mut lines: Vec<String> = fresh
        .iter()
        .map(|p| format!("misconfigured: {p}"))
        .collect();
    warnings.extend(lines.iter().map(|l| format!("driftprobe: warning: {l}")));
    if changed {
        lines.push(line.to_string());
    }
    if !lines.is_empty() {
        rec.failed = log_target(args, proc_root)
            .and_then(|pid| {
                lines.iter().try_for_each(|l| {
                    mirror::write_to_stdout_of(proc_root, pid, &mirror::log_line(kind.name(), l))
                })
            })
            .err();
    }
    if rec == before {
        return false;
    }
    match at {
        Some(i) => st.mirrored[i] = rec,
        None if rec == blank => return false,
        None => st.mirrored.push(rec),
    }
    true
}

/// After a "cannot determine": a state dir that cannot be used is told
/// (stderr and the container's log) at every probe, as there is nowhere to
/// remember it was; otherwise, with `--log-changes`, the change to "cannot
/// determine" is mirrored if this container has a state to remember it in
/// (a quick lock: this probe has spent its time already).
fn mirror_failure(kind: Kind, args: &ProbeArgs, report: &mut Report) {
    let proc_root = crate::state::Proc::default().root;
    if let Err(e) = crate::state::StateDir::open(&args.watch.state_dir) {
        let problem = format!(
            "misconfigured: the state dir cannot be used ({e}): nothing is remembered between probes; use a writable \
             emptyDir (--state-dir)"
        );
        report
            .stderr
            .push(format!("driftprobe: warning: {problem}"));
        let _ = log_target(args, &proc_root).and_then(|pid| {
            mirror::write_to_stdout_of(&proc_root, pid, &mirror::log_line(kind.name(), &problem))
        });
        return;
    }
    if !args.log_changes {
        return;
    }
    let Ok(opened) = baseline::open(&args.watch) else {
        return;
    };
    let Ok(locked) = opened.dir.lock(&opened.key, Duration::from_millis(100)) else {
        return;
    };
    let (Some(mut st), _) = opened.previous(locked.load(opened.max_state_bytes())) else {
        return;
    };
    let mut warnings = Vec::new();
    let class = Some(Class::CannotDetermine);
    if mirror(
        kind,
        args,
        &proc_root,
        &mut st,
        class,
        &[],
        &report.stdout,
        &mut warnings,
    ) {
        let _ = locked.save(&st);
    }
    report.stderr.extend(warnings);
}

/// The cached answer of `command` for `digest`, unless it is time to ask
/// again.
fn settled_validation<'s>(
    st: &'s State,
    digest: &str,
    command: &str,
    now: Millis,
) -> Option<&'s Validation> {
    let (_, v) = st
        .validations
        .iter()
        .find(|(d, v)| d == digest && v.command == command)?;
    let keep_for = match (v.ok, v.transient) {
        (true, _) => return Some(v),
        // No answer: ask again soon.
        (false, true) => VALIDATE_RETRY_MS,
        // A "no" may depend on files outside the watched set: ask again
        // now and then.
        (false, false) => REVALIDATE_MS,
    };
    // An answer from the future (the wall clock stepped back) is asked
    // again rather than kept for as long as the step.
    (0..keep_for)
        .contains(&now.saturating_sub(v.at))
        .then_some(v)
}

/// Records the running validator's process group in the marker (best
/// effort: without it, a validator orphaned by a killed probe is not
/// cleaned up, nothing worse).
fn note_validator(opened: &Opened, args: &ProbeArgs, digest: &str, pid: i32) {
    let Ok(locked) = opened.dir.lock(&opened.key, args.lock_timeout) else {
        return;
    };
    let Loaded::Found(mut st) = locked.load(opened.max_state_bytes()) else {
        return;
    };
    if let Some(v) = st.validating.as_mut().filter(|v| v.digest == digest) {
        v.pgid = Some(pid);
        v.leader_start = opened.proc.start_ticks(pid).ok();
        let _ = locked.save(&st);
    }
}

/// What the state's validation marker says about `digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// No marker for this digest: validate.
    None,
    /// Another probe is running the validator on it right now.
    UnderWay,
    /// A probe started the validator on it and will never answer: it is
    /// gone (the kubelet kills a probe at timeoutSeconds, not the
    /// validator, which runs in its own process group) or overdue.
    Abandoned,
}

/// Reads the validation marker. A marker is under way while its probe
/// runs and until that validator's own timeout (on the boot clock: a wall
/// clock stepped back must not keep it alive for as long as the step).
fn marker(st: &State, digest: &str, now: time::Stamp, proc: &crate::state::Proc) -> Marker {
    let Some(v) = st.validating.as_ref().filter(|v| v.digest == digest) else {
        return Marker::None;
    };
    let in_time = match (v.until_boot, now.boot) {
        (Some(until), Some(boot)) => boot < until,
        _ => now.wall < v.until,
    };
    let owner_gone = match (v.owner, v.owner_start) {
        (Some(pid), Some(start)) => proc.running(pid, start) == Some(false),
        _ => false,
    };
    if in_time && !owner_gone {
        Marker::UnderWay
    } else {
        Marker::Abandoned
    }
}

/// Why a probe keeps the running config instead of acting on the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hold {
    /// The validator said no: how (`exit 1`), never what it printed,
    /// which may quote a Secret and would end up in Events.
    Rejected(String),
    /// The validator gave no answer: why (timed out, could not start).
    NoAnswer(String),
    /// Another probe is validating right now.
    Validating,
}

impl Hold {
    fn line(&self, what: &str, since: Millis) -> String {
        let since = clock_time(since);
        match self {
            Hold::Rejected(how) => format!(
                "invalid: {what} since {since} rejected by the validator ({}), keeping the running config; its output: \
                 `driftprobe status`",
                outcome(how)
            ),
            Hold::NoAnswer(why) => format!(
                "invalid: {what} since {since} could not be validated ({}), keeping the running config; asking again \
                 within {}",
                outcome(why),
                format_duration(Duration::from_millis(VALIDATE_RETRY_MS as u64))
            ),
            Hold::Validating => {
                format!("validating: {what} since {since} is being validated, keeping the running config meanwhile")
            }
        }
    }
}

/// A validation's outcome for the line; states written before outcomes
/// were recorded have none.
fn outcome(how: &str) -> &str {
    if how.is_empty() {
        "see `driftprobe status`"
    } else {
        how
    }
}

/// Whether this look's state is saved, or can be: `unsaved` is why its
/// save failed; a look that had nothing new to save (`saved` false) writes
/// the same state again to find out (one more write per reload, not per
/// probe).
fn remember(locked: &Locked, st: &State, unsaved: Option<&str>, saved: bool) -> Result<(), String> {
    match unsaved {
        Some(why) => Err(why.to_string()),
        None if saved => Ok(()),
        None => locked.save(st).map_err(|e| e.to_string()),
    }
}

/// `d` moved back to `newest_change_ns` (a ctime) when that is earlier,
/// on both clocks. The distance is measured on the wall clock, which may
/// have stepped forward since the change: on the boot clock the start is
/// kept from going further back than `floor_boot` (the container's start,
/// before which the baseline did not exist to drift from), so a step
/// cannot end the window before the container even ran for it.
fn dated_by_ctime(
    mut d: Drift,
    newest_change_ns: Option<i64>,
    floor_boot: Option<Millis>,
) -> Drift {
    if let Some(changed) = newest_change_ns.map(|ns| ns.div_euclid(1_000_000)) {
        let back = d.since.saturating_sub(changed);
        if back > 0 {
            d.since = changed;
            d.since_boot = d.since_boot.map(|b| {
                let moved = b.saturating_sub(back);
                match floor_boot {
                    Some(floor) if floor <= b => moved.max(floor),
                    _ => moved.max(0),
                }
            });
        }
    }
    d
}

/// No usable state for this container: record the baseline lazily if
/// [`baseline::unchanged_since_start`] proves nothing changed since the
/// entrypoint started, else start a drift that says why.
fn first_look(opened: &Opened, snap: &Snapshot, now: time::Stamp) -> Result<State, Failure> {
    let mut st = opened.fresh_state();
    match baseline::unchanged_since_start(opened, snap)? {
        Ok(()) => st.baseline = Some(new_baseline(snap, now.wall, "lazy")),
        Err(why) => st.drift = Some(Drift::starting(now, Some(why))),
    }
    Ok(st)
}

/// What differs, for the one-line output.
fn describe(st: &State, changes: &Changes, env_drift: &[String], snap: &Snapshot) -> String {
    let mut parts = Vec::new();
    if st.baseline.is_none() {
        let why = st
            .drift
            .as_ref()
            .and_then(|d| d.unproven.clone())
            .unwrap_or_else(|| "no baseline".into());
        parts.push(format!(
            "no baseline, cannot prove the config is unchanged since the container started: {why} (record one at start \
             with `driftprobe init` or `run`)"
        ));
    } else if !changes.is_empty() || env_drift.is_empty() {
        parts.push(changes.summary());
    }
    if !env_drift.is_empty() {
        parts.push(format!(
            "env {} differs from its file",
            env_drift.join(", ")
        ));
    }
    if !snap.missing.is_empty() {
        parts.push(format!("missing {}", snap.missing.join(", ")));
    }
    parts.join("; ")
}

/// Logs a reload in the state (`how`: the signal, or the HTTP method with
/// pid 0 and the URL as target) and adopts the current config as the
/// baseline. The digests stay in the state (0600) and `status`: a probe
/// line goes to Events, where an unkeyed digest of a Secret would let its
/// readers try candidate values (README, "What a digest reveals").
fn record_reload(
    st: &mut State,
    how: &str,
    pid: i32,
    target: String,
    snap: &Snapshot,
    now: Millis,
) {
    let from = st
        .baseline
        .as_ref()
        .map(|b| b.digest.clone())
        .unwrap_or_default();
    st.reloads.push(Reload {
        at: now,
        signal: how.to_string(),
        pid,
        target,
        from_digest: from,
        to_digest: snap.digest.clone(),
    });
    let extra = st.reloads.len().saturating_sub(KEEP_RELOADS);
    st.reloads.drain(..extra);
    adopt(st, snap, now, "reload");
}

/// Makes the current config the baseline.
fn adopt(st: &mut State, snap: &Snapshot, now: Millis, source: &str) {
    st.baseline = Some(new_baseline(snap, now, source));
    st.drift = None;
}

/// The pod name (the container's UTS hostname).
pub fn hostname(proc_root: &Path) -> String {
    crate::smallfile::read_to_string(
        &proc_root.join("sys/kernel/hostname"),
        crate::smallfile::TINY,
    )
    .map(|s| s.trim().to_string())
    .ok()
    .filter(|s| !s.is_empty())
    .or_else(|| std::env::var("HOSTNAME").ok())
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ContainerId;
    use crate::time::Stamp;

    const T0: Millis = 1_795_623_603_000;

    fn with_marker(until: Millis, until_boot: Option<Millis>) -> State {
        let mut st = State::new(
            ContainerId {
                boot_id: "b".into(),
                init_start_ticks: 1,
            },
            vec![],
        );
        st.validating = Some(Validating {
            digest: "d".into(),
            until,
            until_boot,
            pgid: None,
            leader_start: None,
            owner: None,
            owner_start: None,
        });
        st
    }

    fn probe_args(extra: &[&str]) -> ProbeArgs {
        let argv = ["driftprobe", "liveness"]
            .iter()
            .chain(extra)
            .chain(&["/x"]);
        match crate::cli::try_parse_from(argv).expect("parses").command {
            crate::cli::Command::Liveness(a) => a.probe,
            _ => unreachable!("a liveness command line"),
        }
    }

    #[test]
    fn the_probe_deadline_follows_the_probe_timeout() {
        let ms = Duration::from_millis;
        assert_eq!(probe_deadline(&probe_args(&[])), ms(800));
        assert_eq!(
            probe_deadline(&probe_args(&["--probe-timeout", "10s"])),
            ms(9_800)
        );
        // Never less than half of it.
        assert_eq!(
            probe_deadline(&probe_args(&["--probe-timeout", "300ms"])),
            ms(150)
        );
        assert_eq!(
            probe_deadline(&probe_args(&["--probe-timeout", "0"])),
            ms(0)
        );
    }

    #[test]
    fn timeouts_that_cannot_fit_are_misconfigurations() {
        let v = ["--validate", "true", "--validate-timeout", "3s"];
        let found = misconfigurations(false, &probe_args(&v), &[], None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("--validate-timeout 3s cannot fit inside --probe-timeout 1s"));
        let roomy = [&v[..], &["--probe-timeout", "5s"]].concat();
        assert!(misconfigurations(false, &probe_args(&roomy), &[], None).is_empty());
        // A timeout for a validator that is not used is not one.
        let unused = probe_args(&["--validate-timeout", "3s"]);
        assert!(misconfigurations(false, &unused, &[], None).is_empty());
        // --reload-timeout only counts for a reload by HTTP; 500ms fits.
        let slow = probe_args(&["--reload-timeout", "2s"]);
        assert!(misconfigurations(false, &slow, &[], None).is_empty());
        assert_eq!(misconfigurations(true, &slow, &[], None).len(), 1);
        assert!(misconfigurations(true, &probe_args(&[]), &[], None).is_empty());
        // One probe may validate and then reload: the two add up.
        let each_fits = [
            "--validate",
            "true",
            "--validate-timeout",
            "5s",
            "--reload-timeout",
            "3s",
        ];
        let tight = [&each_fits[..], &["--probe-timeout", "6s"]].concat();
        let found = misconfigurations(true, &probe_args(&tight), &[], None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(
            "--validate-timeout 5s + --reload-timeout 3s cannot fit inside --probe-timeout 6s"
        ));
        let roomy = [&each_fits[..], &["--probe-timeout", "12s"]].concat();
        assert!(misconfigurations(true, &probe_args(&roomy), &[], None).is_empty());
        let both = misconfigurations(false, &probe_args(&[]), &["/etc/x".into()], Some("EROFS"));
        assert_eq!(both.len(), 2, "{both:?}");
    }

    #[test]
    fn a_validation_marker_expires_on_the_boot_clock() {
        let st = with_marker(T0 + 12_000, Some(112_000));
        let at = |wall, boot| Stamp {
            wall,
            boot: Some(boot),
        };
        let proc = crate::state::Proc::default();
        let under_way = |st: &State, d: &str, now| marker(st, d, now, &proc) == Marker::UnderWay;
        assert!(under_way(&st, "d", at(T0, 100_000)));
        assert_eq!(marker(&st, "other", at(T0, 100_000), &proc), Marker::None);
        // Wall clock stepped back a day after the killed probe left it:
        // still expires 12 s after it was set.
        assert!(!under_way(&st, "d", at(T0 - 86_400_000, 113_000)));
        // ... and a step forward does not end it early.
        assert!(under_way(&st, "d", at(T0 + 86_400_000, 101_000)));
        // Markers without the boot clock: wall time.
        let old = with_marker(T0 + 12_000, None);
        assert!(under_way(&old, "d", at(T0, 1)));
        assert_eq!(
            marker(&old, "d", at(T0 + 13_000, 1), &proc),
            Marker::Abandoned
        );
    }

    #[test]
    fn a_marker_whose_probe_is_gone_is_abandoned_at_once() {
        let proc = crate::state::Proc::default();
        let now = Stamp {
            wall: T0,
            boot: Some(100_000),
        };
        let (me, start) = proc.me().expect("this process in /proc");
        let mut st = with_marker(T0 + 12_000, Some(112_000));
        let v = st.validating.as_mut().unwrap();
        (v.owner, v.owner_start) = (Some(me), Some(start));
        assert_eq!(marker(&st, "d", now, &proc), Marker::UnderWay);
        // Same pid, another process (pid reused): gone.
        st.validating.as_mut().unwrap().owner_start = Some(start + 1);
        assert_eq!(marker(&st, "d", now, &proc), Marker::Abandoned);
        // No such process.
        st.validating.as_mut().unwrap().owner = Some(i32::MAX);
        assert_eq!(marker(&st, "d", now, &proc), Marker::Abandoned);
    }

    #[test]
    fn an_unsaved_drift_is_dated_by_the_files_ctime() {
        let d = Drift::starting(
            Stamp {
                wall: T0,
                boot: Some(50_000),
            },
            None,
        );
        let moved = dated_by_ctime(d.clone(), Some((T0 - 20_000) * 1_000_000 + 5), Some(10_000));
        assert_eq!((moved.since, moved.since_boot), (T0 - 20_000, Some(30_000)));
        // A ctime after the first look (clock stepped) moves nothing.
        assert_eq!(
            dated_by_ctime(d.clone(), Some((T0 + 1) * 1_000_000), Some(10_000)),
            d
        );
        assert_eq!(dated_by_ctime(d.clone(), None, Some(10_000)), d);
        // The wall clock stepped forward an hour between the change and
        // the look: on the boot clock the drift starts no earlier than the
        // container (10 s after boot), not an hour before the look.
        let stepped = dated_by_ctime(d.clone(), Some((T0 - 3_600_000) * 1_000_000), Some(10_000));
        assert_eq!(stepped.since_boot, Some(10_000));
        // Without the container's start: never before boot.
        let stepped = dated_by_ctime(d.clone(), Some((T0 - 3_600_000) * 1_000_000), None);
        assert_eq!(stepped.since_boot, Some(0));
    }

    #[test]
    fn an_answer_from_the_future_is_asked_again() {
        let mut st = with_marker(0, None);
        st.validations.push((
            "d".into(),
            Validation {
                ok: false,
                at: T0,
                output: "no".into(),
                outcome: "exit 1".into(),
                transient: false,
                command: "c".into(),
            },
        ));
        assert!(settled_validation(&st, "d", "c", T0 + 1_000).is_some());
        assert!(settled_validation(&st, "d", "c", T0 + REVALIDATE_MS).is_none());
        // The wall clock went back an hour: not kept for an extra hour.
        assert!(settled_validation(&st, "d", "c", T0 - 3_600_000).is_none());
    }
}
