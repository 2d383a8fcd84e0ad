//! The self-tests of tests/support/: the kubelet volume emulation checked
//! against what the kubelet's atomic writer does. They live in a test
//! target of their own so that they run once, not once in every
//! integration binary that includes the support module.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};
use support::*;

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn is_ts_name(name: &str) -> bool {
    // ..YYYY_MM_DD_HH_MM_SS.<digits>
    let Some(rest) = name.strip_prefix("..") else {
        return false;
    };
    let (ts, rnd) = match rest.split_once('.') {
        Some(x) => x,
        None => return false,
    };
    let parts: Vec<&str> = ts.split('_').collect();
    parts.len() == 6
        && parts[0].len() == 4
        && parts[1..].iter().all(|p| p.len() == 2)
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && !rnd.is_empty()
        && rnd.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn utc_timestamp_format() {
    assert_eq!(utc_timestamp(UNIX_EPOCH), "1970_01_01_00_00_00");
    // 2026-11-25T16:20:03Z
    let t = UNIX_EPOCH + Duration::from_secs(1_795_623_603);
    assert_eq!(utc_timestamp(t), "2026_11_25_16_20_03");
    // 2024-02-29T23:59:59Z (leap day)
    let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199);
    assert_eq!(utc_timestamp(t), "2024_02_29_23_59_59");
}

#[test]
fn layout_after_first_write() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = ConfigMapVolume::new(tmp.path().join("v"));
    let out = vol.write(&[
        ("app.yaml", "a: 1\n"),
        ("nested/a/b", "deep"),
        ("nested/c", "c"),
    ]);
    let WriteOutcome::Written(ts) = out else {
        panic!("first write must write")
    };
    assert!(is_ts_name(&ts), "bad ts dir name {ts}");
    let d = vol.path();
    assert_eq!(
        names(d),
        BTreeSet::from([
            ts.clone(),
            "..data".into(),
            "app.yaml".into(),
            "nested".into()
        ])
    );
    assert_eq!(fs::read_link(d.join("..data")).unwrap(), PathBuf::from(&ts));
    assert_eq!(
        fs::read_link(d.join("app.yaml")).unwrap(),
        PathBuf::from("..data/app.yaml")
    );
    assert_eq!(
        fs::read_link(d.join("nested")).unwrap(),
        PathBuf::from("..data/nested")
    );
    assert_eq!(fs::read_to_string(d.join("app.yaml")).unwrap(), "a: 1\n");
    assert_eq!(fs::read_to_string(d.join("nested/a/b")).unwrap(), "deep");
    let ts_meta = fs::symlink_metadata(d.join(&ts)).unwrap();
    assert!(ts_meta.is_dir());
    assert_eq!(ts_meta.mode() & 0o7777, 0o755);
    let f = fs::symlink_metadata(d.join(&ts).join("app.yaml")).unwrap();
    assert!(f.is_file());
    assert_eq!(f.mode() & 0o7777, 0o644);
    // Subdirs exist only inside the ts dir.
    assert!(fs::symlink_metadata(d.join(&ts).join("nested/a"))
        .unwrap()
        .is_dir());
}

#[test]
fn identical_payload_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = ConfigMapVolume::new(tmp.path().join("v"));
    vol.write(&[("k", "v"), ("n/x", "y")]);
    let before = vol.data_target().unwrap();
    let ino = fs::metadata(vol.path().join("k")).unwrap().ino();
    let names_before = names(vol.path());
    assert_eq!(
        vol.write(&[("k", "v"), ("n/x", "y")]),
        WriteOutcome::Unchanged
    );
    assert_eq!(vol.data_target().unwrap(), before);
    assert_eq!(fs::metadata(vol.path().join("k")).unwrap().ino(), ino);
    assert_eq!(names(vol.path()), names_before);
}

#[test]
fn forced_write_makes_new_dir_and_removes_old() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = ConfigMapVolume::new(tmp.path().join("v"));
    vol.write(&[("k", "v")]);
    let old = vol.data_target().unwrap();
    let ino = fs::metadata(vol.path().join("k")).unwrap().ino();
    let WriteOutcome::Written(new) = vol.write_forced(&[("k", "v")]) else {
        panic!()
    };
    assert_ne!(old, new);
    assert_eq!(vol.data_target().unwrap(), new);
    assert!(
        !vol.path().join(&old).exists(),
        "old ts dir must be removed"
    );
    assert_ne!(fs::metadata(vol.path().join("k")).unwrap().ino(), ino);
    assert_eq!(fs::read_to_string(vol.path().join("k")).unwrap(), "v");
    assert_eq!(
        names(vol.path()),
        BTreeSet::from([new, "..data".into(), "k".into()])
    );
}

#[test]
fn changed_added_removed_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = ConfigMapVolume::new(tmp.path().join("v"));
    vol.write(&[("a", "1"), ("b", "2"), ("n/x", "x"), ("n/y", "y")]);
    let old = vol.data_target().unwrap();
    // change a, remove b, add c, remove nested n/y only.
    let WriteOutcome::Written(new) = vol.write(&[("a", "10"), ("c", "3"), ("n/x", "x")]) else {
        panic!()
    };
    assert!(!vol.path().join(&old).exists());
    assert_eq!(
        names(vol.path()),
        BTreeSet::from([new, "..data".into(), "a".into(), "c".into(), "n".into()])
    );
    assert_eq!(fs::read_to_string(vol.path().join("a")).unwrap(), "10");
    assert!(!vol.path().join("n/y").exists());
    // Removing only a key (same bytes elsewhere) still writes.
    assert!(matches!(
        vol.write(&[("a", "10"), ("c", "3")]),
        WriteOutcome::Written(_)
    ));
    assert!(!vol.path().join("n").exists() && fs::symlink_metadata(vol.path().join("n")).is_err());
}

