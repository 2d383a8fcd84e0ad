//! Property tests for what reads untrusted bytes or typed text: the JSON
//! codec and the state file parser, the duration parser, and the manifest
//! comparison. `cargo test` runs each for PROPTEST_CASES cases (256 by
//! default); scripts/faults.sh --long runs many more. Inputs that once
//! failed are kept below as plain regression tests.

use crate::tally;
use driftprobe::digest::{tree_digest, Entry};
use driftprobe::json::{self, Value};
use driftprobe::state::{self, Loaded};
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

/// Our tree as serde_json's, to compare the two parsers.
fn to_serde(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(n) if *n < 0 => (*n as i64).into(),
        Value::Int(n) => (*n as u64).into(),
        Value::Str(s) => s.clone().into(),
        Value::Arr(items) => items.iter().map(to_serde).collect(),
        Value::Obj(pairs) => serde_json::Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), to_serde(v)))
                .collect(),
        ),
    }
}

/// JSON documents (integers only, as ours are) with any strings.
fn json_doc() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i64>().prop_map(Into::into),
        any::<u64>().prop_map(Into::into),
        any::<String>().prop_map(Into::into),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
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

/// serde_json's text as ours writes it: ours also escapes (as `\uXXXX`)
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

proptest! {
    #![proptest_config(config())]

    /// Any bytes: an answer, never a panic; accepted only if serde_json
    /// accepts them too (and then with the same value).
    #[test]
    fn json_parse_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(v) = json::parse(&bytes) {
            let theirs: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("we accepted what serde_json rejects: {e}")))?;
            prop_assert_eq!(to_serde(&v), theirs);
        }
    }

    /// Whatever serde_json writes (integers only), we read back the same,
    /// and what we write serde_json reads the same, byte for byte as its
    /// own printers (pretty and compact).
    #[test]
    fn json_agrees_with_serde_json(doc in json_doc()) {
        for text in [serde_json::to_string(&doc).unwrap(), serde_json::to_string_pretty(&doc).unwrap()] {
            let ours = json::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            prop_assert_eq!(&to_serde(&ours), &doc);
            let written = json::pretty(&ours);
            prop_assert_eq!(&written, &escaped(serde_json::to_string_pretty(&doc).unwrap()));
            prop_assert_eq!(&json::compact(&ours), &escaped(serde_json::to_string(&doc).unwrap()));
        }
    }

    /// A state file cut, flipped, spliced: found or unusable with a
    /// reason, never a panic; what loads saves and loads back the same.
    #[test]
    fn state_parse_survives_mutations(e in edits()) {
        let bytes = apply(FIXTURE.to_vec(), &e);
        match state::parse(&bytes) {
            Loaded::Found(st) => {
                let again = json::compact(&st.to_json());
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

/// Counts the property-test cases for the README table (runs after the
/// properties above in name order only by chance; it runs its own cases).
#[test]
fn tally_property_cases() {
    tally(
        "property tests: JSON, state file, durations, manifests",
        cases() as usize * 6,
        0,
        0,
        "proptest, 6 properties",
    );
}

// Regression inputs: each once broke (or would break) a parser.

#[test]
fn regression_deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(1_000_000);
    assert!(json::parse(deep.as_bytes()).is_err());
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
