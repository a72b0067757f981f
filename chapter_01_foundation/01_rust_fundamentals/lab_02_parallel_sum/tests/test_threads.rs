//! Grader for Parallel Sum: which threads really read the data, and whether they ran together.
//!
//! A right sum proves nothing about threads: a "parallel" sum computed on the calling thread
//! returns the same number. So this grader watches the reads themselves, through the kernel.
//! The data lives in pages that the test makes unreadable (`mprotect(PROT_NONE)`) just before
//! the call. The first read of each page then faults, and the test's `SIGSEGV` handler records
//! which thread (`gettid`) read the page, makes the page readable again and lets the read go
//! on. Afterwards the test knows, page by page, the thread that read it first: how many threads
//! did the work, whether the calling thread did it instead, and how the slice was chunked.
//!
//! The first fault of each thread also waits (up to [`TOGETHER`]) until every expected worker
//! has faulted once. Workers that run at the same time all get there at once; workers that run
//! one after the other (a thread joined right after it was spawned, a lock held while summing)
//! never do, and the test reports it.
//!
//! This file is its own test process: the handler and the watched pages belong to it alone, and
//! its tests take a lock so that one watch runs at a time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::Duration;

use rand::RngExt;

labkit::lab_mod!(lab);

/// How long a worker waits at its first read for the other workers to start reading.
const TOGETHER: Duration = Duration::from_secs(3);
/// A call that does not return within this time is hung.
const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_PAGES: usize = 512;
const MAX_READERS: usize = 64;

static ONE_WATCH_AT_A_TIME: Mutex<()> = Mutex::new(());

// The state the fault handler reads and writes: atomics only, as a signal handler must.
static WATCH_START: AtomicUsize = AtomicUsize::new(0);
static WATCH_PAGES: AtomicUsize = AtomicUsize::new(0);
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
/// The thread that read each watched page first (0: not read).
static PAGE_READER: [AtomicI32; MAX_PAGES] = [const { AtomicI32::new(0) }; MAX_PAGES];
/// The distinct threads that faulted, in order of arrival.
static READERS: [AtomicI32; MAX_READERS] = [const { AtomicI32::new(0) }; MAX_READERS];
static READER_COUNT: AtomicUsize = AtomicUsize::new(0);
static EXPECTED_READERS: AtomicUsize = AtomicUsize::new(0);
/// Set when a worker waited [`TOGETHER`] in vain: the workers did not run at the same time.
static NOT_TOGETHER: AtomicBool = AtomicBool::new(false);

fn now_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; it is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Adds `tid` to the readers; true when it was not there yet.
fn first_read_of(tid: i32) -> bool {
    for slot in &READERS {
        match slot.compare_exchange(0, tid, SeqCst, SeqCst) {
            Ok(_) => {
                READER_COUNT.fetch_add(1, SeqCst);
                return true;
            }
            Err(existing) if existing == tid => return false,
            Err(_) => {}
        }
    }
    false
}

/// Waits until every expected worker has read, or [`TOGETHER`] has passed.
fn wait_for_the_others() {
    let deadline = now_ns() + TOGETHER.as_nanos();
    while READER_COUNT.load(SeqCst) < EXPECTED_READERS.load(SeqCst) && !NOT_TOGETHER.load(SeqCst) {
        if now_ns() > deadline {
            NOT_TOGETHER.store(true, SeqCst);
            return;
        }
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 200_000,
        };
        // SAFETY: nanosleep reads one timespec we own; it is async-signal-safe.
        unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
    }
}

