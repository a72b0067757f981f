//! Grader for Memory Pool: the pool, used as a library.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{Pool, PoolBox, PoolError};

fn address<T>(b: &PoolBox<'_, T>) -> usize {
    &**b as *const T as usize
}

fn capacity() -> usize {
    rand::rng().random_range(1..200)
}

// Requirement 1: creating a pool.
#[test]
fn zero_and_impossible_capacities_are_errors() {
    assert!(matches!(
        Pool::<u64>::with_capacity(0),
        Err(PoolError::ZeroCapacity)
    ));
    assert!(matches!(
        Pool::<u64>::with_capacity(usize::MAX / 4),
        Err(PoolError::TooLarge(_))
    ));
    // About 8 EiB: a valid layout that no allocator can serve, so it must fail softly. (Miri
    // stops the whole program on such a request instead of returning null: skipped there.)
    if !cfg!(miri) {
        assert!(matches!(
            Pool::<[u8; 4096]>::with_capacity(usize::MAX / 8192),
            Err(PoolError::TooLarge(_))
        ));
    }
    let n = capacity();
    let pool = Pool::<u64>::with_capacity(n).expect("with_capacity");
    assert_eq!(pool.capacity(), n);
    assert_eq!(pool.available(), n);
}

/// Minor page faults of this thread (`getrusage(RUSAGE_THREAD)`).
fn minor_faults() -> u64 {
    // SAFETY: all zeroes is a valid rusage; getrusage fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only to `usage`, a live local.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_minflt as u64
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot call getrusage")]
fn creating_a_pool_touches_none_of_its_memory() {
    // 50,000 blocks of 4 KiB: 200 MiB. Linking them all up front would fault in every page.
    let before = minor_faults();
    let pool = Pool::<[u8; 4096]>::with_capacity(50_000).expect("with_capacity");
    let faults = minor_faults() - before;
    assert!(
        faults < 1_000,
        "creating a pool of 50,000 pages caused {faults} page faults: do not link the blocks up front"
    );
    let block = pool.alloc([7; 4096]).expect("alloc");
    assert_eq!(block[4095], 7);
    assert_eq!(pool.available(), 49_999);
}

// Requirement 2: alloc until exhausted, then None; a freed block is reused.
#[test]
fn alloc_returns_none_when_every_block_is_in_use() {
    let n = capacity();
    let pool = Pool::with_capacity(n).expect("with_capacity");
    let mut boxes: Vec<_> = (0..n)
        .map(|i| pool.alloc(i).expect("a free block"))
        .collect();
    assert_eq!(pool.available(), 0);
    assert!(pool.alloc(n).is_none(), "a full pool must return None");
    boxes.pop();
    assert_eq!(pool.available(), 1);
    let again = pool.alloc(42).expect("a block was freed");
    assert_eq!(*again, 42);
    assert!(pool.alloc(43).is_none());
}

#[test]
fn a_freed_block_is_reused() {
    let n = rand::rng().random_range(2..200);
    let pool = Pool::with_capacity(n).expect("with_capacity");
    let mut boxes: Vec<_> = (0..n as u64).map(|i| pool.alloc(i).unwrap()).collect();
    let victim = rand::rng().random_range(0..n);
    let freed_at = address(&boxes[victim]);
    drop(boxes.swap_remove(victim));
    let reused = pool.alloc(999).expect("the freed block");
    assert_eq!(
        address(&reused),
        freed_at,
        "the only free block is the one just freed"
    );
}

#[test]
fn live_blocks_are_distinct_and_keep_their_values() {
    let n = capacity();
    let pool = Pool::with_capacity(n).expect("with_capacity");
    let mut rng = rand::rng();
    let values: Vec<[u64; 3]> = (0..n)
        .map(|_| [rng.random(), rng.random(), rng.random()])
        .collect();
    let mut boxes: Vec<_> = values.iter().map(|v| pool.alloc(*v).unwrap()).collect();
    let addresses: HashSet<usize> = boxes.iter().map(address).collect();
    assert_eq!(
        addresses.len(),
        n,
        "{n} live blocks must have {n} addresses"
    );
    let mut sorted: Vec<usize> = addresses.into_iter().collect();
    sorted.sort();
    for pair in sorted.windows(2) {
        assert!(pair[1] - pair[0] >= 24, "blocks of a 24-byte type overlap");
    }
    for (b, v) in boxes.iter_mut().zip(&values) {
        assert_eq!(**b, *v);
        b[0] = b[0].wrapping_add(1); // DerefMut writes through
    }
    for (b, v) in boxes.iter().zip(&values) {
        assert_eq!(b[0], v[0].wrapping_add(1));
        assert_eq!(b[1..], v[1..]);
    }
}

// Requirement 3: alignment of any T.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(align(64))]
struct CacheLine([u8; 40]);

fn check_alignment<T: Copy + PartialEq + std::fmt::Debug>(make: impl Fn(usize) -> T) {
    let n = rand::rng().random_range(1..100);
    let pool = Pool::with_capacity(n).expect("with_capacity");
    let mut boxes: Vec<_> = (0..n).map(|i| pool.alloc(make(i)).unwrap()).collect();
    // Free and reuse some blocks: reused blocks must be aligned too.
    boxes.truncate(n / 2);
    boxes.extend((n / 2..n).map(|i| pool.alloc(make(i)).unwrap()));
    for (i, b) in boxes.iter().enumerate() {
        let align = std::mem::align_of::<T>();
        assert_eq!(
            address(b) % align,
            0,
            "{} at {:#x} is not aligned to {align}",
            std::any::type_name::<T>(),
            address(b)
        );
        assert_eq!(**b, make(i));
    }
}

#[test]
fn blocks_are_aligned_for_every_type() {
    check_alignment(|i| i as u8);
    check_alignment(|i| i as u16);
    check_alignment(|i| i as u32);
    check_alignment(|i| i as u64);
    check_alignment(|i| i as u128);
    check_alignment(|i| [i as u8; 3]);
    check_alignment(|i| CacheLine([i as u8; 40]));
}

#[test]
fn zero_sized_values_still_count_blocks() {
    let n = capacity();
    let pool = Pool::with_capacity(n).expect("with_capacity");
    let boxes: Vec<_> = (0..n).map(|_| pool.alloc(()).unwrap()).collect();
    assert!(pool.alloc(()).is_none());
    drop(boxes);
    assert_eq!(pool.available(), n);
}

// Requirement 4: every value is dropped exactly once.
#[derive(Debug)]
struct Tracked {
    id: usize,
    drops: Rc<RefCell<HashMap<usize, usize>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        *self.drops.borrow_mut().entry(self.id).or_default() += 1;
    }
}

