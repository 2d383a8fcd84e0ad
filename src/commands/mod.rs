//! The commands that are not probes, one file each: `init` and `run`
//! record the baseline, `status` shows it and what differs now, `digest`
//! prints what CI puts into a pod template's annotation, `install` copies
//! this binary into a shared volume. `completions`/`man` have a module of
//! their own; the probes are `probe`.

mod digest;
mod init;
mod install;
mod run;
mod status;

pub use digest::digest;
pub use init::init;
pub use install::install;
pub use run::run;
pub use status::status;

#[cfg(test)]
mod tests;
