//! Grader for the chat server, through the kernel: TCP's handshake, flow control and TIME-WAIT.
//!
//! The clients here check little of what they receive (`tests/test_chat_server.rs` does that).
//! They read what the kernel says about the server's sockets in `/proc/net/tcp` and
//! `/proc/net/tcp6`, the table `ss` reads: each socket's state, its send and receive queues,
//! its pending timer, and the inode of its file, which is 0 while no process holds the socket
//! (a connection still in the accept queue, or one its process has closed and the kernel
//! finishes alone). Each test is named after the requirement it checks (see README.md).

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;

use labkit::net::{NET_TIMEOUT, connect};
use labkit::{Server, lab_bin};
use rand::RngExt;

// The states of a TCP socket in /proc/net/tcp (include/net/tcp_states.h).
const ESTABLISHED: u8 = 0x01;
const FIN_WAIT1: u8 = 0x04;
const FIN_WAIT2: u8 = 0x05;
const TIME_WAIT: u8 = 0x06;
const CLOSE_WAIT: u8 = 0x08;
const LISTEN: u8 = 0x0A;

/// The `tr` column of a socket whose peer advertised a zero window: the kernel has bytes to
/// send, may not send them, and probes the window now and then (`timer:(persist,...)` in `ss`).
const ZERO_WINDOW_PROBE: u8 = 4;

thread_local! {
    /// The requirement the running test checks, named first in every failure of the helpers.
    static CHECKING: Cell<&'static str> = const { Cell::new("requirement ?") };
}

fn checking(requirement: &'static str) {
    CHECKING.set(requirement);
}

fn req() -> &'static str {
    CHECKING.get()
}

// ---------------------------------------------------------------------------------------------
// The kernel's table of TCP sockets.

/// One line of /proc/net/tcp or /proc/net/tcp6.
#[derive(Clone, Debug)]
struct Sock {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    /// Bytes written and not yet acknowledged by the peer (`Send-Q`).
    tx_queue: u64,
    /// Bytes received and not read yet (`Recv-Q`); for a listening socket, the connections
    /// waiting in its accept queue.
    rx_queue: u64,
    /// The pending timer: 0 none, 1 retransmit, 2 keepalive, 3 TIME-WAIT, 4 zero-window probe.
    timer: u8,
    /// The inode of the socket's file: 0 when no process holds the socket.
    inode: u64,
}

impl fmt::Display for Sock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            0x01 => "ESTABLISHED",
            0x02 => "SYN-SENT",
            0x03 => "SYN-RECV",
            0x04 => "FIN-WAIT-1",
            0x05 => "FIN-WAIT-2",
            0x06 => "TIME-WAIT",
            0x07 => "CLOSE",
            0x08 => "CLOSE-WAIT",
            0x09 => "LAST-ACK",
            0x0A => "LISTEN",
            0x0B => "CLOSING",
            _ => "?",
        };
        let timer = match self.timer {
            0 => "off",
            1 => "retransmit",
            2 => "keepalive",
            3 => "timewait",
            4 => "persist (zero-window probe)",
            _ => "?",
        };
        let owner = if self.inode == 0 {
            "no process".to_string()
        } else {
            format!("inode {}", self.inode)
        };
        write!(
            f,
            "{} -> {} {state}, Send-Q {}, Recv-Q {}, timer {timer}, {owner}",
            self.local, self.remote, self.tx_queue, self.rx_queue
        )
    }
}

