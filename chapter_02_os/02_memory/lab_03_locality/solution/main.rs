//! Locality: the same number of memory accesses can cost 1 ns or 100 ns each.
//!
//! The CPU never reads one byte from memory: it moves 64-byte *cache lines* into a hierarchy of
//! caches (L1, L2, L3), each bigger and slower than the one before, and translates every virtual
//! address through the TLB, a small cache of page-table entries. This program makes each level
//! visible:
//!
//! - **Row-major vs column-major.** Summing a matrix along its rows uses all 8 `u64` of every
//!   line it loads, in an order the hardware prefetcher predicts. Summing along its columns uses
//!   one `u64` per line and jumps a whole row ahead each time.
//! - **A pointer chase over growing working sets.** Each load gives the address of the next one,
//!   in a random order, so neither the out-of-order core nor the prefetcher can start a load
//!   early: the time per hop is the latency of whichever level holds the working set. It steps
//!   up as the working set outgrows L1, L2, L3 (and the TLB's reach).
//! - **Page faults.** A fresh anonymous mapping has no physical memory behind it; the first
//!   write to each page traps into the kernel (a *minor* fault), which finds a zeroed page and
//!   maps it. `getrusage` counts them; `MAP_POPULATE` pays them all up front inside `mmap`.

use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use clap::builder::RangedU64ValueParser;
use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser};
use rand::RngExt;

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

/// Wrapping sum of an `n` x `n` matrix stored row after row, walking along the rows.
pub fn sum_row_major(m: &[u64], n: usize) -> u64 {
    assert_eq!(m.len(), n * n, "the matrix must have n * n elements");
    let mut sum = 0u64;
    for row in m.chunks_exact(n) {
        for &x in row {
            sum = sum.wrapping_add(x);
        }
    }
    sum
}

/// The same sum walking down the columns: consecutive reads are `n * 8` bytes apart.
pub fn sum_column_major(m: &[u64], n: usize) -> u64 {
    assert_eq!(m.len(), n * n, "the matrix must have n * n elements");
    let mut sum = 0u64;
    for col in 0..n {
        for row in 0..n {
            sum = sum.wrapping_add(m[row * n + col]);
        }
    }
    sum
}

/// `lines` cache lines linked into ONE cycle in a random order (Sattolo's shuffle): following
/// `next` from any line visits every line once before coming back.
pub fn build_chase(lines: usize) -> Vec<Line> {
    // Start from the identity, then shuffle it into a random cyclic permutation: swapping each
    // position with a strictly earlier one (never itself) yields a single cycle.
    let mut order: Vec<usize> = (0..lines).collect();
    let mut rng = rand::rng();
    for i in (1..lines).rev() {
        let j = rng.random_range(0..i);
        order.swap(i, j);
    }
    let mut chase = vec![Line { next: 0 }; lines];
    for (i, line) in chase.iter_mut().enumerate() {
        line.next = order[i];
    }
    chase
}

/// Follows `next` `steps` times from line 0 and returns the index reached. Each load depends on
/// the previous one, so the loop runs at the speed of memory latency.
pub fn chase(lines: &[Line], steps: usize) -> usize {
    let mut at = 0;
    for _ in 0..steps {
        at = lines[at].next;
    }
    at
}

