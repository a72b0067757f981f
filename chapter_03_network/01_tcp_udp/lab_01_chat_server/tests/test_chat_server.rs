//! Grader for the chat server: black-box tests over real TCP connections.
//! Each test is named after the requirement it checks (see README.md).

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use labkit::net::{NET_TIMEOUT, connect};
use labkit::{Server, lab_bin};
use rand::RngExt;

/// Longest line the server must accept, in bytes.
const MAX_LINE: usize = 4096;

thread_local! {
    /// The requirement the running test checks, named first in every failure of the helpers.
    static CHECKING: Cell<&'static str> = const { Cell::new("requirement ?") };
}

/// Names the requirement the current thread checks (`"requirement 3"`).
fn checking(requirement: &'static str) {
    CHECKING.set(requirement);
}

fn req() -> &'static str {
    CHECKING.get()
}

/// One chat client: a buffered reader and a writer on the same socket.
struct Chatter {
    name: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Chatter {
    /// Connects without joining.
    fn connect(addr: SocketAddr) -> Chatter {
        Chatter::from_stream(connect(addr), "(not joined)")
    }

    fn from_stream(stream: TcpStream, name: &str) -> Chatter {
        labkit::net::set_timeouts(&stream, NET_TIMEOUT);
        Chatter {
            name: name.to_string(),
            reader: BufReader::new(stream.try_clone().expect("clone the stream")),
            writer: stream,
        }
    }

    /// Connects and joins as `name`: the first line the server sends must be `welcome <name>`.
    fn join(addr: SocketAddr, name: &str) -> Chatter {
        let mut chatter = Chatter::connect(addr);
        chatter.send(name);
        chatter.expect_line(&format!("welcome {name}"));
        chatter.name = name.to_string();
        chatter
    }

    fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes());
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap_or_else(|e| {
            panic!("{}: {}: cannot write to the server: {e}", req(), self.name)
        });
    }

    /// The next line from the server, without its `\n`.
    fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!(
                "{}: {}: the server closed the connection; wanted a line",
                req(),
                self.name
            ),
            Ok(_) => line.trim_end_matches(['\n', '\r']).to_string(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "{}: {}: no line from the server within {NET_TIMEOUT:?}",
                    req(),
                    self.name
                )
            }
            Err(e) => panic!("{}: {}: reading from the server: {e}", req(), self.name),
        }
    }

    fn expect_line(&mut self, want: &str) {
        let got = self.line();
        assert!(
            got == want,
            "{}: {} got the line {:?} from the server; wanted {want:?}",
            req(),
            self.name,
            cut(&got)
        );
    }

    /// Reads lines until one equals `want`; returns the lines skipped on the way.
    fn wait_for(&mut self, want: &str) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            let line = self.line();
            if line == want {
                return skipped;
            }
            assert!(
                skipped.len() < 100_000,
                "{}: {} read 100,000 lines and never got {want:?}",
                req(),
                self.name
            );
            skipped.push(line);
        }
    }

    /// Asks `/who` and returns the names listed (skipping notices that arrive first).
    fn who(&mut self) -> Vec<String> {
        self.send("/who");
        loop {
            let line = self.line();
            if let Some(list) = line.strip_prefix("users: ") {
                return list.split(", ").map(str::to_string).collect();
            }
            assert!(
                line.starts_with("* "),
                "requirement 4: {} got {:?} after /who; wanted `users: ...`",
                self.name,
                cut(&line)
            );
        }
    }

    /// Reads until end of stream (or a reset); returns the lines read (at most 3 kept, cut
    /// to 60 bytes) and their number.
    fn read_until_closed(&mut self) -> (Vec<String>, usize) {
        let (mut kept, mut lines) = (Vec::new(), 0);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => return (kept, lines),
                Ok(_) => {
                    lines += 1;
                    if kept.len() < 3 {
                        kept.push(String::from_utf8_lossy(&buf[..buf.len().min(60)]).into_owned());
                    }
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return (kept, lines),
                Err(e) => panic!(
                    "{}: {}: the server should close this connection, but after {lines} lines \
                     it is still open: {e}",
                    req(),
                    self.name
                ),
            }
        }
    }
}

/// At most 80 bytes of a line, for failure messages.
fn cut(line: &str) -> String {
    match line.char_indices().nth(80) {
        Some((at, _)) => format!("{}... ({} bytes)", &line[..at], line.len()),
        None => line.to_string(),
    }
}

/// Sorted, for comparing `/who` lists.
fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn start() -> Server {
    Server::start(lab_bin!(), &[])
}

