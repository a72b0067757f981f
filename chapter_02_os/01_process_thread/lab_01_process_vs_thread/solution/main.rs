//! Process vs thread: what the kernel charges for each.
//!
//! To the Linux scheduler a thread and a process are the same thing, a *task*, made by the same
//! system call (`clone`). What differs is what the new task shares with its creator: a thread
//! shares the address space, the file table and the signal handlers; a forked process gets a
//! copy-on-write copy of them. This program measures what that difference costs:
//!
//! - **creation**: `thread::spawn` + `join`, `fork` + `waitpid`, and `Command` running
//!   `/bin/true` (fork + exec: a new program must also be loaded, linked and started);
//! - **context switches**: one byte bounced over two pipes between two threads, then between two
//!   processes, both pinned to one CPU so that every message is a real switch;
//! - **memory**: what idle threads add to this process, against idle processes.
//!
//! Every timing is the median of many runs: the median ignores the few runs that a timer
//! interrupt or another program happened to slow down, where a mean would be dragged by them.

use std::fs;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;

/// Memory that a set of idle workers costs, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// Resident set size, as `ps` and `top` show it. For threads: how much this process's
    /// `VmRSS` grew. For processes: the sum of the children's `VmRSS`.
    pub rss_kib: u64,
    /// Pages nobody else maps (`Private_Clean + Private_Dirty` in `/proc/<pid>/smaps_rollup`).
    /// For threads: how much this process's private memory grew. For processes: the sum over
    /// the children. This is what ending them gives back.
    pub private_kib: u64,
}

/// Median time of one `thread::spawn` of an empty closure followed by `join`.
pub fn thread_spawn_join(repeats: usize) -> io::Result<Duration> {
    median_of(repeats, || {
        thread::spawn(|| {})
            .join()
            .map_err(|_| io::Error::other("an empty thread panicked"))
    })
}

/// Median time of one `fork()` whose child exits at once, followed by `waitpid`.
pub fn fork_wait(repeats: usize) -> io::Result<Duration> {
    median_of(repeats, || {
        let pid = fork()?;
        if pid == 0 {
            // SAFETY: we are the child of a parent that may have other threads: only
            // async-signal-safe calls are allowed here. `_exit` is one, and unlike `exit` it
            // runs no atexit handlers and flushes no stdio buffers copied from the parent.
            unsafe { libc::_exit(0) };
        }
        wait_for(pid)
    })
}

/// Median time of running `/bin/true` with `std::process::Command` and waiting for it.
pub fn spawn_true(repeats: usize) -> io::Result<Duration> {
    median_of(repeats, || {
        let status = Command::new("/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("/bin/true ended with {status}")))
        }
    })
}

/// Median round trip of one byte sent to an echo thread over a pipe and back over another.
/// Both threads run on one CPU, so a round trip is two context switches.
pub fn ping_pong_threads(round_trips: usize) -> io::Result<Duration> {
    check_count(round_trips, "round trips")?;
    let _pin = PinnedToOneCpu::new()?; // the echo thread inherits the pin
    let (mut ping_rx, mut ping_tx) = io::pipe()?;
    let (mut pong_rx, mut pong_tx) = io::pipe()?;
    let echo_thread = thread::spawn(move || echo(&mut ping_rx, &mut pong_tx, round_trips));
    let result = bounce(&mut ping_tx, &mut pong_rx, round_trips);
    // If we stopped early, closing our end lets the echo thread see end of file and return.
    drop(ping_tx);
    let echoed = echo_thread
        .join()
        .map_err(|_| io::Error::other("the echo thread panicked"))?;
    let round_trip = result?;
    echoed?;
    Ok(round_trip)
}

/// The same ping-pong, with the echo side in a forked child process.
pub fn ping_pong_processes(round_trips: usize) -> io::Result<Duration> {
    check_count(round_trips, "round trips")?;
    let _pin = PinnedToOneCpu::new()?; // the child inherits the pin
    let (mut ping_rx, mut ping_tx) = io::pipe()?;
    let (mut pong_rx, mut pong_tx) = io::pipe()?;
    let pid = fork()?;
    if pid == 0 {
        // `echo` only calls read(2) and write(2): nothing that allocates or takes a lock, so it
        // is safe in the child of a multi-threaded parent.
        let code = match echo(&mut ping_rx, &mut pong_tx, round_trips) {
            Ok(()) => 0,
            Err(_) => 1,
        };
        // SAFETY: async-signal-safe exit of the child, as in `fork_wait`.
        unsafe { libc::_exit(code) };
    }
    // Close the child's ends in the parent: if the child dies, our read sees end of file
    // instead of waiting forever for a byte that nobody can send.
    drop(ping_rx);
    drop(pong_tx);
    let result = bounce(&mut ping_tx, &mut pong_rx, round_trips);
    drop(ping_tx);
    let waited = wait_for(pid);
    let round_trip = result?;
    waited?;
    Ok(round_trip)
}

