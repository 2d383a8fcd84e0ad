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
use crate::json::{self, obj, or_default, strings, Value};
use crate::state::{Baseline, ContainerId, Locked, StateDir, StateError};
use crate::time::{self, Millis, Stamp};
use std::path::PathBuf;
use std::time::Duration;

pub const FORMAT: &str = "driftprobe-shared";
pub const VERSION: u32 = 1;
pub const FILE: &str = "container.shared";
pub const LOCK: &str = "container.lock";
/// A claim outlives its reload's own timeout by this much.
pub const CLAIM_SLACK: Duration = Duration::from_secs(2);
/// A signal claim left behind by a killed probe is taken as sent for this
/// long after it was made, if its target is still the same process.
pub const SETTLE_WITHIN: Duration = Duration::from_secs(600);

/// One file as given to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    /// Absolute, escaped as in the manifest ([`Names::absolute`]).
    pub path: String,
    /// Its SHA-256; empty when the app was given the file's absence.
    pub sha256: String,
    pub seq: u64,
    pub at: Millis,
    /// `reload` or `adopt`.
    pub source: String,
}

/// The signal a claim is about to send, and whether `kill(2)` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub files: Vec<Given>,
    pub signal: Option<Intent>,
}

/// The shared file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub container: ContainerId,
    pub seq: u64,
    pub given: Vec<Given>,
    pub reloaders: Vec<Reloader>,
    pub claim: Option<Claim>,
}

/// A probe of the container that carries `--on-drift reload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloader {
    /// `liveness` or `readiness`.
    pub by: String,
    /// Its watch set's state key.
    pub key: String,
    /// Its watched paths (as in [`Names`]) and `--exclude` patterns.
    pub roots: Vec<String>,
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
        self.written = json::compact(&self.shared.to_json());
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

#[rustfmt::skip]
const KEYS: &[&str] = &[
    "path", "sha256", "seq", "at", "source", "format", "version", "container",
    "boot_id", "pid1_start_ticks", "given", "reloaders", "claim", "by", "key",
    "roots", "excludes",
    "pid", "at_boot", "until", "until_boot", "files", "signal", "start_ticks",
    "sent", "holder_start",
];

fn parse(bytes: &[u8], container: &ContainerId) -> Option<Shared> {
    let doc = json::parse_known(bytes, KEYS).ok()?;
    match (doc.get("format").ok()??, doc.get("version").ok()??) {
        (Value::Str(f), Value::Int(v)) if f == FORMAT && *v == i128::from(VERSION) => {}
        _ => return None,
    }
    let shared = Shared::from_json(&doc).ok()?;
    (shared.container == *container).then_some(shared)
}

impl Given {
    fn to_json(&self) -> Value {
        obj(vec![
            ("path", (&self.path).into()),
            ("sha256", (&self.sha256).into()),
            ("seq", self.seq.into()),
            ("at", self.at.into()),
            ("source", (&self.source).into()),
        ])
    }

    fn from_json(v: &Value, _: &str) -> json::Result<Given> {
        Ok(Given {
            path: v.req("path")?.str("path")?,
            sha256: v.req("sha256")?.str("sha256")?,
            seq: or_default(v, "seq", Value::u64)?,
            at: or_default(v, "at", Value::i64)?,
            source: or_default(v, "source", Value::str)?,
        })
    }
}

impl Claim {
    fn to_json(&self) -> Value {
        let mut p = vec![
            ("by", (&self.by).into()),
            ("key", (&self.key).into()),
            ("pid", self.pid.into()),
            ("holder_start", self.holder_start.into()),
            ("at", self.at.into()),
            ("at_boot", self.at_boot.into()),
            ("until", self.until.into()),
            ("until_boot", self.until_boot.into()),
            (
                "files",
                Value::Arr(self.files.iter().map(Given::to_json).collect()),
            ),
        ];
        if let Some(s) = &self.signal {
            p.push((
                "signal",
                obj(vec![
                    ("signal", (&s.signal).into()),
                    ("pid", s.pid.into()),
                    ("start_ticks", s.start_ticks.into()),
                    ("sent", s.sent.into()),
                ]),
            ));
        }
        obj(p)
    }

    fn from_json(v: &Value, _: &str) -> json::Result<Claim> {
        Ok(Claim {
            by: v.req("by")?.str("by")?,
            key: v.req("key")?.str("key")?,
            pid: v.req("pid")?.i32("pid")?,
            holder_start: v.req("holder_start")?.u64("holder_start")?,
            at: v.req("at")?.i64("at")?,
            at_boot: v.opt("at_boot", Value::i64)?,
            until: v.req("until")?.i64("until")?,
            until_boot: v.opt("until_boot", Value::i64)?,
            files: or_default(v, "files", |f, n| f.list(n, Given::from_json))?,
            signal: v.opt("signal", |s, _| {
                Ok(Intent {
                    signal: s.req("signal")?.str("signal")?,
                    pid: s.req("pid")?.i32("pid")?,
                    start_ticks: s.req("start_ticks")?.u64("start_ticks")?,
                    sent: s.req("sent")?.bool("sent")?,
                })
            })?,
        })
    }
}

