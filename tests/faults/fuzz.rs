//! Property tests for what reads untrusted bytes or typed text: the state
//! file's codec and parser, the duration parser, and the manifest
//! comparison. `cargo test` runs each for PROPTEST_CASES cases (256 by
//! default); scripts/faults.sh --long runs many more. Inputs that once
//! failed are kept below as plain regression tests.

use crate::tally;
use driftprobe::digest::{tree_digest, CachedFile, Entry};
use driftprobe::proc::ContainerId;
use driftprobe::state::{
    self, Baseline, Drift, EnvDrift, Loaded, Mirrored, Reload, State, Validation,
    ValidationUnderWay,
};
use driftprobe::time::{format_duration, parse_duration};
use driftprobe::verdict::Changes;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

const FIXTURE: &[u8] = include_bytes!("fixtures/state-v1-serde.json");

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Up to two of `s`.
fn few<S: Strategy>(s: S) -> prop::collection::VecStrategy<S> {
    prop::collection::vec(s, 0..3)
}

/// States with every field set or not, and any strings (controls, bidi
/// marks, quotes, non-BMP characters) wherever the state holds one.
fn states() -> impl Strategy<Value = State> {
    let text = any::<String>;
    use prop::option::of as opt;
    let entry = (text(), text(), any::<u64>()).prop_map(|(path, sha256, size)| Entry {
        path,
        sha256,
        size,
    });
    let cached = (
        text(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<i64>(),
        any::<i64>(),
        text(),
    )
        .prop_map(
            |(path, dev, ino, size, mtime_ns, ctime_ns, sha256)| CachedFile {
                path,
                dev,
                ino,
                size,
                mtime_ns,
                ctime_ns,
                sha256,
            },
        );
    let baseline = (
        text(),
        any::<i64>(),
        text(),
        prop::collection::vec(entry, 0..4),
    )
        .prop_map(|(digest, recorded_at, source, files)| Baseline {
            digest,
            recorded_at,
            source,
            files,
        });
    let drift = (any::<i64>(), opt(any::<i64>()), opt(text()), any::<bool>()).prop_map(
        |(since, since_boot, unproven, held)| Drift {
            since,
            since_boot,
            unproven,
            held,
        },
    );
    let validation = (
        text(),
        any::<bool>(),
        any::<i64>(),
        text(),
        text(),
        any::<bool>(),
        text(),
    )
        .prop_map(|(digest, ok, at, output, outcome, transient, command)| {
            let v = Validation {
                ok,
                at,
                output,
                outcome,
                transient,
                command,
            };
            (digest, v)
        });
    let reload = (any::<i64>(), text(), any::<i32>(), text(), text(), text()).prop_map(
        |(at, signal, pid, target, from_digest, to_digest)| Reload {
            at,
            signal,
            pid,
            target,
            from_digest,
            to_digest,
        },
    );
    let env =
        (text(), any::<i64>(), opt(any::<i64>())).prop_map(|(name, since, since_boot)| EnvDrift {
            name,
            since,
            since_boot,
        });
    let validating = (
        text(),
        any::<i64>(),
        opt(any::<i64>()),
        opt(any::<i32>()),
        opt(any::<u64>()),
        opt(any::<i32>()),
        opt(any::<u64>()),
    )
        .prop_map(
            |(digest, until, until_boot, pgid, leader_start, owner, owner_start)| {
                ValidationUnderWay {
                    digest,
                    until,
                    until_boot,
                    pgid,
                    leader_start,
                    owner,
                    owner_start,
                }
            },
        );
    let mirrored = (text(), opt(text()), few(text()), opt(text())).prop_map(
        |(probe, class, problems, failed)| Mirrored {
            probe,
            class,
            problems,
            failed,
        },
    );
    let head = (
        (text(), any::<u64>()),
        few(text()),
        opt(baseline),
        opt(drift),
        few(cached),
        few(validation),
    );
    let rest = (
        few(reload),
        few(text()),
        any::<bool>(),
        few(env),
        opt(validating),
        any::<u64>(),
        any::<bool>(),
        few(mirrored),
    );
    (head, rest).prop_map(
        |(
            ((boot_id, init_start_ticks), paths, baseline, drift, cache, validations),
            (
                reloads,
                warnings,
                warnings_pending,
                env_drift,
                validating,
                given_seq,
                runtime_checked,
                mirrored,
            ),
        )| State {
            format: state::FORMAT.into(),
            version: state::VERSION,
            container: ContainerId {
                boot_id,
                init_start_ticks,
            },
            paths,
            baseline,
            drift,
            cache,
            validations,
            reloads,
            warnings,
            warnings_pending,
            env_drift,
            validating,
            given_seq,
            runtime_checked,
            mirrored,
        },
    )
}

/// A byte-level mutation of a valid state file.
#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    prop::sample::select(b"{}[]\",:\\u0123456789-eE.tfn ".to_vec())
                ],
                1..16
            )
        )
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Remove(i, n)),
    ];
    prop::collection::vec(edit, 1..6)
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            Edit::Truncate(i) => bytes.truncate(i % len),
            Edit::Flip(i, b) if !bytes.is_empty() => bytes[i % len] = *b,
            Edit::Flip(..) => {}
            Edit::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Edit::Remove(i, n) if !bytes.is_empty() => {
                let at = i % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Edit::Remove(..) => {}
        }
    }
    bytes
}

