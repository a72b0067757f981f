//! ## Goal
//! Build what a multiplayer game puts between its simulation and a UDP socket: packets with
//! sequence numbers, acks that name the newest packet received and the 32 before it in a
//! bitfield, retransmission after a timeout computed from the measured round trip (RFC 6298), a
//! **reliable-ordered** channel (chat, inventory changes: every message, once, in order) and a
//! **latest** channel (positions, scores: only the newest state matters) on one socket. The
//! grader puts a relay between your two peers that loses, duplicates, reorders and delays
//! datagrams from a seeded random generator, reads every datagram off the wire, and checks
//! what arrives, how often each message was sent, and how many bytes it all cost.
//!
//! ## Requirements
//! 1. **Command line.** `ch7_reliable_udp recv [--addr HOST:PORT]` binds a UDP socket, prints
//!    `listening on <addr>` with the bound address (the grader passes port 0), then one line per
//!    message delivered: `reliable <text>` or `update <text>`. `ch7_reliable_udp send --peer
//!    HOST:PORT` reads lines from stdin, `R <text>` (a reliable message) or `U <text>` (a state
//!    update), and reports any other line on stderr with its line number; each time every reliable
//!    message queued so far is acked it prints `all acked: <n> reliable messages`, and once stdin
//!    is closed and everything is acked it prints a summary and exits 0. `--start-seq N` (default
//!    0) is the first packet number, reliable message id and update id, in both directions; both
//!    peers are given the same. `--help` prints the usage on stdout and exits 0; an unknown option
//!    or a bad value is exit code 2.
//! 2. **The packet format.** One packet per datagram, big-endian: protocol id `0x52554450` (u32),
//!    sequence number (u16), ack (u16), ack bits (u32), flags (u8: bit 0 set when the ack fields
//!    are valid), then messages, each a channel (u8: 0 reliable, 1 latest), an id (u16), a length
//!    (u16) and the payload; at most 1,200 bytes in all. A peer numbers its packets `N`, `N+1`, ...
//!    from `--start-seq N`, wrapping after 65,535; its reliable messages and its updates are
//!    numbered from N the same way.
//! 3. **Acks with a bitfield.** Every packet acks the newest packet received from the peer and, in
//!    the ack bits, the 32 before it (bit i: packet `ack - 1 - i` arrived); it never acks a packet
//!    that did not arrive, and every packet with messages that arrives is acked. A peer sends at
//!    most one packet per tick (5 ms), and only when it has messages to send or a packet with
//!    messages to ack: a packet of acks alone is not acked, so a link with nothing unacked goes
//!    quiet. `--no-ack-bits` sends every ack with the ack bits at 0.
//! 4. **Retransmission after an RTO.** A reliable message is kept until a packet carrying it (its
//!    first transmission or any later one) is acked, and sent again, in a new packet, when its
//!    retransmission timeout expires. The RTO follows RFC 6298 from the round-trip times of acked
//!    packets: SRTT, RTTVAR, RTO = SRTT + max(tick, 4·RTTVAR) within 20 to 500 ms (100 ms before
//!    the first sample), doubled at each retransmission of the message. On a link that loses
//!    nothing, at most 10% of the messages are sent twice; at 10% loss each way, a message goes out
//!    at most 1.5 times on average, and the bytes on the wire (both directions, with 28 bytes of
//!    IP and UDP headers per datagram) stay under 2.1 times the payload bytes.
//! 5. **Reliable and ordered.** At 10% loss, 5% duplication and 10% reordering each way, every
//!    reliable message is delivered exactly once and in the order it was sent, across the
//!    wraparound of the sequence numbers: a message that arrives early waits in a reorder buffer,
//!    a copy of one already delivered or buffered is dropped.
//! 6. **Latest state.** An update is sent once and never retransmitted; a newer update replaces
//!    one not sent yet. The receiver delivers an update only if it is newer than the last one
//!    delivered (on the 16-bit circle: 3 is newer than 65,534): never an older one, never the same
//!    one twice, and every update that arrives newer than all before it.
//! 7. **Giving up.** When a reliable message has been sent 10 times without an ack, the peer is
//!    gone: the sender says on stderr that it `gave up` on the peer (naming its address) and exits
//!    1.
//! 8. **Bad datagrams.** A datagram shorter than the 13-byte header, with another protocol id,
//!    with a message header or payload that runs past its end, or with an unknown channel is
//!    dropped whole and reported as one line `malformed datagram from <addr>: <why>` on stderr. It
//!    changes nothing: no message of it is delivered, it does not become the peer's address, and
//!    it never panics.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.11   from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: **Command line.** `recv` prints `listening on <addr>` then `reliable
//!   <text>` / `update <text>` lines; `send --peer` reads `R <text>` / `U <text>` lines, prints
//!   `all acked: <n> reliable messages`, and exits 0 once stdin is closed and everything is acked
//! - [ ] Requirement 2: **The packet format.** Protocol id, sequence number, ack, ack bits, flags,
//!   then messages (channel, id, length, payload), big-endian, at most 1,200 bytes; packets,
//!   reliable messages and updates numbered from `--start-seq`
//! - [ ] Requirement 3: **Acks with a bitfield.** Every packet acks the newest packet received and
//!   the 32 before it, never one that did not arrive; a packet of acks alone is not acked, so an
//!   idle link goes quiet
//! - [ ] Requirement 4: **Retransmission after an RTO.** A message is kept until any packet
//!   carrying it is acked and resent when its RFC 6298 timeout expires, with backoff; bounded
//!   bytes and transmissions at 0% and 10% loss
//! - [ ] Requirement 5: **Reliable and ordered.** Every reliable message delivered exactly once, in
//!   order, at 10% loss, 5% duplication and 10% reordering, across the wraparound
//! - [ ] Requirement 6: **Latest state.** Updates sent once; delivered only if newer than the last
//!   one delivered, on the 16-bit circle
//! - [ ] Requirement 7: **Giving up.** After 10 transmissions without an ack, the sender says it
//!   `gave up` on the peer and exits 1
//! - [ ] Requirement 8: **Bad datagrams.** A malformed datagram is dropped whole, reported as one
//!   `malformed datagram from <addr>: <why>` line, and changes nothing; never a panic
//!
//! ## Notes
//!
//! `ch7_reliable_udp recv` prints what arrives; `ch7_reliable_udp send --peer ADDR` sends what it
//! reads on stdin. Read README.md for the requirements; `cargo lab test 7.11` grades this file.
//!
//! Given below: the constants of the specification, the packet layout (as constants), the
//! command line, the stdin reader, the socket and its wait (a precise 5 ms tick needs
//! `epoll_wait`: see `Socket`), and the output the grader reads. Yours: everything between the
//! socket and the output. One way to cut it, one small module per idea:
//!
//! 1. **Sequence numbers on a circle**: "is `a` newer than `b`?" for 16-bit numbers that wrap.
//!    Not `a > b`: after 65,535 comes 0, and the grader makes that happen in every test.
//! 2. **The wire**: parse a datagram *whole* (every length checked before you slice) into a
//!    header and messages, or a reason it is malformed; write a header and messages.
//! 3. **Received packets**: the newest sequence number received and a 32-bit window of the ones
//!    before it, what every packet's ack fields carry.
//! 4. **The RTO**: RFC 6298's SRTT and RTTVAR from the round trips of acked packets.
//! 5. **The sender's outbox**: reliable messages kept until acked, a record of which messages
//!    each sent packet carried (so an ack of packet 7 releases them), a retransmission deadline
//!    per message, a transmission count for giving up.
//! 6. **The receiver's inbox**: the id of the next message to deliver, and a reorder buffer.
//! 7. **The latest filter**: the last update delivered.
//! 8. **An endpoint** tying them together, driven by two events: a datagram arrived, and the
//!    tick (build at most one packet: acks, the newest update, the reliable messages due).
//!
//! Then `run_recv` and `run_send` are the game loops: wait for datagrams until the next tick
//! (`Socket::receive_until`), then tick. Remove the `allow` below once everything is used.
#![allow(unused_variables, dead_code, unused_imports)]

