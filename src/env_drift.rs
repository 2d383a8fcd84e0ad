//! `--env NAME=PATH`: does the environment the app was started with still
//! match the mounted file it was taken from? Values are compared, never
//! printed; telling a rewritten `/proc/PID/environ` from an intact one is
//! most of the work.

use crate::digest::plain_io;
use crate::smallfile;
use std::path::{Path, PathBuf};

/// Names of `--env NAME=PATH` pairs whose value in the environment `pid`
/// was started with differs from the current content of PATH. Values are
/// compared, never printed. A PATH that does not exist is not compared.
///
/// `/proc/PID/environ` shows the memory the environment was placed in at
/// exec, not a copy: a program that rewrites that area for its process
/// title (nginx does, so does perl's `$0 = …`) leaves the title or padding
/// there. Then no variable can be told, found or not: "cannot determine"
/// (the error), never a drift. A variable absent from an intact environment
/// is a drift.
pub fn env_drift(
    proc_root: &Path,
    pid: i32,
    pairs: &[(String, PathBuf)],
) -> Result<Vec<String>, String> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let environ_path = proc_root.join(format!("{pid}/environ"));
    let environ = smallfile::read(&environ_path, smallfile::LARGE).map_err(|e| {
        format!(
            "cannot read the environment the app started with ({}): {}",
            environ_path.display(),
            plain_io(&e)
        )
    })?;
    let entries = environ_entries(&environ).map_err(|why| {
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "cannot tell the value of {} the app started with: {} no longer holds an environment ({why}); the app \
             rewrote that memory, e.g. for its process title as nginx does",
            names.join(", "),
            environ_path.display()
        )
    })?;
    let mut drifted = Vec::new();
    for (name, path) in pairs {
        let started_with = entries.iter().find_map(|kv| {
            let rest = kv.strip_prefix(name.as_bytes())?;
            rest.strip_prefix(b"=")
        });
        let current = match smallfile::read(path, smallfile::ENV_VALUE) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {}", path.display(), plain_io(&e))),
        };
        if started_with != Some(current.as_slice()) {
            drifted.push(name.clone());
        }
    }
    Ok(drifted)
}

/// The `NAME=value` entries of an environment block as the kernel placed
/// it at exec: strings each ended by a NUL, each with a name before its
/// `=`. Anything else (a string without `=`, an empty one, no final NUL:
/// a process title and its padding) means the block was rewritten: `Err`
/// says how, without quoting it.
fn environ_entries(block: &[u8]) -> Result<Vec<&[u8]>, String> {
    if block.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = block.strip_suffix(b"\0") else {
        return Err("it does not end with a NUL".into());
    };
    let mut entries = Vec::new();
    for (i, entry) in body.split(|b| *b == 0).enumerate() {
        if entry.is_empty() {
            return Err(format!("entry {} is empty", i + 1));
        }
        if entry.iter().position(|b| *b == b'=').unwrap_or(0) == 0 {
            return Err(format!("entry {} is not NAME=value", i + 1));
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_rewritten_environ_is_told_from_an_intact_one() {
        assert_eq!(environ_entries(b""), Ok(vec![]));
        assert_eq!(
            environ_entries(b"A=1\0PATH=/bin\0EMPTY=\0"),
            Ok(vec![&b"A=1"[..], b"PATH=/bin", b"EMPTY="])
        );
        // perl's `$0 = "t"`: spaces, then a NUL; nginx: the title's tail,
        // then NUL padding; a title running to the end: no NUL.
        for rewritten in [
            &b"                      \0"[..],
            b"process -c /etc/nginx.conf\0\0\0\0\0",
            b"\0\0\0\0\0\0",
            b"A=1\0B=2",
            b"A=1\0=x\0",
        ] {
            assert!(environ_entries(rewritten).is_err(), "{rewritten:?}");
        }
    }

    #[test]
    fn env_drift_never_calls_a_rewritten_environ_drift() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir(root.join("7")).unwrap();
        let file = root.join("level");
        fs::write(&file, "info").unwrap();
        let pairs = [("LOG_LEVEL".to_string(), file.clone())];
        fs::write(root.join("7/environ"), b"LOG_LEVEL=info\0HOME=/\0").unwrap();
        assert_eq!(env_drift(root, 7, &pairs), Ok(vec![]));
        // Really absent from an intact environment: drift.
        fs::write(root.join("7/environ"), b"HOME=/\0").unwrap();
        assert_eq!(
            env_drift(root, 7, &pairs),
            Ok(vec!["LOG_LEVEL".to_string()])
        );
        // Rewritten: cannot tell, and says which variable and why.
        fs::write(root.join("7/environ"), b"r process\0\0\0\0").unwrap();
        let e = env_drift(root, 7, &pairs).unwrap_err();
        assert!(
            e.contains("LOG_LEVEL") && e.contains("no longer holds an environment"),
            "{e}"
        );
        assert!(!e.contains("r process"), "quotes the rewritten memory: {e}");
    }
}
