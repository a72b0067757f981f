//! Zero-copy forwarding with splice(2): a TCP proxy whose payload never enters user space.
//!
//! `ch7_splice_proxy --listen HOST:PORT --upstream HOST:PORT` accepts connections and joins each
//! one to a fresh connection to the upstream, both ways, until both ends have finished.
//!
//! A copying proxy (`read` into a buffer, `write` it out) has the CPU copy every byte twice,
//! kernel → its buffer → kernel, and crosses into user space for every buffer-full. `splice(2)`
//! moves bytes between a file descriptor and a **pipe** without leaving the kernel: socket →
//! pipe gives the pipe references to the pages of the received packets, pipe → socket hands the
//! same pages to the sending socket. The payload never enters this process; only the counts
//! that splice returns do.
//!
//! Three layers, bottom up:
//!
//! 1. [`pipe`]: a [`Pipe`](pipe::Pipe) made with `pipe2(O_NONBLOCK | O_CLOEXEC)` and grown
//!    with `F_SETPIPE_SZ`, and [`splice`](pipe::splice), one system call. The pipe is splice's
//!    only buffer: one end of every splice must be a pipe, so socket → socket takes two calls.
//! 2. [`flow`]: one direction of a connection ([`Flow`](flow::Flow)), a state machine of three
//!    facts: how many bytes are parked in its pipe, whether its source said end-of-file, and
//!    whether that end-of-file was passed on with `shutdown(SHUT_WR)`. Each direction owns its
//!    pipe.
//! 3. [`proxy`]: the event loop, on chapter 7's epoll wrapper (`ch7_support`, lab 7.6's
//!    answer): both sockets of a connection registered once, edge-triggered, and any event on
//!    either drives both directions until each one waits for the kernel (`EAGAIN`) or is done.
//!
//! Why an event loop rather than a thread per direction: blocking splices on two threads per
//! connection would be shorter (no `EAGAIN`, no parked count: the kernel sleeps for us), but a
//! thousand connections would be two thousand threads, and an error on one side would have to
//! wake the thread asleep on the other. With one thread, closing a connection is dropping it.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use clap::Parser;

/// Address used when `--listen` is not given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7000";
/// The listen backlog: std's `TcpListener::bind` uses 128, too shallow for a burst of connects.
pub const BACKLOG: libc::c_int = 1024;
/// What each pipe is asked to hold. The default pipe is 64 KiB (16 pages); a bigger one moves
/// more per splice, so fewer system calls per MiB. 1 MiB is `/proc/sys/fs/pipe-max-size`, the
/// most an unprivileged process may ask for.
pub const PIPE_SIZE: usize = 1 << 20;

const USAGE: &str = "usage: ch7_splice_proxy [--listen HOST:PORT] --upstream HOST:PORT";

/// A negative return of a system call is `errno`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

// ---------------------------------------------------------------------------------------------

/// The kernel's buffer between two sockets, and the system call that fills and drains it.
pub mod pipe {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
    use std::ptr;

    use super::cvt;

    /// Both ends of a pipe. Bytes spliced into `write` come out of `read`, in order: a pipe is
    /// a queue of page references, so parking bytes in it costs no copy.
    #[derive(Debug)]
    pub struct Pipe {
        pub read: OwnedFd,
        pub write: OwnedFd,
        /// The most the pipe holds, in bytes (what `F_SETPIPE_SZ` granted).
        pub capacity: usize,
    }

