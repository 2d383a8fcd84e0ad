//! The reloads: by signal, within one hold of the container's reload
//! claim ([`super::claim`]), and the `--reload-url` request, sent by the
//! probe between two looks; both end by making the files the baseline.
//! Once per container it also says whether the signal target's runtime
//! would reload on a signal at all ([`runtime`]).

use super::look::Look;
use super::reaction::Response;
use crate::baseline::new_baseline;
use crate::digest::Snapshot;
use crate::proc::{self, Target};
use crate::reload_http::HttpReload;
use crate::runtime;
use crate::shared::{self, Claim, Given, Intent, Names};
use crate::signal;
use crate::state::{Reload, State};
use crate::time::{Millis, Stamp};
use nix::sys::signal::Signal;
use std::time::Duration;

/// How a runtime refusal starts, in the state's warnings.
const REFUSAL: &str = "--on-drift reload will not signal: ";

/// Whether a warning of the state is a runtime refusal: a
/// misconfiguration, told as one (not with the warnings of `init`).
pub(super) fn is_refusal(warning: &str) -> bool {
    warning.starts_with(REFUSAL)
}

/// Keep this many reload records in the state.
const KEEP_RELOADS: usize = 20;

/// The answer to the `--reload-url` request this probe sent, for the look
/// after it.
pub(super) struct HttpAnswer {
    /// The digest of the files it was sent for.
    pub(super) digest: String,
    /// What answered, or why it is not reloaded.
    pub(super) said: Result<String, String>,
    /// The claim it was sent under, to release.
    pub(super) claim: Claim,
}

impl HttpAnswer {
    /// Sends the request, without the state lock (see
    /// [`super::look::Next::Request`]).
    pub(super) fn ask(http: &HttpReload, digest: String, claim: Claim) -> HttpAnswer {
        HttpAnswer {
            digest,
            said: http.call(),
            claim,
        }
    }
}

/// What came of a signal reload.
pub(super) enum Signalled {
    Done(String),
    Failed(String),
    /// Not signalled: the target's runtime would not reload on it.
    Refused(String),
    Busy(Box<Claim>),
    Again,
}

