//! What the probes of one container share, whatever their watch sets: what
//! the app has been given, and who is reloading it right now.
//!
//! The kubelet runs a container's liveness and readiness probes on their
//! own timers, often at the same moment, and each may watch its own set of
//! paths (a directory, one file in it, the same with one more `--exclude`)
//! and so keep its own state file. The app is one, though: a reload made by
//! one probe gives the new files to the app for all of them, and a change
//! must be reloaded once, not once per probe. So the state dir holds one
//! more file per container, `container.shared` (0600, beside
//! `container.lock`), keyed by the container instance like every state
//! file, holding:
//!
//! - **given**: per file (by its absolute name), the SHA-256 the app has
//!   last been given (by a reload, or an adoption), with a sequence
//!   number. Each watch set remembers the last number it applied
//!   (`given_seq` in its state) and applies newer ones to its baseline at
//!   its next look, for the files it contains: a reload by liveness clears
//!   readiness's drift on the same files.
//! - **claim**: the one reload under way (who, when, which files; for a
//!   signal also the target process), taken under the lock before the
//!   signal is sent or the request made, released with the files it gave
//!   (or without, on failure). An HTTP claim is held across the request,
//!   without the lock; it ends when its probe is gone (a probe killed
//!   mid-request does not block the next) or after `--reload-timeout`. A
//!   signal claim is taken and released within one hold of the lock, so
//!   one that is found was left by a probe killed on the way: marked
//!   `sent` right after `kill(2)`, it is settled without signalling again
//!   (see [`Claim::settle`]).
//! - **reloaders**: the probes carrying `--on-drift reload` and what they
//!   watch, so that an `--on-drift adopt` probe beside them leaves a change
//!   they will reload to them instead of adopting first and swallowing it.
//!
//! Lock order: a watch set's lock, then this one; never the other way.
//! The file is not fsynced: it only means anything within one boot (the
//! boot id is part of the container identity). This module stores and
//! decides nothing about verdicts; `probe` uses it.

use crate::cli::WatchSet;
use crate::digest::{display_root, tree_digest, Entry};
use crate::glob::Glob;
use crate::proc::ContainerId;
use crate::state::store::{Locked, StateDir};
use crate::state::{Baseline, StateError};
use crate::time::{self, Millis, Stamp};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

pub const FORMAT: &str = "driftprobe-shared";
/// The version new files are written in: the state file's, whose number
/// it follows (its content is the same in versions 1 and 2, and both are
/// read).
pub const VERSION: u32 = crate::state::VERSION;
pub const FILE: &str = "container.shared";
pub const LOCK: &str = "container.lock";
/// A claim outlives its reload's own timeout by this much.
pub const CLAIM_SLACK: Duration = Duration::from_secs(2);
/// A signal claim left behind by a killed probe is taken as sent for this
/// long after it was made, if its target is still the same process.
pub const SETTLE_WITHIN: Duration = Duration::from_secs(600);

// The file's JSON, versions 1 and 2 alike: every field written, those
// added after the first version read as empty when absent.

/// One file as given to the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Given {
    /// Absolute, escaped as in the manifest ([`Names::absolute`]).
    pub path: String,
    /// Its SHA-256; empty when the app was given the file's absence.
    pub sha256: String,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub at: Millis,
    /// `reload` or `adopt`.
    #[serde(default)]
    pub source: String,
}

/// The signal a claim is about to send, and whether `kill(2)` returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub signal: String,
    pub pid: i32,
    /// The target's start time (`/proc/PID/stat` field 22): a pid taken
    /// over by another process is not the one signalled.
    pub start_ticks: u64,
    /// Written in place (`false` becomes `true `) right after `kill(2)`
    /// returned, before anything else.
    pub sent: bool,
}

