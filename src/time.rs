//! Durations as people type them (`90s`, `5m`, `1h30m`) and timestamps as
//! people read them (`16:20:03Z`, RFC 3339).
//!
//! Time inside driftprobe is wall-clock milliseconds since the Unix epoch
//! ([`Millis`]): it is what the state file stores, what people read, and
//! what survives a reboot. Elapsed time (the grace window) is measured on
//! CLOCK_BOOTTIME instead wherever both ends were read in the same boot
//! ([`Stamp`]): the wall clock steps when NTP corrects it or a VM resumes,
//! and a step forward must not restart healthy pods, nor a step back
//! postpone a restart that is due. The verdict module never reads a clock
//! itself; callers pass `now` in, so tests can move both clocks freely.
//!
//! Hand-written rather than taken from a time crate: what is needed is two
//! clock reads, whole-second UTC formatting (one days-to-civil function)
//! and a duration syntax that prints exactly as it parses (`1h30m`, which
//! humantime would print as `1h 30m`); chrono or jiff would bring time
//! zones and calendars the probe never uses into a binary kept small.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current wall-clock time.
pub fn now() -> Millis {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_millis().min(i64::MAX as u128) as i64),
    }
}

/// Milliseconds on CLOCK_BOOTTIME: time since boot, suspend included. It
/// never steps, whatever happens to the wall clock, but means something
/// only within one boot: the state file is keyed to the boot id (see
/// `proc::ContainerId`), so a value read back from it is always from this
/// boot. `None` if the clock cannot be read.
pub fn boot_now() -> Option<Millis> {
    let ns = clock_ns(nix::libc::CLOCK_BOOTTIME)?;
    i64::try_from(ns.div_euclid(1_000_000)).ok()
}

/// The wall-clock time of boot: CLOCK_REALTIME - CLOCK_BOOTTIME, precise to
/// the nanosecond and rounded down (a millisecond early at worst). `None`
/// if a clock cannot be read.
pub fn boot_wall_time_ms() -> Option<Millis> {
    let since_boot = clock_ns(nix::libc::CLOCK_BOOTTIME)?;
    let wall = clock_ns(nix::libc::CLOCK_REALTIME)?;
    i64::try_from((wall - since_boot).div_euclid(1_000_000)).ok()
}

/// A clock's reading in nanoseconds.
fn clock_ns(clock: nix::libc::clockid_t) -> Option<i128> {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    let rc = unsafe { nix::libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}

/// The kernel's clock ticks per second (`starttime` in /proc/PID/stat
/// counts them): 100 where it cannot be read.
fn clock_ticks_per_second() -> i64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) } {
        hz if hz > 0 => hz,
        _ => 100,
    }
}

/// `ticks` clock ticks after boot (a `starttime` from /proc/PID/stat) as
/// milliseconds after boot, rounded down: on CLOCK_BOOTTIME as it is, on
/// the wall clock when added to [`boot_wall_time_ms`].
pub fn ticks_to_boot_ms(ticks: u64) -> Millis {
    i64::try_from(ticks)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000)
        / clock_ticks_per_second()
}

/// One moment as both clocks read it: the wall clock to show and to fall
/// back on, the boot clock to measure with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub wall: Millis,
    /// CLOCK_BOOTTIME, when read in this boot ([`boot_now`]).
    pub boot: Option<Millis>,
}

impl Stamp {
    /// Both clocks now.
    pub fn now() -> Stamp {
        Stamp {
            wall: now(),
            boot: boot_now(),
        }
    }

    /// The time from `self` to `later`: on the boot clock when both were
    /// read on it, else on the wall clock; never negative.
    pub fn until(self, later: Stamp) -> Duration {
        match (self.boot, later.boot) {
            (Some(a), Some(b)) => between(a, b),
            _ => between(self.wall, later.wall),
        }
    }

    /// The earlier of two moments, by the same rule as [`Stamp::until`].
    pub fn earlier(self, other: Stamp) -> Stamp {
        let first = match (self.boot, other.boot) {
            (Some(a), Some(b)) => a <= b,
            _ => self.wall <= other.wall,
        };
        if first {
            self
        } else {
            other
        }
    }
}