/// A nickname nobody else in the test uses, with a random part so no name is hard-coded.
fn nick(prefix: &str) -> String {
    format!("{prefix}{}", rand::rng().random_range(1000..10000))
}

fn random_text(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect::<String>()
        .trim()
        .replace(' ', "_")
}

// Requirement 1: the first line is the nickname; `welcome <name>` answers it, the others get
// `* <name> joined`.
#[test]
fn welcomes_a_client_and_announces_it_to_the_others() {
    checking("requirement 1");
    let server = start();
    let (a, b, c) = (nick("ann"), nick("bob"), nick("cy"));
    let mut ann = Chatter::join(server.addr(), &a);
    let mut bob = Chatter::join(server.addr(), &b);
    ann.expect_line(&format!("* {b} joined"));
    let _cy = Chatter::join(server.addr(), &c);
    ann.expect_line(&format!("* {c} joined"));
    bob.expect_line(&format!("* {c} joined"));
}

// Requirement 2: a taken nickname is refused with an `error:` line, and the client may try
// another one on the same connection.
#[test]
fn refuses_a_duplicate_nickname_with_a_message() {
    checking("requirement 2");
    let server = start();
    let name = nick("dup");
    let mut first = Chatter::join(server.addr(), &name);
    let mut second = Chatter::connect(server.addr());
    second.send(&name);
    let refusal = second.line();
    assert!(
        refusal.starts_with("error:"),
        "requirement 2: a taken nickname got {refusal:?}; wanted a line starting with `error:`"
    );
    for bad in ["has space", "slash/", &"x".repeat(33)] {
        second.send(bad);
        let refusal = second.line();
        assert!(
            refusal.starts_with("error:"),
            "requirement 2: the invalid nickname {bad:?} got {refusal:?}; wanted an `error:` line"
        );
    }
    let other = format!("{name}_2");
    second.send(&other);
    second.expect_line(&format!("welcome {other}"));
    first.expect_line(&format!("* {other} joined"));
    let names = sorted(first.who());
    let want = sorted(vec![name.clone(), other.clone()]);
    assert!(
        names == want,
        "requirement 2: /who after the refused duplicate listed {names:?}; wanted {want:?}"
    );
}

// Requirement 3: a line goes to everyone else as `<name>: <text>`, never back to its sender.
#[test]
fn broadcasts_messages_to_everyone_else() {
    checking("requirement 3");
    let server = start();
    let (a, b, c) = (nick("ann"), nick("bob"), nick("cy"));
    let mut ann = Chatter::join(server.addr(), &a);
    let mut bob = Chatter::join(server.addr(), &b);
    let mut cy = Chatter::join(server.addr(), &c);
    ann.wait_for(&format!("* {c} joined"));
    bob.wait_for(&format!("* {c} joined"));
    for _ in 0..5 {
        let text = random_text(40);
        ann.send(&text);
        bob.expect_line(&format!("{a}: {text}"));
        cy.expect_line(&format!("{a}: {text}"));
    }
    let text = random_text(20);
    cy.send(&text);
    ann.expect_line(&format!("{c}: {text}"));
    bob.expect_line(&format!("{c}: {text}"));
    // The sender's own lines never come back: the next thing Ann reads answers her /who.
    let names = sorted(ann.who());
    let want = sorted(vec![a, b, c]);
    assert!(
        names == want,
        "requirement 3: after her messages, ann's /who listed {names:?}; wanted {want:?} (a \
         sender must not get her own lines back)"
    );
}

// Requirement 4: `/who` lists every user, sorted, as `users: a, b, c`.
#[test]
fn lists_users_with_who() {
    checking("requirement 4");
    let server = start();
    let mut names: Vec<String> = (0..rand::rng().random_range(3..7))
        .map(|i| format!("{}{i}", nick("u")))
        .collect();
    let mut clients: Vec<Chatter> = names
        .iter()
        .map(|n| Chatter::join(server.addr(), n))
        .collect();
    names.sort();
    let last = clients.last_mut().unwrap();
    last.send("/who");
    last.expect_line(&format!("users: {}", names.join(", ")));
}

