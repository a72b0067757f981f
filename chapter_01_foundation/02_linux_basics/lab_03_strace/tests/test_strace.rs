//! Grader for the strace Lab: the binary runs under
//! `strace -f -y -e trace=openat,read,write,fsync,fdatasync,close` and the tests read its system
//! calls. `-y` prints the path behind each file descriptor, so the calls on the copied files are
//! told apart from what the dynamic loader and the Rust runtime do at startup (they also open,
//! read and close files, with the same small fd numbers).
//! Each test is named after the requirement it checks (see README.md).

use std::fs;
use std::path::Path;

use labkit::strace::{Syscall, Traced, trace};
use labkit::{lab_bin, run};
use rand::RngExt;

const BUF: usize = 64 * 1024;
const COPY_CALLS: [&str; 6] = ["openat", "read", "write", "fsync", "fdatasync", "close"];

/// One `copy` of a random file under strace, and what it takes to check it.
struct CopyRun {
    _dir: tempfile::TempDir,
    src: String,
    dst: String,
    size: usize,
    traced: Traced,
}

impl CopyRun {
    /// Writes `size` random bytes to `src`, runs `copy src dst` under strace, and checks that it
    /// succeeded and produced an identical file.
    fn new(size: usize) -> CopyRun {
        labkit::sys::require_strace();
        let dir = tempfile::tempdir().unwrap();
        // strace -y prints canonical paths: canonicalize so that the names compare equal.
        let base = dir.path().canonicalize().unwrap();
        let src = base.join("source.bin").display().to_string();
        let dst = base.join("copy.bin").display().to_string();
        let mut data = vec![0u8; size];
        rand::fill(&mut data[..]);
        fs::write(&src, &data).unwrap();
        let traced = trace(lab_bin!(), &["copy", &src, &dst], &COPY_CALLS);
        let run = CopyRun {
            _dir: dir,
            src,
            dst,
            size,
            traced,
        };
        if run.traced.output.code() != Some(0) {
            run.fail(&format!(
                "requirement 1: copy exited with {:?}, wanted 0; stderr: {}",
                run.traced.output.status,
                run.traced.output.stderr_str()
            ));
        }
        if fs::read(&run.dst).ok().as_deref() != Some(&data[..]) {
            run.fail("requirement 1: the copy differs from the source");
        }
        run
    }

    /// Calls named `name` on the file at `path` (by the path strace prints for the fd).
    fn calls_on(&self, name: &str, path: &str) -> Vec<(usize, &Syscall)> {
        self.traced
            .calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == name && c.fd_path(0) == Some(path))
            .collect()
    }

    /// The `openat` calls whose path argument is `path`.
    fn opens_of(&self, path: &str) -> Vec<(usize, &Syscall)> {
        self.traced
            .calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == "openat" && c.str_arg(1).as_deref() == Some(path))
            .collect()
    }

    /// Fails with `why` and the strace lines about the two files.
    fn fail(&self, why: &str) -> ! {
        let relevant: Vec<&str> = self
            .traced
            .log
            .lines()
            .filter(|l| l.contains(&self.src) || l.contains(&self.dst))
            .take(60)
            .collect();
        panic!(
            "{why}\n(file of {} bytes)\n--- strace lines on {} and {} ---\n{}",
            self.size,
            self.src,
            self.dst,
            relevant.join("\n")
        );
    }
}

/// Sizes that make every case of the read count appear: empty, exact multiples of the buffer,
/// one byte more or less, and random sizes up to 2 MiB.
fn sizes() -> Vec<usize> {
    let mut rng = rand::rng();
    let k = rng.random_range(1..8);
    vec![
        0,
        rng.random_range(1..BUF),
        k * BUF,
        k * BUF + 1,
        k * BUF - 1,
        rng.random_range(BUF..2 << 20),
    ]
}

fn has_flag(flags: &str, flag: &str) -> bool {
    flags.split('|').any(|f| f.trim() == flag)
}

// Requirement 1: the copy is byte-exact (CopyRun::new checks it).
#[test]
fn copy_produces_an_identical_file() {
    for size in sizes() {
        CopyRun::new(size);
    }
}

