//! Grader for the durable message queue: black-box, through the real binary and real sockets.
//!
//! Each test starts its own server on `127.0.0.1:0` with its own data directory. The crash
//! tests kill it with SIGKILL (no chance to flush anything) and start a new one on the same
//! directory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use labkit::{Server, lab_bin};
use rand::RngExt;

/// How long a test waits for a delivery that must come.
const MUST_COME: Duration = Duration::from_secs(10);

fn start(data: &Path, flags: &[&str]) -> Server {
    let mut args = vec!["--data", data.to_str().expect("utf-8 temp path")];
    args.extend_from_slice(flags);
    Server::start(lab_bin!(), &args)
}

/// One delivered message: `MSG <id> <topic> <delivery> <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivery {
    id: u64,
    topic: String,
    delivery: u32,
    payload: String,
}

/// A client of the line protocol. Deliveries (`MSG` lines) may arrive between a command and
/// its reply; they are queued and handed out by `next_delivery`.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    partial: Vec<u8>,
    deliveries: VecDeque<Delivery>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = labkit::net::connect(addr);
        Client {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            partial: Vec::new(),
            deliveries: VecDeque::new(),
        }
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .expect("write a command");
    }

    /// Reads one line within `timeout`; `None` on timeout. Panics if the server closed.
    fn read_line(&mut self, timeout: Duration) -> Option<String> {
        self.try_read_line(timeout)
            .unwrap_or_else(|e| panic!("connection to the queue failed: {e}"))
    }

    fn try_read_line(&mut self, timeout: Duration) -> std::io::Result<Option<String>> {
        let stream = self.reader.get_ref();
        stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        // A timeout can strike in the middle of a line: keep the partial bytes for next time.
        match self.reader.read_until(b'\n', &mut self.partial) {
            Ok(0) => Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "server closed",
            )),
            Ok(_) if self.partial.ends_with(b"\n") => {
                let line = String::from_utf8_lossy(&self.partial)
                    .trim_end()
                    .to_string();
                self.partial.clear();
                Ok(Some(line))
            }
            Ok(_) => Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "server closed",
            )),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next reply to a command (anything but a `MSG` line).
    fn reply(&mut self) -> String {
        self.try_reply()
            .unwrap_or_else(|e| panic!("no reply from the queue: {e}"))
    }

    fn try_reply(&mut self) -> std::io::Result<String> {
        let deadline = Instant::now() + labkit::net::NET_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_read_line(left)? {
                Some(line) if line.starts_with("MSG ") => {
                    let d = parse_delivery(&line);
                    self.deliveries.push_back(d);
                }
                Some(line) => return Ok(line),
                None if left.is_zero() => {
                    return Err(std::io::Error::new(ErrorKind::TimedOut, "no reply in time"));
                }
                None => {}
            }
        }
    }

    fn command(&mut self, line: &str) -> String {
        self.send(line);
        self.reply()
    }

    fn publish(&mut self, topic: &str, payload: &str) -> u64 {
        let reply = self.command(&format!("PUB {topic} {payload}"));
        parse_ok_id(&reply)
            .unwrap_or_else(|| panic!("PUB {topic} ...: expected `OK <id>`, got {reply:?}"))
    }

    fn subscribe(&mut self, topic: &str) {
        let reply = self.command(&format!("SUB {topic}"));
        assert_eq!(reply, "OK", "SUB {topic}");
    }

    fn ack(&mut self, id: u64) {
        let reply = self.command(&format!("ACK {id}"));
        assert_eq!(reply, "OK", "ACK {id}");
    }

    fn nack(&mut self, id: u64) {
        let reply = self.command(&format!("NACK {id}"));
        assert_eq!(reply, "OK", "NACK {id}");
    }

    /// The next delivery within `timeout`, or `None`.
    fn next_delivery(&mut self, timeout: Duration) -> Option<Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(d) = self.deliveries.pop_front() {
                return Some(d);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.read_line(left) {
                Some(line) if line.starts_with("MSG ") => {
                    let d = parse_delivery(&line);
                    self.deliveries.push_back(d);
                }
                Some(line) => panic!("unexpected line while waiting for a delivery: {line:?}"),
                None => {}
            }
        }
    }

    fn must_receive(&mut self) -> Delivery {
        self.next_delivery(MUST_COME)
            .unwrap_or_else(|| panic!("no delivery within {MUST_COME:?}"))
    }
}

