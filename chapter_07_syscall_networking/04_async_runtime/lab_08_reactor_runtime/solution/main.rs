//! A reactor runtime: lab 7's executor plus an epoll reactor, timers, and async TCP sockets, in
//! one file. `ch7_reactor_runtime [--addr HOST:PORT]` is an echo server written with `async fn`
//! on top of it, the way one writes it with tokio.
//!
//! One thread, one loop ([`Runtime::block_on`]):
//!
//! 1. poll the main future if it was woken, then every task in the run queue;
//! 2. fire the timers whose deadline has passed (their wakers queue their tasks);
//! 3. if nothing is queued, **park in `epoll_wait`** with the nearest timer deadline as the
//!    timeout; else peek at epoll without waiting, so busy tasks cannot starve I/O;
//! 4. turn each epoll event into the wake of the task waiting on that socket; go to 1.
//!
//! The **reactor** ([`Reactor`]) is the part that knows about the outside world: every socket
//! is registered once, edge-triggered, for both directions, with a slot holding the waker of
//! the task waiting to read and the one waiting to write. An I/O future tries the system call
//! first; on `EAGAIN` it leaves its waker in the slot and returns `Pending`. The **timers** are
//! a `BTreeMap` ordered by (deadline, id): the first entry is the next deadline, and a dropped
//! [`Sleep`] removes its entry. An **eventfd** is registered too: a waker called from another
//! thread while the loop sleeps in `epoll_wait` writes to it, and the kernel wakes the loop.
//!
//! What this lab does not teach comes from the chapter's support crate, `ch7_support`: lab 6's
//! epoll wrapper (`Epoll`, `Events`, `Interest`, `Token`, `Trigger`) and socket calls
//! (`net::listen`, `net::accept`), lab 7's join handle (`task::joinable`), and the command-line
//! conventions (`cli::parse_args`).
//!
//! How tokio differs: it keeps per-socket readiness bits (so it can skip a `read` that would
//! say `EAGAIN`), a hierarchical timer wheel (O(1) insert), a slab of `ScheduledIo` reused
//! with generation counters, a budget per task, and it can run the same loop on many threads.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::future::{Future, poll_fn};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::pin::{Pin, pin};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ch7_support::task::{JoinHandle, TaskFuture, joinable};
use ch7_support::{Epoll, Events, Interest, Token, Trigger, cli, net, raise_fd_limit};
use clap::Parser;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// The listen backlog (std, mio and tokio's `bind` use 128).
pub const BACKLOG: i32 = 1024;

const USAGE: &str = "usage: ch7_reactor_runtime [--addr HOST:PORT]";

// =============================================================================================
// Part 1: the executor: tasks, and the run queue that wakers fill (lab 7's, with std's `Wake`).

/// Stores `waker` in `slot` unless the one there already wakes the same task.
fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(old) if old.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// The run queue, shared with wakers on any thread.
#[derive(Default)]
struct RunQueue {
    ready: VecDeque<u64>,
    main_woken: bool,
    /// The loop is in (or about to enter) `epoll_wait`: a wake must write the eventfd.
    parked: bool,
}

struct Shared {
    queue: Mutex<RunQueue>,
    /// Written by a wake while the loop is parked: it is registered in epoll, so the write
    /// ends `epoll_wait`. A counter, drained with one read. A `File`, so its 8-byte reads and
    /// writes go through std (mio's eventfd waker does the same).
    eventfd: File,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, RunQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a task (`Some(id)`) or the main future (`None`), and wakes the loop if it sleeps.
    fn schedule(&self, task: Option<u64>) {
        let mut queue = self.lock();
        match task {
            Some(id) => queue.ready.push_back(id),
            None => queue.main_woken = true,
        }
        // Only a wake that finds the loop parked pays for the syscall; the loop clears
        // `parked` when it wakes up, so one write per sleep is enough.
        if std::mem::take(&mut queue.parked) {
            drop(queue);
            // Adds 1 to the counter. It cannot fail short of an overflow of the 64-bit counter,
            // which would still leave it readable.
            let _ = (&self.eventfd).write(&1u64.to_ne_bytes());
        }
    }
}