/// What `n` threads sleeping in a barrier add to this process's memory.
pub fn idle_threads_memory(n: usize) -> io::Result<MemoryUse> {
    check_count(n, "the number of threads")?;
    let before = memory_of("self")?;
    let started = Arc::new(Barrier::new(n + 1));
    let release = Arc::new(Barrier::new(n + 1));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (started, release) = (started.clone(), release.clone());
            thread::spawn(move || {
                started.wait();
                release.wait();
            })
        })
        .collect();
    started.wait(); // every thread has run and now sleeps in `release`
    let during = memory_of("self");
    release.wait();
    for thread in threads {
        thread
            .join()
            .map_err(|_| io::Error::other("an idle thread panicked"))?;
    }
    let during = during?;
    Ok(MemoryUse {
        rss_kib: during.rss_kib.saturating_sub(before.rss_kib),
        private_kib: during.private_kib.saturating_sub(before.private_kib),
    })
}

/// The memory of `n` forked children sleeping in `pause()`, summed over the children.
pub fn idle_processes_memory(n: usize) -> io::Result<MemoryUse> {
    check_count(n, "the number of processes")?;
    let (mut ready_rx, ready_tx) = io::pipe()?;
    // Dropping `children` kills and reaps them, also when we return early with an error.
    let mut children = Children(Vec::with_capacity(n));
    for _ in 0..n {
        let pid = fork()?;
        if pid == 0 {
            // Say "I am up" with one byte, then sleep until a signal ends us.
            let _ = (&ready_tx).write_all(b"r");
            loop {
                // SAFETY: pause(2) only sleeps until a signal arrives.
                unsafe { libc::pause() };
            }
        }
        children.0.push(pid);
    }
    drop(ready_tx);
    // One byte per child: every child has run and sleeps. No fixed sleep needed.
    let mut ready = vec![0; n];
    ready_rx.read_exact(&mut ready)?;
    let mut total = MemoryUse {
        rss_kib: 0,
        private_kib: 0,
    };
    for pid in &children.0 {
        let child = memory_of(&pid.to_string())?;
        total.rss_kib += child.rss_kib;
        total.private_kib += child.private_kib;
    }
    Ok(total)
}

/// What the scheduler gave one thread, from its `/proc/thread-self/schedstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedTime {
    /// Time spent running on a CPU.
    pub on_cpu: Duration,
    /// Time spent runnable but waiting in the run queue for a CPU.
    pub waiting: Duration,
}

/// Two busy threads share one CPU for `duration`; the second one raises its own nice value by
/// `nice` (1 to 19), as `nice -n` would. Returns what each one got, the first thread first.
///
/// The scheduler (CFS/EEVDF) shares a CPU in proportion to weights: nice 0 weighs 1024 and each
/// step of nice divides the weight by about 1.25, so `nice` 5 gets a third of what nice 0 gets,
/// and spends the rest of the time waiting in the run queue. Nice is per thread on Linux: the
/// thread sets it on itself (`setpriority` on its own thread id), never on the caller.
pub fn nice_contest(nice: i32, duration: Duration) -> io::Result<[SchedTime; 2]> {
    if !(1..=19).contains(&nice) || duration.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "nice must be 1 to 19 and the duration above zero, got {nice} and {duration:?}"
            ),
        ));
    }
    let _pin = PinnedToOneCpu::new()?; // both threads inherit the pin
    let start = Arc::new(Barrier::new(2));
    let contender = |raise: i32| {
        let start = Arc::clone(&start);
        thread::spawn(move || -> io::Result<SchedTime> {
            if raise > 0 {
                // SAFETY: gettid has no preconditions.
                let me = unsafe { libc::gettid() } as libc::id_t;
                // SAFETY: getpriority/setpriority on our own thread id: only its nice changes.
                // (-1 is a valid nice value, so errors show in errno, not in the result.)
                let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, me) };
                // SAFETY: as above.
                if unsafe { libc::setpriority(libc::PRIO_PROCESS, me, current + raise) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            start.wait();
            let before = sched_time()?;
            let started = Instant::now();
            while started.elapsed() < duration {
                std::hint::spin_loop();
            }
            let after = sched_time()?;
            Ok(SchedTime {
                on_cpu: after.on_cpu - before.on_cpu,
                waiting: after.waiting - before.waiting,
            })
        })
    };
    let first = contender(0);
    let second = contender(nice);
    let join = |t: thread::JoinHandle<io::Result<SchedTime>>| {
        t.join()
            .map_err(|_| io::Error::other("a busy thread panicked"))?
    };
    let (first, second) = (join(first), join(second));
    Ok([first?, second?])
}

