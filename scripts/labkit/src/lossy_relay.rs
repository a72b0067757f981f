//! A UDP relay on loopback that loses, duplicates, reorders and delays datagrams, from a seeded
//! random number generator: the bad network of a reliability-layer grader, on a machine where
//! `tc netem` is not available (and without the privileges it needs).
//!
//! ```text
//!   peer A  ──►  relay.addr()  ──(forward: impaired)──►  target (peer B)
//!   peer A  ◄──  relay.addr()  ◄──(backward: impaired)──  relay's second socket ◄── peer B
//! ```
//!
//! Peer A sends to [`LossyRelay::addr`]; the relay forwards each datagram from a second socket of
//! its own to the `target` given to [`LossyRelay::start`] (peer B), which answers that socket as
//! it would answer any client; the relay sends the answers back to the address peer A last sent
//! from. Each direction has its own [`Impairments`] and its own random stream, derived from the
//! one seed: the same seed and the same datagrams in the same order give the same losses,
//! copies and hold-backs (the release times depend on the clock, so the order in which the
//! peers see the datagrams is only as repeatable as the timing of the peers).
//!
//! Graders read what happened through counts, never through the clock: [`LossyRelay::stats`]
//! (datagrams and bytes in and out, dropped, duplicated, held back) and, when
//! [`RelayConfig::record`] is set, every datagram as it came in and as it went out
//! ([`LossyRelay::recorded`]), for a grader that decodes the protocol on the wire.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The largest datagram the relay forwards whole (larger ones arrive truncated to this size).
pub const MAX_DATAGRAM: usize = 65_536;
/// How long a relay thread sleeps at most, so that it notices [`LossyRelay`] being dropped.
const POLL: Duration = Duration::from_millis(20);
/// Mixed into the seed so that the two directions draw different random streams.
const FORWARD_SALT: u64 = 0x5eed_f0a2_d000_0001;
const BACKWARD_SALT: u64 = 0xbac4_3a2d_0000_0002;

/// What the relay does to one direction of traffic. Probabilities are in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairments {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram that was not dropped is sent twice (the copy has a delay of
    /// its own, so it may arrive much later than the original).
    pub duplicate: f64,
    /// Probability that a datagram is held back an extra [`hold`](Self::hold), so that the
    /// datagrams sent after it overtake it.
    pub reorder: f64,
    /// The extra delay of a held-back datagram.
    pub hold: Duration,
    /// The one-way delay of every datagram...
    pub delay: Duration,
    /// ...plus a uniform random extra in `0..=jitter` (itself a source of reordering when it
    /// exceeds the gap between two datagrams).
    pub jitter: Duration,
}

impl Impairments {
    /// A perfect link: nothing lost, duplicated, held or delayed.
    pub const NONE: Impairments = Impairments {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        hold: Duration::ZERO,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
    };
}

impl Default for Impairments {
    fn default() -> Impairments {
        Impairments::NONE
    }
}

/// The relay's configuration: a seed, the impairments of each direction, and whether to keep a
/// copy of every datagram.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RelayConfig {
    pub seed: u64,
    /// From peer A (who sends to [`LossyRelay::addr`]) to the target.
    pub forward: Impairments,
    /// From the target back to peer A.
    pub backward: Impairments,
    /// Keep every datagram, as received and as sent, for [`LossyRelay::recorded`].
    pub record: bool,
}

impl RelayConfig {
    /// The same impairments both ways.
    pub fn symmetric(seed: u64, both: Impairments) -> RelayConfig {
        RelayConfig {
            seed,
            forward: both,
            backward: both,
            record: false,
        }
    }
}

/// One direction of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Peer A to the target.
    Forward,
    /// The target back to peer A.
    Backward,
}

/// What one direction of the relay has seen and done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams the relay received from the sending peer, and their bytes (UDP payload).
    pub datagrams_in: u64,
    pub bytes_in: u64,
    /// Datagrams the relay sent on to the receiving peer (copies included), and their bytes.
    pub datagrams_out: u64,
    pub bytes_out: u64,
    /// Datagrams dropped on purpose (loss), or because nobody to send them to was known yet.
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams (or copies) held back to be overtaken.
    pub held_back: u64,
}

/// Datagrams of one direction as the relay received them and as it sent them, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub received: Vec<Vec<u8>>,
    pub sent: Vec<Vec<u8>>,
}

