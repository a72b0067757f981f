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
    let zero = Pool::<u64>::with_capacity(0).map(|p| p.capacity());
    assert!(
        matches!(zero, Err(PoolError::ZeroCapacity)),
        "requirement 1: with_capacity(0) returned {zero:?}; wanted Err(ZeroCapacity)"
    );
    let overflow = Pool::<u64>::with_capacity(usize::MAX / 4).map(|p| p.capacity());
    assert!(
        matches!(overflow, Err(PoolError::TooLarge(_))),
        "requirement 1: with_capacity(usize::MAX / 4) of u64 (the size overflows) returned \
         {overflow:?}; wanted Err(TooLarge)"
    );
    // About 8 EiB: a valid layout that no allocator can serve, so it must fail softly. (Miri
    // stops the whole program on such a request instead of returning null: skipped there.)
    if !cfg!(miri) {
        let huge = Pool::<[u8; 4096]>::with_capacity(usize::MAX / 8192).map(|p| p.capacity());
        assert!(
            matches!(huge, Err(PoolError::TooLarge(_))),
            "requirement 1: a pool of 8 EiB returned {huge:?}; wanted Err(TooLarge)"
        );
    }
    let n = capacity();
    let pool = Pool::<u64>::with_capacity(n).expect("with_capacity");
    let (cap, free) = (pool.capacity(), pool.available());
    assert!(
        cap == n && free == n,
        "requirement 1: a new pool of {n} has capacity() {cap} and available() {free}; wanted \
         {n} and {n}"
    );
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
        "requirement 1: creating a pool of 50,000 blocks of 4 KiB caused {faults} page faults; \
         wanted under 1,000 (do not link the blocks up front: that writes to every one)"
    );
    let block = pool.alloc([7; 4096]).expect("alloc");
    let (last, free) = (block[4095], pool.available());
    assert!(
        last == 7 && free == 49_999,
        "requirement 2: after one alloc of [7; 4096] the block ends with {last} and available() \
         is {free}; wanted 7 and 49999"
    );
}

// Requirement 2: alloc until exhausted, then None; a freed block is reused.
#[test]
fn alloc_returns_none_when_every_block_is_in_use() {
    let n = capacity();
    let pool = Pool::with_capacity(n).expect("with_capacity");
    let mut boxes: Vec<_> = (0..n)
        .map(|i| {
            pool.alloc(i)
                .expect("requirement 2: alloc failed with a free block")
        })
        .collect();
    let free = pool.available();
    assert!(
        free == 0,
        "requirement 2: with all {n} blocks in use, available() is {free}; wanted 0"
    );
    assert!(
        pool.alloc(n).is_none(),
        "requirement 2: alloc on a full pool of {n} returned a block; wanted None (a pool never \
         grows and never falls back to the heap)"
    );
    boxes.pop();
    let free = pool.available();
    assert!(
        free == 1,
        "requirement 2: after freeing one block of a full pool, available() is {free}; wanted 1"
    );
    let again = pool.alloc(42);
    assert!(
        again.as_deref() == Some(&42),
        "requirement 2: alloc(42) after freeing a block returned {again:?}; wanted the freed \
         block holding 42"
    );
    assert!(
        pool.alloc(43).is_none(),
        "requirement 2: alloc on a pool full again returned a block; wanted None"
    );
}

#[test]
fn a_freed_block_is_reused() {
    let n = rand::rng().random_range(2..200);
    let pool = Pool::with_capacity(n).expect("with_capacity");
    let mut boxes: Vec<_> = (0..n as u64).map(|i| pool.alloc(i).unwrap()).collect();
    let victim = rand::rng().random_range(0..n);
    let freed_at = address(&boxes[victim]);
    drop(boxes.swap_remove(victim));
    let reused = pool
        .alloc(999)
        .expect("requirement 2: alloc failed with a freed block");
    let at = address(&reused);
    assert!(
        at == freed_at,
        "requirement 2: with only block {freed_at:#x} free, alloc returned {at:#x}; wanted the \
         freed block"
    );
}

