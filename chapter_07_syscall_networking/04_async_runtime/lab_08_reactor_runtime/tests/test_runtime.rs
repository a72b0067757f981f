//! White-box tests of the runtime: timers, wake-ups from the reactor and from other threads,
//! and sleeping instead of spinning. Each test runs its runtime on a thread of its own, with a
//! deadline, so a lost wake-up fails the test instead of hanging it.

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::net::TcpStream;
use std::pin::Pin;
use std::rc::Rc;
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
    labkit::wait::on_a_thread_within(DEADLINE, what, test)
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
    assert!(
        wakes.len() == TASKS,
        "requirement 1: {} of {TASKS} sleeping tasks woke up; wanted all",
        wakes.len()
    );
    for (i, (deadline, woke)) in wakes.iter().enumerate() {
        assert!(
            woke >= deadline,
            "requirement 1: wake {i} came {:?} before its deadline; wanted never before",
            *deadline - *woke
        );
    }
    for (i, pair) in wakes.windows(2).enumerate() {
        assert!(
            pair[0].0 <= pair[1].0,
            "requirement 1: wakes {i} and {} are out of deadline order: deadlines at {:?} then {:?} after the \
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
        "requirement 1: the median sleeping task woke {median:?} after its deadline; wanted \
         under 200 ms: sleep in epoll_wait until the nearest deadline"
    );
}

#[test]
fn sleep_waits_in_epoll_without_spinning() {
    let (cpu, short_sleeps_ok) = within_deadline("sleep", || {
        let runtime = Runtime::new().expect("runtime");
        let cpu_before = labkit::sys::thread_cpu_time();
        let slept = runtime.block_on(async {
            let started = Instant::now();
            lab::sleep(Duration::from_millis(800)).await;
            started.elapsed()
        });
        assert!(
            slept >= Duration::from_millis(800),
            "requirement 1: an 800 ms sleep woke after {slept:?}; wanted never before its deadline"
        );
        let cpu = labkit::sys::thread_cpu_time() - cpu_before;
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
    assert!(
        short_sleeps_ok,
        "requirement 1: a 300 µs sleep returned before its deadline; wanted never before"
    );
    assert!(
        cpu < Duration::from_millis(50),
        "requirement 1: the runtime's thread used {cpu:?} of CPU during an 800 ms sleep; wanted \
         under 50 ms: park in epoll_wait with the timer's deadline as the timeout (rounded up), \
         do not loop"
    );
}

#[test]
fn sub_millisecond_sleeps_sleep_in_epoll_wait() {
    const SLEEPS: u64 = 100;
    let (switches, early) = within_deadline("300 µs sleeps", || {
        let runtime = Runtime::new().expect("runtime");
        runtime.block_on(async {
            let before = labkit::sys::thread_voluntary_switches();
            let mut early = 0;
            for _ in 0..SLEEPS {
                let started = Instant::now();
                lab::sleep(Duration::from_micros(300)).await;
                if started.elapsed() < Duration::from_micros(300) {
                    early += 1;
                }
            }
            (labkit::sys::thread_voluntary_switches() - before, early)
        })
    });
    assert!(
        early == 0,
        "requirement 1: {early} of {SLEEPS} sleeps of 300 µs returned before their deadline; \
         wanted none"
    );
    // Each sleep must put the thread to sleep in the kernel at least once (a voluntary context
    // switch). A timeout rounded down to 0 ms makes epoll_wait return at once: the loop spins
    // until the deadline and never sleeps.
    assert!(
        switches >= SLEEPS / 2,
        "requirement 1: {SLEEPS} sleeps of 300 µs put the runtime's thread to sleep {switches} \
         times; wanted at least {}: round the epoll_wait timeout up to 1 ms, as 0 ms returns at \
         once and spins",
        SLEEPS / 2
    );
}

#[test]
fn a_dropped_sleep_leaves_no_timer_behind() {
    // The main future polls a 100 ms sleep once (its timer is registered), drops it, as a
    // `select` or a timeout does with the future that lost, then waits for a signal set by
    // another thread 400 ms later. It must be polled twice: at the start and for the signal.
    // A dropped sleep whose timer stays registered wakes it at 100 ms for nothing.
    let polls = within_deadline("a dropped sleep", || {
        let runtime = Runtime::new().expect("runtime");
        let signal = Signal::default();
        let setter = {
            let signal = signal.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(400));
                signal.set();
            })
        };
        let (_, polls, _) = runtime.block_on(count_polls(async move {
            let mut sleep = Box::pin(lab::sleep(Duration::from_millis(100)));
            std::future::poll_fn(|cx| {
                let first = sleep.as_mut().poll(cx);
                assert!(
                    first.is_pending(),
                    "requirement 1: a 100 ms sleep was ready at once; wanted pending"
                );
                Poll::Ready(())
            })
            .await;
            drop(sleep);
            signal.await;
        }));
        setter.join().unwrap();
        polls
    });
    assert!(
        polls == 2,
        "requirement 1: a future that dropped a pending sleep and then waited 400 ms for another \
         thread was polled {polls} times; wanted 2: dropping a Sleep removes its timer (Drop), \
         or the timer fires later and wakes the task for nothing"
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
            let (a, b) = (a.await, b.await);
            assert!(
                a == Ok(1) && b == Ok(2),
                "requirement 1: the two tasks' join handles gave {a:?} and {b:?}; wanted Ok(1) \
                 and Ok(2)"
            );
            log.borrow().clone()
        })
    });
    assert!(
        log == ["a", "b", "a", "b", "a", "b"],
        "requirement 1: two tasks sleeping 40 ms each, 20 ms apart, ran in the order {log:?}; \
         wanted a b a b a b"
    );
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
            let cpu_before = labkit::sys::thread_cpu_time();
            let mut buf = vec![0; 4096];
            let (n, polls, woke) = count_polls(stream.read(&mut buf)).await;
            let cpu = labkit::sys::thread_cpu_time() - cpu_before;
            let n = n.expect("read");
            let (_peer_stream, written) = peer.join().unwrap();
            assert!(
                buf[..n] == message[..n],
                "requirement 2: the {n} bytes read differ from the bytes sent"
            );
            (polls, n, woke, written, cpu)
        })
    });
    assert!(
        read > 0,
        "requirement 2: the read returned 0 bytes; wanted the bytes the peer wrote"
    );
    assert!(
        woke >= written,
        "requirement 2: the read future was polled to completion before the data was written"
    );
    assert!(
        polls == 2,
        "requirement 2: the read future was polled {polls} times; wanted 2: once (EAGAIN, waker \
         left with the reactor), then once when the data arrived; a wake for another reason \
         (the socket being writable, a timer, a busy loop) is a wasted poll"
    );
    assert!(
        cpu < Duration::from_millis(50),
        "requirement 2: the runtime's thread used {cpu:?} of CPU waiting {DELAY:?} for data; \
         wanted under 50 ms: sleep in epoll_wait"
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
    assert!(
        rounds == 6,
        "requirement 3: {rounds} of 6 wakes from another thread reached the runtime"
    );
}