// Requirement 5: `/quit` gets `bye` and a closed connection; leaving (by /quit, a close or a
// reset) is announced as `* <name> left`, and the name is free again.
#[test]
fn announces_quits_and_disconnects() {
    checking("requirement 5");
    let server = start();
    let (a, b, c, d) = (nick("ann"), nick("bob"), nick("cy"), nick("dee"));
    let mut ann = Chatter::join(server.addr(), &a);
    let mut bob = Chatter::join(server.addr(), &b);
    let cy = Chatter::join(server.addr(), &c);
    let dee = Chatter::join(server.addr(), &d);
    ann.wait_for(&format!("* {d} joined"));

    bob.send("/quit");
    bob.wait_for("bye");
    let (after_bye, _) = bob.read_until_closed();
    assert!(
        after_bye.is_empty(),
        "requirement 5: after `bye` the server closes the connection, but sent {after_bye:?}"
    );
    ann.expect_line(&format!("* {b} left"));

    drop(cy); // a polite close: FIN
    ann.expect_line(&format!("* {c} left"));

    // An abrupt close: RST (SO_LINGER with a zero timeout, then close).
    let socket = socket2::SockRef::from(&dee.writer);
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(dee);
    ann.expect_line(&format!("* {d} left"));

    let names = ann.who();
    assert!(
        names == [a.clone()],
        "requirement 5: /who after three clients left listed {names:?}; wanted only [{a:?}]"
    );
    let mut bob_again = Chatter::join(server.addr(), &b);
    ann.expect_line(&format!("* {b} joined"));
    bob_again.send("back");
    ann.expect_line(&format!("{b}: back"));
}

// Requirement 6: a line of up to 4,096 bytes is a message; a longer one gets an `error:`
// reply, reaches nobody, and the client stays connected.
#[test]
fn rejects_lines_over_4_kib_and_keeps_the_client() {
    checking("requirement 6");
    let server = start();
    let (a, b) = (nick("ann"), nick("bob"));
    let mut ann = Chatter::join(server.addr(), &a);
    let mut bob = Chatter::join(server.addr(), &b);
    ann.expect_line(&format!("* {b} joined"));

    let prefix_len = a.len() + 2;
    let longest = "x".repeat(4096);
    ann.send(&longest);
    let got = bob.line();
    assert!(
        got.len() == prefix_len + 4096,
        "requirement 6: a 4,096-byte line reached bob as {} bytes; wanted {} (`{a}: ` and the \
         line)",
        got.len(),
        prefix_len + 4096
    );

    let too_long = rand::rng().random_range(4097..4200);
    for len in [too_long, 1 << 20] {
        ann.send(&"y".repeat(len));
        let reply = ann.line();
        assert!(
            reply.starts_with("error:"),
            "requirement 6: a {len}-byte line got {:?}; wanted an `error:` reply",
            cut(&reply)
        );
    }
    let text = random_text(30);
    ann.send(&text);
    let got = bob.line();
    assert!(
        got == format!("{a}: {text}"),
        "requirement 6: after ann's too-long lines bob got {:?}; wanted her next line \
         {:?} (a too-long line reaches nobody)",
        cut(&got),
        format!("{a}: {text}")
    );
}

// Requirement 6: a line that never ends costs the server about 4 KiB, not its length. The
// kernel keeps the process's peak resident memory (VmHWM in /proc/<pid>/status): it must
// barely move while 32 MiB without a `\n` go in. A server that stores the whole line and
// checks its length at the end peaks at 32 MiB or more.
#[test]
fn never_stores_more_than_4_kib_of_an_unfinished_line() {
    checking("requirement 6");
    const SENT: usize = 32 << 20;
    const MAX_GROWTH_KIB: u64 = 8 * 1024;
    let server = start();
    let peak = || {
        labkit::sys::status_kib(server.pid(), "VmHWM")
            .expect("VmHWM in /proc/<pid>/status of the server")
    };
    let a = nick("ann");
    let mut ann = Chatter::join(server.addr(), &a);
    // Warm up: a line of the largest size and a slightly longer one, so the buffers that
    // must exist do.
    ann.send(&"w".repeat(MAX_LINE));
    ann.send(&"w".repeat(MAX_LINE + 100));
    let reply = ann.line();
    assert!(
        reply.starts_with("error:"),
        "requirement 6: a line of {} bytes got {:?}; wanted an `error:` reply",
        MAX_LINE + 100,
        cut(&reply)
    );
    let before = peak();
    let piece = vec![b'q'; 64 * 1024];
    for _ in 0..SENT / piece.len() {
        ann.send_bytes(&piece);
    }
    ann.send_bytes(b"\n");
    let reply = ann.line();
    assert!(
        reply.starts_with("error:"),
        "requirement 6: a line of {SENT} bytes got {:?}; wanted an `error:` reply",
        cut(&reply)
    );
    let grown = peak().saturating_sub(before);
    assert!(
        grown <= MAX_GROWTH_KIB,
        "requirement 6: the server's peak memory (VmHWM) grew by {grown} KiB while a line of \
         {} MiB without `\\n` came in; wanted at most {MAX_GROWTH_KIB} KiB (stop storing a line \
         once it passes {MAX_LINE} bytes, but keep consuming it)",
        SENT >> 20
    );
}

