//! The state file's contents: what a container instance recorded as its
//! baseline, when drift was first seen, the stat cache that keeps probes
//! cheap, and the rest a probe remembers until the next ([`State`]).
//!
//! One small versioned JSON file per watched path set ([`key`]), keyed to
//! the container instance ([`ContainerId`]: the start time of the
//! container's entrypoint and the boot id), so a restarted container whose
//! emptyDir kept the old file starts a fresh baseline. It holds names,
//! sizes, SHA-256 digests and stat data, never file contents. [`store`]
//! keeps it in a locked private dir with atomic writes; [`codec`] turns it
//! into JSON and back, telling corrupt, foreign and newer files apart.
//! This module defines and stores; deciding what the state means is the
//! verdict's and the probe's job.

mod codec;
pub mod store;

pub use codec::{json_compact, json_pretty, parse};

use crate::digest::{Budgets, CachedFile, Entry};
use crate::proc::ContainerId;
use crate::time::{Millis, Stamp};
use serde::ser::{SerializeStruct, SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The value of the `format` field.
pub const FORMAT: &str = "driftprobe-state";
/// The current `version`, which new states are written in; a newer one is
/// refused, not guessed at. Version 1 files still load, and a state read
/// from one is written back as version 1 (see [`State`]'s serialization).
pub const VERSION: u32 = 2;
/// The oldest `version` this build reads.
pub const OLDEST_VERSION: u32 = 1;
/// The largest state file a walk within `budgets` can make us write, and
/// so the most the loader reads: what a probe writes, the next one can read
/// back (a file too large to read would be re-recorded, and rewritten, by
/// every probe). Per file the state holds two entries (the baseline's and
/// the stat cache's), each a fixed part and the name; JSON at most doubles
/// a name as the digest writes it (`\` and `"` are escaped), and the rest
/// (validator output, reloads, warnings, the watched paths) is bounded by
/// the probe's own limits, well under [`OTHER_BYTES`].
pub fn max_state_bytes(budgets: &Budgets) -> u64 {
    ENTRY_BYTES
        .saturating_mul(2)
        .saturating_mul(budgets.max_entries)
        .saturating_add(budgets.max_name_bytes.saturating_mul(2 * 2))
        .saturating_add(OTHER_BYTES)
}

/// The most one file's entry (baseline or stat cache) takes besides its
/// name: the stat-cache entry with every number at its widest is 225.
const ENTRY_BYTES: u64 = 256;
/// Everything in the state that does not grow with the watched files.
const OTHER_BYTES: u64 = 4 << 20;

// The state file's JSON: fields in declaration order; what is optional is
// left out when empty and read as empty when absent, so files written by
// every earlier build of the same version load, and they read what this
// one writes. Version 2 differs from version 1 in one way only: each
// file's entry in the baseline manifest and in the stat cache is an array
// of its values in field order (`["app.yaml","<sha256>",120]`) instead of
// an object repeating every field name, which makes a large state a
// quarter smaller and quicker to read. The readers take either form, so a
// version 1 file loads; it is written back as version 1 (its `version` is
// kept), which is what [`State`]'s hand-written `Serialize` is for.

/// The recorded baseline: what the app started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub digest: String,
    pub recorded_at: Millis,
    /// `init`, `run`, `lazy` (first probe, proven by ctimes), `reload`.
    pub source: String,
    pub files: Vec<Entry>,
}

/// The config differs from the baseline since `since`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Wall-clock time the drift was first seen (shown to people; measured
    /// from only when `since_boot` is missing).
    pub since: Millis,
    /// The same moment on CLOCK_BOOTTIME of this boot, which wall-clock
    /// steps do not move: the grace window is measured on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_boot: Option<Millis>,
    /// Why there is no baseline to compare with, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unproven: Option<String>,
    /// The last look found the new config invalid: the first valid config
    /// after it starts a fresh grace window.
    #[serde(default, skip_serializing_if = "is_false")]
    pub held: bool,
}