#[test]
fn every_value_is_dropped_exactly_once() {
    let drops = Rc::new(RefCell::new(HashMap::new()));
    let n = rand::rng().random_range(10..200);
    let track = |id| Tracked {
        id,
        drops: drops.clone(),
    };
    {
        let pool = Pool::with_capacity(n).expect("with_capacity");
        let mut boxes: Vec<_> = (0..n).map(|id| pool.alloc(track(id)).unwrap()).collect();
        // A rejected value is dropped by `alloc` (id n).
        assert!(pool.alloc(track(n)).is_none());
        assert_eq!(
            drops.borrow().get(&n),
            Some(&1),
            "a value alloc could not place is dropped"
        );
        // Some dropped with their handle, some moved out, the rest dropped with the vector.
        for _ in 0..n / 3 {
            let i = rand::rng().random_range(0..boxes.len());
            drop(boxes.swap_remove(i));
        }
        for _ in 0..n / 3 {
            let i = rand::rng().random_range(0..boxes.len());
            let value = PoolBox::into_inner(boxes.swap_remove(i));
            assert_eq!(
                drops.borrow().get(&value.id),
                None,
                "into_inner must not drop the value"
            );
        }
        assert_eq!(pool.available(), 2 * (n / 3));
    }
    let drops = drops.borrow();
    for id in 0..=n {
        assert_eq!(
            drops.get(&id),
            Some(&1),
            "value {id} was dropped {:?} times",
            drops.get(&id)
        );
    }
}

#[test]
fn into_inner_returns_the_value_and_frees_the_block() {
    let pool = Pool::with_capacity(1).expect("with_capacity");
    let text = format!("value-{}", rand::rng().random::<u32>());
    let b = pool.alloc(text.clone()).unwrap();
    assert_eq!(pool.available(), 0);
    assert_eq!(PoolBox::into_inner(b), text);
    assert_eq!(pool.available(), 1);
    assert_eq!(*pool.alloc(String::from("next")).unwrap(), "next");
}

// Requirement 5: random sequences of alloc and free behave like a model.
#[test]
fn random_alloc_free_sequences_match_a_model() {
    let mut rng = rand::rng();
    for _ in 0..10 {
        let n = rng.random_range(1..300);
        let pool = Pool::with_capacity(n).expect("with_capacity");
        // The model: which values are live. The real thing: their handles.
        let mut live: Vec<(u64, PoolBox<'_, (u64, u64)>)> = Vec::new();
        let mut next = 0u64;
        for _ in 0..3_000 {
            if rng.random_bool(0.55) {
                next += 1;
                match pool.alloc((next, !next)) {
                    Some(b) => {
                        assert!(live.len() < n, "alloc succeeded with all {n} blocks in use");
                        live.push((next, b));
                    }
                    None => assert_eq!(live.len(), n, "alloc failed with a free block"),
                }
            } else if !live.is_empty() {
                let i = rng.random_range(0..live.len());
                let (id, b) = live.swap_remove(i);
                assert_eq!(*b, (id, !id), "a live value was overwritten");
            }
            assert_eq!(pool.available(), n - live.len());
        }
        let addresses: HashSet<usize> = live.iter().map(|(_, b)| address(b)).collect();
        assert_eq!(addresses.len(), live.len(), "two live values share a block");
        for (id, b) in &live {
            assert_eq!(**b, (*id, !*id));
        }
    }
}
