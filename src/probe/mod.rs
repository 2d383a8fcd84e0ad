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
//! (see [`look::Next::Request`]).
//!
//! The probes of one container act as one through [`crate::shared`]: each
//! look first applies what any of them gave the app since (a reload by
//! liveness clears readiness's drift on the same files), and a reload is
//! claimed there first, so that one change gets one reload whichever
//! probes carry `--on-drift reload`.
//!
//! Here: the entry ([`probe`]), the kinds of probe, the deadline, and the
//! loop of looks. The rest, one concept a file: `look` (one look's
//! phases), `validation` (the gate), `respond` (the verdict's line and the
//! `--on-drift` response), `reload` (by signal, by HTTP request), `claim`
//! (the container's one reload claim), `reaction` (what the options ask
//! for, and the misconfigurations they make visible), `log` (the
//! container's log).

mod claim;
mod log;
mod look;
mod reaction;
mod reload;
mod respond;
#[cfg(test)]
mod tests;
mod validation;

use self::log::mirror_failure;
use self::look::{Look, Next};
pub use self::reaction::misconfigurations;
use self::reaction::{reaction, validate_timeout, Response};
use self::reload::HttpAnswer;
use self::validation::note_validator;
use crate::app;
use crate::cli::{OnError, ProbeArgs};
use crate::exit::Code;
use crate::validator;
use crate::watch::{self, failure_report, Failure};
use crate::Report;
use std::time::{Duration, Instant};

/// What a probe keeps back from `--probe-timeout` for itself: the walk's
/// retries, the state save, the line, the exec. See [`probe_deadline`].
const PROBE_MARGIN: Duration = Duration::from_millis(200);
/// The least a slow step (the validator, the app's check) is given when
/// the deadline is already spent.
const MIN_STEP: Duration = Duration::from_millis(50);

/// How long from its start a probe may spend on work that can be slow
/// (the validator, and the timeouts of the app's own checks): inside
/// `--probe-timeout` (the kubelet's `timeoutSeconds`, 1s by default, so
/// 800ms), so that the probe, not the kubelet, ends a slow validator and
/// says so. The timeout less 200ms, and never less than half of it.
pub fn probe_deadline(args: &ProbeArgs) -> Duration {
    let t = args.probe_timeout;
    t.saturating_sub(PROBE_MARGIN).max(t / 2)
}

/// What is left of [`probe_deadline`] for a slow step (the app's check,
/// the validator) of a probe that `started` then: never less than
/// [`MIN_STEP`].
fn left_for_a_step(args: &ProbeArgs, started: Instant) -> Duration {
    probe_deadline(args)
        .saturating_sub(started.elapsed())
        .max(MIN_STEP)
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
    // to --app-timeout, cut to what fits in the probe's deadline so that
    // the probe, not the kubelet, says the app gave no answer; the
    // validator's default budget shrinks by it). A failing app is a
    // verdict (exit 1), not "cannot determine": the files are still
    // looked at, so the line can say both and drift keeps being tracked.
    let fits = left_for_a_step(args, probe_start);
    let app_failed = app.and_then(|c| c.within(fits).run().err());
    let app_failed = app_failed.as_deref();
    match (
        look_until_done(kind, grace, args, probe_start, app_failed),
        app_failed,
    ) {
        (Err(Failure::Usage(m)), _) => Report::usage(m),
        (Ok(report), None) => report,
        (Ok(report), Some(why)) => app_report(why, report),
        (Err(f), Some(why)) => {
            let mut r = app_report(why, failure_report(f));
            mirror_failure(kind, args, &mut r);
            r
        }
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

/// Looks at the files under the state lock until a look has the answer.
/// The validator runs without the lock (it may take seconds; the other
/// probe must not time out waiting), then the probe looks again. At most
/// once per probe: the kubelet's timeout is for one validation. The same
/// for the reload request.
fn look_until_done(
    kind: Kind,
    grace: Duration,
    args: &ProbeArgs,
    probe_start: Instant,
    app_failed: Option<&str>,
) -> Result<Report, Failure> {
    let reaction = reaction(args)?;
    let opened = watch::open(&args.watch)?;
    let mut warnings = reaction.warnings.clone();
    if kind == Kind::Liveness && args.on_invalid_typed {
        warnings.push(
            "driftprobe: warning: --on-invalid is ignored by liveness (it always keeps the running config \
             and passes): give it to the readiness probe"
                .into(),
        );
    }
    let mut answer = None;
    let mut answered: Option<HttpAnswer> = None;
    let mut validated = false;
    // Looks made again because another probe gave the app something
    // meanwhile (see `Next::LookAgain`).
    let mut looks_again = 0;
    loop {
        let locked = opened.dir.lock(&opened.key, args.lock_timeout)?;
        let look = Look {
            kind,
            grace,
            args,
            reaction: &reaction,
            opened: &opened,
            locked: &locked,
            answered: answered.as_ref(),
            may_validate: !validated,
            started: probe_start,
            app_failed,
        };
        match look.run(answer.take(), &mut warnings)? {
            Next::Done(mut report) => {
                report.stderr = warnings;
                return Ok(report);
            }
            Next::Validate(digest) => {
                drop(locked);
                validated = true;
                let argv = reaction.validator.as_deref().unwrap_or(&[]);
                let mut started = |pid| note_validator(&opened, args, &digest, pid);
                let timeout = validate_timeout(args, probe_start);
                let verdict = validator::validate(argv, timeout, &mut started);
                answer = Some((digest, verdict));
            }
            Next::Request(digest, claim) => {
                drop(locked);
                if let Response::Http(http) = &reaction.response {
                    answered = Some(HttpAnswer::ask(http, digest, claim));
                }
            }
            Next::LookAgain if looks_again < MAX_LOOKS_AGAIN => looks_again += 1,
            Next::LookAgain => {
                return Err(Failure::Unknown(
                    "what the probes of this container share kept changing under this probe".into(),
                ))
            }
        }
    }
}

/// How many times a look is made again because the shared file changed
/// between the look and its claim.
const MAX_LOOKS_AGAIN: u32 = 5;