fn parse_ok_id(reply: &str) -> Option<u64> {
    reply.strip_prefix("OK ")?.trim().parse().ok()
}

fn parse_delivery(line: &str) -> Delivery {
    let parse = || -> Option<Delivery> {
        let mut parts = line.splitn(5, ' ');
        (parts.next()? == "MSG").then_some(())?;
        Some(Delivery {
            id: parts.next()?.parse().ok()?,
            topic: parts.next()?.to_string(),
            delivery: parts.next()?.parse().ok()?,
            payload: parts.next()?.to_string(),
        })
    };
    parse().unwrap_or_else(|| {
        panic!("a delivery is `MSG <id> <topic> <delivery> <message>`, got {line:?}")
    })
}

fn random_payload() -> String {
    let mut rng = rand::rng();
    let words = ["order", "paid", "shipped", "42", "café", "x=1", "a-b_c"];
    let n = rng.random_range(1..6);
    let mut text: Vec<String> = (0..n)
        .map(|_| words[rng.random_range(0..words.len())].to_string())
        .collect();
    text.push(format!("#{}", rng.random_range(0..u32::MAX)));
    text.join(" ")
}

fn random_topic() -> String {
    format!("topic-{}", rand::rng().random_range(0..1_000_000))
}

// Requirement 1: PUB answers `OK <id>` with increasing ids.
#[test]
fn pub_replies_ok_with_increasing_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let mut client = Client::connect(server.addr());
    let mut last = None;
    for _ in 0..rand::rng().random_range(3..30) {
        let id = client.publish(&random_topic(), &random_payload());
        if let Some(last) = last {
            assert!(id > last, "ids must increase: {id} after {last}");
        }
        last = Some(id);
    }
}

// Requirement 2: a subscriber receives the topic's messages, in publication order, and only
// those of its topic.
#[test]
fn subscriber_receives_its_topic_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let (topic, other) = (random_topic(), random_topic() + "-other");
    let mut publisher = Client::connect(server.addr());
    let mut sent = Vec::new();
    for _ in 0..rand::rng().random_range(5..40) {
        let payload = random_payload();
        let id = publisher.publish(&topic, &payload);
        publisher.publish(&other, "not for you");
        sent.push((id, payload));
    }
    let mut consumer = Client::connect(server.addr());
    consumer.subscribe(&topic);
    for (id, payload) in &sent {
        let d = consumer.must_receive();
        assert_eq!(
            (d.id, d.topic.as_str(), d.delivery, d.payload.as_str()),
            (*id, topic.as_str(), 1, payload.as_str()),
            "deliveries come in publication order, first delivery is number 1"
        );
        consumer.ack(d.id);
    }
    // Published after the SUB: delivered as it arrives.
    let late = random_payload();
    let id = publisher.publish(&topic, &late);
    let d = consumer.must_receive();
    assert_eq!((d.id, d.payload), (id, late));
}

