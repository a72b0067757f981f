//! What chapter 7's later labs need but do not teach: the answers of earlier labs, packaged, so
//! that a lab's stub holds only what its learner writes.
//!
//! - [`epoll`], lab 7.6's answer: `epoll_create1`, `epoll_ctl` and `epoll_wait` declared by
//!   hand, behind a small safe wrapper ([`Epoll`], [`Events`], [`Event`], [`Interest`],
//!   [`Token`], [`Trigger`]).
//! - [`net`], lab 7.6's too: non-blocking, close-on-exec TCP sockets from the plain system
//!   calls ([`net::listen`] with a chosen backlog, [`net::accept`], [`net::connect`]), and a
//!   `SocketAddr` to and from the C `sockaddr`.
//! - [`raise_fd_limit`], lab 7.6's: the soft `RLIMIT_NOFILE` up to the hard limit, as a server
//!   holds one fd per connection.
//! - [`Slab`], lab 7.6's connection table, generic: keys are indexes, freed ones reused.
//! - [`task`], lab 7.7's answer: [`JoinHandle`] and [`JoinError`] for a single-threaded
//!   executor, panics caught.
//! - [`cli`]: the command-line conventions of the chapter's servers (one line on stderr and
//!   exit code 2 for a bad argument).
//!
//! **Doing lab 7.6 or 7.7?** This crate is their answer packaged for the labs after them:
//! write your own first, then compare with that lab's `solution/main.rs`, which is the one
//! that explains each step (this crate is the same code, Linux only, split into modules, plus
//! a non-blocking `connect`). Lab 7.8 (the reactor runtime) depends on it with
//! `ch7_support.workspace = true`.
//!
//! The style is mio's `sys/unix/selector/epoll.rs`: every fd is owned (an `OwnedFd` or a std
//! socket type, so it is closed exactly once) and close-on-exec from birth; every `unsafe`
//! block is small (one system call, one cast) with a `// SAFETY:` line saying why it is sound;
//! errors are `io::Error`s built from `errno`, never panics.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "ch7_support wraps Linux system calls (epoll, accept4, SOCK_NONBLOCK): build on Linux"
);

use std::io;

pub mod cli;
pub mod epoll;
pub mod net;
pub mod slab;
pub mod task;

pub use epoll::{Epoll, Event, Events, Interest, Token, Trigger};
pub use slab::Slab;
pub use task::{JoinError, JoinHandle};

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) to the hard limit and returns the new
/// soft limit. Every connection is an fd, and the usual soft limit, 1,024, is far below ten
/// thousand clients; raising it up to the hard limit needs no privilege.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the exclusive reference and keeps no pointer.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads one valid rlimit; soft up to hard is always allowed.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })?;
    }
    Ok(limit.rlim_cur)
}

/// Turns the C convention (-1 and `errno`) into an `io::Result`.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn raise_fd_limit_reaches_the_hard_limit() {
        let soft = super::raise_fd_limit().expect("raise_fd_limit");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the exclusive reference.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        assert_eq!(rc, 0);
        assert_eq!((soft, limit.rlim_cur), (limit.rlim_max, limit.rlim_max));
    }
}
