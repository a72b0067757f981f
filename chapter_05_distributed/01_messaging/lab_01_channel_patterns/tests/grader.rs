//! Grader for Channel Patterns: the patterns used as a library, on tokio's paused clock.
//!
//! `#[tokio::test(start_paused = true)]` runs each test on a single thread with a virtual clock
//! that jumps straight to the next timer whenever every task is waiting. Sleeps cost no real
//! time, durations are exact, and a deadlock turns into a timeout instead of a hang.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use tokio::sync::{Barrier, Semaphore, broadcast, mpsc};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

labkit::lab_mod!(lab);
use lab::{CounterOp, PatternError, Waited, WorkerPool};

/// Virtual time a test may wait for one step before it is declared stuck.
const STUCK: Duration = Duration::from_secs(60);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STUCK, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {STUCK:?} (a deadlock?)"))
}

fn random(range: std::ops::Range<u64>) -> u64 {
    rand::rng().random_range(range)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// Requirement 1: the worker pool runs every job exactly once, on all its workers at once.
#[tokio::test(start_paused = true)]
async fn pool_runs_every_job_exactly_once() {
    let workers = random(1..6) as usize;
    let capacity = random(1..10) as usize;
    let jobs = random(50..300);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let pool = WorkerPool::new(workers, capacity, move |job: u64| {
        let log = log.clone();
        let pause = ms(random(0..3));
        async move {
            sleep(pause).await;
            log.lock().unwrap().push(job);
        }
    });
    for job in 0..jobs {
        within("submit", pool.submit(job)).await.expect("submit");
    }
    within("shutdown", pool.shutdown()).await;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..jobs).collect::<Vec<_>>(),
        "each job must run exactly once"
    );
}

#[tokio::test(start_paused = true)]
async fn pool_workers_run_jobs_in_parallel() {
    let workers = random(2..6) as usize;
    // `workers` jobs meet at a barrier: they can only all get there if they run at the same time.
    let barrier = Arc::new(Barrier::new(workers));
    let met = Arc::new(Mutex::new(Vec::new()));
    let (b, m) = (barrier.clone(), met.clone());
    let pool = WorkerPool::new(workers, workers, move |_job: usize| {
        let (b, m) = (b.clone(), m.clone());
        async move {
            let ok = tokio::time::timeout(ms(1000), b.wait()).await.is_ok();
            m.lock().unwrap().push(ok);
        }
    });
    for job in 0..workers {
        within("submit", pool.submit(job)).await.expect("submit");
    }
    within("shutdown", pool.shutdown()).await;
    let met = met.lock().unwrap().clone();
    assert_eq!(met.len(), workers, "every job ran");
    assert!(
        met.iter().all(|ok| *ok),
        "{workers} jobs on {workers} workers must run at the same time: {met:?} \
         (does a worker hold the queue's lock while it runs a job?)"
    );
}

// Requirement 2: back-pressure. A full queue makes `submit` wait and `try_submit` fail.
#[tokio::test(start_paused = true)]
async fn submit_waits_while_the_queue_is_full() {
    let workers = random(1..4) as usize;
    let capacity = random(1..8) as usize;
    // Workers block on a gate that the test opens at the end.
    let gate = Arc::new(Semaphore::new(0));
    let done = Arc::new(Mutex::new(0usize));
    let (g, d) = (gate.clone(), done.clone());
    let pool = WorkerPool::new(workers, capacity, move |_job: usize| {
        let (g, d) = (g.clone(), d.clone());
        async move {
            g.acquire().await.expect("gate").forget();
            *d.lock().unwrap() += 1;
        }
    });
    let mut accepted = 0;
    for job in 0..capacity + workers + 50 {
        match tokio::time::timeout(ms(1000), pool.submit(job)).await {
            Ok(result) => {
                result.expect("submit");
                accepted += 1;
            }
            Err(_) => break, // submit is waiting: the queue is full
        }
    }
    assert!(
        accepted >= capacity && accepted <= capacity + workers,
        "with {workers} blocked workers and a queue of {capacity}, submit must start waiting \
         after {capacity}..={} jobs; it accepted {accepted}",
        capacity + workers
    );
    assert_eq!(
        pool.queued(),
        capacity,
        "the full queue holds `capacity` jobs"
    );
    assert_eq!(
        pool.try_submit(usize::MAX),
        Err(PatternError::Full),
        "try_submit on a full queue"
    );
    gate.add_permits(accepted + 100);
    within("shutdown", pool.shutdown()).await;
    assert_eq!(*done.lock().unwrap(), accepted, "every accepted job ran");
}

