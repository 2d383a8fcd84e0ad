//! `init`: record the baseline from a postStart hook, only when the files
//! are proven unchanged since the app started; also the recording that
//! `run` does before it execs the app ([`record`]).

use crate::baseline::{file_count, new_baseline, unchanged_since_start};
use crate::cli::WatchArgs;
use crate::digest::Snapshot;
use crate::exit::Code;
use crate::state::{Drift, State};
use crate::time;
use crate::watch::{failure_report, open, Failure, Opened};
use crate::Report;
use std::time::Duration;

/// How long `init` and `run` wait for a probe holding the lock.
const COMMAND_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A warning for each watched path that does not exist.
fn missing_warnings(snap: &Snapshot) -> Vec<String> {
    snap.missing
        .iter()
        .map(|m| {
            format!("driftprobe: warning: watched path {m} does not exist (recorded as empty)")
        })
        .collect()
}

/// `init`: record the baseline unless this container already has one.
///
/// A postStart hook runs after the entrypoint started, so `init` vouches
/// only for files it can prove unchanged since then (the lazy baseline's
/// proof); otherwise it records a drift without a baseline, as the first
/// probe would, and still exits 0 (a failing postStart hook kills the
/// container). `--force` records the current files whatever the proof.
pub fn init(args: &WatchArgs, force: bool) -> Report {
    let how = if force { How::Force } else { How::Prove };
    match record(args, how) {
        Ok(r) => r,
        Err(f) => failure_report(f),
    }
}

/// How [`record`] may record a baseline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    /// `init`: only what [`unchanged_since_start`] proves.
    Prove,
    /// `init --force`: the current files, replacing any baseline.
    Force,
    /// `run`: the current files; the app has not started yet.
    Run,
}

/// Records the baseline as `how` allows, under the state lock: the
/// baseline itself, or (`init` without a proof) a drift without one.
pub(super) fn record(args: &WatchArgs, how: How) -> Result<Report, Failure> {
    let opened = open(args)?;
    let locked = opened.dir.lock(&opened.key, COMMAND_LOCK_TIMEOUT)?;
    let (previous, note) = opened.previous(locked.load(opened.max_state_bytes()));
    if let Some(b) = previous.as_ref().and_then(|s| s.baseline.as_ref()) {
        if how == How::Prove {
            return Ok(Report::new(
                Code::Healthy,
                format!(
                    "baseline already recorded at {} by {} ({}); nothing to do (--force replaces it)",
                    time::rfc3339(b.recorded_at),
                    b.source,
                    file_count(b.files.len())
                ),
            ));
        }
    }
    let snap = opened.snapshot(previous.as_ref())?;
    let fresh = previous.is_none();
    let replaced = previous.as_ref().is_some_and(|s| s.baseline.is_some());
    let mut st = previous.unwrap_or_else(|| opened.fresh_state());
    let proof = match how {
        How::Run => Ok(()),
        How::Prove => unchanged_since_start(&opened, &snap)?,
        // Asked only to name the source: --force records whatever it says.
        How::Force => unchanged_since_start(&opened, &snap).unwrap_or(Err(String::new())),
    };
    let source = match (how, &proof) {
        (How::Run, _) => "run",
        (How::Force, Err(_)) => "init --force",
        (How::Force, Ok(())) if replaced => "init --force",
        _ => "init",
    };
    let (line, recorded) = match (how, proof) {
        (How::Prove, Err(why)) => (unproven(&mut st, &why), false),
        _ => (adopt(&opened, &mut st, &snap, source), true),
    };
    st.cache = snap.cache.clone();
    locked.save(&st)?;
    let mut report = Report::new(Code::Healthy, line);
    report.stderr.extend(missing_warnings(&snap));
    if recorded && fresh {
        report.stderr.extend(
            st.warnings
                .iter()
                .map(|w| format!("driftprobe: warning: {w}")),
        );
    }
    if let Some(n) = note {
        report = report.warn(format!("driftprobe: {n}"));
    }
    Ok(report)
}

/// Notes in `st` what the first probe would have found without a proof: a
/// drift without a baseline (its grace window, if one was already running,
/// goes on). Returns the line to print.
fn unproven(st: &mut State, why: &str) -> String {
    if st.drift.is_none() {
        st.drift = Some(Drift::starting(time::Stamp::now(), Some(why.to_string())));
    }
    format!(
        "drift: no baseline, cannot prove the config is unchanged since the container started: {why} (the \
         probes report it as drift; `driftprobe run` records the baseline before the app starts)"
    )
}

/// Makes the files in `snap` this container's baseline. Returns the line
/// to print.
fn adopt(opened: &Opened, st: &mut State, snap: &Snapshot, source: &str) -> String {
    st.baseline = Some(new_baseline(snap, time::now(), source));
    st.drift = None;
    // What the app was given before this baseline is in it already.
    st.given_seq = crate::shared::peek(&opened.dir, &opened.container).map_or(0, |s| s.seq);
    format!(
        "baseline recorded ({}) for {}",
        file_count(snap.files.len()),
        opened.watch.names().join(", ")
    )
}
