//! io_uring: an echo server on a submission and a completion queue we map ourselves.
//!
//! `ch7_io_uring [--addr HOST:PORT]` sends back every byte each client sends, to ten thousand
//! clients at once, on one thread, with one system call for many operations.
//!
//! Lab 7.6's server asks the kernel "which sockets are ready?" (readiness), then does the I/O
//! itself: a `recv` and a `send` per message, two system calls at least. This one hands the
//! kernel the operations themselves, "receive into this buffer", "send these bytes"
//! (completion), and later reads what became of them. Requests and answers travel through two
//! rings of memory shared with the kernel, so a single `io_uring_enter` submits every request
//! queued since the last one and waits for answers: well under one system call per message.
//!
//! Four layers, one module each:
//!
//! 1. [`sys`]: the kernel's ABI, written down by hand from `<linux/io_uring.h>`: the structs
//!    `io_uring_params`, `io_uring_sqe`, `io_uring_cqe` and the two ring-offset tables, their
//!    layouts checked at compile time, and the two system calls, which glibc does not wrap.
//! 2. [`ring`]: the shared memory. `io_uring_setup` makes the ring, `mmap` maps it, and
//!    [`Ring`] pushes submission entries (SQEs), submits them and waits, and reaps completion
//!    entries (CQEs), with the memory ordering each shared index needs.
//! 3. [`op`]: what travels in `user_data`: which operation of which connection completed.
//! 4. [`server`]: the echo server. A connection owns one buffer, and while the kernel holds a
//!    recv or a send on it, nobody else touches it: the buffer belongs to the ring until the
//!    completion has been reaped.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

pub use self::ring::Ring;
pub use self::server::serve;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we accept them (std, mio, tokio: 128).
pub const BACKLOG: libc::c_int = 1024;
/// Submission queue entries. Far fewer than the connections, on purpose: the queue fills, and
/// the server must submit and go on; the completion queue (twice this, the kernel's default)
/// overflows under a burst, and a multishot accept stops and must be re-armed.
pub const RING_ENTRIES: u32 = 256;

const USAGE: &str = "usage: ch7_io_uring [--addr HOST:PORT]";

// ---------------------------------------------------------------------------------------------

