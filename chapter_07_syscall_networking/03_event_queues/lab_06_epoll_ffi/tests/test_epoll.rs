//! White-box tests of the epoll wrapper, on pipes and socket pairs: the semantics of level,
//! edge and oneshot triggering, tokens, interest changes, timeouts, and the owned fd.
//!
//! Readiness of a pipe changes synchronously with `write` and `read`, so "no event" is checked
//! with a short timeout and never depends on timing.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{Epoll, Event, Events, Interest, Token, Trigger};

/// How long a wait for an event that must come may take (it returns at once when ready).
const SOON: Duration = Duration::from_secs(2);
/// How long a wait for an event that must NOT come lasts.
const BRIEFLY: Duration = Duration::from_millis(10);

/// The tests of this file run one at a time: one of them watches fd numbers, which any other
/// test opening an fd would disturb.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wait(epoll: &Epoll, timeout: Duration) -> Vec<Event> {
    let mut events = Events::with_capacity(64);
    let n = epoll.wait(&mut events, Some(timeout)).expect("epoll_wait");
    assert!(
        n == events.len(),
        "requirement 3: wait returned {n} but stored {} events; wanted the number it stored",
        events.len()
    );
    events.iter().collect()
}

/// Exactly one event, for `token`; returns it. `what` starts with the requirement checked.
fn one_event(epoll: &Epoll, token: Token, what: &str) -> Event {
    let events = wait(epoll, SOON);
    assert!(
        events.len() == 1,
        "{what}: got {events:?}; wanted one event"
    );
    assert!(
        events[0].token() == token,
        "{what}: the event came with {:?}; wanted the token it was registered with, {token:?}",
        events[0].token()
    );
    events[0]
}

/// No event within [`BRIEFLY`]. `what` starts with the requirement checked.
fn no_event(epoll: &Epoll, what: &str) {
    let events = wait(epoll, BRIEFLY);
    assert!(events.is_empty(), "{what}: got {events:?}; wanted no event");
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl with integer arguments on an fd the test owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    assert_eq!(rc, 0, "fcntl(O_NONBLOCK)");
}

fn random_token() -> Token {
    Token(rand::rng().random_range(1..u64::MAX))
}

fn random_bytes(max: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    (0..rng.random_range(1..=max))
        .map(|_| rng.random())
        .collect()
}

fn fd_target(fd: RawFd) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|p| p.display().to_string())
}

// Requirement 1: the FFI matches the kernel's ABI.
#[test]
fn event_struct_matches_the_kernel_layout() {
    let _serial = serial();
    // libc's declaration is the oracle: 12 bytes, packed, on x86_64; 16 bytes elsewhere.
    let (size, want) = (size_of::<lab::EpollEvent>(), size_of::<libc::epoll_event>());
    assert!(
        size == want,
        "requirement 1: EpollEvent is {size} bytes; wanted {want}, as struct epoll_event: it is \
         packed on x86_64 only (#[repr(C)] plus #[repr(packed)] there)"
    );
    let offset = std::mem::offset_of!(lab::EpollEvent, data);
    let want = std::mem::offset_of!(libc::epoll_event, u64);
    assert!(
        offset == want,
        "requirement 1: the 64-bit data field is at offset {offset}; wanted {want}"
    );
    // And a wait with several events proves the array stride: each token arrives intact.
    let epoll = Epoll::new().expect("epoll_create1");
    let pipes: Vec<_> = (0..5).map(|_| std::io::pipe().unwrap()).collect();
    for (i, (reader, writer)) in pipes.iter().enumerate() {
        let token = Token(0x1111_1111_1111_1111 * (i as u64 + 1));
        epoll
            .add(reader, token, Interest::READABLE, Trigger::Level)
            .unwrap();
        (&*writer).write_all(b"x").unwrap();
    }
    let mut tokens: Vec<u64> = wait(&epoll, SOON).iter().map(|e| e.token().0).collect();
    tokens.sort();
    let expected: Vec<u64> = (1..=5).map(|i| 0x1111_1111_1111_1111 * i).collect();
    assert!(
        tokens == expected,
        "requirement 1: five ready pipes came back with tokens {tokens:x?}; wanted {expected:x?} \
         (a wrong struct size shifts every event after the first)"
    );
}