#[tokio::test(start_paused = true)]
async fn fast_producer_never_overfills_the_queue() {
    let workers = random(1..4) as usize;
    let capacity = random(2..16) as usize;
    let jobs = 2000u64;
    let started = Arc::new(Mutex::new(0u64));
    let s = started.clone();
    let pool = WorkerPool::new(workers, capacity, move |_job: u64| {
        let s = s.clone();
        async move {
            *s.lock().unwrap() += 1;
            sleep(ms(1)).await; // workers are slower than the producer
        }
    });
    let mut peak = 0;
    for job in 0..jobs {
        within("submit", pool.submit(job)).await.expect("submit");
        let waiting = (job + 1) as usize - *started.lock().unwrap() as usize;
        peak = peak.max(waiting);
        assert!(
            waiting <= capacity + workers,
            "{waiting} jobs accepted but not started, with a bound of {capacity} \
             (+{workers} in the workers' hands): the queue must stay bounded"
        );
        assert!(
            pool.queued() <= capacity,
            "queued() = {} > {capacity}",
            pool.queued()
        );
    }
    within("shutdown", pool.shutdown()).await;
    assert_eq!(*started.lock().unwrap(), jobs, "every job ran");
    assert!(
        peak >= capacity,
        "the producer should have filled the queue (peak {peak})"
    );
}

// Requirement 3: shutdown is graceful: every queued job runs before it returns.
#[tokio::test(start_paused = true)]
async fn shutdown_runs_every_queued_job() {
    let capacity = random(5..30) as usize;
    let done = Arc::new(Mutex::new(0usize));
    let d = done.clone();
    let pool = WorkerPool::new(2, capacity, move |_job: usize| {
        let d = d.clone();
        async move {
            sleep(ms(10)).await;
            *d.lock().unwrap() += 1;
        }
    });
    for job in 0..capacity {
        within("submit", pool.submit(job)).await.expect("submit");
    }
    let before = Instant::now();
    within("shutdown", pool.shutdown()).await;
    assert_eq!(
        *done.lock().unwrap(),
        capacity,
        "when shutdown returns, every queued job has run"
    );
    assert!(
        before.elapsed() >= ms(10 * capacity as u64 / 2),
        "two workers, 10 ms per job"
    );
}

