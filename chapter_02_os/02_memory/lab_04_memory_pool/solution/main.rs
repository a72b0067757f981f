//! A fixed-size block pool: one big allocation cut into equal blocks, handed out and taken back
//! in O(1), with a safe handle so that safe code can neither free a block twice nor use it
//! after freeing it.
//!
//! Why bother, when `Box::new` exists? A general-purpose allocator (glibc's malloc) must serve
//! every size, from any thread, and give memory back to the system; each call pays for that
//! generality. A pool serves one size, from one thread, and never gives back: allocating is
//! popping the head of a list, freeing is pushing it back. Three ideas carry the code:
//!
//! - **The free list lives inside the free blocks.** A free block holds no value, so its first
//!   bytes store the address of the next free block: an *intrusive* list, which costs no memory
//!   of its own. The `Slot<T>` union says exactly that: a slot is either a link or a `T`, and is
//!   as big and as aligned as the larger of the two.
//! - **Fresh blocks are handed out in order, without a list.** A new pool links nothing: slots
//!   past `fresh` have never been used, so the next one is just `fresh + 1`. Creating a pool is
//!   O(1) and touches no memory, so the kernel maps the pool's pages only when blocks are used
//!   (lab 2.3: page faults).
//! - **Ownership does the bookkeeping.** `alloc` returns a `PoolBox<'pool, T>` that owns one
//!   block and borrows the pool. Dropping it drops the value and pushes the block back, exactly
//!   once; the borrow checker refuses to drop the pool while any `PoolBox` lives.

use std::cell::Cell;
use std::collections::TryReserveError;
use std::fmt;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ops::{Deref, DerefMut};
use std::process::ExitCode;
use std::ptr::{self, NonNull};

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

/// One block of the pool: a link in the free list while free, a `T` while in use. `repr(C)`
/// puts both fields at offset 0, so a pointer to the slot is a pointer to its value.
#[repr(C)]
union Slot<T> {
    next_free: Option<NonNull<Slot<T>>>,
    value: ManuallyDrop<T>,
}

/// A pool of `capacity` blocks, each able to hold one `T`. Single-threaded: it is neither `Send`
/// nor `Sync` (its bookkeeping is in `Cell`s).
pub struct Pool<T> {
    /// The one allocation: `capacity` slots, never moved, freed when the pool drops.
    slots: NonNull<Slot<T>>,
    capacity: usize,
    /// Head of the intrusive list of freed blocks.
    free: Cell<Option<NonNull<Slot<T>>>>,
    /// Slots `fresh..capacity` have never been handed out.
    fresh: Cell<usize>,
    in_use: Cell<usize>,
}

impl<T> Pool<T> {
    /// A pool of `capacity` blocks, in one allocation. Touches none of the blocks' memory.
    pub fn with_capacity(capacity: usize) -> Result<Pool<T>, PoolError> {
        if capacity == 0 {
            return Err(PoolError::ZeroCapacity);
        }
        // `try_reserve_exact` reports an impossible size as an error instead of aborting the
        // process, and allocates without initializing: the pages stay untouched.
        let mut storage: Vec<MaybeUninit<Slot<T>>> = Vec::new();
        storage
            .try_reserve_exact(capacity)
            .map_err(PoolError::TooLarge)?;
        // SAFETY: `MaybeUninit` needs no initialization, and `capacity` slots are reserved.
        unsafe { storage.set_len(capacity) };
        let slots = Box::into_raw(storage.into_boxed_slice()).cast::<Slot<T>>();
        Ok(Pool {
            // SAFETY: a Box is never null.
            slots: unsafe { NonNull::new_unchecked(slots) },
            capacity,
            free: Cell::new(None),
            fresh: Cell::new(0),
            in_use: Cell::new(0),
        })
    }

    /// Moves `value` into a free block. `None` when every block is in use (`value` is dropped).
    pub fn alloc(&self, value: T) -> Option<PoolBox<'_, T>> {
        let slot = if let Some(slot) = self.free.get() {
            // SAFETY: every slot in the free list holds a link in `next_free`.
            self.free.set(unsafe { (*slot.as_ptr()).next_free });
            slot
        } else if self.fresh.get() < self.capacity {
            let index = self.fresh.get();
            self.fresh.set(index + 1);
            // SAFETY: index < capacity: the slot is inside our allocation.
            unsafe { self.slots.add(index) }
        } else {
            return None;
        };
        let value_ptr = slot.cast::<T>();
        // SAFETY: the slot is free, inside the allocation, and big and aligned enough for a `T`
        // (the union has the size and alignment of its largest field).
        unsafe { value_ptr.as_ptr().write(value) };
        self.in_use.set(self.in_use.get() + 1);
        Some(PoolBox {
            value: value_ptr,
            pool: self,
        })
    }

    /// Number of blocks.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of blocks that `alloc` can still hand out.
    pub fn available(&self) -> usize {
        self.capacity - self.in_use.get()
    }

    /// Pushes a block whose value is gone back on the free list.
    ///
    /// # Safety
    /// `value` came from `alloc` on this pool, and its value has been dropped or moved out.
    unsafe fn release(&self, value: NonNull<T>) {
        let slot = value.cast::<Slot<T>>();
        let link = Slot {
            next_free: self.free.get(),
        };
        // SAFETY: the caller promises the slot is ours and its value gone: it may hold a link.
        unsafe { slot.as_ptr().write(link) };
        self.free.set(Some(slot));
        self.in_use.set(self.in_use.get() - 1);
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        // No `PoolBox` is alive: each one borrows the pool. A `PoolBox` that was leaked with
        // `mem::forget` leaks its value (its destructor never runs), as `Box` does.
        let slice = ptr::slice_from_raw_parts_mut(
            self.slots.as_ptr().cast::<MaybeUninit<Slot<T>>>(),
            self.capacity,
        );
        // SAFETY: this is the boxed slice made in `with_capacity`, freed exactly once, here.
        // Its elements are `MaybeUninit`, so no destructor runs on them.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// Owns one block of a pool and the `T` inside it, like a `Box<T>`. Dropping it drops the value
/// and gives the block back to the pool.
pub struct PoolBox<'pool, T> {
    value: NonNull<T>,
    pool: &'pool Pool<T>,
}

impl<T> PoolBox<'_, T> {
    /// Moves the value out and gives the block back.
    pub fn into_inner(this: Self) -> T {
        // The block must not be released twice: `ManuallyDrop` keeps our `Drop` from running.
        let this = ManuallyDrop::new(this);
        // SAFETY: the block holds an initialized `T`; it is read once and never used again.
        let value = unsafe { this.value.as_ptr().read() };
        // SAFETY: the block came from this pool and its value was just moved out.
        unsafe { this.pool.release(this.value) };
        value
    }
}

impl<T> Deref for PoolBox<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the block holds an initialized `T` for as long as this handle lives.
        unsafe { self.value.as_ref() }
    }
}

impl<T> DerefMut for PoolBox<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only access.
        unsafe { self.value.as_mut() }
    }
}

impl<T> Drop for PoolBox<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the block holds an initialized `T` that nobody else can reach; after this
        // line it is dropped and never used again. (If `T::drop` panics, the block is leaked,
        // which is safe.)
        unsafe { ptr::drop_in_place(self.value.as_ptr()) };
        // SAFETY: the block came from this pool and its value was just dropped.
        unsafe { self.pool.release(self.value) };
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
