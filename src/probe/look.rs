//! One look at the files under the state lock, in phases that each hand
//! the next a small typed value: refresh (load the state, walk the files,
//! apply what the container's other probes gave the app), env drift, the
//! validation gate ([`super::validation`]), save, the verdict and the
//! response ([`super::respond`]), then closing (a new baseline saved, a
//! reload claim ended, the container's log told). A phase that needs the
//! lock released first (the validator, the reload request, another look)
//! ends the look with a [`Next`] for the probe's loop in [`super`].

use super::reaction::{app_target, Reaction};
use super::reload::HttpAnswer;
use super::respond::{Effect, Reply};
use super::Kind;
use crate::baseline::{self, new_baseline};
use crate::cli::ProbeArgs;
use crate::digest::Snapshot;
use crate::env_drift;
use crate::exit::Code;
use crate::shared::Claim;
use crate::state::store::Locked;
use crate::state::{Drift, EnvDrift, State, Validation};
use crate::time::{self, Millis, Stamp};
use crate::verdict::{self, Changes};
use crate::watch::{Failure, Opened};
use crate::Report;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

/// One look at the files under the lock.
pub(super) struct Look<'a> {
    pub(super) kind: Kind,
    pub(super) grace: Duration,
    pub(super) args: &'a ProbeArgs,
    pub(super) reaction: &'a Reaction,
    pub(super) opened: &'a Opened,
    pub(super) locked: &'a Locked,
    /// The answer to the `--reload-url` request an earlier look of this
    /// probe asked for, if one did.
    pub(super) answered: Option<&'a HttpAnswer>,
    /// Whether this look may ask for a validation: once per probe, as the
    /// kubelet's timeout is for one validation.
    pub(super) may_validate: bool,
    /// When this probe started (the default validator timeout).
    pub(super) started: Instant,
    /// Why the app failed its own check, if it did: the container's log
    /// gets the line the probe prints, app first ([`crate::app::line`]).
    pub(super) app_failed: Option<&'a str>,
}

/// What a look asks of its probe.
pub(super) enum Next {
    Done(Report),
    /// Run the validator on this digest (without the lock), then look again.
    Validate(String),
    /// Another probe gave the app something between this look's start and
    /// its claim: look again.
    LookAgain,
    /// Send the `--reload-url` request for this digest, then look again.
    ///
    /// Without the lock: the app may take up to `--reload-timeout` to
    /// answer (Prometheus answers `/-/reload` once the new config is
    /// loaded), and a concurrent probe gives up on the lock after
    /// `--lock-timeout` (800ms), so holding it across the call would turn a
    /// slow reload into a "cannot determine" of the other probe. The cost:
    /// two probes that both reload (`DRIFTPROBE_ON_DRIFT=reload` in the
    /// pod's env) could both ask for the same config: the claim in the
    /// container's shared file ([`crate::shared`]), taken before the request and
    /// released after it, makes the other one say `reloading:` instead.
    /// The next look records the answer only if the files are still the
    /// ones it was asked for; otherwise the next probe asks again.
    Request(String, Claim),
}

/// What this look saw: the files, and when (wall time to record and show;
/// elapsed time on the boot clock).
pub(super) struct Seen {
    pub(super) snap: Snapshot,
    pub(super) clock: Stamp,
}

/// What the state held before this look, for the phases that must not
/// lose it when this look cannot be saved.
#[derive(Debug, Clone, Copy)]
pub(super) struct Before {
    /// A baseline was recorded: without one, a look that cannot be saved
    /// has nothing to stand on.
    pub(super) baseline_recorded: bool,
    /// This look is the first to see the drift (dated by the files instead
    /// if it cannot be saved).
    drift_first_seen: bool,
}

impl Before {
    fn of(previous: Option<&State>, st: &State) -> Before {
        Before {
            baseline_recorded: previous.is_some_and(|p| p.baseline.is_some()),
            drift_first_seen: st.drift.is_some() && previous.is_some_and(|p| p.drift.is_none()),
        }
    }
}

/// The environment variables the app started with vs the files they came
/// from.
pub(super) struct EnvCheck {
    /// The variables that differ from their files now.
    pub(super) drifted: Vec<String>,
    /// Why they could not be read: the files are still judged and the
    /// drift record kept; only a healthy verdict turns into "cannot
    /// determine".
    error: Option<String>,
    /// Since when the earliest of `drifted` differs.
    pub(super) since: Option<Stamp>,
}

