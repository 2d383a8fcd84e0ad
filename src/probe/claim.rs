//! The probes of one container act as one through [`crate::shared`]: what
//! any of them gave the app is applied to every watch set's baseline at
//! the start of each look, and a reload (or an adoption beside a probe
//! that reloads) is claimed there first, so that one change gets one
//! reload whichever probes carry `--on-drift reload`. This file takes,
//! releases and settles that claim; [`super::reload`] sends what it is
//! claimed for.

use super::look::Look;
use super::reaction::Response;
use crate::digest::Snapshot;
use crate::shared::{self, Claim, Given, Names};
use crate::state::State;
use crate::time::{clock_time, Millis, Stamp};
use std::time::Duration;

/// What came of asking for the one reload claim of the container.
pub(super) enum Claimed {
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
pub(super) enum Adoption {
    Adopt,
    /// Another probe of the container reloads (`liveness` or `readiness`).
    Wait(String),
    Busy(Box<Claim>),
    Again,
}

/// The line of a probe that leaves the reload to the one under way.
pub(super) fn reloading_line(what: &str, since: Millis, c: &Claim) -> String {
    format!(
        "reloading: {what} since {}: another probe ({}) is reloading the app since {}; keeping the running \
         config meanwhile",
        clock_time(since),
        c.by,
        clock_time(c.at)
    )
}

impl Look<'_> {
    /// This probe among the container's reloaders.
    fn reloader(&self) -> shared::Reloader {
        shared::Reloader::of(self.kind.name(), &self.opened.key, &self.opened.watch)
    }

    pub(super) fn reloads(&self) -> bool {
        matches!(
            self.reaction.response,
            Response::Reload(..) | Response::Http(_)
        )
    }

    /// A live process's start time; `None` once it exited (a zombie too).
    pub(super) fn start_ticks_of(&self, pid: i32) -> Option<u64> {
        self.opened.proc.live_start_ticks(pid)
    }

    pub(super) fn lock_shared(&self) -> Result<shared::Held, String> {
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
    pub(super) fn clear_claim(
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
    pub(super) fn share(
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
    pub(super) fn take_claim(
        &self,
        files: Vec<Given>,
        lasts: Duration,
        now: Stamp,
        applied: u64,
    ) -> Claimed {
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
    pub(super) fn release(
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

    /// Before adopting: beside a probe that reloads, leave it to that one
    /// (adopting first would swallow the change); else record the files as
    /// given, so every watch set holding them sees the adoption.
    pub(super) fn adopt_shared(
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
