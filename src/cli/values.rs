//! Parsers of flag values as people write them in a pod spec: booleans,
//! counts, sizes (`256MiB`), durations above zero, `NAME=PATH` pairs. Each
//! error quotes the value and says what would have been accepted.

use crate::time::parse_duration;
use std::path::PathBuf;
use std::time::Duration;

/// A boolean as people write it in a pod spec: 1/0, true/false, yes/no,
/// on/off, any case; empty is false.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{s:?} is not a boolean (use 1/0, true/false, yes/no or on/off)"
        )),
    }
}

/// A process id: a positive number.
pub(super) fn parse_pid(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{s:?} is not a process id")),
    }
}

/// A count of at least 1.
pub(super) fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a number of at least 1")),
    }
}

/// A depth from 1 to 255 (each level may hold a directory open).
pub(super) fn parse_depth(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=255).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a depth from 1 to 255")),
    }
}

/// A size in bytes, at least 1: `65536`, `512KiB`, `256MiB`, `1GiB`,
/// `1TiB` (`Ki`, `Mi`, `Gi`, `Ti` as in Kubernetes quantities too).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let shift = match &t[digits..] {
        "" | "B" => 0,
        "Ki" | "KiB" => 10,
        "Mi" | "MiB" => 20,
        "Gi" | "GiB" => 30,
        "Ti" | "TiB" => 40,
        _ => {
            return Err(format!(
                "invalid size {s:?} (try 65536, 512KiB, 256MiB or 1GiB)"
            ))
        }
    };
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("invalid size {s:?} (try 65536, 512KiB, 256MiB or 1GiB)"))?;
    match n.checked_mul(1 << shift) {
        Some(0) => Err(format!("size {s:?} must be at least 1 byte")),
        Some(v) => Ok(v),
        None => Err(format!("size {s:?} is too large")),
    }
}

/// A duration above zero.
pub(super) fn parse_deadline(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        Duration::ZERO => Err(format!("deadline {s:?} must be above zero")),
        d => Ok(d),
    }
}

/// `--env NAME=PATH`: a non-empty name without NUL, a non-empty path.
pub(super) fn parse_env_pair(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, got {s:?}"))?;
    if name.is_empty() || path.is_empty() || name.contains('\0') {
        return Err(format!("expected NAME=PATH, got {s:?}"));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{try_parse_from, Command, OnError};
    use crate::digest::format_size;

    #[test]
    fn sizes_parse_as_they_are_shown() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("256Mi"), Ok(256 << 20));
        assert_eq!(parse_size(" 2TiB "), Ok(2 << 40));
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("").is_err());
        for n in [1, 1000, 1024, 1536 << 10, 256 << 20, 3 << 30, 1 << 40] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{n}");
        }
        assert_eq!(format_size(256 << 20), "256MiB");
    }

    #[test]
    fn booleans_as_people_write_them() {
        for t in ["1", "true", "TRUE", "yes", "Yes", "on", "ON", " 1 "] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["", "0", "false", "False", "no", "NO", "off", "Off"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["ture", "2", "y", "enabled"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
        let cli = try_parse_from([
            "driftprobe",
            "readiness",
            "--on-error",
            "FAIL",
            "--full",
            "/x",
        ])
        .unwrap();
        let Command::Readiness(args) = cli.command else {
            panic!("not readiness")
        };
        assert_eq!(args.probe.on_error, Some(OnError::Fail));
        assert!(args.probe.watch.full);
    }
}