/// The calling thread's time on a CPU and in the run queue: the first two numbers of
/// `/proc/thread-self/schedstat`, in nanoseconds.
fn sched_time() -> io::Result<SchedTime> {
    let text = fs::read_to_string("/proc/thread-self/schedstat")?;
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>());
    let mut next = || -> io::Result<Duration> {
        match numbers.next() {
            Some(Ok(ns)) => Ok(Duration::from_nanos(ns)),
            _ => Err(io::Error::other(format!("cannot parse schedstat {text:?}"))),
        }
    };
    Ok(SchedTime {
        on_cpu: next()?,
        waiting: next()?,
    })
}

/// Number of tasks (processes *and* threads) created on the whole machine since boot: the
/// `processes` line of `/proc/stat`. The kernel counts every `clone`, whatever it shares.
pub fn tasks_created() -> io::Result<u64> {
    let stat = fs::read_to_string("/proc/stat")?;
    stat.lines()
        .find_map(|line| line.strip_prefix("processes ")?.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no `processes` line in /proc/stat"))
}

fn check_count(n: usize, what: &str) -> io::Result<()> {
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} must be at least 1"),
        ));
    }
    Ok(())
}

/// Runs `f` `repeats` times and returns the median duration of one run.
fn median_of(repeats: usize, mut f: impl FnMut() -> io::Result<()>) -> io::Result<Duration> {
    check_count(repeats, "repeats")?;
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    Ok(samples[samples.len() / 2])
}

/// Sends a byte and waits for it to come back, `round_trips` times.
fn bounce(tx: &mut impl Write, rx: &mut impl Read, round_trips: usize) -> io::Result<Duration> {
    let mut byte = [0; 1];
    median_of(round_trips, || {
        tx.write_all(b"x")?;
        rx.read_exact(&mut byte)
    })
}

/// The other side of `bounce`: exactly `round_trips` echoes, then return. Counting instead of
/// waiting for end of file matters: a process forked meanwhile by another thread may hold a copy
/// of our pipe's write end, and end of file would then never come.
fn echo(rx: &mut impl Read, tx: &mut impl Write, round_trips: usize) -> io::Result<()> {
    let mut byte = [0; 1];
    for _ in 0..round_trips {
        rx.read_exact(&mut byte)?;
        tx.write_all(&byte)?;
    }
    Ok(())
}

/// `fork(2)`: 0 in the child, the child's pid in the parent.
fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: fork itself has no memory-safety precondition; each caller restricts its child to
    // async-signal-safe calls and ends it with `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        pid => Ok(pid),
    }
}

/// Reaps `pid` (so it does not stay a zombie) and returns its raw wait status.
fn reap(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only to `status`, a live local.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaps `pid` and checks that it exited with code 0.
fn wait_for(pid: libc::pid_t) -> io::Result<()> {
    let status = reap(pid)?;
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "child {pid} failed (wait status {status:#x})"
        )))
    }
}

/// Children that are killed and reaped when this value is dropped.
struct Children(Vec<libc::pid_t>);

impl Drop for Children {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: kill(2) on our own child: no memory is touched.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = reap(pid);
        }
    }
}

/// `VmRSS` and private memory of `pid` ("self" for this process).
fn memory_of(pid: &str) -> io::Result<MemoryUse> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok(MemoryUse {
        rss_kib: kib_field(&status, "VmRSS")?,
        private_kib: kib_field(&rollup, "Private_Clean")? + kib_field(&rollup, "Private_Dirty")?,
    })
}

/// The value of a `Name:   1234 kB` line.
fn kib_field(text: &str, name: &str) -> io::Result<u64> {
    text.lines()
        .find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .ok_or_else(|| io::Error::other(format!("no `{name}` line")))
}

/// Pins the calling thread to one CPU until dropped, then gives it back its old CPU set.
/// Threads and processes created meanwhile inherit the pin.
struct PinnedToOneCpu {
    previous: libc::cpu_set_t,
}

impl PinnedToOneCpu {
    fn new() -> io::Result<Self> {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: cpu_set_t is a plain bit array, for which all zeroes is the empty set.
        let mut previous: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: the kernel writes at most `size` bytes into `previous`.
        if unsafe { libc::sched_getaffinity(0, size, &mut previous) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // The first CPU we may run on (a container may allow only some of them).
        let cpu = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: CPU_ISSET reads one bit of a set we own; `cpu` < CPU_SETSIZE.
            .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &previous) })
            .ok_or_else(|| io::Error::other("the CPU affinity mask is empty"))?;
        // SAFETY: as above, all zeroes is the empty set.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET writes one bit of a set we own; `cpu` < CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        // SAFETY: the kernel reads `size` bytes from `one`.
        if unsafe { libc::sched_setaffinity(0, size, &one) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PinnedToOneCpu { previous })
    }
}