/// The kernel's ABI for io_uring, from `<linux/io_uring.h>` (the `linux-libc-dev` package). The
/// `libc` crate has the system call numbers but not these structs, so we write them down: each C
/// union becomes one field named after the member this server uses, and the compile-time
/// checks below hold every struct to the kernel's size and offsets.
pub mod sys {
    use std::io;
    use std::mem::{offset_of, size_of};
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};

    /// `enum io_uring_op`: the operations this server submits.
    pub const IORING_OP_ACCEPT: u8 = 13;
    pub const IORING_OP_SEND: u8 = 26;
    pub const IORING_OP_RECV: u8 = 27;
    /// In an accept's `ioprio`: one SQE, one CQE per accepted connection (Linux 5.19).
    pub const IORING_ACCEPT_MULTISHOT: u16 = 1 << 0;
    /// In a CQE's `flags`: the SQE that made this CQE goes on making more. A multishot CQE
    /// without it is the last one: the operation has stopped.
    pub const IORING_CQE_F_MORE: u32 = 1 << 1;
    /// `io_uring_enter` flag: wait until `min_complete` CQEs are there.
    pub const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
    /// `io_uring_params.features`: a CQE that finds the completion queue full waits in a list
    /// in the kernel (flushed by the next `io_uring_enter` with GETEVENTS) instead of being
    /// dropped (Linux 5.5).
    pub const IORING_FEAT_NODROP: u32 = 1 << 1;
    /// `mmap` offsets: which of the ring's three areas to map.
    pub const IORING_OFF_SQ_RING: libc::off_t = 0;
    pub const IORING_OFF_CQ_RING: libc::off_t = 0x800_0000;
    pub const IORING_OFF_SQES: libc::off_t = 0x1000_0000;

    /// `struct io_sqring_offsets`: where the submission ring's fields are in its mapping.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct SqringOffsets {
        pub head: u32,
        pub tail: u32,
        pub ring_mask: u32,
        pub ring_entries: u32,
        pub flags: u32,
        pub dropped: u32,
        pub array: u32,
        pub resv1: u32,
        pub user_addr: u64,
    }

    /// `struct io_cqring_offsets`: the same for the completion ring.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct CqringOffsets {
        pub head: u32,
        pub tail: u32,
        pub ring_mask: u32,
        pub ring_entries: u32,
        pub overflow: u32,
        pub cqes: u32,
        pub flags: u32,
        pub resv1: u32,
        pub user_addr: u64,
    }

    /// `struct io_uring_params`: what we ask of `io_uring_setup` (flags, zero here), and what it
    /// answers: the sizes it chose, its features, and the offset tables.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Params {
        pub sq_entries: u32,
        pub cq_entries: u32,
        pub flags: u32,
        pub sq_thread_cpu: u32,
        pub sq_thread_idle: u32,
        pub features: u32,
        pub wq_fd: u32,
        pub resv: [u32; 3],
        pub sq_off: SqringOffsets,
        pub cq_off: CqringOffsets,
    }

    /// `struct io_uring_sqe`, 64 bytes: one request. The C struct is mostly unions; each field
    /// here is named after the member this server uses (`off` is also `addr2`, `op_flags` is
    /// `msg_flags` for a send and `accept_flags` for an accept).
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Sqe {
        pub opcode: u8,
        pub flags: u8,
        pub ioprio: u16,
        pub fd: i32,
        pub off: u64,
        pub addr: u64,
        pub len: u32,
        pub op_flags: u32,
        pub user_data: u64,
        pub buf_index: u16,
        pub personality: u16,
        pub splice_fd_in: i32,
        pub addr3: u64,
        pub pad2: u64,
    }

    /// `struct io_uring_cqe`, 16 bytes: one answer. `res` is what the system call would have
    /// returned, except that an error is `-errno` here, not -1 plus `errno`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Cqe {
        pub user_data: u64,
        pub res: i32,
        pub flags: u32,
    }

    // The kernel reads and writes these through raw memory: a wrong size or offset is silent
    // corruption, so the build fails instead.
    const _: () = {
        assert!(size_of::<SqringOffsets>() == 40);
        assert!(size_of::<CqringOffsets>() == 40);
        assert!(size_of::<Params>() == 120);
        assert!(offset_of!(Params, sq_off) == 40);
        assert!(offset_of!(Params, cq_off) == 80);
        assert!(size_of::<Sqe>() == 64);
        assert!(offset_of!(Sqe, fd) == 4);
        assert!(offset_of!(Sqe, addr) == 16);
        assert!(offset_of!(Sqe, len) == 24);
        assert!(offset_of!(Sqe, op_flags) == 28);
        assert!(offset_of!(Sqe, user_data) == 32);
        assert!(offset_of!(Sqe, buf_index) == 40);
        assert!(size_of::<Cqe>() == 16);
        assert!(offset_of!(Cqe, res) == 8);
    };

    /// `io_uring_setup(2)`: a new ring of at least `entries` SQEs. The kernel fills `params`.
    pub fn io_uring_setup(entries: u32, params: &mut Params) -> io::Result<OwnedFd> {
        // SAFETY: the kernel reads and writes one `io_uring_params` through the pointer, and
        // `params` is exactly that, live and exclusively ours for the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_io_uring_setup,
                libc::c_long::from(entries),
                params as *mut Params,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd (close-on-exec, like every io_uring fd) that nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    /// `io_uring_enter(2)`: submits `to_submit` SQEs from the queue's head, then, with
    /// [`IORING_ENTER_GETEVENTS`], sleeps until at least `min_complete` CQEs are there. Returns
    /// how many SQEs the kernel took.
    pub fn io_uring_enter(
        fd: RawFd,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
    ) -> io::Result<u32> {
        // SAFETY: no argument points at memory: the signal mask is null and its size 0. The
        // SQEs the kernel reads were published by the caller (see `Ring::push`).
        let n = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                libc::c_long::from(fd),
                libc::c_long::from(to_submit),
                libc::c_long::from(min_complete),
                libc::c_long::from(flags),
                std::ptr::null::<libc::sigset_t>(),
                0 as libc::c_long,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as u32)
    }
}

