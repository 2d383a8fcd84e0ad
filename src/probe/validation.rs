//! The validation gate: a probe given `--validate` runs the validator
//! once per new digest (never on the baseline) before it lets a drift
//! count, keeps the running config while the validator says no or gives
//! no answer, and remembers each answer. The validator runs without the
//! state lock; a marker in the state tells a concurrent probe it is under
//! way, and who is to clean it up if the probe running it is killed.

use super::look::{Before, Look, Next, Seen};
use super::reaction::validate_timeout;
use crate::cli::ProbeArgs;
use crate::digest::Snapshot;
use crate::proc::Proc;
use crate::state::{Loaded, State, Validation, ValidationUnderWay};
use crate::time::{self, clock_time, format_duration, Millis, Stamp};
use crate::validator;
use crate::verdict;
use crate::watch::{Failure, Opened};
use std::ops::ControlFlow;
use std::time::Duration;

/// Keep this many validation results in the state.
const KEEP_VALIDATIONS: usize = 16;
/// A validator that gave no answer (timeout, could not start) is asked
/// again after this long; one that said no, after the longer interval.
const VALIDATE_RETRY_MS: i64 = 60_000;
pub(super) const REVALIDATE_MS: i64 = 600_000;
/// How long past its own timeout a validation marker is honoured.
const MARKER_SLACK: Duration = Duration::from_secs(2);

impl Look<'_> {
    /// The validation gate: once per new digest, never for the baseline,
    /// only for probes given --validate. Records `answer` (what the
    /// validator said about a digest since the last look) first.
    /// `Continue` with why the running config is kept, if it is; `Break`
    /// to run the validator without the lock and look again.
    pub(super) fn gate(
        &self,
        st: &mut State,
        seen: &Seen,
        answer: Option<(String, Validation)>,
        before: Before,
        warnings: &mut Vec<String>,
    ) -> Result<ControlFlow<Next, Option<Hold>>, Failure> {
        let (snap, clock) = (&seen.snap, seen.clock);
        if let Some((digest, v)) = answer {
            // Kept under its own digest even if the files moved on meanwhile.
            st.validations
                .retain(|(d, old)| !(d == &digest && old.command == v.command));
            st.validations.push((digest, v));
            keep_the_latest(st);
            st.validating = None;
        }
        let files_differ = st.baseline.as_ref().is_none_or(|b| b.digest != snap.digest);
        let hold = if self.reaction.validator.is_some() && st.drift.is_some() && files_differ {
            let command = self.reaction.validator.as_deref().unwrap_or(&[]).join(" ");
            let mark = marker(st, &snap.digest, clock, &self.opened.proc);
            let hold = match settled_validation(st, &snap.digest, &command, clock.wall) {
                Some(v) if v.ok => None,
                Some(v) if v.transient => Some(Hold::NoAnswer(v.outcome.clone())),
                Some(v) => Some(Hold::Rejected(v.outcome.clone())),
                None if !self.may_validate => Some(Hold::Validating),
                None if mark == Marker::UnderWay => Some(Hold::Validating),
                None if mark == Marker::Abandoned => {
                    Some(self.abandoned(st, snap, clock.wall, command))
                }
                None => {
                    let next =
                        self.start_validation(st, seen, before.baseline_recorded, warnings)?;
                    return Ok(ControlFlow::Break(next));
                }
            };
            // Only a verdict holds the drift record; "being validated" does
            // not restart anyone's grace window.
            if hold != Some(Hold::Validating) {
                st.drift = verdict::gate(st.drift.take(), hold.is_some(), clock);
            }
            hold
        } else {
            None
        };
        if st.drift.is_none() {
            st.validating = None;
        }
        Ok(ControlFlow::Continue(hold))
    }

    /// The probe that ran the validator is gone (the kubelet killed it at
    /// timeoutSeconds) or overdue: no answer will come. A verdict, not
    /// "validating:" forever: timed out, asked again after a while.
    fn abandoned(&self, st: &mut State, snap: &Snapshot, now: Millis, command: String) -> Hold {
        end_marker(st, &self.opened.proc);
        let program = self.reaction.validator.as_deref().unwrap_or(&[]);
        let outcome = format!(
            "validator {} timed out: the probe running it was killed or overdue before it answered \
             (keep the probe's timeoutSeconds above --validate-timeout)",
            program.first().map(String::as_str).unwrap_or("?")
        );
        st.validations.push((
            snap.digest.clone(),
            Validation {
                ok: false,
                at: now,
                output: String::new(),
                outcome: outcome.clone(),
                transient: true,
                command,
            },
        ));
        keep_the_latest(st);
        Hold::NoAnswer(outcome)
    }

    /// Marks the digest as being validated by this probe, for the
    /// validator to run without the lock.
    fn start_validation(
        &self,
        st: &mut State,
        seen: &Seen,
        baseline_recorded: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Next, Failure> {
        // A validator left behind by a probe the kubelet killed dies before
        // a new one starts.
        end_marker(st, &self.opened.proc);
        let (now, boot) = (seen.clock.wall, seen.clock.boot);
        let timeout = validate_timeout(self.args, self.started);
        let owner = self.opened.proc.me();
        st.validating = Some(ValidationUnderWay {
            digest: seen.snap.digest.clone(),
            until: time::after(now, timeout + MARKER_SLACK),
            until_boot: boot.map(|b| time::after(b, timeout + MARKER_SLACK)),
            pgid: None,
            leader_start: None,
            owner: owner.map(|o| o.0),
            owner_start: owner.map(|o| o.1),
        });
        // The marker only keeps a concurrent probe from running the same
        // validator at the same time: a state dir that cannot hold it
        // (full, read-only) costs that, not the verdict, once a baseline
        // is recorded.
        if let Err(e) = self.locked.save(st) {
            if !baseline_recorded {
                return Err(e.into());
            }
            warnings.push(format!(
                "driftprobe: warning: {e}; validating without a marker (another probe may validate \
                 the same config meanwhile, and the answer is not remembered)"
            ));
        }
        Ok(Next::Validate(seen.snap.digest.clone()))
    }
}

