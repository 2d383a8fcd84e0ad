//! From raw flags to the plain values the rest of the crate uses: the
//! watched paths made absolute and written one way, the excludes compiled,
//! the budgets gathered ([`WatchSet`]). Paths are only made absolute here,
//! never resolved through symlinks: kubelet volumes are symlink farms.

use super::args::{BudgetArgs, FilesArgs, WatchArgs};
use crate::digest::Budgets;
use crate::glob::Glob;
use std::path::{Path, PathBuf};

impl BudgetArgs {
    pub fn resolve(&self) -> Budgets {
        Budgets {
            max_entries: self.max_entries,
            max_depth: self.max_depth,
            max_bytes: self.max_bytes,
            max_name_bytes: self.max_name_bytes,
            deadline: self.deadline,
        }
    }
}

/// The watched set, resolved: absolute roots, compiled excludes.
#[derive(Debug, Clone)]
pub struct WatchSet {
    /// As given, made absolute (not canonicalized: kubelet volumes are
    /// symlink farms, and the user-visible path is what identifies them).
    pub roots: Vec<PathBuf>,
    pub excludes: Vec<Glob>,
    pub state_dir: PathBuf,
    pub full: bool,
    pub budgets: Budgets,
}

impl WatchSet {
    /// The roots as strings, for the state key and messages.
    pub fn names(&self) -> Vec<String> {
        self.roots.iter().map(|p| crate::escape::path(p)).collect()
    }

    pub fn exclude_texts(&self) -> Vec<String> {
        self.excludes
            .iter()
            .map(|g| g.as_str().to_string())
            .collect()
    }
}

/// Makes `p` absolute against the current directory without resolving
/// symlinks, written one way: `/etc/config/`, `/etc/config/.` and
/// `//etc//config` are all `/etc/config` (one state file for all). `..`
/// stays as given.
pub fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(p),
            Err(_) => p.to_path_buf(),
        }
    };
    joined.components().collect()
}

fn compile_excludes(texts: &[String]) -> Result<Vec<Glob>, String> {
    texts
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| Glob::new(t))
        .collect()
}

impl FilesArgs {
    /// The roots made absolute, each once, in the order given, and the
    /// compiled excludes.
    pub fn resolve(&self) -> Result<(Vec<PathBuf>, Vec<Glob>), String> {
        let mut roots: Vec<PathBuf> = Vec::new();
        for p in &self.paths {
            if p.as_os_str().is_empty() {
                continue;
            }
            let abs = absolute(p);
            if !roots.contains(&abs) {
                roots.push(abs);
            }
        }
        if roots.is_empty() {
            return Err("no PATH given (as arguments or in DRIFTPROBE_PATHS)".into());
        }
        Ok((roots, compile_excludes(&self.excludes)?))
    }
}

impl WatchArgs {
    pub fn resolve(&self) -> Result<WatchSet, String> {
        let (roots, excludes) = self.files.resolve()?;
        Ok(WatchSet {
            roots,
            excludes,
            state_dir: absolute(&self.state_dir),
            full: self.full,
            budgets: self.files.budgets.resolve(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{try_parse_from, Command};
    use crate::digest::DEFAULT_BUDGETS;

    fn defaults() -> BudgetArgs {
        let d = DEFAULT_BUDGETS;
        BudgetArgs {
            max_entries: d.max_entries,
            max_depth: d.max_depth,
            max_bytes: d.max_bytes,
            max_name_bytes: d.max_name_bytes,
            deadline: d.deadline,
        }
    }

    #[test]
    fn each_path_is_watched_once() {
        let files = FilesArgs {
            paths: vec![
                "/a".into(),
                "/a/".into(),
                "".into(),
                "/b".into(),
                "/a/.".into(),
            ],
            excludes: vec!["*.bak".into(), "".into()],
            budgets: defaults(),
        };
        let (roots, excludes) = files.resolve().unwrap();
        assert_eq!(roots, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(excludes.len(), 1);
        let none = FilesArgs {
            paths: vec!["".into()],
            excludes: vec![],
            budgets: defaults(),
        };
        assert!(none.resolve().is_err());
    }

    #[test]
    fn paths_are_written_one_way() {
        for p in [
            "/etc/config",
            "/etc/config/",
            "/etc/config/.",
            "//etc/./config//",
        ] {
            assert_eq!(absolute(Path::new(p)), Path::new("/etc/config"), "{p}");
        }
        assert_eq!(absolute(Path::new("/a/../b/")), Path::new("/a/../b"));
        assert_eq!(absolute(Path::new("/")), Path::new("/"));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute(Path::new("./x/")), cwd.join("x"));
        let cli = try_parse_from(["driftprobe", "init", "/etc/config/.", "/etc/config/"]).unwrap();
        let Command::Init(args) = cli.command else {
            panic!("not init")
        };
        let watch = args.watch.resolve().unwrap();
        assert_eq!(watch.roots, [PathBuf::from("/etc/config")]);
        assert_eq!(watch.names(), ["/etc/config"]);
    }
}