/// The cached result of `--validate` for one digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub ok: bool,
    pub at: Millis,
    /// First lines the validator printed, escaped (crate::escape). Only
    /// `status` shows them: they may quote a Secret (`nginx -t` names the
    /// upstream it could not parse), and the probe line goes to Events.
    pub output: String,
    /// How it answered, with nothing from its output: `exit 1`, `timed out
    /// after 10s`, `cannot run validator X: …`. Empty in older states.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcome: String,
    /// No answer (timed out, could not start): held like a rejection, but
    /// asked again later instead of forever.
    #[serde(default, skip_serializing_if = "is_false")]
    pub transient: bool,
    /// The validator that answered: probes with different `--validate`
    /// commands do not share answers.
    #[serde(default)]
    pub command: String,
}

/// One in-place reload done by `--on-drift reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reload {
    pub at: Millis,
    pub signal: String,
    pub pid: i32,
    pub target: String,
    pub from_digest: String,
    pub to_digest: String,
}

/// What one probe kind last mirrored to the container's log
/// ([`crate::mirror`]): kept so that a line is written once per change,
/// not at every probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirrored {
    /// `liveness` or `readiness`.
    pub probe: String,
    /// The last verdict class logged (`--log-changes` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The misconfigurations already reported (stderr and log line).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Why the last line could not be written, shown by `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Everything a container instance remembers between probes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct State {
    pub format: String,
    pub version: u32,
    pub container: ContainerId,
    pub paths: Vec<String>,
    pub baseline: Option<Baseline>,
    pub drift: Option<Drift>,
    #[serde(default)]
    pub cache: Vec<CachedFile>,
    /// (digest, result), oldest first: each a two-element list.
    #[serde(default)]
    pub validations: Vec<(String, Validation)>,
    #[serde(default)]
    pub reloads: Vec<Reload>,
    /// Warnings about the watch set for this container instance.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Recorded by `init`/`run`, not yet printed by a probe.
    #[serde(default)]
    pub warnings_pending: bool,
    /// `--env` variables whose file differs from the app's environment, and
    /// since when. Only probes given `--env NAME` update NAME's entry.
    #[serde(default)]
    pub env_drift: Vec<EnvDrift>,
    /// A probe is running `--validate` on this digest right now (outside
    /// the lock); others hold instead of starting a second validator.
    #[serde(default)]
    pub validating: Option<ValidationUnderWay>,
    /// The last sequence number of the container's shared file
    /// ([`crate::shared`]) applied to this watch set's baseline: what the
    /// app was given (by any probe's reload or adoption) since then is
    /// applied at the next look.
    #[serde(default)]
    pub given_seq: u64,
    /// A probe that reloads by signal has checked its target's runtime
    /// (Go, JVM: [`crate::runtime`]) for this container instance, and
    /// warned if the signal would not be sent.
    #[serde(default)]
    pub runtime_checked: bool,
    /// What each probe kind last mirrored to the container's log.
    #[serde(default)]
    pub mirrored: Vec<Mirrored>,
}

// Written as the derive would write it, field by field and with the same
// fields left out, except that from version 2 on the manifest and the
// stat cache are written as rows.
impl Serialize for State {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rows = self.version >= 2;
        let mut m = s.serialize_struct("State", 16)?;
        m.serialize_field("format", &self.format)?;
        m.serialize_field("version", &self.version)?;
        m.serialize_field("container", &self.container)?;
        m.serialize_field("paths", &self.paths)?;
        let baseline = self.baseline.as_ref().map(|b| BaselineOut(b, rows));
        m.serialize_field("baseline", &baseline)?;
        m.serialize_field("drift", &self.drift)?;
        match rows {
            true => m.serialize_field("cache", &Rows(&self.cache))?,
            false => m.serialize_field("cache", &self.cache)?,
        }
        m.serialize_field("validations", &self.validations)?;
        m.serialize_field("reloads", &self.reloads)?;
        m.serialize_field("warnings", &self.warnings)?;
        if self.warnings_pending {
            m.serialize_field("warnings_pending", &self.warnings_pending)?;
        }
        if !self.env_drift.is_empty() {
            m.serialize_field("env_drift", &self.env_drift)?;
        }
        if self.validating.is_some() {
            m.serialize_field("validating", &self.validating)?;
        }
        if self.given_seq != 0 {
            m.serialize_field("given_seq", &self.given_seq)?;
        }
        if self.runtime_checked {
            m.serialize_field("runtime_checked", &self.runtime_checked)?;
        }
        if !self.mirrored.is_empty() {
            m.serialize_field("mirrored", &self.mirrored)?;
        }
        m.end()
    }
}

