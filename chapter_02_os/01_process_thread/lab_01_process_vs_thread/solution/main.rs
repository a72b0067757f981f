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
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

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

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub repeats: usize,
    pub round_trips: usize,
    pub idle: usize,
}

pub const USAGE: &str =
    "usage: ch2_process_vs_thread [--repeats N] [--round-trips N] [--idle N]   (every N >= 1)";

/// Parses `--repeats N` (default 200), `--round-trips N` (default 20000), `--idle N` (100).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut config = Config {
        repeats: 200,
        round_trips: 20_000,
        idle: 100,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--repeats" => &mut config.repeats,
            "--round-trips" => &mut config.round_trips,
            "--idle" => &mut config.idle,
            _ => return Err(format!("unknown argument: {flag}")),
        };
        let value = args.next().ok_or(format!("{flag} needs a number"))?;
        *slot = match value.parse() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{flag}: expected a number >= 1, got {value:?}")),
        };
    }
    Ok(config)
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
    let tasks_before = tasks_created()?;
    let thread = thread_spawn_join(config.repeats)?;
    let fork = fork_wait(config.repeats)?;
    let spawn = spawn_true(config.repeats)?;
    let pp_threads = ping_pong_threads(config.round_trips)?;
    let pp_processes = ping_pong_processes(config.round_trips)?;
    let mem_threads = idle_threads_memory(config.idle)?;
    let mem_processes = idle_processes_memory(config.idle)?;
    let tasks = tasks_created()? - tasks_before;

    let (r, n) = (config.repeats, config.idle);
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
    row(
        "tasks created on the machine (/proc/stat)",
        format!("{tasks} (this run made at least {})", 3 * r + 2 + 2 * n),
    );
    Ok(())
}

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("ch2_process_vs_thread: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch2_process_vs_thread: {e}");
            ExitCode::FAILURE
        }
    }
}
