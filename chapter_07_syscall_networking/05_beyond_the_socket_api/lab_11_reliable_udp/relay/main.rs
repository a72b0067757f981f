//! `ch7_reliable_udp-relay`: the grader's bad network, to run by hand.
//!
//! A UDP relay on loopback between a sender and a receiver that loses, duplicates, reorders
//! and delays datagrams from a seeded generator (the code is `labkit::lossy_relay`, the one the
//! grader uses). It prints `listening on <addr>` (give that address to `send --peer`), then a
//! line of counters per direction every second while traffic flows.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::Parser;
use labkit::lossy_relay::{Direction, Impairments, LossyRelay, RelayConfig};

const USAGE: &str = "usage: ch7_reliable_udp-relay --to HOST:PORT [--loss PCT] [--duplicate PCT] \
                     [--reorder PCT] [--delay-ms MS] [--jitter-ms MS] [--seed N]";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_reliable_udp-relay",
    about = "A lossy UDP relay on 127.0.0.1: loss, duplication, reordering and delay, seeded"
)]
struct Args {
    /// The receiver to relay to
    #[arg(long, value_name = "HOST:PORT")]
    to: SocketAddr,
    /// Percentage of datagrams dropped, each direction
    #[arg(long, value_name = "PCT", default_value_t = 10.0)]
    loss: f64,
    /// Percentage of datagrams sent twice
    #[arg(long, value_name = "PCT", default_value_t = 2.0)]
    duplicate: f64,
    /// Percentage of datagrams held back 30 ms, to be overtaken
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    reorder: f64,
    /// One-way delay
    #[arg(long, value_name = "MS", default_value_t = 10)]
    delay_ms: u64,
    /// Extra random delay, up to this
    #[arg(long, value_name = "MS", default_value_t = 10)]
    jitter_ms: u64,
    /// Seed of the random decisions
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args: Args = match ch7_support::cli::parse_args(USAGE) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let impairments = Impairments {
        loss: args.loss / 100.0,
        duplicate: args.duplicate / 100.0,
        reorder: args.reorder / 100.0,
        hold: Duration::from_millis(30),
        delay: Duration::from_millis(args.delay_ms),
        jitter: Duration::from_millis(args.jitter_ms),
    };
    let relay = match LossyRelay::start(args.to, RelayConfig::symmetric(args.seed, impairments)) {
        Ok(relay) => relay,
        Err(e) => {
            eprintln!("ch7_reliable_udp-relay: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    println!("listening on {}", relay.addr());
    let mut last = None;
    loop {
        thread::sleep(Duration::from_secs(1));
        let now = (
            relay.stats(Direction::Forward),
            relay.stats(Direction::Backward),
        );
        if last == Some(now) {
            continue;
        }
        for (name, s) in [("forward ", now.0), ("backward", now.1)] {
            println!(
                "{name}: in {} datagrams ({} bytes), out {} ({} bytes), dropped {}, duplicated {}, held back {}",
                s.datagrams_in,
                s.bytes_in,
                s.datagrams_out,
                s.bytes_out,
                s.dropped,
                s.duplicated,
                s.held_back
            );
        }
        last = Some(now);
    }
}
