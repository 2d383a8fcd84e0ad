//! What one snapshot may cost ([`Budgets`]: entries, depth, bytes hashed,
//! name bytes, a deadline), and the walk's checks against them. Past any
//! of them the walk stops with [`DigestError::Budget`], whose message
//! names the flag and the way out: "cannot determine" instead of a probe
//! that hangs or runs out of memory on a huge or hostile tree.

use super::walk::{Step, Stop, Walk};
use super::{display_root, DigestError};
use std::fmt;
use std::time::{Duration, Instant};

/// What one snapshot may cost. Past any of these the walk stops with
/// [`DigestError::Budget`] ("cannot determine"), so a huge or hostile tree
/// costs a probe a bounded amount of time, memory and I/O, never a hang or
/// a crash. The command line sets them (`--max-entries` and so on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Entries walked, of every kind (files, directories, symlinks, special
    /// files, the watched paths themselves); excluded ones do not count.
    pub max_entries: u64,
    /// Levels below a watched path.
    pub max_depth: u32,
    /// Bytes read and hashed by one snapshot (stat-cache hits read nothing).
    pub max_bytes: u64,
    /// Total bytes of the names of every entry walked, as the manifest and
    /// the state file write them.
    pub max_name_bytes: u64,
    /// Wall time of the whole snapshot, retries included; also checked
    /// while a large file is hashed.
    pub deadline: Duration,
}

/// The defaults: well inside the kubelet's default 1 s probe timeout, and
/// far above any real ConfigMap or Secret (1 MiB each, names included).
pub const DEFAULT_BUDGETS: Budgets = Budgets {
    max_entries: 20_000,
    max_depth: 32,
    max_bytes: 256 << 20,
    max_name_bytes: 1 << 20,
    deadline: Duration::from_millis(500),
};

impl Default for Budgets {
    fn default() -> Self {
        DEFAULT_BUDGETS
    }
}

/// One of the [`Budgets`], for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Entries,
    Depth,
    Bytes,
    NameBytes,
    Deadline,
}

impl Budget {
    /// The flag that sets it, without the dashes.
    pub fn flag(self) -> &'static str {
        match self {
            Budget::Entries => "max-entries",
            Budget::Depth => "max-depth",
            Budget::Bytes => "max-bytes",
            Budget::NameBytes => "max-name-bytes",
            Budget::Deadline => "deadline",
        }
    }

    /// Its environment variable.
    pub fn env(self) -> &'static str {
        match self {
            Budget::Entries => "DRIFTPROBE_MAX_ENTRIES",
            Budget::Depth => "DRIFTPROBE_MAX_DEPTH",
            Budget::Bytes => "DRIFTPROBE_MAX_BYTES",
            Budget::NameBytes => "DRIFTPROBE_MAX_NAME_BYTES",
            Budget::Deadline => "DRIFTPROBE_DEADLINE",
        }
    }

    /// The message of [`DigestError::Budget`]: which limit, where it was
    /// exceeded, and the way out.
    pub(super) fn exceeded(self, f: &mut fmt::Formatter<'_>, limit: &str, at: &str) -> fmt::Result {
        let (flag, env) = (self.flag(), self.env());
        write!(f, "budget: {flag} ({limit}) exceeded at {at}; ")?;
        match self {
            Budget::Deadline => write!(
                f,
                "raise --{flag} ({env}), keeping it under the probe's timeoutSeconds"
            ),
            Budget::Bytes => write!(
                f,
                "leave big files out with --exclude, or raise --{flag} ({env})"
            ),
            _ => write!(
                f,
                "watch the config dirs only, leave some out with --exclude, or raise --{flag} ({env})"
            ),
        }
    }
}

impl Budgets {
    /// The limit of `b`, written the way it is typed.
    pub fn limit(&self, b: Budget) -> String {
        match b {
            Budget::Entries => self.max_entries.to_string(),
            Budget::Depth => self.max_depth.to_string(),
            Budget::Bytes => format_size(self.max_bytes),
            Budget::NameBytes => format_size(self.max_name_bytes),
            Budget::Deadline => crate::time::format_duration(self.deadline),
        }
    }
}

/// `256MiB`, `1GiB`, `1536KiB`, `1000`: the largest binary unit that
/// divides `n`, as `--max-bytes` accepts it.
pub fn format_size(n: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n != 0 && n.trailing_zeros() >= shift {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// Whether the deadline (if any) has passed.
pub(super) fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

impl Walk<'_> {
    /// Stops the walk past budget `b`, at `rel` under watched path `index`.
    pub(super) fn over(&self, b: Budget, index: usize, rel: &str) -> Stop {
        Stop::Fatal(DigestError::Budget {
            budget: b,
            limit: self.walker.budgets.limit(b),
            at: self.shown(index, rel),
        })
    }

    pub(super) fn check_deadline(&self, index: usize, rel: &str) -> Step {
        if past(self.deadline) {
            return Err(self.over(Budget::Deadline, index, rel));
        }
        Ok(())
    }

    /// Counts one entry `depth` levels below watched path `index` against
    /// the entries, depth and name budgets.
    pub(super) fn count(&mut self, index: usize, rel: &str, depth: u32) -> Step {
        let budgets = self.walker.budgets;
        self.entries += 1;
        if self.entries > budgets.max_entries {
            return Err(self.over(Budget::Entries, index, rel));
        }
        if depth > budgets.max_depth {
            return Err(self.over(Budget::Depth, index, rel));
        }
        // The name as the manifest writes it: the watched path's prefix
        // too when there are several.
        let prefix = match self.walker.roots.len() {
            1 => 0,
            _ => display_root(&self.walker.roots[index]).len() + 1,
        };
        let len = if rel.is_empty() {
            self.name(index, rel).len()
        } else {
            prefix + rel.len()
        };
        self.name_bytes = self.name_bytes.saturating_add(len as u64);
        if self.name_bytes > budgets.max_name_bytes {
            return Err(self.over(Budget::NameBytes, index, rel));
        }
        Ok(())
    }
}
