//! `status` (what this container recorded and what differs now, for
//! humans or as stable JSON) and `digest` (the tree digest for CI).
//! Both only read: `status` never writes the state file.

use crate::baseline::{self, failure_report, files, short, Failure};
use crate::cli::{FilesArgs, WatchArgs};
use crate::digest::{Skipped, Walker};
use crate::exit::Code;
use crate::json::{self, obj, strings, Value};
use crate::key::Key;
use crate::state::{entry_json, skipped_json};
use crate::state::{Baseline, Reload, Validation};
use crate::time::{self, format_duration, rfc3339};
use crate::verdict::Changes;
use crate::Report;

/// `status --json`, version 1. Fields are only ever added.
#[derive(Debug)]
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
    pub reloads: Vec<Reload>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    pub stagger_offset_ms: Option<u64>,
    /// What each probe kind last wrote to the container's log.
    pub mirrored: Vec<crate::state::Mirrored>,
}

#[derive(Debug)]
pub struct BaselineJson {
    pub digest: String,
    pub recorded_at: String,
    pub source: String,
    pub files: usize,
}

#[derive(Debug)]
pub struct CurrentJson {
    pub digest: String,
    pub files: usize,
}

#[derive(Debug)]
pub struct DriftJson {
    pub since: String,
    pub for_seconds: u64,
    pub unproven: Option<String>,
}

#[derive(Debug)]
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

