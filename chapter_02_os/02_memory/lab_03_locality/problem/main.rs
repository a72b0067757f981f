//! Locality: the same number of memory accesses can cost 1 ns or 100 ns each.
//!
//! Make the caches, the TLB and page faults visible: a matrix summed along rows and along
//! columns, a pointer chase over working sets from 4 KiB to 256 MiB (plotted as an SVG), and the
//! minor page faults of touching fresh memory. Read README.md for the requirements;
//! `cargo lab test 2.3` grades this file.
//!
//! The grader calls the functions below; `cache_sizes` and `human_bytes` are given. Remove the
//! `allow` once every argument is used.
#![allow(unused_variables)]

use std::fs;
use std::io;
use std::process::ExitCode;

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

fn main() -> ExitCode {
    todo!(
        "parse --max-kib N --matrix N --pages N --svg PATH; print the three tables; write the SVG"
    )
}
