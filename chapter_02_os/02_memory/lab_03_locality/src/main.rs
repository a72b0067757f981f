//! ## Goal
//! Two loops that read the same numbers can differ in speed by 10x or more, because the CPU never
//! reads one number from memory: it moves 64-byte cache lines through L1, L2 and L3, and translates
//! every address through the TLB. In this lab you make those layers show up as numbers and as a
//! plot. You sum a matrix along its rows and along its columns, chase pointers through working sets
//! from 4 KiB to 256 MiB until the latency steps up at each cache size, and count the page faults
//! the kernel takes when you first touch fresh memory.
//!
//! ## Requirements
//! 1. `sum_row_major(m, n)` and `sum_column_major(m, n)` return the wrapping sum of an `n` x `n`
//!    matrix stored row after row, walking along the rows and down the columns. On a 32 MiB matrix
//!    the row-major walk is at least 2x faster.
//! 2. `build_chase(lines)` links `lines` 64-byte `Line`s into one random cycle (following `next`
//!    from line 0 visits every line once and comes back to 0); `chase(lines, steps)` follows `next`
//!    `steps` times from line 0 and returns where it stops; `ns_per_access(bytes, steps)` returns
//!    the time per hop over a working set of `bytes` (the best of 3 runs, after a warm-up lap). A
//!    chase through 64 MiB is at least 3x slower per hop than through 16 KiB.
//! 3. `minor_faults()` returns the calling thread's minor page faults (`getrusage(RUSAGE_THREAD)`;
//!    faults taken by other threads meanwhile do not count).
//!    `faults_while_touching(pages, prefault)` maps `pages` fresh anonymous pages, prepares them
//!    (`Nothing`, `Populate` with `MAP_POPULATE`, or `TouchFirst`), writes one byte per page and
//!    returns the faults of that pass: about `pages` for `Nothing`, about 0 for the other two (whose
//!    faults happen before, on the same thread). `pages == 0` or an impossible size is an
//!    `InvalidInput` error.
//! 4. `render_svg(points, caches)` returns a well-formed SVG document with numeric `width` and
//!    `height`, exactly one `<polyline>` with one `x,y` pair per point in the order given, on the
//!    canvas; bigger working sets further right, bigger latencies higher up; and each cache in the
//!    plotted range marked with its name.
//! 5. The program (`--max-kib N` default 262144, `--matrix N` default 4096, `--pages N` default
//!    25600, `--svg PATH` default `locality.svg`) prints the matrix timings, one table row per
//!    working-set size starting with the size (`4 KiB`, `8 KiB`, ... up to `--max-kib`), the page
//!    fault counts, and writes the SVG.
//! 6. A bad argument (unknown option, missing or non-numeric value, 0, `--max-kib` below 4) prints
//!    the usage on stderr and exits with code 2.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 2.3    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `sum_row_major(m, n)` and `sum_column_major(m, n)` return the wrapping sum
//!   of an `n` x `n` matrix stored row after row, walking along the rows and down the columns
//! - [ ] Requirement 2: `build_chase(lines)` links `lines` 64-byte `Line`s into one random cycle
//!   (following `next` from line 0 visits every line once and comes back to 0); `chase(lines,
//!   steps)` follows `next` `steps` times from line 0 and returns where it stops;
//!   `ns_per_access(bytes, steps)` returns the time per hop over a working set of `bytes` (the best
//!   of 3 runs, after a warm-up lap)
//! - [ ] Requirement 3: `minor_faults()` returns the calling thread's minor page faults
//!   (`getrusage(RUSAGE_THREAD)`; faults taken by other threads meanwhile do not count)
//! - [ ] Requirement 4: `render_svg(points, caches)` returns a well-formed SVG document with
//!   numeric `width` and `height`, exactly one `<polyline>` with one `x,y` pair per point in the
//!   order given, on the canvas; bigger working sets further right, bigger latencies higher up; and
//!   each cache in the plotted range marked with its name
//! - [ ] Requirement 5: The program (`--max-kib N` default 262144, `--matrix N` default 4096,
//!   `--pages N` default 25600, `--svg PATH` default `locality.svg`) prints the matrix timings, one
//!   table row per working-set size starting with the size (`4 KiB`, `8 KiB`,
//! - [ ] Requirement 6: A bad argument (unknown option, missing or non-numeric value, 0,
//!   `--max-kib` below 4) prints the usage on stderr and exits with code 2
//!
//! ## Notes
//!
//! Locality: the same number of memory accesses can cost 1 ns or 100 ns each.
//!
//! Make the caches, the TLB and page faults visible: a matrix summed along rows and along
//! columns, a pointer chase over working sets from 4 KiB to 256 MiB (plotted as an SVG), and the
//! minor page faults of touching fresh memory. Read README.md for the requirements;
//! `cargo lab test 2.3` grades this file.
//!
//! The grader calls the functions below; `cache_sizes`, `human_bytes` and the command line
//! (`Args`) are given. Remove the `allow` once every argument is used.
#![allow(unused_variables)]

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::RangedU64ValueParser;
use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser};

/// One cache line: 64 bytes, aligned to 64, so every hop of the chase lands on a new line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Line {
    /// Index of the next line to visit.
    pub next: usize,
}

/// Bytes in one `Line`.
pub const LINE_BYTES: usize = std::mem::size_of::<Line>();

/// One point of the plot: the working-set size and the measured latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub bytes: usize,
    pub ns: f64,
}

/// A cache of the CPU, as Linux describes it in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// "L1d", "L2", "L3"...
    pub name: String,
    pub bytes: usize,
}