use std::fmt::Display;
use std::io::{self, BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ch7_support::{Epoll, Events, Interest, Token, Trigger};
use clap::{Parser, Subcommand};

/// Where `recv` listens when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7100";
/// The game loop's period: each peer sends at most one packet per tick.
pub const TICK: Duration = Duration::from_millis(5);
/// The largest packet we send: well under any path's MTU, so IP never fragments it.
pub const MAX_PACKET: usize = 1200;
/// The largest message payload: one message always fits in one packet.
pub const MAX_PAYLOAD: usize = 1000;
/// How many transmissions of one reliable message before the sender gives up on the peer.
pub const MAX_TRANSMISSIONS: u32 = 10;
/// The retransmission timeout before the first RTT sample...
pub const INITIAL_RTO: Duration = Duration::from_millis(100);
/// ...never below this...
pub const MIN_RTO: Duration = Duration::from_millis(20);
/// ...and never above this, backoff included.
pub const MAX_RTO: Duration = Duration::from_millis(500);

const USAGE: &str = "usage: ch7_reliable_udp [--start-seq N] [--no-ack-bits] \
                     (recv [--addr HOST:PORT] | send --peer HOST:PORT)";

/// The packet layout (README, requirement 2), big-endian:
///
/// ```text
///  0        4      6      8          12     13
///  | proto  | seq  | ack  | ack bits | flags | message | message | ...
///    u32      u16    u16    u32        u8
///
///  message: | channel u8 | id u16 | length u16 | payload (length bytes) |
/// ```
pub mod wire {
    pub const PROTOCOL_ID: u32 = 0x5255_4450;
    pub const HEADER_LEN: usize = 13;
    pub const MESSAGE_HEADER_LEN: usize = 5;
    /// Flags bit 0: `ack` and `ack bits` are valid (a peer that received nothing has no ack).
    pub const FLAG_ACK: u8 = 0x01;
    pub const CHANNEL_RELIABLE: u8 = 0;
    pub const CHANNEL_LATEST: u8 = 1;

    // TODO: parse a datagram into its header and messages, or a reason it is malformed
    // (checking every length before slicing: a length field is a claim, not a fact); write a
    // header and messages into a packet.
}

// TODO: the layer itself (see the notes above): sequence numbers on a circle, received packets
// and their ack bits, the RTO, the outbox, the inbox, the latest filter, an endpoint.

// ---------------------------------------------------------------------------------------------
// The command line, stdin, the socket and the output (given).

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_reliable_udp",
    about = "A reliability layer over UDP: a reliable-ordered channel and a latest-state channel"
)]
pub struct Args {
    #[command(subcommand)]
    pub mode: Mode,
    /// First packet sequence number, reliable message id and update id, in both directions
    /// (both peers must be given the same)
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    pub start_seq: u16,
    /// Ack only the newest packet, with an empty ack bitfield (the benchmark's baseline)
    #[arg(long, global = true)]
    pub no_ack_bits: bool,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Print every message delivered: `reliable <text>` or `update <text>`
    Recv {
        /// Where to listen (port 0: the kernel picks one; `listening on <addr>` says which)
        #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
    /// Send the lines of stdin: `R <text>` reliable, `U <text>` a state update
    Send {
        /// The receiving peer (or a relay in front of it)
        #[arg(long, value_name = "HOST:PORT")]
        peer: SocketAddr,
    },
}

/// What the stdin thread hands to the sender's loop.
enum Input {
    Reliable(Vec<u8>),
    Latest(Vec<u8>),
    End,
}

/// Why a loop stopped.
#[derive(Debug)]
pub enum RunError {
    Io(&'static str, io::Error),
    /// A reliable message went out [`MAX_TRANSMISSIONS`] times without an ack.
    GaveUp {
        peer: SocketAddr,
        id: u16,
        transmissions: u32,
    },
}

impl Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Io(what, e) => write!(f, "{what}: {e}"),
            RunError::GaveUp {
                peer,
                id,
                transmissions,
            } => write!(
                f,
                "gave up: peer {peer} is not answering (reliable message {id} unacked after \
                 {transmissions} transmissions)"
            ),
        }
    }
}

