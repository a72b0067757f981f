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
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr_str());
    let stdout = out.stdout_str();
    for size in [
        "4 KiB", "8 KiB", "16 KiB", "32 KiB", "64 KiB", "128 KiB", "256 KiB",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(size)),
            "a table row for {size}:\n{stdout}"
        );
    }
    assert!(
        !stdout
            .lines()
            .any(|l| l.trim_start().starts_with("512 KiB")),
        "--max-kib 256 stops at 256 KiB:\n{stdout}"
    );
    let lower = stdout.to_lowercase();
    assert!(
        lower.contains("row") && lower.contains("column"),
        "the matrix table:\n{stdout}"
    );
    assert!(lower.contains("fault"), "the page-fault table:\n{stdout}");

    let svg = std::fs::read_to_string(&svg_path).expect("the SVG file is written");
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
    let start = svg.find("<polyline").expect("a polyline");
    let tag = &svg[start..start + svg[start..].find('>').unwrap()];
    let points = tag
        .split("points=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    assert_eq!(
        points.split_whitespace().count(),
        7,
        "7 sizes from 4 KiB to 256 KiB"
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
        assert_eq!(out.code(), Some(2), "args {args:?}: {}", out.stderr_str());
        assert!(
            out.stderr_str().to_lowercase().contains("usage"),
            "args {args:?}: usage on stderr"
        );
        assert!(out.stdout.is_empty(), "args {args:?}: nothing on stdout");
    }
}
