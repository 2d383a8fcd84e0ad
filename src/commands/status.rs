//! `status`: what this container recorded and what differs now, for
//! humans or as stable JSON. It only reads: it never writes the state
//! file.

use crate::baseline::{file_count, short_digest};
use crate::cli::WatchArgs;
use crate::digest::{Skipped, Snapshot};
use crate::exit::Code;
use crate::state::{json_pretty, Baseline, Mirrored, Reload, State, Validation};
use crate::time::{self, format_duration, rfc3339};
use crate::verdict::Changes;
use crate::watch::{self, failure_report, Failure};
use crate::Report;
use serde::{Serialize, Serializer};

/// `status --json`, version 1, fields in this order; `null` for what is
/// absent. Fields are only ever added.
#[derive(Debug, Serialize)]
pub struct StatusJson {
    pub version: u32,
    pub paths: Vec<String>,
    pub state_file: String,
    /// `matches`, `drift` or `no-baseline`.
    pub state: &'static str,
    pub baseline: Option<BaselineJson>,
    pub current: CurrentJson,
    pub drift: Option<DriftJson>,
    pub changes: Changes,
    pub skipped: Vec<Skipped>,
    pub missing: Vec<String>,
    pub validations: Vec<ValidationJson>,
    #[serde(serialize_with = "reloads_json")]
    pub reloads: Vec<Reload>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    pub stagger_offset_ms: Option<u64>,
    /// What each probe kind last wrote to the container's log.
    #[serde(serialize_with = "mirrored_json")]
    pub mirrored: Vec<Mirrored>,
}

#[derive(Debug, Serialize)]
pub struct BaselineJson {
    pub digest: String,
    pub recorded_at: String,
    pub source: String,
    pub files: usize,
}

#[derive(Debug, Serialize)]
pub struct CurrentJson {
    pub digest: String,
    pub files: usize,
}

#[derive(Debug, Serialize)]
pub struct DriftJson {
    pub since: String,
    pub for_seconds: u64,
    pub unproven: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ValidationJson {
    pub digest: String,
    pub command: String,
    pub ok: bool,
    /// The validator gave no answer (timed out, could not start).
    pub transient: bool,
    pub at: String,
    /// How it answered (`exit 1`, `timed out after 10s`).
    pub outcome: String,
    /// Its first lines, escaped (crate::escape).
    pub output: String,
}

/// The reloads as the state holds them, with `at` an RFC 3339 time.
fn reloads_json<S: Serializer>(reloads: &[Reload], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct At<'a> {
        at: String,
        signal: &'a str,
        pid: i32,
        target: &'a str,
        from_digest: &'a str,
        to_digest: &'a str,
    }
    s.collect_seq(reloads.iter().map(|r| At {
        at: rfc3339(r.at),
        signal: &r.signal,
        pid: r.pid,
        target: &r.target,
        from_digest: &r.from_digest,
        to_digest: &r.to_digest,
    }))
}

/// What the probes mirrored, every field present (`null` when unset),
/// unlike the state file, which leaves out what is empty.
fn mirrored_json<S: Serializer>(mirrored: &[Mirrored], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct All<'a> {
        probe: &'a str,
        class: &'a Option<String>,
        problems: &'a [String],
        failed: &'a Option<String>,
    }
    s.collect_seq(mirrored.iter().map(|m| All {
        probe: &m.probe,
        class: &m.class,
        problems: &m.problems,
        failed: &m.failed,
    }))
}

fn baseline_json(b: &Baseline) -> BaselineJson {
    BaselineJson {
        digest: b.digest.clone(),
        recorded_at: rfc3339(b.recorded_at),
        source: b.source.clone(),
        files: b.files.len(),
    }
}

fn validation_json(digest: &str, v: &Validation) -> ValidationJson {
    ValidationJson {
        digest: digest.to_string(),
        command: v.command.clone(),
        ok: v.ok,
        transient: v.transient,
        at: rfc3339(v.at),
        outcome: v.outcome.clone(),
        output: v.output.clone(),
    }
}

/// The state as this watch set's next probe will see it: with what
/// another probe of the container gave the app since (see `shared`).
fn with_given(opened: &watch::Opened, mut st: State, snap: &Snapshot, now: time::Stamp) -> State {
    let Some(sh) = crate::shared::peek(&opened.dir, &opened.container) else {
        return st;
    };
    let since = if sh.seq < st.given_seq {
        0
    } else {
        st.given_seq
    };
    let names = crate::shared::Names::of(&opened.watch);
    if let Some(b) = st.baseline.as_mut().filter(|_| sh.seq != st.given_seq) {
        if names.apply(&sh, since, b, &snap.files) {
            let base = st.baseline.as_ref().map(|b| b.digest.as_str());
            st.drift = crate::verdict::track(base, &snap.digest, st.drift.as_ref(), now);
        }
    }
    st
}

