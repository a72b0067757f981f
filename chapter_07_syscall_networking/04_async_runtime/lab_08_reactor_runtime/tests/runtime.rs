//! White-box tests of the runtime: timers, wake-ups from the reactor and from other threads,
//! and sleeping instead of spinning. Each test runs its runtime on a thread of its own, with a
//! deadline, so a lost wake-up fails the test instead of hanging it.

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::net::TcpStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use rand::RngExt;

use labkit::signal::Signal;

labkit::lab_mod!(lab);
use lab::{AsyncTcpListener, Runtime};

const DEADLINE: Duration = Duration::from_secs(25);

/// Runs `test` on a thread of its own and fails if it has not finished by [`DEADLINE`].
fn within_deadline<T: Send + 'static>(what: &str, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(test());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not finished after {DEADLINE:?}: a wake-up was lost")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the test thread panicked"),
    }
}

/// CPU time used so far by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the exclusive reference.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Counts the polls of the future it wraps.
struct CountPolls<F> {
    inner: Pin<Box<F>>,
    polls: usize,
    last_poll: Option<Instant>,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = (F::Output, usize, Instant);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.polls += 1;
        self.last_poll = Some(Instant::now());
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready((output, self.polls, self.last_poll.unwrap())),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn count_polls<F: Future>(future: F) -> CountPolls<F> {
    CountPolls {
        inner: Box::pin(future),
        polls: 0,
        last_poll: None,
    }
}

// Requirement 1: timers.
#[test]
fn ten_thousand_sleeping_tasks_wake_in_deadline_order() {
    const TASKS: usize = 10_000;
    // Deadlines from 400 ms to 1.4 s after the start: every task has had its first poll (and
    // registered its timer) long before the first deadline.
    let (wakes, start) = within_deadline("10,000 sleeping tasks", || {
        let runtime = Runtime::new().expect("runtime");
        let start = Instant::now();
        let wakes: Rc<RefCell<Vec<(Instant, Instant)>>> = Rc::default();
        let log = wakes.clone();
        runtime.block_on(async move {
            let handles: Vec<_> = (0..TASKS)
                .map(|_| {
                    let offset =
                        Duration::from_micros(rand::rng().random_range(400_000..1_400_000));
                    let log = log.clone();
                    lab::spawn(async move {
                        let deadline = start + offset;
                        lab::sleep_until(deadline).await;
                        log.borrow_mut().push((deadline, Instant::now()));
                    })
                })
                .collect();
            for handle in handles {
                handle.await.expect("no task panics");
            }
        });
        let wakes = wakes.borrow().clone();
        (wakes, start)
    });
    assert_eq!(wakes.len(), TASKS, "every task woke up");
    for (i, (deadline, woke)) in wakes.iter().enumerate() {
        assert!(
            woke >= deadline,
            "wake {i} came {:?} before its deadline",
            *deadline - *woke
        );
    }
    for (i, pair) in wakes.windows(2).enumerate() {
        assert!(
            pair[0].0 <= pair[1].0,
            "wakes {i} and {} are out of deadline order: deadlines at {:?} then {:?} after the \
             start (fire expired timers earliest first)",
            i + 1,
            pair[0].0 - start,
            pair[1].0 - start
        );
    }
    // Lateness: generous, the machine may be loaded; a runtime that ignores timers until
    // something else happens is late by far more.
    let mut late: Vec<Duration> = wakes.iter().map(|(d, w)| *w - *d).collect();
    late.sort();
    let median = late[late.len() / 2];
    assert!(
        median < Duration::from_millis(200),
        "median lateness {median:?}: sleep in epoll_wait until the nearest deadline"
    );
}

#[test]
fn sleep_waits_in_epoll_without_spinning() {
    let (cpu, short_sleeps_ok) = within_deadline("sleep", || {
        let runtime = Runtime::new().expect("runtime");
        let cpu_before = thread_cpu_time();
        let slept = runtime.block_on(async {
            let started = Instant::now();
            lab::sleep(Duration::from_millis(800)).await;
            started.elapsed()
        });
        assert!(slept >= Duration::from_millis(800), "woke after {slept:?}");
        let cpu = thread_cpu_time() - cpu_before;
        // Sub-millisecond sleeps: not early either (a timeout rounded down to 0 ms spins).
        let short_sleeps_ok = runtime.block_on(async {
            let mut ok = true;
            for _ in 0..20 {
                let started = Instant::now();
                lab::sleep(Duration::from_micros(300)).await;
                ok &= started.elapsed() >= Duration::from_micros(300);
            }
            ok
        });
        (cpu, short_sleeps_ok)
    });
    assert!(short_sleeps_ok, "a 300 µs sleep returned early");
    assert!(
        cpu < Duration::from_millis(50),
        "the runtime's thread used {cpu:?} of CPU during an 800 ms sleep: park in epoll_wait \
         with the timer's deadline as the timeout (rounded up), do not loop"
    );
}

#[test]
fn spawned_tasks_interleave_on_timers() {
    let log = within_deadline("two tasks", || {
        let runtime = Runtime::new().expect("runtime");
        runtime.block_on(async {
            let log: Rc<RefCell<Vec<&'static str>>> = Rc::default();
            let (a_log, b_log) = (log.clone(), log.clone());
            let a = lab::spawn(async move {
                for _ in 0..3 {
                    a_log.borrow_mut().push("a");
                    lab::sleep(Duration::from_millis(40)).await;
                }
                1
            });
            let b = lab::spawn(async move {
                lab::sleep(Duration::from_millis(20)).await;
                for _ in 0..3 {
                    b_log.borrow_mut().push("b");
                    lab::sleep(Duration::from_millis(40)).await;
                }
                2
            });
            assert_eq!(a.await.unwrap() + b.await.unwrap(), 3);
            log.borrow().clone()
        })
    });
    assert_eq!(log, ["a", "b", "a", "b", "a", "b"]);
}

// Requirement 2: the reactor wakes a task exactly when its socket is ready.
#[test]
fn a_task_blocked_on_a_socket_wakes_exactly_when_data_arrives() {
    const DELAY: Duration = Duration::from_millis(300);
    let (polls, read, woke, written, cpu) = within_deadline("read on a socket", || {
        let runtime = Runtime::new().expect("runtime");
        runtime.block_on(async {
            let listener = AsyncTcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
            let addr = listener.local_addr().unwrap();
            let message: Vec<u8> = (0..rand::rng().random_range(1..1000))
                .map(|_| rand::rng().random())
                .collect();
            let sent = message.clone();
            let peer = thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                thread::sleep(DELAY);
                let written = Instant::now();
                stream.write_all(&sent).expect("write");
                (stream, written)
            });
            let stream = listener.accept().await.expect("accept");
            let cpu_before = thread_cpu_time();
            let mut buf = vec![0; 4096];
            let (n, polls, woke) = count_polls(stream.read(&mut buf)).await;
            let cpu = thread_cpu_time() - cpu_before;
            let n = n.expect("read");
            let (_peer_stream, written) = peer.join().unwrap();
            assert_eq!(
                &buf[..n],
                &message[..n],
                "the bytes read are the bytes sent"
            );
            (polls, n, woke, written, cpu)
        })
    });
    assert!(read > 0);
    assert!(
        woke >= written,
        "the read future was polled to completion before the data was written"
    );
    assert_eq!(
        polls, 2,
        "the read future was polled {polls} times: once (EAGAIN, waker left with the reactor), \
         then once when the data arrived; a wake for another reason (the socket being \
         writable, a timer, a busy loop) is a wasted poll"
    );
    assert!(
        cpu < Duration::from_millis(50),
        "the runtime's thread used {cpu:?} of CPU waiting {DELAY:?} for data: sleep in \
         epoll_wait"
    );
}

// Requirement 3: a wake from another thread interrupts epoll_wait (the eventfd).
#[test]
fn a_wake_from_another_thread_interrupts_epoll_wait() {
    let rounds = within_deadline("wakes from another thread", || {
        let runtime = Runtime::new().expect("runtime");
        let mut rounds = 0;
        for _ in 0..5 {
            let signal = Signal::default();
            let setter = {
                let signal = signal.clone();
                thread::spawn(move || {
                    // Long enough for the runtime to be asleep in epoll_wait, with no timer
                    // and no socket to wake it: only the eventfd can.
                    thread::sleep(Duration::from_millis(50));
                    signal.set();
                })
            };
            let task_signal = signal.clone();
            runtime.block_on(async move {
                lab::spawn(task_signal).await.unwrap();
            });
            setter.join().unwrap();
            rounds += 1;
        }
        // The main future itself, woken from another thread.
        let signal = Signal::default();
        let setter = {
            let signal = signal.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                signal.set();
            })
        };
        runtime.block_on(signal);
        setter.join().unwrap();
        rounds + 1
    });
    assert_eq!(rounds, 6);
}