/// Every TCP socket of this network namespace.
fn sockets() -> Vec<Sock> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|path| {
            let table = std::fs::read_to_string(path).unwrap_or_default();
            table
                .lines()
                .skip(1)
                .filter_map(parse_line)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`
fn parse_line(line: &str) -> Option<Sock> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let hex = |text: &str| u64::from_str_radix(text, 16).ok();
    let (tx, rx) = fields.get(4)?.split_once(':')?;
    let (timer, _) = fields.get(5)?.split_once(':')?;
    Some(Sock {
        local: parse_addr(fields.get(1)?)?,
        remote: parse_addr(fields.get(2)?)?,
        state: u8::try_from(hex(fields.get(3)?)?).ok()?,
        tx_queue: hex(tx)?,
        rx_queue: hex(rx)?,
        timer: u8::try_from(hex(timer)?).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// `0100007F:1F90` is 127.0.0.1:8080: the address is printed as 32-bit words in the host's
/// byte order, the port as a number.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for word in 0..ip.len() / 8 {
        let word = u32::from_str_radix(ip.get(word * 8..word * 8 + 8)?, 16).ok()?;
        bytes.extend(word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The socket from `local` to `remote`, if the kernel has one.
fn socket(local: SocketAddr, remote: SocketAddr) -> Option<Sock> {
    sockets()
        .into_iter()
        .find(|s| s.local == local && s.remote == remote)
}

/// The listening socket at `addr`.
fn listener(addr: SocketAddr) -> Option<Sock> {
    sockets()
        .into_iter()
        .find(|s| s.local == addr && s.state == LISTEN)
}

/// The socket from `local` to `remote`, for a failure message.
fn describe(local: SocketAddr, remote: SocketAddr) -> String {
    socket(local, remote).map_or_else(
        || format!("{local} -> {remote}: no such socket in /proc/net/tcp"),
        |s| s.to_string(),
    )
}

/// Every socket on `addr`'s port, for a failure message.
fn table(addr: SocketAddr) -> String {
    let lines: Vec<String> = sockets()
        .iter()
        .filter(|s| s.local.port() == addr.port() || s.remote.port() == addr.port())
        .take(30)
        .map(|s| format!("\n  {s}"))
        .collect();
    lines.concat()
}

/// Polls `done` until it holds, for at most [`NET_TIMEOUT`].
fn wait(done: impl FnMut() -> bool) -> bool {
    labkit::wait::until(NET_TIMEOUT, done)
}

// ---------------------------------------------------------------------------------------------
// Clients and the server process.

/// One chat client: a buffered reader and a writer on the same socket.
struct Client {
    name: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn from_stream(stream: TcpStream, name: &str) -> Client {
        labkit::net::set_timeouts(&stream, NET_TIMEOUT);
        Client {
            name: name.to_string(),
            reader: BufReader::new(stream.try_clone().expect("clone the stream")),
            writer: stream,
        }
    }

    /// Connects without joining.
    fn connect(addr: SocketAddr, name: &str) -> Client {
        Client::from_stream(connect(addr), name)
    }

    /// Sends `name` on `stream` and expects `welcome <name>`.
    fn join_on(stream: TcpStream, name: &str) -> Client {
        let mut client = Client::from_stream(stream, name);
        client.send(name);
        client.expect_line(&format!("welcome {name}"));
        client
    }

    fn join(addr: SocketAddr, name: &str) -> Client {
        Client::join_on(connect(addr), name)
    }

    /// This end of the connection: the server's socket for this client has it as `remote`.
    fn end(&self) -> SocketAddr {
        self.writer.local_addr().expect("local address")
    }

    fn send(&mut self, line: &str) {
        let name = &self.name;
        writeln!(self.writer, "{line}")
            .unwrap_or_else(|e| panic!("{}: {name}: cannot write to the server: {e}", req()));
    }

    /// The next line without its `\n`, `None` at end of stream, or the error of the read.
    fn try_line(&mut self) -> io::Result<Option<String>> {
        let mut line = String::new();
        Ok(match self.reader.read_line(&mut line)? {
            0 => None,
            _ => Some(line.trim_end_matches(['\n', '\r']).to_string()),
        })
    }

    fn line(&mut self) -> String {
        let read = self.try_line();
        let name = &self.name;
        match read {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "{}: {name}: the server closed the connection; wanted a line",
                req()
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "{}: {name}: no line from the server within {NET_TIMEOUT:?}",
                    req()
                )
            }
            Err(e) => panic!("{}: {name}: reading from the server: {e}", req()),
        }
    }

    fn expect_line(&mut self, want: &str) {
        let got = self.line();
        assert!(
            got == want,
            "{}: {} got the line {got:?} from the server; wanted {want:?}",
            req(),
            self.name
        );
    }

    /// Reads lines until one equals `want` (at most 100).
    fn wait_for(&mut self, want: &str) {
        for _ in 0..100 {
            if self.line() == want {
                return;
            }
        }
        panic!(
            "{}: {} read 100 lines and never got {want:?}",
            req(),
            self.name
        );
    }
}

fn start() -> Server {
    Server::start(lab_bin!(), &[])
}

/// A nickname nobody else in the test uses, with a random part so no name is hard-coded.
fn nick(prefix: &str) -> String {
    format!("{prefix}{}", rand::rng().random_range(1000..10000))
}

/// Sends `signal` to the process `pid`.
fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with the pid of a child we own and a valid signal has no memory effects.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "test setup: kill({pid}, {signal}) failed");
}

/// Whether every thread of `pid` is stopped (state `T` in /proc/<pid>/task/*/stat).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
        })
    })
}

/// The server frozen with SIGSTOP until this is dropped (SIGCONT), even when the test fails.
struct Frozen(u32);

impl Frozen {
    fn stop(pid: u32) -> Frozen {
        signal(pid, libc::SIGSTOP);
        let frozen = Frozen(pid);
        assert!(
            wait(|| all_threads_stopped(pid)),
            "test setup: the server did not stop on SIGSTOP"
        );
        frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

// ---------------------------------------------------------------------------------------------
// Requirement 12: the handshake.

// Requirement 12: the kernel completes the three-way handshake on its own and queues the
// connection on the listening socket; the server takes it with accept(), and must take every
// one at once, even while a client that said nothing is connected.
#[test]
fn completes_handshakes_in_the_kernel_before_accept() {
    checking("requirement 12");
    let server = start();
    let addr = server.addr();
    assert!(
        wait(|| listener(addr).is_some()),
        "requirement 12: the server printed `listening on {addr}`, but the kernel has no \
         listening socket at that address; sockets on its port:{}",
        table(addr)
    );

    // A client that connects and says nothing. Accepted, its socket gets a file (an inode).
    let mut quiet = Client::connect(addr, "the quiet client");
    let quiet_end = quiet.end();
    let accepted = |client: SocketAddr| {
        socket(addr, client).is_some_and(|s| s.state == ESTABLISHED && s.inode != 0)
    };
    assert!(
        wait(|| accepted(quiet_end)),
        "requirement 12: {NET_TIMEOUT:?} after a client connected, the server has not accepted \
         it: {}",
        describe(addr, quiet_end)
    );

    // Freeze the server: from now on only the kernel answers.
    let frozen = Frozen::stop(server.pid());
    let count = rand::rng().random_range(2..6);
    let mut clients: Vec<(Client, String)> = (0..count)
        .map(|i| {
            let stream = TcpStream::connect_timeout(&addr, NET_TIMEOUT).unwrap_or_else(|e| {
                panic!(
                    "requirement 12: with the server stopped (SIGSTOP), connect() failed: {e}; \
                     the kernel completes the handshake for a listening socket without its \
                     process (is the listen backlog tiny?)"
                )
            });
            let name = nick(&format!("early{i}_"));
            let mut client = Client::from_stream(stream, &name);
            client.send(&name);
            (client, name)
        })
        .collect();
    // Each connection is ESTABLISHED, without a file yet, its nickname waiting unread; the
    // listening socket counts them in its accept queue.
    let queued = wait(|| {
        listener(addr).is_some_and(|l| l.rx_queue == count)
            && clients.iter().all(|(client, name)| {
                socket(addr, client.end()).is_some_and(|s| {
                    s.state == ESTABLISHED && s.inode == 0 && s.rx_queue == name.len() as u64 + 1
                })
            })
    });
    assert!(
        queued,
        "requirement 12: with the server stopped, {count} clients connected and sent their \
         nicknames; wanted each connection ESTABLISHED in the accept queue (no process, the \
         nickname unread in Recv-Q) and {count} in the Recv-Q of the LISTEN socket; saw:{}",
        table(addr)
    );

    drop(frozen); // SIGCONT
    let all_accepted = wait(|| {
        listener(addr).is_some_and(|l| l.rx_queue == 0)
            && clients.iter().all(|(client, _)| accepted(client.end()))
    });
    if !all_accepted {
        let waiting = clients
            .iter()
            .filter(|(client, _)| !accepted(client.end()))
            .count();
        panic!(
            "requirement 12: {NET_TIMEOUT:?} after the server resumed, {waiting} of {count} \
             connections still wait in the accept queue of its listening socket (ESTABLISHED, no \
             process: the kernel finished their handshakes, the server never called accept) \
             while a client that said nothing is connected; the accept loop must await nothing \
             but accept; saw:{}",
            table(addr)
        );
    }
    for (client, name) in &mut clients {
        client.expect_line(&format!("welcome {name}"));
    }
    // The quiet client can still join.
    let name = nick("quiet");
    quiet.send(&name);
    quiet.expect_line(&format!("welcome {name}"));
}

// ---------------------------------------------------------------------------------------------
// Requirement 13: flow control.

// Requirement 13: a client that stops reading gets a zero window; the kernel keeps the
// server's bytes for it, the server keeps serving the others, drops it once its queue is full,
// and closes its socket.
#[test]
fn a_reader_that_stops_gets_a_zero_window_and_is_dropped() {
    checking("requirement 13");
    /// Ann sends until the slow client is dropped, at most this many lines (about 40 MB).
    const MAX_LINES: usize = 40_000;
    let server = start();
    let addr = server.addr();
    let (a, b, s) = (nick("ann"), nick("bob"), nick("sloth"));

    // Sloth asks for a small receive buffer, so that its window closes after a few KiB.
    let socket2 =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket2.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket2
        .connect_timeout(&addr.into(), NET_TIMEOUT)
        .expect("connect");
    let sloth = Client::join_on(socket2.into(), &s);
    let mut bob = Client::join(addr, &b);
    let mut ann = Client::join(addr, &a);
    bob.wait_for(&format!("* {a} joined"));
    let (sloth_end, ann_end) = (sloth.end(), ann.end());

    // Ann sends 1 KB lines, one at a time: Bob reads each before she sends the next, so Bob is
    // never slow, and the kernel's table is read between lines.
    let payload = "z".repeat(1000);
    let left = format!("* {s} left");
    // When sloth's window was first seen closed: ann's line, the server's socket for sloth and
    // sloth's own socket.
    let mut zero_window: Option<(usize, Sock, String)> = None;
    let mut dropped_after = None;
    for i in 0..MAX_LINES {
        ann.send(&format!("{i} {payload}"));
        loop {
            let line = match bob.try_line() {
                Ok(Some(line)) => line,
                other => {
                    let got = match other {
                        Ok(_) => "end-of-file".to_string(),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            format!("nothing for {NET_TIMEOUT:?}")
                        }
                        Err(e) => format!("the error {e}"),
                    };
                    panic!(
                        "requirement 13: bob got {got} while waiting for ann's line {i}: the \
                         server must keep reading ann and writing to bob while sloth's window \
                         is zero. The server's socket for ann: {}; for sloth: {}",
                        describe(addr, ann_end),
                        describe(addr, sloth_end)
                    )
                }
            };
            if line == left {
                dropped_after = Some(i);
                continue;
            }
            assert!(
                line == format!("{a}: {i} {payload}"),
                "requirement 13: bob got {:?} when ann's line {i} was next; wanted all her \
                 lines, in order",
                line.chars().take(60).collect::<String>()
            );
            break;
        }
        if zero_window.is_none()
            && let Some(sock) = socket(addr, sloth_end)
            && sock.state == ESTABLISHED
            && sock.tx_queue > 0
            && sock.timer == ZERO_WINDOW_PROBE
        {
            zero_window = Some((i, sock, describe(sloth_end, addr)));
        }
        if dropped_after.is_some() {
            break;
        }
    }

    let Some(dropped_after) = dropped_after else {
        panic!(
            "requirement 13: ann sent {MAX_LINES} lines (40 MB) and the server never dropped \
             sloth, which reads nothing, so its queue should have filled long ago: drop a client \
             whose queue is full. The server's socket for sloth: {}",
            describe(addr, sloth_end)
        );
    };
    let Some((since, sock, sloth_side)) = zero_window else {
        panic!(
            "requirement 13: the server dropped sloth after ann's line {dropped_after}, but the \
             kernel never showed sloth's window closed (its socket on the server's side \
             ESTABLISHED with a Send-Q and the zero-window probe timer); only a client that \
             stopped reading may count as slow (is its queue tiny?); now: {}",
            describe(addr, sloth_end)
        );
    };
    eprintln!(
        "zero window after ann's line {since}: {sock}; sloth's own socket: {sloth_side}; \
         dropped after line {dropped_after}"
    );

    // Dropped means closed: the server's socket for sloth leaves ESTABLISHED (to FIN-WAIT-1,
    // its FIN queued behind the bytes sloth never took, or gone).
    let closed = wait(|| socket(addr, sloth_end).is_none_or(|s| s.state != ESTABLISHED));
    assert!(
        closed,
        "requirement 13: the server announced `{left}`, but {NET_TIMEOUT:?} later its socket for \
         sloth is still open: {}; close the connection of a dropped client",
        describe(addr, sloth_end)
    );
    drop(sloth);
}

// ---------------------------------------------------------------------------------------------
// Requirement 14: closing, TIME-WAIT and SO_REUSEADDR.

/// A client joins, sends `/quit`, reads `bye` and end-of-file, then closes: the server closed
/// first, so the connection ends in TIME-WAIT on the server's side. Returns the client's end.
fn quit_and_close(addr: SocketAddr) -> SocketAddr {
    let name = nick("quits");
    let mut client = Client::join(addr, &name);
    let end = client.end();
    client.send("/quit");
    client.expect_line("bye");
    match client.try_line() {
        Ok(None) => {}
        Ok(Some(line)) => panic!(
            "requirement 14: after `bye` the server sent {line:?}; wanted end-of-file (a FIN)"
        ),
        Err(e) => panic!(
            "requirement 14: after `bye`, reading failed: {e}; wanted end-of-file within \
             {NET_TIMEOUT:?}: the server closes the connection with a FIN after `bye`, not a \
             reset. The server's socket: {}",
            describe(addr, end)
        ),
    }
    // The kernel agrees: the server closed its socket (no process holds it) and waits in
    // FIN-WAIT-2 for the client's FIN, while the client, which got the FIN first, is in
    // CLOSE-WAIT.
    let server_closed = wait(|| {
        socket(addr, end).is_some_and(|s| matches!(s.state, FIN_WAIT1 | FIN_WAIT2) && s.inode == 0)
    });
    assert!(
        server_closed,
        "requirement 14: after `bye` and end-of-file, the server's socket for this client should \
         be closed by the server (no process holds it) and wait in FIN-WAIT-2 for the client's \
         FIN; it is: {} (an inode: the server still holds the socket, close it after `bye` \
         without waiting for the client; no socket: the server reset the connection, with \
         SO_LINGER 0 for example)",
        describe(addr, end)
    );
    let client_side = socket(end, addr);
    assert!(
        client_side.as_ref().is_some_and(|s| s.state == CLOSE_WAIT),
        "requirement 14: after end-of-file the client's socket should be in CLOSE-WAIT (the \
         server's FIN came first); it is: {}",
        describe(end, addr)
    );
    drop(client);
    assert!(
        wait(|| socket(addr, end).is_some_and(|s| s.state == TIME_WAIT)),
        "requirement 14: the server closed first and then the client closed: the connection \
         should wait in TIME-WAIT on the server's side; the server's socket: {}",
        describe(addr, end)
    );
    assert!(
        socket(end, addr).is_none_or(|s| s.state != TIME_WAIT),
        "requirement 14: the client closed second, yet its socket is in TIME-WAIT too: {}",
        describe(end, addr)
    );
    end
}

// Requirement 14: the side that closes first keeps the connection in TIME-WAIT: the server
// after `/quit`, the client when it closes first.
#[test]
fn time_wait_stays_on_the_side_that_closes_first() {
    checking("requirement 14");
    let server = start();
    let addr = server.addr();
    quit_and_close(addr);

    // Now the client closes first (with nothing unread, so a FIN, not a reset): the server
    // reads end-of-file and closes its socket, and the TIME-WAIT is the client's.
    let name = nick("leaves");
    let client = Client::join(addr, &name);
    let end = client.end();
    drop(client);
    let client_waits = wait(|| {
        socket(end, addr).is_some_and(|s| s.state == TIME_WAIT) && socket(addr, end).is_none()
    });
    assert!(
        client_waits,
        "requirement 14: a client closed first; wanted its socket in TIME-WAIT and the server's \
         socket gone (the server closes once read returns 0: a socket left in CLOSE-WAIT is one \
         the server never closed). Client: {}; server: {}",
        describe(end, addr),
        describe(addr, end)
    );
}

// Requirement 14: the server restarts on its port at once, while its old connections wait in
// TIME-WAIT there: its listening socket sets SO_REUSEADDR.
#[test]
fn restarts_on_the_same_port_while_time_wait_lasts() {
    checking("requirement 14");
    let mut server = start();
    let addr = server.addr();
    let end = quit_and_close(addr);
    server.kill();
    assert!(
        wait(|| listener(addr).is_none()),
        "test setup: the killed server's listening socket is still at {addr}"
    );
    let old = socket(addr, end);
    assert!(
        old.as_ref().is_some_and(|s| s.state == TIME_WAIT),
        "requirement 14: the old connection should still wait in TIME-WAIT (60 s): {}",
        describe(addr, end)
    );

    let mut command = Command::new(lab_bin!());
    command.args(["--addr", &addr.to_string()]);
    let restarted = catch_unwind(AssertUnwindSafe(|| Server::start_command(command)));
    let again = match restarted {
        Ok(server) => server,
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!(
                "requirement 14: the server could not listen on {addr} again while its old \
                 connection waits there in TIME-WAIT ({}): set SO_REUSEADDR on the listening \
                 socket before bind (`TcpListener::bind` does, `TcpSocket` needs \
                 `set_reuseaddr(true)`).\n{why}",
                describe(addr, end)
            )
        }
    };
    assert!(
        again.addr() == addr,
        "requirement 14: the restarted server printed `listening on {}`; wanted {addr}",
        again.addr()
    );
    let name = nick("back");
    Client::join(addr, &name);
}
