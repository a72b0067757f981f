//! A durable message queue over TCP, with at-least-once delivery.
//!
//! `simple_queue --data DIR [--addr HOST:PORT] [--visibility-ms N] [--max-deliveries N]
//! [--prefetch N] [--max-message-bytes N]`
//!
//! One line per command, one line per reply:
//!
//! ```text
//! PUB <topic> <message>   -> OK <id>      (after the message is on disk)
//! SUB <topic>             -> OK           then, at any time: MSG <id> <topic> <delivery> <message>
//! ACK <id>                -> OK           (after the ACK is on disk)
//! NACK <id>               -> OK           (delivered again at once, or dead-lettered)
//! anything else           -> ERR <reason>
//! ```
//!
//! Four ideas carry the lab:
//!
//! - **A message is a lease, not a gift.** Delivering a message lends it to a consumer for the
//!   visibility timeout. An ACK ends the loan for good; a NACK, a timeout or a closed
//!   connection gives it back to be delivered again. Nothing is lost, but a consumer may see a
//!   message twice: that is *at-least-once*, and why consumers must be idempotent.
//! - **Consumer group.** The consumers of a topic share its messages: each message is leased to
//!   one of them at a time, at most `--prefetch` per consumer, round-robin.
//! - **The log is the truth.** Every PUB, ACK and dead-letter move is appended to
//!   `DIR/queue.log` before it is acknowledged; on start the log is replayed. Memory is just a
//!   fast index of the log.
//! - **Group commit.** One thread owns the log file. It takes every record waiting in its
//!   queue, writes them with one `write` and makes them durable with one `fdatasync`, then
//!   answers them all: under load, a hundred publishers share one disk flush.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::builder::{RangedU64ValueParser, TypedValueParser};
use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser, value_parser};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The log's file name inside `--data`.
pub const LOG_FILE: &str = "queue.log";
/// Dead letters of topic `t` go to topic `t` + this suffix.
pub const DEAD_LETTER_SUFFIX: &str = ".dlq";
/// Longest topic name.
pub const MAX_TOPIC: usize = 64;
/// Records the log thread writes with one fsync, at most.
const MAX_BATCH: usize = 1024;

/// Everything the command line can set.
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
    /// The log holds a record we cannot read: refuse to guess, exit code 1.
    CorruptLog { line: usize, reason: String },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Io { context, source } => write!(f, "{context}: {source}"),
            QueueError::CorruptLog { line, reason } => {
                write!(f, "{LOG_FILE} line {line} is corrupt: {reason}")
            }
        }
    }
}