/// serde_json's text as we write it: we also escape (as `\uXXXX`)
/// DEL, the C1 controls, U+2028/U+2029 and the bidi controls (issue 13.9),
/// which serde_json leaves raw; only inside strings, where serde_json
/// writes them (it escapes everything below U+0020 itself).
fn escaped(serde_text: String) -> String {
    serde_text
        .chars()
        .map(|c| match c {
            c if c >= '\u{7f}' && driftprobe::escape::is_unsafe(c) => {
                format!("\\u{:04x}", c as u32)
            }
            c => c.to_string(),
        })
        .collect()
}

/// The cases this test's thread ran, tallied as one row of the faults
/// table when the thread ends: libtest runs each test on a thread of its
/// own, named after the test, and joins it before it reports the result,
/// so the row counts the cases that actually ran (shrinking included), not
/// the configured number, and a property that was filtered out adds none.
struct CasesRun(std::cell::Cell<usize>);

impl Drop for CasesRun {
    fn drop(&mut self) {
        let runs = self.0.get();
        if runs == 0 {
            return;
        }
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let name = name.rsplit("::").next().unwrap_or(name);
        tally(
            &format!("property: {name}"),
            runs,
            0,
            0,
            "proptest cases run",
        );
    }
}

thread_local! {
    static CASES_RUN: CasesRun = const { CasesRun(std::cell::Cell::new(0)) };
}

