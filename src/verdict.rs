//! Turns "baseline vs current" into a verdict: healthy, drifting inside the
//! grace window, or drifted past it. Pure functions only: no files, no
//! clock (callers pass `now`), so every rule here is unit-tested with
//! made-up times. Elapsed time is measured on the boot clock when the
//! drift record has it ([`Stamp`]), so wall-clock steps do not move the
//! grace window.

use crate::digest::Entry;
use crate::state::Drift;
use crate::time::{Millis, Stamp};
use sha2::{Digest as _, Sha256};
use std::time::Duration;

/// What one probe concludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The config equals the baseline.
    Healthy,
    /// It differs, but less than the grace window ago.
    Drifting { since: Millis, left: Duration },
    /// It differs, and the grace window has passed.
    Overdue { since: Millis, over: Duration },
    /// It differs, and the new config failed `--validate`: restarting or
    /// reloading into it would break the app, so the probe holds.
    Invalid { since: Millis },
}

/// Updates the drift record after looking at the files.
///
/// Equal to the baseline clears it; a first difference starts it at `now`;
/// an ongoing one keeps its start, even if the config changed again.
pub fn track(
    baseline: Option<&str>,
    current: &str,
    previous: Option<&Drift>,
    now: impl Into<Stamp>,
) -> Option<Drift> {
    match (baseline, previous) {
        (Some(b), _) if b == current => None,
        (_, Some(p)) => Some(p.clone()),
        (_, None) => Some(Drift::starting(now.into(), None)),
    }
}

/// Applies the validation gate to the drift record: an invalid config holds
/// it; the first valid config after that starts the grace window afresh, so
/// a fix does not hit every replica at the same instant.
pub fn gate(drift: Option<Drift>, invalid: bool, now: impl Into<Stamp>) -> Option<Drift> {
    let now = now.into();
    drift.map(|mut d| {
        if invalid {
            d.held = true;
        } else if d.held {
            d.held = false;
            d.since = now.wall;
            d.since_boot = now.boot;
        }
        d
    })
}

/// The drift a probe judges: the files' record and the earliest of its
/// own `--env` variables' records, whichever started first.
pub fn combine(files: Option<&Drift>, env_since: Option<Stamp>) -> Option<Drift> {
    match (files, env_since) {
        (Some(d), Some(e)) => {
            let first = d.started().earlier(e);
            Some(Drift {
                since: first.wall,
                since_boot: first.boot,
                ..d.clone()
            })
        }
        (Some(d), None) => Some(d.clone()),
        (None, Some(e)) => Some(Drift::starting(e, None)),
        (None, None) => None,
    }
}

/// Judges a drift record against a grace window (already including any
/// stagger offset). `invalid` says the current config failed validation.
pub fn judge(
    drift: Option<&Drift>,
    now: impl Into<Stamp>,
    grace: Duration,
    invalid: bool,
) -> Verdict {
    let Some(d) = drift else {
        return Verdict::Healthy;
    };
    if invalid {
        return Verdict::Invalid { since: d.since };
    }
    let elapsed = d.started().until(now.into());
    match grace.checked_sub(elapsed) {
        Some(left) if !left.is_zero() => Verdict::Drifting {
            since: d.since,
            left,
        },
        _ => Verdict::Overdue {
            since: d.since,
            over: elapsed.saturating_sub(grace),
        },
    }
}

/// Per-file differences between the baseline and the current files.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Changes {
    /// Both lists are sorted by path (as snapshots are): one merge pass.
    pub fn between(baseline: &[Entry], current: &[Entry]) -> Changes {
        let mut c = Changes::default();
        let (mut old, mut new) = (baseline.iter().peekable(), current.iter().peekable());
        loop {
            match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(o), Some(n)) if o.path == n.path => {
                    if o.sha256 != n.sha256 {
                        c.changed.push(n.path.clone());
                    }
                    old.next();
                    new.next();
                }
                (Some(o), Some(n)) if o.path < n.path => {
                    c.removed.push(o.path.clone());
                    old.next();
                }
                (Some(o), None) => {
                    c.removed.push(o.path.clone());
                    old.next();
                }
                (_, Some(n)) => {
                    c.added.push(n.path.clone());
                    new.next();
                }
            }
        }
        c
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// `2 changed, 1 added (app.yaml, b.yaml, new.yaml)`: counts, then at
    /// most three names (names are not contents; contents are never shown).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (n, word) in [
            (self.changed.len(), "changed"),
            (self.added.len(), "added"),
            (self.removed.len(), "removed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {word}"));
            }
        }
        if parts.is_empty() {
            return "content changed".into();
        }
        let names: Vec<&str> = self
            .changed
            .iter()
            .chain(&self.added)
            .chain(&self.removed)
            .map(String::as_str)
            .collect();
        let mut shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
        if names.len() > 3 {
            shown.push_str(&format!(", +{}", names.len() - 3));
        }
        format!("{} ({shown})", parts.join(", "))
    }
}