// Requirement 2: src is opened read-only, then dst is created write-only, truncated, mode 0644.
#[test]
fn copy_opens_src_read_only_then_creates_dst_with_mode_0644() {
    let run = CopyRun::new(rand::rng().random_range(0..1 << 20));
    let (src_opens, dst_opens) = (run.opens_of(&run.src), run.opens_of(&run.dst));
    let [(src_at, src_open)] = src_opens[..] else {
        run.fail(&format!(
            "requirement 2: {} openat calls of the source, wanted exactly one",
            src_opens.len()
        ));
    };
    let [(dst_at, dst_open)] = dst_opens[..] else {
        run.fail(&format!(
            "requirement 2: {} openat calls of the destination, wanted exactly one",
            dst_opens.len()
        ));
    };
    let src_flags = src_open.args.get(2).map(String::as_str).unwrap_or("");
    if !has_flag(src_flags, "O_RDONLY") || has_flag(src_flags, "O_CREAT") {
        run.fail(&format!(
            "requirement 2: the source was opened with {src_flags}, wanted O_RDONLY (and no O_CREAT)"
        ));
    }
    let dst_flags = dst_open.args.get(2).map(String::as_str).unwrap_or("");
    for flag in ["O_WRONLY", "O_CREAT", "O_TRUNC"] {
        if !has_flag(dst_flags, flag) {
            run.fail(&format!(
                "requirement 2: the destination was opened with {dst_flags}, wanted {flag} among them"
            ));
        }
    }
    if dst_open.args.get(3).map(String::as_str) != Some("0644") {
        run.fail(&format!(
            "requirement 2: the destination was created with mode {:?}, wanted 0644 (OpenOptionsExt::mode)",
            dst_open.args.get(3)
        ));
    }
    if src_at > dst_at {
        run.fail("requirement 2: the destination was opened before the source; open the source first: when it is missing, nothing must be created");
    }
}

// Requirement 3: the source is read through one 64 KiB buffer: ceil(size / 64 KiB) + 1 reads.
#[test]
fn copy_reads_with_one_64_kib_buffer() {
    for size in sizes() {
        let run = CopyRun::new(size);
        let reads = run.calls_on("read", &run.src);
        let expected = size.div_ceil(BUF) + 1;
        if reads.len() != expected {
            run.fail(&format!(
                "requirement 3: {} reads of the source, wanted {expected} (one per 64 KiB, then one that returns 0)",
                reads.len()
            ));
        }
        if let Some((_, bad)) = reads.iter().find(|(_, c)| c.int_arg(2) != Some(BUF as i64)) {
            run.fail(&format!(
                "requirement 3: a read asked for {:?} bytes, wanted 65536: {}",
                bad.int_arg(2),
                bad.line
            ));
        }
        let total: i64 = reads.iter().filter_map(|(_, c)| c.ret_value()).sum();
        let last = reads.last().and_then(|(_, c)| c.ret_value());
        if total != size as i64 || last != Some(0) {
            run.fail(&format!(
                "requirement 3: the reads returned {total} bytes in all and the last one {last:?}; wanted {size} bytes, then 0"
            ));
        }
    }
}

// Requirement 4: each chunk read is written once: ceil(size / 64 KiB) writes of the whole file.
#[test]
fn copy_writes_each_chunk_once() {
    for size in sizes() {
        let run = CopyRun::new(size);
        let writes = run.calls_on("write", &run.dst);
        let expected = size.div_ceil(BUF);
        if writes.len() != expected {
            run.fail(&format!(
                "requirement 4: {} writes to the destination, wanted {expected} (one per chunk read)",
                writes.len()
            ));
        }
        let total: i64 = writes.iter().filter_map(|(_, c)| c.ret_value()).sum();
        if total != size as i64 {
            run.fail(&format!(
                "requirement 4: the writes add up to {total} bytes, wanted {size}"
            ));
        }
    }
}

