//! Grader for Process vs Thread: the program, run as a learner runs it.

use labkit::{lab_bin, run};

/// Calls per system call name from the summary that `strace -c -o FILE` writes.
fn strace_calls(summary: &str, syscall: &str) -> u64 {
    summary
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // % time, seconds, usecs/call, calls, [errors], syscall
            if fields.len() >= 5 && fields.last() == Some(&syscall) {
                fields[3].parse::<u64>().ok()
            } else {
                None
            }
        })
        .sum()
}

// Requirement 4: the program prints a table, and strace sees every task it creates.
#[test]
fn prints_a_table_and_strace_sees_every_fork() {
    let strace = labkit::sys::require_strace();
    let dir = tempfile::tempdir().unwrap();
    let summary_path = dir.path().join("summary.txt");
    let summary_arg = summary_path.display().to_string();
    let mut args = vec!["-f", "-c", "-o", &summary_arg, lab_bin!()];
    args.extend(["--repeats", "10", "--round-trips", "200", "--idle", "10"]);
    let out = run(strace.to_str().unwrap(), &args);
    assert!(
        out.code() == Some(0),
        "requirement 4: the program under strace exited with {:?}, wanted 0; stderr: {}",
        out.code(),
        out.stderr_str()
    );
    let table = out.stdout_str().to_lowercase();
    for word in ["thread", "fork", "ping-pong", "idle", "rss"] {
        assert!(
            table.contains(word),
            "requirement 4: the table does not mention {word:?}, wanted one line per measurement:\n{table}"
        );
    }
    assert!(
        table.lines().count() >= 7,
        "requirement 4: the table has {} lines, wanted at least 7 (one per measurement):\n{table}",
        table.lines().count()
    );

    let summary = std::fs::read_to_string(&summary_path)
        .unwrap_or_else(|e| panic!("requirement 4: strace wrote no summary ({e})"));
    let created: u64 = ["clone", "clone3", "fork", "vfork"]
        .iter()
        .map(|s| strace_calls(&summary, s))
        .sum();
    // 10 threads + 10 forks + 10 programs + 2 ping-pong peers + 10 idle threads + 10 idle children.
    assert!(
        created >= 52,
        "requirement 4: strace saw {created} task creations, wanted at least 52:\n{summary}"
    );
    let execs = strace_calls(&summary, "execve");
    assert!(
        execs > 10,
        "requirement 4: strace saw {execs} execve, wanted more than 10 (10 runs of /bin/true):\n{summary}"
    );
}

// Requirement 5: bad arguments print the usage and exit with code 2.
#[test]
fn bad_arguments_print_usage_and_exit_2() {
    let cases: [&[&str]; 5] = [
        &["--repeats", "0"],
        &["--repeats", "many"],
        &["--idle"],
        &["--round-trips", "-5"],
        &["--bogus"],
    ];
    for args in cases {
        let out = run(lab_bin!(), args);
        let stderr = out.stderr_str();
        assert!(
            out.code() == Some(2),
            "requirement 5: args {args:?} exited with {:?}, wanted 2; stderr: {stderr:?}",
            out.code()
        );
        assert!(
            stderr.to_lowercase().contains("usage") && stderr.trim_end().lines().count() == 1,
            "requirement 5: args {args:?} must print one line with the usage on stderr, got {stderr:?}"
        );
        assert!(
            out.stdout.is_empty(),
            "requirement 5: args {args:?} printed {} bytes on stdout, wanted none",
            out.stdout.len()
        );
    }
    let out = run(lab_bin!(), &["--help"]);
    assert!(
        out.code() == Some(0) && out.stdout_str().to_lowercase().contains("usage"),
        "requirement 5: --help exited with {:?}, wanted 0 and the usage on stdout; stdout: {:?}",
        out.code(),
        out.stdout_str()
    );
}
