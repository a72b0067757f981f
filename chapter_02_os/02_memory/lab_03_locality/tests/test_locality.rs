//! Grader for Locality: sums, the chase's structure, page faults and the SVG.

use std::collections::HashSet;

use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{Cache, Line, Point, Prefault};

fn random_matrix(n: usize) -> Vec<u64> {
    let mut rng = rand::rng();
    (0..n * n).map(|_| rng.random()).collect()
}

fn oracle_sum(m: &[u64]) -> u64 {
    m.iter().fold(0, |a, &b| a.wrapping_add(b))
}

// Requirement 1: both traversals compute the same (wrapping) sum.
#[test]
fn row_and_column_sums_agree_with_the_plain_sum() {
    for n in [1, 2, 7, rand::rng().random_range(20..200)] {
        let m = random_matrix(n);
        let want = oracle_sum(&m);
        let row = lab::sum_row_major(&m, n);
        assert!(
            row == want,
            "requirement 1: sum_row_major of a random {n} x {n} matrix returned {row}; wanted \
             {want} (the wrapping sum)"
        );
        let column = lab::sum_column_major(&m, n);
        assert!(
            column == want,
            "requirement 1: sum_column_major of a random {n} x {n} matrix returned {column}; \
             wanted {want} (the wrapping sum)"
        );
    }
}

// Requirement 2: the chase is one random cycle through every line.
#[test]
fn a_chase_is_one_cycle_through_every_line() {
    let (size, align) = (std::mem::size_of::<Line>(), std::mem::align_of::<Line>());
    assert!(
        size == 64 && align == 64,
        "requirement 2: a Line has size {size} and alignment {align}; wanted one 64-byte cache \
         line starting on a line boundary (64 and 64)"
    );
    for lines in [1, 2, 3, rand::rng().random_range(1_000..5_000)] {
        let chase = lab::build_chase(lines);
        assert!(
            chase.len() == lines,
            "requirement 2: build_chase({lines}) returned {} lines; wanted {lines}",
            chase.len()
        );
        let mut seen = HashSet::new();
        let mut at = 0;
        for _ in 0..lines {
            assert!(
                seen.insert(at),
                "requirement 2: in a chase of {lines} lines, line {at} came back after {} hops \
                 from line 0; wanted one cycle through all {lines} (Sattolo's shuffle, not \
                 Fisher-Yates, which leaves several shorter cycles)",
                seen.len()
            );
            at = chase[at].next;
            assert!(
                at < lines,
                "requirement 2: in a chase of {lines} lines, next = {at} is out of bounds"
            );
        }
        assert!(
            at == 0,
            "requirement 2: after {lines} hops through {lines} lines the chase is at line {at}; \
             wanted it back at 0"
        );
    }
}

#[test]
fn a_chase_is_shuffled() {
    let lines = 4096;
    let chase = lab::build_chase(lines);
    let sequential = chase
        .iter()
        .enumerate()
        .filter(|(i, l)| l.next == (i + 1) % lines)
        .count();
    assert!(
        sequential < lines / 10,
        "requirement 2: {sequential} of {lines} hops go to the next line; wanted a random \
         order (fewer than {}), which the prefetcher cannot predict",
        lines / 10
    );
    let again = lab::build_chase(lines);
    assert!(
        chase != again,
        "requirement 2: two chases of {lines} lines are identical; wanted a fresh random order \
         each time"
    );
}

#[test]
fn chase_follows_next_pointers() {
    let lines = rand::rng().random_range(100..1_000);
    let chase = lab::build_chase(lines);
    for steps in [0, 1, 2, lines - 1, lines, 3 * lines + 17] {
        let mut at = 0;
        for _ in 0..steps {
            at = chase[at].next;
        }
        let got = lab::chase(&chase, steps);
        assert!(
            got == at,
            "requirement 2: chase(lines, {steps}) stopped at line {got}; following next {steps} \
             times from 0 reaches {at}"
        );
    }
}

#[test]
fn ns_per_access_is_a_positive_latency() {
    for bytes in [64, 4096, 64 * 1024] {
        let ns = lab::ns_per_access(bytes, 1 << 16);
        assert!(
            ns.is_finite() && ns > 0.0 && ns < 1e5,
            "requirement 2: ns_per_access({bytes}, 65536) returned {ns}; wanted a latency above \
             0 and below 100 µs"
        );
    }
}

// Requirement 3: page faults, counted per thread with getrusage.
fn pages() -> usize {
    rand::rng().random_range(1_000..4_000)
}

