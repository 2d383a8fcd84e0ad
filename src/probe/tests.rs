//! Unit tests of the probe's pure parts: the deadline, the timeouts that
//! cannot fit, the validation marker, dating a drift by ctime.

use super::look::dated_by_ctime;
use super::validation::{marker, settled_validation, Marker, REVALIDATE_MS};
use super::*;
use crate::cli::ProbeArgs;
use crate::proc::ContainerId;
use crate::state::{Drift, State, Validation, ValidationUnderWay};
use crate::time::{Millis, Stamp};
use std::time::Duration;

const T0: Millis = 1_795_623_603_000;

fn with_marker(until: Millis, until_boot: Option<Millis>) -> State {
    let mut st = State::new(
        ContainerId {
            boot_id: "b".into(),
            init_start_ticks: 1,
        },
        vec![],
    );
    st.validating = Some(ValidationUnderWay {
        digest: "d".into(),
        until,
        until_boot,
        pgid: None,
        leader_start: None,
        owner: None,
        owner_start: None,
    });
    st
}

fn probe_args(extra: &[&str]) -> ProbeArgs {
    let argv = ["driftprobe", "liveness"]
        .iter()
        .chain(extra)
        .chain(&["/x"]);
    match crate::cli::try_parse_from(argv).expect("parses").command {
        crate::cli::Command::Liveness(a) => a.probe,
        _ => unreachable!("a liveness command line"),
    }
}

#[test]
fn the_probe_deadline_follows_the_probe_timeout() {
    let ms = Duration::from_millis;
    assert_eq!(probe_deadline(&probe_args(&[])), ms(800));
    assert_eq!(
        probe_deadline(&probe_args(&["--probe-timeout", "10s"])),
        ms(9_800)
    );
    // Never less than half of it.
    assert_eq!(
        probe_deadline(&probe_args(&["--probe-timeout", "300ms"])),
        ms(150)
    );
    assert_eq!(
        probe_deadline(&probe_args(&["--probe-timeout", "0"])),
        ms(0)
    );
}

#[test]
fn timeouts_that_cannot_fit_are_misconfigurations() {
    let v = ["--validate", "true", "--validate-timeout", "3s"];
    let found = misconfigurations(false, &probe_args(&v), &[], None);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("--validate-timeout 3s cannot fit inside --probe-timeout 1s"));
    let roomy = [&v[..], &["--probe-timeout", "5s"]].concat();
    assert!(misconfigurations(false, &probe_args(&roomy), &[], None).is_empty());
    // A timeout for a validator that is not used is not one.
    let unused = probe_args(&["--validate-timeout", "3s"]);
    assert!(misconfigurations(false, &unused, &[], None).is_empty());
    // --reload-timeout only counts for a reload by HTTP; 500ms fits.
    let slow = probe_args(&["--reload-timeout", "2s"]);
    assert!(misconfigurations(false, &slow, &[], None).is_empty());
    assert_eq!(misconfigurations(true, &slow, &[], None).len(), 1);
    assert!(misconfigurations(true, &probe_args(&[]), &[], None).is_empty());
    // One probe may validate and then reload: the two add up.
    let each_fits = [
        "--validate",
        "true",
        "--validate-timeout",
        "5s",
        "--reload-timeout",
        "3s",
    ];
    let tight = [&each_fits[..], &["--probe-timeout", "6s"]].concat();
    let found = misconfigurations(true, &probe_args(&tight), &[], None);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(
        "--validate-timeout 5s + --reload-timeout 3s cannot fit inside --probe-timeout 6s"
    ));
    let roomy = [&each_fits[..], &["--probe-timeout", "12s"]].concat();
    assert!(misconfigurations(true, &probe_args(&roomy), &[], None).is_empty());
    let both = misconfigurations(false, &probe_args(&[]), &["/etc/x".into()], Some("EROFS"));
    assert_eq!(both.len(), 2, "{both:?}");
}

#[test]
fn a_timeout_that_cannot_fit_says_what_each_step_costs() {
    let said = |reloads_by_http, args: &[&str]| {
        let found = misconfigurations(reloads_by_http, &probe_args(args), &[], None);
        assert_eq!(found.len(), 1, "{args:?}: {found:?}");
        found[0].clone()
    };
    let app = said(false, &["--exec", "true", "--app-timeout", "2s"]);
    assert!(
        app.starts_with("--app-timeout 2s cannot fit inside --probe-timeout 1s, where")
            && app.contains("the app check is cut short to what fits")
            && !app.contains("validator")
            && !app.contains("reload"),
        "{app}"
    );
    let validator = said(false, &["--validate", "true", "--validate-timeout", "3s"]);
    assert!(
        validator.contains("a slow validator is killed with the probe every time")
            && !validator.contains("app check")
            && !validator.contains("reload is"),
        "{validator}"
    );
    // The app fits alone (it is not cut): only the reload pays.
    let both = said(
        true,
        &[
            "--exec",
            "true",
            "--app-timeout",
            "500ms",
            "--reload-timeout",
            "500ms",
        ],
    );
    assert!(
        both.starts_with("--app-timeout 500ms + --reload-timeout 500ms cannot fit")
            && both.contains("where the kubelet kills the probe (a slow reload is killed")
            && !both.contains("app check"),
        "{both}"
    );
}