#[test]
fn steps_expose_intermediate_states() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = ConfigMapVolume::new(tmp.path().join("v"));
    vol.write(&[("a", "1"), ("b", "2")]);
    let old = vol.data_target().unwrap();
    let d = vol.path().to_path_buf();
    let mut seen = Vec::new();
    vol.write_with_hook(&[("a", "9"), ("c", "3")], false, |step| {
        seen.push(step);
        let data = fs::read_link(d.join("..data"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        match step {
            Step::PayloadWritten => {
                assert_eq!(data, old);
                assert!(!d.join("..data_tmp").exists());
                assert_eq!(names(&d).iter().filter(|n| is_ts_name(n)).count(), 2);
            }
            Step::TmpLinkCreated => {
                assert_eq!(data, old);
                assert!(fs::symlink_metadata(d.join("..data_tmp")).is_ok());
            }
            Step::Swapped => {
                assert_ne!(data, old);
                assert!(fs::symlink_metadata(d.join("..data_tmp")).is_err());
                assert!(
                    fs::symlink_metadata(d.join("c")).is_err(),
                    "c not linked yet"
                );
                assert!(fs::symlink_metadata(d.join("b")).is_ok(), "b still linked");
                assert!(fs::metadata(d.join("b")).is_err(), "b dangling");
                assert_eq!(fs::read_to_string(d.join("a")).unwrap(), "9");
            }
            Step::VisibleLinksCreated => {
                assert_eq!(fs::read_to_string(d.join("c")).unwrap(), "3");
                assert!(fs::symlink_metadata(d.join("b")).is_ok());
            }
            Step::OldLinksRemoved => {
                assert!(fs::symlink_metadata(d.join("b")).is_err());
                assert!(d.join(&old).exists());
            }
            Step::Done => assert!(!d.join(&old).exists()),
        }
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            Step::PayloadWritten,
            Step::TmpLinkCreated,
            Step::Swapped,
            Step::VisibleLinksCreated,
            Step::OldLinksRemoved,
            Step::Done
        ]
    );
}

fn times(p: &Path) -> (i64, i64, i64, i64, u32, u32) {
    let m = fs::symlink_metadata(p).unwrap();
    (
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.mode() & 0o7777,
        m.gid(),
    )
}

#[test]
fn fs_group_every_sync_moves_ctimes_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mut vol = ConfigMapVolume::new(tmp.path().join("v"));
    vol.mode = 0o400;
    vol.fs_group = FsGroup::EverySync;
    vol.write(&[("k", "v"), ("n/x", "y")]);
    let ts = vol.path().join(vol.data_target().unwrap());
    let watched = [
        vol.path().to_path_buf(),
        vol.path().join("..data"),
        ts.join("k"),
        ts.join("n"),
    ];
    let before: Vec<_> = watched.iter().map(|p| times(p)).collect();
    assert_eq!(before[2].4, 0o400, "the writer leaves the mode alone");
    std::thread::sleep(Duration::from_millis(20));
    vol.sync();
    for (p, b) in watched.iter().zip(&before) {
        let a = times(p);
        assert_eq!((a.0, a.1), (b.0, b.1), "{}: mtime moved", p.display());
        assert_ne!(
            (a.2, a.3),
            (b.2, b.3),
            "{}: ctime did not move",
            p.display()
        );
        assert_eq!(a.5, FS_GROUP_GID, "{}", p.display());
    }
    assert_eq!(times(&ts.join("k")).4, 0o440);
    assert_eq!(times(&ts.join("n")).4 & 0o2000, 0o2000, "setgid dir");
    assert_eq!(fs::read_to_string(vol.path().join("k")).unwrap(), "v");
}

#[test]
fn fs_group_in_writer_sets_ownership_before_the_swap_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mut vol = ConfigMapVolume::new(tmp.path().join("v"));
    vol.mode = 0o400;
    vol.fs_group = FsGroup::InWriter;
    let d = vol.path().to_path_buf();
    vol.write_with_hook(&[("k", "v")], false, |step| {
        if step == Step::PayloadWritten {
            let ts = fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("..2"))
                .unwrap();
            let k = times(&ts.join("k"));
            assert_eq!((k.4, k.5), (0o440, FS_GROUP_GID));
            assert_eq!(times(&ts).4 & 0o2000, 0o2000);
        }
    })
    .unwrap();
    let before = times(&vol.path().join("k"));
    let before = (
        before,
        times(&vol.path().join(vol.data_target().unwrap()).join("k")),
    );
    std::thread::sleep(Duration::from_millis(20));
    vol.sync();
    let after = (
        times(&vol.path().join("k")),
        times(&vol.path().join(vol.data_target().unwrap()).join("k")),
    );
    assert_eq!(before, after, "a sync changes nothing");
}

#[test]
fn invalid_paths_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = ConfigMapVolume::new(tmp.path().join("v"));
    for bad in ["", "/abs", "a/../b", "..data", "..x/y"] {
        assert!(
            vol.write_with_hook(&[(bad, "x")], false, |_| {}).is_err(),
            "{bad:?}"
        );
    }
    assert!(vol.data_target().is_none());
}
