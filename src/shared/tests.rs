//! The shared file's rules: what one probe gave the app reaches the other
//! watch sets' baselines, it is stored per container instance, and reload
//! claims expire and settle.

use super::*;

fn id() -> ContainerId {
    ContainerId {
        boot_id: "b".into(),
        init_start_ticks: 7,
    }
}

fn entry(path: &str, sha: &str) -> Entry {
    Entry {
        path: path.into(),
        sha256: sha.into(),
        size: 1,
    }
}

fn base(files: Vec<Entry>) -> Baseline {
    Baseline {
        digest: tree_digest(&files),
        recorded_at: 1,
        source: "init".into(),
        files,
    }
}

#[test]
fn a_reload_of_a_directory_is_seen_by_a_watched_file_in_it() {
    let dir = Names {
        root: Some(("/etc/config".into(), true)),
    };
    let file = Names {
        root: Some(("/etc/config/app.yaml".into(), false)),
    };
    let old = base(vec![entry("app.yaml", "a1"), entry("gone", "g1")]);
    let new = [entry("app.yaml", "a2"), entry("extra", "e1")];
    let mut shared = Shared::new(id());
    shared.give(&dir.files(Some(&old), &new), 50, "reload");
    assert_eq!(shared.seq, 1);
    assert_eq!(
        shared
            .given
            .iter()
            .map(|g| (g.path.as_str(), g.sha256.as_str()))
            .collect::<Vec<_>>(),
        [
            ("/etc/config/app.yaml", "a2"),
            ("/etc/config/extra", "e1"),
            ("/etc/config/gone", "")
        ]
    );
    // The one-file watch set: its file becomes a2.
    let mut b = base(vec![entry("app.yaml", "a1")]);
    assert!(file.apply(&shared, 0, &mut b, &[entry("app.yaml", "a2")]));
    assert_eq!(b.digest, tree_digest(&[entry("app.yaml", "a2")]));
    assert_eq!((b.recorded_at, b.source.as_str()), (50, "reload"));
    // Applied once: nothing newer than seq 1.
    assert!(!file.apply(&shared, 1, &mut b, &[entry("app.yaml", "a2")]));
    // The same directory with `extra` excluded: app.yaml and the
    // removal of `gone`, never `extra`.
    let mut b = old.clone();
    assert!(dir.apply(&shared, 0, &mut b, &[entry("app.yaml", "a2")]));
    assert_eq!(b.files, [entry("app.yaml", "a2")]);
}

#[test]
fn reloaders_watch_what_is_under_their_roots_and_not_excluded() {
    let r = Reloader {
        by: "liveness".into(),
        key: "k".into(),
        roots: vec!["/etc/config".into(), "/etc/app.yaml".into()],
        excludes: vec!["*.bak".into(), "certs".into()],
    };
    assert!(r.watches("/etc/config/a.yaml"));
    assert!(r.watches("/etc/config/sub/a.yaml"));
    assert!(r.watches("/etc/app.yaml"));
    assert!(!r.watches("/etc/config/a.yaml.bak"));
    assert!(
        !r.watches("/etc/config/certs/tls.key"),
        "below an excluded dir"
    );
    assert!(!r.watches("/etc/configx/a.yaml"));
    assert!(!r.watches("/etc/other"));
    let root = Reloader {
        roots: vec!["/".into()],
        excludes: vec![],
        ..r
    };
    assert!(root.watches("/x/y"));
}

#[test]
fn several_watched_paths_use_their_names_as_they_are() {
    let names = Names { root: None };
    assert_eq!(names.absolute("/etc/a/x"), "/etc/a/x");
    let root = Names {
        root: Some(("/".into(), true)),
    };
    assert_eq!(root.absolute("x"), "/x");
}

