//! Grader for Locality: the program, run as a learner runs it (with small sizes).

use labkit::{lab_bin, run};

// Requirement 5: the program prints its tables and writes the SVG.
#[test]
fn prints_the_tables_and_writes_the_plot() {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("plot.svg");
    let svg_arg = svg_path.display().to_string();
    let out = run(
        lab_bin!(),
        &[
            "--max-kib",
            "256",
            "--matrix",
            "256",
            "--pages",
            "100",
            "--svg",
            &svg_arg,
        ],
    );
    assert!(
        out.code() == Some(0),
        "requirement 5: a small run exited with {:?}; wanted 0. stderr: {}",
        out.code(),
        out.stderr_str()
    );
    let stdout = out.stdout_str();
    for size in [
        "4 KiB", "8 KiB", "16 KiB", "32 KiB", "64 KiB", "128 KiB", "256 KiB",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(size)),
            "requirement 5: no table row starts with {size}; stdout:\n{stdout}"
        );
    }
    assert!(
        !stdout
            .lines()
            .any(|l| l.trim_start().starts_with("512 KiB")),
        "requirement 5: with --max-kib 256 a row for 512 KiB was printed; wanted the table to \
         stop at 256 KiB. stdout:\n{stdout}"
    );
    let lower = stdout.to_lowercase();
    assert!(
        lower.contains("row") && lower.contains("column"),
        "requirement 5: no matrix table (the words row and column); stdout:\n{stdout}"
    );
    assert!(
        lower.contains("fault"),
        "requirement 5: no page-fault table (the word fault); stdout:\n{stdout}"
    );

    let svg = std::fs::read_to_string(&svg_path)
        .unwrap_or_else(|e| panic!("requirement 5: the SVG file {svg_arg} was not written: {e}"));
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "requirement 5: {svg_arg} is not an SVG document (<svg ...> to </svg>)"
    );
    let start = svg
        .find("<polyline")
        .unwrap_or_else(|| panic!("requirement 5: {svg_arg} has no <polyline>"));
    let tag = &svg[start..start + svg[start..].find('>').unwrap()];
    let points = tag
        .split("points=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let count = points.split_whitespace().count();
    assert!(
        count == 7,
        "requirement 5: the plot has {count} points; wanted 7, one per size from 4 KiB to 256 KiB"
    );
}

// Requirement 6: bad arguments print the usage and exit with code 2.
#[test]
fn bad_arguments_print_usage_and_exit_2() {
    let cases: [&[&str]; 5] = [
        &["--max-kib", "2"],
        &["--matrix", "0"],
        &["--pages", "lots"],
        &["--svg"],
        &["--bogus", "1"],
    ];
    for args in cases {
        let out = run(lab_bin!(), args);
        assert!(
            out.code() == Some(2),
            "requirement 6: arguments {args:?} exited with {:?}; wanted 2. stderr: {}",
            out.code(),
            out.stderr_str()
        );
        assert!(
            out.stderr_str().to_lowercase().contains("usage"),
            "requirement 6: arguments {args:?} printed no usage on stderr: {}",
            out.stderr_str()
        );
        assert!(
            out.stdout.is_empty(),
            "requirement 6: arguments {args:?} printed {} bytes on stdout; wanted none",
            out.stdout.len()
        );
    }
}
