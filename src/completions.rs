//! `driftprobe completions SHELL` and `driftprobe man [COMMAND]`, generated
//! from the clap definition in [`crate::cli`] by clap_complete and
//! clap_mangen. Both sit behind the `completions` cargo feature, on by
//! default: the in-container probe is built without it
//! (`scripts/static-build.sh`, `--no-default-features`) to stay small;
//! there the two commands do not exist, and `cli::parse` says
//! where the files are.
//! The generated files are also committed (contrib/completions/, doc/man/);
//! a test keeps them equal to what this module prints.

use crate::cli::{self, Shell};
use crate::exit::Code;
use crate::{Form, Report};

/// The committed files and the shells they are for.
pub const COMPLETION_FILES: [(Shell, &str); 3] = [
    (Shell::Bash, "contrib/completions/driftprobe.bash"),
    (Shell::Zsh, "contrib/completions/_driftprobe"),
    (Shell::Fish, "contrib/completions/driftprobe.fish"),
];

/// Where the man pages are committed: `driftprobe.1`, `driftprobe-init.1`, ...
pub const MAN_DIR: &str = "doc/man";

pub fn completions(shell: Shell) -> Report {
    Report {
        form: Form::Verbatim,
        ..Report::new(Code::Healthy, script(shell).trim_end())
    }
}

pub fn man(command: Option<&str>) -> Report {
    match page(command) {
        Ok(text) => Report {
            form: Form::Verbatim,
            ..Report::new(Code::Healthy, text.trim_end())
        },
        Err(m) => Report::usage(m),
    }
}

pub fn script(shell: Shell) -> String {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(generator, &mut cli::command(), "driftprobe", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn built() -> clap::Command {
    // The plain version: the committed pages must not change with every
    // commit (`--version` adds the commit and target).
    let mut cmd = cli::command()
        .disable_help_subcommand(true)
        .version(env!("CARGO_PKG_VERSION"));
    cmd.build();
    cmd
}

/// The page of driftprobe, or of one of its commands (`driftprobe-NAME`).
pub fn page(command: Option<&str>) -> Result<String, String> {
    let top = built();
    let cmd = match command {
        None => top,
        Some(name) => top.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = top.get_subcommands().map(|c| c.get_name()).collect();
            format!("man: no command {name:?}; one of: {}", names.join(", "))
        })?,
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .source(concat!("driftprobe ", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .map_err(|e| format!("man: {e}"))?;
    String::from_utf8(out).map_err(|e| format!("man: {e}"))
}

/// Every page as (file name, roff): what doc/man/ holds.
pub fn pages() -> Vec<(String, String)> {
    let top = built();
    let mut names = vec![None];
    names.extend(
        top.get_subcommands()
            .map(|c| Some(c.get_name().to_string())),
    );
    names
        .into_iter()
        .map(|name| {
            let file = match &name {
                None => "driftprobe.1".to_string(),
                Some(n) => format!("driftprobe-{n}.1"),
            };
            let text = page(name.as_deref()).expect("every command has a page");
            (file, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The committed files, as (path, content now generated).
    fn expected() -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = COMPLETION_FILES
            .iter()
            .map(|(shell, path)| (path.to_string(), script(*shell)))
            .collect();
        for (name, text) in pages() {
            files.push((format!("{MAN_DIR}/{name}"), text));
        }
        files
    }

    /// `UPDATE_GENERATED=1 cargo test --lib generated_files` rewrites them.
    #[test]
    fn generated_files_are_up_to_date() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let update = std::env::var_os("UPDATE_GENERATED").is_some();
        let mut stale = Vec::new();
        for (path, text) in expected() {
            let full = root.join(&path);
            if update {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, &text).unwrap();
            } else if std::fs::read_to_string(&full).ok().as_deref() != Some(text.as_str()) {
                stale.push(path);
            }
        }
        assert!(
            stale.is_empty(),
            "out of date with src/cli/: {stale:?}; regenerate with \
             UPDATE_GENERATED=1 cargo test --lib generated_files"
        );
    }

    #[test]
    fn completions_know_every_command_and_flag() {
        for (shell, _) in COMPLETION_FILES {
            let s = script(shell);
            for word in ["liveness", "readiness", "grace", "on-drift", "state-dir"] {
                assert!(s.contains(word), "{shell:?} completion lacks {word}");
            }
        }
        let man = pages();
        assert!(man.iter().any(|(n, t)| n == "driftprobe-liveness.1"
            && t.contains("\\-\\-grace")
            && t.contains("Exit codes")));
        assert!(crate::completions::man(Some("nope"))
            .stderr
            .join("")
            .contains("one of: init, run"));
    }
}
