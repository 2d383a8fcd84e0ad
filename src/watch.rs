//! The watch set opened for a command: the paths resolved from the
//! command line, this container instance identified, its state dir opened
//! and the key of its state file ([`Opened`]); taking a snapshot of the
//! watched files and telling whether a loaded state is this instance's.
//! Every command that reads or writes state starts here. [`Failure`] is
//! why one could not go on.

use crate::cli::{WatchArgs, WatchSet};
use crate::digest::{Snapshot, Walker};
use crate::exit::Code;
use crate::proc::{ContainerId, Proc};
use crate::state::store::StateDir;
use crate::state::{self, Loaded, State};
use crate::Report;

/// Why a command could not go on.
#[derive(Debug)]
pub enum Failure {
    /// A bad value on the command line (exit 2).
    Usage(String),
    /// Cannot determine (exit 3).
    Unknown(String),
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Unknown(e.to_string())
    }
}

/// Everything needed to load and save this container's state.
pub struct Opened {
    pub watch: WatchSet,
    pub proc: Proc,
    pub container: ContainerId,
    pub dir: StateDir,
    pub key: String,
}

pub fn open(args: &WatchArgs) -> Result<Opened, Failure> {
    open_with(args, true)
}

/// Like [`open`], but creates and changes nothing (for `status`): a missing
/// state dir reads as "no state yet".
pub fn open_existing(args: &WatchArgs) -> Result<Opened, Failure> {
    open_with(args, false)
}

fn open_with(args: &WatchArgs, create: bool) -> Result<Opened, Failure> {
    let watch = args.resolve().map_err(Failure::Usage)?;
    let proc = Proc::default();
    let container = proc.container()?;
    let dir = if create {
        StateDir::open(&watch.state_dir)?
    } else {
        StateDir::existing(&watch.state_dir)?
    };
    let key = state::key(&watch.names(), &watch.exclude_texts());
    Ok(Opened {
        watch,
        proc,
        container,
        dir,
        key,
    })
}

impl Opened {
    /// The largest state file the budgets let a walk produce: the most
    /// [`state::store::Locked::load`] reads.
    pub fn max_state_bytes(&self) -> u64 {
        state::max_state_bytes(&self.watch.budgets)
    }

    /// Hashes the watched files, reusing the `previous` state's stat cache
    /// for unchanged ones (and its baseline's digest for a manifest equal
    /// to the baseline's).
    pub fn snapshot(&self, previous: Option<&State>) -> Result<Snapshot, Failure> {
        let cache = previous.map(|s| s.cache.as_slice()).unwrap_or(&[]);
        let known = previous
            .and_then(|s| s.baseline.as_ref())
            .map(|b| (b.files.as_slice(), b.digest.as_str()));
        Ok(Walker {
            roots: &self.watch.roots,
            excludes: &self.watch.excludes,
            cache,
            full: self.watch.full,
            budgets: self.watch.budgets,
        }
        .snapshot_known(known)?)
    }

    /// The state this container instance wrote, if any, and a note when a
    /// file was there but belongs to another instance or cannot be used.
    pub fn previous(&self, loaded: Loaded) -> (Option<State>, Option<String>) {
        match loaded {
            Loaded::Absent => (None, None),
            Loaded::Found(s) if s.container == self.container => (Some(*s), None),
            Loaded::Found(_) => (
                None,
                Some("the state file is from an earlier container instance (restarted); starting over".into()),
            ),
            Loaded::Unusable(reason) => (None, Some(format!("{reason}; starting over"))),
        }
    }

    /// A new state for this container instance, with the warnings about
    /// its watch set (subPath, service-account token) still to be shown.
    pub fn fresh_state(&self) -> State {
        let mut st = State::new(self.container.clone(), self.watch.names());
        st.warnings = crate::mount_warnings::warnings(
            &self.watch.roots,
            &self.proc.root.join("self/mountinfo"),
        );
        st.warnings.extend(self.dir.exposure().map(str::to_string));
        st.warnings_pending = !st.warnings.is_empty();
        st
    }
}

pub fn failure_report(f: Failure) -> Report {
    match f {
        Failure::Usage(m) => Report::usage(m),
        Failure::Unknown(m) => Report::new(Code::Unknown, format!("cannot determine: {m}")),
    }
}