/// A baseline as written: its files as rows when `.1`.
struct BaselineOut<'a>(&'a Baseline, bool);

impl Serialize for BaselineOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let BaselineOut(b, rows) = *self;
        let mut m = s.serialize_struct("Baseline", 4)?;
        m.serialize_field("digest", &b.digest)?;
        m.serialize_field("recorded_at", &b.recorded_at)?;
        m.serialize_field("source", &b.source)?;
        match rows {
            true => m.serialize_field("files", &Rows(&b.files))?,
            false => m.serialize_field("files", &b.files)?,
        }
        m.end()
    }
}

/// A list of manifest or stat-cache entries written as rows.
struct Rows<'a, T>(&'a [T]);

impl<T: Row> Serialize for Rows<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(RowOut))
    }
}

struct RowOut<'a, T>(&'a T);

impl<T: Row> Serialize for RowOut<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.row(s)
    }
}

/// An entry written as the array of its fields' values, in declaration
/// order: the order in which the derived `Deserialize` reads an array.
trait Row {
    fn row<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
}

impl Row for Entry {
    fn row<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&self.path)?;
        t.serialize_element(&self.sha256)?;
        t.serialize_element(&self.size)?;
        t.end()
    }
}

impl Row for CachedFile {
    fn row<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(7)?;
        t.serialize_element(&self.path)?;
        t.serialize_element(&self.dev)?;
        t.serialize_element(&self.ino)?;
        t.serialize_element(&self.size)?;
        t.serialize_element(&self.mtime_ns)?;
        t.serialize_element(&self.ctime_ns)?;
        t.serialize_element(&self.sha256)?;
        t.end()
    }
}

/// An environment variable that differs from its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvDrift {
    pub name: String,
    pub since: Millis,
    /// As [`Drift::since_boot`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_boot: Option<Millis>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Drift {
    /// A drift first seen at `at`.
    pub fn starting(at: Stamp, unproven: Option<String>) -> Drift {
        Drift {
            since: at.wall,
            since_boot: at.boot,
            unproven,
            held: false,
        }
    }

    /// When it was first seen, on both clocks.
    pub fn started(&self) -> Stamp {
        Stamp {
            wall: self.since,
            boot: self.since_boot,
        }
    }
}

impl EnvDrift {
    pub fn started(&self) -> Stamp {
        Stamp {
            wall: self.since,
            boot: self.since_boot,
        }
    }
}

/// The marker of a `--validate` run under way (the state's `validating`):
/// the digest being validated, until when, and who runs it. Its answer,
/// once there, is a [`Validation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationUnderWay {
    pub digest: String,
    /// When the validator is overdue (its timeout, plus slack): a marker
    /// left by a probe the kubelet killed expires then.
    pub until: Millis,
    /// The same deadline on CLOCK_BOOTTIME (see [`Drift::since_boot`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_boot: Option<Millis>,
    /// The validator's process group and its leader's start time, so that
    /// the next probe can kill what a killed probe left running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_start: Option<u64>,
    /// The probe running the validator, and its start time: once it is
    /// gone (the kubelet killed it at timeoutSeconds) no answer will come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_start: Option<u64>,
}

impl State {
    pub fn new(container: ContainerId, paths: Vec<String>) -> State {
        State {
            format: FORMAT.into(),
            version: VERSION,
            container,
            paths,
            baseline: None,
            drift: None,
            cache: Vec::new(),
            validations: Vec::new(),
            reloads: Vec::new(),
            warnings: Vec::new(),
            warnings_pending: false,
            env_drift: Vec::new(),
            validating: None,
            given_seq: 0,
            runtime_checked: false,
            mirrored: Vec::new(),
        }
    }
}

/// What was found in the state file.
#[derive(Debug)]
pub enum Loaded {
    /// No state file yet.
    Absent,
    Found(Box<State>),
    /// A file is there but cannot be used; the reason says why.
    Unusable(String),
}