impl Drop for PinnedToOneCpu {
    fn drop(&mut self) {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: the kernel reads `size` bytes from a set we own.
        unsafe { libc::sched_setaffinity(0, size, &self.previous) };
    }
}

/// Measures what a thread costs against a process: creation, context switches, memory.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "ch2_process_vs_thread")]
pub struct Config {
    /// Runs of each creation measurement (the median is shown)
    #[arg(long, value_name = "N", default_value = "200")]
    pub repeats: NonZeroUsize,
    /// Round trips of each ping-pong
    #[arg(long, value_name = "N", default_value = "20000")]
    pub round_trips: NonZeroUsize,
    /// Idle threads, then idle processes, for the memory measurements
    #[arg(long, value_name = "N", default_value = "100")]
    pub idle: NonZeroUsize,
}

pub const USAGE: &str =
    "usage: ch2_process_vs_thread [--repeats N] [--round-trips N] [--idle N]   (every N >= 1)";

/// Parses the command line. `--help` prints the usage on stdout (exit 0); a bad argument is one
/// line on stderr with the usage (exit 2), shorter than clap's own message.
fn parse_args() -> Result<Config, ExitCode> {
    Config::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        let message = e.to_string();
        let why = message.lines().next().unwrap_or_default();
        eprintln!(
            "ch2_process_vs_thread: {}; {USAGE}",
            why.trim_start_matches("error: ")
        );
        ExitCode::from(2)
    })
}

/// A duration with a unit that keeps three significant digits readable.
fn human(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    match ns {
        ns if ns < 1e3 => format!("{ns:.0} ns"),
        ns if ns < 1e6 => format!("{:.1} µs", ns / 1e3),
        ns => format!("{:.2} ms", ns / 1e6),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn run(config: &Config) -> io::Result<()> {
    let (r, k, n) = (
        config.repeats.get(),
        config.round_trips.get(),
        config.idle.get(),
    );
    let tasks_before = tasks_created()?;
    let thread = thread_spawn_join(r)?;
    let fork = fork_wait(r)?;
    let spawn = spawn_true(r)?;
    let pp_threads = ping_pong_threads(k)?;
    let pp_processes = ping_pong_processes(k)?;
    let mem_threads = idle_threads_memory(n)?;
    let mem_processes = idle_processes_memory(n)?;
    let [plain, niced] = nice_contest(5, Duration::from_millis(300))?;
    let tasks = tasks_created()? - tasks_before;

    let row = |what: &str, cost: String| println!("{what:<44} {cost}");
    row("what (median)", "cost".into());
    row("thread::spawn + join", human(thread));
    row("fork + waitpid", human(fork));
    row("Command /bin/true (fork + exec + wait)", human(spawn));
    for (who, rt) in [("threads", pp_threads), ("processes", pp_processes)] {
        row(
            &format!("pipe ping-pong between 2 {who}, one CPU"),
            format!(
                "{} per round trip, ~{} per switch",
                human(rt),
                human(rt / 2)
            ),
        );
    }
    row(
        &format!("{n} idle threads (this process grew by)"),
        format!(
            "RSS +{}, private +{}",
            mib(mem_threads.rss_kib),
            mib(mem_threads.private_kib)
        ),
    );
    row(
        &format!("{n} idle processes (sum over the children)"),
        format!(
            "RSS {}, private {}",
            mib(mem_processes.rss_kib),
            mib(mem_processes.private_kib)
        ),
    );
    let ms = |d: Duration| format!("{} ms", d.as_millis());
    row(
        "2 busy threads, one CPU, 300 ms: nice 0",
        format!(
            "{} on the CPU, {} waiting in the run queue",
            ms(plain.on_cpu),
            ms(plain.waiting)
        ),
    );
    row(
        "                                 nice 5",
        format!(
            "{} on the CPU, {} waiting in the run queue",
            ms(niced.on_cpu),
            ms(niced.waiting)
        ),
    );
    row(
        "tasks created on the machine (/proc/stat)",
        format!("{tasks} (this run made at least {})", 3 * r + 4 + 2 * n),
    );
    Ok(())
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(config) => config,
        Err(code) => return code,
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch2_process_vs_thread: {e}");
            ExitCode::FAILURE
        }
    }
}
