//! Grader for Thread Pool, requirement 7: the program, run as a learner runs it.

use labkit::{lab_bin, run};
use rand::RngExt;

// Requirement 7: the demo runs on N workers and N rayon threads; the command line answers
// `--help` and rejects what it does not know.
#[test]
fn the_demo_runs_and_the_command_line_answers_help_and_bad_options() {
    let help = run(lab_bin!(), &["--help"]);
    assert!(
        help.code() == Some(0) && help.stdout_str().to_lowercase().contains("usage"),
        "requirement 7: --help exited with {:?}, wanted 0 and the usage on stdout; stdout: {:?}",
        help.code(),
        help.stdout_str()
    );
    let cases: [&[&str]; 5] = [
        &["--bogus"],
        &["--threads", "0"],
        &["--threads", "many"],
        &["--idle"],
        &["extra"],
    ];
    for args in cases {
        let out = run(lab_bin!(), args);
        let stderr = out.stderr_str();
        assert!(
            out.code() == Some(2),
            "requirement 7: args {args:?} exited with {:?}, wanted 2; stderr: {stderr:?}",
            out.code()
        );
        assert!(
            stderr.to_lowercase().contains("usage") && stderr.trim_end().lines().count() == 1,
            "requirement 7: args {args:?} must print one line with the usage on stderr, got \
             {stderr:?}"
        );
        assert!(
            out.stdout.is_empty(),
            "requirement 7: args {args:?} printed {} bytes on stdout, wanted none",
            out.stdout.len()
        );
    }

    let n = rand::rng().random_range(2..=4);
    let threads = n.to_string();
    let demo = run(lab_bin!(), &["--threads", &threads]);
    let stdout = demo.stdout_str();
    assert!(
        demo.code() == Some(0),
        "requirement 7: `--threads {n}` exited with {:?}, wanted 0; stdout: {stdout:?}; \
         stderr: {:?}",
        demo.code(),
        demo.stderr_str()
    );
    for want in [
        format!("sum of squares below 1000 = 332833500, by {n} workers"),
        "and the pool still works: Some(42)".to_string(),
        "the pool agrees with one thread: true, rayon agrees: true".to_string(),
    ] {
        assert!(
            stdout.contains(&want),
            "requirement 7: `--threads {n}` printed no line with {want:?}:\n{stdout}"
        );
    }
    let strangers: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|line| line.ends_with(" jobs") || line.ends_with(" chunks"))
        .filter_map(|line| line.split(':').next())
        .filter(|who| {
            !(0..n)
                .any(|i| *who == format!("pool-worker-{i}") || *who == format!("rayon-worker-{i}"))
        })
        .collect();
    assert!(
        strangers.is_empty(),
        "requirement 7: with `--threads {n}`, jobs or chunks ran on {strangers:?}; wanted only \
         pool-worker-0 to pool-worker-{last} and rayon-worker-0 to rayon-worker-{last}:\n{stdout}",
        last = n - 1
    );
}
