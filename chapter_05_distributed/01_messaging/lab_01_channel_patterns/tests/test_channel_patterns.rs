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
    let dup = seen.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
    assert!(
        seen == (0..jobs).collect::<Vec<_>>(),
        "requirement 1: {jobs} submitted jobs ran {} times (a job run twice: {dup:?}); wanted each exactly once",
        seen.len()
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
    assert!(
        met.len() == workers,
        "requirement 1: {} of {workers} jobs ran; wanted every job",
        met.len()
    );
    assert!(
        met.iter().all(|ok| *ok),
        "requirement 1: {workers} jobs on {workers} workers must run at the same time: {met:?} \
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
        "requirement 2: with {workers} blocked workers and a queue of {capacity}, submit must start waiting \
         after {capacity}..={} jobs; it accepted {accepted}",
        capacity + workers
    );
    let queued = pool.queued();
    assert!(
        queued == capacity,
        "requirement 2: queued() is {queued} on a full queue; wanted its capacity {capacity}"
    );
    let tried = pool.try_submit(usize::MAX);
    assert!(
        tried == Err(PatternError::Full),
        "requirement 2: try_submit on a full queue gave {tried:?}; wanted Err(Full)"
    );
    gate.add_permits(accepted + 100);
    within("shutdown", pool.shutdown()).await;
    let done = *done.lock().unwrap();
    assert!(
        done == accepted,
        "requirement 3: {done} jobs ran of the {accepted} accepted; wanted every accepted job"
    );
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
            "requirement 2: {waiting} jobs accepted but not started, with a bound of {capacity} \
             (+{workers} in the workers' hands): the queue must stay bounded"
        );
        assert!(
            pool.queued() <= capacity,
            "requirement 2: queued() is {}; wanted at most the capacity {capacity}",
            pool.queued()
        );
    }
    within("shutdown", pool.shutdown()).await;
    let started = *started.lock().unwrap();
    assert!(
        started == jobs,
        "requirement 3: {started} of {jobs} jobs ran by the end of shutdown; wanted every job"
    );
    assert!(
        peak >= capacity,
        "requirement 2: at most {peak} jobs waited at once; wanted the fast producer to fill the queue of {capacity}"
    );
}