/// Reads `R <text>` and `U <text>` lines on a thread of its own (stdin blocks), so the loop
/// keeps ticking; the loop takes them with `try_recv` at each tick. A bad line is reported and
/// skipped; [`Input::End`] comes last.
fn spawn_stdin_reader() -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || read_stdin(tx));
    rx
}

fn read_stdin(inputs: mpsc::Sender<Input>) {
    for (n, line) in io::stdin().lock().lines().enumerate() {
        let Ok(line) = line else { break };
        let input = match line.split_at_checked(2) {
            Some(("R ", text)) => Input::Reliable(text.as_bytes().to_vec()),
            Some(("U ", text)) => Input::Latest(text.as_bytes().to_vec()),
            _ => {
                eprintln!(
                    "ch7_reliable_udp: line {}: expected `R <text>` or `U <text>`",
                    n + 1
                );
                continue;
            }
        };
        if matches!(&input, Input::Reliable(t) | Input::Latest(t) if t.len() > MAX_PAYLOAD) {
            eprintln!(
                "ch7_reliable_udp: line {}: longer than {MAX_PAYLOAD} bytes",
                n + 1
            );
            continue;
        }
        if inputs.send(input).is_err() {
            return;
        }
    }
    let _ = inputs.send(Input::End);
}

/// The socket and the wait for it. The wait is `epoll_wait` (lab 7.6's wrapper, from
/// `ch7_support`), not a blocking `recv` with `SO_RCVTIMEO`: the kernel rounds a socket
/// timeout up to its timer tick (4 ms at `CONFIG_HZ=250`), which would stretch our 5 ms tick to
/// 8, while `epoll_wait`'s millisecond timeout runs on a high-resolution timer.
struct Socket {
    udp: UdpSocket,
    poller: Epoll,
    events: Events,
}