/// Whether this look's state reached the state dir.
pub(super) enum Saved {
    Written,
    /// Nothing new to write.
    Unchanged,
    /// The state dir refused it (full, read-only): why. The verdict comes
    /// from the recorded baseline and stands; only this look is not
    /// remembered.
    Failed(String),
}

impl Saved {
    pub(super) fn failed(&self) -> Option<&str> {
        match self {
            Saved::Failed(why) => Some(why),
            _ => None,
        }
    }

    /// Whether this look's state is saved, or can be: a look that had
    /// nothing new to save writes the same state again to find out (one
    /// more write per reload, not per probe).
    pub(super) fn remember(&self, locked: &Locked, st: &State) -> Result<(), String> {
        match self {
            Saved::Failed(why) => Err(why.to_string()),
            Saved::Written => Ok(()),
            Saved::Unchanged => locked.save(st).map_err(|e| e.to_string()),
        }
    }
}

impl Look<'_> {
    /// `answer`: what the validator said about a digest since the last
    /// look.
    pub(super) fn run(
        &self,
        answer: Option<(String, Validation)>,
        warnings: &mut Vec<String>,
    ) -> Result<Next, Failure> {
        let (previous, mut st, seen) = self.refresh(warnings)?;
        let before = Before::of(previous.as_ref(), &st);
        let env = self.env(&mut st, seen.clock);
        let hold = match self.gate(&mut st, &seen, answer, before, warnings)? {
            ControlFlow::Break(next) => return Ok(next),
            ControlFlow::Continue(hold) => hold,
        };
        let saved = self.save(&mut st, previous.as_ref(), &seen, before, warnings)?;
        let judged = self.judge(&st, &seen, &env, hold);
        let Reply { code, line, effect } =
            match self.respond(&mut st, &seen, &judged, &saved, warnings) {
                ControlFlow::Break(next) => return Ok(next),
                ControlFlow::Continue(reply) => reply,
            };
        if let Some(next) = self.close(&mut st, &seen, effect, &saved, warnings) {
            return Ok(next);
        }
        if let (Some(e), Code::Healthy) = (env.error, code) {
            // The files are fine, the environment unknown: no false "ok".
            return Err(Failure::Unknown(format!("--env: {e}")));
        }
        let shown = match self.app_failed {
            Some(why) => crate::app::line(why, &line),
            None => line.clone(),
        };
        self.log_news(
            &mut st,
            &seen.snap,
            &saved,
            judged.in_grace(),
            &shown,
            warnings,
        );
        // Freed by the exit that follows, not string by string.
        std::mem::forget((st, previous, seen));
        Ok(Next::Done(Report::new(code, line)))
    }

    /// Loads the state and walks the files with its stat cache; the new
    /// state starts as the previous one (or a first look's), with what any
    /// probe of this container gave the app since applied, and its drift
    /// record following the files. Returns the previous state too: a save
    /// is made only when the new one differs.
    fn refresh(&self, warnings: &mut Vec<String>) -> Result<(Option<State>, State, Seen), Failure> {
        let opened = self.opened;
        let (mut previous, note) = opened.previous(self.locked.load(opened.max_state_bytes()));
        let mut snap = opened.snapshot(previous.as_ref())?;
        let clock = time::Stamp::now();
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
                    .filter(|w| !super::reload::is_refusal(w))
                    .map(|w| format!("driftprobe: warning: {w}")),
            );
            st.warnings_pending = false;
        }
        // The files: compared with the baseline by every probe.
        if st.baseline.is_some() {
            let base = st.baseline.as_ref().map(|b| b.digest.as_str());
            st.drift = verdict::track(base, &snap.digest, st.drift.as_ref(), clock);
        }
        Ok((previous, st, Seen { snap, clock }))
    }

    /// Environment variables the app started with vs the files they came
    /// from: each probe updates only the variables it was given.
    fn env(&self, st: &mut State, clock: Stamp) -> EnvCheck {
        let args = self.args;
        let proc = &self.opened.proc;
        let (drifted, error) = if args.env.is_empty() {
            (Vec::new(), None)
        } else {
            match app_target(args)
                .resolve(proc)
                .and_then(|pid| env_drift::env_drift(&proc.root, pid, &args.env))
            {
                Ok(names) => (names, None),
                Err(e) => (Vec::new(), Some(e)),
            }
        };
        for (name, _) in args.env.iter().filter(|_| error.is_none()) {
            let seen = st.env_drift.iter().position(|e| &e.name == name);
            match (drifted.contains(name), seen) {
                (true, None) => st.env_drift.push(EnvDrift {
                    name: name.clone(),
                    since: clock.wall,
                    since_boot: clock.boot,
                }),
                (false, Some(i)) => {
                    st.env_drift.remove(i);
                }
                _ => {}
            }
        }
        let since = st
            .env_drift
            .iter()
            .filter(|e| drifted.contains(&e.name))
            .map(EnvDrift::started)
            .reduce(time::Stamp::earlier);
        EnvCheck {
            drifted,
            error,
            since,
        }
    }

    /// What this look learned is saved before it is judged and acted on:
    /// one save, and only when something changed (an unchanged tree costs
    /// no write). A state dir that refuses it fails the look unless a
    /// baseline was recorded to judge by.
    fn save(
        &self,
        st: &mut State,
        previous: Option<&State>,
        seen: &Seen,
        before: Before,
        warnings: &mut Vec<String>,
    ) -> Result<Saved, Failure> {
        if Some(&*st) == previous {
            return Ok(Saved::Unchanged);
        }
        match self.locked.save(st) {
            Ok(()) => Ok(Saved::Written),
            Err(e) if before.baseline_recorded => {
                warnings.push(format!(
                    "driftprobe: warning: {e}; judged by the recorded baseline, but this look is not remembered"
                ));
                if before.drift_first_seen {
                    self.date_by_the_files(st, &seen.snap);
                }
                Ok(Saved::Failed(e.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A drift that cannot be remembered would start its grace window
    /// again at every probe: date it from the files instead, as the lazy
    /// baseline's proof dates them (in a read-only kubelet volume by its
    /// swap, not by ctimes the fsGroup pass keeps moving). That is never
    /// before the drift began, so the window can only end late, not early.
    fn date_by_the_files(&self, st: &mut State, snap: &Snapshot) {
        let opened = self.opened;
        let start = time::ticks_to_boot_ms(opened.container.init_start_ticks);
        let mountinfo = opened.proc.root.join("self/mountinfo");
        let changed = baseline::newest_content_change(&opened.watch.roots, snap, &mountinfo)
            .ok()
            .flatten()
            .or(snap.newest_change_ns);
        st.drift = st
            .drift
            .take()
            .map(|d| dated_by_ctime(d, changed, Some(start)));
    }

    /// What the response leaves to do under the lock: save the new
    /// baseline, hand the reload request to the probe, or end the claim of
    /// a request that reloaded nothing.
    fn close(
        &self,
        st: &mut State,
        seen: &Seen,
        effect: Effect,
        saved: &Saved,
        warnings: &mut Vec<String>,
    ) -> Option<Next> {
        let new_baseline = matches!(effect, Effect::NewBaseline | Effect::Answered);
        // A failure to save the new baseline was a failure to save the look
        // as well, already warned about.
        if new_baseline && saved.failed().is_none() {
            if let Err(e) = self.locked.save(st) {
                warnings.push(format!(
                    "driftprobe: warning: {e}; the new baseline is not remembered"
                ));
            }
        }
        let answer_recorded = matches!(effect, Effect::Answered);
        if let Effect::Request(claim) = effect {
            return Some(Next::Request(seen.snap.digest.clone(), claim));
        }
        // A request that reloaded nothing (failed, or for files that have
        // changed since) leaves the next reload to whoever comes first.
        if let (Some(answered), false) = (self.answered, answer_recorded) {
            self.release(&answered.claim, false, st, seen.clock.wall, warnings);
        }
        None
    }
}

/// `d` moved back to `newest_change_ns` (a ctime) when that is earlier,
/// on both clocks. The distance is measured on the wall clock, which may
/// have stepped forward since the change: on the boot clock the start is
/// kept from going further back than `floor_boot` (the container's start,
/// before which the baseline did not exist to drift from), so a step
/// cannot end the window before the container even ran for it.
pub(super) fn dated_by_ctime(
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
pub(super) fn describe(
    st: &State,
    changes: &Changes,
    env_drift: &[String],
    snap: &Snapshot,
) -> String {
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