/// A `submit` given up on while it waits (a timeout around it, a dropped request) leaves no
/// job behind: the job it carried never runs, and the queue is as it was.
#[tokio::test(start_paused = true)]
async fn a_submit_given_up_on_does_not_run_its_job() {
    let workers = random(1..4) as usize;
    let capacity = random(1..8) as usize;
    let gate = Arc::new(Semaphore::new(0));
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (g, r) = (gate.clone(), ran.clone());
    let pool = WorkerPool::new(workers, capacity, move |job: usize| {
        let (g, r) = (g.clone(), r.clone());
        async move {
            g.acquire().await.expect("gate").forget();
            r.lock().unwrap().push(job);
        }
    });
    // Fill the workers' hands and the queue.
    let mut job = 0;
    while tokio::time::timeout(ms(100), pool.submit(job))
        .await
        .is_ok()
    {
        job += 1;
        assert!(
            job <= capacity + workers,
            "requirement 2: submit accepted {job} jobs with {workers} blocked workers and a queue of {capacity}; wanted it to wait once the queue is full"
        );
    }
    // `job` is the one whose submit was just dropped while it waited.
    let abandoned = job;
    let queued = pool.queued();
    assert!(
        queued == capacity,
        "requirement 2: after a submit was given up on, queued() is {queued}; wanted the capacity {capacity}"
    );
    gate.add_permits(abandoned + 100);
    within("shutdown", pool.shutdown()).await;
    let ran = ran.lock().unwrap().clone();
    assert!(
        !ran.contains(&abandoned) && ran.len() == abandoned,
        "requirement 2: {} jobs ran, the abandoned job {abandoned} {}; wanted the {abandoned} accepted jobs and not the abandoned one",
        ran.len(),
        if ran.contains(&abandoned) {
            "among them"
        } else {
            "not among them"
        }
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
    let done = *done.lock().unwrap();
    assert!(
        done == capacity,
        "requirement 3: when shutdown returned, {done} of {capacity} queued jobs had run; wanted all"
    );
    let took = before.elapsed();
    assert!(
        took >= ms(10 * capacity as u64 / 2),
        "requirement 3: shutdown returned after {took:?} of virtual time; {capacity} jobs of 10 ms on two workers take at least {:?}",
        ms(10 * capacity as u64 / 2)
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
        let first_difference = (0..counts[producer]).zip(seqs).position(|(a, b)| a != *b);
        assert!(
            *seqs == (0..counts[producer]).collect::<Vec<_>>(),
            "requirement 4: input {producer} sent {} items and {} came out, first difference at {first_difference:?}; wanted every item once, in its order",
            counts[producer],
            seqs.len()
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
        assert!(
            item == Ok(Some(i)),
            "requirement 4: waiting for item {i} of the busy input gave {item:?}; wanted it to come through while the other input is silent"
        );
    }
    drop(quiet);
    let end = within("merged end", merged.recv()).await;
    assert!(
        end.is_none(),
        "requirement 4: after every input ended, the merged channel gave {end:?}; wanted None"
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
    assert!(
        received.missed == n - capacity as u64,
        "requirement 5: {n} values through a ring of {capacity}: missed counted {}; wanted {}",
        received.missed,
        n - capacity as u64
    );
    assert!(
        received.values == (n - capacity as u64..n).collect::<Vec<_>>(),
        "requirement 5: after lagging the subscriber read {} values starting at {:?}; wanted the {capacity} newest, {}..{n}",
        received.values.len(),
        received.values.first(),
        n - capacity as u64
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
    assert!(
        received.missed == 0 && received.values == (0..n).collect::<Vec<_>>(),
        "requirement 5: a subscriber that keeps up read {} of {n} values and missed {}; wanted all, none missed",
        received.values.len(),
        received.missed
    );
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
    assert!(
        received.values.len() as u64 + received.missed == n,
        "requirement 5: {} read + {} missed of {n} published; wanted every value either read or counted as missed",
        received.values.len(),
        received.missed
    );
    assert!(
        received.values.windows(2).all(|w| w[0] < w[1]),
        "requirement 5: the values read are out of publication order"
    );
    assert!(
        received.values.last() == Some(&(n - 1)),
        "requirement 5: the last value read is {:?}; wanted the last published, {}",
        received.values.last(),
        n - 1
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
        assert!(
            values == (1..=n).collect::<Vec<_>>(),
            "requirement 6: {n} increments of {key:?} answered {} values, first {:?}; wanted 1, 2, 3... each to exactly one caller",
            values.len(),
            values.first()
        );
        let total = within("get", lab::call(&server, CounterOp::Get(key.into()))).await;
        assert!(
            total == Ok(n),
            "requirement 6: Get({key:?}) answered {total:?}; wanted Ok({n})"
        );
    }
    let unknown = within("get", lab::call(&server, CounterOp::Get("zzz".into()))).await;
    assert!(
        unknown == Ok(0),
        "requirement 6: Get of a counter never incremented answered {unknown:?}; wanted Ok(0)"
    );
}

#[tokio::test(start_paused = true)]
async fn call_reports_a_server_that_is_gone() {
    let (server, requests) = mpsc::channel::<lab::Request<u64, u64>>(4);
    drop(requests);
    let answer = within("call", lab::call(&server, 1)).await;
    assert!(
        answer == Err(PatternError::Closed),
        "requirement 6: a call to a server that is gone answered {answer:?}; wanted Err(Closed)"
    );
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
    let answered = within("call", lab::call(&server, even)).await;
    assert!(
        answered == Ok(even * 10),
        "requirement 6: call({even}) answered {answered:?}; wanted Ok({})",
        even * 10
    );
    let dropped = within("call", lab::call(&server, even + 1)).await;
    assert!(
        dropped == Err(PatternError::NoReply),
        "requirement 6: a request the server dropped unanswered gave {dropped:?}; wanted Err(NoReply)"
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
    let first_difference = out.iter().zip(&expected).position(|(a, b)| a != b);
    assert!(
        out == expected,
        "requirement 7: {n} items in, {} out, first difference at {first_difference:?}; wanted every item through both stages, in order",
        out.len()
    );
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
            "requirement 7: the pipeline took {} or {sent} items from its input but only {} came out: items \
             between the stages were dropped at shutdown",
            sent - 1,
            out.len()
        );
        let seen = seen.lock().unwrap().clone();
        assert!(
            !seen.is_empty(),
            "requirement 7: the pipeline processed nothing in {after:?}"
        );
        assert!(
            seen == (0..seen.len() as u64).collect::<Vec<_>>(),
            "requirement 7: stage 1 saw {} items out of order or with gaps; wanted the input in order",
            seen.len()
        );
        let expected: Vec<u64> = seen.iter().map(|&x| stage2(stage1(x))).collect();
        assert!(
            out.len() == expected.len(),
            "requirement 7: {} items entered stage 1 but {} came out: in-flight items were lost at shutdown",
            expected.len(),
            out.len()
        );
        assert!(
            out == expected,
            "requirement 7: the outputs after shutdown are not the inputs through both stages, in order"
        );
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
    assert!(
        out.len() == n as usize,
        "requirement 7: {} of {n} items came out",
        out.len()
    );
    // One stage after the other would take n * 20 ms; overlapping stages take about n * 10 ms.
    assert!(
        took < ms(n * 20 * 3 / 4),
        "requirement 7: {n} items through two 10 ms stages took {took:?} of virtual time: the stages must \
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
            "requirement 7: {between} items between stage 1 and stage 2 with channels of {capacity}: \
             a slow stage must slow the stages before it down, not pile items up"
        );
    }
    assert!(
        *reached.lock().unwrap() > 0,
        "requirement 7: stage 2 never ran: is the pipeline running?"
    );
    shutdown.cancel();
    let out = within("pipeline", run).await.expect("pipeline task");
    let entered = *entered.lock().unwrap();
    assert!(
        out.len() == entered,
        "requirement 7: {entered} items entered stage 1 and {} came out after shutdown; wanted every item kept",
        out.len()
    );
    assert!(
        peak >= capacity,
        "requirement 7: at most {peak} items waited between the stages; wanted the slow stage to fill its channel of {capacity}"
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
    assert!(
        waited == Waited::Message(value),
        "requirement 8: a message sent after {delay:?} gave {waited:?}; wanted Message({value})"
    );
    let took = start.elapsed();
    assert!(
        took >= delay && took < ms(100),
        "requirement 8: the message came after {delay:?}, recv_with_timeout returned after {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn recv_with_timeout_gives_up_at_the_timeout() {
    let (_tx, mut rx) = mpsc::channel::<u64>(1);
    let timeout = ms(random(10..500));
    let start = Instant::now();
    let waited = lab::recv_with_timeout(&mut rx, timeout, &CancellationToken::new()).await;
    assert!(
        waited == Waited::TimedOut,
        "requirement 8: a silent channel gave {waited:?}; wanted TimedOut"
    );
    let took = start.elapsed();
    assert!(
        took >= timeout && took < timeout + ms(5),
        "requirement 8: timeout {timeout:?}, returned after {took:?}"
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
    assert!(
        waited == Waited::Cancelled,
        "requirement 8: a cancelled wait gave {waited:?}; wanted Cancelled"
    );
    let took = start.elapsed();
    assert!(
        took >= after && took < ms(100),
        "requirement 8: cancelled at {after:?}, returned after {took:?}"
    );
    // An already-cancelled token wins even over a waiting message, every time: `select!`
    // picks among ready branches at random unless it is `biased`.
    let (tx, mut rx) = mpsc::channel(1);
    for attempt in 0..64 {
        tx.send(attempt).await.expect("send");
        let waited = lab::recv_with_timeout(&mut rx, ms(100), &cancel).await;
        assert!(
            waited == Waited::Cancelled,
            "requirement 8: attempt {attempt}: with the token cancelled and a message waiting, got {waited:?}; wanted Cancelled every time (a biased select!)"
        );
        let _ = rx.try_recv();
    }
}

#[tokio::test(start_paused = true)]
async fn recv_with_timeout_reports_a_closed_channel() {
    let (tx, mut rx) = mpsc::channel::<u64>(1);
    drop(tx);
    let start = Instant::now();
    let waited = lab::recv_with_timeout(&mut rx, ms(100), &CancellationToken::new()).await;
    assert!(
        waited == Waited::Closed,
        "requirement 8: a closed channel gave {waited:?}; wanted Closed"
    );
    assert!(
        start.elapsed() < ms(100),
        "requirement 8: a closed channel was reported after {:?}; wanted at once",
        start.elapsed()
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
    assert!(
        first == Some(vec![1, 2, 3]),
        "requirement 8: the first batch is {first:?}; wanted Some([1, 2, 3]), the items within 10 ms of the first one"
    );
    let at = start.elapsed();
    assert!(
        at >= ms(10) && at < ms(15),
        "requirement 8: the first batch closes 10 ms after its first item, not at {at:?}"
    );
    let second = within("batch", lab::next_batch(&mut rx, 100, linger)).await;
    assert!(
        second == Some(vec![4, 5]),
        "requirement 8: the second batch is {second:?}; wanted Some([4, 5])"
    );
    let third = within("batch", lab::next_batch(&mut rx, 100, linger)).await;
    assert!(
        third == Some(vec![6]),
        "requirement 8: the third batch is {third:?}; wanted Some([6])"
    );
    let end = within("batch", lab::next_batch(&mut rx, 100, linger)).await;
    assert!(
        end.is_none(),
        "requirement 8: next_batch on a closed, empty channel gave {end:?}; wanted None"
    );
}

/// One deadline per batch, counted from its first item: a steady trickle of items must not keep
/// a batch open (a fresh timeout per item would, until `max_items`).
#[tokio::test(start_paused = true)]
async fn next_batch_closes_at_linger_even_when_items_keep_coming() {
    let (tx, mut rx) = mpsc::channel(64);
    let every = ms(random(2..5));
    let linger = ms(random(10..30));
    tokio::spawn(async move {
        for value in 0u64.. {
            if tx.send(value).await.is_err() {
                break;
            }
            sleep(every).await;
        }
    });
    let start = Instant::now();
    let batch = within("batch", lab::next_batch(&mut rx, 1000, linger))
        .await
        .expect("a batch");
    let took = start.elapsed();
    let most = (linger.as_millis() / every.as_millis()) as usize + 1;
    assert!(
        batch.len() <= most && took <= linger + every,
        "requirement 8: items every {every:?} and a linger of {linger:?}: the batch took {took:?} and holds {} items; wanted it closed {linger:?} after its first item, with at most {most}",
        batch.len()
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
    assert!(
        first == Some((0..max).collect()),
        "requirement 8: with {n} items waiting and max {max}, the first batch is {first:?}; wanted 0..{max}"
    );
    let second = within("batch", lab::next_batch(&mut rx, max, ms(10))).await;
    assert!(
        second == Some((max..2 * max).collect()),
        "requirement 8: the second batch is {second:?}; wanted {max}..{}",
        2 * max
    );
    let start = Instant::now();
    let third = within("batch", lab::next_batch(&mut rx, max, ms(10))).await;
    assert!(
        third == Some((2 * max..n).collect()),
        "requirement 8: the third batch is {third:?}; wanted the rest, {}..{n}",
        2 * max
    );
    assert!(
        start.elapsed() >= ms(10),
        "requirement 8: a short batch closed after {:?}; wanted it to wait out its linger time",
        start.elapsed()
    );
    drop(tx);
    let end = within("batch", lab::next_batch(&mut rx, max, ms(10))).await;
    assert!(
        end.is_none(),
        "requirement 8: next_batch on a closed, empty channel gave {end:?}; wanted None"
    );
}