#[test]
fn epoll_fd_is_close_on_exec_and_closed_on_drop() {
    let _serial = serial();
    let epoll = Epoll::new().expect("epoll_create1");
    let fd = epoll.as_raw_fd();
    let target = fd_target(fd);
    assert!(
        target.as_deref() == Some("anon_inode:[eventpoll]"),
        "requirement 1: as_raw_fd is fd {fd}, which is {target:?}; wanted the epoll instance, \
         anon_inode:[eventpoll]"
    );
    // SAFETY: F_GETFD on an fd we just checked is open.
    let fd_flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(
        fd_flags & libc::FD_CLOEXEC != 0,
        "requirement 1: the epoll fd has no FD_CLOEXEC flag; create it with EPOLL_CLOEXEC so a \
         child process does not inherit it"
    );
    drop(epoll);
    assert!(
        fd_target(fd).as_deref() != Some("anon_inode:[eventpoll]"),
        "requirement 1: fd {fd} is still the epoll instance after the Epoll was dropped; \
         dropping it closes its fd (own it: OwnedFd)"
    );
}

// Requirement 2: level, edge and oneshot triggering.
#[test]
fn level_triggered_reports_unread_data_on_every_wait() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    let token = random_token();
    epoll
        .add(&reader, token, Interest::READABLE, Trigger::Level)
        .unwrap();
    no_event(&epoll, "requirement 2: empty pipe");

    let data = random_bytes(1000);
    writer.write_all(&data).unwrap();
    for round in 0..3 {
        let event = one_event(
            &epoll,
            token,
            &format!("requirement 2: unread data, wait {round}"),
        );
        assert!(event.is_readable(), "requirement 2: {event:?} is readable");
        assert!(
            !event.is_writable(),
            "requirement 2: {event:?}: WRITABLE was not asked for"
        );
    }
    let mut got = vec![0; data.len()];
    reader.read_exact(&mut got).unwrap();
    assert!(
        got == data,
        "requirement 2: the {} bytes read from the pipe differ from those written",
        data.len()
    );
    no_event(&epoll, "requirement 2: all data read");
}

#[test]
fn edge_triggered_reports_new_data_once() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    let token = random_token();
    epoll
        .add(&reader, token, Interest::READABLE, Trigger::Edge)
        .unwrap();

    let first = random_bytes(500);
    writer.write_all(&first).unwrap();
    assert!(one_event(&epoll, token, "requirement 2: new data").is_readable());
    no_event(
        &epoll,
        "requirement 2: same data, still unread: edge-triggered reports a change only once",
    );

    let second = random_bytes(500);
    writer.write_all(&second).unwrap();
    assert!(one_event(&epoll, token, "requirement 2: more data: a new edge").is_readable());
    no_event(&epoll, "requirement 2: no change since the last report");

    let mut got = vec![0; first.len() + second.len()];
    reader.read_exact(&mut got).unwrap();
    assert!(
        got == [first, second].concat(),
        "requirement 2: the {} bytes read differ from those written: nothing may be lost while \
         unreported",
        got.len()
    );
}

#[test]
fn oneshot_reports_once_until_rearmed() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let token = random_token();
    epoll
        .add(&reader, token, Interest::READABLE, Trigger::Oneshot)
        .unwrap();
    writer.write_all(&random_bytes(100)).unwrap();
    one_event(&epoll, token, "requirement 2: first data");
    no_event(
        &epoll,
        "requirement 2: a oneshot registration is disarmed after one event",
    );
    writer.write_all(&random_bytes(100)).unwrap();
    no_event(
        &epoll,
        "requirement 2: even new data is not reported while disarmed",
    );

    let token = random_token();
    epoll
        .modify(&reader, token, Interest::READABLE, Trigger::Oneshot)
        .unwrap();
    one_event(
        &epoll,
        token,
        "requirement 2: modify re-arms it, with the new token",
    );
    no_event(&epoll, "requirement 2: disarmed again");
}