// Requirement 3: consumers of a topic share it: each message goes to one of them, and one
// consumer holds at most --prefetch unacknowledged messages.
#[test]
fn two_consumers_share_a_topic() {
    let dir = tempfile::tempdir().unwrap();
    let prefetch = rand::rng().random_range(2..5);
    let server = start(dir.path(), &["--prefetch", &prefetch.to_string()]);
    let topic = random_topic();
    let mut a = Client::connect(server.addr());
    let mut b = Client::connect(server.addr());
    a.subscribe(&topic);
    b.subscribe(&topic);
    let mut publisher = Client::connect(server.addr());
    let n = rand::rng().random_range(20..60);
    let mut sent = HashMap::new();
    for _ in 0..n {
        let payload = random_payload();
        sent.insert(publisher.publish(&topic, &payload), payload);
    }
    let mut got: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let deadline = Instant::now() + MUST_COME;
    while got[0].len() + got[1].len() < n && Instant::now() < deadline {
        for (i, consumer) in [&mut a, &mut b].into_iter().enumerate() {
            if let Some(d) = consumer.next_delivery(Duration::from_millis(20)) {
                assert_eq!(
                    sent.get(&d.id),
                    Some(&d.payload),
                    "payload of message {}",
                    d.id
                );
                consumer.ack(d.id);
                got[i].push(d.id);
            }
        }
    }
    let a_ids: HashSet<u64> = got[0].iter().copied().collect();
    let b_ids: HashSet<u64> = got[1].iter().copied().collect();
    assert!(
        a_ids.is_disjoint(&b_ids),
        "a message went to both consumers"
    );
    let all: HashSet<u64> = a_ids.union(&b_ids).copied().collect();
    assert_eq!(
        all,
        sent.keys().copied().collect(),
        "every message delivered once"
    );
    assert!(
        got[0].len() >= prefetch && got[1].len() >= prefetch,
        "both consumers must get work: {} and {} of {n} (prefetch {prefetch})",
        got[0].len(),
        got[1].len()
    );
}

#[test]
fn consumer_holds_at_most_prefetch_messages() {
    let dir = tempfile::tempdir().unwrap();
    let prefetch = rand::rng().random_range(1..5);
    let server = start(dir.path(), &["--prefetch", &prefetch.to_string()]);
    let topic = random_topic();
    let mut publisher = Client::connect(server.addr());
    for _ in 0..prefetch + 5 {
        publisher.publish(&topic, &random_payload());
    }
    let mut consumer = Client::connect(server.addr());
    consumer.subscribe(&topic);
    let held: Vec<Delivery> = (0..prefetch).map(|_| consumer.must_receive()).collect();
    assert_eq!(
        consumer.next_delivery(Duration::from_millis(300)),
        None,
        "a consumer holding {prefetch} unacknowledged messages gets no more"
    );
    consumer.ack(held[0].id);
    assert!(
        consumer.next_delivery(MUST_COME).is_some(),
        "an ACK frees a slot: the next message comes"
    );
}

// Requirement 4: at-least-once. An unacknowledged message comes back after the visibility
// timeout; an acknowledged one never does.
#[test]
fn unacked_message_is_redelivered_after_the_visibility_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--visibility-ms", "300"]);
    let topic = random_topic();
    let mut publisher = Client::connect(server.addr());
    let payload = random_payload();
    let id = publisher.publish(&topic, &payload);
    let mut consumer = Client::connect(server.addr());
    // The delivery happens after the SUB, so the redelivery is at least 300 ms after this.
    let started = Instant::now();
    consumer.subscribe(&topic);
    let first = consumer.must_receive();
    assert_eq!((first.id, first.delivery), (id, 1));
    let again = consumer.must_receive(); // no ACK: it must come back
    assert_eq!(
        (again.id, again.delivery, again.payload.as_str()),
        (id, 2, payload.as_str()),
        "the same message, delivery number 2"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "redelivered after {:?}, before the 300 ms visibility timeout",
        started.elapsed()
    );
    consumer.ack(id);
}

#[test]
fn acked_message_is_not_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--visibility-ms", "1000"]);
    let topic = random_topic();
    let mut publisher = Client::connect(server.addr());
    let acked = publisher.publish(&topic, "to be acknowledged");
    let kept = publisher.publish(&topic, "to be redelivered");
    let mut consumer = Client::connect(server.addr());
    consumer.subscribe(&topic);
    let ids = [consumer.must_receive().id, consumer.must_receive().id];
    assert_eq!(ids, [acked, kept]);
    consumer.ack(acked);
    // Both leases ran out at the same moment: only the unacknowledged message comes back.
    let again = consumer.must_receive();
    assert_eq!(
        (again.id, again.delivery),
        (kept, 2),
        "the unacknowledged message comes back"
    );
    consumer.ack(kept);
    let last = publisher.publish(&topic, "sentinel");
    let next = consumer.must_receive();
    assert_eq!(
        next.id, last,
        "after the sentinel's publication only the sentinel is left"
    );
}

