//! epoll through FFI: lab 7.6's answer, packaged.
//!
//! Two layers. **The FFI**: `struct epoll_event` and the three system calls, declared by hand
//! from `<sys/epoll.h>` rather than taken from the `libc` crate, so that what crosses the
//! boundary is in plain sight: ints, and pointers to that struct. **The safe wrapper** on top,
//! shaped like mio's epoll selector: [`Epoll`] owns the epoll fd, a [`Token`] travels in the
//! event's 64-bit `data`, [`Events`] is a buffer allocated once and refilled by every wait, and
//! no `unsafe` escapes this file. Unlike mio, which always registers edge-triggered, each
//! registration picks its [`Trigger`].
//!
//! ```no_run
//! use std::time::Duration;
//! use ch7_support::{Epoll, Events, Interest, Token, Trigger};
//!
//! # fn main() -> std::io::Result<()> {
//! let listener = ch7_support::net::listen("127.0.0.1:0".parse().unwrap(), 1024)?;
//! let epoll = Epoll::new()?;
//! epoll.add(&listener, Token(0), Interest::READABLE, Trigger::Edge)?;
//! let mut events = Events::with_capacity(256);
//! epoll.wait(&mut events, Some(Duration::from_millis(100)))?;
//! for event in events.iter() {
//!     assert_eq!(event.token(), Token(0)); // a client is waiting: accept until EAGAIN
//! }
//! # Ok(())
//! # }
//! ```

use std::io;
use std::ops::BitOr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_int;
use std::ptr;
use std::time::Duration;

use crate::cvt;

// ---------------------------------------------------------------------------------------------
// What the caller asks for.

/// A number attached to a registration; the kernel hands it back with every event (in the
/// event's `data`), so the caller knows which fd is ready without a lookup: typically the
/// index of a slot in a `Vec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub usize);

/// Which readiness a registration waits for. Combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    readable: bool,
    writable: bool,
}

impl Interest {
    /// Data to read, a peer's FIN (end of file), or an error.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Room in the send buffer.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };

    pub fn is_readable(self) -> bool {
        self.readable
    }

    pub fn is_writable(self) -> bool {
        self.writable
    }
}

impl BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        Interest {
            readable: self.readable || other.readable,
            writable: self.writable || other.writable,
        }
    }
}

/// When the kernel reports a ready fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// On every wait, as long as the fd is ready: forgiving, unread data is reported again.
    Level,
    /// Once per change (new data, new room): `EPOLLET`. The caller must read or write until
    /// `EAGAIN`, or it never hears of that fd again. What mio and tokio use for sockets.
    Edge,
    /// One event, then nothing until [`Epoll::modify`] re-arms it: `EPOLLONESHOT`.
    Oneshot,
}

// ---------------------------------------------------------------------------------------------
// The FFI.

/// `struct epoll_event`: 32 bits of flags and 64 bits of user data. The kernel declares it
/// `__attribute__((packed))` on x86_64 only: 12 bytes there, 16 (with 4 of padding) elsewhere.
/// Because it may be packed, a field is always copied out, never borrowed.
#[repr(C)]
#[cfg_attr(target_arch = "x86_64", repr(packed))]
#[derive(Clone, Copy)]
struct EpollEvent {
    events: u32,
    data: u64,
}

// From <sys/epoll.h>; the same on every Linux architecture.
const EPOLL_CLOEXEC: c_int = 0o2_000_000; // = O_CLOEXEC
const EPOLL_CTL_ADD: c_int = 1;
const EPOLL_CTL_DEL: c_int = 2;
const EPOLL_CTL_MOD: c_int = 3;
const EPOLLIN: u32 = 0x001;
const EPOLLPRI: u32 = 0x002;
const EPOLLOUT: u32 = 0x004;
const EPOLLERR: u32 = 0x008;
const EPOLLHUP: u32 = 0x010;
const EPOLLRDHUP: u32 = 0x2000;
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLET: u32 = 1 << 31;

// The glibc wrappers of the three system calls.
unsafe extern "C" {
    fn epoll_create1(flags: c_int) -> c_int;
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut EpollEvent) -> c_int;
    fn epoll_wait(epfd: c_int, events: *mut EpollEvent, maxevents: c_int, timeout: c_int) -> c_int;
}

// ---------------------------------------------------------------------------------------------
// The safe wrapper.