#[test]
fn writable_follows_the_room_in_the_pipe() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    set_nonblocking(writer.as_raw_fd());
    let token = random_token();
    epoll
        .add(&writer, token, Interest::WRITABLE, Trigger::Level)
        .unwrap();
    let event = one_event(&epoll, token, "requirement 2: an empty pipe has room");
    assert!(
        event.is_writable() && !event.is_readable(),
        "requirement 2: {event:?}"
    );

    // Fill the pipe until write says EAGAIN.
    let chunk = [7u8; 4096];
    let mut filled = 0;
    loop {
        match writer.write(&chunk) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    no_event(&epoll, "requirement 2: a full pipe is not writable");

    let mut buf = vec![0; filled];
    reader.read_exact(&mut buf).unwrap();
    assert!(one_event(&epoll, token, "requirement 2: room again").is_writable());
}

#[test]
fn reports_a_closed_peer_as_read_closed() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();

    // A socket whose peer half-closes: EPOLLRDHUP.
    let (socket, peer) = UnixStream::pair().unwrap();
    let token = random_token();
    epoll
        .add(&socket, token, Interest::READABLE, Trigger::Edge)
        .unwrap();
    no_event(&epoll, "requirement 2: nothing sent yet");
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let event = one_event(&epoll, token, "requirement 2: the peer's shutdown(Write)");
    assert!(
        event.is_read_closed(),
        "requirement 2: {event:?}: ask for EPOLLRDHUP with READABLE and report it as read-closed"
    );
    assert!(
        !event.is_error(),
        "requirement 2: {event:?}: a FIN is no error"
    );

    // A pipe whose writer is gone: EPOLLHUP.
    let (reader, writer) = std::io::pipe().unwrap();
    let token = random_token();
    epoll
        .add(&reader, token, Interest::READABLE, Trigger::Level)
        .unwrap();
    no_event(&epoll, "requirement 2: pipe open");
    drop(writer);
    let event = one_event(&epoll, token, "requirement 2: writer closed");
    assert!(
        event.is_read_closed(),
        "requirement 2: {event:?}: EPOLLHUP is read-closed"
    );
}

// Requirement 3: tokens, interest changes, deletion, errors.
#[test]
fn tokens_come_back_unchanged() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let mut rng = rand::rng();
    let pipes: Vec<_> = (0..40).map(|_| std::io::pipe().unwrap()).collect();
    let mut tokens: Vec<Token> = (0..pipes.len()).map(|_| random_token()).collect();
    tokens[0] = Token(0);
    tokens[1] = Token(u64::MAX);
    for ((reader, _), token) in pipes.iter().zip(&tokens) {
        epoll
            .add(reader, *token, Interest::READABLE, Trigger::Level)
            .unwrap();
    }
    let mut ready: Vec<u64> = Vec::new();
    for ((_, writer), token) in pipes.iter().zip(&tokens) {
        if rng.random_bool(0.5) || token.0 == 0 || token.0 == u64::MAX {
            (&*writer).write_all(b"!").unwrap();
            ready.push(token.0);
        }
    }
    let mut got: Vec<u64> = wait(&epoll, SOON).iter().map(|e| e.token().0).collect();
    got.sort();
    ready.sort();
    assert!(
        got == ready,
        "requirement 3: {} events came back, with tokens that differ from those of the {} \
         written pipes; wanted exactly the written pipes, each with its own token",
        got.len(),
        ready.len()
    );
}

#[test]
fn wait_stores_at_most_the_capacity() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let pipes: Vec<_> = (0..10).map(|_| std::io::pipe().unwrap()).collect();
    for (i, (reader, writer)) in pipes.iter().enumerate() {
        epoll
            .add(reader, Token(i as u64), Interest::READABLE, Trigger::Level)
            .unwrap();
        (&*writer).write_all(b"!").unwrap();
    }
    let capacity = rand::rng().random_range(1..10);
    let mut events = Events::with_capacity(capacity);
    let n = epoll.wait(&mut events, Some(SOON)).unwrap();
    let stored = events.iter().count();
    assert!(
        n == capacity && stored == capacity,
        "requirement 3: 10 ready fds and room for {capacity} events: wait returned {n} and \
         stored {stored}; wanted {capacity}"
    );
}

