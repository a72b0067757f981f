//! Grader for Mini Cat/Grep: black-box tests through the real binary.
//! Each test is named after the requirement it checks (see README.md).

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use labkit::{lab_bin, lab_file, run};
use rand::RngExt;

fn mini_cat(args: &[&str]) -> labkit::Output {
    run(lab_bin!(), args)
}

fn test_txt() -> String {
    lab_file!("test.txt").display().to_string()
}

/// A file of random lines made of a few words, so patterns match some lines and not others.
fn random_text(lines: usize) -> String {
    const WORDS: [&str; 8] = [
        "alpha", "beta", "gamma", "delta", "fish", "red", "blue", "x",
    ];
    let mut rng = rand::rng();
    let mut text = String::new();
    for _ in 0..lines {
        let words = rng.random_range(0..6);
        let line: Vec<&str> = (0..words)
            .map(|_| WORDS[rng.random_range(0..WORDS.len())])
            .collect();
        text.push_str(&line.join(" "));
        text.push('\n');
    }
    text
}

fn write_temp(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> String {
    let path = dir.path().join(name);
    fs::write(&path, contents).unwrap();
    path.display().to_string()
}

/// Where two outputs first differ, in one line: the lengths and the first line that differs
/// (outputs can be megabytes; a test never dumps them whole).
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let (got_text, want_text) = (String::from_utf8_lossy(got), String::from_utf8_lossy(want));
    let mut got_lines = got_text.split_inclusive('\n');
    let mut want_lines = want_text.split_inclusive('\n');
    for number in 1.. {
        match (got_lines.next(), want_lines.next()) {
            (None, None) => break,
            (g, w) if g == w => continue,
            (g, w) => {
                return format!(
                    "got {} bytes, wanted {}; output line {number} is {g:?}, wanted {w:?}",
                    got.len(),
                    want.len()
                );
            }
        }
    }
    format!("got {} bytes, wanted {}", got.len(), want.len())
}

/// The error contract of requirement 5: exactly one line on stderr naming `path`, exit code 1,
/// nothing on stdout, no panic.
fn assert_input_error(out: &labkit::Output, path: &str, what: &str) {
    let stderr = out.stderr_str();
    assert!(
        out.code() == Some(1),
        "requirement 5: {what} exited with {:?}, wanted exit code 1; stderr: {stderr:?}",
        out.code()
    );
    assert!(
        !stderr.contains("panicked"),
        "requirement 5: {what} panicked instead of reporting the error: {stderr:?}"
    );
    let lines = stderr.trim_end().lines().count();
    assert!(
        lines == 1,
        "requirement 5: {what} printed {lines} lines on stderr, wanted exactly one: {stderr:?}"
    );
    assert!(
        stderr.contains(path),
        "requirement 5: the error for {what} does not name the path {path}: {stderr:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "requirement 5: {what} printed {} bytes on stdout, wanted none",
        out.stdout.len()
    );
}

/// A successful run: exit code 0 and exactly `want` on stdout.
fn assert_prints(out: &labkit::Output, want: &[u8], requirement: &str) {
    assert!(
        out.code() == Some(0),
        "{requirement}: exited with {:?}, wanted 0; stderr: {:?}",
        out.code(),
        out.stderr_str()
    );
    assert!(
        out.stdout == want,
        "{requirement}: {}",
        first_difference(&out.stdout, want)
    );
}

// Requirement 1: without a pattern, the file is printed unchanged.
#[test]
fn prints_the_file_unchanged() {
    let out = mini_cat(&[&test_txt()]);
    let want = fs::read(lab_file!("test.txt")).unwrap();
    assert_prints(&out, &want, "requirement 1: test.txt printed unchanged");
}

#[test]
fn prints_random_files_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = random_text(500);
    text.push_str("last line without newline");
    let path = write_temp(&dir, "random.txt", text.as_bytes());
    let out = mini_cat(&[&path]);
    assert_prints(
        &out,
        text.as_bytes(),
        "requirement 1: a random file (its last line has no newline) printed byte for byte",
    );
}

#[test]
fn empty_file_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "empty.txt", b"");
    let out = mini_cat(&[&path]);
    assert_prints(&out, b"", "requirement 1: an empty file prints nothing");
}

// Requirement 2: with a pattern, only the lines containing it are printed.
#[test]
fn keeps_only_lines_containing_the_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let text = random_text(400);
    let path = write_temp(&dir, "words.txt", text.as_bytes());
    for pattern in ["fish", "ta", "blue red", "x"] {
        let expected: String = text
            .lines()
            .filter(|l| l.contains(pattern))
            .map(|l| format!("{l}\n"))
            .collect();
        let out = mini_cat(&[&path, pattern]);
        let what = format!("requirement 2: only the lines containing {pattern:?}");
        assert_prints(&out, expected.as_bytes(), &what);
    }
    let expected: String = fs::read_to_string(lab_file!("test.txt"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("error"))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = mini_cat(&[&test_txt(), "error"]);
    assert_prints(
        &out,
        expected.as_bytes(),
        "requirement 2: `test.txt error` prints the lines containing `error`",
    );
}

#[test]
fn pattern_that_matches_nothing_prints_nothing() {
    let out = mini_cat(&[&test_txt(), "no line has this"]);
    assert_prints(&out, b"", "requirement 2: a pattern that matches no line");
}