extern "C" fn on_fault(_signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t; si_addr is the faulting
    // address for SIGSEGV.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, pages, page_size) = (
        WATCH_START.load(SeqCst),
        WATCH_PAGES.load(SeqCst),
        PAGE_SIZE.load(SeqCst),
    );
    if start == 0 || addr < start || addr >= start + pages * page_size {
        // Not a watched page: a real crash. Back to the default action; the access faults
        // again when this handler returns, and the process dies as it would have.
        // SAFETY: resetting a signal's disposition is async-signal-safe.
        unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
        return;
    }
    let page = (addr - start) / page_size;
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let _ = PAGE_READER[page].compare_exchange(0, tid, SeqCst, SeqCst);
    if first_read_of(tid) {
        wait_for_the_others();
    }
    // SAFETY: the page lies inside the watched range, which is memory of the live slice under
    // test; making it readable again changes no byte of it.
    unsafe {
        libc::mprotect(
            (start + page * page_size) as *mut libc::c_void,
            page_size,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
}

fn install_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        PAGE_SIZE.store(page as usize, SeqCst);
        // SAFETY: all zeroes is a valid sigaction (empty mask, no flags) before we fill it in.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        // SAFETY: installs a handler that only makes async-signal-safe calls.
        let rc = unsafe { libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()) };
        assert!(rc == 0, "sigaction(SIGSEGV) failed");
    });
}

/// The whole pages of a slice, unreadable until a thread reads them; readable again on drop.
struct Watch {
    start: usize,
    pages: usize,
}

impl Watch {
    fn new(data: &[u64], expected_readers: usize) -> Watch {
        let page = PAGE_SIZE.load(SeqCst);
        let begin = (data.as_ptr() as usize).next_multiple_of(page);
        let end = (data.as_ptr() as usize + std::mem::size_of_val(data)) / page * page;
        let pages = (end - begin) / page;
        assert!(
            pages <= MAX_PAGES,
            "the grader watches at most {MAX_PAGES} pages"
        );
        for slot in PAGE_READER.iter().chain(&READERS) {
            slot.store(0, SeqCst);
        }
        READER_COUNT.store(0, SeqCst);
        EXPECTED_READERS.store(expected_readers, SeqCst);
        NOT_TOGETHER.store(false, SeqCst);
        WATCH_PAGES.store(pages, SeqCst);
        WATCH_START.store(begin, SeqCst);
        // SAFETY: [begin, end) holds whole pages inside the slice's own allocation, which
        // outlives the watch (the caller keeps the data until the watch is dropped).
        let rc =
            unsafe { libc::mprotect(begin as *mut libc::c_void, end - begin, libc::PROT_NONE) };
        assert!(rc == 0, "mprotect(PROT_NONE) failed");
        Watch {
            start: begin,
            pages,
        }
    }

    /// The thread that read each page first (0: no thread read it).
    fn readers(&self) -> Vec<i32> {
        PAGE_READER[..self.pages]
            .iter()
            .map(|r| r.load(SeqCst))
            .collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        WATCH_START.store(0, SeqCst);
        let len = self.pages * PAGE_SIZE.load(SeqCst);
        // SAFETY: the same range as in `new`, still inside the live allocation.
        unsafe {
            libc::mprotect(
                self.start as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
    }
}

#[derive(Debug, Clone, Copy)]
enum Way {
    Scoped,
    Mutex,
    Channel,
}

/// The data of one way: a plain vector for the scoped way, an `Arc<[u64]>` for the others.
enum Data {
    Vec(Vec<u64>),
    Arc(Arc<[u64]>),
}

impl Data {
    fn slice(&self) -> &[u64] {
        match self {
            Data::Vec(v) => v,
            Data::Arc(a) => a,
        }
    }
}

/// What one watched call returned and saw.
struct Observed {
    sum: Result<u128, lab::SumError>,
    caller: i32,
    /// The first reader of each watched page, in address order.
    readers: Vec<i32>,
    not_together: bool,
}

/// Calls `way` on `data` with `threads` threads on a thread of its own, with the data watched.
fn watched_call(way: Way, data: Data, threads: usize) -> Observed {
    let watch = Watch::new(data.slice(), threads);
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let caller = unsafe { libc::gettid() };
        let sum = match (&data, way) {
            (Data::Vec(v), _) => lab::sum_scoped(v, threads),
            (Data::Arc(a), Way::Mutex) => lab::sum_mutex(a, threads),
            (Data::Arc(a), _) => lab::sum_channel(a, threads),
        };
        // The data goes back to the test, which frees it after the watch ends.
        let _ = tx.send((sum, caller, data));
    });
    let (sum, caller, data) = match rx.recv_timeout(TIMEOUT) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => {
            panic!("{way:?} sum with {threads} threads did not return within {TIMEOUT:?}")
        }
        Err(RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker sends before it ends"),
        },
    };
    let observed = Observed {
        sum,
        caller,
        readers: watch.readers(),
        not_together: NOT_TOGETHER.load(SeqCst),
    };
    drop(watch);
    drop(data);
    observed
}