// Requirement 5: NACK gives a message back at once; a closed connection gives back what it held.
#[test]
fn nack_redelivers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--visibility-ms", "60000"]);
    let topic = random_topic();
    let mut publisher = Client::connect(server.addr());
    let payload = random_payload();
    let id = publisher.publish(&topic, &payload);
    let mut consumer = Client::connect(server.addr());
    consumer.subscribe(&topic);
    assert_eq!(consumer.must_receive().id, id);
    consumer.nack(id);
    let again = consumer.must_receive();
    assert_eq!(
        (again.id, again.delivery, again.payload),
        (id, 2, payload),
        "NACK: delivered again at once (the visibility timeout is 60 s)"
    );
}

#[test]
fn disconnected_consumer_gives_its_messages_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--visibility-ms", "60000"]);
    let topic = random_topic();
    let mut publisher = Client::connect(server.addr());
    let payload = random_payload();
    let id = publisher.publish(&topic, &payload);
    let mut first = Client::connect(server.addr());
    first.subscribe(&topic);
    assert_eq!(first.must_receive().id, id);
    drop(first); // closes the connection without ACK
    let mut second = Client::connect(server.addr());
    second.subscribe(&topic);
    let d = second.must_receive();
    assert_eq!((d.id, d.delivery, d.payload), (id, 2, payload));
}

// Requirement 6: after --max-deliveries deliveries without ACK, a message moves to <topic>.dlq.
#[test]
fn message_moves_to_the_dead_letter_topic_after_max_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let max = rand::rng().random_range(2..5u32);
    let server = start(
        dir.path(),
        &[
            "--max-deliveries",
            &max.to_string(),
            "--visibility-ms",
            "60000",
        ],
    );
    let topic = random_topic();
    let mut publisher = Client::connect(server.addr());
    let payload = random_payload();
    let id = publisher.publish(&topic, &payload);
    let mut consumer = Client::connect(server.addr());
    consumer.subscribe(&topic);
    for n in 1..=max {
        let d = consumer.must_receive();
        assert_eq!((d.id, d.delivery), (id, n), "delivery {n} of {max}");
        consumer.nack(id);
    }
    let mut dead = Client::connect(server.addr());
    dead.subscribe(&format!("{topic}.dlq"));
    let d = dead.must_receive();
    assert_eq!(
        (d.topic, d.payload),
        (format!("{topic}.dlq"), payload),
        "the poison message waits in the dead-letter topic"
    );
    dead.ack(d.id);
    let sentinel = publisher.publish(&topic, "sentinel");
    assert_eq!(
        consumer.must_receive().id,
        sentinel,
        "the dead-lettered message is not delivered on its topic again"
    );
}

// Requirement 7: bad input gets `ERR <reason>`, and the connection goes on working.
#[test]
fn bad_input_gets_an_error_reply() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let mut client = Client::connect(server.addr());
    let unknown_id = rand::rng().random_range(1000..1_000_000u64);
    for line in [
        "HELLO".to_string(),
        "PUB".to_string(),
        "PUB only-a-topic".to_string(),
        "PUB bad/topic message".to_string(),
        "SUB".to_string(),
        "ACK".to_string(),
        "ACK not-a-number".to_string(),
        format!("ACK {unknown_id}"),
        format!("NACK {unknown_id}"),
    ] {
        let reply = client.command(&line);
        assert!(
            reply.starts_with("ERR "),
            "{line:?} must get `ERR <reason>`, got {reply:?}"
        );
    }
    let id = client.publish("still-works", "yes");
    assert_eq!(
        client.command(&format!("ACK {id}")),
        "OK",
        "ACK of a live message"
    );
    let reply = client.command(&format!("ACK {id}"));
    assert!(reply.starts_with("ERR "), "a second ACK of {id}: {reply:?}");
}