// Requirement 3: -n numbers lines like `cat -n` (right-aligned in 6 columns, then a tab).
#[test]
fn numbers_lines_with_n() {
    let expected: String = fs::read_to_string(lab_file!("test.txt"))
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{:>6}\t{l}\n", i + 1))
        .collect();
    for args in [[test_txt().as_str(), "-n"], ["-n", test_txt().as_str()]] {
        let out = mini_cat(&args);
        let what = format!("requirement 3: {args:?} numbers every line like `cat -n`");
        assert_prints(&out, expected.as_bytes(), &what);
    }
}

#[test]
fn numbers_are_original_line_numbers_when_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let text = random_text(300);
    let path = write_temp(&dir, "words.txt", text.as_bytes());
    let expected: String = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("gamma"))
        .map(|(i, l)| format!("{:>6}\t{l}\n", i + 1))
        .collect();
    let out = mini_cat(&[&path, "gamma", "-n"]);
    assert_prints(
        &out,
        expected.as_bytes(),
        "requirement 3: with a pattern, each printed line keeps its number in the file",
    );
}

// Requirement 4: a line that is not UTF-8 is printed lossily; the other lines are intact.
#[test]
fn invalid_utf8_lines_are_printed_lossily() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "bin.txt", b"good one\nbad \xff\xfe one\nlast one\n");
    let out = mini_cat(&[&path, "one"]);
    assert_prints(
        &out,
        "good one\nbad \u{FFFD}\u{FFFD} one\nlast one\n".as_bytes(),
        "requirement 4: a line with the bytes ff fe is printed with U+FFFD, the others intact",
    );
}

// Requirement 5: input errors are one line on stderr naming the path, and exit code 1.
#[test]
fn missing_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("does-not-exist.txt").display().to_string();
    assert_input_error(&mini_cat(&[&path]), &path, "a missing file");
}

#[test]
fn directory_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().display().to_string();
    assert_input_error(
        &mini_cat(&[&path]),
        &path,
        "a directory (read fails with EISDIR)",
    );
}

#[test]
fn unreadable_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "secret.txt", b"top secret\n");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = Command::new(lab_bin!());
    cmd.arg(&path);
    if labkit::sys::is_root() {
        // Root reads everything: run the program as `nobody` so the permission bits count.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        cmd.uid(65534).gid(65534);
    }
    let out = labkit::process::run_command(cmd, b"", labkit::process::RUN_TIMEOUT);
    assert_input_error(&out, &path, "a file without read permission");
}

// Requirement 6: bad arguments print one line with the usage on stderr and exit with code 2;
// `--help` prints the usage on stdout and exits 0.
#[test]
fn bad_arguments_print_usage_and_exit_2() {
    let txt = test_txt();
    let cases: [&[&str]; 4] = [&[], &[&txt, "fish", "extra"], &[&txt, "-x"], &["--bogus"]];
    for args in cases {
        let out = mini_cat(args);
        let stderr = out.stderr_str();
        assert!(
            out.code() == Some(2),
            "requirement 6: args {args:?} exited with {:?}, wanted 2; stderr: {stderr:?}",
            out.code()
        );
        assert!(
            stderr.to_lowercase().contains("usage") && stderr.trim_end().lines().count() == 1,
            "requirement 6: args {args:?} must print one line with the usage on stderr, got {stderr:?}"
        );
        assert!(
            out.stdout.is_empty(),
            "requirement 6: args {args:?} printed {} bytes on stdout, wanted none",
            out.stdout.len()
        );
    }
    for args in [["--help"], ["-h"]] {
        let out = mini_cat(&args);
        let stdout = out.stdout_str();
        assert!(
            out.code() == Some(0) && stdout.to_lowercase().contains("usage"),
            "requirement 6: {args:?} must print the usage on stdout and exit 0; got exit {:?}, stdout {stdout:?}",
            out.code()
        );
    }
}

// Requirement 7: the file is streamed, so memory stays flat on a 200 MB file.
#[test]
fn streams_a_200_mb_file_in_flat_memory() {
    const LINE: usize = 1024;
    const LINES: usize = 200 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    let mut line = vec![b'a'; LINE - 1];
    line.push(b'\n');
    fs::write(&path, line.repeat(LINES)).unwrap();

    let mut child = Command::new(lab_bin!())
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Read three quarters of the output, then stop: the program blocks on the full pipe, still
    // alive, and its peak resident memory (VmHWM) is in /proc.
    let mut buf = vec![0; 1 << 16];
    let mut seen = 0;
    while seen < LINE * LINES * 3 / 4 {
        let n = stdout.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "requirement 7: the output ended after {seen} bytes, wanted {}",
            LINE * LINES
        );
        seen += n;
    }
    let peak_kib = labkit::sys::status_kib(child.id(), "VmHWM").expect("VmHWM of the child");
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let status = labkit::process::wait_timeout(&mut child, labkit::process::RUN_TIMEOUT);
    assert!(
        seen + rest.len() == LINE * LINES,
        "requirement 7: printed {} bytes of a {}-byte file",
        seen + rest.len(),
        LINE * LINES
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "requirement 7: the run ended with {status:?}, wanted exit 0"
    );
    assert!(
        peak_kib < 32 * 1024,
        "requirement 7: peak RSS {peak_kib} KiB while printing a 200 MiB file, wanted under 32768 KiB: read it line by line"
    );
}