/// Several watched calls with random thread counts and chunk sizes; each must be read by one
/// thread per chunk, none of them the caller, all running at the same time.
fn each_chunk_is_read_by_its_own_thread(way: Way) {
    let _serial = ONE_WATCH_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    install_handler();
    let per_page = PAGE_SIZE.load(SeqCst) / 8;
    let mut rng = rand::rng();
    for _ in 0..3 {
        let threads = rng.random_range(2..=4);
        let pages_per_chunk = rng.random_range(4..=12);
        // A multiple of `threads`: every sensible split gives `threads` chunks of whole pages.
        let len = threads * pages_per_chunk * per_page;
        let values: Vec<u64> = (0..len).map(|_| rng.random_range(0..=u64::MAX)).collect();
        let expected: u128 = values.iter().map(|&x| x as u128).sum();
        let data = match way {
            Way::Scoped => Data::Vec(values),
            _ => Data::Arc(Arc::from(values)),
        };
        let seen = watched_call(way, data, threads);
        let what = format!(
            "{way:?} sum of {len} u64 ({} pages) with {threads} threads",
            seen.readers.len()
        );

        assert!(
            seen.sum == Ok(expected),
            "requirement 2: {what} returned {:?}, wanted Ok({expected})",
            seen.sum
        );
        let by_caller = seen.readers.iter().filter(|&&t| t == seen.caller).count();
        assert!(
            by_caller == 0,
            "requirement 2: in the {what}, the calling thread itself read {by_caller} of the {} pages; \
             wanted every chunk summed on a thread of its own",
            seen.readers.len()
        );
        // Each thread's pages, as runs of neighbouring pages.
        let mut runs: BTreeMap<i32, usize> = BTreeMap::new();
        for (i, &tid) in seen.readers.iter().enumerate() {
            if i == 0 || seen.readers[i - 1] != tid {
                *runs.entry(tid).or_default() += 1;
            }
        }
        let workers = runs.len();
        assert!(
            workers == threads,
            "requirement 2: the {what} was read by {workers} thread(s), wanted {threads}: one per chunk"
        );
        if let Some((_, pieces)) = runs.iter().find(|(_, pieces)| **pieces > 1) {
            panic!(
                "requirement 2: in the {what}, one thread read {pieces} separate stretches of the \
                 data, wanted one contiguous chunk per thread (split with chunks, not a stride)"
            );
        }
        assert!(
            !seen.not_together,
            "requirement 2: in the {what}, a worker waited {TOGETHER:?} at its first read and no \
             other worker started reading: the threads ran one after the other, not at the same \
             time (spawn them all before joining any; do not hold a lock while summing)"
        );
    }
}

// Requirement 2: scoped threads, one per chunk, all at once, none of them the caller.
#[test]
fn scoped_threads_read_each_chunk_on_their_own_thread() {
    each_chunk_is_read_by_its_own_thread(Way::Scoped);
}

// Requirement 2: the same for the Arc + Mutex way.
#[test]
fn arc_mutex_threads_read_each_chunk_on_their_own_thread() {
    each_chunk_is_read_by_its_own_thread(Way::Mutex);
}

// Requirement 2: the same for the channel way.
#[test]
fn channel_threads_read_each_chunk_on_their_own_thread() {
    each_chunk_is_read_by_its_own_thread(Way::Channel);
}