// ---------------------------------------------------------------------------------------------

/// The ring: memory shared with the kernel, and the rules for touching it.
///
/// Each queue is a power-of-two array plus a head and a tail that only grow (wrapping at 2^32;
/// `index & mask` is the slot). The producer writes entries, then moves the tail; the consumer
/// reads entries, then moves the head. We produce SQEs and the kernel consumes them; the kernel
/// produces CQEs and we consume them. Both sides run at once on different CPUs, so:
///
/// - the producer stores its tail with `Release`: the entries written before are visible to
///   whoever loads that tail with `Acquire`;
/// - the consumer stores its head with `Release` once it has read the entries: the producer,
///   loading the head with `Acquire`, may reuse those slots.
///
/// This is liburing's `io_uring_smp_store_release` / `io_uring_smp_load_acquire`, and the
/// kernel's `smp_store_release` / `smp_load_acquire` on the other side.
pub mod ring {
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::sys::{self, Cqe, Params, Sqe};

    /// One `mmap` of the ring fd, unmapped on drop.
    struct Mmap {
        ptr: NonNull<u8>,
        len: usize,
    }

    impl Mmap {
        fn new(fd: &OwnedFd, len: usize, offset: libc::off_t) -> io::Result<Mmap> {
            // SAFETY: a new shared mapping of the ring; no existing memory is touched.
            // MAP_POPULATE maps the pages now rather than on the first touch.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd.as_raw_fd(),
                    offset,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let ptr = NonNull::new(ptr.cast()).expect("mmap never returns null on success");
            Ok(Mmap { ptr, len })
        }

        /// A `T` at byte `offset` of the mapping, where the kernel's offset tables put it.
        fn at<T>(&self, offset: u32) -> *mut T {
            debug_assert!(offset as usize + size_of::<T>() <= self.len);
            // SAFETY: the kernel's offsets lie inside the mapping (checked in debug builds).
            unsafe { self.ptr.as_ptr().add(offset as usize).cast() }
        }
    }

    impl Drop for Mmap {
        fn drop(&mut self) {
            // SAFETY: our own mapping, unmapped once; the pointers into it die with the Ring.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }

    /// A ring of our own: setup, three mappings, and the two queues.
    pub struct Ring {
        // Pointers into the mappings below: valid as long as the Ring lives.
        sq_head: *const AtomicU32,
        sq_tail: *const AtomicU32,
        sq_mask: u32,
        sq_entries: u32,
        sqes: *mut Sqe,
        /// Our tail: SQEs written up to here. The shared tail catches up in `enter`.
        sq_local_tail: u32,
        cq_head: *const AtomicU32,
        cq_tail: *const AtomicU32,
        cq_mask: u32,
        cqes: *const Cqe,
        _maps: [Mmap; 3],
        fd: OwnedFd,
    }

    impl Ring {
        /// `io_uring_setup` with `entries` SQEs (the kernel makes the CQ twice as large), then
        /// the three areas mapped: the SQ ring (head, tail, mask, the index array), the CQ ring
        /// (head, tail, mask, the CQEs themselves) and the SQE array.
        pub fn new(entries: u32) -> io::Result<Ring> {
            let mut params = Params::default();
            let fd = sys::io_uring_setup(entries, &mut params)?;
            if params.features & sys::IORING_FEAT_NODROP == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this kernel may drop completions when the ring is full (no \
                     IORING_FEAT_NODROP): Linux 5.5 or newer is needed",
                ));
            }
            let (sq_off, cq_off) = (params.sq_off, params.cq_off);
            let sq_len = sq_off.array as usize + params.sq_entries as usize * size_of::<u32>();
            let cq_len = cq_off.cqes as usize + params.cq_entries as usize * size_of::<Cqe>();
            let sqes_len = params.sq_entries as usize * size_of::<Sqe>();
            // Since Linux 5.4 (IORING_FEAT_SINGLE_MMAP) the two rings share their pages and one
            // mapping would do; mapping each at its own offset works everywhere.
            let sq_map = Mmap::new(&fd, sq_len, sys::IORING_OFF_SQ_RING)?;
            let cq_map = Mmap::new(&fd, cq_len, sys::IORING_OFF_CQ_RING)?;
            let sqe_map = Mmap::new(&fd, sqes_len, sys::IORING_OFF_SQES)?;