#[test]
fn the_most_recently_freed_block_is_reused_first() {
    let mut rng = rand::rng();
    let n = rng.random_range(10..200);
    let pool = Pool::with_capacity(n).expect("with_capacity");
    // Half the pool in use: never-used blocks are left, but freed ones must come first.
    let mut boxes: Vec<_> = (0..n as u64 / 2).map(|i| pool.alloc(i).unwrap()).collect();
    let mut freed = Vec::new();
    for _ in 0..3 {
        let victim = boxes.swap_remove(rng.random_range(0..boxes.len()));
        freed.push(address(&victim));
    }
    for (k, &want) in freed.iter().rev().enumerate() {
        let b = pool.alloc(1_000 + k as u64).expect("a free block");
        let got = address(&b);
        assert!(
            got == want,
            "requirement 2: alloc #{} after freeing 3 blocks returned {got:#x}; wanted {want:#x}, \
             the most recently freed block still free (LIFO: it is still warm in the cache)",
            k + 1
        );
        boxes.push(b);
    }
}

#[test]
fn blocks_are_cut_from_the_pools_one_allocation() {
    let mut rng = rand::rng();
    let n = rng.random_range(2..300);
    let pool = Pool::with_capacity(n).expect("with_capacity");
    let mut boxes: Vec<_> = (0..n as u64).map(|i| pool.alloc(i).unwrap()).collect();
    let lowest = boxes.iter().map(address).min().unwrap_or(0);
    let highest = boxes.iter().map(address).max().unwrap_or(0);
    // A block of u64 holds 8 bytes (the value or a free-list link); allow twice that per block
    // for a design that keeps a tag or a link beside the value. Separate heap allocations
    // (Box::new) are at least 32 bytes apart, in no particular order.
    let limit = (n - 1) * 16;
    assert!(
        highest - lowest <= limit,
        "requirement 2: the {n} blocks of a full pool of u64 span {} bytes, from {lowest:#x} to \
         {highest:#x}; wanted at most {limit} (n blocks cut from the pool's one allocation, not \
         separate heap allocations)",
        highest - lowest
    );
    // Blocks freed and allocated again stay inside the pool's region.
    let rounds = if cfg!(miri) { 100 } else { 1_000u64 };
    for round in 0..rounds {
        let i = rng.random_range(0..boxes.len());
        drop(boxes.swap_remove(i));
        let b = pool.alloc(round).expect("a freed block");
        assert!(
            (lowest..=highest).contains(&address(&b)),
            "requirement 2: after a free, alloc returned {:#x}, outside the pool's blocks \
             {lowest:#x}..={highest:#x}",
            address(&b)
        );
        boxes.push(b);
    }
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
    assert!(
        addresses.len() == n,
        "requirement 2: {n} live blocks have {} distinct addresses; wanted {n}",
        addresses.len()
    );
    let mut sorted: Vec<usize> = addresses.into_iter().collect();
    sorted.sort();
    for pair in sorted.windows(2) {
        assert!(
            pair[1] - pair[0] >= 24,
            "requirement 2: blocks of a 24-byte type at {:#x} and {:#x} overlap",
            pair[0],
            pair[1]
        );
    }
    for (i, (b, v)) in boxes.iter_mut().zip(&values).enumerate() {
        assert!(
            **b == *v,
            "requirement 2: live block {i} holds {:?}; wanted {v:?}",
            **b
        );
        b[0] = b[0].wrapping_add(1); // DerefMut writes through
    }
    for (i, (b, v)) in boxes.iter().zip(&values).enumerate() {
        let want = [v[0].wrapping_add(1), v[1], v[2]];
        assert!(
            **b == want,
            "requirement 4: after a write through DerefMut, block {i} holds {:?}; wanted {want:?}",
            **b
        );
    }
}

// Requirement 3: alignment of any T.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(align(64))]
struct CacheLine([u8; 40]);