/// Maps `n` fresh 4 KiB pages, writes one byte in each (one minor fault per page, on the
/// calling thread), and unmaps them: the grader's own fault maker, independent of the lab.
fn fault_in_fresh_pages(n: usize) {
    let len = n * 4096;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a fresh anonymous mapping overlaps nothing.
    let memory = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
    assert!(memory != libc::MAP_FAILED, "the grader's own mmap failed");
    // SAFETY: advice on the range just mapped (4 KiB pages, so one fault per page).
    unsafe { libc::madvise(memory, len, libc::MADV_NOHUGEPAGE) };
    for offset in (0..len).step_by(4096) {
        // SAFETY: inside the writable mapping.
        unsafe { memory.cast::<u8>().add(offset).write_volatile(1) };
    }
    // SAFETY: unmapping exactly what was mapped; nothing refers to it any more.
    unsafe { libc::munmap(memory, len) };
}

#[test]
fn minor_faults_counts_this_threads_faults() {
    let n = pages();
    let before = lab::minor_faults();
    fault_in_fresh_pages(n);
    let faults = lab::minor_faults() - before;
    assert!(
        faults >= n as u64 / 2 && faults <= 2 * n as u64 + 8,
        "requirement 3: writing {n} fresh pages made {faults} minor faults by minor_faults(); \
         wanted about {n}"
    );
}

#[test]
fn minor_faults_ignores_other_threads() {
    let n = pages();
    let before = lab::minor_faults();
    // Another thread faults n fresh pages in; this thread only waits for it.
    std::thread::spawn(move || fault_in_fresh_pages(n))
        .join()
        .expect("the faulting thread");
    let counted = lab::minor_faults() - before;
    assert!(
        counted < n as u64 / 4,
        "requirement 3: while another thread faulted {n} pages in, minor_faults() on this \
         thread went up by {counted}; wanted only this thread's faults (RUSAGE_THREAD, not \
         RUSAGE_SELF, which counts the whole process)"
    );
}

#[test]
fn touching_n_fresh_pages_costs_n_minor_faults() {
    let n = pages();
    let outer = lab::minor_faults();
    let faults = lab::faults_while_touching(n, Prefault::Nothing).expect(
        "requirement 3: faults_while_touching of a valid number of pages returned an error",
    );
    let outer = lab::minor_faults() - outer;
    let slack = n as u64 / 20 + 8;
    assert!(
        faults + slack >= n as u64 && faults <= n as u64 + slack,
        "requirement 3: faults_while_touching({n}, Nothing) returned {faults}; wanted about \
         {n}, one per fresh page"
    );
    assert!(
        outer >= faults,
        "requirement 3: faults_while_touching reported {faults} faults, but the thread's own \
         counter saw only {outer}"
    );
}

#[test]
fn populated_pages_do_not_fault_when_touched() {
    let n = pages();
    let outer = lab::minor_faults();
    let faults = lab::faults_while_touching(n, Prefault::Populate).expect(
        "requirement 3: faults_while_touching of a valid number of pages returned an error",
    );
    let outer = lab::minor_faults() - outer;
    assert!(
        faults <= 8 + n as u64 / 100,
        "requirement 3: faults_while_touching({n}, Populate) returned {faults}; wanted about \
         0 (MAP_POPULATE maps the pages inside mmap, before the counted pass)"
    );
    // The kernel still had to map every page: inside mmap, on this thread's account.
    assert!(
        outer + 8 >= n as u64,
        "requirement 3: the whole call made {outer} faults on this thread; wanted about {n} \
         (MAP_POPULATE still maps every page, inside mmap)"
    );
}

#[test]
fn pages_touched_before_do_not_fault_again() {
    let n = pages();
    let outer = lab::minor_faults();
    let faults = lab::faults_while_touching(n, Prefault::TouchFirst).expect(
        "requirement 3: faults_while_touching of a valid number of pages returned an error",
    );
    let outer = lab::minor_faults() - outer;
    assert!(
        faults <= 8 + n as u64 / 100,
        "requirement 3: faults_while_touching({n}, TouchFirst) returned {faults}; wanted about \
         0 (the pages were mapped by the first pass, before counting)"
    );
    assert!(
        outer + 8 >= n as u64,
        "requirement 3: the whole call made {outer} faults on this thread; wanted about {n} \
         (the first touch faults every page in)"
    );
}

#[test]
fn zero_pages_is_an_invalid_input_error() {
    for pages in [0, usize::MAX / 2] {
        let got = lab::faults_while_touching(pages, Prefault::Nothing);
        assert!(
            matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::InvalidInput),
            "requirement 3: faults_while_touching({pages}, Nothing) returned {got:?}; wanted an \
             InvalidInput error"
        );
    }
}