impl Socket {
    fn bind(addr: SocketAddr) -> Result<Socket, RunError> {
        let udp = UdpSocket::bind(addr).map_err(|e| RunError::Io("bind", e))?;
        udp.set_nonblocking(true)
            .map_err(|e| RunError::Io("set_nonblocking", e))?;
        let poller = Epoll::new().map_err(|e| RunError::Io("epoll_create1", e))?;
        poller
            .add(&udp, Token(0), Interest::READABLE, Trigger::Level)
            .map_err(|e| RunError::Io("epoll_ctl", e))?;
        Ok(Socket {
            udp,
            poller,
            events: Events::with_capacity(1),
        })
    }

    fn local_addr(&self) -> Result<SocketAddr, RunError> {
        self.udp
            .local_addr()
            .map_err(|e| RunError::Io("local_addr", e))
    }

    /// Hands every datagram that arrives before `until` to `on_datagram`.
    fn receive_until(
        &mut self,
        until: Instant,
        mut on_datagram: impl FnMut(&[u8], SocketAddr),
    ) -> Result<(), RunError> {
        let mut buf = [0u8; 2048];
        loop {
            loop {
                match self.udp.recv_from(&mut buf) {
                    Ok((n, from)) => on_datagram(&buf[..n], from),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // An ICMP error for an earlier datagram, or a signal: the peer may come
                    // back; the retransmission limit decides when to give up.
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => return Err(RunError::Io("recv", e)),
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.poller
                .wait(&mut self.events, Some(left))
                .map_err(|e| RunError::Io("epoll_wait", e))?;
        }
    }

    /// A lost send is a lost packet: the acks and the retransmissions repair it.
    fn send_to(&self, packet: &[u8], to: SocketAddr) {
        let _ = self.udp.send_to(packet, to);
    }
}

/// Reports a datagram that was dropped, the way the grader counts them: one line on stderr.
fn report_malformed(from: SocketAddr, why: impl Display) {
    eprintln!("ch7_reliable_udp: malformed datagram from {from}: {why}");
}

/// Prints a message delivered, the way the grader reads it: `reliable <text>` or
/// `update <text>`, one line (stdout is line-buffered: each line is written at once).
fn print_message(out: &mut impl Write, kind: &str, payload: &[u8]) -> io::Result<()> {
    writeln!(out, "{kind} {}", String::from_utf8_lossy(payload))
}

/// The receiving peer: prints `listening on <addr>`, then delivers and acks whatever the
/// peer sends, forever. The peer's address is the source of the last *valid* packet.
pub fn run_recv(addr: SocketAddr, start: u16, ack_bits: bool) -> Result<(), RunError> {
    todo!(
        "Socket::bind, println!(\"listening on {{}}\", socket.local_addr()?), then the loop: \
         receive_until the next tick (parse, ack, deliver with print_message, or \
         report_malformed), then tick (send at most one packet)"
    )
}

/// The sending peer: sends what `spawn_stdin_reader` hands over, until stdin is closed and every
/// reliable message is acked (then a one-line summary, and `Ok`), or until a message went out
/// [`MAX_TRANSMISSIONS`] times without an ack (`RunError::GaveUp`). Prints `all acked: <n>
/// reliable messages` each time everything queued so far is acked.
pub fn run_send(peer: SocketAddr, start: u16, ack_bits: bool) -> Result<(), RunError> {
    todo!(
        "Socket::bind(any_port_for(peer)), spawn_stdin_reader, then the loop: receive_until the \
         next tick (acks from the peer), take the new inputs, check for a dead peer, send at \
         most one packet"
    )
}

/// Any port on any address of the peer's family: the kernel picks; the peer answers it.
fn any_port_for(peer: SocketAddr) -> SocketAddr {
    let any: IpAddr = if peer.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    SocketAddr::new(any, 0)
}

/// The next tick: one period later, or one period from now if we fell behind (a slow machine
/// skips ticks rather than bursting to catch up).
fn tick(previous: Instant) -> Instant {
    let now = Instant::now();
    let next = previous + TICK;
    if next < now { now + TICK } else { next }
}

fn main() -> ExitCode {
    let args: Args = match ch7_support::cli::parse_args(USAGE) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let ack_bits = !args.no_ack_bits;
    let result = match args.mode {
        Mode::Recv { addr } => run_recv(addr, args.start_seq, ack_bits),
        Mode::Send { peer } => run_send(peer, args.start_seq, ack_bits),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch7_reliable_udp: {e}");
            ExitCode::from(1)
        }
    }
}