// Requirement 4: fan-in keeps every item and each input's order, and ends with the inputs.
#[tokio::test(start_paused = true)]
async fn merge_delivers_every_item_once_in_per_input_order() {
    let producers = random(2..7) as usize;
    let mut inputs = Vec::new();
    let mut counts = Vec::new();
    for producer in 0..producers {
        let (tx, rx) = mpsc::channel(random(1..5) as usize);
        inputs.push(rx);
        let count = random(0..60);
        counts.push(count);
        tokio::spawn(async move {
            for seq in 0..count {
                sleep(ms(random(0..4))).await;
                tx.send((producer, seq))
                    .await
                    .expect("merge dropped an input");
            }
        });
    }
    let mut merged = lab::merge(inputs, random(1..8) as usize);
    let mut per_input = vec![Vec::new(); producers];
    while let Some((producer, seq)) = within("merged recv", merged.recv()).await {
        per_input[producer].push(seq);
    }
    for (producer, seqs) in per_input.iter().enumerate() {
        assert_eq!(
            *seqs,
            (0..counts[producer]).collect::<Vec<_>>(),
            "input {producer}: every item once, in its order"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn merge_does_not_wait_for_a_quiet_input() {
    let (quiet, quiet_rx) = mpsc::channel::<u64>(4);
    let (busy, busy_rx) = mpsc::channel::<u64>(4);
    let mut merged = lab::merge(vec![quiet_rx, busy_rx], 4);
    let n = random(5..20);
    tokio::spawn(async move {
        for i in 0..n {
            busy.send(i).await.expect("send");
        }
    });
    for i in 0..n {
        let item = tokio::time::timeout(ms(1000), merged.recv()).await;
        assert_eq!(
            item,
            Ok(Some(i)),
            "item {i} of the busy input must come through while the other input is silent"
        );
    }
    drop(quiet);
    assert_eq!(
        within("merged end", merged.recv()).await,
        None,
        "the merged channel ends once every input has ended"
    );
}

// Requirement 5: a lagging broadcast subscriber counts what it missed and goes on.
#[tokio::test(start_paused = true)]
async fn lagging_subscriber_skips_to_the_newest_values() {
    let capacity = 1usize << random(1..6);
    let n = capacity as u64 + random(1..100);
    let (tx, rx) = broadcast::channel(capacity);
    for value in 0..n {
        tx.send(value).expect("a subscriber exists");
    }
    drop(tx);
    let received = within("drain", lab::drain_broadcast(rx)).await;
    assert_eq!(received.missed, n - capacity as u64, "missed values");
    assert_eq!(
        received.values,
        (n - capacity as u64..n).collect::<Vec<_>>(),
        "after lagging, the subscriber reads the {capacity} newest values"
    );
}

#[tokio::test(start_paused = true)]
async fn subscriber_that_keeps_up_sees_everything() {
    let (tx, rx) = broadcast::channel(8);
    let reader = tokio::spawn(lab::drain_broadcast(rx));
    let n = random(50..300);
    for value in 0..n {
        tx.send(value).expect("a subscriber exists");
        tokio::task::yield_now().await; // give the subscriber its turn
    }
    drop(tx);
    let received = within("drain", reader).await.expect("drain task");
    assert_eq!(received.missed, 0);
    assert_eq!(received.values, (0..n).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn slow_subscriber_counts_every_missed_value() {
    let capacity = 4;
    let (tx, rx) = broadcast::channel(capacity);
    let reader = tokio::spawn(lab::drain_broadcast(rx));
    let mut n = 0u64;
    for _ in 0..random(5..20) {
        // Bursts bigger than the ring: the subscriber must lag during each of them.
        for _ in 0..random(1..20) {
            tx.send(n).expect("a subscriber exists");
            n += 1;
        }
        sleep(ms(1)).await;
    }
    drop(tx);
    let received = within("drain", reader).await.expect("drain task");
    assert_eq!(
        received.values.len() as u64 + received.missed,
        n,
        "every value is either read or counted as missed"
    );
    assert!(
        received.values.windows(2).all(|w| w[0] < w[1]),
        "values stay in publication order"
    );
    assert_eq!(
        received.values.last(),
        Some(&(n - 1)),
        "the last value is read"
    );
}

// Requirement 6: request/response over oneshot.
#[tokio::test(start_paused = true)]
async fn call_returns_the_answer_to_its_own_request() {
    let server = lab::spawn_counter(random(1..16) as usize);
    let keys = ["a", "b", "c", "d"];
    let mut callers = Vec::new();
    for _ in 0..random(5..20) {
        let server = server.clone();
        callers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..random(1..30) {
                let key = keys[random(0..4) as usize];
                let value = lab::call(&server, CounterOp::Incr(key.into(), 1))
                    .await
                    .expect("call");
                answers.push((key, value));
                tokio::task::yield_now().await;
            }
            answers
        }));
    }
    let mut per_key: std::collections::HashMap<&str, Vec<u64>> = Default::default();
    for caller in callers {
        for (key, value) in within("caller", caller).await.expect("caller task") {
            per_key.entry(key).or_default().push(value);
        }
    }
    for key in keys {
        let mut values = per_key.remove(key).unwrap_or_default();
        values.sort_unstable();
        let n = values.len() as u64;
        assert_eq!(
            values,
            (1..=n).collect::<Vec<_>>(),
            "increments of {key:?} answer 1, 2, 3... each to exactly one caller"
        );
        let total = within("get", lab::call(&server, CounterOp::Get(key.into()))).await;
        assert_eq!(total, Ok(n), "Get({key:?})");
    }
    let unknown = within("get", lab::call(&server, CounterOp::Get("zzz".into()))).await;
    assert_eq!(unknown, Ok(0), "a counter never incremented is 0");
}

#[tokio::test(start_paused = true)]
async fn call_reports_a_server_that_is_gone() {
    let (server, requests) = mpsc::channel::<lab::Request<u64, u64>>(4);
    drop(requests);
    let answer = within("call", lab::call(&server, 1)).await;
    assert_eq!(answer, Err(PatternError::Closed));
}

#[tokio::test(start_paused = true)]
async fn call_reports_a_request_dropped_without_answer() {
    let (server, mut requests) = mpsc::channel::<lab::Request<u64, u64>>(4);
    tokio::spawn(async move {
        while let Some((query, reply)) = requests.recv().await {
            if query % 2 == 0 {
                let _ = reply.send(query * 10);
            } // odd queries: the reply sender is dropped unanswered
        }
    });
    let even = random(0..1000) * 2;
    assert_eq!(
        within("call", lab::call(&server, even)).await,
        Ok(even * 10)
    );
    assert_eq!(
        within("call", lab::call(&server, even + 1)).await,
        Err(PatternError::NoReply)
    );
}

// Requirement 7: the pipeline keeps order, runs its stages concurrently, and loses nothing on
// shutdown.
fn stage1(x: u64) -> u64 {
    x * 3
}
fn stage2(x: u64) -> u64 {
    x + 7
}

#[tokio::test(start_paused = true)]
async fn pipeline_applies_both_stages_in_order() {
    let n = random(1..200);
    let (tx, input) = mpsc::channel(random(1..8) as usize);
    tokio::spawn(async move {
        for i in 0..n {
            tx.send(i).await.expect("send");
        }
    });
    let out = within(
        "pipeline",
        lab::pipeline(
            input,
            |x| async move {
                sleep(ms(random(0..3))).await;
                stage1(x)
            },
            |x| async move {
                sleep(ms(random(0..3))).await;
                stage2(x)
            },
            random(1..8) as usize,
            CancellationToken::new(),
        ),
    )
    .await;
    let expected: Vec<u64> = (0..n).map(|x| stage2(stage1(x))).collect();
    assert_eq!(out, expected, "the input closed: every item, in order");
}

#[tokio::test(start_paused = true)]
async fn pipeline_shutdown_finishes_every_item_in_flight() {
    for _ in 0..10 {
        // An endless producer on a channel of one: only the shutdown can end this pipeline,
        // and `sent` tells how many items the pipeline took (all of them but at most the one
        // left in the channel).
        let (tx, input) = mpsc::channel(1);
        let sent = Arc::new(Mutex::new(0u64));
        let counter = sent.clone();
        tokio::spawn(async move {
            for i in 0.. {
                if tx.send(i).await.is_err() {
                    break;
                }
                *counter.lock().unwrap() += 1;
            }
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let after = ms(random(20..200));
        tokio::spawn(async move {
            sleep(after).await;
            stop.cancel();
        });
        let out = within(
            "pipeline after shutdown",
            lab::pipeline(
                input,
                move |x| {
                    log.lock().unwrap().push(x);
                    async move {
                        sleep(ms(random(1..4))).await;
                        stage1(x)
                    }
                },
                |x| async move {
                    sleep(ms(random(1..6))).await;
                    stage2(x)
                },
                random(2..8) as usize,
                shutdown,
            ),
        )
        .await;
        let sent = *sent.lock().unwrap();
        assert!(
            out.len() as u64 + 1 >= sent,
            "the pipeline took {} or {sent} items from its input but only {} came out: items \
             between the stages were dropped at shutdown",
            sent - 1,
            out.len()
        );
        let seen = seen.lock().unwrap().clone();
        assert!(
            !seen.is_empty(),
            "the pipeline processed nothing in {after:?}"
        );
        assert_eq!(
            seen,
            (0..seen.len() as u64).collect::<Vec<_>>(),
            "stage 1 sees the input in order, without gaps"
        );
        let expected: Vec<u64> = seen.iter().map(|&x| stage2(stage1(x))).collect();
        assert_eq!(
            out.len(),
            expected.len(),
            "{} items entered stage 1 but {} came out: in-flight items were lost at shutdown",
            expected.len(),
            out.len()
        );
        assert_eq!(out, expected);
    }
}

#[tokio::test(start_paused = true)]
async fn pipeline_stages_run_concurrently() {
    let n = 50;
    let (tx, input) = mpsc::channel(4);
    tokio::spawn(async move {
        for i in 0..n {
            tx.send(i).await.expect("send");
        }
    });
    let start = Instant::now();
    let out = within(
        "pipeline",
        lab::pipeline(
            input,
            |x| async move {
                sleep(ms(10)).await;
                stage1(x)
            },
            |x| async move {
                sleep(ms(10)).await;
                stage2(x)
            },
            4,
            CancellationToken::new(),
        ),
    )
    .await;
    let took = start.elapsed();
    assert_eq!(out.len(), n as usize);
    // One stage after the other would take n * 20 ms; overlapping stages take about n * 10 ms.
    assert!(
        took < ms(n * 20 * 3 / 4),
        "{n} items through two 10 ms stages took {took:?} of virtual time: the stages must \
         work at the same time (one task per stage)"
    );
}

#[tokio::test(start_paused = true)]
async fn pipeline_holds_a_bounded_number_of_items() {
    let capacity = random(1..6) as usize;
    let (tx, input) = mpsc::channel(1);
    tokio::spawn(async move {
        for i in 0.. {
            if tx.send(i).await.is_err() {
                break;
            }
        }
    });
    let entered = Arc::new(Mutex::new(0usize));
    let reached = Arc::new(Mutex::new(0usize));
    let (e, r) = (entered.clone(), reached.clone());
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(lab::pipeline(
        input,
        move |x| {
            *e.lock().unwrap() += 1;
            async move { x }
        },
        move |x| {
            *r.lock().unwrap() += 1;
            async move {
                sleep(ms(20)).await; // the slow stage
                x
            }
        },
        capacity,
        shutdown.clone(),
    ));
    let mut peak = 0;
    for _ in 0..40 {
        sleep(ms(7)).await;
        let between = *entered.lock().unwrap() - *reached.lock().unwrap();
        peak = peak.max(between);
        assert!(
            between <= capacity + 2,
            "{between} items between stage 1 and stage 2 with channels of {capacity}: \
             a slow stage must slow the stages before it down, not pile items up"
        );
    }
    assert!(
        *reached.lock().unwrap() > 0,
        "stage 2 never ran: is the pipeline running?"
    );
    shutdown.cancel();
    let out = within("pipeline", run).await.expect("pipeline task");
    assert_eq!(
        out.len(),
        *entered.lock().unwrap(),
        "shutdown keeps every item"
    );
    assert!(
        peak >= capacity,
        "the slow stage should have filled its channel"
    );
}

// Requirement 8: select! between a message, a timer and a cancellation.
#[tokio::test(start_paused = true)]
async fn recv_with_timeout_returns_a_message_that_arrives_in_time() {
    let (tx, mut rx) = mpsc::channel(1);
    let delay = ms(random(1..90));
    let value = random(0..1_000_000);
    tokio::spawn(async move {
        sleep(delay).await;
        tx.send(value).await.expect("send");
    });
    let start = Instant::now();
    let waited = lab::recv_with_timeout(&mut rx, ms(100), &CancellationToken::new()).await;
    assert_eq!(waited, Waited::Message(value));
    let took = start.elapsed();
    assert!(
        took >= delay && took < ms(100),
        "the message came after {delay:?}, recv_with_timeout returned after {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn recv_with_timeout_gives_up_at_the_timeout() {
    let (_tx, mut rx) = mpsc::channel::<u64>(1);
    let timeout = ms(random(10..500));
    let start = Instant::now();
    let waited = lab::recv_with_timeout(&mut rx, timeout, &CancellationToken::new()).await;
    assert_eq!(waited, Waited::TimedOut);
    let took = start.elapsed();
    assert!(
        took >= timeout && took < timeout + ms(5),
        "timeout {timeout:?}, returned after {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn recv_with_timeout_stops_on_cancel() {
    let (_tx, mut rx) = mpsc::channel::<u64>(1);
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let after = ms(random(1..50));
    tokio::spawn(async move {
        sleep(after).await;
        stop.cancel();
    });
    let start = Instant::now();
    let waited = lab::recv_with_timeout(&mut rx, ms(100), &cancel).await;
    assert_eq!(waited, Waited::Cancelled);
    let took = start.elapsed();
    assert!(
        took >= after && took < ms(100),
        "cancelled at {after:?}, returned after {took:?}"
    );
    // An already-cancelled token wins even over a waiting message.
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(1u64).await.expect("send");
    assert_eq!(
        lab::recv_with_timeout(&mut rx, ms(100), &cancel).await,
        Waited::Cancelled
    );
}

#[tokio::test(start_paused = true)]
async fn recv_with_timeout_reports_a_closed_channel() {
    let (tx, mut rx) = mpsc::channel::<u64>(1);
    drop(tx);
    let start = Instant::now();
    let waited = lab::recv_with_timeout(&mut rx, ms(100), &CancellationToken::new()).await;
    assert_eq!(waited, Waited::Closed);
    assert!(
        start.elapsed() < ms(100),
        "a closed channel is reported at once"
    );
}

#[tokio::test(start_paused = true)]
async fn next_batch_gathers_what_arrives_within_the_linger_time() {
    let (tx, mut rx) = mpsc::channel(64);
    let linger = ms(10);
    let start = Instant::now();
    // Arrivals in virtual ms: 0, 0, 4 | 15, 16 | 30 | the channel closes at 50.
    tokio::spawn(async move {
        for (at, value) in [(0, 1), (0, 2), (4, 3), (15, 4), (16, 5), (30, 6)] {
            tokio::time::sleep_until(start + ms(at)).await;
            tx.send(value).await.expect("send");
        }
        tokio::time::sleep_until(start + ms(50)).await;
    });
    let first = within("batch", lab::next_batch(&mut rx, 100, linger)).await;
    assert_eq!(
        first,
        Some(vec![1, 2, 3]),
        "items within 10 ms of the first one"
    );
    let at = start.elapsed();
    assert!(
        at >= ms(10) && at < ms(15),
        "the first batch closes 10 ms after its first item, not at {at:?}"
    );
    let second = within("batch", lab::next_batch(&mut rx, 100, linger)).await;
    assert_eq!(
        second,
        Some(vec![4, 5]),
        "a new batch starts with the next item"
    );
    let third = within("batch", lab::next_batch(&mut rx, 100, linger)).await;
    assert_eq!(third, Some(vec![6]));
    assert_eq!(
        within("batch", lab::next_batch(&mut rx, 100, linger)).await,
        None,
        "None once the channel is closed and empty"
    );
}

#[tokio::test(start_paused = true)]
async fn next_batch_stops_at_max_items() {
    let (tx, mut rx) = mpsc::channel(64);
    let max = random(2..10) as usize;
    let n = max * 2 + random(1..max as u64) as usize;
    for value in 0..n {
        tx.send(value).await.expect("send");
    }
    let first = within("batch", lab::next_batch(&mut rx, max, ms(10))).await;
    assert_eq!(first, Some((0..max).collect()));
    let second = within("batch", lab::next_batch(&mut rx, max, ms(10))).await;
    assert_eq!(second, Some((max..2 * max).collect()));
    let start = Instant::now();
    let third = within("batch", lab::next_batch(&mut rx, max, ms(10))).await;
    assert_eq!(
        third,
        Some((2 * max..n).collect()),
        "the rest, after the linger time"
    );
    assert!(
        start.elapsed() >= ms(10),
        "a short batch waits out its linger time"
    );
    drop(tx);
    assert_eq!(
        within("batch", lab::next_batch(&mut rx, max, ms(10))).await,
        None
    );
}