fn io_error(context: impl fmt::Display) -> impl FnOnce(io::Error) -> QueueError {
    move |source| QueueError::Io {
        context: context.to_string(),
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// The log: an append-only file, replayed on start, written by one thread in batches.
// ---------------------------------------------------------------------------------------------

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `P <id> <topic> <message>`: a message was published.
    Publish {
        id: u64,
        topic: String,
        payload: String,
    },
    /// `A <id>`: a message was acknowledged; it is gone for good.
    Ack { id: u64 },
    /// `D <id>`: a message moved to its topic's dead-letter topic.
    DeadLetter { id: u64 },
}

impl Record {
    fn encode(&self) -> String {
        match self {
            Record::Publish { id, topic, payload } => format!("P {id} {topic} {payload}\n"),
            Record::Ack { id } => format!("A {id}\n"),
            Record::DeadLetter { id } => format!("D {id}\n"),
        }
    }

    fn decode(line: &str) -> Option<Record> {
        let (kind, rest) = line.split_once(' ')?;
        match kind {
            "P" => {
                let (id, rest) = rest.split_once(' ')?;
                let (topic, payload) = rest.split_once(' ')?;
                Some(Record::Publish {
                    id: id.parse().ok()?,
                    topic: topic.to_string(),
                    payload: payload.to_string(),
                })
            }
            "A" => Some(Record::Ack {
                id: rest.parse().ok()?,
            }),
            "D" => Some(Record::DeadLetter {
                id: rest.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// A record on its way to the log thread, with where to report that it is on disk.
struct Append {
    record: Record,
    durable: Option<oneshot::Sender<()>>,
}

/// The handle the server uses to append to the log.
#[derive(Clone)]
pub struct Log {
    appends: mpsc::UnboundedSender<Append>,
}

impl Log {
    /// Opens (or creates) `dir/queue.log`, reads every record in it, and starts the log thread.
    ///
    /// A last line without its `\n` is a write the crash interrupted: nobody was told it
    /// succeeded, so it is cut off rather than treated as corruption.
    pub fn open(dir: &Path) -> Result<(Log, Vec<Record>), QueueError> {
        fs::create_dir_all(dir).map_err(io_error(format!("cannot create {}", dir.display())))?;
        let path = dir.join(LOG_FILE);
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_error(format!("cannot open {}", path.display())))?;
        if created {
            // The new file's name lives in the directory: fsync the directory too, or a crash
            // could lose the whole file even though its contents were synced.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error("cannot sync the data directory"))?;
        }

        let mut records = Vec::new();
        let mut good_bytes = 0u64;
        let mut reader = BufReader::new(&mut file);
        let mut line = String::new();
        for number in 1.. {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(io_error("cannot read the log"))?;
            if n == 0 || !line.ends_with('\n') {
                break; // the end, or a torn last write
            }
            let record =
                Record::decode(&line[..line.len() - 1]).ok_or_else(|| QueueError::CorruptLog {
                    line: number,
                    reason: format!("{:?}", line.trim_end()),
                })?;
            records.push(record);
            good_bytes += n as u64;
        }
        drop(reader);
        if file.seek(io::SeekFrom::End(0)).map_err(io_error("seek"))? != good_bytes {
            file.set_len(good_bytes)
                .map_err(io_error("cannot cut the torn end of the log"))?;
        }

        let (appends, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_batches(file, queue))
            .map_err(io_error("cannot start the log thread"))?;
        Ok((Log { appends }, records))
    }

    /// Appends `record` and waits until it is on disk.
    pub async fn append_durable(&self, record: Record) {
        let (durable, on_disk) = oneshot::channel();
        let _ = self.appends.send(Append {
            record,
            durable: Some(durable),
        });
        // The log thread answers after fdatasync; if it died, the process is exiting anyway.
        let _ = on_disk.await;
    }

    /// Appends `record` without waiting: it reaches the disk with the next batch.
    pub fn append(&self, record: Record) {
        let _ = self.appends.send(Append {
            record,
            durable: None,
        });
    }
}

/// The log thread: group commit. Blocking file I/O belongs on its own thread, away from the
/// async workers.
fn write_batches(mut file: File, mut queue: mpsc::UnboundedReceiver<Append>) {
    let mut bytes = Vec::new();
    let mut waiting = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        // Everything that queued up while the previous fsync ran shares this one.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        bytes.clear();
        for append in batch {
            bytes.extend_from_slice(append.record.encode().as_bytes());
            waiting.extend(append.durable);
        }
        // fdatasync: the data and the file size, not the timestamps. If either call fails we
        // cannot know what is on disk, and answering OK would be a lie: stop the server.
        if let Err(e) = file.write_all(&bytes).and_then(|()| file.sync_data()) {
            eprintln!("simple_queue: the log cannot be written, stopping: {e}");
            std::process::exit(1);
        }
        for durable in waiting.drain(..) {
            let _ = durable.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The broker: topics, leases, consumers. Plain data behind one std Mutex, never held across an
// `.await`, so no async lock is needed (the same choice as mini-redis's `Db`).
// ---------------------------------------------------------------------------------------------

type ConnId = u64;

struct Message {
    payload: String,
    /// How many times it has been delivered (the current delivery included).
    deliveries: u32,
    /// Who holds it and until when; `None` while it waits in `ready`.
    lease: Option<(ConnId, Instant)>,
}

struct Consumer {
    conn: ConnId,
    /// Deliveries for this connection's writer task.
    outbox: mpsc::UnboundedSender<String>,
    /// Messages it holds (delivered, not yet ACKed or NACKed).
    holding: usize,
}

#[derive(Default)]
struct Topic {
    /// Every live message of the topic: waiting or leased.
    messages: HashMap<u64, Message>,
    /// Ids waiting for a consumer, lowest first, so redelivered messages go first.
    ready: BTreeSet<u64>,
    consumers: Vec<Consumer>,
    /// Round-robin position in `consumers`.
    turn: usize,
}

/// The queue's state in memory.
pub struct Broker {
    topics: HashMap<String, Topic>,
    /// The topic each live message is in, for ACK and NACK by id.
    topic_of: HashMap<u64, String>,
    next_id: u64,
    log: Log,
    visibility: Duration,
    max_deliveries: u32,
    prefetch: usize,
}

impl Broker {
    /// Rebuilds the state from the log: every message published and not acknowledged is
    /// waiting again, including those that were leased when the server stopped.
    fn recover(records: Vec<Record>, log: Log, config: &Config) -> Broker {
        let mut broker = Broker {
            topics: HashMap::new(),
            topic_of: HashMap::new(),
            next_id: 1,
            log,
            visibility: config.visibility,
            max_deliveries: config.max_deliveries,
            prefetch: config.prefetch,
        };
        for record in records {
            match record {
                Record::Publish { id, topic, payload } => {
                    broker.next_id = broker.next_id.max(id + 1);
                    broker.insert(id, topic, payload);
                }
                Record::Ack { id } => {
                    broker.remove(id);
                }
                Record::DeadLetter { id } => broker.move_to_dead_letters(id),
            }
        }
        broker
    }

    fn allocate_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    fn insert(&mut self, id: u64, topic: String, payload: String) {
        let t = self.topics.entry(topic.clone()).or_default();
        t.messages.insert(
            id,
            Message {
                payload,
                deliveries: 0,
                lease: None,
            },
        );
        t.ready.insert(id);
        self.topic_of.insert(id, topic);
    }

    /// Removes a live message; returns its lease holder, if it had one.
    fn remove(&mut self, id: u64) -> Option<Option<ConnId>> {
        let topic = self.topic_of.remove(&id)?;
        let t = self.topics.get_mut(&topic)?;
        t.ready.remove(&id);
        let message = t.messages.remove(&id)?;
        let holder = message.lease.map(|(conn, _)| conn);
        if let Some(conn) = holder {
            t.release_slot(conn);
        }
        Some(holder)
    }

    /// A published message, now on disk, becomes deliverable.
    fn publish(&mut self, id: u64, topic: String, payload: String) {
        self.insert(id, topic.clone(), payload);
        self.dispatch(&topic);
    }

    fn subscribe(&mut self, topic: &str, conn: ConnId, outbox: mpsc::UnboundedSender<String>) {
        let t = self.topics.entry(topic.to_string()).or_default();
        if !t.consumers.iter().any(|c| c.conn == conn) {
            t.consumers.push(Consumer {
                conn,
                outbox,
                holding: 0,
            });
        }
        self.dispatch(topic);
    }

    /// Ends a message's life (ACK): whoever holds it, it will not be delivered again.
    fn ack(&mut self, id: u64) -> Result<(), String> {
        let topic = self.topic_of.get(&id).cloned();
        self.remove(id).ok_or_else(|| format!("unknown id {id}"))?;
        if let Some(topic) = topic {
            self.dispatch(&topic); // the holder has a free slot now
        }
        Ok(())
    }

    /// Gives a leased message back at once (NACK).
    fn nack(&mut self, id: u64) -> Result<(), String> {
        let leased = self
            .topic_of
            .get(&id)
            .and_then(|topic| self.topics.get(topic)?.messages.get(&id))
            .is_some_and(|m| m.lease.is_some());
        if !leased {
            return Err(format!(
                "unknown id {id} (not delivered, or already acknowledged)"
            ));
        }
        self.give_back(id);
        Ok(())
    }

    /// Ends the lease of `id`: it waits for the next consumer, or after `max_deliveries`
    /// deliveries it moves to the dead-letter topic (a poison message must not loop forever).
    fn give_back(&mut self, id: u64) {
        let Some(topic) = self.topic_of.get(&id).cloned() else {
            return;
        };
        let t = self.topics.get_mut(&topic).expect("indexed topic exists");
        let Some(message) = t.messages.get_mut(&id) else {
            return;
        };
        let Some((conn, _)) = message.lease.take() else {
            return;
        };
        let exhausted = message.deliveries >= self.max_deliveries;
        t.release_slot(conn);
        if exhausted {
            self.log.append(Record::DeadLetter { id });
            self.move_to_dead_letters(id);
        } else {
            t.ready.insert(id);
        }
        self.dispatch(&topic);
    }

    fn move_to_dead_letters(&mut self, id: u64) {
        let Some(topic) = self.topic_of.get(&id).cloned() else {
            return;
        };
        let Some(message) = self
            .topics
            .get_mut(&topic)
            .and_then(|t| t.messages.remove(&id))
        else {
            return;
        };
        if let Some(t) = self.topics.get_mut(&topic) {
            t.ready.remove(&id);
        }
        let dead = format!("{topic}{DEAD_LETTER_SUFFIX}");
        self.insert(id, dead.clone(), message.payload);
        self.dispatch(&dead);
    }

    /// Gives back every lease that has run out.
    fn expire(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .topics
            .values()
            .flat_map(|t| t.messages.iter())
            .filter(|(_, m)| m.lease.is_some_and(|(_, until)| until <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.give_back(id);
        }
    }

    /// A connection closed: it consumes no more, and what it held is given back.
    fn disconnect(&mut self, conn: ConnId) {
        let mut held = Vec::new();
        for t in self.topics.values_mut() {
            t.consumers.retain(|c| c.conn != conn);
            held.extend(
                t.messages
                    .iter()
                    .filter(|(_, m)| m.lease.is_some_and(|(holder, _)| holder == conn))
                    .map(|(id, _)| *id),
            );
        }
        held.sort_unstable();
        for id in held {
            self.give_back(id);
        }
    }

    /// Leases waiting messages to consumers with a free slot, lowest id first, round-robin.
    fn dispatch(&mut self, topic: &str) {
        let Some(t) = self.topics.get_mut(topic) else {
            return;
        };
        let until = Instant::now() + self.visibility;
        while let Some(&id) = t.ready.first() {
            let Some(index) = t.next_consumer_with_room(self.prefetch) else {
                break; // every consumer is full: the message waits (back-pressure)
            };
            t.ready.remove(&id);
            let consumer = &mut t.consumers[index];
            let message = t.messages.get_mut(&id).expect("ready ids are live");
            message.deliveries += 1;
            message.lease = Some((consumer.conn, until));
            consumer.holding += 1;
            // If the connection just died, its `disconnect` will give this message back.
            let _ = consumer.outbox.send(format!(
                "MSG {id} {topic} {} {}\n",
                message.deliveries, message.payload
            ));
        }
    }
}

impl Topic {
    fn next_consumer_with_room(&mut self, prefetch: usize) -> Option<usize> {
        let n = self.consumers.len();
        for step in 0..n {
            let index = (self.turn + step) % n;
            if self.consumers[index].holding < prefetch {
                self.turn = index + 1;
                return Some(index);
            }
        }
        None
    }

    fn release_slot(&mut self, conn: ConnId) {
        if let Some(c) = self.consumers.iter_mut().find(|c| c.conn == conn) {
            c.holding = c.holding.saturating_sub(1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The protocol.
// ---------------------------------------------------------------------------------------------

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
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let topic = |name: &str| -> Result<String, String> {
        let valid = !name.is_empty()
            && name.len() <= MAX_TOPIC
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if valid {
            Ok(name.to_string())
        } else {
            Err(format!(
                "bad topic {name:?}: 1 to {MAX_TOPIC} letters, digits, '.', '_' or '-'"
            ))
        }
    };
    let id = |text: &str| {
        text.parse::<u64>()
            .map_err(|_| format!("bad id {text:?}: a number"))
    };
    match verb.to_ascii_uppercase().as_str() {
        "PUB" => {
            let (name, payload) = rest
                .split_once(' ')
                .filter(|(_, p)| !p.is_empty())
                .ok_or("usage: PUB <topic> <message>")?;
            if payload.len() > max_message {
                return Err(format!("message too large: more than {max_message} bytes"));
            }
            Ok(Command::Pub {
                topic: topic(name)?,
                payload: payload.to_string(),
            })
        }
        "SUB" => Ok(Command::Sub {
            topic: topic(rest)?,
        }),
        "ACK" => Ok(Command::Ack { id: id(rest)? }),
        "NACK" => Ok(Command::Nack { id: id(rest)? }),
        _ => Err(format!("unknown command {verb:?}: PUB, SUB, ACK or NACK")),
    }
}

/// What reading one line gave.
enum Line {
    Complete,
    TooLong,
    Closed,
}

/// Reads one line into `buf` (without `\r\n`), but never more than `limit` bytes of it: a
/// longer line is skipped to its end and reported, so one client cannot make us buffer an
/// endless line, and the connection stays usable.
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Line> {
    buf.clear();
    (&mut *reader)
        .take(limit as u64 + 1)
        .read_until(b'\n', buf)
        .await?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Line::Complete);
    }
    if buf.len() <= limit {
        return Ok(Line::Closed); // end of stream (a last line without `\n` is dropped)
    }
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(Line::Closed);
        }
        if let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            reader.consume(end + 1);
            return Ok(Line::TooLong);
        }
        let skipped = chunk.len();
        reader.consume(skipped);
    }
}

struct Shared {
    broker: Mutex<Broker>,
    log: Log,
    max_message: usize,
}

/// Serves one client until it disconnects.
async fn handle_connection(shared: Arc<Shared>, stream: TcpStream, conn: ConnId) {
    let (read_half, write_half) = stream.into_split();
    // Replies and deliveries meet in one writer task, so lines never interleave mid-line.
    // Deliveries are unbounded in type but not in fact: at most `prefetch` per topic.
    let (outbox, mut lines) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut out = BufWriter::new(write_half);
        while let Some(line) = lines.recv().await {
            out.write_all(line.as_bytes()).await?;
            // Flush once the queue is empty: many lines per write when busy, no delay when idle.
            if lines.is_empty() {
                out.flush().await?;
            }
        }
        io::Result::Ok(())
    });

    let mut reader = tokio::io::BufReader::new(read_half);
    let mut buf = Vec::new();
    // Room for the command word, a topic and a message of the largest size.
    let limit = shared.max_message + MAX_TOPIC + 16;
    loop {
        let reply = match read_line(&mut reader, &mut buf, limit).await {
            Ok(Line::Complete) => match std::str::from_utf8(&buf) {
                Ok("") => continue,
                Ok(line) => match parse_command(line, shared.max_message) {
                    Ok(command) => execute(&shared, command, conn, &outbox).await,
                    Err(why) => format!("ERR {why}"),
                },
                Err(_) => "ERR the line is not valid UTF-8".to_string(),
            },
            Ok(Line::TooLong) => {
                format!("ERR message too large: lines are limited to {limit} bytes")
            }
            Ok(Line::Closed) | Err(_) => break,
        };
        if outbox.send(reply + "\n").is_err() {
            break; // the writer failed: the client is gone
        }
    }
    // Give back what this connection held before the writer goes, so it is delivered again.
    shared.broker.lock().unwrap().disconnect(conn);
    drop(outbox);
    let _ = writer.await;
}

/// Runs one command and returns the reply line.
async fn execute(
    shared: &Shared,
    command: Command,
    conn: ConnId,
    outbox: &mpsc::UnboundedSender<String>,
) -> String {
    match command {
        Command::Pub { topic, payload } => {
            let id = shared.broker.lock().unwrap().allocate_id();
            let record = Record::Publish {
                id,
                topic: topic.clone(),
                payload: payload.clone(),
            };
            // OK only once the message would survive a crash.
            shared.log.append_durable(record).await;
            shared.broker.lock().unwrap().publish(id, topic, payload);
            format!("OK {id}")
        }
        Command::Sub { topic } => {
            let mut broker = shared.broker.lock().unwrap();
            broker.subscribe(&topic, conn, outbox.clone());
            "OK".into()
        }
        Command::Ack { id } => {
            // Forget it in memory first (no redelivery from now on), then make it durable.
            // A crash in between redelivers it after restart: at-least-once, never lost.
            let acked = shared.broker.lock().unwrap().ack(id);
            match acked {
                Ok(()) => {
                    shared.log.append_durable(Record::Ack { id }).await;
                    "OK".into()
                }
                Err(why) => format!("ERR {why}"),
            }
        }
        Command::Nack { id } => match shared.broker.lock().unwrap().nack(id) {
            Ok(()) => "OK".into(),
            Err(why) => format!("ERR {why}"),
        },
    }
}

/// Replays the log, listens, and serves until killed.
pub async fn run(config: Config) -> Result<(), QueueError> {
    let (log, records) = Log::open(&config.data)?;
    let recovered = records.len();
    let broker = Broker::recover(records, log.clone(), &config);
    let shared = Arc::new(Shared {
        broker: Mutex::new(broker),
        log,
        max_message: config.max_message,
    });
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(io_error(format!("cannot listen on {}", config.addr)))?;
    let addr = listener.local_addr().map_err(io_error("local_addr"))?;
    eprintln!("simple_queue: replayed {recovered} log records");
    println!("listening on {addr}");

    // Leases run out on a coarse tick: a timer per message would be exact but costlier. A
    // message comes back between `visibility` and `visibility + tick` after its delivery.
    let tick = (config.visibility / 10).clamp(Duration::from_millis(5), Duration::from_secs(1));
    let reaper = shared.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        loop {
            interval.tick().await;
            reaper.broker.lock().unwrap().expire(Instant::now());
        }
    });

    for conn in 1.. {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(handle_connection(shared.clone(), stream, conn));
            }
            Err(e) => {
                eprintln!("simple_queue: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Config::parse_with_usage()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simple_queue: {e}");
            ExitCode::from(1)
        }
    }
}