#[test]
fn modify_changes_the_interest() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let (socket, mut peer) = UnixStream::pair().unwrap();
    let token = random_token();
    epoll
        .add(&socket, token, Interest::READABLE, Trigger::Level)
        .unwrap();
    no_event(
        &epoll,
        "requirement 3: writable but only READABLE was asked for",
    );

    epoll
        .modify(&socket, token, Interest::WRITABLE, Trigger::Level)
        .unwrap();
    let event = one_event(&epoll, token, "requirement 3: now WRITABLE is asked for");
    assert!(
        event.is_writable() && !event.is_readable(),
        "requirement 3: {event:?}"
    );

    epoll
        .modify(
            &socket,
            token,
            Interest::READABLE | Interest::WRITABLE,
            Trigger::Level,
        )
        .unwrap();
    peer.write_all(b"ping").unwrap();
    let event = one_event(&epoll, token, "requirement 3: both");
    assert!(
        event.is_writable() && event.is_readable(),
        "requirement 3: {event:?}"
    );
}

#[test]
fn delete_stops_the_reports_and_errors_are_reported() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let token = random_token();
    epoll
        .add(&reader, token, Interest::READABLE, Trigger::Level)
        .unwrap();
    let again = epoll.add(&reader, token, Interest::READABLE, Trigger::Level);
    let again = again.map_err(|e| e.raw_os_error());
    assert!(
        again == Err(Some(libc::EEXIST)),
        "requirement 3: adding an fd twice gave {again:?}; wanted Err(EEXIST = {})",
        libc::EEXIST
    );
    writer.write_all(b"data").unwrap();
    one_event(&epoll, token, "requirement 3: registered");
    epoll.delete(&reader).unwrap();
    no_event(&epoll, "requirement 3: deleted");
    let deleted = epoll.delete(&reader).map_err(|e| e.raw_os_error());
    assert!(
        deleted == Err(Some(libc::ENOENT)),
        "requirement 3: deleting an fd that is not registered gave {deleted:?}; wanted \
         Err(ENOENT = {})",
        libc::ENOENT
    );
}

// Requirement 4: timeouts.
#[test]
fn wait_times_out_and_rounds_sub_millisecond_timeouts_up() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let started = Instant::now();
    let n = epoll
        .wait(&mut events, Some(Duration::from_millis(30)))
        .unwrap();
    let waited = started.elapsed();
    assert!(
        n == 0 && waited >= Duration::from_millis(30),
        "requirement 4: with nothing registered, a 30 ms wait returned {n} events after \
         {waited:?}; wanted 0 events, not before 30 ms"
    );

    // 300 µs is 0 ms if rounded down: epoll_wait would return at once, and a runtime waiting
    // for a timer that close would spin. Round up to 1 ms.
    for _ in 0..5 {
        let started = Instant::now();
        epoll
            .wait(&mut events, Some(Duration::from_micros(300)))
            .unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_micros(300),
            "requirement 4: a 300 µs timeout returned after {waited:?}; wanted not before 300 µs: \
             round the timeout up to whole ms"
        );
    }
}

#[test]
fn wait_without_a_timeout_sleeps_until_an_event() {
    let _serial = serial();
    let epoll = Epoll::new().unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let token = random_token();
    epoll
        .add(&reader, token, Interest::READABLE, Trigger::Level)
        .unwrap();
    // Another thread writes 100 ms from now; until then nothing is ready. `None` means no
    // timeout (-1): the wait returns with that event, not with 0 events before it.
    let data = random_bytes(100);
    let delayed = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        writer.write_all(&data).expect("write to the pipe");
        writer
    });
    let mut events = Events::with_capacity(8);
    let n = epoll.wait(&mut events, None).expect("epoll_wait");
    let _writer = delayed.join().expect("writer thread");
    let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
    assert!(
        n == 1 && tokens == [token],
        "requirement 4: wait(events, None) returned {n} event(s) {tokens:?} before the pipe \
         was written; wanted the pipe's one event ({token:?}): no timeout is -1 for \
         epoll_wait (0 returns at once, and an event loop built on it spins)"
    );
}
