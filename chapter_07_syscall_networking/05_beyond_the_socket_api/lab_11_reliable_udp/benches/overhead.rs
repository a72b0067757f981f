//! `cargo bench -p ch7_reliable_udp --features solution` (or `cargo lab bench 7.11`)
//!
//! What the ack bitfield buys. The lab's receiver and sender run as processes with the
//! grader's lossy relay between them (`labkit::lossy_relay`: 10 ms of delay plus up to 10 ms of
//! jitter each way, 5% of datagrams held back 30 ms, and the loss of the row on both
//! directions). The sender gets 1,000 reliable messages of 20 to 100 bytes, two per millisecond.
//! Each row runs twice: with the ack bitfield, and with `--no-ack-bits` on both peers (every
//! ack names the newest packet only).
//!
//! Reported, median of three runs (seeds 1, 2, 3): the bytes both peers sent, with 28 bytes of
//! IP and UDP headers per datagram, per byte of payload; how many times each message went out
//! (decoded from the datagrams the relay saw); the datagrams of both directions; the messages
//! delivered; and the time from starting the sender to its exit (its last message acked).

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use labkit::lossy_relay::{Direction, Impairments, LossyRelay, RelayConfig, SplitMix64};
use labkit::process::{die_with_test, wait_timeout};
use labkit::{Server, lab_bin};

const MESSAGES: usize = 1_000;
const RUNS: u64 = 3;
const LOSSES: [f64; 4] = [0.0, 0.05, 0.10, 0.20];
const UDP_IP_OVERHEAD: u64 = 28;
const START_SEQ: &str = "65500";

struct Measure {
    wire_per_payload: f64,
    sends_per_message: f64,
    datagrams: u64,
    delivered: usize,
    seconds: f64,
}

fn main() {
    println!(
        "| loss | ack bits | wire bytes / payload byte | sends per message | datagrams | delivered | time (s) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for loss in LOSSES {
        for bits in [true, false] {
            let runs: Vec<Measure> = (1..=RUNS).map(|seed| measure(loss, bits, seed)).collect();
            let median = |f: &dyn Fn(&Measure) -> f64| {
                let mut v: Vec<f64> = runs.iter().map(f).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            println!(
                "| {:.0}% | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2} |",
                loss * 100.0,
                if bits { "32-bit field" } else { "newest only" },
                median(&|m| m.wire_per_payload),
                median(&|m| m.sends_per_message),
                median(&|m| m.datagrams as f64),
                median(&|m| m.delivered as f64),
                median(&|m| m.seconds),
            );
        }
    }
}

fn measure(loss: f64, bits: bool, seed: u64) -> Measure {
    let extra: &[&str] = if bits { &[] } else { &["--no-ack-bits"] };
    let mut cmd = Command::new(lab_bin!());
    cmd.args(["recv", "--addr", "127.0.0.1:0", "--start-seq", START_SEQ])
        .args(extra);
    let receiver = Server::start_command(cmd);
    let net = Impairments {
        loss,
        duplicate: 0.0,
        reorder: 0.05,
        hold: Duration::from_millis(30),
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(10),
    };
    let config = RelayConfig {
        record: true,
        ..RelayConfig::symmetric(seed, net)
    };
    let relay = LossyRelay::start(receiver.addr(), config).expect("start the relay");

    let mut rng = SplitMix64::new(seed);
    let texts: Vec<String> = (0..MESSAGES)
        .map(|i| {
            let len = 20 + (rng.next_u64() % 81) as usize;
            format!("{i:06}{}", "x".repeat(len - 6))
        })
        .collect();
    let payload: u64 = texts.iter().map(|t| t.len() as u64).sum();

    let mut cmd = Command::new(lab_bin!());
    cmd.args([
        "send",
        "--peer",
        &relay.addr().to_string(),
        "--start-seq",
        START_SEQ,
    ])
    .args(extra);
    let started = Instant::now();
    let mut sender = die_with_test(&mut cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the sender");
    let mut stdin = sender.stdin.take().expect("piped");
    for pair in texts.chunks(2) {
        let lines: String = pair.iter().map(|t| format!("R {t}\n")).collect();
        if stdin.write_all(lines.as_bytes()).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    drop(stdin);
    let status = wait_timeout(&mut sender, Duration::from_secs(120));
    let seconds = started.elapsed().as_secs_f64();
    if !status.is_some_and(|s| s.success()) {
        eprintln!("loss {loss}, bits {bits}, seed {seed}: the sender failed: {status:?}");
    }
    let delivered = || {
        receiver
            .output()
            .lines()
            .filter(|l| l.starts_with("reliable "))
            .count()
    };
    labkit::wait::until(Duration::from_secs(2), || delivered() >= MESSAGES);

    let stats = [Direction::Forward, Direction::Backward].map(|d| relay.stats(d));
    let wire: u64 = stats
        .iter()
        .map(|s| s.bytes_in + UDP_IP_OVERHEAD * s.datagrams_in)
        .sum();
    let sends: usize = relay
        .recorded(Direction::Forward)
        .received
        .iter()
        .map(|d| reliable_messages_in(d))
        .sum();
    Measure {
        wire_per_payload: wire as f64 / payload as f64,
        sends_per_message: sends as f64 / MESSAGES as f64,
        datagrams: stats.iter().map(|s| s.datagrams_in).sum(),
        delivered: delivered(),
        seconds,
    }
}

/// How many reliable messages (channel 0) a packet carries (the README's format).
fn reliable_messages_in(d: &[u8]) -> usize {
    let mut count = 0;
    let mut at = 13;
    while at + 5 <= d.len() {
        let len = usize::from(u16::from_be_bytes([d[at + 3], d[at + 4]]));
        count += usize::from(d[at] == 0);
        at += 5 + len;
    }
    count
}