/// A task's waker: queues the task once however often it is woken (std's `Wake` trait builds
/// the same vtable you wrote by hand in lab 7).
struct TaskWaker {
    id: u64,
    scheduled: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.shared.schedule(Some(self.id));
        }
    }
}

/// The main future's waker.
struct MainWaker(Arc<Shared>);

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.0.schedule(None)
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.schedule(None)
    }
}

struct Task {
    /// The spawned future, wrapped by `joinable`: it fills the `JoinHandle` when it is done.
    future: TaskFuture,
    wake: Arc<TaskWaker>,
    waker: Waker,
}

// =============================================================================================
// Part 2: the reactor: sockets, timers, and the eventfd, all answered by one epoll_wait.

/// Token of the eventfd in epoll; sockets use their slot index.
const WAKE_TOKEN: Token = Token(usize::MAX);
/// Events one `epoll_wait` returns at most (more wait for the next round).
const EVENTS_PER_WAIT: usize = 256;

/// What a registered socket's waiting tasks left behind.
#[derive(Default)]
struct IoSlot {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// Which way a task waits on a socket.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Read,
    Write,
}

/// Everything the loop waits for, answered by one `epoll_wait`: sockets, timers, the eventfd.
pub struct Reactor {
    epoll: Epoll,
    /// Slots indexed by token; freed slots are reused (`free`).
    slots: RefCell<Vec<Option<IoSlot>>>,
    free: RefCell<Vec<usize>>,
    /// (deadline, id) -> waker: ordered, so the first entry is the next deadline.
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_timer: Cell<u64>,
    events: RefCell<Events>,
}

impl Reactor {
    fn new(eventfd: &File) -> io::Result<Reactor> {
        let epoll = Epoll::new()?;
        // Readable only (an eventfd is always writable: EPOLLOUT would report every read of
        // it), level-triggered (it is drained at each event).
        epoll.add(eventfd, WAKE_TOKEN, Interest::READABLE, Trigger::Level)?;
        Ok(Reactor {
            epoll,
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            timers: RefCell::new(BTreeMap::new()),
            next_timer: Cell::new(0),
            events: RefCell::new(Events::with_capacity(EVENTS_PER_WAIT)),
        })
    }

    /// Registers a socket, once, both directions, edge-triggered; returns its token.
    fn register(&self, fd: &impl AsRawFd) -> io::Result<usize> {
        let mut slots = self.slots.borrow_mut();
        let token = match self.free.borrow_mut().pop() {
            Some(token) => token,
            None => {
                slots.push(None);
                slots.len() - 1
            }
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.epoll.add(fd, Token(token), interest, Trigger::Edge) {
            self.free.borrow_mut().push(token);
            return Err(e);
        }
        slots[token] = Some(IoSlot::default());
        Ok(token)
    }

    /// Frees the slot; the owner closes the fd, which also removes it from epoll.
    fn deregister(&self, token: usize) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(token)
            && slot.take().is_some()
        {
            self.free.borrow_mut().push(token);
        }
    }

    /// Leaves `waker` to be woken when the socket's next edge in `direction` comes.
    fn wait_for(&self, token: usize, direction: Direction, waker: &Waker) {
        if let Some(Some(slot)) = self.slots.borrow_mut().get_mut(token) {
            match direction {
                Direction::Read => set_waker(&mut slot.reader, waker),
                Direction::Write => set_waker(&mut slot.writer, waker),
            }
        }
    }

    fn add_timer(&self, deadline: Instant, waker: Waker) -> (Instant, u64) {
        let key = (deadline, self.next_timer.get());
        self.next_timer.set(key.1 + 1);
        self.timers.borrow_mut().insert(key, waker);
        key
    }

    fn update_timer(&self, key: (Instant, u64), waker: &Waker) {
        if let Some(slot) = self.timers.borrow_mut().get_mut(&key)
            && !slot.will_wake(waker)
        {
            *slot = waker.clone();
        }
    }

    fn remove_timer(&self, key: (Instant, u64)) {
        self.timers.borrow_mut().remove(&key);
    }

