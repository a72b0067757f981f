//! ## Goal
//! `Box::new` calls the general-purpose allocator (glibc's `malloc` here). It serves any size, from
//! any thread, and tries to give memory back to the system, and every call pays for that. Servers
//! that allocate the same object a million times a second (connections, requests, order book
//! entries) often use a *pool* instead: one big allocation cut into equal blocks, with the free
//! blocks linked into a list that lives inside the blocks themselves. You build one with O(1)
//! alloc and free, a `PoolBox<T>` handle that makes double free and use-after-free impossible in
//! safe code, and correct alignment for any `T`. Then you measure it against `Box::new`.
//!
//! ## Requirements
//! 1. `Pool::<T>::with_capacity(n)` makes a pool of `n` blocks in one allocation;
//!    `capacity()` is `n` and `available()` the blocks not in use. `n == 0` is
//!    `PoolError::ZeroCapacity`; a size that cannot be allocated (it overflows, or the allocator
//!    refuses) is `PoolError::TooLarge`, never a panic or an abort. Creating a pool is O(1) and
//!    touches none of the blocks' memory (the grader counts page faults while it creates a pool
//!    of 50,000 blocks of 4 KiB).
//! 2. `alloc(value)` moves `value` into a free block in O(1) and returns a `PoolBox<'_, T>`, or
//!    `None` when every block is in use (a pool never grows and never falls back to the heap).
//!    Every block is cut from the pool's one allocation: with every block of a `Pool<u64>` in use,
//!    the lowest and highest block addresses are at most `(n - 1) x 16` bytes apart, and a block
//!    freed and allocated again stays among them. The most recently freed block is handed out
//!    first (LIFO: it is still warm in the cache), before any never-used block. Live blocks never
//!    overlap and keep their values; `available()` counts freed blocks as available again.
//! 3. Every block is aligned for `T` (`u8` to `u128`, a `#[repr(align(64))]` type), also after it
//!    has been freed and reused. Zero-sized types work too.
//! 4. `PoolBox<T>` derefs (`Deref`, `DerefMut`) to the value. Dropping it drops the value exactly
//!    once and gives the block back; `PoolBox::into_inner(b)` moves the value out without dropping
//!    it and gives the block back. A value that `alloc` could not place is dropped.
//! 5. Any random sequence of allocs and frees behaves like a model of the live values.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 2.4    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `Pool::<T>::with_capacity(n)` makes a pool of `n` blocks in one allocation;
//!   `capacity()` is `n` and `available()` the blocks not in use
//! - [ ] Requirement 2: `alloc(value)` moves `value` into a free block in O(1) and returns a
//!   `PoolBox<'_, T>`, or `None` when every block is in use (a pool never grows and never falls
//!   back to the heap)
//! - [ ] Requirement 3: Every block is aligned for `T` (`u8` to `u128`, a `#[repr(align(64))]`
//!   type), also after it has been freed and reused
//! - [ ] Requirement 4: `PoolBox<T>` derefs (`Deref`, `DerefMut`) to the value
//! - [ ] Requirement 5: Any random sequence of allocs and frees behaves like a model of the live
//!   values
//!
//! ## Notes
//!
//! A fixed-size block pool: one big allocation cut into equal blocks, handed out and taken back
//! in O(1), with a safe handle so that safe code can neither free a block twice nor use it
//! after freeing it.
//!
//! Read README.md for the requirements; `cargo lab test 2.4` grades this file and `cargo run`
//! runs the demo in `main` once your pool works. The grader calls exactly the items below.
//! Remove the `allow` once every argument is used.
#![allow(unused_variables)]

use std::collections::TryReserveError;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::process::ExitCode;

use clap::Parser;

/// Why a pool could not be created.
#[derive(Debug)]
pub enum PoolError {
    /// A pool of zero blocks could never allocate.
    ZeroCapacity,
    /// The blocks do not fit in memory (the size overflows, or the allocator said no).
    TooLarge(TryReserveError),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::ZeroCapacity => write!(f, "a pool needs at least one block"),
            PoolError::TooLarge(e) => write!(f, "cannot allocate the pool: {e}"),
        }
    }
}