/// A reload under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// `liveness` or `readiness`, for messages.
    pub by: String,
    /// The claiming watch set's state key.
    pub key: String,
    /// The claiming probe's pid and start time: only it releases the
    /// claim, and once that process is gone the claim is void.
    pub pid: i32,
    pub holder_start: u64,
    pub at: Millis,
    pub at_boot: Option<Millis>,
    /// Expiry, on both clocks (the boot clock is used when known).
    pub until: Millis,
    pub until_boot: Option<Millis>,
    /// What the app is being given (`seq` and `at` set on release).
    #[serde(default)]
    pub files: Vec<Given>,
    /// Last, so that [`Held::marker`] finds its `sent` at the file's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Intent>,
}

/// The shared file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    /// [`FORMAT`] and [`VERSION`] (or an older version); a file with
    /// others is not read.
    pub format: String,
    pub version: u32,
    pub container: ContainerId,
    pub seq: u64,
    #[serde(default)]
    pub given: Vec<Given>,
    #[serde(default)]
    pub reloaders: Vec<Reloader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
}

/// A probe of the container that carries `--on-drift reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloader {
    /// `liveness` or `readiness`.
    pub by: String,
    /// Its watch set's state key.
    pub key: String,
    /// Its watched paths (as in [`Names`]) and `--exclude` patterns.
    #[serde(default)]
    pub roots: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
}

impl Reloader {
    pub fn of(by: &str, key: &str, watch: &WatchSet) -> Reloader {
        Reloader {
            by: by.into(),
            key: key.into(),
            roots: watch.roots.iter().map(|r| display_root(r)).collect(),
            excludes: watch.exclude_texts(),
        }
    }

    /// Does it watch the file with this absolute name? (An excluded
    /// directory excludes all below it, as in the walk.)
    pub fn watches(&self, path: &str) -> bool {
        let excludes: Vec<Glob> = self
            .excludes
            .iter()
            .filter_map(|x| Glob::new(x).ok())
            .collect();
        self.roots.iter().any(|root| {
            let rel = match path.strip_prefix(root.as_str()) {
                Some("") => return true,
                Some(rest) if root.ends_with('/') => rest,
                Some(rest) => match rest.strip_prefix('/') {
                    Some(rel) => rel,
                    None => return false,
                },
                None => return false,
            };
            let prefixes = rel.match_indices('/').map(|(i, _)| &rel[..i]).chain([rel]);
            !prefixes
                .into_iter()
                .any(|p| excludes.iter().any(|g| g.is_match(p)))
        })
    }
}

impl Claim {
    /// Still blocking other reloads at `now`?
    pub fn live(&self, now: Stamp) -> bool {
        match (self.until_boot, now.boot) {
            (Some(until), Some(boot)) => boot < until,
            _ => now.wall < self.until,
        }
    }

    /// Is the probe that made it still running (`start_ticks_of` reads a
    /// pid's start time)?
    pub fn holder_alive(&self, start_ticks_of: impl Fn(i32) -> Option<u64>) -> bool {
        start_ticks_of(self.pid) == Some(self.holder_start)
    }

    /// A signal claim left behind by a probe killed after `kill(2)`:
    /// taken as sent (no second signal) when it is marked sent, recent, and
    /// its target is the very process it named. A probe killed in the
    /// instant between `kill(2)` and the mark (one `pwrite`) left it
    /// unmarked, like one killed before: the next probe signals again.
    pub fn settle(&self, now: Stamp, start_ticks_of: impl Fn(i32) -> Option<u64>) -> bool {
        let Some(intent) = self.signal.as_ref().filter(|i| i.sent) else {
            return false;
        };
        let window = SETTLE_WITHIN.as_millis() as i64;
        let recent = match (self.at_boot, now.boot) {
            (Some(at), Some(boot)) => (0..window).contains(&(boot - at)),
            _ => (0..window).contains(&(now.wall - self.at)),
        };
        recent && start_ticks_of(intent.pid) == Some(intent.start_ticks)
    }
}