/// Called first in every property body: one more case ran.
fn case_ran() {
    CASES_RUN.with(|c| c.0.set(c.0.get() + 1));
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes: an answer (found, or unusable with a reason), never a
    /// panic, whichever way the parser goes to say why.
    #[test]
    fn state_parse_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        case_ran();
        match state::parse(&bytes) {
            Loaded::Found(_) => {}
            Loaded::Unusable(reason) => prop_assert!(reason.contains("state file"), "{reason}"),
            Loaded::Absent => prop_assert!(false, "parse never says absent"),
        }
    }

    /// Every state, saved (compact) or shown (pretty), reads back the same;
    /// the text is serde_json's own but for the unsafe characters, which
    /// are never written raw.
    #[test]
    fn states_round_trip(st in states()) {
        case_ran();
        let compact = state::json_compact(&st).map_err(TestCaseError::fail)?;
        let pretty = state::json_pretty(&st).map_err(TestCaseError::fail)?;
        for text in [&compact, &pretty] {
            match state::parse(text.as_bytes()) {
                Loaded::Found(back) => prop_assert_eq!(&*back, &st),
                other => prop_assert!(false, "{other:?}: {text}"),
            }
            let raw = |c: char| c != '\n' && driftprobe::escape::is_unsafe(c);
            prop_assert!(!text.chars().any(raw), "{text}");
        }
        prop_assert_eq!(&compact, &escaped(serde_json::to_string(&st).unwrap()));
        prop_assert_eq!(&pretty, &escaped(serde_json::to_string_pretty(&st).unwrap()));
    }

    /// A state file cut, flipped, spliced: found or unusable with a
    /// reason, never a panic; what loads saves and loads back the same.
    #[test]
    fn state_parse_survives_mutations(e in edits()) {
        case_ran();
        let bytes = apply(FIXTURE.to_vec(), &e);
        match state::parse(&bytes) {
            Loaded::Found(st) => {
                let again = state::json_compact(&*st).map_err(TestCaseError::fail)?;
                match state::parse(again.as_bytes()) {
                    Loaded::Found(back) => prop_assert_eq!(back, st),
                    other => prop_assert!(false, "{other:?}"),
                }
            }
            Loaded::Unusable(reason) => prop_assert!(reason.contains("state file"), "{reason}"),
            Loaded::Absent => prop_assert!(false, "parse never says absent"),
        }
    }

    /// Typed durations: never a panic; every accepted text formats back
    /// to a text that parses to the same duration (whole seconds, or less
    /// than a second).
    #[test]
    fn durations_parse_or_say_why(text in "[0-9a-z .:-]{0,24}") {
        case_ran();
        match parse_duration(&text) {
            Ok(d) => {
                let d = if d >= Duration::from_secs(1) { Duration::from_secs(d.as_secs()) } else { d };
                prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
            }
            Err(e) => prop_assert!(e.contains("duration"), "{e}"),
        }
    }

    #[test]
    fn durations_add_up(parts in prop::collection::vec((0u64..100_000, 0usize..5), 1..5)) {
        case_ran();
        let units = [("ms", 1u64), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];
        let text: String = parts.iter().map(|(n, u)| format!("{n}{}", units[*u].0)).collect();
        let want: u64 = parts.iter().map(|(n, u)| n * units[*u].1).sum();
        prop_assert_eq!(parse_duration(&text), Ok(Duration::from_millis(want)));
    }

    /// The manifest comparison names exactly the added, removed and
    /// changed paths, and the tree digest differs iff the manifests do.
    #[test]
    fn changes_match_a_map_comparison(
        old in prop::collection::btree_map("[a-c/\n]{1,4}", 0u8..3, 0..12),
        new in prop::collection::btree_map("[a-c/\n]{1,4}", 0u8..3, 0..12),
    ) {
        case_ran();
        let entries = |m: &BTreeMap<String, u8>| -> Vec<Entry> {
            m.iter().map(|(p, s)| Entry { path: p.clone(), sha256: format!("{s:064}"), size: 1 }).collect()
        };
        let (a, b) = (entries(&old), entries(&new));
        let c = Changes::between(&a, &b);
        let added: Vec<String> = new.keys().filter(|k| !old.contains_key(*k)).cloned().collect();
        let removed: Vec<String> = old.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
        let changed: Vec<String> = new.iter().filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v)).map(|(k, _)| k.clone()).collect();
        prop_assert_eq!(&c.added, &added);
        prop_assert_eq!(&c.removed, &removed);
        prop_assert_eq!(&c.changed, &changed);
        prop_assert_eq!(c.is_empty(), old == new);
        prop_assert_eq!(tree_digest(&a) == tree_digest(&b), old == new);
    }
}

// Regression inputs: each once broke (or would break) a parser.

#[test]
fn regression_deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(1_000_000);
    assert!(matches!(state::parse(deep.as_bytes()), Loaded::Unusable(_)));
    let deep = format!(
        "{{\"format\":\"driftprobe-state\",\"version\":1,\"x\":{}",
        "{\"a\":".repeat(100_000)
    );
    assert!(matches!(state::parse(deep.as_bytes()), Loaded::Unusable(_)));
}

#[test]
fn regression_huge_numbers_and_fields_of_the_wrong_type() {
    for (bytes, want) in [
        (
            &br#"{"format":"driftprobe-state","version":99999999999999999999}"#[..],
            "corrupt",
        ),
        (br#"{"format":"driftprobe-state","version":1.0}"#, "corrupt"),
        (
            br#"{"format":"driftprobe-state","version":-1}"#,
            "no usable version",
        ),
        (
            br#"{"format":"driftprobe-state","version":1}trailing"#,
            "corrupt",
        ),
        (
            br#"{"format":"driftprobe-state","format":"driftprobe-state","version":1}"#,
            "corrupt",
        ),
    ] {
        match state::parse(bytes) {
            Loaded::Unusable(r) => assert!(r.contains(want), "{r}"),
            other => panic!("{other:?}"),
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(FIXTURE).unwrap();
    v["container"]["pid1_start_ticks"] = serde_json::json!(-1);
    match state::parse(&serde_json::to_vec(&v).unwrap()) {
        Loaded::Unusable(r) => assert!(r.contains("pid1_start_ticks"), "{r}"),
        other => panic!("{other:?}"),
    }
}