    /// Wakes every timer whose deadline has passed, earliest first.
    fn fire_timers(&self) {
        let now = Instant::now();
        loop {
            // Pop one at a time, outside the borrow: a wake may not touch the timers, but
            // this keeps the RefCell rule obvious.
            let expired = {
                let mut timers = self.timers.borrow_mut();
                match timers.first_entry() {
                    Some(entry) if entry.key().0 <= now => Some(entry.remove()),
                    _ => None,
                }
            };
            match expired {
                Some(waker) => waker.wake(),
                None => return,
            }
        }
    }

    /// How long the loop may sleep: until the next deadline, or forever.
    fn next_timeout(&self) -> Option<Duration> {
        let timers = self.timers.borrow();
        let (deadline, _) = timers.keys().next()?;
        Some(deadline.saturating_duration_since(Instant::now()))
    }

    /// One `epoll_wait`; every event becomes the wake of the tasks waiting on that socket.
    fn poll(&self, timeout: Option<Duration>, shared: &Shared) -> io::Result<()> {
        let mut events = self.events.borrow_mut();
        self.epoll.wait(&mut events, timeout)?;
        // Awake again: from now on the wakes below (on this thread) and those of other threads
        // only queue their task; none needs the eventfd.
        shared.lock().parked = false;
        for event in events.iter() {
            if event.token() == WAKE_TOKEN {
                // One read resets the counter, however many writes it adds up.
                let _ = (&shared.eventfd).read(&mut [0; 8]);
                continue;
            }
            // A FIN wakes the reader (its read returns 0); a hang-up or an error wakes both
            // sides, whose next syscall reports it.
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable() || event.is_write_closed() || event.is_error();
            // Take the wakers out: a waker is used once, the task leaves a new one if it has
            // to wait again. The slot may be gone (closed earlier in this batch).
            let (reader, writer) = match self.slots.borrow_mut().get_mut(event.token().0) {
                Some(Some(slot)) => (
                    readable.then(|| slot.reader.take()).flatten(),
                    writable.then(|| slot.writer.take()).flatten(),
                ),
                _ => (None, None),
            };
            if let Some(waker) = reader {
                waker.wake();
            }
            if let Some(waker) = writer {
                waker.wake();
            }
        }
        Ok(())
    }
}

// =============================================================================================
// Part 3: the runtime: the loop that ties the executor and the reactor together.

struct Core {
    tasks: RefCell<HashMap<u64, Task>>,
    next_task: Cell<u64>,
    shared: Arc<Shared>,
    reactor: Reactor,
}

thread_local! {
    /// The runtime whose `block_on` runs on this thread: how `spawn`, `sleep` and the sockets
    /// find it without being handed a reference (tokio does the same).
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Runs `f` with the current runtime; panics outside `Runtime::block_on`.
fn with_core<R>(f: impl FnOnce(&Rc<Core>) -> R) -> R {
    let core = CURRENT.with(|current| current.borrow().clone());
    let core = core.expect("not inside Runtime::block_on: spawn, sleep and sockets need a runtime");
    f(&core)
}

/// Like `with_core`, but does nothing without a runtime (for destructors: a socket dropped
/// after the runtime is gone just closes).
fn try_with_core(f: impl FnOnce(&Rc<Core>)) {
    let core = CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten();
    if let Some(core) = core {
        f(&core);
    }
}

impl Core {
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (future, handle) = joinable(future);
        let id = self.next_task.get();
        self.next_task.set(id + 1);
        let wake = Arc::new(TaskWaker {
            id,
            scheduled: AtomicBool::new(false),
            shared: self.shared.clone(),
        });
        let waker = Waker::from(wake.clone());
        self.tasks.borrow_mut().insert(
            id,
            Task {
                future,
                wake,
                waker: waker.clone(),
            },
        );
        waker.wake();
        handle
    }

    fn poll_task(&self, id: u64) {
        let Some(mut task) = self.tasks.borrow_mut().remove(&id) else {
            return;
        };
        task.wake.scheduled.store(false, Ordering::Release);
        let mut cx = Context::from_waker(&task.waker);
        match task.future.as_mut().poll(&mut cx) {
            Poll::Pending => {
                self.tasks.borrow_mut().insert(id, task);
            }
            Poll::Ready(()) => task.wake.scheduled.store(true, Ordering::Release),
        }
    }
}