impl Look<'_> {
    /// Once per container instance, a probe that reloads by signal looks
    /// at its target's runtime: a Go program or a JVM would not be
    /// signalled (see [`runtime`]), and that is said now, not first on the
    /// day the config changes: kept in the state's warnings, it is one of
    /// the probe's misconfigurations ([`Look::refusals`]), said once on
    /// stderr and in the container's log and shown by `status`. A target
    /// that cannot be resolved yet (no pidfile) is looked at by a later
    /// probe.
    pub(super) fn check_runtime(&self, st: &mut State) {
        let Response::Reload(signal, target) = &self.reaction.response else {
            return;
        };
        if self.args.signal_handled || st.runtime_checked {
            return;
        }
        let root = &self.opened.proc.root;
        let Ok(pid) = target.resolve(&self.opened.proc) else {
            return;
        };
        st.runtime_checked = true;
        if let Some(rt) = runtime::of(root, pid) {
            let why = runtime::refusal(rt, pid, &proc::comm(root, pid), *signal);
            st.warnings.push(format!("{REFUSAL}{why}"));
        }
    }

    /// The runtime refusals [`Look::check_runtime`] recorded, while this
    /// probe reloads by signal: misconfigurations of it.
    pub(super) fn refusals<'s>(&self, st: &'s State) -> impl Iterator<Item = &'s String> {
        let signals = matches!(self.reaction.response, Response::Reload(..));
        let told = signals && !self.args.signal_handled;
        st.warnings.iter().filter(move |w| told && is_refusal(w))
    }

    /// Signals the app within one hold of the shared lock: the claim (with
    /// its target) is saved before `kill(2)`, marked sent right after it,
    /// and ended with the files given. A probe killed after `kill(2)`
    /// leaves a marked claim, and the next probe does not signal again.
    pub(super) fn signal_reload(
        &self,
        signal: Signal,
        target: &Target,
        st: &mut State,
        snap: &Snapshot,
        now: Stamp,
        warnings: &mut Vec<String>,
    ) -> Signalled {
        let to = match self.signal_target(signal, target) {
            Ok(to) => to,
            Err(refused) => return refused,
        };
        let files = Names::of(&self.opened.watch).files(st.baseline.as_ref(), &snap.files);
        if let Err(not) = self.signal_claimed(&to, files, st, now, warnings) {
            return not;
        }
        let (pid, name) = (to.pid, &to.name);
        record_reload(st, signal.as_str(), pid, target.describe(), snap, now.wall);
        Signalled::Done(format!(
            "sent {signal} to pid {pid} ({name}); now the baseline"
        ))
    }

    /// The process `target` names, if it lives and may be sent `signal`.
    fn signal_target(&self, signal: Signal, target: &Target) -> Result<Signalee, Signalled> {
        let proc = &self.opened.proc;
        let pid = target.resolve(proc).map_err(Signalled::Failed)?;
        // Gone, or a zombie (exited, not reaped): nothing to reload.
        let Some(start_ticks) = self.start_ticks_of(pid) else {
            return Err(Signalled::Failed(format!("no process {pid}")));
        };
        signal::may_signal(&proc.root, pid, signal).map_err(Signalled::Failed)?;
        let name = proc::comm(&proc.root, pid);
        // Caught is not handled: Go and the JVM catch SIGHUP to exit.
        if !self.args.signal_handled {
            if let Some(rt) = runtime::of(&proc.root, pid) {
                return Err(Signalled::Refused(runtime::refusal(rt, pid, &name, signal)));
            }
        }
        Ok(Signalee {
            signal,
            pid,
            start_ticks,
            name,
        })
    }

    /// Sends the signal under the container's reload claim, and gives the
    /// app `files` once the target survived it.
    fn signal_claimed(
        &self,
        to: &Signalee,
        files: Vec<Given>,
        st: &mut State,
        now: Stamp,
        warnings: &mut Vec<String>,
    ) -> Result<(), Signalled> {
        let mut held = self.claim_signal(to, &files, st.given_seq, now, warnings)?;
        let Signalee {
            signal,
            pid,
            start_ticks,
            ref name,
        } = *to;
        let marker = held.marker();
        let sent = signal::deliver(pid, signal, name);
        if let (Ok(()), Some(m)) = (&sent, &marker) {
            let _ = m.set();
        }
        // A target that died of it was not reloaded, and is not given the
        // files. A probe killed while it waits leaves the claim marked
        // sent, and the next one settles it only if the target lives.
        let proc = &self.opened.proc;
        let sent =
            sent.and_then(
                |()| match signal::survives(proc, pid, start_ticks, signal::SURVIVAL) {
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
        sent.map_err(Signalled::Failed)
    }

    /// Saves the claim for the signal `to` (with its target), unless
    /// another probe's stands or the app was given something since this
    /// look applied `applied`; returns the shared lock, still held.
    fn claim_signal(
        &self,
        to: &Signalee,
        files: &[Given],
        applied: u64,
        now: Stamp,
        warnings: &mut Vec<String>,
    ) -> Result<shared::Held, Signalled> {
        let unclaimed = |e: String| {
            Signalled::Failed(format!(
                "not signalled, the reload cannot be claimed ({e}): two probes could both reload"
            ))
        };
        let mut held = self.lock_shared().map_err(unclaimed)?;
        match self.clear_claim(&mut held.shared, now) {
            Err(c) => return Err(Signalled::Busy(c)),
            Ok(Some(note)) => warnings.push(note),
            Ok(None) => {}
        }
        if held.shared.seq != applied {
            return match held.save() {
                Ok(()) => Err(Signalled::Again),
                Err(e) => Err(unclaimed(e.to_string())),
            };
        }
        let me = self.start_ticks_of(std::process::id() as i32).unwrap_or(0);
        let intent = Intent {
            signal: to.signal.as_str().into(),
            pid: to.pid,
            start_ticks: to.start_ticks,
            sent: false,
        };
        held.shared.claim = Some(shared::claim(
            self.kind.name(),
            &self.opened.key,
            me,
            now,
            Duration::ZERO,
            files.to_vec(),
            Some(intent),
        ));
        match held.save() {
            Ok(()) => Ok(held),
            Err(e) => Err(unclaimed(e.to_string())),
        }
    }
}

/// The process a signal reload goes to.
struct Signalee {
    signal: Signal,
    pid: i32,
    /// Its start time: a pid reused meanwhile is another process.
    start_ticks: u64,
    /// Its command name, for the line.
    name: String,
}

/// Logs a reload in the state (`how`: the signal, or the HTTP method with
/// pid 0 and the URL as target) and adopts the current config as the
/// baseline. The digests stay in the state (0600) and `status`: a probe
/// line goes to Events, where an unkeyed digest of a Secret would let its
/// readers try candidate values (README, "What a digest reveals").
pub(super) fn record_reload(
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
pub(super) fn adopt(st: &mut State, snap: &Snapshot, now: Millis, source: &str) {
    st.baseline = Some(new_baseline(snap, now, source));
    st.drift = None;
}
