//! ## Goal
//! Write `simple_queue`, a small message broker over TCP in the spirit of SQS, RabbitMQ or Redis
//! Streams: publishers put messages on named topics, consumers of a topic share its messages, and
//! a message stays until a consumer acknowledges it. You will build the two promises every real
//! queue makes and how they are kept: **at-least-once delivery** (a message handed to a consumer is
//! only *lent*: without an ACK before the visibility timeout, it is delivered again) and
//! **durability** (a PUB answered `OK` survives a crash, because the answer waits for an
//! append-only log to reach the disk with `fdatasync`, many messages per sync).
//!
//! ## Requirements
//! 1. `PUB` answers `OK <id>`, with ids that grow (also across restarts).
//! 2. A subscriber receives the messages of its topic (and only those), in publication order,
//!    first delivery numbered 1, including messages published before it subscribed.
//! 3. Consumers of a topic share it (a consumer group): each message is delivered to one of them;
//!    a consumer holds at most `--prefetch` unacknowledged messages, the next ones go to others or
//!    wait for an ACK.
//! 4. At-least-once: a message not acknowledged within `--visibility-ms` of its delivery is
//!    delivered again (delivery number + 1); an acknowledged message never comes back.
//! 5. `NACK` gives a message back at once; a consumer whose connection closes gives back every
//!    message it held.
//! 6. After `--max-deliveries` deliveries without an ACK, a message moves to the dead-letter
//!    topic `<topic>.dlq`, where a consumer can read it, and is not delivered on its topic again.
//! 7. Bad input gets `ERR <reason>` and the connection goes on working: unknown commands, missing
//!    arguments, a bad topic or id, an `ACK`/`NACK` of an unknown id, a message longer than
//!    `--max-message-bytes` (even a line of megabytes, which must not be buffered whole). A bad
//!    command line exits with code 2 and the usage on stderr.
//! 8. Durability: every PUB, ACK and dead-letter move is appended to a log in `--data` before it
//!    is answered, with an fsync per batch; on start the log is replayed. After a `kill -9`, every
//!    message whose PUB got `OK` is there, except those whose ACK got `OK`, which never come back;
//!    the unacknowledged ones are delivered again, in id order.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 5.2    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `PUB` answers `OK <id>`, with ids that grow (also across restarts)
//! - [ ] Requirement 2: A subscriber receives the messages of its topic (and only those), in
//!   publication order, first delivery numbered 1, including messages published before it
//!   subscribed
//! - [ ] Requirement 3: Consumers of a topic share it (a consumer group): each message is delivered
//!   to one of them; a consumer holds at most `--prefetch` unacknowledged messages, the next ones
//!   go to others or wait for an ACK
//! - [ ] Requirement 4: At-least-once: a message not acknowledged within `--visibility-ms` of its
//!   delivery is delivered again (delivery number + 1); an acknowledged message never comes back
//! - [ ] Requirement 5: `NACK` gives a message back at once; a consumer whose connection closes
//!   gives back every message it held
//! - [ ] Requirement 6: After `--max-deliveries` deliveries without an ACK, a message moves to the
//!   dead-letter topic `<topic>.dlq`, where a consumer can read it, and is not delivered on its
//!   topic again
//! - [ ] Requirement 7: Bad input gets `ERR <reason>` and the connection goes on working: unknown
//!   commands, missing arguments, a bad topic or id, an `ACK`/`NACK` of an unknown id, a message
//!   longer than `--max-message-bytes` (even a line of megabytes, which must not be buffered whole)
//! - [ ] Requirement 8: Durability: every PUB, ACK and dead-letter move is appended to a log in
//!   `--data` before it is answered, with an fsync per batch; on start the log is replayed
//!
//! ## Notes
//!
//! A durable message queue over TCP, with at-least-once delivery.
//!
//! `simple_queue --data DIR [--addr HOST:PORT] [--visibility-ms N] [--max-deliveries N]
//! [--prefetch N] [--max-message-bytes N]`
//!
//! One line per command, one line per reply (README.md has the full protocol):
//!
//! ```text
//! PUB <topic> <message>   -> OK <id>      (after the message is on disk)
//! SUB <topic>             -> OK           then, at any time: MSG <id> <topic> <delivery> <message>
//! ACK <id>                -> OK           (after the ACK is on disk)
//! NACK <id>               -> OK           (delivered again at once, or dead-lettered)
//! anything else           -> ERR <reason>
//! ```
//!
//! Read README.md for the requirements; `cargo lab test 5.2` grades this program through its
//! binary, so the types below are a suggestion: reshape them as you like. Remove the `allow`
//! below once your code uses every item.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{RangedU64ValueParser, TypedValueParser};
use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser, value_parser};

/// Everything the command line can set (given: main() parses it with
/// `Config::parse_with_usage()`).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "simple_queue",
    bin_name = "simple_queue",
    about = "A durable message queue over TCP, with at-least-once delivery"
)]
pub struct Config {
    /// Address to listen on
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7400")]
    pub addr: SocketAddr,
    /// Directory of the log (created if missing)
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// How long a consumer holds a message before it is delivered again.
    #[arg(
        long = "visibility-ms",
        value_name = "N",
        default_value = "30000",
        value_parser = value_parser!(u64).range(1..).map(Duration::from_millis)
    )]
    pub visibility: Duration,
    /// Deliveries after which an unacknowledged message moves to the dead-letter topic.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        value_parser = value_parser!(u32).range(1..)
    )]
    pub max_deliveries: u32,
    /// Unacknowledged messages one consumer may hold.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub prefetch: usize,
    /// Longest message, in bytes.
    #[arg(
        long = "max-message-bytes",
        value_name = "N",
        default_value_t = 64 * 1024,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub max_message: usize,
}

impl Config {
    /// `Config::parse()`, with the usage on stderr after every bad argument: clap prints it
    /// after an unknown option, not after a bad value. Exits 0 after `--help`, 2 after an error.
    pub fn parse_with_usage() -> Config {
        Config::try_parse().unwrap_or_else(|mut e| {
            if e.use_stderr() && e.get(ContextKind::Usage).is_none() {
                let usage = Config::command().render_usage();
                e.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
            }
            e.exit()
        })
    }
}

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum QueueError {
    /// A file or socket operation failed: exit code 1.
    Io { context: String, source: io::Error },
    /// The log holds a record that cannot be read: exit code 1.
    CorruptLog { line: usize, reason: String },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Io { context, source } => write!(f, "{context}: {source}"),
            QueueError::CorruptLog { line, reason } => {
                write!(f, "log line {line} is corrupt: {reason}")
            }
        }
    }
}

/// One command line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Pub { topic: String, payload: String },
    Sub { topic: String },
    Ack { id: u64 },
    Nack { id: u64 },
}

/// Parses one line (without its `\n`); the error is the text of the `ERR` reply.
pub fn parse_command(line: &str, max_message: usize) -> Result<Command, String> {
    todo!("PUB <topic> <message>, SUB <topic>, ACK <id>, NACK <id>")
}

/// Replays the log in `config.data`, prints `listening on <addr>`, and serves until killed.
pub async fn run(config: Config) -> Result<(), QueueError> {
    todo!("replay the log, start the log writer, accept connections, expire leases")
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!("Config::parse_with_usage(), then run it; an error on stderr: exit code 1")
}