/// This replica's deterministic offset in `[0, stagger)`, from its
/// hostname (the pod name: stable across restarts, unique per replica).
pub fn stagger_offset(hostname: &str, stagger: Duration) -> Duration {
    let ms = stagger.as_millis().min(u64::MAX as u128) as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    let h = Sha256::digest(hostname.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h[..8]);
    let x = u64::from_be_bytes(first);
    // Multiply-shift maps the 64-bit hash uniformly onto [0, ms).
    Duration::from_millis(((u128::from(x) * u128::from(ms)) >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_795_623_603_000;

    fn drift_at(since: Millis) -> Drift {
        Drift::starting(since.into(), None)
    }

    #[test]
    fn equal_to_baseline_is_healthy_and_clears_drift() {
        assert_eq!(track(Some("a"), "a", Some(&drift_at(T0)), T0 + 5), None);
        assert_eq!(judge(None, T0, Duration::ZERO, false), Verdict::Healthy);
    }

    #[test]
    fn first_difference_starts_the_clock_and_later_ones_keep_it() {
        let first = track(Some("a"), "b", None, T0).unwrap();
        assert_eq!(first.since, T0);
        let again = track(Some("a"), "c", Some(&first), T0 + 60_000).unwrap();
        assert_eq!(again.since, T0);
    }

    #[test]
    fn grace_window_boundaries() {
        let d = drift_at(T0);
        let grace = Duration::from_secs(300);
        assert_eq!(
            judge(Some(&d), T0 + 108_000, grace, false),
            Verdict::Drifting {
                since: T0,
                left: Duration::from_secs(192)
            }
        );
        assert_eq!(
            judge(Some(&d), T0 + 299_999, grace, false),
            Verdict::Drifting {
                since: T0,
                left: Duration::from_millis(1)
            }
        );
        assert_eq!(
            judge(Some(&d), T0 + 300_000, grace, false),
            Verdict::Overdue {
                since: T0,
                over: Duration::ZERO
            }
        );
        assert_eq!(
            judge(Some(&d), T0 + 312_000, grace, false),
            Verdict::Overdue {
                since: T0,
                over: Duration::from_secs(12)
            }
        );
    }

    #[test]
    fn zero_grace_fails_at_once_and_a_clock_step_back_does_not_fail() {
        let d = drift_at(T0);
        assert!(matches!(
            judge(Some(&d), T0, Duration::ZERO, false),
            Verdict::Overdue { .. }
        ));
        // Clock stepped back below `since`: still inside the window.
        assert!(matches!(
            judge(Some(&d), T0 - 10_000, Duration::from_secs(1), false),
            Verdict::Drifting { .. }
        ));
    }

    /// Both clocks: wall `wall`, boot clock `boot` ms after boot.
    fn at(wall: Millis, boot: Millis) -> Stamp {
        Stamp {
            wall,
            boot: Some(boot),
        }
    }

    #[test]
    fn wall_clock_steps_do_not_move_the_grace_window() {
        let grace = Duration::from_secs(300);
        let d = track(Some("a"), "b", None, at(T0, 1_000)).unwrap();
        assert_eq!((d.since, d.since_boot), (T0, Some(1_000)));
        // NTP steps the wall clock a day forward 10 s later: 10 s gone.
        assert_eq!(
            judge(Some(&d), at(T0 + 86_400_000 + 10_000, 11_000), grace, false),
            Verdict::Drifting {
                since: T0,
                left: Duration::from_secs(290)
            }
        );
        // ... or an hour back, 301 s later: the window is over all the same.
        assert_eq!(
            judge(
                Some(&d),
                at(T0 - 3_600_000 + 301_000, 302_000),
                grace,
                false
            ),
            Verdict::Overdue {
                since: T0,
                over: Duration::from_secs(1)
            }
        );
        // A fix after an invalid config restarts the window on both clocks.
        let held = gate(Some(d.clone()), true, at(T0 + 5, 1_005)).unwrap();
        let fixed = gate(Some(held), false, at(T0 - 50_000, 61_000)).unwrap();
        assert_eq!((fixed.since, fixed.since_boot), (T0 - 50_000, Some(61_000)));
        // The earliest of file and env drift is judged by the boot clock.
        let both = combine(Some(&d), Some(at(T0 - 999_999, 2_000))).unwrap();
        assert_eq!(both.since_boot, Some(1_000));
        let both = combine(Some(&d), Some(at(T0 + 999_999, 500))).unwrap();
        assert_eq!((both.since, both.since_boot), (T0 + 999_999, Some(500)));
        // A record without the boot clock (older state) uses the wall clock.
        let old = drift_at(T0);
        assert!(matches!(
            judge(Some(&old), at(T0 + 301_000, 5), grace, false),
            Verdict::Overdue { .. }
        ));
    }

    #[test]
    fn liveness_and_readiness_windows_are_independent() {
        let d = drift_at(T0);
        let now = T0 + 10_000;
        assert!(matches!(
            judge(Some(&d), now, Duration::ZERO, false),
            Verdict::Overdue { .. }
        ));
        assert!(matches!(
            judge(Some(&d), now, Duration::from_secs(300), false),
            Verdict::Drifting { .. }
        ));
    }

    #[test]
    fn files_and_env_drift_combine_to_the_earliest() {
        assert_eq!(combine(None, None), None);
        assert_eq!(combine(Some(&drift_at(T0)), None), Some(drift_at(T0)));
        assert_eq!(combine(None, Some(Stamp::from(T0))), Some(drift_at(T0)));
        assert_eq!(
            combine(Some(&drift_at(T0 + 5)), Some(Stamp::from(T0))),
            Some(drift_at(T0))
        );
        assert_eq!(
            combine(Some(&drift_at(T0)), Some(Stamp::from(T0 + 5))),
            Some(drift_at(T0))
        );
    }

    #[test]
    fn a_fix_after_an_invalid_config_gets_a_fresh_window() {
        let held = gate(Some(drift_at(T0)), true, T0 + 60_000).unwrap();
        assert!(held.held);
        assert_eq!(held.since, T0);
        // Still invalid later: nothing moves.
        let still = gate(Some(held), true, T0 + 120_000).unwrap();
        assert_eq!(still.since, T0);
        // Fixed: the window starts now.
        let fixed = gate(Some(still), false, T0 + 180_000).unwrap();
        assert_eq!((fixed.since, fixed.held), (T0 + 180_000, false));
        // Valid from the start: the first difference keeps counting.
        let plain = gate(Some(drift_at(T0)), false, T0 + 5_000).unwrap();
        assert_eq!(plain.since, T0);
        assert_eq!(gate(None, true, T0), None);
    }

    #[test]
    fn an_invalid_config_holds_whatever_the_window() {
        let d = drift_at(T0);
        assert_eq!(
            judge(Some(&d), T0 + 1_000_000, Duration::ZERO, true),
            Verdict::Invalid { since: T0 }
        );
    }

    fn entry(path: &str, sha: &str) -> Entry {
        Entry {
            path: path.into(),
            sha256: sha.into(),
            size: 1,
        }
    }

    #[test]
    fn changes_name_added_removed_changed() {
        let before = [entry("a", "1"), entry("b", "2"), entry("c", "3")];
        let after = [entry("a", "1"), entry("b", "9"), entry("d", "4")];
        let c = Changes::between(&before, &after);
        assert_eq!(c.changed, ["b"]);
        assert_eq!(c.added, ["d"]);
        assert_eq!(c.removed, ["c"]);
        assert_eq!(c.summary(), "1 changed, 1 added, 1 removed (b, d, c)");
        assert!(Changes::between(&before, &before).is_empty());
    }

    #[test]
    fn summary_caps_names() {
        let after: Vec<Entry> = (0..5).map(|i| entry(&format!("f{i}"), "x")).collect();
        let c = Changes::between(&[], &after);
        assert_eq!(c.summary(), "5 added (f0, f1, f2, +2)");
    }

    #[test]
    fn stagger_offsets_are_deterministic_bounded_and_spread() {
        let window = Duration::from_secs(600);
        assert_eq!(
            stagger_offset("web-7d9f-abcde", window),
            stagger_offset("web-7d9f-abcde", window)
        );
        assert_eq!(stagger_offset("web", Duration::ZERO), Duration::ZERO);
        // 100 replica names over 10 buckets: each bucket expects 10.
        let mut buckets = [0u32; 10];
        for i in 0..100 {
            let off = stagger_offset(&format!("web-5c8d7b9f4-{i:05x}"), window);
            assert!(off < window);
            buckets[(off.as_secs() / 60) as usize] += 1;
        }
        // Chi-square with 9 degrees of freedom; 27.9 is the p=0.001 cut-off.
        let chi2: f64 = buckets
            .iter()
            .map(|&n| (f64::from(n) - 10.0).powi(2) / 10.0)
            .sum();
        assert!(chi2 < 27.9, "offsets cluster: {buckets:?} (chi2 {chi2})");
        assert!(buckets.iter().all(|&n| n > 0), "{buckets:?}");
    }
}
