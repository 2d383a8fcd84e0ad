//! The verdict on a look and the probe's response to it: the one line and
//! exit code, and under `--on-drift` once the grace window has ended, the
//! reload (by signal, or the `--reload-url` request's answer), the
//! adoption, or the failure that makes the kubelet restart the container.
//! The reloads themselves are in [`super::reload`], the claim they are
//! made under in [`super::claim`].

use super::claim::{reloading_line, Adoption, Claimed};
use super::look::{describe, EnvCheck, Look, Next, Saved, Seen};
use super::reaction::Response;
use super::reload::{adopt, record_reload, HttpAnswer, Signalled};
use super::validation::Hold;
use super::Kind;
use crate::baseline;
use crate::cli::OnInvalid;
use crate::exit::Code;
use crate::proc::Target;
use crate::reload_http::HttpReload;
use crate::shared::{Claim, Names};
use crate::state::State;
use crate::time::{clock_time, format_duration, Millis};
use crate::verdict::{self, Changes, Verdict};
use nix::sys::signal::Signal;
use std::ops::ControlFlow;
use std::time::Duration;

/// The verdict on a look, and what its line says.
pub(super) struct Judged {
    verdict: Verdict,
    /// The verdict as if nothing were being validated: while another probe
    /// validates, readiness keeps its normal window.
    plain: Verdict,
    /// Why the running config is kept, if it is.
    hold: Option<Hold>,
    /// The grace window, with this pod's stagger.
    window: Duration,
    window_text: String,
    /// What differs.
    what: String,
    /// `--on-drift report`: observe only.
    report_only: bool,
    /// Environment variables differ from their files: a reload cannot help.
    env_drifted: bool,
}

impl Judged {
    pub(super) fn in_grace(&self) -> bool {
        !matches!(self.verdict, Verdict::Overdue { .. })
    }

    /// `--on-drift report`: every drift-related line says so.
    fn only(&self) -> &'static str {
        if self.report_only {
            " (report only)"
        } else {
            ""
        }
    }
}

/// A look's answer: its exit code and line, and what it did to the state.
pub(super) struct Reply {
    pub(super) code: Code,
    pub(super) line: String,
    pub(super) effect: Effect,
}

/// What a response did beyond its line.
pub(super) enum Effect {
    /// The state is as saved.
    Unchanged,
    /// A new baseline (reloaded by signal, or adopted), to save.
    NewBaseline,
    /// The reload request's answer recorded as the new baseline, to save;
    /// its claim already ended.
    Answered,
    /// Send the reload request under this claim (the line is the next
    /// look's).
    Request(Claim),
}

/// A reply that changes nothing in the state.
fn reply(code: Code, line: String) -> ControlFlow<Next, Reply> {
    ControlFlow::Continue(Reply {
        code,
        line,
        effect: Effect::Unchanged,
    })
}