#[test]
fn oversized_message_is_refused_and_the_connection_survives() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--max-message-bytes", "1024"]);
    let mut client = Client::connect(server.addr());
    let ok = "x".repeat(1024);
    client.publish("big", &ok);
    let reply = client.command(&format!("PUB big {}", "y".repeat(1025)));
    assert!(
        reply.starts_with("ERR "),
        "1025 bytes with a limit of 1024: {reply:?}"
    );
    // A line of 4 MiB: refused without buffering it, and the next command still works.
    let reply = client.command(&format!("PUB big {}", "z".repeat(4 << 20)));
    assert!(reply.starts_with("ERR "), "a 4 MiB message: {reply:?}");
    let id = client.publish("big", "small again");
    let mut consumer = Client::connect(server.addr());
    consumer.subscribe("big");
    assert_eq!(consumer.must_receive().payload, ok);
    assert_eq!(
        consumer.must_receive().id,
        id,
        "the refused messages were not queued"
    );
}

#[test]
fn bad_command_line_exits_2_with_usage() {
    for args in [
        &["--addr", "127.0.0.1:0"][..],
        &["--data"],
        &["--data", "/tmp/x", "--prefetch", "many"],
    ] {
        let out = labkit::run(lab_bin!(), args);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr_str());
        assert!(
            out.stderr_str().to_lowercase().contains("usage"),
            "{args:?}: usage on stderr"
        );
    }
}

// Requirement 8: durability. A PUB that got its OK survives a crash; an ACK that got its OK is
// never undone; everything else published comes back.
#[test]
fn acked_messages_stay_acked_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), &["--visibility-ms", "60000"]);
    let topic = random_topic();
    let mut client = Client::connect(server.addr());
    let n = rand::rng().random_range(5..30);
    let sent: Vec<(u64, String)> = (0..n)
        .map(|_| {
            let payload = random_payload();
            (client.publish(&topic, &payload), payload)
        })
        .collect();
    client.subscribe(&topic);
    let mut expected = Vec::new();
    for (id, payload) in &sent {
        let d = client.must_receive();
        assert_eq!(d.id, *id);
        if rand::rng().random_bool(0.5) {
            client.ack(d.id);
        } else {
            expected.push((*id, payload.clone()));
        }
    }
    server.kill();
    let server = start(dir.path(), &["--visibility-ms", "60000"]);
    let mut client = Client::connect(server.addr());
    client.subscribe(&topic);
    let sentinel = client.publish(&topic, "sentinel");
    let mut after = Vec::new();
    loop {
        let d = client.must_receive();
        client.ack(d.id);
        if d.id == sentinel {
            break;
        }
        after.push((d.id, d.payload));
    }
    assert_eq!(
        after, expected,
        "after the crash: exactly the unacknowledged messages, in id order"
    );
    assert!(
        sentinel > sent.last().unwrap().0,
        "ids keep growing after a restart"
    );
}