impl std::error::Error for PoolError {}

/// A pool of `capacity` blocks, each able to hold one `T`, in ONE allocation. Single-threaded.
pub struct Pool<T> {
    // TODO: the allocation, the head of the intrusive free list, counters. A `Cell` lets
    // `alloc(&self)` update them while `PoolBox`es borrow the pool.
    _todo: PhantomData<T>,
}

impl<T> Pool<T> {
    /// A pool of `capacity` blocks. `capacity == 0` is `PoolError::ZeroCapacity`; a size that
    /// cannot be allocated is `PoolError::TooLarge` (never a panic or an abort). Creating a pool
    /// is O(1): it touches none of the blocks' memory.
    pub fn with_capacity(capacity: usize) -> Result<Pool<T>, PoolError> {
        todo!("reserve capacity blocks at once (Vec::try_reserve_exact), link nothing yet")
    }

    /// Moves `value` into a free block in O(1). `None` when every block is in use.
    pub fn alloc(&self, value: T) -> Option<PoolBox<'_, T>> {
        todo!("pop the free list (or take the next never-used block), write the value")
    }

    /// Number of blocks.
    pub fn capacity(&self) -> usize {
        todo!("the number of blocks")
    }

    /// Number of blocks that `alloc` can still hand out.
    pub fn available(&self) -> usize {
        todo!("blocks not in use")
    }
}

/// Owns one block of a pool and the `T` inside it, like a `Box<T>`. Dropping it drops the value
/// (exactly once) and gives the block back to the pool in O(1).
pub struct PoolBox<'pool, T> {
    // TODO: a pointer to the block, and the pool it goes back to.
    _todo: PhantomData<&'pool Pool<T>>,
}

impl<T> PoolBox<'_, T> {
    /// Moves the value out (without dropping it) and gives the block back.
    pub fn into_inner(this: Self) -> T {
        todo!("read the value out, release the block, make sure Drop does not run")
    }
}

impl<T> Deref for PoolBox<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        todo!("a shared reference to the value in the block")
    }
}

impl<T> DerefMut for PoolBox<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        todo!("a unique reference to the value in the block")
    }
}

impl<T> Drop for PoolBox<'_, T> {
    fn drop(&mut self) {
        todo!("drop the value in place, push the block on the free list")
    }
}

impl<T: fmt::Debug> fmt::Debug for PoolBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PoolBox").field(&**self).finish()
    }
}

/// The demo takes no options; `--help` says what it does.
#[derive(Parser)]
#[command(
    name = "ch2_memory_pool",
    about = "A pool of 4 blocks: fills it, prints the blocks' addresses, frees one and gets the \
             same block back"
)]
struct Args {}

/// A small demo: fill a pool, see the blocks' addresses, free one, get the same block back.
fn main() -> ExitCode {
    Args::parse(); // `--help` exits 0, any argument exits 2
    #[derive(Debug)]
    #[allow(dead_code)] // the fields are only printed
    struct Order {
        id: u64,
        price_cents: u64,
    }
    let pool = match Pool::<Order>::with_capacity(4) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("ch2_memory_pool: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut orders: Vec<_> = (0..4)
        .filter_map(|id| {
            pool.alloc(Order {
                id,
                price_cents: 100 * id,
            })
        })
        .collect();
    for order in &orders {
        println!("{:?} at {:p}", **order, &**order);
    }
    println!(
        "pool full: alloc gives {:?}",
        pool.alloc(Order {
            id: 9,
            price_cents: 0
        })
    );
    let freed = orders.remove(1);
    let address = format!("{:p}", &*freed);
    drop(freed);
    let again = pool.alloc(Order {
        id: 5,
        price_cents: 500,
    });
    if let Some(order) = &again {
        println!(
            "freed block {address} is reused: {:?} at {:p}",
            **order, &**order
        );
    }
    ExitCode::SUCCESS
}
