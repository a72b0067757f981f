//! Grader for the reliability layer over UDP: black-box, through the real binary.
//!
//! Each test starts a receiver (`recv --addr 127.0.0.1:0`), puts the lossy relay of labkit in
//! front of it (`labkit::lossy_relay`: loss, duplication, hold-back reordering and delay from a
//! seeded generator, both directions), and runs a sender (`send --peer <relay>`) fed through
//! its stdin. The relay counts and records every datagram, and the grader decodes them with
//! its own parser of the packet format: what the layer *did* is read off the wire, in counts
//! and ratios, never in wall-clock time.
//!
//! Every run picks a random seed and a random `--start-seq` just below 65,535, so sequence
//! numbers wrap in every test. A failure prints both; `LAB_SEED=<seed> cargo test <name>`
//! replays the same losses and the same messages (the timing of the peers still varies).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use labkit::lossy_relay::{Direction, Impairments, LossyRelay, RelayConfig, SplitMix64};
use labkit::process::{die_with_test, wait_timeout};
use labkit::{Server, lab_bin, run};

// ---------------------------------------------------------------------------------------------
// The packet format, as the README specifies it: the grader's own decoder.

const PROTOCOL_ID: u32 = 0x5255_4450;
const HEADER_LEN: usize = 13;
const FLAG_ACK: u8 = 1;
const RELIABLE: u8 = 0;
const LATEST: u8 = 1;
const MAX_PACKET: usize = 1200;
/// IPv4 (20 bytes) and UDP (8 bytes) headers: what each datagram costs on a real wire besides
/// its payload.
const UDP_IP_OVERHEAD: u64 = 28;
const MAX_TRANSMISSIONS: u64 = 10;
/// How long a test waits for a fact before it fails (never a wait that is expected to last).
const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
struct Packet {
    seq: u16,
    ack: Option<(u16, u32)>,
    messages: Vec<(u8, u16, Vec<u8>)>,
}

impl Packet {
    /// The packets this one acks: `ack`, and `ack - 1 - i` for every bit `i` set.
    fn acked(&self) -> Vec<u16> {
        let Some((ack, bits)) = self.ack else {
            return Vec::new();
        };
        let mut acked = vec![ack];
        acked.extend(
            (0..32u16)
                .filter(|i| bits & (1 << i) != 0)
                .map(|i| ack.wrapping_sub(i + 1)),
        );
        acked
    }
}

fn decode(d: &[u8]) -> Result<Packet, String> {
    let be16 = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
    if d.len() < HEADER_LEN {
        return Err(format!(
            "{} bytes, shorter than the 13-byte header",
            d.len()
        ));
    }
    let proto = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    if proto != PROTOCOL_ID {
        return Err(format!(
            "protocol id {proto:#010x}, wanted {PROTOCOL_ID:#010x}"
        ));
    }
    let bits = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
    let ack = (d[12] & FLAG_ACK != 0).then(|| (be16(6), bits));
    let mut messages = Vec::new();
    let mut at = HEADER_LEN;
    while at < d.len() {
        if d.len() - at < 5 {
            return Err(format!("a message header cut short at byte {at}"));
        }
        let (channel, id, len) = (d[at], be16(at + 1), usize::from(be16(at + 3)));
        if channel > LATEST {
            return Err(format!("channel {channel} at byte {at}"));
        }
        if d.len() - at - 5 < len {
            return Err(format!(
                "a {len}-byte payload at byte {at} runs past the end"
            ));
        }
        messages.push((channel, id, d[at + 5..at + 5 + len].to_vec()));
        at += 5 + len;
    }
    Ok(Packet {
        seq: be16(4),
        ack,
        messages,
    })
}

/// Builds a packet, for the malformed-datagram test.
fn encode(seq: u16, messages: &[(u8, u16, &[u8])]) -> Vec<u8> {
    let mut d = PROTOCOL_ID.to_be_bytes().to_vec();
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&[0; 6]);
    d.push(0);
    for (channel, id, payload) in messages {
        d.push(*channel);
        d.extend_from_slice(&id.to_be_bytes());
        d.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        d.extend_from_slice(payload);
    }
    d
}

// ---------------------------------------------------------------------------------------------
// A run: a seed, a start sequence number, a receiver behind a relay, and a sender.

