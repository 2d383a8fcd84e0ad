//! What a probe writes to the container's log (the app's stdout, see
//! [`crate::mirror`]): a verdict whose class changed (`--log-changes`) and
//! each misconfiguration once, remembered in the state so that the next
//! probe does not say it again; and after a "cannot determine", a state
//! dir that cannot be used, at every probe.

use super::look::{Look, Saved};
use super::reaction::{app_target, misconfigurations, missing_path, Response};
use super::Kind;
use crate::cli::ProbeArgs;
use crate::digest::Snapshot;
use crate::mirror::{self, Class};
use crate::proc::{Proc, Target};
use crate::state::{Mirrored, State};
use crate::watch;
use crate::Report;
use std::time::Duration;

impl Look<'_> {
    /// What is new for the container's log: a changed verdict class
    /// (`--log-changes`), a misconfiguration not told yet. Remembered with
    /// one more save, only when something was new.
    pub(super) fn log_news(
        &self,
        st: &mut State,
        snap: &Snapshot,
        saved: &Saved,
        in_grace: bool,
        line: &str,
        warnings: &mut Vec<String>,
    ) {
        let args = self.args;
        let by_http = matches!(self.reaction.response, Response::Http(_));
        // A path missing while the files match the baseline never existed
        // in this container (a typo, a volume not mounted); one that went
        // away since is drift, and its line says so. One told already
        // stays told through a drift of other files.
        let told = told(st, self.kind);
        let never_there: Vec<String> = snap
            .missing
            .iter()
            .filter(|m| st.drift.is_none() || told.contains(&missing_path(m)))
            .cloned()
            .collect();
        let mut problems = misconfigurations(by_http, args, &never_there, saved.failed());
        problems.extend(self.refusals(st).cloned());
        let class = args.log_changes.then(|| Class::of(line, in_grace));
        if mirror_news(
            self.kind,
            args,
            &self.opened.proc,
            st,
            class,
            &problems,
            line,
            warnings,
        ) && saved.failed().is_none()
        {
            if let Err(e) = self.locked.save(st) {
                warnings.push(format!(
                    "driftprobe: warning: {e}; what was written to the container's log is not remembered"
                ));
            }
        }
    }
}

/// The misconfigurations probe `kind` told the container's log, and that
/// still held when it last looked.
fn told(st: &State, kind: Kind) -> &[String] {
    st.mirrored
        .iter()
        .find(|m| m.probe == kind.name())
        .map_or(&[], |m| m.problems.as_slice())
}

/// Where the container's log is: the stdout of the app's process
/// ([`app_target`]). In the host's PID namespace there is no container
/// entrypoint (PID 1 is the machine's init): never written to by default.
fn log_target(args: &ProbeArgs, proc: &Proc) -> Result<i32, String> {
    let target = app_target(args);
    if matches!(target, Target::Entrypoint) && mirror::in_host_pid_namespace(&proc.root) {
        return Err(
            "this probe runs in the host's PID namespace, which has no container entrypoint (PID 1 is the \
             machine's init): not written (name the process with --pid, --pidfile or --process)"
                .into(),
        );
    }
    target.resolve(proc)
}

/// Writes to the container's log what is new for probe `kind` since it
/// last wrote there (see [`mirror::news`]): misconfigurations first (also
/// on stderr), then `line` if its class changed. Records that in `st`
/// (with why a write failed, for `status`); true when `st` changed.
#[allow(clippy::too_many_arguments)]
fn mirror_news(
    kind: Kind,
    args: &ProbeArgs,
    proc: &Proc,
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
        rec.failed = log_target(args, proc)
            .and_then(|pid| {
                lines.iter().try_for_each(|l| {
                    mirror::write_to_stdout_of(&proc.root, pid, &mirror::log_line(kind.name(), l))
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

/// After a "cannot determine" (the app's failure named first, if it
/// failed its check too): a state dir that cannot be used is told
/// (stderr and the container's log) at every probe, as there is nowhere to
/// remember it was; otherwise, with `--log-changes`, the change to "cannot
/// determine" is mirrored if this container has a state to remember it in
/// (a quick lock: this probe has spent its time already).
pub(super) fn mirror_failure(kind: Kind, args: &ProbeArgs, report: &mut Report) {
    if let Err(e) = crate::state::store::StateDir::open(&args.watch.state_dir) {
        // Nothing was opened: no Proc to reuse.
        let proc = Proc::default();
        let problem = format!(
            "misconfigured: the state dir cannot be used ({e}): nothing is remembered between probes; use a writable \
             emptyDir (--state-dir)"
        );
        report
            .stderr
            .push(format!("driftprobe: warning: {problem}"));
        let _ = log_target(args, &proc).and_then(|pid| {
            mirror::write_to_stdout_of(&proc.root, pid, &mirror::log_line(kind.name(), &problem))
        });
        return;
    }
    if !args.log_changes {
        return;
    }
    let Ok(opened) = watch::open(&args.watch) else {
        return;
    };
    let Ok(locked) = opened.dir.lock(&opened.key, Duration::from_millis(100)) else {
        return;
    };
    let (Some(mut st), _) = opened.previous(locked.load(opened.max_state_bytes())) else {
        return;
    };
    let mut warnings = Vec::new();
    // `cannot determine: …`, or `app: …` when the app failed its check too.
    let class = Some(Class::of(&report.stdout, false));
    // Nothing was looked at: the misconfigurations told stay told.
    let told = told(&st, kind).to_vec();
    if mirror_news(
        kind,
        args,
        &opened.proc,
        &mut st,
        class,
        &told,
        &report.stdout,
        &mut warnings,
    ) {
        let _ = locked.save(&st);
    }
    report.stderr.extend(warnings);
}
