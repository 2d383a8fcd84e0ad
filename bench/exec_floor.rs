//! The exec floor for `bench/run.sh`: a static binary that does nothing.
//! Built by the same cargo invocation, profile and RUSTFLAGS as driftprobe,
//! so the difference between the two is what driftprobe itself costs.

fn main() {}