// Requirement 5: close(src) after the last read, then fsync(dst) after the last write, then
// close(dst): each exactly once.
#[test]
fn copy_closes_src_before_fsync_and_close_of_dst() {
    for size in sizes() {
        let run = CopyRun::new(size);
        let once = |name: &str, path: &str| -> usize {
            let calls = run.calls_on(name, path);
            match calls[..] {
                [(at, _)] => at,
                _ => {
                    let hint = if name == "fsync" && !run.calls_on("fdatasync", path).is_empty() {
                        " (sync_data is fdatasync: use File::sync_all)"
                    } else if name == "close" && calls.is_empty() {
                        " (a File is closed when it is dropped; process::exit skips the drop)"
                    } else {
                        ""
                    };
                    run.fail(&format!(
                        "requirement 5: {} {name} calls on {path}, wanted exactly one{hint}",
                        calls.len()
                    ))
                }
            }
        };
        let close_src = once("close", &run.src);
        let fsync_dst = once("fsync", &run.dst);
        let close_dst = once("close", &run.dst);
        let last_read = run
            .calls_on("read", &run.src)
            .last()
            .map_or(0, |(at, _)| *at);
        let last_write = run
            .calls_on("write", &run.dst)
            .last()
            .map_or(0, |(at, _)| *at);
        if !(last_read < close_src && close_src < fsync_dst) {
            run.fail(&format!(
                "requirement 5: close(src) is call #{close_src}, after the last read #{last_read} and before fsync #{fsync_dst} is wanted: drop the source once it is read"
            ));
        }
        if !(last_write < fsync_dst && fsync_dst < close_dst) {
            run.fail(&format!(
                "requirement 5: fsync(dst) is call #{fsync_dst}, wanted after the last write #{last_write} and before close(dst) #{close_dst}"
            ));
        }
    }
}

// Requirement 6: dst is truncated: copying over a longer file leaves exactly the source.
#[test]
fn copy_overwrites_a_longer_destination() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("short.txt");
    let dst = dir.path().join("long.txt");
    let short: Vec<u8> = (0..rand::rng().random_range(1..5000))
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    fs::write(&src, &short).unwrap();
    fs::write(&dst, vec![b'#'; short.len() * 3 + BUF]).unwrap();
    let out = run(lab_bin!(), &["copy", &path(&src), &path(&dst)]);
    assert!(
        out.code() == Some(0),
        "requirement 6: copy over a longer file exited with {:?}, wanted 0; stderr: {}",
        out.code(),
        out.stderr_str()
    );
    let copied = fs::read(&dst).unwrap();
    assert!(
        copied == short,
        "requirement 6: the destination holds {} bytes after copying {} over {}; wanted exactly the source",
        copied.len(),
        short.len(),
        short.len() * 3 + BUF
    );
}

// Requirement 7: a missing source is one line on stderr naming it, exit code 1, and no file.
#[test]
fn copy_of_a_missing_source_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = path(&dir.path().join("no-such-file.bin"));
    let dst = path(&dir.path().join("copy.bin"));
    let out = run(lab_bin!(), &["copy", &src, &dst]);
    let stderr = out.stderr_str();
    assert!(
        out.code() == Some(1),
        "requirement 7: a missing source exited with {:?}, wanted 1; stderr: {stderr:?}",
        out.code()
    );
    assert!(
        !stderr.contains("panicked"),
        "requirement 7: a missing source panicked instead of reporting it: {stderr:?}"
    );
    let lines = stderr.trim_end().lines().count();
    assert!(
        lines == 1,
        "requirement 7: a missing source printed {lines} lines on stderr, wanted one: {stderr:?}"
    );
    assert!(
        stderr.contains(&src),
        "requirement 7: the error does not name the source {src}: {stderr:?}"
    );
    assert!(
        !Path::new(&dst).exists(),
        "requirement 7: the destination {dst} was created although the source is missing: open the source first"
    );
}

#[test]
fn copy_into_a_missing_directory_names_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let src = path(&dir.path().join("source.txt"));
    fs::write(&src, b"some bytes\n").unwrap();
    let dst = path(&dir.path().join("no-such-dir").join("copy.txt"));
    let out = run(lab_bin!(), &["copy", &src, &dst]);
    let stderr = out.stderr_str();
    assert!(
        out.code() == Some(1),
        "requirement 7: a destination in a missing directory exited with {:?}, wanted 1; stderr: {stderr:?}",
        out.code()
    );
    assert!(
        !stderr.contains("panicked"),
        "requirement 7: a destination in a missing directory panicked: {stderr:?}"
    );
    assert!(
        stderr.contains(&dst),
        "requirement 7: the error does not name the destination {dst}: {stderr:?}"
    );
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `line 1\n` .. `line n\n`.
fn expected_lines(n: u64) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