/// The random choices of one test run.
struct Run {
    seed: u64,
    start: u16,
    rng: SplitMix64,
}

impl Run {
    /// A random seed (or `LAB_SEED`), and a start sequence number in the last 32 before the
    /// wrap: every test crosses from 65,535 to 0 within its first 32 packets and messages.
    fn new() -> Run {
        let seed = std::env::var("LAB_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random::<u64>);
        let mut rng = SplitMix64::new(seed);
        let start = u16::MAX - (rng.next_u64() % 32) as u16;
        Run { seed, start, rng }
    }

    /// Names the run in a failure message.
    fn tag(&self) -> String {
        format!(
            "(seed {}, --start-seq {}; replay with LAB_SEED={})",
            self.seed, self.start, self.seed
        )
    }

    /// A random text of `min..=max` letters and digits.
    fn text(&mut self, min: usize, max: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let len = min + (self.rng.next_u64() as usize) % (max - min + 1);
        (0..len)
            .map(|_| ALPHABET[(self.rng.next_u64() as usize) % ALPHABET.len()] as char)
            .collect()
    }
}

/// A network: `loss`, `duplicate` and `reorder` (held back 30 ms) probabilities, 10 ms of
/// delay plus up to `jitter_ms` of jitter, each way.
fn network(loss: f64, duplicate: f64, reorder: f64, jitter_ms: u64) -> Impairments {
    Impairments {
        loss,
        duplicate,
        reorder,
        hold: Duration::from_millis(30),
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(jitter_ms),
    }
}

/// A receiver with the relay in front of it.
struct Link {
    receiver: Server,
    relay: LossyRelay,
}

impl Link {
    fn start(run: &Run, net: Impairments, receiver_args: &[&str]) -> Link {
        let mut cmd = Command::new(lab_bin!());
        cmd.args(["recv", "--addr", "127.0.0.1:0", "--start-seq"])
            .arg(run.start.to_string())
            .args(receiver_args);
        let receiver = Server::start_command(cmd);
        let config = RelayConfig {
            record: true,
            ..RelayConfig::symmetric(run.seed, net)
        };
        let relay = LossyRelay::start(receiver.addr(), config).expect("start the relay");
        Link { receiver, relay }
    }

    /// The receiver's deliveries so far: (reliable texts, update texts).
    fn delivered(&self) -> (Vec<String>, Vec<String>) {
        let output = self.receiver.output();
        let mut reliable = Vec::new();
        let mut updates = Vec::new();
        for line in output.lines() {
            if let Some(text) = line.strip_prefix("reliable ") {
                reliable.push(text.to_string());
            } else if let Some(text) = line.strip_prefix("update ") {
                updates.push(text.to_string());
            }
        }
        (reliable, updates)
    }

    /// Waits until the receiver has delivered at least `n` reliable messages.
    fn wait_for_reliable(&self, n: usize) -> bool {
        labkit::wait::until(DEADLINE, || self.delivered().0.len() >= n)
    }

    /// Every datagram of one direction, decoded, as the peer sent it (`sent: false`) or as
    /// the relay passed it on (`sent: true`). A datagram that does not decode fails the test.
    fn packets(&self, direction: Direction, as_relayed: bool, run: &Run, req: u8) -> Vec<Packet> {
        let recorded = self.relay.recorded(direction);
        let datagrams = if as_relayed {
            recorded.sent
        } else {
            recorded.received
        };
        datagrams
            .iter()
            .enumerate()
            .map(|(i, d)| {
                decode(d).unwrap_or_else(|why| {
                    panic!(
                        "requirement {req}: {direction:?} datagram {i} does not follow the \
                         packet format: {why} {}\n{d:02x?}",
                        run.tag()
                    )
                })
            })
            .collect()
    }

    /// Waits until the relay holds no datagram back (everything it received is sent or
    /// dropped), so its records are complete.
    fn settle(&self) {
        let idle = |d| {
            let s = self.relay.stats(d);
            s.datagrams_in + s.duplicated == s.datagrams_out + s.dropped
        };
        labkit::wait::until(Duration::from_secs(2), || {
            idle(Direction::Forward) && idle(Direction::Backward)
        });
    }

