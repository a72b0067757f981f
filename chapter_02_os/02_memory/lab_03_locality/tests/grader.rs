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
        assert_eq!(
            lab::sum_row_major(&m, n),
            oracle_sum(&m),
            "row-major, n = {n}"
        );
        assert_eq!(
            lab::sum_column_major(&m, n),
            oracle_sum(&m),
            "column-major, n = {n}"
        );
    }
}

// Requirement 2: the chase is one random cycle through every line.
#[test]
fn a_chase_is_one_cycle_through_every_line() {
    assert_eq!(
        std::mem::size_of::<Line>(),
        64,
        "a Line is one 64-byte cache line"
    );
    assert_eq!(
        std::mem::align_of::<Line>(),
        64,
        "a Line starts on a cache-line boundary"
    );
    for lines in [1, 2, 3, rand::rng().random_range(1_000..5_000)] {
        let chase = lab::build_chase(lines);
        assert_eq!(chase.len(), lines);
        let mut seen = HashSet::new();
        let mut at = 0;
        for _ in 0..lines {
            assert!(
                seen.insert(at),
                "{lines} lines: line {at} visited twice before the end of the cycle"
            );
            at = chase[at].next;
            assert!(at < lines, "next = {at} is out of bounds");
        }
        assert_eq!(
            at, 0,
            "{lines} lines: after visiting every line the cycle must come back to 0"
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
        "{sequential} of {lines} hops go to the next line: not random"
    );
    let again = lab::build_chase(lines);
    assert_ne!(chase, again, "two chases should differ (random order)");
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
        assert_eq!(lab::chase(&chase, steps), at, "{steps} steps");
    }
}

#[test]
fn ns_per_access_is_a_positive_latency() {
    for bytes in [64, 4096, 64 * 1024] {
        let ns = lab::ns_per_access(bytes, 1 << 16);
        assert!(
            ns.is_finite() && ns > 0.0 && ns < 1e5,
            "{bytes} bytes: {ns} ns per access"
        );
    }
}

// Requirement 3: page faults, counted per thread with getrusage.
fn pages() -> usize {
    rand::rng().random_range(1_000..4_000)
}

#[test]
fn minor_faults_counts_this_threads_faults() {
    let n = pages();
    let len = n * 4096;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a fresh anonymous mapping overlaps nothing.
    let memory = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
    assert_ne!(memory, libc::MAP_FAILED);
    // SAFETY: advice on the range just mapped (4 KiB pages, so one fault per page).
    unsafe { libc::madvise(memory, len, libc::MADV_NOHUGEPAGE) };
    let before = lab::minor_faults();
    for offset in (0..len).step_by(4096) {
        // SAFETY: inside the writable mapping.
        unsafe { memory.cast::<u8>().add(offset).write_volatile(1) };
    }
    let faults = lab::minor_faults() - before;
    // SAFETY: unmapping exactly what was mapped; nothing refers to it any more.
    unsafe { libc::munmap(memory, len) };
    assert!(
        faults >= n as u64 / 2 && faults <= 2 * n as u64 + 8,
        "writing {n} fresh pages made {faults} minor faults on this thread"
    );
}

#[test]
fn touching_n_fresh_pages_costs_n_minor_faults() {
    let n = pages();
    let outer = lab::minor_faults();
    let faults = lab::faults_while_touching(n, Prefault::Nothing).expect("faults_while_touching");
    let outer = lab::minor_faults() - outer;
    let slack = n as u64 / 20 + 8;
    assert!(
        faults + slack >= n as u64 && faults <= n as u64 + slack,
        "touching {n} fresh pages should cost about {n} minor faults, not {faults}"
    );
    assert!(
        outer >= faults,
        "the thread's own counter saw {outer} faults, fewer than {faults}"
    );
}

#[test]
fn populated_pages_do_not_fault_when_touched() {
    let n = pages();
    let outer = lab::minor_faults();
    let faults = lab::faults_while_touching(n, Prefault::Populate).expect("faults_while_touching");
    let outer = lab::minor_faults() - outer;
    assert!(
        faults <= 8 + n as u64 / 100,
        "{faults} faults touching {n} populated pages"
    );
    // The kernel still had to map every page: inside mmap, on this thread's account.
    assert!(
        outer + 8 >= n as u64,
        "MAP_POPULATE maps the {n} pages inside mmap (saw {outer} faults)"
    );
}

#[test]
fn pages_touched_before_do_not_fault_again() {
    let n = pages();
    let outer = lab::minor_faults();
    let faults =
        lab::faults_while_touching(n, Prefault::TouchFirst).expect("faults_while_touching");
    let outer = lab::minor_faults() - outer;
    assert!(
        faults <= 8 + n as u64 / 100,
        "{faults} faults touching {n} pages a second time"
    );
    assert!(
        outer + 8 >= n as u64,
        "the first touch must fault the {n} pages in (saw {outer})"
    );
}

#[test]
fn zero_pages_is_an_invalid_input_error() {
    let err = lab::faults_while_touching(0, Prefault::Nothing).expect_err("0 pages");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err =
        lab::faults_while_touching(usize::MAX / 2, Prefault::Nothing).expect_err("too many pages");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}

// Requirement 4: the SVG plot.
/// Checks that the tags nest properly and returns the names of the elements.
fn check_well_formed(svg: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unclosed <") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
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
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    elements
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// The (x, y) pairs of the one polyline.
fn polyline(svg: &str) -> Vec<(f64, f64)> {
    assert_eq!(
        svg.matches("<polyline").count(),
        1,
        "exactly one <polyline>"
    );
    let start = svg.find("<polyline").unwrap();
    let tag = &svg[start..start + svg[start..].find('>').unwrap()];
    attribute(tag, "points")
        .expect("points attribute")
        .split_whitespace()
        .map(|pair| {
            let (x, y) = pair.split_once(',').expect("x,y");
            (x.parse().expect("x"), y.parse().expect("y"))
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
        trimmed.starts_with("<svg") || trimmed.starts_with("<?xml"),
        "an SVG document"
    );
    assert!(trimmed.ends_with("</svg>"));
    assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#));
    let elements = check_well_formed(&svg);
    assert_eq!(elements.first().map(String::as_str), Some("svg"));

    let root = &svg[svg.find("<svg").unwrap()..];
    let root = &root[..root.find('>').unwrap()];
    let width: f64 = attribute(root, "width")
        .and_then(|w| w.parse().ok())
        .expect("numeric width");
    let height: f64 = attribute(root, "height")
        .and_then(|h| h.parse().ok())
        .expect("numeric height");

    let coords = polyline(&svg);
    assert_eq!(coords.len(), n, "one x,y pair per point");
    for &(x, y) in &coords {
        assert!(
            (0.0..=width).contains(&x) && (0.0..=height).contains(&y),
            "({x}, {y}) is off the canvas"
        );
    }
    for i in 1..n {
        assert!(
            coords[i].0 > coords[i - 1].0,
            "bigger working sets go further right"
        );
    }
    for i in 0..n {
        for j in 0..n {
            if points[i].ns > points[j].ns * 1.05 {
                assert!(
                    coords[i].1 < coords[j].1,
                    "a slower point is drawn higher (smaller y)"
                );
            }
        }
    }
    for cache in &caches {
        assert!(
            svg.contains(&cache.name),
            "the plot marks the cache {}",
            cache.name
        );
    }
}