impl Shared {
    pub fn new(container: ContainerId) -> Shared {
        Shared {
            format: FORMAT.into(),
            version: VERSION,
            container,
            seq: 0,
            given: Vec::new(),
            reloaders: Vec::new(),
            claim: None,
        }
    }

    /// Records `files` as given to the app (a new sequence number for all
    /// of them), replacing what was given of the same files before.
    pub fn give(&mut self, files: &[Given], at: Millis, source: &str) {
        self.seq += 1;
        let mut replaced: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        replaced.sort_unstable();
        self.given
            .retain(|g| replaced.binary_search(&g.path.as_str()).is_err());
        for f in files {
            self.given.push(Given {
                path: f.path.clone(),
                sha256: f.sha256.clone(),
                seq: self.seq,
                at,
                source: source.into(),
            });
        }
    }
}

/// Absolute file names for one watch set: the manifest's names are
/// relative to a single watched path (see `digest`), and two watch sets
/// name the same file differently.
pub struct Names {
    /// With one watched path: its name, and whether it is a directory.
    root: Option<(String, bool)>,
}

impl Names {
    pub fn of(watch: &WatchSet) -> Names {
        match watch.roots.as_slice() {
            [root] => Names {
                root: Some((
                    display_root(root),
                    std::fs::metadata(root).map_or(true, |m| m.is_dir()),
                )),
            },
            _ => Names { root: None },
        }
    }

    pub fn absolute(&self, name: &str) -> String {
        match &self.root {
            None => name.to_string(),
            Some((root, false)) => root.clone(),
            Some((root, true)) if root.ends_with('/') => format!("{root}{name}"),
            Some((root, true)) => format!("{root}/{name}"),
        }
    }

    /// What the app is given when `now` replaces `before` (files of the old
    /// baseline that are gone are given as absent).
    pub fn files(&self, before: Option<&Baseline>, now: &[Entry]) -> Vec<Given> {
        let give = |e: &Entry, sha256: &str| Given {
            path: self.absolute(&e.path),
            sha256: sha256.into(),
            seq: 0,
            at: 0,
            source: String::new(),
        };
        let mut files: Vec<Given> = now.iter().map(|e| give(e, &e.sha256)).collect();
        if let Some(b) = before {
            for e in &b.files {
                if now.binary_search_by(|n| n.path.cmp(&e.path)).is_err() {
                    files.push(give(e, ""));
                }
            }
        }
        files
    }

