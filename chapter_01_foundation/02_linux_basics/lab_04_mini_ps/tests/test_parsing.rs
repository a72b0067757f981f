//! Grader for Mini PS, white-box part: the parsing functions are called directly with
//! generated `/proc` text, and with the real files of this test process.
//! Each test is named after the requirement it checks (see README.md).

use std::fs;
use std::process::Command;

use rand::RngExt;

labkit::lab_mod!(lab);

use lab::{Stat, parse_cmdline, parse_stat, parse_status_rss_kib, read_process};

/// A realistic `stat` line (52 fields) with the values we care about; the other fields hold
/// numbers that differ from them, so reading the wrong field gives a wrong answer.
fn stat_line(pid: u32, comm: &str, state: char, ppid: u32, threads: u32) -> String {
    format!(
        "{pid} ({comm}) {state} {ppid} {pgrp} {pgrp} 34816 {pgrp} 4194560 1185 0 7 0 42 13 0 0 20 0 {threads} 0 1688423 9146368 896 18446744073709551615 1 1 0 0 0 0 0 0 65536 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        pgrp = pid + 1,
    )
}

fn random_stat() -> Stat {
    let mut rng = rand::rng();
    Stat {
        pid: rng.random_range(1000..4_000_000),
        comm: String::new(),
        state: ['R', 'S', 'D', 'Z', 'T', 'I'][rng.random_range(0..6)],
        ppid: rng.random_range(1000..4_000_000),
        threads: rng.random_range(100..1000),
    }
}

/// Names that break a parser splitting at the first `)` or at spaces, as `comm` may hold any
/// byte: `a) b (c`, `) S 1 (`, `x)`...
fn tricky_comm() -> String {
    const PIECES: [&str; 9] = [")", "(", " ", "a", "b", ") R 1 ", "x", "((", "9"];
    let mut rng = rand::rng();
    loop {
        let comm: String = (0..rng.random_range(1..6))
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect();
        if comm.len() <= 15 && comm.contains(')') {
            return comm;
        }
    }
}

// Requirement 1: stat gives pid, state, ppid and the thread count (field 20).
#[test]
fn parse_stat_reads_pid_state_ppid_and_threads() {
    for _ in 0..50 {
        let mut expected = random_stat();
        expected.comm = "worker".into();
        let line = stat_line(
            expected.pid,
            &expected.comm,
            expected.state,
            expected.ppid,
            expected.threads,
        );
        let got = parse_stat(&line);
        assert!(
            got.as_ref() == Some(&expected),
            "requirement 1: parse_stat({line:?}) = {got:?}, wanted {expected:?}"
        );
    }
    // The real thing: this test process, checked against /proc/self/status.
    let line = fs::read_to_string("/proc/self/stat").unwrap();
    let stat = parse_stat(&line).unwrap_or_else(|| {
        panic!("requirement 1: parse_stat(/proc/self/stat) = None for {line:?}")
    });
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..].trim().parse().unwrap()
    };
    assert!(
        stat.pid == std::process::id() && stat.ppid == field("PPid:"),
        "requirement 1: /proc/self/stat parsed as pid {} ppid {}, wanted pid {} ppid {}",
        stat.pid,
        stat.ppid,
        std::process::id(),
        field("PPid:")
    );
    assert!(
        stat.threads >= 1,
        "requirement 1: /proc/self/stat parsed as {} threads, wanted at least 1 (field 20 is num_threads)",
        stat.threads
    );
}

// Requirement 1: the command name may contain spaces and parentheses.
#[test]
fn parse_stat_handles_spaces_and_parentheses_in_the_name() {
    let mut names: Vec<String> = (0..100).map(|_| tricky_comm()).collect();
    names.extend(["a) b (c", ") S 1 (", "x)", "()", " ) "].map(String::from));
    for comm in names {
        let mut expected = random_stat();
        expected.comm = comm;
        let line = stat_line(
            expected.pid,
            &expected.comm,
            expected.state,
            expected.ppid,
            expected.threads,
        );
        let got = parse_stat(&line);
        assert!(
            got.as_ref() == Some(&expected),
            "requirement 1: parse_stat({line:?}) = {got:?}, wanted {expected:?}: cut the name at the last ')'"
        );
    }
}

// Requirement 1: what is not a stat line is `None`, never a panic.
#[test]
fn parse_stat_rejects_what_is_not_a_stat_line() {
    let bad = [
        "".to_string(),
        "hello".into(),
        "12 (x".into(),
        "12 x) S 1".into(),
        "abc (x) S 1 2 3".into(),
        "12 (x) S".into(),
        "12 (x) S 1 2 3 4 5".into(),
        "12 (x) S notanumber 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20".into(),
        stat_line(5, "y", 'S', 1, 3).replace(" 3 0 1688423", " many 0 1688423"),
    ];
    for line in bad {
        let got = parse_stat(&line);
        assert!(
            got.is_none(),
            "requirement 1: parse_stat({line:?}) = {got:?}, wanted None: it is not a stat line"
        );
    }
}