/// Runs `lines n [--buffered]` under strace and returns the writes to stdout.
fn traced_lines(n: u64, buffered: bool) -> (Traced, usize) {
    labkit::sys::require_strace();
    let n_arg = n.to_string();
    let mut args = vec!["lines", n_arg.as_str()];
    if buffered {
        args.push("--buffered");
    }
    let traced = trace(lab_bin!(), &args, &["write"]);
    let out = &traced.output;
    assert!(
        out.code() == Some(0),
        "requirement 8: `lines {n}` exited with {:?}, wanted 0; stderr: {}",
        out.code(),
        out.stderr_str()
    );
    assert!(
        out.stdout_str() == expected_lines(n),
        "requirement 8: `lines {n}` prints `line 1` .. `line {n}`, one per line; got {} bytes starting {:?}",
        out.stdout.len(),
        out.stdout_str().chars().take(40).collect::<String>()
    );
    let writes = traced
        .named("write")
        .filter(|c| c.int_arg(0) == Some(1))
        .count();
    (traced, writes)
}

// Requirement 8: `lines n` prints line 1 .. line n, buffered or not.
#[test]
fn lines_prints_numbered_lines() {
    let n = rand::rng().random_range(1..3000);
    for buffered in [false, true] {
        let mut args = vec!["lines".to_string(), n.to_string()];
        if buffered {
            args.push("--buffered".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(lab_bin!(), &args);
        assert!(
            out.code() == Some(0),
            "requirement 8: {args:?} exited with {:?}, wanted 0; stderr: {}",
            out.code(),
            out.stderr_str()
        );
        let want = expected_lines(n);
        assert!(
            out.stdout_str() == want,
            "requirement 8: {args:?} printed {} bytes, wanted {} (`line 1` .. `line {n}`); first bytes {:?}",
            out.stdout.len(),
            want.len(),
            out.stdout_str().chars().take(40).collect::<String>()
        );
    }
    // The command line around it: --help on stdout, a bad command line in one line on stderr.
    let out = run(lab_bin!(), &["--help"]);
    assert!(
        out.code() == Some(0) && out.stdout_str().to_lowercase().contains("usage"),
        "requirement 8: --help exited with {:?}, wanted 0 and the usage on stdout; stdout: {:?}",
        out.code(),
        out.stdout_str()
    );
    let cases: [&[&str]; 4] = [&[], &["lines", "many"], &["copy", "only-one"], &["bogus"]];
    for args in cases {
        let out = run(lab_bin!(), args);
        let stderr = out.stderr_str();
        assert!(
            out.code() == Some(2) && stderr.trim_end().lines().count() == 1,
            "requirement 8: {args:?} exited with {:?} and {} lines on stderr, wanted exit 2 and one line: {stderr:?}",
            out.code(),
            stderr.trim_end().lines().count()
        );
    }
}

// Requirement 9: unbuffered, each line is one write(2) to stdout.
#[test]
fn unbuffered_lines_make_one_write_per_line() {
    let n = rand::rng().random_range(1000..3000);
    let (traced, writes) = traced_lines(n, false);
    assert!(
        writes == n as usize,
        "requirement 9: `lines {n}` made {writes} writes to stdout, wanted one per line ({n}); strace log starts:\n{}",
        traced.log.lines().take(10).collect::<Vec<_>>().join("\n")
    );
}

// Requirement 10: buffered, at least 10 times fewer writes than lines.
#[test]
fn buffered_lines_cut_writes_by_at_least_10x() {
    let n = rand::rng().random_range(2000..6000);
    let (_, unbuffered) = traced_lines(n, false);
    let (_, buffered) = traced_lines(n, true);
    assert!(
        buffered > 0 && buffered * 10 <= unbuffered,
        "requirement 10: `lines {n} --buffered` made {buffered} writes, unbuffered {unbuffered}; wanted at least 10x fewer: wrap stdout in a BufWriter"
    );
}