    impl Pipe {
        /// A pipe that never blocks (`O_NONBLOCK`: a full or empty pipe answers `EAGAIN`, as
        /// the sockets do) and is closed on exec, asked to hold `size` bytes.
        pub fn new(size: usize) -> io::Result<Pipe> {
            let mut fds: [libc::c_int; 2] = [-1; 2];
            // SAFETY: pipe2 writes two fds into the array, which is ours for the call.
            cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
            // SAFETY: both fds are fresh and nobody else owns them: from here on they close on
            // every path.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            let size = size.min(libc::c_int::MAX as usize) as libc::c_int;
            // The kernel may refuse a bigger pipe (an unprivileged user past pipe-max-size or
            // over the per-user quota): then the default size serves, only with more calls.
            // SAFETY: fcntl with F_SETPIPE_SZ or F_GETPIPE_SZ takes an int and no pointer.
            let capacity =
                match cvt(unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, size) }) {
                    Ok(granted) => granted,
                    // SAFETY: as above.
                    Err(_) => cvt(unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) })?,
                };
            Ok(Pipe {
                read,
                write,
                capacity: capacity as usize,
            })
        }
    }

    /// Moves up to `len` bytes from `from` to `to` inside the kernel (one of the two must be a
    /// pipe) and returns how many moved: **fewer than asked is normal** (a socket with less
    /// queued, a pipe or a send buffer with less room), and 0 means the source is at
    /// end-of-file. `WouldBlock` (`EAGAIN`) means nothing could move now: the source is empty
    /// or the destination full. It is never end-of-file.
    ///
    /// `SPLICE_F_MOVE` asks for pages to be moved rather than copied (a hint; sockets give
    /// page references anyway); `SPLICE_F_NONBLOCK` makes the pipe side answer `EAGAIN`
    /// instead of sleeping (the sockets are non-blocking already).
    pub fn splice(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
        loop {
            // SAFETY: two live fds and null offsets (sockets and pipes have no file position):
            // splice reads and writes no memory of this process.
            let moved = unsafe {
                libc::splice(
                    from.as_fd().as_raw_fd(),
                    ptr::null_mut(),
                    to.as_fd().as_raw_fd(),
                    ptr::null_mut(),
                    len,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                )
            };
            if moved >= 0 {
                return Ok(moved as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// One direction of a connection: source socket → its own pipe → destination socket.
pub mod flow {
    use std::io;
    use std::net::{Shutdown, TcpStream};

    use super::pipe::{Pipe, splice};

    /// The state of one direction. `parked` is the heart of it: the bytes that are in the pipe
    /// and not yet in the destination. They belong to the destination, in order, before
    /// anything else; the pipe is the only place they exist, so it must not be shared with the
    /// other direction, and the flow is over only when it is empty.
    #[derive(Debug)]
    pub struct Flow {
        pipe: Pipe,
        /// Bytes spliced into the pipe and not yet out of it.
        parked: usize,
        /// The source said end-of-file (a splice from it returned 0).
        eof: bool,
        /// The end-of-file was passed on: `shutdown(SHUT_WR)` on the destination.
        shut: bool,
    }

    impl Flow {
        pub fn new(pipe_size: usize) -> io::Result<Flow> {
            Ok(Flow {
                pipe: Pipe::new(pipe_size)?,
                parked: 0,
                eof: false,
                shut: false,
            })
        }

        /// Whether this direction has ended: end-of-file read and passed on, nothing parked.
        pub fn is_done(&self) -> bool {
            self.shut
        }

        /// Moves what can move now from `src` to `dst`, and returns when the kernel says wait
        /// (`EAGAIN` from the destination or the source) or when the direction is done. The
        /// sockets are edge-triggered: stopping before `EAGAIN` would wait for an event that
        /// never comes. An `Err` is the connection's end (a reset, a broken pipe).
        pub fn pump(&mut self, src: &TcpStream, dst: &TcpStream) -> io::Result<()> {
            loop {
                // 1. Drain the pipe first. A short splice leaves bytes parked: they go out
                //    before anything new comes in, so the pipe never fills behind our back.
                while self.parked > 0 {
                    match splice(&self.pipe.read, dst, self.parked) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => self.parked -= n,
                        // The destination's send buffer is full: its EPOLLOUT edge resumes us.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                // 2. The source has ended and everything it sent is out: pass the end on. The
                //    other direction goes on (a half-closed TCP connection still carries the
                //    answer).
                if self.eof {
                    if !self.shut {
                        dst.shutdown(Shutdown::Write)?;
                        self.shut = true;
                    }
                    return Ok(());
                }
                // 3. The pipe is empty: fill it from the source.
                match splice(src, &self.pipe.write, self.pipe.capacity) {
                    Ok(0) => self.eof = true,
                    Ok(n) => self.parked = n,
                    // Nothing queued in the source now, which is not its end: its EPOLLIN edge
                    // resumes us.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// The event loop: one thread, every connection, on `ch7_support`'s epoll.
pub mod proxy {
    use std::io;
    use std::net::{SocketAddr, TcpListener, TcpStream};

    use ch7_support::{Epoll, Events, Interest, Token, Trigger, net};

    use super::PIPE_SIZE;
    use super::flow::Flow;

    /// The listening socket's token; connection tokens are slab indexes, far below it.
    const LISTENER: Token = Token(usize::MAX);
    /// Events returned by one `epoll_wait` at most.
    const EVENTS_PER_WAIT: usize = 256;

    /// A client, its upstream, and the two directions between them.
    #[derive(Debug)]
    struct Connection {
        client: TcpStream,
        upstream: TcpStream,
        to_upstream: Flow,
        to_client: Flow,
    }

    impl Connection {
        /// Starts the upstream connection without waiting for it: until the handshake is over,
        /// splices into and out of it answer `EAGAIN`, and its EPOLLOUT edge says when it is
        /// up. A refused connection shows as an error of the first splice.
        fn open(client: TcpStream, upstream: SocketAddr) -> io::Result<Connection> {
            Ok(Connection {
                upstream: net::connect(upstream)?,
                client,
                to_upstream: Flow::new(PIPE_SIZE)?,
                to_client: Flow::new(PIPE_SIZE)?,
            })
        }

        /// Drives both directions; `Ok(true)` once both have ended. Whatever the event was
        /// (data, room, a FIN, an error, either socket), both directions try: each stops at its
        /// own `EAGAIN`, so a spurious try costs one or two system calls.
        fn drive(&mut self) -> io::Result<bool> {
            self.to_upstream.pump(&self.client, &self.upstream)?;
            self.to_client.pump(&self.upstream, &self.client)?;
            Ok(self.to_upstream.is_done() && self.to_client.is_done())
        }
    }

    /// Connections by token: a `Vec` of slots and a free list, so a token is an index.
    #[derive(Debug, Default)]
    struct Slab {
        slots: Vec<Option<Connection>>,
        free: Vec<usize>,
    }

    impl Slab {
        fn insert(&mut self, connection: Connection) -> usize {
            match self.free.pop() {
                Some(id) => {
                    self.slots[id] = Some(connection);
                    id
                }
                None => {
                    self.slots.push(Some(connection));
                    self.slots.len() - 1
                }
            }
        }

        fn get_mut(&mut self, id: usize) -> Option<&mut Connection> {
            self.slots.get_mut(id)?.as_mut()
        }

        /// Drops the connection: both sockets and both pipes are closed, and closing a socket
        /// takes it out of the epoll set.
        fn remove(&mut self, id: usize) {
            if self.slots.get_mut(id).and_then(Option::take).is_some() {
                self.free.push(id);
            }
        }
    }

    /// Forwards every connection accepted on `listener` (non-blocking) to `upstream`. Returns
    /// only if epoll itself fails: a connection's error ends that connection, never the loop.
    pub fn serve(listener: TcpListener, upstream: SocketAddr) -> io::Result<()> {
        let epoll = Epoll::new()?;
        epoll.add(&listener, LISTENER, Interest::READABLE, Trigger::Level)?;
        let mut connections = Slab::default();
        let mut events = Events::with_capacity(EVENTS_PER_WAIT);
        loop {
            epoll.wait(&mut events, None)?;
            for event in events.iter() {
                if event.token() == LISTENER {
                    accept_all(&listener, upstream, &epoll, &mut connections);
                    continue;
                }
                let id = event.token().0;
                // An event for a connection closed earlier in this batch: nothing to do.
                let Some(connection) = connections.get_mut(id) else {
                    continue;
                };
                match connection.drive() {
                    Ok(false) => {}
                    Ok(true) => connections.remove(id),
                    Err(e) => {
                        // A reset or a refused upstream: close both sides, so each peer sees
                        // the end (a FIN, or a reset if it had sent unread data).
                        eprintln!("ch7_splice_proxy: connection {id}: {e}");
                        connections.remove(id);
                    }
                }
            }
        }
    }

    /// Accepts until `EAGAIN` (the listener is level-triggered: what is left is reported
    /// again), opening an upstream connection for each client.
    fn accept_all(
        listener: &TcpListener,
        upstream: SocketAddr,
        epoll: &Epoll,
        connections: &mut Slab,
    ) {
        loop {
            let client = match net::accept(listener) {
                Ok((client, _)) => client,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    eprintln!("ch7_splice_proxy: accept: {e}");
                    return;
                }
            };
            let connection = match Connection::open(client, upstream) {
                Ok(connection) => connection,
                Err(e) => {
                    eprintln!("ch7_splice_proxy: connecting to {upstream}: {e}");
                    continue; // dropping the client closes it
                }
            };
            let id = connections.insert(connection);
            let connection = connections.get_mut(id).expect("just inserted");
            // Both sockets, readable and writable, edge-triggered, registered once: any change
            // that may unblock a direction wakes the loop, and no epoll_ctl(MOD) ever follows.
            // Adding a socket that is ready already reports it at once.
            let interest = Interest::READABLE | Interest::WRITABLE;
            let registered = epoll
                .add(&connection.client, Token(id), interest, Trigger::Edge)
                .and_then(|()| epoll.add(&connection.upstream, Token(id), interest, Trigger::Edge));
            if let Err(e) = registered {
                eprintln!("ch7_splice_proxy: epoll_ctl: {e}");
                connections.remove(id);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// `ch7_splice_proxy [--listen HOST:PORT] --upstream HOST:PORT`.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_splice_proxy",
    about = "A TCP proxy that forwards with splice(2): socket -> pipe -> socket, never through \
             user space"
)]
pub struct Args {
    /// Where to listen (port 0: the kernel picks a free one; the bound address is printed)
    #[arg(long, visible_alias = "addr", value_name = "HOST:PORT", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The server each connection is forwarded to
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: SocketAddr,
}

/// Binds, prints `listening on <addr>` with the bound address, and forwards until killed.
pub fn run(args: &Args) -> io::Result<()> {
    // Each connection holds six fds (two sockets, two pipes): raise the soft limit if we may.
    let _ = ch7_support::raise_fd_limit();
    let listener: TcpListener = ch7_support::net::listen(args.listen, BACKLOG)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", args.listen)))?;
    println!("listening on {}", listener.local_addr()?);
    proxy::serve(listener, args.upstream)
}

fn main() -> ExitCode {
    let args: Args = match ch7_support::cli::parse_args(USAGE) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch7_splice_proxy: {e}");
            ExitCode::from(1)
        }
    }
}