impl StatusJson {
    /// The document, fields in the order above; `null` for what is absent.
    fn to_json(&self) -> Value {
        obj(vec![
            ("version", self.version.into()),
            ("paths", strings(&self.paths)),
            ("state_file", (&self.state_file).into()),
            ("state", self.state.into()),
            (
                "baseline",
                self.baseline.as_ref().map_or(Value::Null, |b| {
                    obj(vec![
                        ("digest", (&b.digest).into()),
                        ("recorded_at", (&b.recorded_at).into()),
                        ("source", (&b.source).into()),
                        ("files", b.files.into()),
                    ])
                }),
            ),
            (
                "current",
                obj(vec![
                    ("digest", (&self.current.digest).into()),
                    ("files", self.current.files.into()),
                ]),
            ),
            (
                "drift",
                self.drift.as_ref().map_or(Value::Null, |d| {
                    obj(vec![
                        ("since", (&d.since).into()),
                        ("for_seconds", d.for_seconds.into()),
                        ("unproven", d.unproven.as_ref().into()),
                    ])
                }),
            ),
            (
                "changes",
                obj(vec![
                    ("added", strings(&self.changes.added)),
                    ("removed", strings(&self.changes.removed)),
                    ("changed", strings(&self.changes.changed)),
                ]),
            ),
            (
                "skipped",
                Value::Arr(self.skipped.iter().map(skipped_json).collect()),
            ),
            ("missing", strings(&self.missing)),
            (
                "validations",
                Value::Arr(
                    self.validations
                        .iter()
                        .map(|v| {
                            obj(vec![
                                ("digest", (&v.digest).into()),
                                ("command", (&v.command).into()),
                                ("ok", v.ok.into()),
                                ("transient", v.transient.into()),
                                ("at", (&v.at).into()),
                                ("outcome", (&v.outcome).into()),
                                ("output", (&v.output).into()),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "reloads",
                Value::Arr(
                    self.reloads
                        .iter()
                        .map(|r| r.to_json_at((&rfc3339(r.at)).into()))
                        .collect(),
                ),
            ),
            ("warnings", strings(&self.warnings)),
            ("notes", strings(&self.notes)),
            ("stagger_offset_ms", self.stagger_offset_ms.into()),
            (
                "mirrored",
                Value::Arr(
                    self.mirrored
                        .iter()
                        .map(|m| {
                            obj(vec![
                                ("probe", (&m.probe).into()),
                                ("class", m.class.as_ref().into()),
                                ("problems", strings(&m.problems)),
                                ("failed", m.failed.as_ref().into()),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    }
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
fn with_given(
    opened: &baseline::Opened,
    mut st: crate::state::State,
    snap: &crate::digest::Snapshot,
    now: time::Stamp,
) -> crate::state::State {
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
                json::pretty(&s.to_json())
            } else {
                human(&s)
            };
            Report::document(code, text)
        }
        Err(f) => failure_report(f),
    }
}

fn build(args: &WatchArgs, stagger: Option<std::time::Duration>) -> Result<StatusJson, Failure> {
    let opened = baseline::open_existing(args)?;
    let (previous, note) = opened.previous(opened.dir.peek(&opened.key, opened.max_state_bytes()));
    let cache = previous.as_ref().map(|s| s.cache.as_slice()).unwrap_or(&[]);
    let snap = opened.snapshot(cache)?;
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
    let st = with_given(&opened, st, &snap, now);
    if st.baseline.is_none() {
        // Exit 1 like drift: nothing proves the files are the ones the app started with.
        notes.push("exit 1: no baseline yet, so nothing to compare the files with".into());
    }
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
        warnings: {
            // Shown while it holds, not only as the state recorded it.
            let mut w = st.warnings.clone();
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
            // What the probes found wrong with their own options, and
            // lines they could not write to the container's log.
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
        },
        mirrored: st.mirrored.clone(),
        notes,
        stagger_offset_ms: stagger.map(|s| {
            crate::verdict::stagger_offset(&crate::probe::hostname(&opened.proc.root), s)
                .as_millis() as u64
        }),
    })
}

/// Why `dir` (or, while it does not exist, the nearest existing dir it
/// would be created in) cannot be written by this user, if it cannot.
fn unwritable(dir: &std::path::Path) -> Option<String> {
    let existing = dir.ancestors().find(|d| d.exists())?;
    let ok = nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK);
    ok.err()
        .map(|e| crate::digest::plain_io(&std::io::Error::from(e)))
}

fn human(s: &StatusJson) -> String {
    let mut out = Vec::new();
    out.push(format!("watching:   {}", s.paths.join(", ")));
    out.push(format!("state file: {}", s.state_file));
    match &s.baseline {
        Some(b) => out.push(format!(
            "baseline:   {} ({}, recorded {} by {})",
            short(&b.digest),
            files(b.files),
            b.recorded_at,
            b.source
        )),
        None => out.push("baseline:   none".into()),
    }
    out.push(format!(
        "current:    {} ({})",
        short(&s.current.digest),
        files(s.current.files)
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
    if let Some(ms) = s.stagger_offset_ms {
        out.push(format!(
            "stagger:    this pod's offset {}",
            format_duration(std::time::Duration::from_millis(ms))
        ));
    }
    for v in &s.validations {
        out.push(format!(
            "validated:  {} at {}: {}{}{}",
            short(&v.digest),
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
            short(&r.from_digest),
            short(&r.to_digest)
        ));
    }
    for w in &s.warnings {
        out.push(format!("warning:    {w}"));
    }
    for n in &s.notes {
        out.push(format!("note:       {n}"));
    }
    out.join("\n")
}

/// Printed (stderr) with an unkeyed `digest --json`.
pub const UNKEYED_WARNING: &str = "driftprobe: warning: unkeyed SHA-256 digests: for a Secret, anyone who sees them can \
     test guessed values offline (a short PIN or password falls in seconds); use --key-file (README, \"What a digest \
     reveals\")";

pub fn digest(files: &FilesArgs, json: bool, key_file: Option<&std::path::Path>) -> Report {
    let key = match key_file.map(Key::load).transpose() {
        Ok(k) => k,
        Err(e) => return Report::usage(e),
    };
    let (roots, excludes) = match files.resolve() {
        Ok(r) => r,
        Err(e) => return Report::usage(e),
    };
    let snap = match (Walker {
        roots: &roots,
        excludes: &excludes,
        cache: &[],
        full: true,
        budgets: files.budgets.resolve(),
    })
    .snapshot()
    {
        Ok(s) => s,
        Err(e) => return Report::new(Code::Unknown, format!("cannot determine: {e}")),
    };
    if let Some(m) = snap.missing.first() {
        return Report::new(
            Code::Unknown,
            format!("cannot determine: {m} does not exist"),
        );
    }
    let tree = match &key {
        Some(k) => k.tree(&snap.files),
        None => snap.digest.clone(),
    };
    if json {
        // Keyed: each file's keyed value, and no size (a size alone
        // narrows a guess: a 4-byte PIN).
        let files = match &key {
            Some(k) => snap
                .files
                .iter()
                .map(|e| {
                    obj(vec![
                        ("path", (&e.path).into()),
                        ("hmac_sha256", Value::Str(k.file(e))),
                    ])
                })
                .collect(),
            None => snap.files.iter().map(entry_json).collect(),
        };
        let text = json::pretty(&obj(vec![
            ("digest", (&tree).into()),
            ("files", Value::Arr(files)),
            (
                "skipped",
                Value::Arr(snap.skipped.iter().map(skipped_json).collect()),
            ),
        ]));
        let r = Report::document(Code::Healthy, text);
        return match key {
            Some(_) => r,
            None => r.warn(UNKEYED_WARNING),
        };
    }
    let mut r = Report::new(Code::Healthy, tree);
    for k in &snap.skipped {
        r = r.warn(format!("driftprobe: skipped {} ({})", k.path, k.reason));
    }
    r
}