/// An epoll instance. It owns its fd: closed exactly once, on drop.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`: close-on-exec, so a child process does not inherit the
    /// event queue.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes an int and touches no memory of ours.
        let fd = cvt(unsafe { epoll_create1(EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// Starts watching `fd`: `EPOLL_CTL_ADD`. Adding an fd twice is `EEXIST`. If the fd is
    /// already ready, the next wait reports it: nothing that happened before is lost.
    pub fn add(
        &self,
        fd: &impl AsRawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let mut event = EpollEvent {
            events: flags(interest, trigger),
            data: token.0 as u64,
        };
        self.ctl(EPOLL_CTL_ADD, fd.as_raw_fd(), &mut event)
    }

    /// Changes what `fd` is watched for (`EPOLL_CTL_MOD`); also re-arms a
    /// [`Trigger::Oneshot`] registration.
    pub fn modify(
        &self,
        fd: &impl AsRawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let mut event = EpollEvent {
            events: flags(interest, trigger),
            data: token.0 as u64,
        };
        self.ctl(EPOLL_CTL_MOD, fd.as_raw_fd(), &mut event)
    }

    /// Stops watching `fd` (`EPOLL_CTL_DEL`); an fd that is not registered is `ENOENT`.
    /// Closing an fd removes it too (once no `dup` of it is open), so a socket about to be
    /// dropped needs no `delete`.
    pub fn delete(&self, fd: &impl AsRawFd) -> io::Result<()> {
        // SAFETY: a null event is allowed for EPOLL_CTL_DEL (Linux 2.6.9 and later).
        cvt(unsafe {
            epoll_ctl(
                self.fd.as_raw_fd(),
                EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    fn ctl(&self, op: c_int, fd: RawFd, event: &mut EpollEvent) -> io::Result<()> {
        // SAFETY: `event` is a valid, exclusive EpollEvent for the duration of the call; the
        // kernel copies it and keeps no pointer to it. A bad `fd` is an error, not UB.
        cvt(unsafe { epoll_ctl(self.fd.as_raw_fd(), op, fd, event) })?;
        Ok(())
    }

    /// Waits until a registered fd is ready or `timeout` has passed (`None`: no limit), fills
    /// `events` (up to its capacity) and returns how many there are: 0 after a timeout, or
    /// when a signal interrupted the wait (`EINTR`: the caller loops anyway).
    ///
    /// `epoll_wait` counts in milliseconds, so the timeout is rounded **up**: a 300 µs timer
    /// rounded down would become 0, a wait that returns at once, and a loop waiting for that
    /// timer would spin until it expires. `Some(Duration::ZERO)` stays 0: a poll that does not
    /// block.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        let timeout_ms = match timeout {
            None => -1,
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(c_int::MAX as u128) as c_int,
        };
        events.buf.clear();
        let capacity = events.buf.capacity().min(c_int::MAX as usize) as c_int;
        // SAFETY: the kernel writes at most `capacity` EpollEvents into the vector's spare
        // capacity, which is allocated and exclusively ours for the call.
        let n = unsafe {
            epoll_wait(
                self.fd.as_raw_fd(),
                events.buf.as_mut_ptr(),
                capacity,
                timeout_ms,
            )
        };
        match cvt(n) {
            Ok(n) => {
                // SAFETY: the kernel initialised the first `n` (<= capacity) elements.
                unsafe { events.buf.set_len(n as usize) };
                Ok(n as usize)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The kernel's flags for a registration. READABLE always asks for `EPOLLRDHUP` too: a peer's
/// FIN (half-close) then shows in the event, without spending a `read` to find the 0.
fn flags(interest: Interest, trigger: Trigger) -> u32 {
    let mut flags = 0;
    if interest.is_readable() {
        flags |= EPOLLIN | EPOLLRDHUP;
    }
    if interest.is_writable() {
        flags |= EPOLLOUT;
    }
    match trigger {
        Trigger::Level => flags,
        Trigger::Edge => flags | EPOLLET,
        Trigger::Oneshot => flags | EPOLLONESHOT,
    }
}

/// The buffer [`Epoll::wait`] fills: allocated once, reused by every wait.
pub struct Events {
    buf: Vec<EpollEvent>,
}

impl Events {
    /// Room for `capacity` events per wait (at least 1: `epoll_wait` rejects 0). More ready
    /// fds than that are not lost: the next wait returns them.
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            buf: Vec::with_capacity(capacity.max(1)),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The events of the last wait, copied out of the (maybe packed) kernel structs.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.buf.iter().map(|raw| {
            // Copies, not references: `&raw.data` would be unaligned on x86_64.
            let (flags, data) = (raw.events, raw.data);
            Event {
                token: Token(data as usize),
                flags,
            }
        })
    }
}

/// One ready fd: its token and what it is ready for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    token: Token,
    flags: u32,
}

impl Event {
    pub fn token(&self) -> Token {
        self.token
    }

    /// Data to read: `EPOLLIN` (or `EPOLLPRI`, urgent data).
    pub fn is_readable(&self) -> bool {
        self.flags & (EPOLLIN | EPOLLPRI) != 0
    }

    /// Room to write: `EPOLLOUT`.
    pub fn is_writable(&self) -> bool {
        self.flags & EPOLLOUT != 0
    }

    /// The peer will send nothing more: `EPOLLRDHUP` (its FIN, on a socket) or `EPOLLHUP`
    /// (both directions closed, or a pipe whose writer is gone). A read returns what is left,
    /// then 0.
    pub fn is_read_closed(&self) -> bool {
        self.flags & (EPOLLHUP | EPOLLRDHUP) != 0
    }

    /// Writing is over: `EPOLLHUP` (both directions closed). A write returns the error.
    pub fn is_write_closed(&self) -> bool {
        self.flags & EPOLLHUP != 0
    }

    /// `EPOLLERR`: the fd has a pending error (a reset, for a socket) that the next read or
    /// write returns. The kernel reports it whatever the interest.
    pub fn is_error(&self) -> bool {
        self.flags & EPOLLERR != 0
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    use super::*;

    fn wait(epoll: &Epoll, timeout_ms: u64) -> Vec<Event> {
        let mut events = Events::with_capacity(16);
        epoll
            .wait(&mut events, Some(Duration::from_millis(timeout_ms)))
            .expect("wait");
        events.iter().collect()
    }

    #[test]
    fn the_event_struct_has_the_kernels_layout() {
        assert_eq!(size_of::<EpollEvent>(), size_of::<libc::epoll_event>());
        assert_eq!(align_of::<EpollEvent>(), align_of::<libc::epoll_event>());
    }

    #[test]
    fn the_epoll_fd_is_close_on_exec() {
        let epoll = Epoll::new().unwrap();
        // SAFETY: F_GETFD on an fd we own reads its flags and touches no memory.
        let flags = unsafe { libc::fcntl(epoll.as_raw_fd(), libc::F_GETFD) };
        assert!(flags >= 0 && flags & libc::FD_CLOEXEC != 0, "flags {flags}");
    }

    #[test]
    fn tokens_come_back_and_level_repeats_where_edge_does_not() {
        let epoll = Epoll::new().unwrap();
        let (level_tx, level_rx) = UnixStream::pair().unwrap();
        let (edge_tx, edge_rx) = UnixStream::pair().unwrap();
        epoll
            .add(
                &level_rx,
                Token(usize::MAX),
                Interest::READABLE,
                Trigger::Level,
            )
            .unwrap();
        epoll
            .add(&edge_rx, Token(0), Interest::READABLE, Trigger::Edge)
            .unwrap();
        assert!(wait(&epoll, 0).is_empty(), "nothing is ready yet");
        (&level_tx).write_all(b"x").unwrap();
        (&edge_tx).write_all(b"x").unwrap();
        let mut first: Vec<Token> = wait(&epoll, 1000).iter().map(Event::token).collect();
        first.sort();
        assert_eq!(first, [Token(0), Token(usize::MAX)]);
        // Nothing was read: level-triggered reports it again, edge-triggered does not.
        let again: Vec<Token> = wait(&epoll, 50).iter().map(Event::token).collect();
        assert_eq!(again, [Token(usize::MAX)]);
        assert_eq!(
            epoll
                .add(&edge_rx, Token(1), Interest::READABLE, Trigger::Edge)
                .map_err(|e| e.raw_os_error()),
            Err(Some(libc::EEXIST))
        );
        epoll.delete(&level_rx).unwrap();
        assert!(wait(&epoll, 0).is_empty(), "deleted: no more reports");
    }

    #[test]
    fn oneshot_reports_once_until_modified() {
        let epoll = Epoll::new().unwrap();
        let (tx, rx) = UnixStream::pair().unwrap();
        epoll
            .add(&rx, Token(7), Interest::READABLE, Trigger::Oneshot)
            .unwrap();
        (&tx).write_all(b"x").unwrap();
        assert_eq!(wait(&epoll, 1000).len(), 1);
        assert!(wait(&epoll, 0).is_empty(), "disarmed after one event");
        epoll
            .modify(&rx, Token(8), Interest::READABLE, Trigger::Oneshot)
            .unwrap();
        let events = wait(&epoll, 1000);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].token(), Token(8));
    }

    #[test]
    fn a_closed_peer_is_read_closed() {
        let epoll = Epoll::new().unwrap();
        let (tx, rx) = UnixStream::pair().unwrap();
        epoll
            .add(
                &rx,
                Token(1),
                Interest::READABLE | Interest::WRITABLE,
                Trigger::Edge,
            )
            .unwrap();
        drop(tx);
        let events = wait(&epoll, 1000);
        assert!(
            events.len() == 1 && events[0].is_read_closed(),
            "{events:?}"
        );
    }

    #[test]
    fn a_sub_millisecond_timeout_is_rounded_up() {
        let epoll = Epoll::new().unwrap();
        let mut events = Events::with_capacity(1);
        let started = Instant::now();
        let n = epoll
            .wait(&mut events, Some(Duration::from_micros(300)))
            .unwrap();
        assert_eq!(n, 0);
        assert!(started.elapsed() >= Duration::from_micros(300));
    }
}