    /// Bytes on the wire both ways, as the peers sent them, counting IP and UDP headers.
    fn wire_bytes(&self) -> u64 {
        [Direction::Forward, Direction::Backward]
            .iter()
            .map(|&d| {
                let s = self.relay.stats(d);
                s.bytes_in + UDP_IP_OVERHEAD * s.datagrams_in
            })
            .sum()
    }
}

/// The sender: a child process fed through stdin; everything it prints is kept.
struct Sender {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Sender {
    fn start(run: &Run, peer: SocketAddr, extra: &[&str]) -> Sender {
        let mut cmd = Command::new(lab_bin!());
        cmd.args(["send", "--peer", &peer.to_string(), "--start-seq"])
            .arg(run.start.to_string())
            .args(extra);
        let mut child = die_with_test(&mut cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the sender");
        let follow = |pipe: Box<dyn Read + Send>| {
            let log = Arc::new(Mutex::new(String::new()));
            let sink = log.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
            log
        };
        let stdout = follow(Box::new(child.stdout.take().expect("piped")));
        let stderr = follow(Box::new(child.stderr.take().expect("piped")));
        Sender {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
        }
    }

    /// Writes `lines`, pausing 1 ms after every `burst` of them, as a game produces messages
    /// over time rather than all at once.
    fn feed(&mut self, lines: &[String], burst: usize) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        for chunk in lines.chunks(burst) {
            let mut text = chunk.join("\n");
            text.push('\n');
            if stdin.write_all(text.as_bytes()).is_err() {
                return; // the sender exited: the assertions say why
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Closes stdin and waits for the sender to exit, at most [`DEADLINE`].
    fn finish(&mut self) -> Option<ExitStatus> {
        self.close_stdin();
        wait_timeout(&mut self.child, DEADLINE)
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Fails unless the sender exited 0 (a panic, a give-up or a hang is reported).
    fn assert_success(&mut self, req: u8, run: &Run) {
        let status = self.finish();
        assert!(
            status.is_some_and(|s| s.success()),
            "requirement {req}: the sender should exit 0 once every reliable message is acked; \
             it {} {}\n--- sender stdout ---\n{}--- sender stderr ---\n{}",
            match status {
                None => format!("was still running after {DEADLINE:?} (killed)"),
                Some(s) => format!("exited with {s}"),
            },
            run.tag(),
            self.stdout(),
            self.stderr()
        );
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` reliable messages of random texts, as stdin lines and as the texts expected.
fn reliable_messages(
    run: &mut Run,
    n: usize,
    min: usize,
    max: usize,
) -> (Vec<String>, Vec<String>) {
    let texts: Vec<String> = (0..n)
        .map(|i| format!("m{i}-{}", run.text(min, max)))
        .collect();
    let lines = texts.iter().map(|t| format!("R {t}")).collect();
    (lines, texts)
}

/// Fails with the first difference between what was sent and what was delivered.
fn assert_same_sequence(req: u8, what: &str, sent: &[String], got: &[String], run: &Run) {
    if sent == got {
        return;
    }
    let first = sent.iter().zip(got).position(|(a, b)| a != b);
    let seen: HashMap<&String, usize> = got.iter().fold(HashMap::new(), |mut m, t| {
        *m.entry(t).or_default() += 1;
        m
    });
    let twice = seen.values().filter(|&&n| n > 1).count();
    let missing = sent.iter().filter(|t| !seen.contains_key(t)).count();
    panic!(
        "requirement {req}: {what}: sent {} messages, delivered {} ({missing} never, {twice} more \
         than once); first difference at position {}: sent {:?}, delivered {:?} {}",
        sent.len(),
        got.len(),
        first.unwrap_or(sent.len().min(got.len())),
        first.map(|i| &sent[i]),
        first.map(|i| &got[i]),
        run.tag()
    );
}

/// How many times each reliable message id went out, from the sender's datagrams.
fn transmissions(packets: &[Packet]) -> BTreeMap<u16, u64> {
    let mut count = BTreeMap::new();
    for p in packets {
        for (channel, id, _) in &p.messages {
            if *channel == RELIABLE {
                *count.entry(*id).or_default() += 1;
            }
        }
    }
    count
}

// ---------------------------------------------------------------------------------------------
// Requirement 1: the command line.

#[test]
fn prints_listening_and_rejects_bad_arguments() {
    let help = run(lab_bin!(), &["--help"]);
    assert_eq!(help.code(), Some(0), "requirement 1: --help should exit 0");
    assert!(
        help.stdout_str().contains("recv") && help.stdout_str().contains("send"),
        "requirement 1: --help should print the usage (both modes) on stdout:\n{}",
        help.stdout_str()
    );
    for bad in [
        &["--bogus"][..],
        &["send"],
        &["recv", "--start-seq", "70000"],
        &["send", "--peer", "nowhere"],
    ] {
        let out = run(lab_bin!(), bad);
        assert_eq!(
            out.code(),
            Some(2),
            "requirement 1: `{}` is a usage error: exit 2, got {:?}\n{}",
            bad.join(" "),
            out.code(),
            out.stderr_str()
        );
    }

    let run = Run::new();
    let link = Link::start(&run, Impairments::NONE, &[]);
    assert_ne!(
        link.receiver.addr().port(),
        0,
        "requirement 1: `listening on` should print the bound port, not 0"
    );
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let lines = ["X what is this".to_string(), "R hello".to_string()];
    sender.feed(&lines, 2);
    sender.assert_success(1, &run);
    assert!(
        sender.stderr().contains("line 1"),
        "requirement 1: a line that is neither `R <text>` nor `U <text>` is reported on stderr \
         with its line number; stderr was:\n{}",
        sender.stderr()
    );
    assert!(
        link.wait_for_reliable(1) && link.delivered().0 == ["hello"],
        "requirement 1: the receiver should print `reliable hello`; it printed:\n{}",
        link.receiver.output()
    );
    assert!(
        sender.stdout().contains("all acked: 1 reliable messages"),
        "requirement 1: the sender prints `all acked: 1 reliable messages` once it is acked; \
         stdout was:\n{}",
        sender.stdout()
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 2: the packet format.

#[test]
fn packets_follow_the_wire_format() {
    let mut run = Run::new();
    let link = Link::start(&run, network(0.1, 0.0, 0.1, 10), &[]);
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let (mut lines, texts) = reliable_messages(&mut run, 200, 1, 60);
    let updates: Vec<String> = (0..100).map(|k| format!("U state-{k}")).collect();
    for (i, u) in updates.iter().enumerate() {
        lines.insert(i * 3, u.clone());
    }
    sender.feed(&lines, 3);
    sender.assert_success(2, &run);

    let sent = link.packets(Direction::Forward, false, &run, 2);
    for (i, p) in sent.iter().enumerate() {
        let want = run.start.wrapping_add(i as u16);
        assert_eq!(
            p.seq,
            want,
            "requirement 2: the sender's packet {i} should have sequence number {want} \
             (--start-seq {}, then +1 per packet, wrapping after 65535), got {} {}",
            run.start,
            p.seq,
            run.tag()
        );
    }
    let too_big = link
        .relay
        .recorded(Direction::Forward)
        .received
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0);
    assert!(
        too_big <= MAX_PACKET,
        "requirement 2: a packet is at most {MAX_PACKET} bytes; one was {too_big} {}",
        run.tag()
    );
    // Reliable message ids: the i-th message has id start + i, in every copy of it.
    for p in &sent {
        for (channel, id, payload) in &p.messages {
            if *channel != RELIABLE {
                continue;
            }
            let index = usize::from(id.wrapping_sub(run.start));
            let payload = String::from_utf8_lossy(payload);
            assert!(
                texts.get(index).is_some_and(|t| *t == payload),
                "requirement 2: reliable message id {id} should carry message {index} \
                 (ids start at --start-seq {}), it carries {payload:?} {}",
                run.start,
                run.tag()
            );
        }
    }
    // Update ids: from start, increasing, each update sent once (never retransmitted).
    let update_ids: Vec<u16> = sent
        .iter()
        .flat_map(|p| p.messages.iter())
        .filter(|(channel, _, _)| *channel == LATEST)
        .map(|(_, id, _)| *id)
        .collect();
    assert!(
        update_ids.first() == Some(&run.start),
        "requirement 2: the first update should have id --start-seq {}, got {:?} {}",
        run.start,
        update_ids.first(),
        run.tag()
    );
    for pair in update_ids.windows(2) {
        assert_eq!(
            pair[1],
            pair[0].wrapping_add(1),
            "requirement 6: updates go out once each, numbered consecutively; after update \
             {} came {} {}",
            pair[0],
            pair[1],
            run.tag()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Requirement 3: acks with a bitfield.

#[test]
fn acks_name_every_packet_that_arrived_and_no_other() {
    let mut run = Run::new();
    let link = Link::start(&run, network(0.1, 0.0, 0.1, 10), &[]);
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let (lines, texts) = reliable_messages(&mut run, 300, 1, 40);
    sender.feed(&lines, 2);
    sender.assert_success(3, &run);
    assert!(
        link.wait_for_reliable(texts.len()),
        "requirement 5: the receiver delivered {} of {} reliable messages {}",
        link.delivered().0.len(),
        texts.len(),
        run.tag()
    );
    link.settle();

    // What reached the receiver: the forward datagrams the relay passed on.
    let arrived: Vec<Packet> = link.packets(Direction::Forward, true, &run, 3);
    let arrived_seqs: HashSet<u16> = arrived.iter().map(|p| p.seq).collect();
    let with_messages: HashSet<u16> = arrived
        .iter()
        .filter(|p| !p.messages.is_empty())
        .map(|p| p.seq)
        .collect();
    // Every message-carrying packet that arrived is acked by some packet of the receiver
    // (within a tick of its arrival; we wait for the last ones).
    let unacked = || {
        let acks = link.packets(Direction::Backward, false, &run, 3);
        let acked: HashSet<u16> = acks.iter().flat_map(Packet::acked).collect();
        let mut missing: Vec<u16> = with_messages.difference(&acked).copied().collect();
        missing.sort_unstable();
        (acks, missing)
    };
    labkit::wait::until(Duration::from_secs(5), || unacked().1.is_empty());
    let (acks, missing) = unacked();
    assert!(
        missing.is_empty(),
        "requirement 3: {} of the {} packets with messages that reached the receiver were never \
         acked by any of its {} packets (first: {:?}): an ack names the newest packet *and* the \
         32 before it, so a packet that arrived just before another is acked too {}",
        missing.len(),
        with_messages.len(),
        acks.len(),
        &missing[..missing.len().min(5)],
        run.tag()
    );
    assert!(
        acks.iter()
            .any(|p| p.ack.is_some_and(|(_, bits)| bits != 0)),
        "requirement 3: none of the receiver's {} packets has a bit set in its ack bits: each \
         should say which of the 32 packets before the newest arrived {}",
        acks.len(),
        run.tag()
    );
    for p in &acks {
        assert!(
            p.ack.is_some(),
            "requirement 3: every packet of the receiver has something to ack (flags bit 0 set) {}",
            run.tag()
        );
        let false_acks: Vec<u16> = p
            .acked()
            .into_iter()
            .filter(|s| !arrived_seqs.contains(s))
            .collect();
        assert!(
            false_acks.is_empty(),
            "requirement 3: the receiver's packet {} (ack {:?}) acks packets that never reached \
             it: {false_acks:?} {}",
            p.seq,
            p.ack,
            run.tag()
        );
    }

    // --no-ack-bits: the same acks, with the bitfield empty.
    let mut run = Run::new();
    let link = Link::start(&run, network(0.1, 0.0, 0.1, 10), &["--no-ack-bits"]);
    let mut sender = Sender::start(&run, link.relay.addr(), &["--no-ack-bits"]);
    let (lines, _) = reliable_messages(&mut run, 40, 1, 40);
    sender.feed(&lines, 2);
    sender.assert_success(3, &run);
    let acks = link.packets(Direction::Backward, false, &run, 3);
    assert!(
        acks.iter()
            .all(|p| p.ack.is_some_and(|(_, bits)| bits == 0)),
        "requirement 3: with --no-ack-bits every ack's bitfield is 0 {}",
        run.tag()
    );
}

#[test]
fn the_link_goes_quiet_once_everything_is_acked() {
    let mut run = Run::new();
    let link = Link::start(&run, network(0.1, 0.0, 0.1, 10), &[]);
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let (lines, texts) = reliable_messages(&mut run, 100, 1, 40);
    sender.feed(&lines, 2);
    let want = format!("all acked: {} reliable messages", texts.len());
    let acked = labkit::wait::until(DEADLINE, || sender.stdout().contains(&want));
    assert!(
        acked,
        "requirement 4: the sender never printed `{want}` (a message is done once *any* packet \
         carrying it is acked, the first or a retransmission) {}\n--- sender stdout ---\n{}\
         --- sender stderr ---\n{}",
        run.tag(),
        sender.stdout(),
        sender.stderr()
    );
    // Everything is acked; the sender's stdin is still open. Over the next 60 ticks nothing
    // should be sent: no retransmission, and no packet of acks that acks a packet of acks.
    let before = (
        link.relay.stats(Direction::Forward).datagrams_in,
        link.relay.stats(Direction::Backward).datagrams_in,
    );
    thread::sleep(Duration::from_millis(300));
    let after = (
        link.relay.stats(Direction::Forward).datagrams_in,
        link.relay.stats(Direction::Backward).datagrams_in,
    );
    let (forward, backward) = (after.0 - before.0, after.1 - before.1);
    assert!(
        forward == 0 && backward <= 5,
        "requirement 3: once every message is acked the link should go quiet; in the next \
         300 ms the sender sent {forward} datagrams and the receiver {backward} (packets with \
         only acks are not acked, and acked messages are not resent) {}",
        run.tag()
    );
    sender.assert_success(4, &run);
    assert_same_sequence(5, "reliable messages", &texts, &link.delivered().0, &run);
}

// ---------------------------------------------------------------------------------------------
// Requirement 4: retransmission after an RTO, and the bandwidth it costs.

#[test]
fn retransmits_nothing_on_a_clean_link() {
    let mut run = Run::new();
    let link = Link::start(&run, network(0.0, 0.0, 0.0, 5), &[]);
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let (lines, texts) = reliable_messages(&mut run, 400, 1, 40);
    sender.feed(&lines, 2);
    sender.assert_success(4, &run);
    let sent = transmissions(&link.packets(Direction::Forward, false, &run, 4));
    let copies: u64 = sent.values().sum();
    let resent = copies - sent.len() as u64;
    assert!(
        sent.len() == texts.len() && resent * 10 <= texts.len() as u64,
        "requirement 4: on a link that loses nothing (10-15 ms each way) a message should be \
         sent once, and resent only if its ack is later than the RTO; {} messages went out \
         {copies} times ({resent} retransmissions, at most {} allowed) {}",
        sent.len(),
        texts.len() / 10,
        run.tag()
    );
}

#[test]
fn overhead_is_bounded_at_10_percent_loss() {
    let mut run = Run::new();
    let link = Link::start(&run, network(0.1, 0.0, 0.05, 20), &[]);
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let (lines, texts) = reliable_messages(&mut run, 600, 10, 60);
    sender.feed(&lines, 1);
    let status = sender.finish();
    let payload: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let wire = link.wire_bytes();
    let sent = transmissions(&link.packets(Direction::Forward, false, &run, 4));
    let per_message = sent.values().sum::<u64>() as f64 / texts.len() as f64;
    let ratio = wire as f64 / payload as f64;
    assert!(
        ratio <= 2.1 && per_message <= 1.5,
        "requirement 4: at 10% loss each way, {wire} bytes on the wire (both directions, 28 \
         bytes of IP and UDP headers per datagram) carried {payload} bytes of messages: {ratio:.2} \
         per payload byte (at most 2.1); each message went out {per_message:.2} times (at most \
         1.5: resend after an RTO, not every tick; ack 33 packets per ack) {}",
        run.tag()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "requirement 4: the sender should exit 0 once everything is acked {}\n{}",
        run.tag(),
        sender.stderr()
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 5: reliable and ordered.

#[test]
fn reliable_messages_arrive_exactly_once_in_order() {
    let mut run = Run::new();
    let link = Link::start(&run, network(0.1, 0.05, 0.1, 10), &[]);
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let (mut lines, texts) = reliable_messages(&mut run, 800, 1, 100);
    for k in (0..lines.len()).step_by(4).rev() {
        lines.insert(k, format!("U tick-{k}"));
    }
    sender.feed(&lines, 3);
    sender.assert_success(5, &run);
    link.wait_for_reliable(texts.len());
    let stats = link.relay.stats(Direction::Forward);
    assert!(
        stats.dropped > 0 && stats.held_back > 0,
        "requirement 5: this test needs a relay that loses and reorders; of {} datagrams it lost \
         {} and held back {} {}",
        stats.datagrams_in,
        stats.dropped,
        stats.held_back,
        run.tag()
    );
    assert_same_sequence(
        5,
        "reliable messages at 10% loss, 5% duplication, 10% reordering",
        &texts,
        &link.delivered().0,
        &run,
    );
}

#[test]
fn duplicated_datagrams_are_delivered_once() {
    let mut run = Run::new();
    // Every third datagram is sent twice, with no jitter: the copy arrives right behind it.
    let mut net = network(0.0, 0.3, 0.0, 0);
    net.delay = Duration::from_millis(5);
    let link = Link::start(&run, net, &[]);
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let (reliable, texts) = reliable_messages(&mut run, 200, 1, 30);
    let mut lines = Vec::new();
    for (k, line) in reliable.into_iter().enumerate() {
        lines.push(line);
        lines.push(format!("U {k}"));
    }
    sender.feed(&lines, 2);
    sender.assert_success(5, &run);
    link.wait_for_reliable(texts.len());
    let copies = link.relay.stats(Direction::Forward).duplicated;
    assert!(
        copies > 0,
        "requirement 5: this test needs a relay that duplicates; it made no copy {}",
        run.tag()
    );
    let (got, updates) = link.delivered();
    assert_same_sequence(
        5,
        "reliable messages, with 30% of datagrams duplicated",
        &texts,
        &got,
        &run,
    );
    let numbers: Vec<u64> = updates.iter().filter_map(|u| u.parse().ok()).collect();
    if let Some(pair) = numbers.windows(2).find(|w| w[1] <= w[0]) {
        panic!(
            "requirement 6: update {} was delivered after update {}: a copy of the last update \
             delivered is not newer than it {}",
            pair[1],
            pair[0],
            run.tag()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Requirement 6: the latest channel.

#[test]
fn the_latest_channel_never_goes_backwards() {
    let run = Run::new();
    let link = Link::start(&run, network(0.1, 0.1, 0.2, 10), &[]);
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let lines: Vec<String> = (0..400).map(|k| format!("U {k}")).collect();
    sender.feed(&lines, 1);
    sender.assert_success(6, &run);
    link.settle();

    // The updates in the order the receiver got them, and those a newer-only filter keeps.
    let arrived: Vec<u64> = link
        .packets(Direction::Forward, true, &run, 6)
        .iter()
        .flat_map(|p| p.messages.clone())
        .filter(|(channel, _, _)| *channel == LATEST)
        .filter_map(|(_, _, payload)| String::from_utf8_lossy(&payload).parse().ok())
        .collect();
    let newest_first: usize = arrived
        .iter()
        .scan(None, |best: &mut Option<u64>, &k| {
            let newer = best.is_none_or(|b| k > b);
            if newer {
                *best = Some(k);
            }
            Some(newer)
        })
        .filter(|&newer| newer)
        .count();
    labkit::wait::until(Duration::from_secs(2), || {
        link.delivered().1.len() * 10 >= newest_first * 9
    });
    let delivered: Vec<u64> = link
        .delivered()
        .1
        .iter()
        .filter_map(|u| u.parse().ok())
        .collect();
    if let Some(pair) = delivered.windows(2).find(|w| w[1] <= w[0]) {
        panic!(
            "requirement 6: update {} was delivered after update {}: the latest channel never \
             delivers an update older than (or the same as) one it delivered {}",
            pair[1],
            pair[0],
            run.tag()
        );
    }
    assert!(
        delivered.len() * 10 >= newest_first * 9,
        "requirement 6: {} updates reached the receiver, {newest_first} of them newer than every \
         one before; it delivered only {} (an update is newer if its id is ahead on the 16-bit \
         circle: 3 is newer than 65534) {}",
        arrived.len(),
        delivered.len(),
        run.tag()
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 7: giving up.

#[test]
fn gives_up_on_a_peer_that_disappeared() {
    let mut run = Run::new();
    let mut link = Link::start(&run, network(0.0, 0.0, 0.0, 0), &[]);
    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let (lines, _) = reliable_messages(&mut run, 5, 1, 20);
    sender.feed(&lines, 5);
    assert!(
        labkit::wait::until(DEADLINE, || sender.stdout().contains("all acked: 5")),
        "requirement 1: the sender should print `all acked: 5 reliable messages` {}\n{}",
        run.tag(),
        sender.stderr()
    );
    // The receiver disappears (and nothing reaches its port any more, which another test may
    // be given by the kernel).
    link.relay
        .set_impairments(Direction::Forward, network(1.0, 0.0, 0.0, 0));
    link.receiver.kill();
    let before = link.relay.stats(Direction::Forward).datagrams_in;
    sender.feed(&["R is anybody there".to_string()], 1);
    sender.close_stdin();
    let sent_since = || link.relay.stats(Direction::Forward).datagrams_in - before;
    // Wait for the exit, or for proof that it will not come (more than 10 transmissions).
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = sender.child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if sent_since() > MAX_TRANSMISSIONS || Instant::now() > deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let sent = sent_since();
    assert!(
        (2..=MAX_TRANSMISSIONS).contains(&sent),
        "requirement 7: with the receiver gone, the last message should be sent at most \
         {MAX_TRANSMISSIONS} times (and retried at least once); the sender sent {sent} datagrams \
         {}{}",
        if status.is_none() {
            "and was still running "
        } else {
            ""
        },
        run.tag()
    );
    let stderr = sender.stderr();
    assert!(
        status.is_some_and(|s| s.code() == Some(1)),
        "requirement 7: a sender that gives up exits 1, got {status:?} {}\n{stderr}",
        run.tag()
    );
    assert!(
        stderr.contains("gave up") && stderr.contains(&link.relay.addr().to_string()),
        "requirement 7: the sender says on stderr that it `gave up` on the peer (naming {}); \
         stderr was:\n{stderr}",
        link.relay.addr()
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 8: bad datagrams.

#[test]
fn drops_malformed_datagrams_and_keeps_working() {
    let mut run = Run::new();
    let mut link = Link::start(&run, Impairments::NONE, &[]);
    let start = run.start;
    let good: &[u8] = b"INJECTED";
    let mut header_only = encode(start, &[]);
    header_only.truncate(HEADER_LEN - 1);
    let mut wrong_protocol = encode(start, &[(RELIABLE, start, good)]);
    wrong_protocol[0] ^= 0xff;
    let mut truncated_header = encode(start, &[]);
    truncated_header.extend_from_slice(&[RELIABLE, 0, 1]);
    let mut past_end = encode(start, &[(RELIABLE, start, good)]);
    past_end.extend_from_slice(&[RELIABLE, 0, 0, 0x01, 0xf4, b'x']); // claims 500 bytes
    let bad_channel = encode(start, &[(9, start, good)]);
    let mut random = vec![0u8; 1 + (run.rng.next_u64() % 100) as usize];
    random
        .iter_mut()
        .for_each(|b| *b = run.rng.next_u64() as u8);
    random[0] = b'X';
    let garbage = [
        Vec::new(),
        random,
        header_only,
        wrong_protocol,
        truncated_header,
        past_end,
        bad_channel,
    ];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in &garbage {
        socket.send_to(datagram, link.receiver.addr()).unwrap();
    }
    let reported = |link: &Link| {
        link.receiver
            .output()
            .lines()
            .filter(|l| l.contains("malformed datagram from"))
            .count()
    };
    labkit::wait::until(Duration::from_secs(5), || reported(&link) >= garbage.len());

    let mut sender = Sender::start(&run, link.relay.addr(), &[]);
    let (lines, texts) = reliable_messages(&mut run, 50, 1, 30);
    sender.feed(&lines, 5);
    sender.assert_success(8, &run);
    link.wait_for_reliable(texts.len());
    let output = link.receiver.output();
    assert!(
        link.receiver.is_running() && !output.contains("panicked"),
        "requirement 8: a malformed datagram must not kill the receiver {}\n{output}",
        run.tag()
    );
    assert_same_sequence(
        8,
        "reliable messages after 7 malformed datagrams (a packet is checked whole before any of \
         its messages is delivered)",
        &texts,
        &link.delivered().0,
        &run,
    );
    assert_eq!(
        reported(&link),
        garbage.len(),
        "requirement 8: each of the {} malformed datagrams (empty, random, 12 bytes, wrong \
         protocol id, a cut message header, a payload past the end, channel 9) is reported as \
         one `malformed datagram from <addr>: <why>` line on stderr {}\n{output}",
        garbage.len(),
        run.tag()
    );
}
