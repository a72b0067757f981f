//! Grader for Mini PS, black-box part: the tests start processes whose PID, parent, threads,
//! memory and command line they know, run `mini_ps`, and compare with `/proc` read here.
//!
//! The child processes are this test executable itself, started again with the environment
//! variable `CH1_MINI_PS_CHILD` set: the test named [`CHILD_TEST`] then plays a child that
//! spawns a given number of threads, touches a given amount of memory, says `child ready` and
//! waits for its stdin to close. No helper program needs to be installed.
//! Each test is named after the requirement it checks (see README.md).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use labkit::{lab_bin, run};
use rand::RngExt;

/// Set in a child's environment to `"<threads> <mib>"`: the child role's orders.
const CHILD_ENV: &str = "CH1_MINI_PS_CHILD";
/// The test that plays the child role when [`CHILD_ENV`] is set.
const CHILD_TEST: &str = "shows_the_thread_count_of_a_child";
/// How long to wait for a child to be ready or to reach a state.
const DEADLINE: Duration = Duration::from_secs(20);
const HEADER: [&str; 6] = ["PID", "PPID", "S", "THR", "RSS_KIB", "COMMAND"];

// ---------------------------------------------------------------------------------------------
// Children with known properties
// ---------------------------------------------------------------------------------------------

/// A process started by a test; killed and reaped when dropped, with its `extra` descendants.
struct Spawned {
    child: Child,
    pid: u32,
    /// The command line as `mini_ps` must print it.
    command: String,
    /// Threads of a helper child before it spawned its own (libtest may have one or two).
    base_threads: u32,
    extra: Vec<u32>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        for &pid in &self.extra {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a child does when started with [`CHILD_ENV`]: never returns.
fn child_role(orders: &str) -> ! {
    let mut numbers = orders
        .split_whitespace()
        .map(|n| n.parse::<usize>().unwrap());
    let (threads, mib) = (numbers.next().unwrap(), numbers.next().unwrap());
    let base = labkit::sys::thread_count(std::process::id()).unwrap();
    // `vec![0; n]` maps zero pages lazily: only the pages written to become resident.
    let mut memory = vec![0u8; mib << 20];
    for page in memory.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&mut memory);
    for _ in 0..threads {
        thread::spawn(|| {
            loop {
                thread::park();
            }
        });
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "\nchild ready base_threads={base}");
    let _ = out.flush();
    let _ = io::stdin().read_to_end(&mut Vec::new());
    std::hint::black_box(&memory);
    std::process::exit(0);
}

/// Starts `program` (this test executable, or a link to it) in the child role with `threads`
/// extra threads and `mib` MiB touched, and waits until it is ready.
fn spawn_helper(program: &Path, threads: u32, mib: u32) -> Spawned {
    let marker = format!("marker-{}", rand::rng().random_range(100_000..1_000_000));
    let args = [
        "--exact",
        CHILD_TEST,
        "--nocapture",
        "--test-threads=1",
        marker.as_str(),
    ];
    let mut child = Command::new(program)
        .args(args)
        .env(CHILD_ENV, format!("{threads} {mib}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(base) = line.split("child ready base_threads=").nth(1) {
                let _ = tx.send(base.trim().parse::<u32>().unwrap());
            }
        }
    });
    let pid = child.id();
    let mut spawned = Spawned {
        child,
        pid,
        command: format!("{} {}", program.display(), args.join(" ")),
        base_threads: 0,
        extra: Vec::new(),
    };
    spawned.base_threads = rx
        .recv_timeout(DEADLINE)
        .expect("the helper child did not get ready in time");
    // Ready means its threads exist; wait until its main thread is asleep too.
    wait_for_state(pid, 'S');
    spawned
}

/// Starts `program args...` (stdin an idle pipe, output to /dev/null) and waits until it
/// sleeps (state `S`).
fn spawn_sleeping(program: &str, args: &[&str]) -> Spawned {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let spawned = Spawned {
        pid: child.id(),
        child,
        command: std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" "),
        base_threads: 1,
        extra: Vec::new(),
    };
    wait_for_state(spawned.pid, 'S');
    spawned
}