impl Look<'_> {
    /// Judges the drift (the files' and the environment's) against the
    /// grace window, and says what differs.
    pub(super) fn judge(
        &self,
        st: &State,
        seen: &Seen,
        env: &EnvCheck,
        hold: Option<Hold>,
    ) -> Judged {
        let (snap, clock) = (&seen.snap, seen.clock);
        let drift = verdict::combine(st.drift.as_ref(), env.since);
        // The hostname is read only when a stagger asks for it.
        let offset = if self.args.stagger.is_zero() {
            Duration::ZERO
        } else {
            verdict::stagger_offset(&self.opened.proc.hostname(), self.args.stagger)
        };
        let window = self.grace.saturating_add(offset);
        let verdict = verdict::judge(drift.as_ref(), clock, window, hold.is_some());
        let report_only = matches!(self.reaction.response, Response::Report);
        let plain = verdict::judge(drift.as_ref(), clock, window, false);
        let changes = match &st.baseline {
            Some(b) => Changes::between(&b.files, &snap.files),
            None => Changes::default(),
        };
        let what = describe(st, &changes, &env.drifted, snap);
        let window_text = if offset.is_zero() {
            format!("grace {}", format_duration(self.grace))
        } else {
            format!(
                "grace {} + stagger {}",
                format_duration(self.grace),
                format_duration(offset)
            )
        };
        Judged {
            verdict,
            plain,
            hold,
            window,
            window_text,
            what,
            report_only,
            env_drifted: !env.drifted.is_empty(),
        }
    }

    /// The line and code for the verdict, and once the window has ended,
    /// the `--on-drift` response. `Break` when the look must be made again.
    pub(super) fn respond(
        &self,
        st: &mut State,
        seen: &Seen,
        judged: &Judged,
        saved: &Saved,
        warnings: &mut Vec<String>,
    ) -> ControlFlow<Next, Reply> {
        let (what, only) = (&judged.what, judged.only());
        match &judged.verdict {
            Verdict::Healthy => {
                let b = st.baseline.as_ref();
                reply(
                    Code::Healthy,
                    format!(
                        "ok: config matches the baseline ({}, recorded {} by {})",
                        baseline::file_count(seen.snap.files.len()),
                        b.map(|b| clock_time(b.recorded_at)).unwrap_or_default(),
                        b.map(|b| b.source.as_str()).unwrap_or("?"),
                    ),
                )
            }
            Verdict::Drifting { since, left } => reply(
                Code::Healthy,
                format!(
                    "drift: {what} since {} ({}, {} left){only}",
                    clock_time(*since),
                    judged.window_text,
                    format_duration(*left)
                ),
            ),
            Verdict::Invalid { since } => ControlFlow::Continue(self.invalid(judged, *since)),
            Verdict::Overdue { since, .. } => {
                self.overdue(st, seen, judged, *since, saved, warnings)
            }
        }
    }

    /// A validator holds the drift (since `since`): the line says why;
    /// only readiness may fail on it.
    fn invalid(&self, judged: &Judged, since: Millis) -> Reply {
        let hold = judged.hold.clone().unwrap_or(Hold::Validating);
        let within_grace = matches!(judged.plain, Verdict::Drifting { .. });
        let code = match (self.kind, self.args.on_invalid) {
            _ if judged.report_only => Code::Healthy,
            (Kind::Liveness, _) | (Kind::Readiness, OnInvalid::Pass) => Code::Healthy,
            (Kind::Readiness, _) if hold == Hold::Validating && within_grace => Code::Healthy,
            (Kind::Readiness, OnInvalid::Fail) => Code::Drift,
        };
        Reply {
            code,
            line: format!("{}{}", hold.line(&judged.what, since), judged.only()),
            effect: Effect::Unchanged,
        }
    }

    /// The grace window ended (at drift `since`): the `--on-drift`
    /// response.
    fn overdue(
        &self,
        st: &mut State,
        seen: &Seen,
        judged: &Judged,
        since: Millis,
        saved: &Saved,
        warnings: &mut Vec<String>,
    ) -> ControlFlow<Next, Reply> {
        // A reload must be remembered: one that is not would be sent again
        // at every probe (a SIGHUP or POST each period, each printing
        // "reloaded"). So it is made only once this look is known to be
        // saved; a state dir that cannot be written turns it into a plain
        // drift: after the grace window liveness fails and the kubelet
        // restarts the container onto the new config, the safe fallback.
        let reload_due = !judged.env_drifted && self.answered.is_none() && self.reloads();
        let cannot_remember = match reload_due {
            true => saved.remember(self.locked, st).err(),
            false => None,
        };
        let due = Due::of(judged, since);
        let overdue = &due.line;
        match &self.reaction.response {
            Response::Fail => reply(Code::Drift, due.line),
            Response::Report => reply(Code::Healthy, format!("{overdue}{}", judged.only())),
            Response::Reload(..) | Response::Http(..) | Response::Adopt if judged.env_drifted => reply(
                Code::Drift,
                format!("{overdue}; a reload cannot change environment variables, only a restart can"),
            ),
            Response::Reload(..) | Response::Http(_) if cannot_remember.is_some() => reply(
                Code::Drift,
                format!(
                    "{overdue}; not reloaded, the state dir cannot be written ({}): a reload that is not \
                     remembered would be repeated at every probe",
                    cannot_remember.as_deref().unwrap_or_default()
                ),
            ),
            Response::Reload(signal, target) => {
                self.signal_response(*signal, target, st, seen, &due, warnings)
            }
            Response::Http(http) => self.http_response(http, st, seen, &due, warnings),
            // Adopting changes nothing in the app: when it cannot be
            // remembered (warned on stderr) the next probe adopts again,
            // harmlessly. Beside a probe that reloads, the reload is
            // left to it: adopting first would swallow the change.
            Response::Adopt => self.adopt_response(st, seen, &due, saved, warnings),
        }
    }

    /// `--on-drift reload` by signal.
    fn signal_response(
        &self,
        signal: Signal,
        target: &Target,
        st: &mut State,
        seen: &Seen,
        due: &Due,
        warnings: &mut Vec<String>,
    ) -> ControlFlow<Next, Reply> {
        let (what, overdue) = (due.what, &due.line);
        match self.signal_reload(signal, target, st, &seen.snap, seen.clock, warnings) {
            Signalled::Done(done) => ControlFlow::Continue(Reply {
                code: Code::Healthy,
                line: format!("reloaded: {what}: {done}"),
                effect: Effect::NewBaseline,
            }),
            Signalled::Failed(why) => {
                reply(Code::Drift, format!("{overdue}; reload failed: {why}"))
            }
            Signalled::Refused(why) => {
                reply(Code::Drift, format!("{overdue}; not reloaded: {why}"))
            }
            Signalled::Busy(c) => reply(Code::Healthy, reloading_line(what, due.since, &c)),
            Signalled::Again => ControlFlow::Break(Next::LookAgain),
        }
    }

    /// `--reload-url`: claim the reload and have the probe send the
    /// request; the look after it records the answer.
    fn http_response(
        &self,
        http: &HttpReload,
        st: &mut State,
        seen: &Seen,
        due: &Due,
        warnings: &mut Vec<String>,
    ) -> ControlFlow<Next, Reply> {
        let (snap, overdue, what) = (&seen.snap, &due.line, due.what);
        match self.answered {
            None => {
                let files = Names::of(&self.opened.watch).files(st.baseline.as_ref(), &snap.files);
                match self.take_claim(files, http.timeout, seen.clock, st.given_seq) {
                    Claimed::Mine(claim) => ControlFlow::Continue(Reply {
                        code: Code::Drift,
                        line: String::new(),
                        effect: Effect::Request(claim),
                    }),
                    Claimed::Busy(c) => reply(Code::Healthy, reloading_line(what, due.since, &c)),
                    Claimed::Again => ControlFlow::Break(Next::LookAgain),
                    Claimed::Failed(e) => reply(
                        Code::Drift,
                        format!("{overdue}; not reloaded, the reload cannot be claimed ({e}): two probes could both reload"),
                    ),
                }
            }
            Some(HttpAnswer { digest, said: Ok(said), claim }) if *digest == snap.digest => {
                let now = seen.clock.wall;
                let target = http.url.to_string();
                self.release(claim, true, st, now, warnings);
                record_reload(st, &http.method, 0, target, snap, now);
                ControlFlow::Continue(Reply {
                    code: Code::Healthy,
                    line: format!("reloaded: {what}: {said}; now the baseline"),
                    effect: Effect::Answered,
                })
            }
            Some(HttpAnswer { digest, said: Err(why), .. }) if *digest == snap.digest => {
                reply(Code::Drift, format!("{overdue}; reload failed: {why}"))
            }
            Some(_) => reply(
                Code::Drift,
                format!("{overdue}; the files changed again during the reload request: asking again on the next probe"),
            ),
        }
    }

    /// `--on-drift adopt`: the files become the baseline, unless a probe
    /// that reloads is to reload them.
    fn adopt_response(
        &self,
        st: &mut State,
        seen: &Seen,
        due: &Due,
        saved: &Saved,
        warnings: &mut Vec<String>,
    ) -> ControlFlow<Next, Reply> {
        let (snap, clock, what) = (&seen.snap, seen.clock, due.what);
        match self.adopt_shared(st, snap, clock, saved.failed().is_none(), warnings) {
            Adoption::Busy(c) => reply(Code::Healthy, reloading_line(what, due.since, &c)),
            Adoption::Wait(by) => reply(
                Code::Healthy,
                format!(
                    "reloading: {what} since {}: left to the reload by another probe of this container ({by} \
                     --on-drift reload); not adopted",
                    clock_time(due.since)
                ),
            ),
            Adoption::Again => ControlFlow::Break(Next::LookAgain),
            Adoption::Adopt => {
                adopt(st, snap, clock.wall, "adopt");
                ControlFlow::Continue(Reply {
                    code: Code::Healthy,
                    line: format!("adopted: {what}: now the baseline (the app reloads by itself)"),
                    effect: Effect::NewBaseline,
                })
            }
        }
    }
}

/// A drift whose grace window has ended: what differs, since when, and
/// the line that says so.
struct Due<'a> {
    what: &'a str,
    since: Millis,
    line: String,
}

impl<'a> Due<'a> {
    fn of(judged: &'a Judged, since: Millis) -> Due<'a> {
        // A failing line becomes an Event, and the kubelet folds only
        // identical ones: no "exceeded by 1234ms" that ticks at every
        // probe, but the (wall) time the window ended.
        let ended = since.saturating_add(judged.window.as_millis().min(i64::MAX as u128) as i64);
        Due {
            what: &judged.what,
            since,
            line: format!(
                "drift: {} since {} ({}, ended {})",
                judged.what,
                clock_time(since),
                judged.window_text,
                clock_time(ended)
            ),
        }
    }
}