            // The SQ ring holds indexes into the SQE array, not SQEs: a program could fill SQEs
            // in any order. We map slot i to SQE i once, and write SQE i for slot i.
            let array: *mut u32 = sq_map.at(sq_off.array);
            for i in 0..params.sq_entries {
                // SAFETY: `array` has `sq_entries` u32s inside the mapping; the kernel reads
                // them only for published slots, and none is published yet.
                unsafe { array.add(i as usize).write(i) };
            }
            // SAFETY: the ring masks are plain u32s the kernel wrote before setup returned.
            let (sq_mask, cq_mask) = unsafe {
                (
                    *sq_map.at::<u32>(sq_off.ring_mask),
                    *cq_map.at::<u32>(cq_off.ring_mask),
                )
            };
            // SAFETY: the kernel's tail of a fresh ring; only we move it from now on.
            let sq_local_tail =
                unsafe { (*sq_map.at::<AtomicU32>(sq_off.tail)).load(Ordering::Relaxed) };
            Ok(Ring {
                sq_head: sq_map.at(sq_off.head),
                sq_tail: sq_map.at(sq_off.tail),
                sq_mask,
                sq_entries: params.sq_entries,
                sqes: sqe_map.at(0),
                sq_local_tail,
                cq_head: cq_map.at(cq_off.head),
                cq_tail: cq_map.at(cq_off.tail),
                cq_mask,
                cqes: cq_map.at(cq_off.cqes),
                _maps: [sq_map, cq_map, sqe_map],
                fd,
            })
        }

        /// The shared index at `ptr`, one of the Ring's head or tail pointers.
        fn shared(&self, ptr: *const AtomicU32) -> &AtomicU32 {
            // SAFETY: every head and tail pointer points into a mapping the Ring owns, aligned
            // (the kernel's offsets are), and the reference cannot outlive `&self`.
            unsafe { &*ptr }
        }

        /// SQEs written and not yet taken by the kernel (published or not).
        fn queued(&self) -> u32 {
            // Acquire: the kernel has finished reading the SQEs before the head it moved.
            let head = self.shared(self.sq_head).load(Ordering::Acquire);
            self.sq_local_tail.wrapping_sub(head)
        }

        /// Queues one request. When the submission queue is full, first hands the kernel
        /// everything queued (one `io_uring_enter`, no waiting), which empties it: the ring is
        /// smaller than the work, and a request is never dropped nor written over.
        ///
        /// # Safety
        ///
        /// The memory the SQE points at (a recv's buffer, a send's bytes) is the kernel's from
        /// now until the CQE of this request has been reaped: it must stay allocated, and
        /// nothing else may read it (for a recv) or write it (for either) meanwhile. No borrow
        /// can express "until the kernel says so"; that is why this is the unsafe step.
        pub unsafe fn push(&mut self, sqe: Sqe) -> io::Result<()> {
            while self.queued() == self.sq_entries {
                if self.enter(0)? == 0 {
                    return Err(io::Error::other(
                        "the submission queue is full and the kernel takes nothing from it",
                    ));
                }
            }
            let slot = self.sq_local_tail & self.sq_mask;
            // SAFETY: `slot` is inside the SQE array, and the kernel is done with it: fewer than
            // `sq_entries` SQEs are queued (the Acquire load of its head above), so this slot
            // is not one it may still read.
            unsafe { self.sqes.add(slot as usize).write(sqe) };
            self.sq_local_tail = self.sq_local_tail.wrapping_add(1);
            Ok(())
        }

        /// Submits every queued SQE and, if `min_complete` > 0, sleeps until that many CQEs
        /// are there: the one system call of each turn of the event loop. Returns how many
        /// SQEs the kernel took.
        pub fn submit_and_wait(&mut self, min_complete: u32) -> io::Result<u32> {
            self.enter(min_complete)
        }

