//! Network waits with timeouts: a grader never blocks forever on a socket.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// Default timeout for one network wait (connect, read, write) in a grader.
pub const NET_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects with [`NET_TIMEOUT`] and sets the same read and write timeouts on the stream.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, NET_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    set_timeouts(&stream, NET_TIMEOUT);
    stream
}

/// Sets read and write timeouts on a TCP stream.
pub fn set_timeouts(stream: &TcpStream, timeout: Duration) {
    stream
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(timeout))
        .expect("write timeout");
}

/// A UDP socket on `127.0.0.1:0` with read and write timeouts.
pub fn udp_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    socket
        .set_read_timeout(Some(NET_TIMEOUT))
        .expect("read timeout");
    socket
        .set_write_timeout(Some(NET_TIMEOUT))
        .expect("write timeout");
    socket
}

/// Reads until the peer closes, or fails on the stream's timeout.
pub fn read_to_end(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Whether something accepts TCP connections at `addr` within `timeout`.
pub fn is_listening(addr: SocketAddr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&addr, timeout).is_ok()
}

/// A port that was free a moment ago, for the rare test that needs a port nobody listens on.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn connect_sets_timeouts() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = connect(listener.local_addr().unwrap());
        assert_eq!(stream.read_timeout().unwrap(), Some(NET_TIMEOUT));
        let (mut peer, _) = listener.accept().unwrap();
        peer.write_all(b"hi").unwrap();
        drop(peer);
        let mut stream = stream;
        assert_eq!(read_to_end(&mut stream).unwrap(), b"hi");
    }

    #[test]
    fn closed_port_refuses() {
        assert!(!is_listening(closed_port(), Duration::from_secs(1)));
    }
}