/// A single-threaded runtime: executor, reactor, timers.
pub struct Runtime {
    core: Rc<Core>,
}

impl Runtime {
    pub fn new() -> io::Result<Runtime> {
        // SAFETY: eventfd takes integers and touches no memory of ours.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
        let eventfd = unsafe { File::from_raw_fd(fd) };
        let reactor = Reactor::new(&eventfd)?;
        Ok(Runtime {
            core: Rc::new(Core {
                tasks: RefCell::new(HashMap::new()),
                next_task: Cell::new(0),
                shared: Arc::new(Shared {
                    queue: Mutex::new(RunQueue::default()),
                    eventfd,
                }),
                reactor,
            }),
        })
    }

    /// Runs `future`, and every task spawned meanwhile, until `future` is done.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _enter = Enter::new(self.core.clone());
        let core = &self.core;
        let mut future = pin!(future);
        let main_waker = Waker::from(Arc::new(MainWaker(core.shared.clone())));
        let mut cx = Context::from_waker(&main_waker);
        core.shared.lock().main_woken = true;
        loop {
            // 1. The main future, then a snapshot of the run queue (a task that wakes itself
            //    goes to the next round instead of looping here forever).
            let (main_woken, batch) = {
                let mut queue = core.shared.lock();
                (
                    std::mem::take(&mut queue.main_woken),
                    std::mem::take(&mut queue.ready),
                )
            };
            if main_woken && let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            for id in batch {
                core.poll_task(id);
            }
            // 2. Timers.
            core.reactor.fire_timers();
            // 3. Park in epoll_wait if nothing is queued; just peek at epoll otherwise.
            let timeout = {
                let mut queue = core.shared.lock();
                if queue.ready.is_empty() && !queue.main_woken {
                    queue.parked = true;
                    core.reactor.next_timeout()
                } else {
                    Some(Duration::ZERO)
                }
            };
            // 4. I/O events become wakes.
            if let Err(e) = core.reactor.poll(timeout, &core.shared) {
                panic!("epoll_wait failed: {e}");
            }
        }
    }
}

/// Sets `CURRENT` for the duration of `block_on`, and clears it even if the future panics.
struct Enter;

impl Enter {
    fn new(core: Rc<Core>) -> Enter {
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            assert!(
                current.is_none(),
                "Runtime::block_on inside Runtime::block_on: await the future instead"
            );
            *current = Some(core);
        });
        Enter
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|current| current.borrow_mut().take());
    }
}

/// Spawns a task on the current runtime. Panics outside `Runtime::block_on`.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    with_core(|core| core.spawn(future))
}

// =============================================================================================
// Part 4: the futures the reactor serves: Sleep, AsyncTcpListener, AsyncTcpStream.

/// Completes once `duration` has passed since `sleep` was called.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Completes at `deadline` (at once if it has passed).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`]. Dropping it early removes its timer.
pub struct Sleep {
    deadline: Instant,
    /// Its key in the reactor's timers, once registered.
    timer: Option<(Instant, u64)>,
}

impl Sleep {
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut(); // Sleep is Unpin: no field needs pinning
        if Instant::now() >= this.deadline {
            if let Some(key) = this.timer.take() {
                with_core(|core| core.reactor.remove_timer(key));
            }
            return Poll::Ready(());
        }
        with_core(|core| match this.timer {
            Some(key) => core.reactor.update_timer(key, cx.waker()),
            None => this.timer = Some(core.reactor.add_timer(this.deadline, cx.waker().clone())),
        });
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.timer.take() {
            try_with_core(|core| core.reactor.remove_timer(key));
        }
    }
}