/// A wall-clock time alone, for tests of the wall-clock fallback (state
/// written before the boot clock was kept is read with `boot: None`
/// explicitly): test-only, so that no probe can judge by the wall clock by
/// passing a bare time.
#[cfg(test)]
impl From<Millis> for Stamp {
    fn from(wall: Millis) -> Stamp {
        Stamp { wall, boot: None }
    }
}

/// Parses `0`, `500ms`, `90s`, `5m`, `1h30m`, `2h`, `1d`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration (try 90s, 5m or 1h30m)".into());
    }
    // A bare number is seconds; it goes through the loop so the same cap applies.
    let bare = s.bytes().all(|b| b.is_ascii_digit());
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number before {rest:?} (try 90s, 5m or 1h30m)"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration {text:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" if bare => 1_000,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit after {number} (use ms, s, m, h or d)"
                ))
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h or d)"
                ))
            }
        };
        let part = number
            .checked_mul(millis_per_unit)
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
    }
    if total.as_millis() > i64::MAX as u128 / 2 {
        return Err(format!("duration {text:?} is too large"));
    }
    Ok(total)
}

/// Formats a duration the way it is typed: `0s`, `450ms`, `3m12s`, `1h30m`.
/// Sub-second parts are dropped once the duration reaches a second.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis().min(u128::from(u64::MAX)) as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1_000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400u64), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// The duration between two instants, zero if `later` is before `earlier`.
pub fn between(earlier: Millis, later: Millis) -> Duration {
    Duration::from_millis(later.saturating_sub(earlier).max(0) as u64)
}

/// Adds a duration to an instant, saturating.
pub fn after(start: Millis, d: Duration) -> Millis {
    start.saturating_add(d.as_millis().min(i64::MAX as u128) as i64)
}

/// `2026-11-25T16:20:03Z` (UTC, whole seconds).
pub fn rfc3339(t: Millis) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `16:20:03Z` for the one-line probe output (the kubelet event has the date).
pub fn clock_time(t: Millis) -> String {
    let (_, _, _, h, mi, s) = civil(t);
    format!("{h:02}:{mi:02}:{s:02}Z")
}

/// Splits a Unix time into UTC calendar fields (Howard Hinnant's days-to-civil).
fn civil(t: Millis) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (sod / 3_600) as u32,
        (sod % 3_600 / 60) as u32,
        (sod % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("1d2h"), Ok(Duration::from_secs(93_600)));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in [
            "",
            "m",
            "5x",
            "5",
            "-1s",
            "1.5s",
            "s5",
            "99999999999999999999s",
        ] {
            if bad == "5" {
                continue; // a bare number is seconds
            }
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("duration"), "{bad}: {err}");
        }
        assert!(parse_duration("5 m").is_err());
        assert!(parse_duration("10years").is_err());
        assert!(parse_duration("5m3").is_err());
    }

    #[test]
    fn huge_bare_numbers_are_too_large() {
        for huge in [
            "18446744073709551615",
            "9223372036854775",
            "99999999999999999999",
        ] {
            let err = parse_duration(huge).expect_err(huge);
            assert!(err.contains("too large"), "{huge}: {err}");
        }
        assert_eq!(
            parse_duration("4611686018427387"),
            Ok(Duration::from_secs(4_611_686_018_427_387))
        );
    }

    #[test]
    fn formats_like_it_parses() {
        for (text, d) in [
            ("0s", 0),
            ("450ms", 450),
            ("3m12s", 192_000),
            ("1h30m", 5_400_000),
            ("5m", 300_000),
            ("1d1s", 86_401_000),
        ] {
            assert_eq!(format_duration(Duration::from_millis(d)), text);
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(d)));
        }
    }

    #[test]
    fn renders_utc_calendar_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // 2026-11-25T16:20:03Z
        assert_eq!(rfc3339(1_795_623_603_000), "2026-11-25T16:20:03Z");
        assert_eq!(clock_time(1_795_623_603_999), "16:20:03Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn between_never_goes_negative() {
        assert_eq!(between(10, 5), Duration::ZERO);
        assert_eq!(between(5, 1_005), Duration::from_secs(1));
    }
}
