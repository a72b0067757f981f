//! TCP sockets from the plain system calls, non-blocking and close-on-exec from birth (the
//! `SOCK_NONBLOCK | SOCK_CLOEXEC` flags of `socket` and `accept4`: no `fcntl` afterwards, and no
//! window in which another thread's `fork` + `exec` inherits the fd).
//!
//! Each function returns a std type (`TcpListener`, `TcpStream`) that owns the fd, so the
//! socket is closed exactly once, and reads, writes and addresses come from std. What std
//! cannot do is what these add: a chosen backlog, and sockets that never block.

use std::io;
use std::mem::size_of;
use std::net::{
    Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::cvt;

/// A listening socket: `socket`, `SO_REUSEADDR` (a restarted server can bind again while old
/// connections sit in `TIME_WAIT`), `bind`, `listen(backlog)`. std's `TcpListener::bind`
/// listens with 128, too shallow for a burst of thousands of connects: the overflow waits for
/// SYN retries, a second or more.
pub fn listen(addr: SocketAddr, backlog: libc::c_int) -> io::Result<TcpListener> {
    let socket = new_socket(addr)?;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int from a live local, of the length we pass.
    cvt(unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a sockaddr_in or sockaddr_in6 of `len` bytes; bind copies it.
    cvt(unsafe { libc::bind(socket.as_raw_fd(), (&raw const storage).cast(), len) })?;
    // SAFETY: listen takes integers only.
    cvt(unsafe { libc::listen(socket.as_raw_fd(), backlog) })?;
    Ok(TcpListener::from(socket))
}

/// The next waiting connection and its peer's address, with `accept4`: the new socket is
/// non-blocking and close-on-exec in the same system call. `WouldBlock` when nobody waits
/// (the listener from [`listen`] never blocks).
pub fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    // SAFETY: sockaddr_storage is plain integers: all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `storage` and the real length into
    // `len`; both are live locals, exclusively ours for the call.
    let fd = cvt(unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            (&raw mut storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` is a fresh connected socket that nobody else owns.
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok((stream, from_sockaddr(&storage, len)?))
}

/// Starts connecting to `addr` without waiting: the handshake goes on in the kernel, and the
/// socket becomes writable when it is over. Then `take_error()` says whether it worked (for
/// example `ConnectionRefused`); a read or write before that says `WouldBlock`.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = new_socket(addr)?;
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a sockaddr of `len` bytes; connect copies it.
    match cvt(unsafe { libc::connect(socket.as_raw_fd(), (&raw const storage).cast(), len) }) {
        // EINPROGRESS is the normal answer of a non-blocking connect: "started".
        Err(e) if e.raw_os_error() != Some(libc::EINPROGRESS) => Err(e),
        _ => Ok(TcpStream::from(socket)),
    }
}

/// A TCP socket for `addr`'s family, non-blocking and close-on-exec.
fn new_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes integers only.
    let fd = cvt(unsafe { libc::socket(domain, kind, 0) })?;
    // SAFETY: `fd` is fresh and nobody else owns it; from now on it closes on every path.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A Rust address as the C `struct sockaddr_in` / `sockaddr_in6` the kernel reads, in a
/// `sockaddr_storage` (large and aligned enough for either), with its length. Port and IPv4
/// address in network byte order.
pub fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain integers: all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in, and
            // `storage` is a live local we hold exclusively.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            // The octets are already in network order: keep their bytes as they are.
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The Rust address in a `sockaddr_storage` the kernel filled (`accept`, `getsockname`):
/// the inverse of [`to_sockaddr`]. A family other than IPv4 or IPv6, or a length too short
/// for its family, is `InvalidInput`.
pub fn from_sockaddr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> io::Result<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Ok(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id).into())
        }
        family => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an IPv4 or IPv6 socket address (family {family}, {len} bytes)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;
    use crate::{Epoll, Events, Interest, Token, Trigger};

    fn is_nonblocking_and_cloexec(fd: &impl AsRawFd) -> bool {
        // SAFETY: F_GETFL and F_GETFD on an fd we own read flags and touch no memory.
        let (fl, fd_flags) = unsafe {
            (
                libc::fcntl(fd.as_raw_fd(), libc::F_GETFL),
                libc::fcntl(fd.as_raw_fd(), libc::F_GETFD),
            )
        };
        fl & libc::O_NONBLOCK != 0 && fd_flags & libc::FD_CLOEXEC != 0
    }

    /// Waits (at most 5 s) until `fd` is ready for `interest`.
    fn ready(fd: &impl AsRawFd, interest: Interest) {
        let epoll = Epoll::new().unwrap();
        epoll.add(fd, Token(0), interest, Trigger::Level).unwrap();
        let mut events = Events::with_capacity(1);
        let n = epoll
            .wait(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(n, 1, "not ready for {interest:?} after 5 s");
    }

    #[test]
    fn sockaddr_conversion_round_trips() {
        for addr in [
            "127.0.0.1:7000",
            "10.1.2.3:1",
            "[::1]:65535",
            "[fe80::1%3]:80",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            let (storage, len) = to_sockaddr(addr);
            assert_eq!(from_sockaddr(&storage, len).unwrap(), addr);
        }
        let (storage, _) = to_sockaddr("127.0.0.1:1".parse().unwrap());
        assert!(
            from_sockaddr(&storage, 4).is_err(),
            "too short for sockaddr_in"
        );
    }

    #[test]
    fn listen_accept_connect_never_block() {
        let listener = listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        assert!(is_nonblocking_and_cloexec(&listener));
        let addr = listener.local_addr().unwrap();
        assert_eq!(
            accept(&listener).map(|_| ()).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock),
            "nobody is waiting"
        );
        let mut client = connect(addr).unwrap();
        assert!(is_nonblocking_and_cloexec(&client));
        ready(&client, Interest::WRITABLE);
        assert!(client.take_error().unwrap().is_none());
        ready(&listener, Interest::READABLE);
        let (mut server, peer) = accept(&listener).unwrap();
        assert!(is_nonblocking_and_cloexec(&server));
        assert_eq!(peer, client.local_addr().unwrap());
        client.write_all(b"ping").unwrap();
        ready(&server, Interest::READABLE);
        let mut buf = [0; 8];
        assert_eq!(server.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
    }

    #[test]
    fn a_refused_connect_shows_in_take_error() {
        let closed = {
            let listener = listen("127.0.0.1:0".parse().unwrap(), 1).unwrap();
            listener.local_addr().unwrap()
        };
        match connect(closed) {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            Ok(stream) => {
                ready(&stream, Interest::WRITABLE);
                let error = stream.take_error().unwrap().expect("an error");
                assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
            }
        }
    }
}