#[test]
fn a_validation_marker_expires_on_the_boot_clock() {
    let st = with_marker(T0 + 12_000, Some(112_000));
    let at = |wall, boot| Stamp {
        wall,
        boot: Some(boot),
    };
    let proc = crate::proc::Proc::default();
    let under_way = |st: &State, d: &str, now| marker(st, d, now, &proc) == Marker::UnderWay;
    assert!(under_way(&st, "d", at(T0, 100_000)));
    assert_eq!(marker(&st, "other", at(T0, 100_000), &proc), Marker::Absent);
    // Wall clock stepped back a day after the killed probe left it:
    // still expires 12 s after it was set.
    assert!(!under_way(&st, "d", at(T0 - 86_400_000, 113_000)));
    // ... and a step forward does not end it early.
    assert!(under_way(&st, "d", at(T0 + 86_400_000, 101_000)));
    // Markers without the boot clock: wall time.
    let old = with_marker(T0 + 12_000, None);
    assert!(under_way(&old, "d", at(T0, 1)));
    assert_eq!(
        marker(&old, "d", at(T0 + 13_000, 1), &proc),
        Marker::Abandoned
    );
}

#[test]
fn a_marker_whose_probe_is_gone_is_abandoned_at_once() {
    let proc = crate::proc::Proc::default();
    let now = Stamp {
        wall: T0,
        boot: Some(100_000),
    };
    let (me, start) = proc.me().expect("this process in /proc");
    let mut st = with_marker(T0 + 12_000, Some(112_000));
    let v = st.validating.as_mut().unwrap();
    (v.owner, v.owner_start) = (Some(me), Some(start));
    assert_eq!(marker(&st, "d", now, &proc), Marker::UnderWay);
    // Same pid, another process (pid reused): gone.
    st.validating.as_mut().unwrap().owner_start = Some(start + 1);
    assert_eq!(marker(&st, "d", now, &proc), Marker::Abandoned);
    // No such process.
    st.validating.as_mut().unwrap().owner = Some(i32::MAX);
    assert_eq!(marker(&st, "d", now, &proc), Marker::Abandoned);
}

#[test]
fn an_unsaved_drift_is_dated_by_the_files_ctime() {
    let d = Drift::starting(
        Stamp {
            wall: T0,
            boot: Some(50_000),
        },
        None,
    );
    let moved = dated_by_ctime(d.clone(), Some((T0 - 20_000) * 1_000_000 + 5), Some(10_000));
    assert_eq!((moved.since, moved.since_boot), (T0 - 20_000, Some(30_000)));
    // A ctime after the first look (clock stepped) moves nothing.
    assert_eq!(
        dated_by_ctime(d.clone(), Some((T0 + 1) * 1_000_000), Some(10_000)),
        d
    );
    assert_eq!(dated_by_ctime(d.clone(), None, Some(10_000)), d);
    // The wall clock stepped forward an hour between the change and
    // the look: on the boot clock the drift starts no earlier than the
    // container (10 s after boot), not an hour before the look.
    let stepped = dated_by_ctime(d.clone(), Some((T0 - 3_600_000) * 1_000_000), Some(10_000));
    assert_eq!(stepped.since_boot, Some(10_000));
    // Without the container's start: never before boot.
    let stepped = dated_by_ctime(d.clone(), Some((T0 - 3_600_000) * 1_000_000), None);
    assert_eq!(stepped.since_boot, Some(0));
}

#[test]
fn an_answer_from_the_future_is_asked_again() {
    let mut st = with_marker(0, None);
    st.validations.push((
        "d".into(),
        Validation {
            ok: false,
            at: T0,
            output: "no".into(),
            outcome: "exit 1".into(),
            transient: false,
            command: "c".into(),
        },
    ));
    assert!(settled_validation(&st, "d", "c", T0 + 1_000).is_some());
    assert!(settled_validation(&st, "d", "c", T0 + REVALIDATE_MS).is_none());
    // The wall clock went back an hour: not kept for an extra hour.
    assert!(settled_validation(&st, "d", "c", T0 - 3_600_000).is_none());
}
