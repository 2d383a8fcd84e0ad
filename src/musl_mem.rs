//! `memcmp` and `bcmp` for the static musl builds, a word (8 bytes) at a
//! time.
//!
//! musl's own compare a byte per loop iteration, and every string
//! comparison Rust makes ends in one of them: sorting the manifest, finding
//! each file in the stat cache, comparing the state with the one loaded (to
//! decide that nothing is written), clap's id lookups. In a steady-state
//! probe of 1,000 files they were 17% of the instructions. glibc's are
//! vectorized already, so only the musl builds export these
//! (`#[no_mangle]`, which the linker takes before libc.a's); the
//! comparisons themselves build and are tested on every target.
//!
//! memcmp's order is that of the first differing byte, so words are read
//! big-endian: the most significant byte of the word is the first in
//! memory, and comparing the words compares the bytes in order.

use std::ptr::read_unaligned;

const WORD: usize = std::mem::size_of::<u64>();

/// The 8 bytes at `p`, the first one most significant.
///
/// # Safety
/// `p..p + 8` must be readable.
#[inline(always)]
unsafe fn word(p: *const u8) -> u64 {
    u64::from_be(read_unaligned(p.cast::<u64>()))
}

/// Orders the `n` bytes at `a` and `b` as `memcmp` does: negative, zero or
/// positive as the first differing byte of `a` is below, equal to or above
/// that of `b`.
///
/// # Safety
/// `a..a + n` and `b..b + n` must be readable.
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let order = |x: u64, y: u64| if x < y { -1 } else { 1 };
    if n < WORD {
        for i in 0..n {
            let (x, y) = (*a.add(i), *b.add(i));
            if x != y {
                return i32::from(x) - i32::from(y);
            }
        }
        return 0;
    }
    let mut i = 0;
    while i + WORD <= n {
        let (x, y) = (word(a.add(i)), word(b.add(i)));
        if x != y {
            return order(x, y);
        }
        i += WORD;
    }
    // The tail as the last word, overlapping bytes already found equal.
    if i < n {
        let (x, y) = (word(a.add(n - WORD)), word(b.add(n - WORD)));
        if x != y {
            return order(x, y);
        }
    }
    0
}

/// Zero if the `n` bytes at `a` and `b` are equal, else nonzero (`bcmp`:
/// no order, so the words are compared in the machine's own byte order).
///
/// # Safety
/// `a..a + n` and `b..b + n` must be readable.
pub unsafe fn differ(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n < WORD {
        for i in 0..n {
            if *a.add(i) != *b.add(i) {
                return 1;
            }
        }
        return 0;
    }
    let load = |p: *const u8| read_unaligned(p.cast::<u64>());
    let mut i = 0;
    while i + WORD <= n {
        if load(a.add(i)) != load(b.add(i)) {
            return 1;
        }
        i += WORD;
    }
    i32::from(i < n && load(a.add(n - WORD)) != load(b.add(n - WORD)))
}

/// The C library's `memcmp`, for every comparison Rust's slices and
/// strings make.
///
/// # Safety
/// As C's `memcmp`: `n` readable bytes at each pointer.
#[cfg(all(target_env = "musl", not(test)))]
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    compare(a, b, n)
}

/// The C library's `bcmp` (what Rust's slice equality calls).
///
/// # Safety
/// As C's `bcmp`: `n` readable bytes at each pointer.
#[cfg(all(target_env = "musl", not(test)))]
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    differ(a, b, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn ordering(a: &[u8], b: &[u8]) -> Ordering {
        assert_eq!(a.len(), b.len());
        // SAFETY: both slices hold a.len() bytes.
        unsafe { compare(a.as_ptr(), b.as_ptr(), a.len()) }.cmp(&0)
    }

    fn equal(a: &[u8], b: &[u8]) -> bool {
        // SAFETY: both slices hold a.len() bytes.
        unsafe { differ(a.as_ptr(), b.as_ptr(), a.len()) == 0 }
    }

    fn check(a: &[u8], b: &[u8]) {
        assert_eq!(ordering(a, b), a.cmp(b), "{a:?} vs {b:?}");
        assert_eq!(ordering(b, a), b.cmp(a), "{b:?} vs {a:?}");
        assert_eq!(equal(a, b), a == b, "{a:?} vs {b:?}");
    }

    #[test]
    fn the_first_differing_byte_decides() {
        // A little-endian word compare gets these wrong: the later byte
        // would weigh more than the earlier one.
        check(&[1, 0, 0, 0, 0, 0, 0, 0], &[0, 1, 0, 0, 0, 0, 0, 0]);
        check(&[0, 2, 0, 0, 0, 0, 0, 0, 0], &[0, 1, 9, 9, 9, 9, 9, 9, 9]);
        check(b"key-00010.conf", b"key-00009.conf");
        // In the overlapping tail word, and in a short one.
        check(&[7; 13], &[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 0]);
        check(
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        );
        check(&[2, 1], &[1, 2]);
        check(&[0xff, 0], &[0x7f, 0xff]);
        check(&[], &[]);
        // Every length around the word boundaries, every position.
        for n in 0..=40 {
            let a: Vec<u8> = (0..n as u8).collect();
            check(&a, &a);
            for at in 0..n {
                for delta in [1u8, 0x80, 0xff] {
                    let mut b = a.clone();
                    b[at] = b[at].wrapping_add(delta);
                    check(&a, &b);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn orders_as_slices_do(
            prefix in proptest::collection::vec(any::<u8>(), 0..40),
            a in proptest::collection::vec(any::<u8>(), 0..24),
            b in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let n = a.len().min(b.len());
            let a = [prefix.as_slice(), &a[..n]].concat();
            let b = [prefix.as_slice(), &b[..n]].concat();
            check(&a, &b);
        }
    }
}