    /// Applies to `baseline` what the app was given after `since_seq`, for
    /// the files this watch set contains (in its baseline or in `current`).
    /// Returns whether the baseline changed.
    pub fn apply(
        &self,
        shared: &Shared,
        since_seq: u64,
        baseline: &mut Baseline,
        current: &[Entry],
    ) -> bool {
        let newer: Vec<&Given> = shared.given.iter().filter(|g| g.seq > since_seq).collect();
        if newer.is_empty() {
            return false;
        }
        // By absolute name, sorted: looked up, not scanned, per file given.
        let by_name = |files: &[Entry]| {
            let mut v: Vec<(String, Entry)> = files
                .iter()
                .map(|e| (self.absolute(&e.path), e.clone()))
                .collect();
            v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let mut base = by_name(&baseline.files);
        let now = by_name(current);
        let find =
            |v: &[(String, Entry)], path: &str| v.binary_search_by(|(p, _)| p.as_str().cmp(path));
        let mut changed = false;
        for g in newer {
            let in_current = find(&now, &g.path).ok().map(|i| &now[i].1);
            let size = in_current
                .filter(|e| e.sha256 == g.sha256)
                .map_or(0, |e| e.size);
            match find(&base, &g.path) {
                Ok(i) if g.sha256.is_empty() => {
                    base.remove(i);
                }
                Ok(i) if base[i].1.sha256 == g.sha256 => continue,
                Ok(i) => {
                    base[i].1.sha256 = g.sha256.clone();
                    base[i].1.size = size;
                }
                Err(_) if g.sha256.is_empty() => continue,
                Err(i) => match in_current {
                    Some(e) => base.insert(
                        i,
                        (
                            g.path.clone(),
                            Entry {
                                path: e.path.clone(),
                                sha256: g.sha256.clone(),
                                size,
                            },
                        ),
                    ),
                    // Not in this watch set.
                    None => continue,
                },
            }
            changed = true;
            baseline.recorded_at = g.at;
            baseline.source = g.source.clone();
        }
        if changed {
            baseline.files = base.into_iter().map(|(_, e)| e).collect();
            baseline.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
            baseline.digest = tree_digest(&baseline.files);
        }
        changed
    }
}

/// Reads the shared file without its lock (atomic renames make this safe):
/// `None` when there is none, or it is another container's, or unusable
/// (then it is as if nothing was shared yet, and the next write replaces
/// it).
pub fn peek(dir: &StateDir, container: &ContainerId) -> Option<Shared> {
    parse(&dir.peek_bytes(FILE).ok()??, container)
}

/// The shared file under its lock.
pub struct Held {
    locked: Locked,
    pub shared: Shared,
    /// What the last save wrote.
    written: String,
}

/// Takes the container's lock and reads the shared file (a fresh one when
/// absent, unusable or another container's).
pub fn lock(
    dir: &StateDir,
    container: &ContainerId,
    timeout: Duration,
) -> Result<Held, StateError> {
    let locked = dir.lock_file(LOCK, FILE, timeout)?;
    let shared = locked
        .read_bytes()
        .ok()
        .flatten()
        .and_then(|b| parse(&b, container))
        .unwrap_or_else(|| Shared::new(container.clone()));
    Ok(Held {
        locked,
        shared,
        written: String::new(),
    })
}

impl Held {
    pub fn save(&mut self) -> Result<(), StateError> {
        self.written =
            crate::state::json_compact(&self.shared).map_err(|reason| StateError::Io {
                path: self.path(),
                reason,
            })?;
        self.locked.write_bytes(self.written.as_bytes(), false)
    }

    /// Opens the file just saved, ready to mark its signal claim sent: the
    /// one write left for after `kill(2)`.
    pub fn marker(&self) -> Option<Marker> {
        // The claim's signal is the last object written: a file name
        // holding these bytes would have its quotes escaped.
        let at = self.written.rfind(UNSENT)? + "\"sent\":".len();
        Some(Marker {
            file: self.locked.open_written().ok()?,
            at: at as u64,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.locked.path().to_path_buf()
    }
}

const UNSENT: &str = "\"sent\":false}";

/// Where `"sent":false` is in the saved file.
pub struct Marker {
    file: std::fs::File,
    at: u64,
}

impl Marker {
    /// `false` becomes `true ` in place (whitespace is allowed there).
    pub fn set(&self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(b"true ", self.at)
    }
}

fn parse(bytes: &[u8], container: &ContainerId) -> Option<Shared> {
    let shared: Shared = serde_json::from_slice(bytes).ok()?;
    let known = (crate::state::OLDEST_VERSION..=VERSION).contains(&shared.version);
    (shared.format == FORMAT && known && shared.container == *container).then_some(shared)
}

/// A claim made now by this probe (which started at `holder_start`),
/// expiring after `lasts` (plus slack).
pub fn claim(
    by: &str,
    key: &str,
    holder_start: u64,
    now: Stamp,
    lasts: Duration,
    files: Vec<Given>,
    signal: Option<Intent>,
) -> Claim {
    let lasts = lasts + CLAIM_SLACK;
    Claim {
        by: by.into(),
        key: key.into(),
        pid: std::process::id() as i32,
        holder_start,
        at: now.wall,
        at_boot: now.boot,
        until: time::after(now.wall, lasts),
        until_boot: now.boot.map(|b| time::after(b, lasts)),
        files,
        signal,
    }
}

#[cfg(test)]
mod tests;