/// Nanoseconds per hop of a chase over a working set of `bytes` (at least one line): the best
/// of 3 timed runs of `steps` hops, after a warm-up lap.
pub fn ns_per_access(bytes: usize, steps: usize) -> f64 {
    let lines = build_chase((bytes / LINE_BYTES).max(1));
    // One lap first: it faults the pages in and loads what fits into the caches, so we measure
    // the steady state, not the first touch.
    black_box(chase(&lines, lines.len()));
    // The best run is the one that other programs and interrupts disturbed least.
    (0..3)
        .map(|_| {
            let start = Instant::now();
            black_box(chase(black_box(&lines), steps));
            start.elapsed().as_nanos() as f64 / steps.max(1) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Minor page faults of the calling thread so far (`getrusage(RUSAGE_THREAD)`): per thread, so
/// other threads faulting meanwhile do not count.
pub fn minor_faults() -> u64 {
    // SAFETY: all zeroes is a valid `rusage`; getrusage only fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only to `usage`, a live local. It cannot fail with these
    // arguments.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_minflt as u64
}

/// Maps `pages` fresh anonymous pages, prepares them as `prefault` says, then writes one byte
/// per page and returns how many minor faults that pass cost.
pub fn faults_while_touching(pages: usize, prefault: Prefault) -> io::Result<u64> {
    let page = page_size();
    let len = pages
        .checked_mul(page)
        .filter(|&len| pages > 0 && len <= isize::MAX as usize)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad number of pages"))?;
    let populate = prefault == Prefault::Populate;
    let mapping = Mapping::new(len, populate)?;
    if prefault == Prefault::TouchFirst {
        mapping.touch_every(page);
    }
    let before = minor_faults();
    mapping.touch_every(page);
    Ok(minor_faults() - before)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

/// An anonymous private mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize, populate: bool) -> io::Result<Mapping> {
        let flags =
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | if populate { libc::MAP_POPULATE } else { 0 };
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a new anonymous mapping chosen by the kernel overlaps nothing we own.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // With transparent huge pages one fault can map 2 MiB (512 pages) at once. Ask for
        // plain 4 KiB pages so that one fault is one page; a kernel without THP says EINVAL,
        // which changes nothing.
        // SAFETY: advice on a range we just mapped.
        unsafe { libc::madvise(ptr, len, libc::MADV_NOHUGEPAGE) };
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }

    /// Writes one byte in every page.
    fn touch_every(&self, page: usize) {
        for offset in (0..self.len).step_by(page) {
            // SAFETY: offset < len, inside the mapping, which is readable and writable. The
            // volatile write cannot be optimized away, so every page is really touched.
            unsafe { self.ptr.as_ptr().add(offset).write_volatile(1) };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we unmap exactly the range we mapped, and nothing borrows it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG line chart of ns/access (log scale, upward) against working-set size (log scale, to
/// the right), one `<polyline>` through the points in the order given, one dashed vertical
/// line per cache whose size lies in the plotted range.
pub fn render_svg(points: &[Point], caches: &[Cache]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 420.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 40.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 50.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">Latency of one dependent load vs working-set size</text>"#,
        W / 2.0
    );
    if points.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">no data</text>"#,
            W / 2.0,
            H / 2.0
        );
        svg.push_str("</svg>\n");
        return svg;
    }

    // Both axes are logarithmic: sizes double at each step, latencies span two decades.
    let lg = |b: usize| (b.max(1) as f64).log2();
    let (x_min, x_max) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(lg(p.bytes)), hi.max(lg(p.bytes)))
    });
    let ns = |v: f64| v.max(0.01).log10();
    let (y_lo, y_hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(ns(p.ns)), hi.max(ns(p.ns)))
    });
    let (y_min, y_max) = (y_lo.floor(), y_hi.ceil().max(y_lo.floor() + 1.0));
    let x_of = |bytes: usize| {
        if x_max > x_min {
            LEFT + (lg(bytes) - x_min) / (x_max - x_min) * (W - LEFT - RIGHT)
        } else {
            (LEFT + W - RIGHT) / 2.0
        }
    };
    let y_of = |v: f64| H - BOTTOM - (ns(v) - y_min) / (y_max - y_min) * (H - TOP - BOTTOM);

    // Axes, a grid line per decade of latency, a label per power of 4 of size.
    let _ = writeln!(
        svg,
        r#"<path d="M{LEFT} {TOP} V{} H{}" fill="none" stroke="black"/>"#,
        H - BOTTOM,
        W - RIGHT
    );
    for decade in y_min as i32..=y_max as i32 {
        let value = 10f64.powi(decade);
        let y = y_of(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/>"##,
            W - RIGHT
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{value} ns</text>"#,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for power in (x_min.ceil() as u32..=x_max.floor() as u32).filter(|p| p % 2 == 0) {
        let bytes = 1usize << power;
        let x = x_of(bytes);
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            H - BOTTOM + 18.0,
            human_bytes(bytes)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">ns per access</text>"#,
        (TOP + H - BOTTOM) / 2.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">working set</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 8.0
    );

    // A marker per cache whose size falls inside the measured range.
    let smallest = points.iter().map(|p| p.bytes).min().unwrap_or(0);
    let largest = points.iter().map(|p| p.bytes).max().unwrap_or(0);
    for cache in caches
        .iter()
        .filter(|c| (smallest..=largest).contains(&c.bytes))
    {
        let x = x_of(cache.bytes);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="#c33" stroke-dasharray="4 4"/>"##,
            H - BOTTOM
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{}" fill="#c33">{}</text>"##,
            x + 4.0,
            TOP + 14.0,
            escape(&cache.name)
        );
    }

    let coords: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x_of(p.bytes), y_of(p.ns)))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f5fbf" stroke-width="2"/>"##,
        coords.join(" ")
    );
    for p in points {
        let _ = writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f5fbf"/>"##,
            x_of(p.bytes),
            y_of(p.ns)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// What the command line asks for.
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

fn time(f: impl FnOnce() -> u64) -> Duration {
    let start = Instant::now();
    black_box(f());
    start.elapsed()
}

fn run(args: &Args) -> io::Result<()> {
    let caches = cache_sizes();
    let described: Vec<String> = caches
        .iter()
        .map(|c| format!("{} {}", c.name, human_bytes(c.bytes)))
        .collect();
    println!(
        "caches of cpu0 (sysfs): {}",
        if described.is_empty() {
            "unknown".into()
        } else {
            described.join(", ")
        }
    );

    let n = args.matrix;
    let matrix: Vec<u64> = (0..n * n).map(|i| i as u64).collect();
    let row = time(|| sum_row_major(&matrix, n));
    let col = time(|| sum_column_major(&matrix, n));
    let per = |d: Duration| d.as_nanos() as f64 / (n * n) as f64;
    println!(
        "\nsum of a {n} x {n} u64 matrix ({})",
        human_bytes(n * n * 8)
    );
    println!(
        "  row-major    {:>10.2} ms  {:>6.2} ns/element",
        row.as_secs_f64() * 1e3,
        per(row)
    );
    println!(
        "  column-major {:>10.2} ms  {:>6.2} ns/element  ({:.1}x slower)",
        col.as_secs_f64() * 1e3,
        per(col),
        col.as_secs_f64() / row.as_secs_f64()
    );
    drop(matrix);

    const STEPS: usize = 1 << 21;
    println!("\nrandom pointer chase, one 64-byte line per hop, best of 3 runs of {STEPS} hops");
    println!("{:>12}  {:>10}", "working set", "ns/access");
    let mut points = Vec::new();
    let mut bytes = 4 * 1024;
    while bytes <= args.max_kib * 1024 {
        let ns = ns_per_access(bytes, STEPS);
        println!("{:>12}  {ns:>10.2}", human_bytes(bytes));
        points.push(Point { bytes, ns });
        bytes *= 2;
    }
    fs::write(&args.svg, render_svg(&points, &caches))?;
    println!("plot written to {}", args.svg.display());

    let pages = args.pages;
    println!(
        "\nminor page faults (getrusage) while writing one byte in each of {pages} fresh pages"
    );
    for (what, prefault) in [
        ("fresh mmap", Prefault::Nothing),
        ("mmap with MAP_POPULATE", Prefault::Populate),
        ("pages touched once before", Prefault::TouchFirst),
    ] {
        println!(
            "  {what:<28} {:>8}",
            faults_while_touching(pages, prefault)?
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse_with_usage();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch2_locality: {e}");
            ExitCode::FAILURE
        }
    }
}