        fn enter(&mut self, min_complete: u32) -> io::Result<u32> {
            // Release: the SQEs written before this store are visible to the kernel when it
            // loads the tail (with Acquire) and reads them.
            self.shared(self.sq_tail)
                .store(self.sq_local_tail, Ordering::Release);
            // GETEVENTS also flushes completions that overflowed into the kernel's list
            // (IORING_FEAT_NODROP) back into the ring as it empties.
            let flags = if min_complete > 0 {
                sys::IORING_ENTER_GETEVENTS
            } else {
                0
            };
            loop {
                match sys::io_uring_enter(self.fd.as_raw_fd(), self.queued(), min_complete, flags) {
                    // A signal (a debugger attaching, SIGSTOP then SIGCONT): the SQEs not
                    // taken are still queued, and `queued()` counts them again.
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    result => return result,
                }
            }
        }

        /// Copies every CQE that is there into `out`, then gives the slots back to the kernel.
        /// The whole ring is free again before the caller handles a single one, so the CQEs of
        /// the requests it pushes meanwhile (a send often completes within the next submit)
        /// find room.
        pub fn reap(&mut self, out: &mut Vec<Cqe>) {
            // Only we move the CQ head: our own last store is what it holds.
            let mut head = self.shared(self.cq_head).load(Ordering::Relaxed);
            // Acquire: the CQEs the kernel wrote before moving its tail are visible now.
            let tail = self.shared(self.cq_tail).load(Ordering::Acquire);
            while head != tail {
                // SAFETY: slots between head and tail hold CQEs the kernel has published, and it
                // will not write them again until we move the head past them.
                out.push(unsafe { *self.cqes.add((head & self.cq_mask) as usize) });
                head = head.wrapping_add(1);
            }
            // Release: our reads of those CQEs are done before the kernel reuses the slots.
            self.shared(self.cq_head).store(head, Ordering::Release);
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// What a completion is about. The kernel copies an SQE's `user_data` into its CQE untouched,
/// and CQEs come in any order: this tag is how the server finds the connection and the step.
pub mod op {
    /// One request in flight. A connection has at most one at a time, and its slot is freed
    /// only when none is in flight, so a slot number in a CQE always means the connection that
    /// made the request (a runtime with cancellation would add a generation count).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Op {
        /// The multishot accept on the listener.
        Accept,
        /// A recv into connection `slot`'s buffer.
        Recv(usize),
        /// A send from connection `slot`'s buffer.
        Send(usize),
    }

    const TAG_BITS: u32 = 2;
    const ACCEPT: u64 = 1;
    const RECV: u64 = 2;
    const SEND: u64 = 3;

    impl Op {
        /// The slot in the high bits, the kind in the two low ones.
        pub fn user_data(self) -> u64 {
            match self {
                Op::Accept => ACCEPT,
                Op::Recv(slot) => (slot as u64) << TAG_BITS | RECV,
                Op::Send(slot) => (slot as u64) << TAG_BITS | SEND,
            }
        }

        pub fn from_user_data(data: u64) -> Option<Op> {
            let slot = (data >> TAG_BITS) as usize;
            match data & ((1 << TAG_BITS) - 1) {
                ACCEPT => Some(Op::Accept),
                RECV => Some(Op::Recv(slot)),
                SEND => Some(Op::Send(slot)),
                _ => None,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// The echo server on the ring.
pub mod server {
    use std::io;
    use std::net::TcpListener;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    use ch7_support::Slab;

    use super::RING_ENTRIES;
    use super::op::Op;
    use super::ring::Ring;
    use super::sys::{self, Cqe, Sqe};

    /// Each connection's buffer: the price of completion I/O. A recv in flight holds its buffer
    /// even while no byte comes, so 10,000 connections hold 80 MB (`VmHWM`), where lab 7.6's
    /// server shares one 64 KiB buffer. Provided buffers, a pool the kernel picks from only
    /// when data arrives, bring that back down ("Going further" in the README).
    pub const BUF_SIZE: usize = 8 * 1024;

    /// One client. At every moment exactly one request of it is in flight: a recv into `buf`
    /// when `sent == len`, else a send of `buf[sent..len]`. So the server never reads a
    /// client whose echo is not out yet (backpressure), and `buf` has one user at a time.
    struct Connection {
        fd: OwnedFd,
        /// Lent to the kernel while a request is in flight. A `Box`'s bytes do not move when
        /// the slab's `Vec` grows and moves the `Connection`: the address stays valid.
        buf: Box<[u8]>,
        len: usize,
        sent: usize,
    }

    impl Connection {
        fn new(fd: OwnedFd) -> Connection {
            Connection {
                fd,
                buf: vec![0; BUF_SIZE].into_boxed_slice(),
                len: 0,
                sent: 0,
            }
        }

        /// A recv into the whole buffer.
        fn recv(&mut self, slot: usize) -> Sqe {
            Sqe {
                opcode: sys::IORING_OP_RECV,
                fd: self.fd.as_raw_fd(),
                addr: self.buf.as_mut_ptr() as u64,
                len: self.buf.len() as u32,
                user_data: Op::Recv(slot).user_data(),
                ..Sqe::default()
            }
        }

        /// A send of what the client has not been sent yet.
        fn send(&self, slot: usize) -> Sqe {
            let rest = &self.buf[self.sent..self.len];
            Sqe {
                opcode: sys::IORING_OP_SEND,
                fd: self.fd.as_raw_fd(),
                addr: rest.as_ptr() as u64,
                len: rest.len() as u32,
                user_data: Op::Send(slot).user_data(),
                ..Sqe::default()
            }
        }
    }

    /// The server's state: the ring, the listener's fd, the connections.
    struct Server {
        ring: Ring,
        listener: RawFd,
        conns: Slab<Connection>,
    }

    /// The event loop: submit everything queued and wait for one completion, reap them all,
    /// handle each (which queues the next requests), again. Returns only if the ring itself
    /// fails; a connection's error closes that connection only.
    pub fn serve(listener: TcpListener) -> io::Result<()> {
        let mut server = Server {
            ring: Ring::new(RING_ENTRIES)?,
            listener: listener.as_raw_fd(),
            conns: Slab::default(),
        };
        server.arm_accept()?;
        let mut cqes = Vec::with_capacity(2 * RING_ENTRIES as usize);
        loop {
            // One system call for the whole batch: every SQE queued by the last round goes in,
            // and we sleep until at least one CQE is there.
            server.ring.submit_and_wait(1)?;
            server.ring.reap(&mut cqes);
            for cqe in cqes.drain(..) {
                server.complete(cqe)?;
            }
        }
    }

    impl Server {
        /// One accept SQE for every connection to come: `IORING_ACCEPT_MULTISHOT`. The new
        /// sockets are close-on-exec, and blocking: the ring never blocks on them, it waits for
        /// them inside the kernel.
        fn arm_accept(&mut self) -> io::Result<()> {
            let sqe = Sqe {
                opcode: sys::IORING_OP_ACCEPT,
                ioprio: sys::IORING_ACCEPT_MULTISHOT,
                fd: self.listener,
                op_flags: libc::SOCK_CLOEXEC as u32,
                user_data: Op::Accept.user_data(),
                ..Sqe::default()
            };
            // SAFETY: no buffer: the peer's address is not asked for (addr and addr2 are null).
            unsafe { self.ring.push(sqe) }
        }

        fn complete(&mut self, cqe: Cqe) -> io::Result<()> {
            match Op::from_user_data(cqe.user_data) {
                Some(Op::Accept) => self.accepted(cqe),
                Some(Op::Recv(slot)) => self.received(slot, cqe.res),
                Some(Op::Send(slot)) => self.sent(slot, cqe.res),
                None => Err(io::Error::other(format!(
                    "a completion no request of ours asked for: {cqe:?}"
                ))),
            }
        }

        /// A new connection (`res` is its fd), or an accept that failed. Without
        /// `IORING_CQE_F_MORE` the multishot accept has stopped, for an error or because the
        /// completion queue was full when it had a CQE to post: arm a new one, or no client
        /// is ever accepted again.
        fn accepted(&mut self, cqe: Cqe) -> io::Result<()> {
            if cqe.res >= 0 {
                // SAFETY: the kernel made this fd for us; nobody else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(cqe.res) };
                let slot = self.conns.insert(Connection::new(fd));
                self.push_recv(slot)?;
            } else {
                report("accept", cqe.res);
            }
            if cqe.flags & sys::IORING_CQE_F_MORE == 0 {
                self.arm_accept()?;
            }
            Ok(())
        }

        /// A recv completed: `res` bytes are in the buffer (send them back), or 0 (the client
        /// half-closed: everything it sent is echoed, so close), or `-errno`.
        fn received(&mut self, slot: usize, res: i32) -> io::Result<()> {
            let Some(conn) = self.conns.get_mut(slot) else {
                return Ok(());
            };
            match res {
                n if n > 0 => {
                    conn.len = n as usize;
                    conn.sent = 0;
                    self.push_send(slot)
                }
                0 => {
                    // Closing drops the buffer too: fine, no request of this connection is in
                    // flight any more. Our FIN follows the bytes still in the send buffer.
                    self.conns.remove(slot);
                    Ok(())
                }
                e if e == -libc::EINTR || e == -libc::EAGAIN => self.push_recv(slot),
                e => {
                    report("recv", e);
                    self.conns.remove(slot);
                    Ok(())
                }
            }
        }

        /// A send completed: `res` bytes went out. A stream socket may take fewer than asked
        /// (its send buffer had less room): send the rest, from where it stopped, before the
        /// buffer is used for anything else.
        fn sent(&mut self, slot: usize, res: i32) -> io::Result<()> {
            let Some(conn) = self.conns.get_mut(slot) else {
                return Ok(());
            };
            match res {
                n if n >= 0 => {
                    conn.sent += n as usize;
                    if conn.sent < conn.len {
                        self.push_send(slot)
                    } else {
                        self.push_recv(slot)
                    }
                }
                e if e == -libc::EINTR || e == -libc::EAGAIN => self.push_send(slot),
                e => {
                    report("send", e);
                    self.conns.remove(slot);
                    Ok(())
                }
            }
        }

        fn push_recv(&mut self, slot: usize) -> io::Result<()> {
            let conn = self.conns.get_mut(slot).expect("a live connection");
            let sqe = conn.recv(slot);
            // SAFETY: the buffer is the connection's, and nothing touches it until this recv's
            // CQE: a connection has one request in flight, and is removed only after its CQE.
            unsafe { self.ring.push(sqe) }
        }

        fn push_send(&mut self, slot: usize) -> io::Result<()> {
            let conn = self.conns.get_mut(slot).expect("a live connection");
            let sqe = conn.send(slot);
            // SAFETY: as for `push_recv`: `buf[sent..len]` stays as it is until the send's CQE.
            unsafe { self.ring.push(sqe) }
        }
    }

    /// Logs a failed request, except the ordinary ways for a client to leave.
    fn report(what: &str, res: i32) {
        if res != -libc::ECONNRESET && res != -libc::EPIPE {
            eprintln!(
                "ch7_io_uring: {what}: {}",
                io::Error::from_raw_os_error(-res)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The program around it.

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
    /// The ring failed (or io_uring is not available): exit code 1.
    Ring(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ServerError::Ring(source) => write!(f, "io_uring: {source}"),
        }
    }
}

/// The command line: `ch7_io_uring [--addr HOST:PORT]`.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_io_uring",
    about = "An echo server on io_uring: one thread, one system call for many operations"
)]
pub struct Args {
    /// Where to listen (port 0: the kernel picks a free one; print the bound address)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
}

/// Raises the fd limit, binds, prints `listening on <addr>`, serves.
pub fn run(addr: SocketAddr) -> Result<(), ServerError> {
    if let Err(e) = ch7_support::raise_fd_limit() {
        eprintln!("ch7_io_uring: cannot raise the open-file limit: {e}");
    }
    let listener = ch7_support::net::listen(addr, BACKLOG)
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    println!("listening on {local}");
    serve(listener).map_err(ServerError::Ring)
}

fn main() -> ExitCode {
    let addr = match ch7_support::cli::parse_args::<Args>(USAGE) {
        Ok(args) => args.addr,
        Err(code) => return code,
    };
    match run(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch7_io_uring: {e}");
            ExitCode::from(1)
        }
    }
}