fn check_alignment<T: Copy + PartialEq + std::fmt::Debug>(make: impl Fn(usize) -> T) {
    // Several pools alive at once: their allocations land at different addresses, so a pool
    // aligned only by luck (malloc's 16 bytes) is caught for a 64-byte-aligned type.
    let pools: Vec<Pool<T>> = (0..if cfg!(miri) { 2 } else { 8 })
        .map(|_| Pool::with_capacity(rand::rng().random_range(1..100)).expect("with_capacity"))
        .collect();
    for pool in &pools {
        let n = pool.capacity();
        let mut boxes: Vec<_> = (0..n).map(|i| pool.alloc(make(i)).unwrap()).collect();
        // Free and reuse some blocks: reused blocks must be aligned too.
        boxes.truncate(n / 2);
        boxes.extend((n / 2..n).map(|i| pool.alloc(make(i)).unwrap()));
        let align = std::mem::align_of::<T>();
        for (i, b) in boxes.iter().enumerate() {
            assert!(
                address(b) % align == 0,
                "requirement 3: a block of {} is at {:#x}, not a multiple of its alignment {align}",
                std::any::type_name::<T>(),
                address(b)
            );
            assert!(
                **b == make(i),
                "requirement 2: block {i} of {} holds {:?}; wanted {:?}",
                std::any::type_name::<T>(),
                **b,
                make(i)
            );
        }
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
    assert!(
        pool.alloc(()).is_none(),
        "requirement 3: a pool of {n} blocks of () gave an {}th block; wanted None",
        n + 1
    );
    drop(boxes);
    let free = pool.available();
    assert!(
        free == n,
        "requirement 3: after dropping all {n} boxes of (), available() is {free}; wanted {n}"
    );
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
        assert!(
            pool.alloc(track(n)).is_none(),
            "requirement 2: alloc on a full pool of {n} returned a block; wanted None"
        );
        let rejected = drops.borrow().get(&n).copied();
        assert!(
            rejected == Some(1),
            "requirement 4: a value alloc could not place was dropped {rejected:?} times; wanted \
             Some(1)"
        );
        // Some dropped with their handle, some moved out, the rest dropped with the vector.
        for _ in 0..n / 3 {
            let i = rand::rng().random_range(0..boxes.len());
            drop(boxes.swap_remove(i));
        }
        for _ in 0..n / 3 {
            let i = rand::rng().random_range(0..boxes.len());
            let value = PoolBox::into_inner(boxes.swap_remove(i));
            let dropped = drops.borrow().get(&value.id).copied();
            assert!(
                dropped.is_none(),
                "requirement 4: into_inner dropped the value it returned ({dropped:?} times)"
            );
        }
        let free = pool.available();
        assert!(
            free == 2 * (n / 3),
            "requirement 4: after {} drops and {} into_inner, available() is {free}; wanted {}",
            n / 3,
            n / 3,
            2 * (n / 3)
        );
    }
    let drops = drops.borrow();
    let wrong = (0..=n).find(|id| drops.get(id) != Some(&1));
    assert!(
        wrong.is_none(),
        "requirement 4: value {wrong:?} was dropped {:?} times; wanted every value dropped once",
        wrong.map(|id| drops.get(&id).copied().unwrap_or(0))
    );
}

#[test]
fn into_inner_returns_the_value_and_frees_the_block() {
    let pool = Pool::with_capacity(1).expect("with_capacity");
    let text = format!("value-{}", rand::rng().random::<u32>());
    let b = pool.alloc(text.clone()).unwrap();
    let free = pool.available();
    assert!(
        free == 0,
        "requirement 2: a pool of 1 with its block in use has available() {free}; wanted 0"
    );
    let got = PoolBox::into_inner(b);
    assert!(
        got == text,
        "requirement 4: into_inner returned {got:?}; wanted {text:?}"
    );
    let free = pool.available();
    assert!(
        free == 1,
        "requirement 4: after into_inner, available() is {free}; wanted 1 (the block goes back)"
    );
    let next = pool.alloc(String::from("next"));
    assert!(
        next.as_deref().map(String::as_str) == Some("next"),
        "requirement 4: after into_inner, alloc(\"next\") on a pool of 1 returned {next:?}; \
         wanted the block back"
    );
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
                        assert!(
                            live.len() < n,
                            "requirement 5: alloc succeeded with all {n} blocks in use"
                        );
                        live.push((next, b));
                    }
                    None => assert!(
                        live.len() == n,
                        "requirement 5: alloc failed with {} of {n} blocks in use",
                        live.len()
                    ),
                }
            } else if !live.is_empty() {
                let i = rng.random_range(0..live.len());
                let (id, b) = live.swap_remove(i);
                assert!(
                    *b == (id, !id),
                    "requirement 5: live value {id} was overwritten with {:?}",
                    *b
                );
            }
            let free = pool.available();
            assert!(
                free == n - live.len(),
                "requirement 5: with {} of {n} blocks in use, available() is {free}; wanted {}",
                live.len(),
                n - live.len()
            );
        }
        let addresses: HashSet<usize> = live.iter().map(|(_, b)| address(b)).collect();
        assert!(
            addresses.len() == live.len(),
            "requirement 5: {} live values sit in {} blocks; wanted one block each",
            live.len(),
            addresses.len()
        );
        for (id, b) in &live {
            assert!(
                **b == (*id, !*id),
                "requirement 5: live value {id} was overwritten with {:?}",
                **b
            );
        }
    }
}
