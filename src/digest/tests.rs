//! Unit tests of the digest: the manifest encoding, the kubelet layout,
//! loops and special files, the stat cache, and the budgets.

use super::cache::{ctime_ns, mtime_ns};
use super::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

fn snap(roots: &[PathBuf]) -> Snapshot {
    Walker {
        roots,
        excludes: &[],
        cache: &[],
        full: false,
        budgets: Budgets::default(),
    }
    .snapshot()
    .unwrap()
}

#[test]
fn a_known_manifest_lends_its_digest_only_when_the_files_match_it() {
    let d = tmp();
    fs::write(d.path().join("a"), "1").unwrap();
    let roots = [d.path().to_path_buf()];
    let walker = Walker {
        roots: &roots,
        excludes: &[],
        cache: &[],
        full: false,
        budgets: Budgets::default(),
    };
    let plain = walker.snapshot().unwrap();
    // The same manifest: its digest, which is the one it was made with.
    let same = walker
        .snapshot_known(Some((&plain.files, &plain.digest)))
        .unwrap();
    assert_eq!(same.digest, plain.digest);
    assert_eq!(same.digest, tree_digest(&same.files));
    // Another manifest (a changed file, an extra one): hashed as ever.
    let mut other = plain.files.clone();
    other[0].sha256 = "0".repeat(64);
    let s = walker.snapshot_known(Some((&other, "x"))).unwrap();
    assert_eq!(s.digest, plain.digest);
    fs::write(d.path().join("b"), "2").unwrap();
    let s = walker
        .snapshot_known(Some((&plain.files, &plain.digest)))
        .unwrap();
    assert_eq!(s.digest, tree_digest(&s.files));
    assert_ne!(s.digest, plain.digest);
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn digest_is_sha256_of_the_canonical_manifest() {
    let d = tmp();
    fs::write(d.path().join("b"), "2").unwrap();
    fs::write(d.path().join("a"), "1").unwrap();
    let s = snap(&[d.path().to_path_buf()]);
    let names: Vec<_> = s.files.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    // sha256("1"), sha256("2")
    let one = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";
    let two = "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35";
    assert_eq!(s.files[0].sha256, one);
    let mut h = Sha256::new();
    h.update(format!("a\0{one}\nb\0{two}\n"));
    assert_eq!(s.digest, hex(&h.finalize()));
}

#[test]
fn kubelet_layout_is_read_through_data_once() {
    let d = tmp();
    let ts = d.path().join("..2026_11_25_16_20_03.123");
    fs::create_dir_all(ts.join("nested/deep")).unwrap();
    fs::write(ts.join("app.yaml"), "x: 1").unwrap();
    fs::write(ts.join("nested/deep/k"), "v").unwrap();
    symlink("..2026_11_25_16_20_03.123", d.path().join("..data")).unwrap();
    symlink("..data/app.yaml", d.path().join("app.yaml")).unwrap();
    symlink("..data/nested", d.path().join("nested")).unwrap();
    let s = snap(&[d.path().to_path_buf()]);
    let names: Vec<_> = s.files.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, ["app.yaml", "nested/deep/k"]);
    assert!(s.skipped.is_empty());
}

#[test]
fn ctimes_inside_kubelet_volumes_are_kept_apart() {
    let d = tmp();
    let vol = d.path().join("vol");
    let ts = vol.join("..2026_11_25_16_20_03.1");
    fs::create_dir_all(&ts).unwrap();
    fs::write(ts.join("k"), "v").unwrap();
    symlink("..2026_11_25_16_20_03.1", vol.join("..data")).unwrap();
    symlink("..data/k", vol.join("k")).unwrap();
    let plain = d.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("f"), "x").unwrap();
    // The volume, a key in it, a plain dir: only the last has ctimes
    // outside a volume; both the first two name the volume.
    let s = snap(&[vol.clone(), vol.join("k"), plain.clone()]);
    assert_eq!(s.outside_volumes_ns.len(), 3);
    assert_eq!(s.outside_volumes_ns[..2], [None, None]);
    let f = ctime_ns(&fs::metadata(plain.join("f")).unwrap());
    assert!(s.outside_volumes_ns[2].is_some_and(|t| t >= f));
    assert_eq!(s.volumes, [vol]);
    assert!(s.newest_change_ns >= s.outside_volumes_ns[2]);
}

#[test]
fn volumes_mounted_inside_a_kubelet_volume_are_walked() {
    let d = tmp();
    let ts = d.path().join("..2026_11_25_16_20_03.1");
    fs::create_dir_all(&ts).unwrap();
    fs::write(ts.join("app.conf"), "a").unwrap();
    symlink("..2026_11_25_16_20_03.1", d.path().join("..data")).unwrap();
    symlink("..data/app.conf", d.path().join("app.conf")).unwrap();
    // A second volume mounted at certs/: its own kubelet layout.
    let certs = d.path().join("certs");
    let cts = certs.join("..2026_11_25_16_20_04.2");
    fs::create_dir_all(&cts).unwrap();
    fs::write(cts.join("tls.crt"), "c").unwrap();
    symlink("..2026_11_25_16_20_04.2", certs.join("..data")).unwrap();
    symlink("..data/tls.crt", certs.join("tls.crt")).unwrap();
    let s = snap(&[d.path().to_path_buf()]);
    let names: Vec<_> = s.files.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, ["app.conf", "certs/tls.crt"]);
}