impl Shared {
    fn to_json(&self) -> Value {
        let mut p = vec![
            ("format", FORMAT.into()),
            ("version", VERSION.into()),
            (
                "container",
                obj(vec![
                    ("boot_id", (&self.container.boot_id).into()),
                    ("pid1_start_ticks", self.container.init_start_ticks.into()),
                ]),
            ),
            ("seq", self.seq.into()),
            (
                "given",
                Value::Arr(self.given.iter().map(Given::to_json).collect()),
            ),
            (
                "reloaders",
                Value::Arr(
                    self.reloaders
                        .iter()
                        .map(|r| {
                            obj(vec![
                                ("by", (&r.by).into()),
                                ("key", (&r.key).into()),
                                ("roots", strings(&r.roots)),
                                ("excludes", strings(&r.excludes)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ];
        if let Some(c) = &self.claim {
            p.push(("claim", c.to_json()));
        }
        obj(p)
    }

    fn from_json(v: &Value) -> json::Result<Shared> {
        let c = v.req("container")?;
        Ok(Shared {
            container: ContainerId {
                boot_id: c.req("boot_id")?.str("boot_id")?,
                init_start_ticks: c.req("pid1_start_ticks")?.u64("pid1_start_ticks")?,
            },
            seq: v.req("seq")?.u64("seq")?,
            given: or_default(v, "given", |g, n| g.list(n, Given::from_json))?,
            reloaders: or_default(v, "reloaders", |r, n| {
                r.list(n, |r, _| {
                    Ok(Reloader {
                        by: r.req("by")?.str("by")?,
                        key: r.req("key")?.str("key")?,
                        roots: or_default(r, "roots", |v, n| v.list(n, Value::str))?,
                        excludes: or_default(r, "excludes", |v, n| v.list(n, Value::str))?,
                    })
                })
            })?,
            claim: v.opt("claim", Claim::from_json)?,
        })
    }
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
mod tests {
    use super::*;

    fn id() -> ContainerId {
        ContainerId {
            boot_id: "b".into(),
            init_start_ticks: 7,
        }
    }

    fn entry(path: &str, sha: &str) -> Entry {
        Entry {
            path: path.into(),
            sha256: sha.into(),
            size: 1,
        }
    }

    fn base(files: Vec<Entry>) -> Baseline {
        Baseline {
            digest: tree_digest(&files),
            recorded_at: 1,
            source: "init".into(),
            files,
        }
    }

    #[test]
    fn a_reload_of_a_directory_is_seen_by_a_watched_file_in_it() {
        let dir = Names {
            root: Some(("/etc/config".into(), true)),
        };
        let file = Names {
            root: Some(("/etc/config/app.yaml".into(), false)),
        };
        let old = base(vec![entry("app.yaml", "a1"), entry("gone", "g1")]);
        let new = [entry("app.yaml", "a2"), entry("extra", "e1")];
        let mut shared = Shared::new(id());
        shared.give(&dir.files(Some(&old), &new), 50, "reload");
        assert_eq!(shared.seq, 1);
        assert_eq!(
            shared
                .given
                .iter()
                .map(|g| (g.path.as_str(), g.sha256.as_str()))
                .collect::<Vec<_>>(),
            [
                ("/etc/config/app.yaml", "a2"),
                ("/etc/config/extra", "e1"),
                ("/etc/config/gone", "")
            ]
        );
        // The one-file watch set: its file becomes a2.
        let mut b = base(vec![entry("app.yaml", "a1")]);
        assert!(file.apply(&shared, 0, &mut b, &[entry("app.yaml", "a2")]));
        assert_eq!(b.digest, tree_digest(&[entry("app.yaml", "a2")]));
        assert_eq!((b.recorded_at, b.source.as_str()), (50, "reload"));
        // Applied once: nothing newer than seq 1.
        assert!(!file.apply(&shared, 1, &mut b, &[entry("app.yaml", "a2")]));
        // The same directory with `extra` excluded: app.yaml and the
        // removal of `gone`, never `extra`.
        let mut b = old.clone();
        assert!(dir.apply(&shared, 0, &mut b, &[entry("app.yaml", "a2")]));
        assert_eq!(b.files, [entry("app.yaml", "a2")]);
    }

    #[test]
    fn reloaders_watch_what_is_under_their_roots_and_not_excluded() {
        let r = Reloader {
            by: "liveness".into(),
            key: "k".into(),
            roots: vec!["/etc/config".into(), "/etc/app.yaml".into()],
            excludes: vec!["*.bak".into(), "certs".into()],
        };
        assert!(r.watches("/etc/config/a.yaml"));
        assert!(r.watches("/etc/config/sub/a.yaml"));
        assert!(r.watches("/etc/app.yaml"));
        assert!(!r.watches("/etc/config/a.yaml.bak"));
        assert!(
            !r.watches("/etc/config/certs/tls.key"),
            "below an excluded dir"
        );
        assert!(!r.watches("/etc/configx/a.yaml"));
        assert!(!r.watches("/etc/other"));
        let root = Reloader {
            roots: vec!["/".into()],
            excludes: vec![],
            ..r
        };
        assert!(root.watches("/x/y"));
    }

    #[test]
    fn several_watched_paths_use_their_names_as_they_are() {
        let names = Names { root: None };
        assert_eq!(names.absolute("/etc/a/x"), "/etc/a/x");
        let root = Names {
            root: Some(("/".into(), true)),
        };
        assert_eq!(root.absolute("x"), "/x");
    }

    #[test]
    fn round_trips_and_refuses_other_containers() {
        let mut s = Shared::new(id());
        s.reloaders.push(Reloader {
            by: "liveness".into(),
            key: "watch-1".into(),
            roots: vec!["/etc/config".into()],
            excludes: vec!["*.bak".into()],
        });
        s.give(
            &[Given {
                path: "/a".into(),
                sha256: "s".into(),
                seq: 0,
                at: 0,
                source: String::new(),
            }],
            5,
            "adopt",
        );
        let now = Stamp {
            wall: 1_000,
            boot: Some(100),
        };
        s.claim = Some(claim(
            "liveness",
            "watch-1",
            3,
            now,
            Duration::from_secs(1),
            vec![],
            Some(Intent {
                signal: "SIGHUP".into(),
                pid: 1,
                start_ticks: 9,
                sent: false,
            }),
        ));
        let bytes = json::compact(&s.to_json());
        assert_eq!(parse(bytes.as_bytes(), &id()), Some(s.clone()));
        let other = ContainerId {
            boot_id: "b".into(),
            init_start_ticks: 8,
        };
        assert_eq!(parse(bytes.as_bytes(), &other), None);
        assert_eq!(parse(b"{\"format\":\"x\"}", &id()), None);
        assert_eq!(parse(b"not json", &id()), None);
    }

    #[test]
    fn the_sent_mark_is_written_in_place() {
        let d = tempfile::tempdir().unwrap();
        let dir = StateDir::open(&d.path().join("state")).unwrap();
        let mut held = lock(&dir, &id(), Duration::from_secs(1)).unwrap();
        // A file name made of the marker's bytes does not fool it.
        let tricky = Given {
            path: "/x/\"sent\":false}".into(),
            sha256: "s".into(),
            seq: 0,
            at: 0,
            source: String::new(),
        };
        let now = Stamp {
            wall: 1_000,
            boot: Some(100),
        };
        let intent = Intent {
            signal: "SIGHUP".into(),
            pid: 1,
            start_ticks: 9,
            sent: false,
        };
        let c = claim(
            "liveness",
            "k",
            3,
            now,
            Duration::ZERO,
            vec![tricky],
            Some(intent),
        );
        held.shared.claim = Some(c);
        held.save().unwrap();
        let marker = held.marker().expect("a marker");
        let before = peek(&dir, &id()).unwrap().claim.unwrap();
        assert!(!before.signal.unwrap().sent);
        marker.set().unwrap();
        let after = peek(&dir, &id()).expect("still a whole file");
        let c = after.claim.unwrap();
        assert!(c.signal.unwrap().sent);
        assert_eq!(c.files[0].path, "/x/\"sent\":false}");
        drop(held);
        // Private like every state file.
        let mode = std::fs::metadata(d.path().join("state").join(FILE)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn claims_expire_and_signal_claims_settle_only_for_the_same_process() {
        let at = |wall, boot| Stamp {
            wall,
            boot: Some(boot),
        };
        let intent = Intent {
            signal: "SIGHUP".into(),
            pid: 42,
            start_ticks: 9,
            sent: true,
        };
        let mut c = claim(
            "liveness",
            "k",
            5,
            at(1_000, 100),
            Duration::ZERO,
            vec![],
            Some(intent),
        );
        let me = std::process::id() as i32;
        assert!(c.holder_alive(|pid| (pid == me).then_some(5)));
        assert!(
            !c.holder_alive(|pid| (pid == me).then_some(6)),
            "pid reused"
        );
        assert!(c.live(at(1_000, 100)));
        assert!(!c.live(at(1_000, 100 + 2_000)), "expired on the boot clock");
        assert!(
            c.live(at(1_000 + 86_400_000, 101)),
            "a wall-clock step ends nothing"
        );
        let same = |pid| (pid == 42).then_some(9);
        let other = |pid| (pid == 42).then_some(10);
        assert!(c.settle(at(5_000, 5_000), same));
        assert!(!c.settle(at(5_000, 5_000), other), "pid reused");
        assert!(!c.settle(at(5_000, 5_000), |_| None), "gone");
        assert!(!c.settle(at(0, 100 + 600_000), same), "too old");
        c.signal.as_mut().unwrap().sent = false;
        assert!(!c.settle(at(5_000, 5_000), same), "not known to be sent");
        let http = claim(
            "liveness",
            "k",
            5,
            at(1_000, 100),
            Duration::ZERO,
            vec![],
            None,
        );
        assert!(!http.settle(at(1_000, 100), same));
    }
}