#[test]
fn round_trips_and_refuses_other_containers() {
    let mut s = Shared::new(id());
    s.reloaders.push(Reloader {
        by: "liveness".into(),
        key: "watch-1".into(),
        roots: vec!["/etc/config".into()],
        excludes: vec!["*.bak".into()],
    });
    s.give(
        &[Given {
            path: "/a".into(),
            sha256: "s".into(),
            seq: 0,
            at: 0,
            source: String::new(),
        }],
        5,
        "adopt",
    );
    let now = Stamp {
        wall: 1_000,
        boot: Some(100),
    };
    s.claim = Some(claim(
        "liveness",
        "watch-1",
        3,
        now,
        Duration::from_secs(1),
        vec![],
        Some(Intent {
            signal: "SIGHUP".into(),
            pid: 1,
            start_ticks: 9,
            sent: false,
        }),
    ));
    let bytes = crate::state::json_compact(&s).unwrap();
    assert_eq!(parse(bytes.as_bytes(), &id()), Some(s.clone()));
    let other = ContainerId {
        boot_id: "b".into(),
        init_start_ticks: 8,
    };
    assert_eq!(parse(bytes.as_bytes(), &other), None);
    assert_eq!(parse(b"{\"format\":\"x\"}", &id()), None);
    assert_eq!(parse(b"not json", &id()), None);
}

#[test]
fn the_sent_mark_is_written_in_place() {
    let d = tempfile::tempdir().unwrap();
    let dir = StateDir::open(&d.path().join("state")).unwrap();
    let mut held = lock(&dir, &id(), Duration::from_secs(1)).unwrap();
    // A file name made of the marker's bytes does not fool it.
    let tricky = Given {
        path: "/x/\"sent\":false}".into(),
        sha256: "s".into(),
        seq: 0,
        at: 0,
        source: String::new(),
    };
    let now = Stamp {
        wall: 1_000,
        boot: Some(100),
    };
    let intent = Intent {
        signal: "SIGHUP".into(),
        pid: 1,
        start_ticks: 9,
        sent: false,
    };
    let c = claim(
        "liveness",
        "k",
        3,
        now,
        Duration::ZERO,
        vec![tricky],
        Some(intent),
    );
    held.shared.claim = Some(c);
    held.save().unwrap();
    let marker = held.marker().expect("a marker");
    let before = peek(&dir, &id()).unwrap().claim.unwrap();
    assert!(!before.signal.unwrap().sent);
    marker.set().unwrap();
    let after = peek(&dir, &id()).expect("still a whole file");
    let c = after.claim.unwrap();
    assert!(c.signal.unwrap().sent);
    assert_eq!(c.files[0].path, "/x/\"sent\":false}");
    drop(held);
    // Private like every state file.
    let mode = std::fs::metadata(d.path().join("state").join(FILE)).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
}

#[test]
fn claims_expire_and_signal_claims_settle_only_for_the_same_process() {
    let at = |wall, boot| Stamp {
        wall,
        boot: Some(boot),
    };
    let intent = Intent {
        signal: "SIGHUP".into(),
        pid: 42,
        start_ticks: 9,
        sent: true,
    };
    let mut c = claim(
        "liveness",
        "k",
        5,
        at(1_000, 100),
        Duration::ZERO,
        vec![],
        Some(intent),
    );
    let me = std::process::id() as i32;
    assert!(c.holder_alive(|pid| (pid == me).then_some(5)));
    assert!(
        !c.holder_alive(|pid| (pid == me).then_some(6)),
        "pid reused"
    );
    assert!(c.live(at(1_000, 100)));
    assert!(!c.live(at(1_000, 100 + 2_000)), "expired on the boot clock");
    assert!(
        c.live(at(1_000 + 86_400_000, 101)),
        "a wall-clock step ends nothing"
    );
    let same = |pid| (pid == 42).then_some(9);
    let other = |pid| (pid == 42).then_some(10);
    assert!(c.settle(at(5_000, 5_000), same));
    assert!(!c.settle(at(5_000, 5_000), other), "pid reused");
    assert!(!c.settle(at(5_000, 5_000), |_| None), "gone");
    assert!(!c.settle(at(0, 100 + 600_000), same), "too old");
    c.signal.as_mut().unwrap().sent = false;
    assert!(!c.settle(at(5_000, 5_000), same), "not known to be sent");
    let http = claim(
        "liveness",
        "k",
        5,
        at(1_000, 100),
        Duration::ZERO,
        vec![],
        None,
    );
    assert!(!http.settle(at(1_000, 100), same));
}
