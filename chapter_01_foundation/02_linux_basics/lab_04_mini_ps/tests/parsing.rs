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
        assert_eq!(parse_stat(&line), Some(expected), "parsing {line:?}");
    }
    // The real thing: this test process, checked against /proc/self/status.
    let line = fs::read_to_string("/proc/self/stat").unwrap();
    let stat = parse_stat(&line).unwrap_or_else(|| panic!("cannot parse {line:?}"));
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..].trim().parse().unwrap()
    };
    assert_eq!(stat.pid, std::process::id());
    assert_eq!(stat.ppid, field("PPid:"));
    assert!(stat.threads >= 1, "the test process has threads: {line:?}");
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
        assert_eq!(parse_stat(&line), Some(expected), "parsing {line:?}");
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
        assert_eq!(parse_stat(&line), None, "{line:?} is not a valid stat line");
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
    assert_eq!(parse_status_rss_kib(&status), Some(rss));
    let kernel_thread = "Name:\tkthreadd\nUmask:\t0000\nState:\tS (sleeping)\nThreads:\t1\n";
    assert_eq!(parse_status_rss_kib(kernel_thread), None);
    let own = fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        parse_status_rss_kib(&own).is_some_and(|kib| kib > 100),
        "own VmRSS from {own}"
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
        assert_eq!(parse_cmdline(&raw), Some(args.join(" ")), "parsing {raw:?}");
    }
    assert_eq!(parse_cmdline(b"sleep\x0030\x00"), Some("sleep 30".into()));
    // Programs that rewrite their title may drop the final NUL.
    assert_eq!(
        parse_cmdline(b"nginx: worker process"),
        Some("nginx: worker process".into())
    );
    assert_eq!(
        parse_cmdline(b""),
        None,
        "kernel threads and zombies have no command line"
    );
    assert_eq!(
        parse_cmdline(b"caf\xc3\xa9\x00\xff\x00"),
        Some("café \u{FFFD}".into())
    );
    // One process, one line: control characters are shown as `?`, as ps does.
    assert_eq!(
        parse_cmdline(b"sh\x00-c\x00echo a\nprintf\tb\x00"),
        Some("sh -c echo a?printf?b".into())
    );
}

// Requirement 5: a live process is read; a vanished one is Ok(None), not an error.
#[test]
fn read_process_reads_this_test_process() {
    let me = std::process::id();
    let process = read_process(me)
        .unwrap_or_else(|e| panic!("read_process({me}) failed: {e}"))
        .expect("this test process exists");
    assert_eq!(process.pid, me);
    assert_eq!(process.ppid, std::os::unix::process::parent_id());
    assert!(process.threads >= 1);
    assert!(process.rss_kib > 100, "RSS {} KiB", process.rss_kib);
    let exe = std::env::args().next().unwrap();
    assert!(
        process.command.starts_with(&exe),
        "the command line {:?} starts with {exe:?}",
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
        Ok(Some(p)) => panic!("pid {pid} has exited, yet read_process returned {p:?}"),
        Err(e) => panic!("a vanished process is Ok(None), not an error: {e}"),
    }
}
