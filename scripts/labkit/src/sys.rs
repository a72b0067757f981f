//! Facts from the kernel and the machine: `/proc`, tools on `PATH`, capabilities.

use std::path::PathBuf;

/// Bit of `CAP_NET_RAW` in the capability masks of `/proc/<pid>/status`.
const CAP_NET_RAW: u32 = 13;

/// Path of `tool` on `PATH`, if any.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Panics with the install command when `tool` (a Debian package of the same name) is missing.
pub fn require_tool(tool: &str) -> PathBuf {
    which(tool).unwrap_or_else(|| {
        panic!("`{tool}` is not installed: run `sudo apt-get install {tool}` (or scripts/install-tools.sh)")
    })
}

/// Panics with the install command when `strace` is missing.
pub fn require_strace() -> PathBuf {
    require_tool("strace")
}

/// Whether this process may open raw sockets (`CAP_NET_RAW` in its effective set).
pub fn has_net_raw() -> bool {
    status_field("self", "CapEff")
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_RAW) != 0)
}

/// Panics with the fix when this process may not open raw sockets.
pub fn require_net_raw() {
    if !has_net_raw() {
        panic!(
            "raw sockets need CAP_NET_RAW: run the tests as root, inside `unshare -rn sh -c 'ip link set lo up && cargo test'`, or grant it with `sudo setcap cap_net_raw+ep <binary>`"
        );
    }
}

/// A field of `/proc/<pid>/status` (for example `VmRSS`, `VmHWM`, `Threads`), without its name.
pub fn status_field(pid: &str, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == field).then(|| value.trim().to_string())
    })
}

/// A `kB` field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`...).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    status_field(&pid.to_string(), field)?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Number of open file descriptors of `pid` (entries of `/proc/<pid>/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Threads of `pid`, from `/proc/<pid>/status`.
pub fn thread_count(pid: u32) -> Option<usize> {
    status_field(&pid.to_string(), "Threads")?.parse().ok()
}

/// The fields of a `/proc/.../stat` line after the command name, so that `fields[0]` is the
/// state (field 3 of proc(5)) and `fields[n]` is field `n + 3`. The command name may contain
/// spaces and parentheses: the fields start after the last `)`.
fn stat_fields(path: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split(' ').map(str::to_string).collect())
}

/// User plus system CPU time of `pid` in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(&format!("/proc/{pid}/stat"))?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The scheduler state of process `pid` (`R` running, `S` asleep, `Z` zombie... field 3 of
/// `/proc/<pid>/stat`), or `None` once it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    stat_fields(&format!("/proc/{pid}/stat"))?[0].chars().next()
}

/// The scheduler state of thread `tid` of this process (`/proc/self/task/<tid>/stat`).
pub fn thread_state(tid: libc::pid_t) -> Option<char> {
    stat_fields(&format!("/proc/self/task/{tid}/stat"))?[0]
        .chars()
        .next()
}

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the exclusive reference.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(
        rc,
        0,
        "clock_gettime(CLOCK_THREAD_CPUTIME_ID): {}",
        std::io::Error::last_os_error()
    );
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Voluntary context switches of the calling thread so far: each time it slept in the kernel.
pub fn thread_voluntary_switches() -> u64 {
    // SAFETY: all-zero is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the exclusive reference.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    usage.ru_nvcsw as u64
}

/// What the threads of a process did: context switches and CPU time, summed over the threads
/// kept by a filter on their name (`/proc/<pid>/task/<tid>/comm`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Voluntary plus involuntary context switches: every sleep that ends is one.
    pub switches: u64,
    /// User plus system CPU time, in clock ticks (normally 10 ms each).
    pub cpu_ticks: u64,
    /// Threads counted.
    pub threads: usize,
}

/// The current [`Activity`] of the threads of `pid` whose name `keep` accepts.
pub fn activity(pid: u32, mut keep: impl FnMut(&str) -> bool) -> Activity {
    let mut total = Activity::default();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return total;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !keep(comm.trim_end()) {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let ticks = stat.rfind(')').map_or(0, |end| {
            let fields: Vec<&str> = stat[end + 2..].split(' ').collect();
            let at = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            at(11) + at(12)
        });
        total.switches += field("voluntary_ctxt_switches") + field("nonvoluntary_ctxt_switches");
        total.cpu_ticks += ticks;
        total.threads += 1;
    }
    total
}

/// What the kept threads of `pid` did while the caller waited `window` without giving them
/// work. A thread asleep in `epoll_wait`, `futex` or `accept` does nothing: no switch, no tick.
/// A thread that polls with a 1 ms timeout switches about once per millisecond; a thread that
/// spins burns CPU ticks.
pub fn idle_activity(
    pid: u32,
    window: std::time::Duration,
    mut keep: impl FnMut(&str) -> bool,
) -> Activity {
    let before = activity(pid, &mut keep);
    std::thread::sleep(window);
    let after = activity(pid, &mut keep);
    Activity {
        switches: after.switches.saturating_sub(before.switches),
        cpu_ticks: after.cpu_ticks.saturating_sub(before.cpu_ticks),
        threads: after.threads,
    }
}

/// Panics unless the kept threads of `pid` stay asleep for one idle second: at most 20
/// context switches (a 50 ms poll would make 20; a 1 ms poll makes about 1000) and at most
/// 5 CPU ticks. `what` names the requirement, for example `"requirement 5: idle workers sleep"`.
/// Counts, not durations: the bound holds however busy the machine's other cores are.
pub fn assert_asleep(pid: u32, what: &str, keep: impl FnMut(&str) -> bool) {
    const MAX_SWITCHES: u64 = 20;
    const MAX_TICKS: u64 = 5;
    let idle = idle_activity(pid, std::time::Duration::from_secs(1), keep);
    assert!(
        idle.switches <= MAX_SWITCHES && idle.cpu_ticks <= MAX_TICKS,
        "{what}: over one idle second, {} thread(s) woke {} times and used {} CPU ticks; \
         wanted at most {MAX_SWITCHES} wake-ups and {MAX_TICKS} ticks (something polls or spins \
         instead of sleeping until there is work)",
        idle.threads,
        idle.switches,
        idle.cpu_ticks
    );
}

/// Whether the current user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_status() {
        let pid = std::process::id();
        assert!(status_kib(pid, "VmRSS").unwrap() > 0);
        assert!(thread_count(pid).unwrap() >= 1);
        assert!(fd_count(pid) >= 3);
        assert!(cpu_ticks(pid).is_some());
    }

    #[test]
    fn a_sleeping_thread_is_asleep_and_a_polling_one_is_not() {
        let pid = std::process::id();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sleeper = std::thread::Builder::new()
            .name("lk-sleeper".into())
            .spawn(|| std::thread::park_timeout(std::time::Duration::from_secs(5)))
            .unwrap();
        let flag = stop.clone();
        let poller = std::thread::Builder::new()
            .name("lk-poller".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
            .unwrap();
        assert_asleep(pid, "the sleeper", |name| name == "lk-sleeper");
        let idle = idle_activity(pid, std::time::Duration::from_millis(300), |n| {
            n == "lk-poller"
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        poller.join().unwrap();
        sleeper.thread().unpark();
        sleeper.join().unwrap();
        assert!(idle.switches > 60, "{idle:?}");
    }

    #[test]
    fn finds_sh_on_path() {
        assert!(which("sh").is_some());
        assert!(which("no-such-tool-anywhere").is_none());
    }

    #[test]
    #[should_panic(expected = "apt-get install no-such-tool")]
    fn missing_tool_names_the_fix() {
        require_tool("no-such-tool");
    }
}