pub fn status(args: &WatchArgs, json: bool, stagger: Option<std::time::Duration>) -> Report {
    match build(args, stagger) {
        Ok(s) => {
            let code = if s.state == "matches" {
                Code::Healthy
            } else {
                Code::Drift
            };
            let text = if json {
                match json_pretty(&s) {
                    Ok(t) => t,
                    Err(e) => return Report::new(Code::Unknown, format!("cannot determine: {e}")),
                }
            } else {
                human(&s)
            };
            Report::document(code, text)
        }
        Err(f) => failure_report(f),
    }
}

fn build(args: &WatchArgs, stagger: Option<std::time::Duration>) -> Result<StatusJson, Failure> {
    let opened = watch::open_existing(args)?;
    let Seen {
        st,
        snap,
        now,
        notes,
    } = look(&opened)?;
    let changes = st
        .baseline
        .as_ref()
        .map(|b| Changes::between(&b.files, &snap.files))
        .unwrap_or_default();
    let state = match &st.baseline {
        None => "no-baseline",
        // A drift record with equal files is env drift seen by the probe.
        Some(b) if b.digest == snap.digest && st.drift.is_none() => "matches",
        Some(_) => "drift",
    };
    let drift = st.drift.as_ref().map(|d| DriftJson {
        since: rfc3339(d.since),
        for_seconds: d.started().until(now).as_secs(),
        unproven: d.unproven.clone(),
    });
    let validations: Vec<ValidationJson> = st
        .validations
        .iter()
        .map(|(d, v)| validation_json(d, v))
        .collect();
    Ok(StatusJson {
        version: 1,
        paths: opened.watch.names(),
        state_file: crate::escape::path(&opened.dir.file(&opened.key)),
        state,
        baseline: st.baseline.as_ref().map(baseline_json),
        current: CurrentJson {
            digest: snap.digest.clone(),
            files: snap.files.len(),
        },
        drift,
        changes,
        skipped: snap.skipped,
        missing: snap.missing,
        validations,
        reloads: st.reloads.clone(),
        warnings: warnings(&opened, &st),
        mirrored: st.mirrored.clone(),
        notes,
        stagger_offset_ms: stagger
            .map(|s| crate::verdict::stagger_offset(&opened.proc.hostname(), s).as_millis() as u64),
    })
}

/// What `status` reports on: the state as the next probe would see it,
/// the watched files now, and notes about both.
struct Seen {
    st: State,
    snap: Snapshot,
    now: time::Stamp,
    notes: Vec<String>,
}

/// Reads the state (without the lock: `status` never writes) and hashes
/// the watched files, reusing its stat cache.
fn look(opened: &watch::Opened) -> Result<Seen, Failure> {
    let (previous, note) = opened.previous(opened.dir.peek(&opened.key, opened.max_state_bytes()));
    let snap = opened.snapshot(previous.as_ref())?;
    let now = time::Stamp::now();
    let mut notes: Vec<String> = note.into_iter().collect();
    let st = previous.unwrap_or_else(|| {
        notes.push(format!(
            "no state for this container yet in {}: the next probe records the baseline (or run `driftprobe init`); \
             if the probes pass --state-dir, pass the same here",
            crate::escape::path(&opened.watch.state_dir)
        ));
        opened.fresh_state()
    });
    let st = with_given(opened, st, &snap, now);
    if st.baseline.is_none() {
        // Exit 1 like drift: nothing proves the files are the ones the app started with.
        notes.push("exit 1: no baseline yet, so nothing to compare the files with".into());
    }
    Ok(Seen {
        st,
        snap,
        now,
        notes,
    })
}