#[derive(Debug)]
pub enum StateError {
    Dir { path: PathBuf, reason: String },
    Io { path: PathBuf, reason: String },
    LockTimeout { path: PathBuf, waited: Duration },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Dir { path, reason } => {
                write!(f, "state dir {}: {reason}", path.display())
            }
            StateError::Io { path, reason } => write!(f, "state file {}: {reason}", path.display()),
            StateError::LockTimeout { path, waited } => write!(
                f,
                "state file {} stayed locked by another probe for {}",
                path.display(),
                crate::time::format_duration(*waited)
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// The file name stem for a watched path set: the same paths and excludes
/// always map to the same state file, different sets never share one.
pub fn key(paths: &[String], excludes: &[String]) -> String {
    let mut h = Sha256::new();
    for p in paths {
        h.update(b"p\0");
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    for x in excludes {
        h.update(b"x\0");
        h.update(x.as_bytes());
        h.update(b"\0");
    }
    let digest = h.finalize();
    let mut s = String::from("watch-");
    for b in &digest[..8] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::DEFAULT_BUDGETS;

    /// The biggest state a walk within `budgets` leads to: every file at
    /// its widest numbers, names whose JSON is twice their length, both
    /// lists full, the validator outputs and reloads at their caps.
    pub(super) fn largest_state(budgets: &Budgets) -> State {
        let n = budgets.max_entries;
        let name_len = (budgets.max_name_bytes / n) as usize;
        let mut st = sample();
        let name = |i: u64| {
            let mut s = format!("{i}");
            while s.len() < name_len {
                s.push(if s.len() % 2 == 0 { '"' } else { '\\' });
            }
            s
        };
        let sha = "f".repeat(64);
        let files: Vec<Entry> = (0..n)
            .map(|i| Entry {
                path: name(i),
                sha256: sha.clone(),
                size: u64::MAX,
            })
            .collect();
        st.cache = (0..n)
            .map(|i| CachedFile {
                path: name(i),
                dev: u64::MAX,
                ino: u64::MAX,
                size: u64::MAX,
                mtime_ns: i64::MIN,
                ctime_ns: i64::MIN,
                sha256: sha.clone(),
            })
            .collect();
        st.baseline = Some(Baseline {
            digest: sha.clone(),
            recorded_at: i64::MIN,
            source: "init --force".into(),
            files,
        });
        st.validations = (0..16)
            .map(|i| {
                let v = Validation {
                    ok: false,
                    at: i64::MIN,
                    output: "\u{1}".repeat(16 * 1024),
                    outcome: "\u{1}".repeat(8 * 1024),
                    transient: true,
                    command: "x".repeat(4096),
                };
                (format!("{sha}{i}"), v)
            })
            .collect();
        st.reloads = (0..20)
            .map(|_| Reload {
                at: i64::MIN,
                signal: "SIGRTMIN+15".into(),
                pid: i32::MIN,
                target: "x".repeat(4096),
                from_digest: sha.clone(),
                to_digest: sha.clone(),
            })
            .collect();
        st
    }

    #[test]
    fn what_a_walk_within_the_budgets_writes_can_be_read_back() {
        let small = Budgets {
            max_entries: 100,
            max_name_bytes: 100 * 4000,
            ..DEFAULT_BUDGETS
        };
        for budgets in [DEFAULT_BUDGETS, small] {
            let st = largest_state(&budgets);
            let text = json_compact(&st).unwrap();
            let limit = max_state_bytes(&budgets);
            assert!(
                text.len() as u64 <= limit,
                "{} bytes > {limit} for {budgets:?}",
                text.len()
            );
        }
        // And not much more: the worst case fills most of the limit.
        let st = largest_state(&DEFAULT_BUDGETS);
        let text = json_compact(&st).unwrap().len() as u64;
        let limit = max_state_bytes(&DEFAULT_BUDGETS);
        assert!(text > limit / 2, "{text} of {limit}");
    }

    pub(super) fn sample() -> State {
        State::new(
            ContainerId {
                boot_id: "b".into(),
                init_start_ticks: 7,
            },
            vec!["/etc/config".into()],
        )
    }

    #[test]
    fn keys_separate_watch_sets() {
        let a = key(&["/a".into()], &[]);
        assert_eq!(a, key(&["/a".into()], &[]));
        assert_ne!(a, key(&["/b".into()], &[]));
        assert_ne!(a, key(&["/a".into()], &["*.bak".into()]));
        assert!(a.starts_with("watch-") && a.len() == 22);
    }
}
