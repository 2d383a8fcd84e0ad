//! The state dir's rules (ours alone, private subdirs, no symlinks) and
//! its locked, atomic, size-capped reads and writes.

use super::*;
use crate::state::tests::sample;

/// Ample for the small states of these tests.
const LIMIT: u64 = 1 << 20;

#[test]
fn a_state_file_over_the_limit_is_not_read() {
    let d = tempfile::tempdir().unwrap();
    let dir = StateDir::open(&d.path().join("state")).unwrap();
    let locked = dir.lock("k", Duration::from_secs(1)).unwrap();
    locked.save(&sample()).unwrap();
    let size = fs::metadata(locked.path()).unwrap().len();
    assert!(matches!(locked.load(size), Loaded::Found(_)));
    match locked.load(size - 1) {
        Loaded::Unusable(why) => assert!(why.contains("too large"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(dir.peek("k", size), Loaded::Found(_)));
}

#[test]
fn round_trips_and_is_private() {
    let d = tempfile::tempdir().unwrap();
    let dir = StateDir::open(&d.path().join("state")).unwrap();
    let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let locked = dir.lock("k", Duration::from_secs(1)).unwrap();
    assert!(matches!(locked.load(LIMIT), Loaded::Absent));
    locked.save(&sample()).unwrap();
    match locked.load(LIMIT) {
        Loaded::Found(s) => assert_eq!(*s, sample()),
        other => panic!("{other:?}"),
    }
    let mode = fs::metadata(locked.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn second_locker_times_out() {
    let d = tempfile::tempdir().unwrap();
    let dir = StateDir::open(d.path()).unwrap();
    let _held = dir.lock("k", Duration::from_secs(1)).unwrap();
    let err = dir.lock("k", Duration::from_millis(20)).err().unwrap();
    assert!(err.to_string().contains("locked by another probe"), "{err}");
}

#[test]
fn symlinked_dir_is_refused() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", d.path().join("link")).unwrap();
    let err = StateDir::open(&d.path().join("link")).err().unwrap();
    assert!(err.to_string().contains("symlink"), "{err}");
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), None).unwrap();
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// A uid that is not ours.
fn other_uid() -> u32 {
    if euid() == 4242 {
        4243
    } else {
        4242
    }
}

/// Whether we may chown, as the tests that need it must: when not
/// (not root), the test is skipped loudly, and under CI
/// (`DRIFTPROBE_REQUIRE_E2E=1`, the same rule as tests/support's
/// `skip_e2e`) the skip is a failure.
fn can_chown(test: &str) -> bool {
    if euid() == 0 {
        return true;
    }
    let reason = "chown needs root";
    if std::env::var("DRIFTPROBE_REQUIRE_E2E").is_ok_and(|v| v == "1") {
        panic!("{test} required (DRIFTPROBE_REQUIRE_E2E=1) but {reason}");
    }
    eprintln!("SKIPPED {test}: {reason} (set DRIFTPROBE_REQUIRE_E2E=1 to make this a failure)");
    false
}

#[test]
fn a_shared_dir_gets_a_private_subdir_and_is_left_alone() {
    if !can_chown("a_shared_dir_gets_a_private_subdir_and_is_left_alone") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let shared = d.path().join("state");
    fs::create_dir(&shared).unwrap();
    chown(&shared, 0);
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    // An emptyDir: root's, 0777. Ours only if we are root; then it is
    // still shared (world-writable), so not used as is either.
    let dir = StateDir::open(&shared).unwrap();
    let private = shared.join(format!("driftprobe-{}", euid()));
    assert_eq!(dir.path(), private);
    assert_eq!(dir.file("k"), private.join("k.json"));
    assert_eq!(mode_of(&shared), 0o777, "the user's dir is not changed");
    assert_eq!(mode_of(&private), 0o700);
    dir.lock("k", Duration::from_secs(1))
        .unwrap()
        .save(&sample())
        .unwrap();
    assert!(private.join("k.json").is_file());
    // Owned by someone else: same.
    chown(&shared, other_uid());
    let again = StateDir::open(&shared).unwrap();
    assert_eq!(again.path(), private);
    assert!(matches!(again.peek("k", LIMIT), Loaded::Found(_)));
    // A read-only look finds it too.
    let ro = StateDir::existing(&shared).unwrap();
    assert!(matches!(ro.peek("k", LIMIT), Loaded::Found(_)));
}

#[test]
fn a_planted_private_subdir_is_refused() {
    if !can_chown("a_planted_private_subdir_is_refused") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let shared = d.path().join("state");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let private = shared.join(format!("driftprobe-{}", euid()));
    fs::create_dir(&private).unwrap();
    chown(&private, other_uid());
    let err = StateDir::open(&shared).err().unwrap().to_string();
    assert!(
        err.contains(&format!("owned by uid {}, not us; refusing", other_uid())),
        "{err}"
    );
    assert!(err.contains(&private.display().to_string()), "{err}");
    fs::remove_dir(&private).unwrap();
    std::os::unix::fs::symlink(d.path(), &private).unwrap();
    let err = StateDir::open(&shared).err().unwrap().to_string();
    assert!(err.contains("symlink"), "{err}");
}

#[test]
fn the_default_dir_must_be_ours() {
    let d = tempfile::tempdir().unwrap();
    let own = d.path().join("driftprobe");
    fs::create_dir(&own).unwrap();
    fs::set_permissions(&own, fs::Permissions::from_mode(0o777)).unwrap();
    // Ours but too open: `status` leaves it, a probe sets it to 0700.
    let ro = StateDir::open_with(&own, false, true).unwrap();
    assert_eq!(ro.path(), own);
    assert_eq!(mode_of(&own), 0o777);
    let dir = StateDir::open_with(&own, true, true).unwrap();
    assert_eq!(dir.path(), own);
    assert_eq!(mode_of(&own), 0o700);
    if !can_chown("the_default_dir_must_be_ours (a dir of another user)") {
        return;
    }
    chown(&own, other_uid());
    let err = StateDir::open_with(&own, true, true)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        format!(
            "state dir {}: owned by uid {}, not us; refusing (another user may have planted it)",
            own.display(),
            other_uid()
        )
    );
    assert_eq!(fs::read_dir(&own).unwrap().count(), 0, "nothing made in it");
}

#[test]
fn existing_creates_nothing() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("a/b");
    let dir = StateDir::existing(&missing).unwrap();
    assert!(matches!(dir.peek("k", LIMIT), Loaded::Absent));
    assert_eq!(dir.file("k"), missing.join("k.json"));
    assert!(dir.lock("k", Duration::from_millis(10)).is_err());
    assert!(!d.path().join("a").exists());
    // A shared dir without our private subdir: nothing made either.
    let shared = d.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let dir = StateDir::existing(&shared).unwrap();
    assert!(matches!(dir.peek("k", LIMIT), Loaded::Absent));
    assert_eq!(fs::read_dir(&shared).unwrap().count(), 0);
    // A file is not a state dir.
    fs::write(d.path().join("f"), "").unwrap();
    let err = StateDir::existing(&d.path().join("f")).err().unwrap();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn files_are_reached_through_the_opened_dir() {
    // Renaming the dir away and planting a symlink in its place does
    // not redirect an open StateDir.
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("state");
    let dir = StateDir::open(&path).unwrap();
    fs::rename(&path, d.path().join("moved")).unwrap();
    fs::create_dir(d.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(d.path().join("elsewhere"), &path).unwrap();
    dir.lock("k", Duration::from_secs(1))
        .unwrap()
        .save(&sample())
        .unwrap();
    assert!(d.path().join("moved/k.json").is_file());
    assert_eq!(fs::read_dir(d.path().join("elsewhere")).unwrap().count(), 0);
}

#[test]
fn a_parent_others_may_write_exposes_the_state_dir() {
    let d = Path::new("/e/driftprobe-7");
    let p = Path::new("/e");
    // emptyDir: root's, 0777, not sticky.
    let e = rename_exposure(d, p, 0o40777, 0, 7).unwrap();
    assert!(
        e.contains("writable by anyone (mode 777, owner uid 0) and not sticky"),
        "{e}"
    );
    assert!(rename_exposure(d, p, 0o40775, 0, 7)
        .unwrap()
        .contains("its group"));
    // Sticky (/tmp, /dev/shm), or only root or we can write: safe.
    assert_eq!(rename_exposure(d, p, 0o41777, 0, 7), None);
    assert_eq!(rename_exposure(d, p, 0o40755, 0, 7), None);
    assert_eq!(rename_exposure(d, p, 0o40700, 7, 7), None);
    // Another user's dir: its owner may rename, sticky or not.
    assert!(rename_exposure(d, p, 0o41777, 8, 7)
        .unwrap()
        .contains("its owner"));
}
