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
        assert_eq!(
            reply, "OK",
            "requirement 2: SUB {topic} got {reply:?}; wanted OK"
        );
    }

    fn ack(&mut self, id: u64) {
        let reply = self.command(&format!("ACK {id}"));
        assert_eq!(
            reply, "OK",
            "requirement 4: ACK {id} got {reply:?}; wanted OK"
        );
    }

    fn nack(&mut self, id: u64) {
        let reply = self.command(&format!("NACK {id}"));
        assert_eq!(
            reply, "OK",
            "requirement 5: NACK {id} got {reply:?}; wanted OK"
        );
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
            assert!(
                id > last,
                "requirement 1: PUB got id {id} after {last}; wanted ids that grow"
            );
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
            "requirement 2: got MSG {} {} {} {:?}; wanted message {id} (publication order), \
             delivery number 1",
            d.id,
            d.topic,
            d.delivery,
            d.payload
        );
        consumer.ack(d.id);
    }
    // Published after the SUB: delivered as it arrives.
    let late = random_payload();
    let id = publisher.publish(&topic, &late);
    let d = consumer.must_receive();
    assert_eq!(
        (d.id, &d.payload),
        (id, &late),
        "requirement 2: a message published after the SUB came as {} {:?}; wanted {id} {late:?}",
        d.id,
        d.payload
    );
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
                    "requirement 3: message {} came with payload {:?}; wanted the one published",
                    d.id,
                    d.payload
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
        "requirement 3: messages {:?} went to both consumers; wanted each to one of them",
        a_ids.intersection(&b_ids).collect::<Vec<_>>()
    );
    let all: HashSet<u64> = a_ids.union(&b_ids).copied().collect();
    let missing = sent.keys().filter(|id| !all.contains(id)).count();
    assert!(
        missing == 0 && all.len() == sent.len(),
        "requirement 3: {} of {n} messages delivered ({missing} never came); wanted every \
         message delivered once",
        all.len()
    );
    assert!(
        got[0].len() >= prefetch && got[1].len() >= prefetch,
        "requirement 3: the consumers got {} and {} of {n} messages (prefetch {prefetch}); \
         wanted at least {prefetch} each",
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
    let extra = consumer.next_delivery(Duration::from_millis(300));
    assert!(
        extra.is_none(),
        "requirement 3: a consumer holding {prefetch} unacknowledged messages got one more \
         ({extra:?}); wanted none until an ACK"
    );
    consumer.ack(held[0].id);
    assert!(
        consumer.next_delivery(MUST_COME).is_some(),
        "requirement 3: no delivery within {MUST_COME:?} after an ACK freed a slot; wanted the \
         next message"
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
    assert_eq!(
        (first.id, first.delivery),
        (id, 1),
        "requirement 2: the first delivery was message {} number {}; wanted {id} number 1",
        first.id,
        first.delivery
    );
    let again = consumer.must_receive(); // no ACK: it must come back
    assert_eq!(
        (again.id, again.delivery, again.payload.as_str()),
        (id, 2, payload.as_str()),
        "requirement 4: after the visibility timeout came message {} number {}; wanted the \
         same message {id}, delivery number 2",
        again.id,
        again.delivery
    );
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "requirement 4: redelivered after {:?}; wanted no sooner than the 300 ms visibility \
         timeout",
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
    assert_eq!(
        ids,
        [acked, kept],
        "requirement 2: deliveries {ids:?}; wanted [{acked}, {kept}] in publication order"
    );
    consumer.ack(acked);
    // Both leases ran out at the same moment: only the unacknowledged message comes back.
    let again = consumer.must_receive();
    assert_eq!(
        (again.id, again.delivery),
        (kept, 2),
        "requirement 4: came back message {} number {}; wanted only the unacknowledged {kept}, \
         number 2 ({acked} was acknowledged)",
        again.id,
        again.delivery
    );
    consumer.ack(kept);
    let last = publisher.publish(&topic, "sentinel");
    let next = consumer.must_receive();
    assert_eq!(
        next.id, last,
        "requirement 4: after both were acknowledged came message {}; wanted only the \
         sentinel {last}",
        next.id
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
    let first = consumer.must_receive().id;
    assert_eq!(
        first, id,
        "requirement 2: delivered message {first}; wanted {id}"
    );
    consumer.nack(id);
    let again = consumer.must_receive();
    assert_eq!(
        (again.id, again.delivery, again.payload),
        (id, 2, payload),
        "requirement 5: after NACK came message {} number {}; wanted {id} number 2 at once \
         (the visibility timeout is 60 s)",
        again.id,
        again.delivery
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
    let held = first.must_receive().id;
    assert_eq!(
        held, id,
        "requirement 2: delivered message {held}; wanted {id}"
    );
    drop(first); // closes the connection without ACK
    let mut second = Client::connect(server.addr());
    second.subscribe(&topic);
    let d = second.must_receive();
    assert_eq!(
        (d.id, d.delivery, &d.payload),
        (id, 2, &payload),
        "requirement 5: the second consumer got message {} number {}; wanted {id} number 2, \
         given back when the first consumer's connection closed",
        d.id,
        d.delivery
    );
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
        assert_eq!(
            (d.id, d.delivery),
            (id, n),
            "requirement 6: got message {} number {}; wanted {id} number {n} of {max}",
            d.id,
            d.delivery
        );
        consumer.nack(id);
    }
    let mut dead = Client::connect(server.addr());
    dead.subscribe(&format!("{topic}.dlq"));
    let d = dead.must_receive();
    assert_eq!(
        (&d.topic, &d.payload),
        (&format!("{topic}.dlq"), &payload),
        "requirement 6: the dead-letter consumer got {:?} on {:?}; wanted the poison \
         message on {topic}.dlq",
        d.payload,
        d.topic
    );
    dead.ack(d.id);
    let sentinel = publisher.publish(&topic, "sentinel");
    let next = consumer.must_receive().id;
    assert_eq!(
        next, sentinel,
        "requirement 6: the topic delivered message {next}; wanted the sentinel {sentinel}: a \
         dead-lettered message is not delivered on its topic again"
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
            "requirement 7: {line:?} got {reply:?}; wanted `ERR <reason>`"
        );
    }
    let id = client.publish("still-works", "yes");
    let reply = client.command(&format!("ACK {id}"));
    assert_eq!(
        reply, "OK",
        "requirement 7: after the errors, ACK of live message {id} got {reply:?}; wanted OK"
    );
    let reply = client.command(&format!("ACK {id}"));
    assert!(
        reply.starts_with("ERR "),
        "requirement 7: a second ACK of {id} got {reply:?}; wanted `ERR <reason>`"
    );
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
        "requirement 7: a message of 1025 bytes with a limit of 1024 got {reply:?}; wanted \
         `ERR <reason>`"
    );
    // A line of 4 MiB: refused without buffering it, and the next command still works.
    let reply = client.command(&format!("PUB big {}", "z".repeat(4 << 20)));
    assert!(
        reply.starts_with("ERR "),
        "requirement 7: a 4 MiB message got {reply:?}; wanted `ERR <reason>`"
    );
    let id = client.publish("big", "small again");
    let mut consumer = Client::connect(server.addr());
    consumer.subscribe("big");
    let first = consumer.must_receive();
    assert!(
        first.payload == ok,
        "requirement 7: the first message came with {} bytes; wanted the 1024-byte one",
        first.payload.len()
    );
    let next = consumer.must_receive().id;
    assert_eq!(
        next, id,
        "requirement 7: the second delivery was message {next}; wanted {id}: the refused \
         messages must not be queued"
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
        assert_eq!(
            out.code(),
            Some(2),
            "requirement 7: {args:?} exited with {:?}; wanted 2. stderr: {}",
            out.code(),
            out.stderr_str()
        );
        assert!(
            out.stderr_str().to_lowercase().contains("usage"),
            "requirement 7: {args:?} printed {:?} on stderr; wanted the usage",
            out.stderr_str()
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
    for (i, (id, payload)) in sent.iter().enumerate() {
        let d = client.must_receive();
        assert_eq!(
            d.id, *id,
            "requirement 2: delivered message {}; wanted {id}",
            d.id
        );
        // The first is always acknowledged and the second never, the others at random.
        if i == 0 || (i > 1 && rand::rng().random_bool(0.5)) {
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
        after,
        expected,
        "requirement 8: after the crash came ids {:?}; wanted exactly the unacknowledged \
         {:?}, in id order",
        after.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        expected.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    assert!(
        sentinel > sent.last().unwrap().0,
        "requirement 1: after the restart PUB got id {sentinel}; wanted more than {}, the last \
         id before the crash",
        sent.last().unwrap().0
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
            "requirement 1: only {} PUBs confirmed within {MUST_COME:?}; wanted {wanted}",
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
            "requirement 8: message {} was delivered twice after the restart; wanted once",
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
        "requirement 4: the consumer got no ACK answered OK before the crash; wanted some \
         ({} PUBs confirmed)",
        confirmed.len()
    );
    for id in acked.iter() {
        assert!(
            !seen.contains_key(id),
            "requirement 8: message {id} came back after the crash; wanted it gone, its ACK got OK"
        );
    }
    for (id, payload) in confirmed.iter() {
        if !ack_sent.contains(id) {
            assert_eq!(
                seen.get(id),
                Some(payload),
                "requirement 8: message {id} is missing after the crash; wanted it back, its PUB \
                 got `OK {id}` and it was never acknowledged ({} confirmed, {} acknowledged, {} back)",
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
            "requirement 8: message {id} came back with {payload:?}; wanted a payload that was \
             published"
        );
    }
}

/// A running server traced by `strace -f -p`: the system calls it makes from now on, in the
/// order they happened, until [`Traced::finish`].
struct Traced {
    strace: std::process::Child,
    log: std::path::PathBuf,
}

impl Traced {
    fn attach(server: &Server, log_dir: &Path) -> Traced {
        let strace = labkit::sys::require_strace();
        let log = log_dir.join("strace.log");
        let child = std::process::Command::new(strace)
            .args(["-f", "-qq", "-y", "-s", "1000000", "-o"])
            .arg(&log)
            .args([
                "-e",
                "trace=write,writev,sendto,sendmsg,fdatasync,fsync",
                "-p",
            ])
            .arg(server.pid().to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start strace");
        let pid = server.pid();
        let attached = labkit::wait::until(Duration::from_secs(10), || {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return false;
            };
            tasks.flatten().all(|task| {
                std::fs::read_to_string(task.path().join("status")).is_ok_and(|status| {
                    status
                        .lines()
                        .any(|l| l.starts_with("TracerPid:") && l.trim_end() != "TracerPid:\t0")
                })
            })
        });
        assert!(
            attached,
            "requirement 8: strace did not attach to the server within 10 s (is ptrace allowed?)"
        );
        Traced { strace: child, log }
    }

    /// Detaches strace and returns its log.
    fn finish(mut self) -> String {
        let pid = self.strace.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        if labkit::process::wait_timeout(&mut self.strace, Duration::from_secs(10)).is_none() {
            panic!("strace did not detach within 10 s");
        }
        std::fs::read_to_string(&self.log).expect("read the strace log")
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.strace.kill();
        let _ = self.strace.wait();
    }
}

/// The text of the first string argument of a strace line, split at its `\n` escapes.
fn strace_lines(line: &str) -> Vec<String> {
    let (Some(start), Some(end)) = (line.find('"'), line.rfind('"')) else {
        return Vec::new();
    };
    if end <= start {
        return Vec::new();
    }
    line[start + 1..end]
        .split("\\n")
        .map(str::to_string)
        .collect()
}

/// What the trace of a run of PUBs shows.
#[derive(Debug, Default)]
struct PubTrace {
    /// `OK <id>` replies written to a socket before the record `P <id> ...` was written to a
    /// file in the data directory and synced.
    early: Vec<u64>,
    /// `OK <id>` replies seen.
    replies: usize,
    /// `fdatasync`/`fsync` calls on files in the data directory.
    syncs: usize,
}

/// Reads a strace log in order: a reply `OK <id>` is durable when the record of message `<id>`
/// was written to a file under `data` and an fdatasync (or fsync) of that file returned after
/// the write and before the reply was written.
fn read_pub_trace(log: &str, data: &Path) -> PubTrace {
    let in_data = format!("<{}/", data.display());
    let mut trace = PubTrace::default();
    let mut written: HashSet<u64> = HashSet::new();
    let mut synced: HashSet<u64> = HashSet::new();
    // Threads whose fsync on the data directory started and has not returned yet.
    let mut syncing: HashSet<String> = HashSet::new();
    for line in log.lines() {
        let (pid, call) = line.split_once(' ').unwrap_or(("", line));
        let call = call.trim_start();
        let sync_returned = if (call.starts_with("fdatasync(") || call.starts_with("fsync("))
            && call.contains(&in_data)
        {
            if call.contains("<unfinished") {
                syncing.insert(pid.to_string());
                false
            } else {
                !call.contains(" = -1")
            }
        } else if call.starts_with("<... fdatasync resumed>")
            || call.starts_with("<... fsync resumed>")
        {
            syncing.remove(pid) && !call.contains(" = -1")
        } else if call.starts_with("write") && call.contains(&in_data) {
            for record in strace_lines(call) {
                let mut parts = record.split(' ');
                if parts.next() == Some("P")
                    && let Some(id) = parts.next().and_then(|id| id.parse().ok())
                {
                    written.insert(id);
                }
            }
            false
        } else {
            if call.contains("socket:[") {
                for reply in strace_lines(call) {
                    if let Some(id) = parse_ok_id(&reply) {
                        trace.replies += 1;
                        if !synced.contains(&id) {
                            trace.early.push(id);
                        }
                    }
                }
            }
            false
        };
        // A sync of the data directory returned: everything written before it is durable.
        if sync_returned {
            trace.syncs += 1;
            synced.extend(written.drain());
        }
    }
    trace
}

/// Publishes `per_client` messages from each of `clients` connections at once (each client
/// sends all its PUBs, then reads the replies) and returns how many got `OK <id>`.
fn publish_concurrently(addr: SocketAddr, topic: &str, clients: usize, per_client: usize) -> usize {
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let topic = topic.to_string();
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                let batch: String = (0..per_client)
                    .map(|i| format!("PUB {topic} c{c}-m{i}\n"))
                    .collect();
                client
                    .writer
                    .write_all(batch.as_bytes())
                    .expect("send PUBs");
                (0..per_client)
                    .filter(|_| parse_ok_id(&client.reply()).is_some())
                    .count()
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("publisher thread"))
        .sum()
}

// Requirement 8, seen by the kernel: the OK of a PUB is written to the socket only after the
// message's record was written to the log and an fdatasync of it returned.
#[test]
fn pub_is_answered_only_after_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data, &[]);
    let traced = Traced::attach(&server, dir.path());
    let clients = rand::rng().random_range(2..6);
    let per_client = rand::rng().random_range(10..30);
    let confirmed = publish_concurrently(server.addr(), &random_topic(), clients, per_client);
    let log = traced.finish();
    assert_eq!(
        confirmed,
        clients * per_client,
        "requirement 1: {confirmed} of {} PUBs got `OK <id>`",
        clients * per_client
    );
    let trace = read_pub_trace(&log, &data);
    assert!(
        trace.replies == confirmed,
        "requirement 8: strace saw {} `OK <id>` replies written to sockets; wanted the {confirmed} \
         the clients read",
        trace.replies
    );
    assert!(
        trace.early.is_empty(),
        "requirement 8: {} of {confirmed} PUBs were answered `OK <id>` before their record was \
         written to the log and fdatasync returned (first: message {}); {} syncs of the log seen",
        trace.early.len(),
        trace.early[0],
        trace.syncs
    );
}

// Requirement 8, group commit: PUBs that arrive while the log is being synced share the next
// fdatasync. Counted, not timed: with 8 clients publishing at once there must be clearly fewer
// syncs than PUBs.
#[test]
fn concurrent_pubs_share_an_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data, &[]);
    let traced = Traced::attach(&server, dir.path());
    let per_client = rand::rng().random_range(20..40);
    let confirmed = publish_concurrently(server.addr(), &random_topic(), 8, per_client);
    let log = traced.finish();
    let trace = read_pub_trace(&log, &data);
    assert!(
        trace.syncs > 0 && trace.syncs * 4 <= confirmed * 3,
        "requirement 8: {} syncs of the log for {confirmed} PUBs from 8 concurrent clients; \
         wanted at least one and at most 3/4 of the PUBs (PUBs waiting during a sync share \
         the next one)",
        trace.syncs
    );
}