/// How the pages of a fresh mapping are prepared before the counted pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefault {
    /// Nothing: every page is faulted in by the counted pass.
    Nothing,
    /// `mmap(.., MAP_POPULATE)`: the kernel maps every page inside the `mmap` call.
    Populate,
    /// One write per page before counting: the counted pass touches pages already mapped.
    TouchFirst,
}

/// Wrapping sum of an `n` x `n` matrix stored row after row (`m[row * n + col]`), walking
/// along the rows. `m.len()` must be `n * n`.
pub fn sum_row_major(m: &[u64], n: usize) -> u64 {
    todo!("sum the rows one after the other")
}

/// The same wrapping sum, walking down the columns: consecutive reads are `n * 8` bytes apart.
pub fn sum_column_major(m: &[u64], n: usize) -> u64 {
    todo!("sum column 0 top to bottom, then column 1...")
}

/// `lines` cache lines linked into ONE cycle in a random order: following `next` from any line
/// visits every line exactly once before coming back (hint: Sattolo's shuffle).
pub fn build_chase(lines: usize) -> Vec<Line> {
    todo!("a random cyclic permutation stored in the `next` fields")
}

/// Follows `next` `steps` times from line 0 and returns the index reached.
pub fn chase(lines: &[Line], steps: usize) -> usize {
    todo!("at = lines[at].next, `steps` times")
}

/// Nanoseconds per hop of a chase over a working set of `bytes` (at least one line): the best
/// (lowest) of 3 timed runs of `steps` hops, after one warm-up lap around the cycle.
pub fn ns_per_access(bytes: usize, steps: usize) -> f64 {
    todo!("build a chase of bytes / 64 lines, warm it up, time `steps` hops")
}

/// Minor page faults of the calling thread so far: `getrusage(RUSAGE_THREAD)`, `ru_minflt`.
pub fn minor_faults() -> u64 {
    todo!("libc::getrusage(libc::RUSAGE_THREAD, ..)")
}

/// Maps `pages` fresh anonymous pages (`libc::mmap`, with `MAP_POPULATE` for
/// `Prefault::Populate`), prepares them as `prefault` says, then writes one byte per page and
/// returns how many minor faults that pass cost. Unmaps before returning. `pages == 0` is an
/// `InvalidInput` error.
pub fn faults_while_touching(pages: usize, prefault: Prefault) -> io::Result<u64> {
    todo!("mmap, madvise(MADV_NOHUGEPAGE), prefault, count faults around one write per page")
}

/// An SVG line chart (`<svg xmlns="http://www.w3.org/2000/svg" width=".." height="..">`) of
/// ns/access against working-set size, both on log scales: ONE `<polyline points="x,y x,y ..">`
/// through the points in the order given (bigger sizes further right, bigger latencies higher
/// up), plus a labelled vertical line for each cache whose size lies in the plotted range.
pub fn render_svg(points: &[Point], caches: &[Cache]) -> String {
    todo!("axes, labels, one polyline, one marker per cache")
}

/// The data and unified caches of CPU 0, from `/sys/devices/system/cpu/cpu0/cache`; empty where
/// sysfs does not say.
pub fn cache_sizes() -> Vec<Cache> {
    let mut caches = Vec::new();
    for index in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
        let read =
            |file: &str| fs::read_to_string(format!("{dir}/{file}")).map(|s| s.trim().to_string());
        let (Ok(level), Ok(kind), Ok(size)) = (read("level"), read("type"), read("size")) else {
            continue;
        };
        let bytes = match size.strip_suffix('K').map(str::parse::<usize>) {
            Some(Ok(kib)) => kib * 1024,
            _ => continue,
        };
        match kind.as_str() {
            "Data" => caches.push(Cache {
                name: format!("L{level}d"),
                bytes,
            }),
            "Unified" => caches.push(Cache {
                name: format!("L{level}"),
                bytes,
            }),
            _ => {} // instruction caches do not hold our data
        }
    }
    caches
}

/// A size in bytes as "4 KiB", "1 MiB", "256 MiB".
pub fn human_bytes(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// What the command line asks for (given).
#[allow(dead_code)] // main() parses it: Args::parse_with_usage()
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "ch2_locality",
    bin_name = "ch2_locality",
    about = "Shows the caches, the TLB and page faults: a matrix summed two ways, a pointer \
             chase over growing working sets (plotted as an SVG), the faults of fresh memory"
)]
pub struct Args {
    /// Largest working set of the pointer chase, in KiB (at least 4)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 256 * 1024,
        value_parser = RangedU64ValueParser::<usize>::new().range(4..)
    )]
    pub max_kib: usize,
    /// Side of the square matrix of u64 summed along its rows and its columns
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4096,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub matrix: usize,
    /// Fresh 4 KiB pages touched for the page-fault counts
    #[arg(
        long,
        value_name = "N",
        default_value_t = 25_600,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub pages: usize,
    /// Where to write the plot
    #[arg(long, value_name = "PATH", default_value = "locality.svg")]
    pub svg: PathBuf,
}

#[allow(dead_code)] // main() calls it
impl Args {
    /// `Args::parse()`, with the usage on stderr after every bad argument: clap prints it after
    /// an unknown option, not after a bad value. Exits 0 after `--help`, 2 after an error.
    pub fn parse_with_usage() -> Args {
        Args::try_parse().unwrap_or_else(|mut e| {
            if e.use_stderr() && e.get(ContextKind::Usage).is_none() {
                let usage = Args::command().render_usage();
                e.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
            }
            e.exit()
        })
    }
}

fn main() -> ExitCode {
    todo!(
        "Args::parse_with_usage(); print the matrix timings, the chase table and the page faults; \
         write the SVG"
    )
}