// Requirement 2: VmRSS of status, in KiB; none for kernel threads and zombies.
#[test]
fn parse_status_finds_vmrss_in_kib() {
    let rss = rand::rng().random_range(1..10_000_000u64);
    let status = format!(
        "Name:\tworker\nState:\tS (sleeping)\nVmPeak:\t  999999 kB\nVmHWM:\t {} kB\nVmRSS:\t{rss:>8} kB\nRssAnon:\t    1 kB\nThreads:\t3\n",
        rss + 7
    );
    let got = parse_status_rss_kib(&status);
    assert!(
        got == Some(rss),
        "requirement 2: parse_status_rss_kib = {got:?}, wanted Some({rss}) (the VmRSS line, not VmHWM) in {status:?}"
    );
    let kernel_thread = "Name:\tkthreadd\nUmask:\t0000\nState:\tS (sleeping)\nThreads:\t1\n";
    let got = parse_status_rss_kib(kernel_thread);
    assert!(
        got.is_none(),
        "requirement 2: a status without VmRSS (a kernel thread) gave {got:?}, wanted None"
    );
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let got = parse_status_rss_kib(&own);
    assert!(
        got.is_some_and(|kib| kib > 100),
        "requirement 2: this test process's own VmRSS parsed as {got:?} KiB, wanted more than 100"
    );
}

fn check_cmdline(raw: &[u8], want: Option<&str>) {
    let got = parse_cmdline(raw);
    assert!(
        got.as_deref() == want,
        "requirement 3: parse_cmdline({:?}) = {got:?}, wanted {want:?}",
        String::from_utf8_lossy(raw)
    );
}

// Requirement 3: cmdline arguments are NUL-terminated; they are shown joined with spaces.
#[test]
fn parse_cmdline_joins_arguments_with_spaces() {
    let mut rng = rand::rng();
    for _ in 0..30 {
        let args: Vec<String> = (0..rng.random_range(1..6))
            .map(|_| {
                (0..rng.random_range(1..12))
                    .map(|_| rng.random_range(b'!'..=b'~') as char)
                    .collect()
            })
            .collect();
        let mut raw = Vec::new();
        for arg in &args {
            raw.extend_from_slice(arg.as_bytes());
            raw.push(0);
        }
        check_cmdline(&raw, Some(&args.join(" ")));
    }
    check_cmdline(b"sleep\x0030\x00", Some("sleep 30"));
    // Programs that rewrite their title may drop the final NUL.
    check_cmdline(b"nginx: worker process", Some("nginx: worker process"));
    // Kernel threads and zombies have no command line.
    check_cmdline(b"", None);
    check_cmdline(b"caf\xc3\xa9\x00\xff\x00", Some("café \u{FFFD}"));
    // One process, one line: control characters are shown as `?`, as ps does.
    check_cmdline(
        b"sh\x00-c\x00echo a\nprintf\tb\x00",
        Some("sh -c echo a?printf?b"),
    );
}

// Requirement 8: a live process is read; a vanished one is Ok(None), not an error.
#[test]
fn read_process_reads_this_test_process() {
    let me = std::process::id();
    let process = read_process(me)
        .unwrap_or_else(|e| {
            panic!("requirement 8: read_process({me}) of this test process failed: {e}")
        })
        .unwrap_or_else(|| {
            panic!("requirement 8: read_process({me}) of this test process is None, wanted Some")
        });
    let parent = std::os::unix::process::parent_id();
    assert!(
        process.pid == me && process.ppid == parent && process.threads >= 1,
        "requirement 1: read_process({me}) = {process:?}, wanted pid {me}, ppid {parent}, at least one thread"
    );
    assert!(
        process.rss_kib > 100,
        "requirement 2: read_process({me}) shows RSS {} KiB, wanted more than 100",
        process.rss_kib
    );
    let exe = std::env::args().next().unwrap();
    assert!(
        process.command.starts_with(&exe),
        "requirement 3: the command line {:?} does not start with {exe:?}",
        process.command
    );
}

#[test]
fn read_process_of_a_vanished_pid_is_none() {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().unwrap(); // reaped: its pid no longer exists
    match read_process(pid) {
        Ok(None) => {}
        Ok(Some(p)) => {
            panic!("requirement 8: pid {pid} has exited, yet read_process returned {p:?}")
        }
        Err(e) => panic!(
            "requirement 8: read_process of a vanished pid returned an error ({e}), wanted Ok(None)"
        ),
    }
}