/// A running relay. Dropping it stops its four threads (two per direction) and closes its
/// sockets.
pub struct LossyRelay {
    front: SocketAddr,
    back: SocketAddr,
    target: SocketAddr,
    seed: u64,
    lanes: [Arc<Mutex<Lane>>; 2],
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl LossyRelay {
    /// Binds two sockets on `127.0.0.1:0` and starts relaying between whoever sends to
    /// [`addr`](Self::addr) and `target`.
    pub fn start(target: SocketAddr, config: RelayConfig) -> io::Result<LossyRelay> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        for socket in [&front, &back] {
            socket.set_read_timeout(Some(POLL))?;
        }
        let peer_a: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let lanes = [
            Arc::new(Mutex::new(Lane::new(config.forward, config.record))),
            Arc::new(Mutex::new(Lane::new(config.backward, config.record))),
        ];
        let forward = Pump {
            from: front.clone(),
            to: back.clone(),
            destination: Destination::Fixed(target),
            accept_from: None,
            learn: Some(peer_a.clone()),
            lane: lanes[0].clone(),
            schedule: Arc::default(),
            stop: stop.clone(),
        };
        let backward = Pump {
            from: back.clone(),
            to: front.clone(),
            destination: Destination::Learned(peer_a),
            accept_from: Some(target),
            learn: None,
            lane: lanes[1].clone(),
            schedule: Arc::default(),
            stop: stop.clone(),
        };
        let mut threads = forward.spawn("forward", SplitMix64::new(config.seed ^ FORWARD_SALT))?;
        threads.extend(backward.spawn("backward", SplitMix64::new(config.seed ^ BACKWARD_SALT))?);
        Ok(LossyRelay {
            front: front.local_addr()?,
            back: back.local_addr()?,
            target,
            seed: config.seed,
            lanes,
            stop,
            threads,
        })
    }

    /// Where peer A sends: the relay's front socket.
    pub fn addr(&self) -> SocketAddr {
        self.front
    }

    /// The relay's second socket: the address the target sees datagrams come from.
    pub fn back_addr(&self) -> SocketAddr {
        self.back
    }

    /// Where the relay forwards peer A's datagrams.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// The seed the relay was started with (print it when a test fails).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The counters of one direction so far.
    pub fn stats(&self, direction: Direction) -> DirectionStats {
        self.lane(direction).stats
    }

    /// The datagrams of one direction so far (empty unless [`RelayConfig::record`] was set).
    pub fn recorded(&self, direction: Direction) -> Recorded {
        self.lane(direction).recorded.clone()
    }

    /// Changes the impairments of one direction from now on (datagrams already scheduled keep
    /// their release time). `loss: 1.0` cuts the link.
    pub fn set_impairments(&self, direction: Direction, impairments: Impairments) {
        self.lane(direction).impairments = impairments;
    }

    fn lane(&self, direction: Direction) -> MutexGuard<'_, Lane> {
        let i = match direction {
            Direction::Forward => 0,
            Direction::Backward => 1,
        };
        lock(&self.lanes[i])
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The state one direction shares with the relay's owner.
struct Lane {
    impairments: Impairments,
    stats: DirectionStats,
    record: bool,
    recorded: Recorded,
}

impl Lane {
    fn new(impairments: Impairments, record: bool) -> Lane {
        Lane {
            impairments,
            stats: DirectionStats::default(),
            record,
            recorded: Recorded::default(),
        }
    }
}

enum Destination {
    Fixed(SocketAddr),
    /// Peer A: known once it has sent something.
    Learned(Arc<Mutex<Option<SocketAddr>>>),
}

/// A datagram waiting for its release time. Ordered by time, then by arrival, so datagrams
/// with the same release time leave in the order they came.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    at: Instant,
    order: u64,
    bytes: Vec<u8>,
}

/// The datagrams of one direction waiting for their release time, and a condition variable to
/// wake the releasing thread when an earlier one is scheduled.
#[derive(Default)]
struct Schedule {
    queue: Mutex<BinaryHeap<Reverse<Scheduled>>>,
    changed: Condvar,
}