// Requirement 7: a line that is not UTF-8 gets an `error:` reply, reaches nobody, and the
// client stays connected (also while choosing a nickname).
#[test]
fn rejects_invalid_utf8_and_keeps_the_client() {
    checking("requirement 7");
    let server = start();
    let a = nick("ann");
    let mut ann = Chatter::join(server.addr(), &a);

    let mut bob = Chatter::connect(server.addr());
    bob.send_bytes(b"b\xffb\n");
    let reply = bob.line();
    assert!(
        reply.starts_with("error:"),
        "requirement 7: an invalid UTF-8 nickname got {reply:?}; wanted an `error:` line"
    );
    let b = nick("bob");
    bob.send(&b);
    bob.expect_line(&format!("welcome {b}"));
    ann.expect_line(&format!("* {b} joined"));

    bob.send_bytes(b"caf\xc3 \xff\xfe oops\n");
    let reply = bob.line();
    assert!(
        reply.starts_with("error:"),
        "requirement 7: an invalid UTF-8 line got {reply:?}; wanted an `error:` reply"
    );
    bob.send("café ☕ fine");
    ann.expect_line(&format!("{b}: café ☕ fine"));
}

// Requirement 8: 50 clients talk at once; everyone gets every other client's messages, each
// sender's in the order it sent them.
#[test]
fn fifty_clients_get_every_message_in_sender_order() {
    checking("requirement 8");
    const CLIENTS: usize = 50;
    const MESSAGES: usize = 16;
    let server = start();
    let tag = nick("");
    let names: Vec<String> = (0..CLIENTS).map(|i| format!("c{i}_{tag}")).collect();
    let clients: Vec<Chatter> = names
        .iter()
        .map(|n| Chatter::join(server.addr(), n))
        .collect();

    let workers: Vec<_> =
        clients
            .into_iter()
            .enumerate()
            .map(|(me, mut client)| {
                let names = names.clone();
                thread::spawn(move || {
                    checking("requirement 8");
                    for k in 0..MESSAGES {
                        client.send(&format!(
                            "m {me} {k} {}",
                            random_text(rand::rng().random_range(1..60))
                        ));
                    }
                    // The next message expected from each sender, by sender index.
                    let mut next: HashMap<usize, usize> = HashMap::new();
                    let mut received = 0;
                    while received < (CLIENTS - 1) * MESSAGES {
                        let line = client.line();
                        if line.starts_with("* ") {
                            continue; // join notices of later clients
                        }
                        let (from, text) = line.split_once(": ").unwrap_or_else(|| {
                            panic!(
                                "requirement 8: {} got {:?}; wanted `<name>: <text>`",
                                client.name,
                                cut(&line)
                            )
                        });
                        let fields: Vec<&str> = text.splitn(4, ' ').collect();
                        let index =
                            |i: usize| -> usize {
                                fields.get(i).and_then(|f| f.parse().ok()).unwrap_or_else(|| {
                            panic!(
                                "requirement 8: {} got {:?}, not a message the test sent",
                                client.name,
                                cut(&line)
                            )
                        })
                            };
                        let (sender, k) = (index(1), index(2));
                        assert!(
                            from == names[sender],
                            "requirement 3: message {k} of {} reached {} tagged `{from}`",
                            names[sender],
                            client.name
                        );
                        assert!(
                            sender != me,
                            "requirement 3: {} got its own message {k} back",
                            client.name
                        );
                        let expected = next.entry(sender).or_insert(0);
                        assert!(
                            k == *expected,
                            "requirement 8: {} got message {k} from {from} when message {} was \
                         next (out of order, or lost)",
                            client.name,
                            *expected
                        );
                        *expected += 1;
                        received += 1;
                    }
                })
            })
            .collect();
    for worker in workers {
        if let Err(panic) = worker.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

// Requirement 9: a client that does not read is dropped once its queue is full (others get
// `* <name> left`), and the others keep receiving everything without waiting for it.
#[test]
fn drops_a_slow_reader_without_slowing_the_others() {
    checking("requirement 9");
    /// Ann sends until the slow client is dropped, at most this many lines (about 40 MB).
    const MAX_LINES: usize = 40_000;
    let server = start();
    let (a, b, s) = (nick("ann"), nick("bob"), nick("slow"));
    let mut ann = Chatter::join(server.addr(), &a);
    let mut bob = Chatter::join(server.addr(), &b);

    // The slow client asks for a tiny receive buffer before connecting, so the kernel cannot
    // hide the problem by buffering megabytes for it.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&server.addr().into(), NET_TIMEOUT)
        .expect("connect");
    let mut slow = Chatter::from_stream(socket.into(), &s);
    slow.send(&s);
    slow.expect_line(&format!("welcome {s}"));
    ann.wait_for(&format!("* {s} joined"));
    bob.wait_for(&format!("* {s} joined"));

    // Ann sends 1 KB lines until Bob has seen the slow client leave. She never gets more than
    // WINDOW lines ahead of Bob, so Bob is never a slow reader, even on a loaded machine.
    const WINDOW: usize = 200;
    let payload = "z".repeat(1000);
    let stop = Arc::new(AtomicBool::new(false));
    let bob_got = Arc::new(AtomicUsize::new(0));
    let mut sender = Some({
        let mut writer = ann.writer.try_clone().unwrap();
        let (payload, stop, bob_got) = (payload.clone(), stop.clone(), bob_got.clone());
        thread::spawn(move || {
            let mut sent = 0;
            while sent < MAX_LINES && !stop.load(Ordering::Relaxed) {
                if sent >= bob_got.load(Ordering::Relaxed) + WINDOW {
                    thread::sleep(Duration::from_micros(200));
                    continue;
                }
                writeln!(writer, "{sent} {payload}").expect("ann writes to the server");
                sent += 1;
            }
            sent
        })
    });
    // Bob reads every line, in order, while the slow client reads nothing.
    let left = format!("* {s} left");
    let mut next = 0;
    let mut total = None;
    while total != Some(next) {
        let line = bob.line();
        if line == left {
            stop.store(true, Ordering::Relaxed);
            let sender = sender.take().expect("the slow client leaves once");
            total = Some(sender.join().expect("sender thread"));
            continue;
        }
        assert!(
            line == format!("{a}: {next} {payload}"),
            "requirement 9: bob got {:?} when ann's line {next} was next; wanted all her lines, \
             in order",
            cut(&line)
        );
        next += 1;
        bob_got.store(next, Ordering::Relaxed);
        assert!(
            next < MAX_LINES || total.is_some(),
            "requirement 9: bob got all {MAX_LINES} lines (40 MB) and the slow client, which \
             reads nothing, was never dropped; wanted it dropped once its queue was full"
        );
    }
    let names = bob.who();
    assert!(
        !names.contains(&s),
        "requirement 9: /who still lists the dropped client {s}: {names:?}"
    );

    // The slow client was really dropped: it reaches end-of-file before all the lines.
    let (_, got) = slow.read_until_closed();
    assert!(
        got < next,
        "requirement 9: the slow client received {got} lines of {next}: it was never dropped"
    );
}

// Requirement 10: `--help` prints the usage; bad command-line arguments end the program with
// one line on stderr and exit code 2 (1 for an address in use).
#[test]
fn rejects_bad_arguments_with_a_clear_error() {
    labkit::echo::rejects_bad_arguments_of(lab_bin!(), 10);
    for queue in ["0", "lots"] {
        let out = labkit::run(lab_bin!(), &["--addr", "127.0.0.1:0", "--queue", queue]);
        let stderr = out.stderr_str();
        let lines = stderr.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(
            out.code() == Some(2) && lines == 1,
            "requirement 10: `--queue {queue}` exited with {:?} and printed {lines} lines on \
             stderr; wanted exit code 2 and one line that says what is wrong: {stderr:?}",
            out.code()
        );
    }
}

// Requirement 11: garbage and resets do not kill the server.
#[test]
fn survives_garbage_and_resets() {
    checking("requirement 11");
    let mut server = start();
    let mut rng = rand::rng();
    for _ in 0..20 {
        let mut stream = connect(server.addr());
        let garbage: Vec<u8> = (0..rng.random_range(1..20_000))
            .map(|_| rng.random())
            .collect();
        let _ = stream.write_all(&garbage);
        if rng.random_bool(0.5) {
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        } else {
            // Read a little of the server's replies (`error: ...`), then close.
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let _ = stream.read(&mut [0; 64]);
        }
    }
    // Random bytes may happen to hold a valid nickname and messages: only Ann is asserted.
    let a = nick("ann");
    let mut ann = Chatter::join(server.addr(), &a);
    let names = ann.who();
    assert!(
        names.contains(&a),
        "requirement 11: after garbage and resets, /who listed {names:?}; wanted {a:?} in it"
    );
    if !server.is_running() {
        server.fail("requirement 11: died after garbage and resets");
    }
}