/// The state's warnings, and those that hold now: the state dir exposed
/// or not writable, what the probes found wrong with their own options,
/// and lines they could not write to the container's log.
fn warnings(opened: &watch::Opened, st: &State) -> Vec<String> {
    // A warning the probes also told as a misconfiguration (a runtime
    // that would not be signalled) is shown once, as that.
    let told = |w: &String| st.mirrored.iter().any(|m| m.problems.contains(w));
    let mut w: Vec<String> = st.warnings.iter().filter(|w| !told(w)).cloned().collect();
    // Shown while it holds, not only as the state recorded it.
    if let Some(e) = opened.dir.exposure().filter(|e| !w.iter().any(|x| x == e)) {
        w.push(e.to_string());
    }
    if let Some(why) = unwritable(opened.dir.path()) {
        w.push(format!(
            "misconfigured: the state dir {} cannot be written ({why}): probes remember nothing; use a \
             writable emptyDir (--state-dir)",
            crate::escape::path(opened.dir.path())
        ));
    }
    for m in &st.mirrored {
        w.extend(
            m.problems
                .iter()
                .map(|p| format!("{}: misconfigured: {p}", m.probe)),
        );
        if let Some(f) = &m.failed {
            w.push(format!(
                "{}: its last line for the container's log was not written: {f}",
                m.probe
            ));
        }
    }
    w
}

/// Why `dir` (or, while it does not exist, the nearest existing dir it
/// would be created in) cannot be written by this user, if it cannot.
fn unwritable(dir: &std::path::Path) -> Option<String> {
    let existing = dir.ancestors().find(|d| d.exists())?;
    let ok = nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK);
    ok.err()
        .map(|e| crate::digest::plain_io(&std::io::Error::from(e)))
}

/// The text form: one `label: value` line each, then the files that
/// differ, what was validated and reloaded, warnings and notes.
fn human(s: &StatusJson) -> String {
    let mut out = Vec::new();
    summary_lines(s, &mut out);
    file_lines(s, &mut out);
    history_lines(s, &mut out);
    for w in &s.warnings {
        out.push(format!("warning:    {w}"));
    }
    for n in &s.notes {
        out.push(format!("note:       {n}"));
    }
    out.join("\n")
}

/// The watch set, the baseline, the files now and the drift.
fn summary_lines(s: &StatusJson, out: &mut Vec<String>) {
    out.push(format!("watching:   {}", s.paths.join(", ")));
    out.push(format!("state file: {}", s.state_file));
    match &s.baseline {
        Some(b) => out.push(format!(
            "baseline:   {} ({}, recorded {} by {})",
            short_digest(&b.digest),
            file_count(b.files),
            b.recorded_at,
            b.source
        )),
        None => out.push("baseline:   none".into()),
    }
    out.push(format!(
        "current:    {} ({})",
        short_digest(&s.current.digest),
        file_count(s.current.files)
    ));
    match &s.drift {
        Some(d) => out.push(format!(
            "drift:      since {} ({} ago){}",
            d.since,
            format_duration(std::time::Duration::from_secs(d.for_seconds)),
            d.unproven
                .as_ref()
                .map(|u| format!(", unproven: {u}"))
                .unwrap_or_default()
        )),
        None if s.state == "matches" => out.push("drift:      none".into()),
        None => {}
    }
}

/// The files that differ from the baseline, are missing or were skipped.
fn file_lines(s: &StatusJson, out: &mut Vec<String>) {
    for (word, list) in [
        ("changed", &s.changes.changed),
        ("added", &s.changes.added),
        ("removed", &s.changes.removed),
    ] {
        for p in list {
            out.push(format!("  {word:<8} {p}"));
        }
    }
    for m in &s.missing {
        out.push(format!("  missing  {m}"));
    }
    for k in &s.skipped {
        out.push(format!("  skipped  {} ({})", k.path, k.reason));
    }
}

/// This pod's stagger, the validator's answers and the reloads done.
fn history_lines(s: &StatusJson, out: &mut Vec<String>) {
    if let Some(ms) = s.stagger_offset_ms {
        out.push(format!(
            "stagger:    this pod's offset {}",
            format_duration(std::time::Duration::from_millis(ms))
        ));
    }
    for v in &s.validations {
        out.push(format!(
            "validated:  {} at {}: {}{}{}",
            short_digest(&v.digest),
            v.at,
            if v.ok { "ok" } else { "INVALID" },
            if v.outcome.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.outcome)
            },
            if v.output.is_empty() {
                String::new()
            } else {
                format!(": {}", v.output)
            }
        ));
    }
    for r in &s.reloads {
        // pid 0: an HTTP reload (`signal` holds the method, `target` the URL).
        let how = match r.pid {
            0 => format!("{} {}", r.signal, r.target),
            pid => format!("{} to pid {pid} ({})", r.signal, r.target),
        };
        out.push(format!(
            "reloaded:   {} {how}, {} -> {}",
            rfc3339(r.at),
            short_digest(&r.from_digest),
            short_digest(&r.to_digest)
        ));
    }
}