/// A fraction of a second, so that sleepers' command lines are unique to this run.
fn random_fraction() -> String {
    format!("0.{}", rand::rng().random_range(100_000..1_000_000))
}

// ---------------------------------------------------------------------------------------------
// /proc read by the grader itself (the oracle)
// ---------------------------------------------------------------------------------------------

/// State and PPID from `/proc/<pid>/stat`, if the process exists.
fn proc_state_ppid(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut after = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = after.next()?.chars().next()?;
    Some((state, after.next()?.parse().ok()?))
}

fn wait_for_state(pid: u32, state: char) {
    let deadline = Instant::now() + DEADLINE;
    while proc_state_ppid(pid).map(|(s, _)| s) != Some(state) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} never reached state {state}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The PIDs listed in `/proc` right now.
fn proc_pids() -> BTreeSet<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Checks a listed PID set against `/proc` read before and after the listing: every process
/// alive the whole time is listed, and every listed PID existed at some point.
fn check_pid_set(listed: &BTreeSet<u32>, before: &BTreeSet<u32>, after: &BTreeSet<u32>) {
    let missing: Vec<_> = before
        .intersection(after)
        .filter(|p| !listed.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "requirement 4: {} processes alive before and after the listing are missing from it: {:?}",
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>()
    );
    let invented: Vec<_> = listed
        .iter()
        .filter(|p| !before.contains(p) && !after.contains(p) && exists(**p))
        .collect();
    assert!(
        invented.is_empty(),
        "requirement 4: listed PIDs that /proc never listed: {invented:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Running mini_ps and reading its output
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Row {
    pid: u32,
    ppid: u32,
    state: String,
    threads: u32,
    rss_kib: u64,
    command: String,
}

/// Byte ranges of the first `n` whitespace-separated fields, and where the rest begins.
fn split_fields(line: &str, n: usize) -> Option<(Vec<(usize, usize)>, usize)> {
    let mut fields = Vec::new();
    let mut pos = 0;
    for _ in 0..n {
        let start = pos + line[pos..].find(|c: char| c != ' ')?;
        let end = line[start..].find(' ').map_or(line.len(), |i| start + i);
        fields.push((start, end));
        pos = end;
    }
    let rest = pos
        + line[pos..]
            .find(|c: char| c != ' ')
            .unwrap_or(line.len() - pos);
    Some((fields, rest))
}

/// Runs `mini_ps args...`, checks it succeeded, and returns its stdout.
fn mini_ps(args: &[&str]) -> String {
    let out = run(lab_bin!(), args);
    assert!(
        out.code() == Some(0),
        "requirement 4: mini_ps {args:?} exited with {:?}, wanted 0; stderr: {}",
        out.code(),
        out.stderr_str()
    );
    out.stdout_str()
}

/// Parses the table: the header, then one row per process.
fn parse_table(stdout: &str) -> Vec<Row> {
    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.split_whitespace().eq(HEADER),
        "requirement 4: the first line is {header:?}, wanted the header {HEADER:?}; output starts:\n{}",
        stdout.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    lines
        .map(|line| {
            let bad = |what: &str| -> ! { panic!("requirement 4: row {line:?}: {what}") };
            let Some((fields, rest)) = split_fields(line, 5) else {
                bad("expected PID PPID S THR RSS_KIB COMMAND")
            };
            let field = |i: usize| &line[fields[i].0..fields[i].1];
            let number = |i: usize| -> u64 {
                field(i)
                    .parse()
                    .unwrap_or_else(|_| bad(&format!("{} is not a number", HEADER[i])))
            };
            Row {
                pid: number(0) as u32,
                ppid: number(1) as u32,
                state: field(2).to_string(),
                threads: number(3) as u32,
                rss_kib: number(4),
                command: line[rest..].to_string(),
            }
        })
        .collect()
}

/// The one row of `mini_ps --pid <pid>`.
fn row_of(pid: u32) -> Row {
    let stdout = mini_ps(&["--pid", &pid.to_string()]);
    let mut rows = parse_table(&stdout);
    assert!(
        rows.len() == 1 && rows[0].pid == pid,
        "requirement 5: --pid {pid} shows {} rows, wanted the header and the row of {pid}:\n{stdout}",
        rows.len()
    );
    rows.remove(0)
}

/// Finds `pid` in a full listing.
fn find(rows: &[Row], pid: u32, stdout: &str) -> Row {
    let row = rows.iter().find(|r| r.pid == pid);
    row.cloned().unwrap_or_else(|| {
        panic!(
            "requirement 4: pid {pid} is missing from a listing of {} lines",
            stdout.lines().count()
        )
    })
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

// Requirement 4: every process, sorted by PID, the same set as /proc.
#[test]
fn lists_every_process_sorted_by_pid() {
    let _child = spawn_sleeping("sleep", &["60", &random_fraction()]);
    let before = proc_pids();
    let stdout = mini_ps(&[]);
    let after = proc_pids();
    let rows = parse_table(&stdout);
    assert!(
        rows.len() > 2,
        "requirement 4: {} rows, wanted every process:\n{stdout}",
        rows.len()
    );
    let pids: Vec<u32> = rows.iter().map(|r| r.pid).collect();
    if let Some(w) = pids.windows(2).find(|w| w[0] >= w[1]) {
        panic!(
            "requirement 4: pid {} is listed after pid {}, wanted rows sorted by PID, each once",
            w[1], w[0]
        );
    }
    check_pid_set(&pids.into_iter().collect(), &before, &after);
}

// Requirement 4: numbers right-aligned under their header, COMMAND in one column.
#[test]
fn columns_are_aligned() {
    let _child = spawn_sleeping("sleep", &["60", &random_fraction()]);
    let stdout = mini_ps(&[]);
    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or_default();
    let Some((header_fields, command_at)) = split_fields(header, 5) else {
        panic!("requirement 4: the header is {header:?}, wanted `PID PPID S THR RSS_KIB COMMAND`");
    };
    assert!(
        &header[command_at..] == "COMMAND",
        "requirement 4: the header is {header:?}, wanted `PID PPID S THR RSS_KIB COMMAND`"
    );
    let mut rows = 0;
    for line in lines {
        let (fields, rest) = split_fields(line, 5)
            .unwrap_or_else(|| panic!("requirement 4: row {line:?} has fewer than 6 columns"));
        for (i, (field, head)) in fields.iter().zip(&header_fields).enumerate() {
            assert!(
                field.1 == head.1,
                "requirement 4: {} ends in column {}, its header in column {}: right-align it\n{header}\n{line}",
                HEADER[i],
                field.1,
                head.1
            );
        }
        assert!(
            rest == command_at,
            "requirement 4: COMMAND starts in column {rest}, the header's in column {command_at}\n{header}\n{line}"
        );
        rows += 1;
    }
    assert!(
        rows > 2,
        "requirement 4: {rows} rows under the header, wanted every process"
    );
}

// Requirement 1 and 3: a child's PPID, state, threads and command line.
#[test]
fn shows_children_with_ppid_state_and_command_line() {
    let fraction = random_fraction();
    let sleeper = spawn_sleeping("sleep", &["60", &fraction]);
    let helper = spawn_helper(&std::env::current_exe().unwrap(), 0, 0);
    // A newline and a tab inside an argument: shown as `?`, one process per line.
    let script = format!("read line\n: {fraction}\tdone");
    let mut multiline = spawn_sleeping("sh", &["-c", &script]);
    multiline.command = multiline.command.replace(['\n', '\t'], "?");
    let stdout = mini_ps(&[]);
    let rows = parse_table(&stdout);
    for child in [&sleeper, &helper, &multiline] {
        let row = find(&rows, child.pid, &stdout);
        assert!(
            row.ppid == std::process::id() && row.state == "S",
            "requirement 1: {row:?} shows PPID {} and state {}, wanted PPID {} (this test) and S",
            row.ppid,
            row.state,
            std::process::id()
        );
        assert!(
            row.command == child.command,
            "requirement 3: pid {} shows the command {:?}, wanted {:?}",
            child.pid,
            row.command,
            child.command
        );
    }
    let threads = find(&rows, sleeper.pid, &stdout).threads;
    assert!(
        threads == 1,
        "requirement 1: sleep shows {threads} threads, wanted 1"
    );
}

// Requirement 1: the thread count (this test also plays the child role, see CHILD_ENV).
#[test]
fn shows_the_thread_count_of_a_child() {
    if let Ok(orders) = std::env::var(CHILD_ENV) {
        child_role(&orders);
    }
    let extra = rand::rng().random_range(2..10);
    let child = spawn_helper(&std::env::current_exe().unwrap(), extra, 0);
    let row = row_of(child.pid);
    let want = child.base_threads + extra;
    assert!(
        row.threads == want,
        "requirement 1: the child shows {} threads, wanted {want} (it started with {} and spawned {extra})",
        row.threads,
        child.base_threads
    );
    let tasks = labkit::sys::thread_count(child.pid);
    assert!(
        Some(row.threads as usize) == tasks,
        "requirement 1: the child shows {} threads, /proc/{}/task has {tasks:?}",
        row.threads,
        child.pid
    );
    assert!(
        row.ppid == std::process::id(),
        "requirement 1: the child shows PPID {}, wanted {}",
        row.ppid,
        std::process::id()
    );
}

// Requirement 2: RSS in KiB, from VmRSS.
#[test]
fn shows_the_rss_of_a_child_that_touched_64_mib() {
    let child = spawn_helper(&std::env::current_exe().unwrap(), 0, 64);
    let row = row_of(child.pid);
    let expected = 64 * 1024;
    assert!(
        row.rss_kib.abs_diff(expected) <= expected / 10,
        "requirement 2: RSS of a child that touched 64 MiB: {} KiB, expected {expected} KiB within 10% (VmRSS in /proc/<pid>/status)",
        row.rss_kib
    );
}

// Requirement 1: stat is parsed at the last ')', whatever the command name holds.
#[test]
fn parses_a_command_named_with_parentheses() {
    let dir = tempfile::tempdir().unwrap();
    // The kernel names a process after the file it runs: link this test executable as
    // `a) b (c` and run it in the child role.
    let tricky: PathBuf = dir.path().join("a) b (c");
    std::os::unix::fs::symlink(std::env::current_exe().unwrap(), &tricky).unwrap();
    let child = spawn_helper(&tricky, 0, 0);
    let stat = fs::read_to_string(format!("/proc/{}/stat", child.pid)).unwrap();
    assert!(
        stat.contains("(a) b (c)"),
        "the kernel named the child otherwise than `a) b (c`: {stat}"
    );
    for row in [row_of(child.pid), {
        let stdout = mini_ps(&[]);
        find(&parse_table(&stdout), child.pid, &stdout)
    }] {
        assert!(
            row.ppid == std::process::id()
                && row.state == "S"
                && row.threads == child.base_threads
                && row.command == child.command,
            "requirement 1: the process named `a) b (c` shows {row:?}, wanted ppid {}, state S, {} threads, command {:?}: cut stat at the last ')'",
            std::process::id(),
            child.base_threads,
            child.command
        );
    }
}

// Requirement 3: no command line (zombies, kernel threads): `[comm]`.
#[test]
fn shows_processes_without_a_command_line_as_bracketed_name() {
    let mut zombie = Command::new("true").spawn().expect("spawn true");
    let pid = zombie.id();
    // Not reaped yet: once it exits it stays a zombie, with an empty command line.
    wait_for_state(pid, 'Z');
    let row = row_of(pid);
    zombie.wait().unwrap();
    assert!(
        row.state == "Z" && row.command == "[true]",
        "requirement 3: a zombie `true` shows state {} and command {:?}, wanted Z and [true]",
        row.state,
        row.command
    );
    assert!(
        row.rss_kib == 0,
        "requirement 2: a zombie shows RSS {} KiB, wanted 0 (it has no VmRSS line)",
        row.rss_kib
    );
    // Kernel threads, where the machine shows them (not inside most containers).
    let kthreadd = fs::read_to_string("/proc/2/stat").unwrap_or_default();
    if kthreadd.starts_with("2 (kthreadd)") {
        let command = row_of(2).command;
        assert!(
            command == "[kthreadd]",
            "requirement 3: kthreadd shows the command {command:?}, wanted [kthreadd]"
        );
    }
}

// Requirement 5: --pid N shows one process; a PID that does not exist is an error.
#[test]
fn pid_option_shows_one_process() {
    let child = spawn_sleeping("sleep", &["60", &random_fraction()]);
    let row = row_of(child.pid);
    assert!(
        row.command == child.command && row.ppid == std::process::id(),
        "requirement 5: --pid {} shows {row:?}, wanted command {:?} and ppid {}",
        child.pid,
        child.command,
        std::process::id()
    );
    let me = row_of(std::process::id());
    let parent = std::os::unix::process::parent_id();
    assert!(
        me.ppid == parent,
        "requirement 5: --pid of this test shows ppid {}, wanted {parent}",
        me.ppid
    );
}

#[test]
fn unknown_pid_is_a_one_line_error() {
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let out = run(lab_bin!(), &["--pid", &pid.to_string()]);
    let stderr = out.stderr_str();
    assert!(
        out.code() == Some(1) && !stderr.contains("panicked"),
        "requirement 5: --pid of the gone pid {pid} exited with {:?}, wanted 1 without a panic; stderr: {stderr:?}",
        out.code()
    );
    let lines = stderr.trim_end().lines().count();
    assert!(
        lines == 1 && stderr.contains(&pid.to_string()),
        "requirement 5: --pid {pid} printed {lines} lines on stderr, wanted one naming {pid}: {stderr:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "requirement 5: --pid {pid} printed {} bytes on stdout, wanted none",
        out.stdout.len()
    );
}

// Requirement 7: bad arguments print the usage and exit with code 2.
#[test]
fn bad_arguments_print_usage_and_exit_2() {
    let cases: [&[&str]; 4] = [&["--pid"], &["--pid", "abc"], &["--bogus"], &["extra"]];
    for args in cases {
        let out = run(lab_bin!(), args);
        let stderr = out.stderr_str();
        assert!(
            out.code() == Some(2),
            "requirement 7: {args:?} exited with {:?}, wanted 2; stderr: {stderr:?}",
            out.code()
        );
        assert!(
            stderr.to_lowercase().contains("usage") && stderr.trim_end().lines().count() == 1,
            "requirement 7: {args:?} must print one line with the usage on stderr, got {stderr:?}"
        );
        assert!(
            out.stdout.is_empty(),
            "requirement 7: {args:?} printed {} bytes on stdout, wanted none",
            out.stdout.len()
        );
    }
    for args in [["--help"], ["-h"]] {
        let out = run(lab_bin!(), &args);
        let stdout = out.stdout_str();
        assert!(
            out.code() == Some(0) && stdout.to_lowercase().contains("usage"),
            "requirement 7: {args:?} must print the usage on stdout and exit 0; got exit {:?}, stdout {stdout:?}",
            out.code()
        );
    }
}

// Requirement 6: --tree nests every process under its parent.
#[test]
fn tree_nests_children_under_their_parent() {
    // Two grandchildren: sh runs two sleeps in the background and waits for them. Siblings
    // must come in PID order.
    let fraction = random_fraction();
    let script = format!("sleep 60 {fraction} & sleep 61 {fraction} & wait");
    let mut sh = spawn_sleeping("sh", &["-c", &script]);
    let deadline = Instant::now() + DEADLINE;
    let grandchildren = loop {
        let found: Vec<u32> = proc_pids()
            .into_iter()
            .filter(|&p| proc_state_ppid(p).is_some_and(|(s, ppid)| ppid == sh.pid && s == 'S'))
            .collect();
        if found.len() == 2 {
            break found;
        }
        assert!(Instant::now() < deadline, "sh never started its two sleeps");
        thread::sleep(Duration::from_millis(5));
    };
    sh.extra.extend(&grandchildren);
    let grandchild = grandchildren[0];

    let ppids_before: BTreeMap<u32, u32> = proc_pids()
        .into_iter()
        .filter_map(|p| Some((p, proc_state_ppid(p)?.1)))
        .collect();
    let stdout = mini_ps(&["--tree"]);
    let ppids_after: BTreeMap<u32, u32> = proc_pids()
        .into_iter()
        .filter_map(|p| Some((p, proc_state_ppid(p)?.1)))
        .collect();

    // Parse `<indent>PID COMMAND` lines and find each line's parent: the closest line above
    // it that is one level less indented.
    let mut path: Vec<u32> = Vec::new();
    let mut parent_of = BTreeMap::new();
    let mut command_of = BTreeMap::new();
    let mut children_of: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for line in stdout.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        assert!(
            indent % 2 == 0 && indent / 2 <= path.len(),
            "requirement 6: {line:?} is indented by {indent} spaces, wanted two per level, at most one level below the line above"
        );
        path.truncate(indent / 2);
        let (pid, command) = line
            .trim_start()
            .split_once(' ')
            .unwrap_or((line.trim(), ""));
        let pid: u32 = pid
            .parse()
            .unwrap_or_else(|_| panic!("requirement 6: {line:?} is not `PID COMMAND`"));
        if let Some(&parent) = path.last() {
            parent_of.insert(pid, parent);
            children_of.entry(parent).or_default().push(pid);
        }
        assert!(
            command_of.insert(pid, command.to_string()).is_none(),
            "requirement 6: pid {pid} appears twice in the tree, wanted once"
        );
        path.push(pid);
    }

    let listed: BTreeSet<u32> = command_of.keys().copied().collect();
    let before: BTreeSet<u32> = ppids_before.keys().copied().collect();
    let after: BTreeSet<u32> = ppids_after.keys().copied().collect();
    check_pid_set(&listed, &before, &after);
    for (pid, ppid) in &ppids_before {
        // Only processes whose parent did not change during the listing.
        if ppids_after.get(pid) != Some(ppid) || !listed.contains(pid) {
            continue;
        }
        if listed.contains(ppid) && ppid != pid {
            assert!(
                parent_of.get(pid) == Some(ppid),
                "requirement 6: pid {pid} sits under {:?}, wanted under its parent {ppid}",
                parent_of.get(pid)
            );
        } else {
            assert!(
                !parent_of.contains_key(pid),
                "requirement 6: pid {pid} sits under {:?}, but its parent {ppid} is not listed: wanted a root",
                parent_of.get(pid)
            );
        }
    }
    for (parent, kids) in &children_of {
        assert!(
            kids.windows(2).all(|w| w[0] < w[1]),
            "requirement 6: the children of {parent} come as {kids:?}, wanted in PID order"
        );
    }
    let me = std::process::id();
    assert!(
        parent_of.get(&sh.pid) == Some(&me) && parent_of.get(&grandchild) == Some(&sh.pid),
        "requirement 6: sh ({}) sits under {:?} and its sleep ({grandchild}) under {:?}, wanted under {me} and {}",
        sh.pid,
        parent_of.get(&sh.pid),
        parent_of.get(&grandchild),
        sh.pid
    );
    let mut shown: Vec<&str> = grandchildren
        .iter()
        .map(|p| command_of[p].as_str())
        .collect();
    shown.sort();
    let want = [
        format!("sleep 60 {fraction}"),
        format!("sleep 61 {fraction}"),
    ];
    assert!(
        shown == want,
        "requirement 6: the tree shows the two sleeps as {shown:?}, wanted {want:?}"
    );
    let kids = children_of.get(&sh.pid).cloned().unwrap_or_default();
    assert!(
        kids == grandchildren,
        "requirement 6: the children of sh come as {kids:?}, wanted {grandchildren:?} (PID order)"
    );
}

// Requirement 8: processes that exit while being read are skipped, not an error.
#[test]
fn processes_that_vanish_are_skipped() {
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut started = 0;
            while !stop.load(Ordering::Relaxed) {
                if Command::new("true").status().is_ok() {
                    started += 1;
                }
            }
            started
        })
    };
    let results: Vec<_> = (0..8).map(|_| run(lab_bin!(), &[])).collect();
    stop.store(true, Ordering::Relaxed);
    let started = churn.join().unwrap();
    for out in results {
        assert!(
            out.code() == Some(0),
            "requirement 8: mini_ps exited with {:?} while {started} short-lived processes came and went, wanted 0; stderr: {}",
            out.code(),
            out.stderr_str()
        );
        let rows = parse_table(&out.stdout_str()).len();
        assert!(
            rows > 2,
            "requirement 8: {rows} rows while processes came and went, wanted every process"
        );
    }
}