// Requirement 4: the SVG plot.
/// Checks that the tags nest properly and returns the names of the elements.
fn check_well_formed(svg: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .expect("requirement 4: the SVG has a `<` never closed by `>`")
            + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop();
            assert!(
                open.as_deref() == Some(name.trim()),
                "requirement 4: the SVG closes </{name}> where {open:?} is open; wanted \
                 well-nested tags"
            );
            continue;
        }
        let name = tag
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        elements.push(name.clone());
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    assert!(
        stack.is_empty(),
        "requirement 4: the SVG leaves elements {stack:?} unclosed"
    );
    elements
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// The (x, y) pairs of the one polyline.
fn polyline(svg: &str) -> Vec<(f64, f64)> {
    let count = svg.matches("<polyline").count();
    assert!(
        count == 1,
        "requirement 4: the SVG has {count} <polyline> elements; wanted exactly one"
    );
    let start = svg.find("<polyline").unwrap();
    let tag = &svg[start..start + svg[start..].find('>').unwrap()];
    let points = attribute(tag, "points")
        .unwrap_or_else(|| panic!("requirement 4: the <polyline> has no points=\"...\": {tag}"));
    points
        .split_whitespace()
        .map(|pair| {
            let xy = pair
                .split_once(',')
                .and_then(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)));
            xy.unwrap_or_else(|| {
                panic!("requirement 4: polyline point {pair:?} is not two numbers `x,y`")
            })
        })
        .collect()
}

#[test]
fn svg_plots_one_polyline_point_per_measurement() {
    let mut rng = rand::rng();
    let n = rng.random_range(5..17);
    let points: Vec<Point> = (0..n)
        .map(|i| Point {
            bytes: 4096 << i,
            ns: rng.random_range(0.5..300.0),
        })
        .collect();
    // Both inside the plotted range (4 KiB to at least 64 KiB).
    let caches = [
        Cache {
            name: "L1d".into(),
            bytes: 8 << 10,
        },
        Cache {
            name: format!("L{}", rng.random_range(2..9)),
            bytes: 32 << 10,
        },
    ];
    let svg = lab::render_svg(&points, &caches);
    let trimmed = svg.trim();
    assert!(
        (trimmed.starts_with("<svg") || trimmed.starts_with("<?xml"))
            && trimmed.ends_with("</svg>"),
        "requirement 4: render_svg returned text starting {:?} and ending {:?}; wanted an SVG \
         document, <svg ...> to </svg>",
        trimmed.chars().take(20).collect::<String>(),
        trimmed.chars().rev().take(20).collect::<String>()
    );
    assert!(
        svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#),
        "requirement 4: the <svg> element lacks xmlns=\"http://www.w3.org/2000/svg\""
    );
    let elements = check_well_formed(&svg);
    assert!(
        elements.first().map(String::as_str) == Some("svg"),
        "requirement 4: the first element is {:?}; wanted <svg>",
        elements.first()
    );

    let root = &svg[svg.find("<svg").unwrap()..];
    let root = &root[..root.find('>').unwrap()];
    let size = |name: &str| -> f64 {
        attribute(root, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("requirement 4: the <svg> element has no numeric {name}"))
    };
    let (width, height) = (size("width"), size("height"));

    let coords = polyline(&svg);
    assert!(
        coords.len() == n,
        "requirement 4: the polyline has {} x,y pairs for {n} points; wanted one per point",
        coords.len()
    );
    for &(x, y) in &coords {
        assert!(
            (0.0..=width).contains(&x) && (0.0..=height).contains(&y),
            "requirement 4: point ({x}, {y}) is off the {width} x {height} canvas"
        );
    }
    for i in 1..n {
        assert!(
            coords[i].0 > coords[i - 1].0,
            "requirement 4: {} bytes is drawn at x = {}, not right of {} bytes at x = {}; \
             wanted bigger working sets further right",
            points[i].bytes,
            coords[i].0,
            points[i - 1].bytes,
            coords[i - 1].0
        );
    }
    for i in 0..n {
        for j in 0..n {
            if points[i].ns > points[j].ns * 1.05 {
                assert!(
                    coords[i].1 < coords[j].1,
                    "requirement 4: {:.1} ns is drawn at y = {}, not above {:.1} ns at y = {}; \
                     wanted bigger latencies higher up (smaller y: SVG's y axis points down)",
                    points[i].ns,
                    coords[i].1,
                    points[j].ns,
                    coords[j].1
                );
            }
        }
    }
    for cache in &caches {
        assert!(
            svg.contains(&cache.name),
            "requirement 4: the plot does not mark the cache {} ({} bytes, inside the range)",
            cache.name,
            cache.bytes
        );
    }
}