/// One direction: a thread that receives and decides ([`Pump::receive`]), and one that sends
/// each datagram at its release time ([`Pump::release`]). Two threads, because a blocking
/// `recv` with `SO_RCVTIMEO` wakes on the kernel's timer tick (4 ms at `CONFIG_HZ=250`), while
/// a condition variable's timed wait is precise to well under a millisecond.
struct Pump {
    from: Arc<UdpSocket>,
    to: Arc<UdpSocket>,
    destination: Destination,
    /// Only datagrams from this address are relayed (the target's answers); others are ignored.
    accept_from: Option<SocketAddr>,
    /// Remember the sender's address here (peer A, for the backward direction).
    learn: Option<Arc<Mutex<Option<SocketAddr>>>>,
    lane: Arc<Mutex<Lane>>,
    schedule: Arc<Schedule>,
    stop: Arc<AtomicBool>,
}

impl Pump {
    fn spawn(self, name: &str, rng: SplitMix64) -> io::Result<Vec<JoinHandle<()>>> {
        let pump = Arc::new(self);
        let receiver = pump.clone();
        Ok(vec![
            thread::Builder::new()
                .name(format!("relay-{name}-in"))
                .spawn(move || receiver.receive(rng))?,
            thread::Builder::new()
                .name(format!("relay-{name}-out"))
                .spawn(move || pump.release())?,
        ])
    }

    fn receive(&self, mut rng: SplitMix64) {
        let mut order = 0u64;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !self.stop.load(Ordering::Relaxed) {
            // A timeout (POLL, to notice `stop`), or an error such as ECONNREFUSED from an
            // earlier send: the relay only forwards, it has nothing to report to anyone.
            let Ok((n, source)) = self.from.recv_from(&mut buf) else {
                continue;
            };
            if self.accept_from.is_some_and(|only| only != source) {
                continue;
            }
            if let Some(learn) = &self.learn {
                *lock(learn) = Some(source);
            }
            let bytes = &buf[..n];
            let release_times = self.admit(bytes, &mut rng);
            let mut queue = lock(&self.schedule.queue);
            for at in release_times {
                queue.push(Reverse(Scheduled {
                    at,
                    order,
                    bytes: bytes.to_vec(),
                }));
                order += 1;
            }
            self.schedule.changed.notify_one();
        }
        self.schedule.changed.notify_one();
    }

    /// Counts one incoming datagram and decides its fate: the release times of the copies to
    /// send (none when it is lost).
    fn admit(&self, bytes: &[u8], rng: &mut SplitMix64) -> Vec<Instant> {
        let mut lane = lock(&self.lane);
        lane.stats.datagrams_in += 1;
        lane.stats.bytes_in += bytes.len() as u64;
        if lane.record {
            lane.recorded.received.push(bytes.to_vec());
        }
        let imp = lane.impairments;
        if rng.chance(imp.loss) {
            lane.stats.dropped += 1;
            return Vec::new();
        }
        let copies = if rng.chance(imp.duplicate) {
            lane.stats.duplicated += 1;
            2
        } else {
            1
        };
        let now = Instant::now();
        (0..copies)
            .map(|_| {
                let mut delay = imp.delay + rng.up_to(imp.jitter);
                if rng.chance(imp.reorder) {
                    lane.stats.held_back += 1;
                    delay += imp.hold;
                }
                now + delay
            })
            .collect()
    }