/// Tries `op` (a non-blocking syscall); on `EAGAIN` leaves the waker with the reactor and
/// returns `Pending`. The edge that ends the `EAGAIN` comes after the waker is stored: the
/// loop only reads events after the tasks have been polled, so no wake-up can slip between.
fn poll_io<T>(
    token: usize,
    direction: Direction,
    cx: &mut Context<'_>,
    mut op: impl FnMut() -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                with_core(|core| core.reactor.wait_for(token, direction, cx.waker()));
                return Poll::Pending;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// A listening socket served by the reactor.
pub struct AsyncTcpListener {
    listener: TcpListener,
    token: usize,
}

impl AsyncTcpListener {
    /// Binds with a backlog of [`BACKLOG`] and registers with the current runtime.
    pub fn bind(addr: SocketAddr) -> io::Result<AsyncTcpListener> {
        let listener = net::listen(addr, BACKLOG)?;
        let token = with_core(|core| core.reactor.register(&listener))?;
        Ok(AsyncTcpListener { listener, token })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection, registered with the reactor (`peer_addr` says who it is).
    pub async fn accept(&self) -> io::Result<AsyncTcpStream> {
        let (stream, _peer) = poll_fn(|cx| {
            poll_io(self.token, Direction::Read, cx, || {
                net::accept(&self.listener)
            })
        })
        .await?;
        AsyncTcpStream::new(stream)
    }
}

impl Drop for AsyncTcpListener {
    fn drop(&mut self) {
        let token = self.token;
        try_with_core(|core| core.reactor.deregister(token));
    }
}

/// A connected socket served by the reactor. One task reads and one task writes at a time
/// (one waker slot per direction).
pub struct AsyncTcpStream {
    stream: TcpStream,
    token: usize,
}

impl AsyncTcpStream {
    fn new(stream: TcpStream) -> io::Result<AsyncTcpStream> {
        let token = with_core(|core| core.reactor.register(&stream))?;
        Ok(AsyncTcpStream { stream, token })
    }

    /// Reads what is there (at least one byte), or 0 at end of file.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| poll_io(self.token, Direction::Read, cx, || (&self.stream).read(buf))).await
    }

    /// Writes what the socket takes now (at least one byte).
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            poll_io(self.token, Direction::Write, cx, || {
                (&self.stream).write(buf)
            })
        })
        .await
    }

    /// Writes all of `buf`, waiting for room as often as needed.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }
}

impl Drop for AsyncTcpStream {
    fn drop(&mut self) {
        let token = self.token;
        try_with_core(|core| core.reactor.deregister(token));
        // Then `stream` drops: close(2), which also removes the fd from epoll.
    }
}

// =============================================================================================
// The echo server.

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The runtime or the listening socket could not be created: exit code 1.
    Io { what: String, source: io::Error },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

/// The command line: `ch7_reactor_runtime [--addr HOST:PORT]`, parsed by `cli::parse_args`
/// (a bad argument is one line on stderr and exit code 2).
#[derive(Debug, Parser)]
#[command(
    name = "ch7_reactor_runtime",
    about = "An echo server on a hand-made reactor runtime: epoll, timers, async sockets"
)]
pub struct Args {
    /// The address to serve on; with port 0 the kernel picks one, and the server prints it
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
}

/// Accepts connections forever, one task each.
pub async fn serve(listener: AsyncTcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                spawn(echo(stream));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => {
                // EMFILE and friends: back off with a timer instead of spinning on accept.
                eprintln!("ch7_reactor_runtime: accept: {e}");
                sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Sends back everything the client sends; closes after its FIN, once all is echoed.
pub async fn echo(stream: AsyncTcpStream) {
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(_) => return, // a reset: nothing to answer
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn run(addr: SocketAddr) -> Result<(), ServerError> {
    if let Err(e) = raise_fd_limit() {
        eprintln!("ch7_reactor_runtime: cannot raise the open-file limit: {e}");
    }
    let io_error = |what: &str| {
        let what = what.to_string();
        move |source| ServerError::Io { what, source }
    };
    let runtime = Runtime::new().map_err(io_error("cannot start the runtime"))?;
    runtime.block_on(async {
        let listener =
            AsyncTcpListener::bind(addr).map_err(io_error(&format!("cannot listen on {addr}")))?;
        let local = listener
            .local_addr()
            .map_err(io_error("cannot read the local address"))?;
        println!("listening on {local}");
        serve(listener).await;
        Ok(())
    })
}

fn main() -> ExitCode {
    let args: Args = match cli::parse_args(USAGE) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(args.addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch7_reactor_runtime: {e}");
            ExitCode::from(1)
        }
    }
}
