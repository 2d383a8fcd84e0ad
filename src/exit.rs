//! The documented exit codes, in one place.
//!
//! The kubelet only distinguishes zero from non-zero, but people reading
//! `kubectl describe pod`, CI logs or a shell need to tell "the config
//! drifted" from "driftprobe could not find out". Every code driftprobe can
//! return is listed here and in the README's table.

/// What a driftprobe process reports to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The config matches the baseline, drift is still inside the grace
    /// window, or the command did what it was asked.
    Healthy,
    /// The config drifted from the baseline and the grace window has passed,
    /// or the app failed its own health check (`--http-get`, `--tcp-socket`,
    /// `--exec`): the probe's verdict is "unhealthy" either way.
    Drift,
    /// Bad command line or bad option value (clap uses the same code).
    Usage,
    /// driftprobe cannot determine whether the config drifted: unreadable
    /// path, unusable state dir, unreadable /proc, lock timeout.
    Unknown,
    /// `run`: the command exists but cannot be executed.
    CannotExecute,
    /// `run`: the command was not found.
    NotFound,
}

impl Code {
    pub fn as_i32(self) -> i32 {
        match self {
            Code::Healthy => 0,
            Code::Drift => 1,
            Code::Usage => 2,
            Code::Unknown => 3,
            Code::CannotExecute => 126,
            Code::NotFound => 127,
        }
    }
}

impl From<Code> for std::process::ExitCode {
    fn from(code: Code) -> Self {
        // All codes fit in a u8 by construction.
        std::process::ExitCode::from(code.as_i32() as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_readme_table() {
        assert_eq!(Code::Healthy.as_i32(), 0);
        assert_eq!(Code::Drift.as_i32(), 1);
        assert_eq!(Code::Usage.as_i32(), 2);
        assert_eq!(Code::Unknown.as_i32(), 3);
        assert_eq!(Code::CannotExecute.as_i32(), 126);
        assert_eq!(Code::NotFound.as_i32(), 127);
    }
}