#[test]
fn special_files_loops_and_dangling_links_are_skipped() {
    let d = tmp();
    nix::unistd::mkfifo(&d.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    symlink("nowhere", d.path().join("dangling")).unwrap();
    symlink("loop", d.path().join("loop")).unwrap();
    fs::create_dir(d.path().join("sub")).unwrap();
    symlink("..", d.path().join("sub/up")).unwrap();
    fs::write(d.path().join("real"), "r").unwrap();
    let s = snap(&[d.path().to_path_buf()]);
    let names: Vec<_> = s.files.iter().map(|e| e.path.as_str()).collect();
    // `sub/up/real` goes through a loop back to the root: skipped.
    assert_eq!(names, ["real"]);
    let reasons: Vec<_> = s
        .skipped
        .iter()
        .map(|k| (k.path.as_str(), k.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("dangling", "dangling symlink"),
            ("fifo", "FIFO, not read"),
            ("loop", "symlink loop"),
            ("sub/up", "directory loop, not followed")
        ]
    );
}

#[test]
fn stat_cache_skips_old_unchanged_files_only() {
    let d = tmp();
    let f = d.path().join("f");
    fs::write(&f, "one").unwrap();
    let roots = [d.path().to_path_buf()];
    let first = snap(&roots);
    // Just written: too young to trust next time.
    assert!(first.cache.is_empty());
    assert_eq!(first.hashed_bytes, 3);
    // Pretend it is old: a cache entry with matching stat data is used.
    let meta = fs::metadata(&f).unwrap();
    let cached = vec![CachedFile {
        path: "f".into(),
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: mtime_ns(&meta),
        ctime_ns: ctime_ns(&meta),
        sha256: "cafe".into(),
    }];
    let walker = Walker {
        roots: &roots,
        excludes: &[],
        cache: &cached,
        full: false,
        budgets: Budgets::default(),
    };
    let s = walker.snapshot().unwrap();
    assert_eq!(s.files[0].sha256, "cafe");
    assert_eq!(s.hashed_bytes, 0);
    let full = Walker {
        full: true,
        ..walker
    }
    .snapshot()
    .unwrap();
    assert_ne!(full.files[0].sha256, "cafe");
}

fn walk_with(roots: &[PathBuf], budgets: Budgets) -> Result<Snapshot, DigestError> {
    Walker {
        roots,
        excludes: &[],
        cache: &[],
        full: false,
        budgets,
    }
    .snapshot()
}

fn budget_of(r: Result<Snapshot, DigestError>) -> (Budget, String) {
    match r {
        Err(DigestError::Budget { budget, at, .. }) => (budget, at),
        other => panic!("not a budget error: {other:?}"),
    }
}

#[test]
fn every_budget_stops_the_walk_and_is_named() {
    let d = tmp();
    let root = d.path().join("w");
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::write(root.join("a/b/c/deep"), "x").unwrap();
    fs::write(root.join("big"), vec![b'z'; 100]).unwrap();
    for i in 0..5 {
        fs::write(root.join(format!("f{i}")), "1").unwrap();
    }
    let roots = [root.clone()];
    let all = walk_with(&roots, DEFAULT_BUDGETS).unwrap();
    assert_eq!(all.files.len(), 7);
    // w, a, a/b, a/b/c, a/b/c/deep, big, f0..f4: 11 entries.
    fn b(f: impl FnOnce(&mut Budgets)) -> Budgets {
        let mut b = DEFAULT_BUDGETS;
        f(&mut b);
        b
    }
    assert!(walk_with(&roots, b(|b| b.max_entries = 11)).is_ok());
    let (which, _) = budget_of(walk_with(&roots, b(|b| b.max_entries = 10)));
    assert_eq!(which, Budget::Entries);
    assert!(walk_with(&roots, b(|b| b.max_depth = 4)).is_ok());
    let (which, at) = budget_of(walk_with(&roots, b(|b| b.max_depth = 3)));
    assert_eq!(
        (which, at),
        (Budget::Depth, format!("{}/a/b/c/deep", root.display()))
    );
    assert!(walk_with(&roots, b(|b| b.max_bytes = 106)).is_ok());
    let (which, at) = budget_of(walk_with(&roots, b(|b| b.max_bytes = 105)));
    assert_eq!(which, Budget::Bytes);
    assert!(at.ends_with("/big") || at.contains("/f"), "{at}");
    // Names: "w" + "a" "a/b" "a/b/c" "a/b/c/deep" "big" "f0".."f4".
    let names = 1 + 1 + 3 + 5 + 10 + 3 + 5 * 2;
    assert!(walk_with(&roots, b(|b| b.max_name_bytes = names)).is_ok());
    let (which, _) = budget_of(walk_with(&roots, b(|b| b.max_name_bytes = names - 1)));
    assert_eq!(which, Budget::NameBytes);
    let (which, _) = budget_of(walk_with(
        &roots,
        b(|b| b.deadline = Duration::from_nanos(1)),
    ));
    assert_eq!(which, Budget::Deadline);
    // The message names the budget, its limit and the way out.
    let e = walk_with(&roots, b(|b| b.max_entries = 10)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("budget: max-entries (10) exceeded at "),
        "{text}"
    );
    assert!(
        text.contains("--exclude") && text.contains("DRIFTPROBE_MAX_ENTRIES"),
        "{text}"
    );
    let e = walk_with(&roots, b(|b| b.max_bytes = 1 << 20 | 1)).map(|s| s.files.len());
    assert_eq!(e.unwrap(), 7);
    assert_eq!(
        DEFAULT_BUDGETS.limit(Budget::Bytes),
        "256MiB",
        "shown as typed"
    );
    assert_eq!(DEFAULT_BUDGETS.limit(Budget::Deadline), "500ms");
}

#[test]
fn excluded_entries_do_not_count() {
    let d = tmp();
    for i in 0..10 {
        fs::write(d.path().join(format!("{i}.bak")), "b").unwrap();
    }
    fs::write(d.path().join("app.conf"), "a").unwrap();
    let roots = [d.path().to_path_buf()];
    let excludes = [Glob::new("*.bak").unwrap()];
    let budgets = Budgets {
        max_entries: 2,
        ..DEFAULT_BUDGETS
    };
    let s = Walker {
        roots: &roots,
        excludes: &excludes,
        cache: &[],
        full: false,
        budgets,
    }
    .snapshot()
    .unwrap();
    assert_eq!(s.files.len(), 1);
}

#[test]
fn a_path_nested_in_a_volume_is_read_through_data() {
    // `..data` says version 1; the top-level symlink `conf` still leads
    // to version 2's dir (as between two steps of a kubelet update).
    // Every file under conf/app must come from what `..data` names.
    let d = tmp();
    for (ts, v) in [("..ts1", "one"), ("..ts2", "two")] {
        fs::create_dir_all(d.path().join(ts).join("conf/app")).unwrap();
        fs::write(d.path().join(ts).join("conf/app/x"), v).unwrap();
        fs::write(d.path().join(ts).join("conf/app/y"), v).unwrap();
    }
    symlink("..ts1", d.path().join("..data")).unwrap();
    symlink("..ts2/conf", d.path().join("conf")).unwrap();
    let one = {
        let e = tmp();
        fs::write(e.path().join("x"), "one").unwrap();
        fs::write(e.path().join("y"), "one").unwrap();
        snap(&[e.path().to_path_buf()]).digest
    };
    let dir = d.path().join("conf/app");
    assert_eq!(snap(std::slice::from_ref(&dir)).digest, one);
    // A watched file two levels down, alone or with a sibling.
    let x = d.path().join("conf/app/x");
    let s = snap(std::slice::from_ref(&x));
    assert_eq!(s.files[0].sha256, hex(&Sha256::digest(b"one")));
    let both = snap(&[x.clone(), d.path().join("conf/app/y")]);
    assert!(both
        .files
        .iter()
        .all(|f| f.size == 3 && f.sha256 == s.files[0].sha256));
    // A real directory beside the symlinks is another volume (or none):
    // read as it is.
    fs::create_dir(d.path().join("mnt")).unwrap();
    fs::write(d.path().join("mnt/m"), "m").unwrap();
    let m = snap(&[d.path().join("mnt/m")]);
    assert_eq!(m.files.len(), 1);
    assert!(m.missing.is_empty());
}

#[test]
fn names_escape_non_utf8_and_control_bytes() {
    assert_eq!(escape_name(b"plain.yaml"), "plain.yaml");
    assert_eq!(escape_name(b"caf\xc3\xa9"), "café");
    assert_eq!(escape_name(b"bad\xff"), "bad\\xff");
    assert_eq!(escape_name(b"new\nline"), "new\\x0aline");
    assert_eq!(escape_name(b"back\\x"), "back\\\\x");
    // The ASCII fast path's edges: space is kept, DEL is a control.
    assert_eq!(escape_name(b"a b~"), "a b~");
    assert_eq!(escape_name(b"del\x7f"), "del\\x7f");
}

#[test]
fn one_root_names_are_relative_several_are_qualified() {
    let d = tmp();
    fs::write(d.path().join("a"), "1").unwrap();
    let file = d.path().join("a");
    let one = snap(std::slice::from_ref(&file));
    assert_eq!(one.files[0].path, "a");
    let missing = d.path().join("missing");
    let two = snap(&[d.path().to_path_buf(), missing.clone()]);
    assert_eq!(two.files[0].path, format!("{}/a", d.path().display()));
    assert_eq!(two.missing, [missing.display().to_string()]);
}