    fn release(&self) {
        let mut queue = lock(&self.schedule.queue);
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let wait = match queue.peek() {
                Some(Reverse(next)) if next.at <= now => {
                    let Some(Reverse(datagram)) = queue.pop() else {
                        continue;
                    };
                    drop(queue);
                    self.send(datagram.bytes);
                    queue = lock(&self.schedule.queue);
                    continue;
                }
                Some(Reverse(next)) => (next.at - now).min(POLL),
                None => POLL,
            };
            queue = self
                .schedule
                .changed
                .wait_timeout(queue, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn send(&self, bytes: Vec<u8>) {
        let destination = match &self.destination {
            Destination::Fixed(addr) => Some(*addr),
            Destination::Learned(addr) => *lock(addr),
        };
        let sent = destination.is_some_and(|to| self.to.send_to(&bytes, to).is_ok());
        let mut lane = lock(&self.lane);
        if !sent {
            lane.stats.dropped += 1;
            return;
        }
        lane.stats.datagrams_out += 1;
        lane.stats.bytes_out += bytes.len() as u64;
        if lane.record {
            lane.recorded.sent.push(bytes);
        }
    }
}

/// Locks a mutex, ignoring poisoning: a grader thread that panicked must not hide the counters.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, fast, seedable generator with good
/// statistical quality, enough to decide the fate of datagrams repeatably. Not cryptographic.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in `0.0..1.0` (the top 53 bits).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (never for `p <= 0`, always for `p >= 1`).
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A uniform duration in `0..=max`, to the microsecond.
    pub fn up_to(&mut self, max: Duration) -> Duration {
        let micros = max.as_micros() as u64;
        if micros == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.next_u64() % (micros + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peer B: echoes every datagram back to where it came from, until its socket times out.
    fn echo_peer() -> (SocketAddr, JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..n], from);
            }
        });
        (addr, handle)
    }

    fn client() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        socket
    }

    /// Sends `count` numbered datagrams through the relay and returns the numbers echoed back.
    fn round_trip(relay: &LossyRelay, count: u32) -> Vec<u32> {
        let socket = client();
        for i in 0..count {
            socket.send_to(&i.to_be_bytes(), relay.addr()).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while let Ok((4, _)) = socket.recv_from(&mut buf) {
            got.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
        }
        got
    }

    #[test]
    fn the_generator_is_repeatable_and_roughly_uniform() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        assert_eq!(a.next_u64(), b.next_u64());
        let hits = (0..100_000).filter(|_| a.chance(0.1)).count();
        assert!((9_000..11_000).contains(&hits), "{hits} of 100000 at p=0.1");
        assert!(!a.chance(0.0) && a.chance(1.0));
        assert!(a.up_to(Duration::from_millis(3)) <= Duration::from_millis(3));
    }

    #[test]
    fn a_perfect_link_relays_both_ways_and_counts() {
        let (peer, _echo) = echo_peer();
        let config = RelayConfig {
            record: true,
            ..RelayConfig::default()
        };
        let relay = LossyRelay::start(peer, config).unwrap();
        let got = round_trip(&relay, 50);
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        for direction in [Direction::Forward, Direction::Backward] {
            let stats = relay.stats(direction);
            assert_eq!(
                (stats.datagrams_in, stats.datagrams_out, stats.bytes_in),
                (50, 50, 200),
                "{direction:?}"
            );
            assert_eq!(relay.recorded(direction).sent.len(), 50);
        }
    }

    #[test]
    fn loss_duplication_and_hold_back_follow_their_probabilities() {
        let (peer, _echo) = echo_peer();
        let lossy = Impairments {
            loss: 1.0,
            ..Impairments::NONE
        };
        let relay = LossyRelay::start(peer, RelayConfig::symmetric(7, lossy)).unwrap();
        assert!(round_trip(&relay, 20).is_empty());
        assert_eq!(relay.stats(Direction::Forward).dropped, 20);

        let (peer, _echo) = echo_peer();
        let doubled = Impairments {
            duplicate: 1.0,
            ..Impairments::NONE
        };
        let config = RelayConfig {
            seed: 7,
            forward: doubled,
            backward: Impairments::NONE,
            record: false,
        };
        let relay = LossyRelay::start(peer, config).unwrap();
        let got = round_trip(&relay, 20);
        assert_eq!(got.len(), 40, "every datagram twice: {got:?}");
        assert_eq!(relay.stats(Direction::Forward).duplicated, 20);

        let (peer, _echo) = echo_peer();
        let held = Impairments {
            reorder: 0.3,
            hold: Duration::from_millis(40),
            ..Impairments::NONE
        };
        let relay = LossyRelay::start(peer, RelayConfig::symmetric(11, held)).unwrap();
        let socket = client();
        let mut got = Vec::new();
        for i in 0..100u32 {
            socket.send_to(&i.to_be_bytes(), relay.addr()).unwrap();
            thread::sleep(Duration::from_millis(1));
        }
        let mut buf = [0u8; 16];
        while let Ok((4, _)) = socket.recv_from(&mut buf) {
            got.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
        }
        assert_eq!(got.len(), 100);
        let inversions = got.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(inversions > 0, "held-back datagrams are overtaken: {got:?}");
        assert!(relay.stats(Direction::Forward).held_back > 0);
    }

    #[test]
    fn the_same_seed_makes_the_same_decisions() {
        let fates = |seed| {
            let mut pump_rng = SplitMix64::new(seed);
            (0..64).map(|_| pump_rng.chance(0.3)).collect::<Vec<_>>()
        };
        assert_eq!(fates(3), fates(3));
        assert_ne!(fates(3), fates(4));
    }
}