/// Drops the marker; the validator it names, left behind by a probe the
/// kubelet killed, is killed with it.
fn end_marker(st: &mut State, proc: &Proc) {
    if let Some(ValidationUnderWay {
        pgid: Some(pgid),
        leader_start: Some(start),
        ..
    }) = st.validating.take()
    {
        validator::kill_stale_validator(proc, pgid, start);
    }
}

/// Drops the oldest validation results beyond [`KEEP_VALIDATIONS`].
fn keep_the_latest(st: &mut State) {
    let extra = st.validations.len().saturating_sub(KEEP_VALIDATIONS);
    st.validations.drain(..extra);
}

/// The cached answer of `command` for `digest`, unless it is time to ask
/// again.
pub(super) fn settled_validation<'s>(
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
pub(super) fn note_validator(opened: &Opened, args: &ProbeArgs, digest: &str, pid: i32) {
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
pub(super) enum Marker {
    /// No marker for this digest: validate.
    Absent,
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
pub(super) fn marker(st: &State, digest: &str, now: Stamp, proc: &Proc) -> Marker {
    let Some(v) = st.validating.as_ref().filter(|v| v.digest == digest) else {
        return Marker::Absent;
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
pub(super) enum Hold {
    /// The validator said no: how (`exit 1`), never what it printed,
    /// which may quote a Secret and would end up in Events.
    Rejected(String),
    /// The validator gave no answer: why (timed out, could not start).
    NoAnswer(String),
    /// Another probe is validating right now.
    Validating,
}

impl Hold {
    pub(super) fn line(&self, what: &str, since: Millis) -> String {
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