#[test]
fn kill_9_mid_stream_loses_no_acknowledged_publish() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--visibility-ms", "60000", "--prefetch", "1000"];
    let mut server = start(dir.path(), &flags);
    let addr = server.addr();
    let topic = random_topic();

    // Four publishers and one consumer run flat out until the server dies under them.
    let confirmed = Arc::new(Mutex::new(HashMap::<u64, String>::new()));
    let attempted = Arc::new(Mutex::new(HashSet::<String>::new()));
    // ACKs sent, and ACKs answered OK. An ACK sent without an answer has an unknown outcome:
    // the server may have made it durable and died before its OK reached us.
    let ack_sent = Arc::new(Mutex::new(HashSet::<u64>::new()));
    let acked = Arc::new(Mutex::new(HashSet::<u64>::new()));
    let progress = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for p in 0..4 {
        let (confirmed, attempted, progress, stop, topic) = (
            confirmed.clone(),
            attempted.clone(),
            progress.clone(),
            stop.clone(),
            topic.clone(),
        );
        threads.push(thread::spawn(move || {
            let mut client = Client::connect(addr);
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let payload = format!("p{p}-{i}-{}", random_payload());
                attempted.lock().unwrap().insert(payload.clone());
                client.send(&format!("PUB {topic} {payload}"));
                match client.try_reply() {
                    Ok(reply) => {
                        let id = parse_ok_id(&reply).expect("OK <id>");
                        confirmed.lock().unwrap().insert(id, payload);
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    {
        let (ack_sent, acked, topic) = (ack_sent.clone(), acked.clone(), topic.clone());
        threads.push(thread::spawn(move || {
            let mut client = Client::connect(addr);
            client.subscribe(&topic);
            loop {
                // Deliveries that arrived while we waited for a reply were queued: take them
                // first, then read new ones.
                let d = match client.deliveries.pop_front() {
                    Some(d) => d,
                    None => match client.try_read_line(Duration::from_secs(5)) {
                        Ok(Some(line)) if line.starts_with("MSG ") => parse_delivery(&line),
                        _ => break, // the server is gone
                    },
                };
                if rand::rng().random_bool(0.3) {
                    continue; // left unacknowledged: must come back after the restart
                }
                ack_sent.lock().unwrap().insert(d.id);
                client.send(&format!("ACK {}", d.id));
                // Replies and deliveries interleave; the first non-MSG line is our reply.
                match client.try_reply() {
                    Ok(reply) if reply == "OK" => {
                        acked.lock().unwrap().insert(d.id);
                    }
                    _ => break,
                }
            }
        }));
    }

    // Let the stream run, then crash the server in the middle of it.
    let wanted = rand::rng().random_range(100..400);
    let deadline = Instant::now() + MUST_COME;
    while progress.load(Ordering::Relaxed) < wanted {
        assert!(
            Instant::now() < deadline,
            "only {} PUBs confirmed",
            progress.load(Ordering::Relaxed)
        );
        thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }

    let server = start(dir.path(), &flags);
    let mut client = Client::connect(server.addr());
    client.subscribe(&topic);
    let sentinel = client.publish(&topic, "sentinel");
    let mut seen = HashMap::new();
    loop {
        let d = client.must_receive();
        client.ack(d.id);
        if d.id == sentinel {
            break;
        }
        assert!(
            seen.insert(d.id, d.payload).is_none(),
            "message {} delivered twice after the restart",
            d.id
        );
    }

    let confirmed = confirmed.lock().unwrap();
    let acked = acked.lock().unwrap();
    let ack_sent = ack_sent.lock().unwrap();
    let attempted = attempted.lock().unwrap();
    eprintln!(
        "{} PUBs confirmed, {} ACKs confirmed, {} messages back after the crash",
        confirmed.len(),
        acked.len(),
        seen.len()
    );
    assert!(
        !acked.is_empty(),
        "the consumer acknowledged nothing before the crash"
    );
    for id in acked.iter() {
        assert!(
            !seen.contains_key(id),
            "message {id} was acknowledged (ACK got OK) but came back after the crash"
        );
    }
    for (id, payload) in confirmed.iter() {
        if !ack_sent.contains(id) {
            assert_eq!(
                seen.get(id),
                Some(payload),
                "message {id}: its PUB got `OK {id}` and it was never acknowledged, yet it \
                 was lost in the crash ({} confirmed, {} acknowledged, {} back)",
                confirmed.len(),
                acked.len(),
                seen.len()
            );
        }
    }
    for (id, payload) in &seen {
        assert!(
            confirmed.get(id) == Some(payload)
                || (!confirmed.contains_key(id) && attempted.contains(payload)),
            "message {id} after the crash has a payload nobody published: {payload:?}"
        );
    }
}
