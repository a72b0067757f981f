//! `cargo lab stubs`: the stub policy, measured. A stub gives the interface the grader calls
//! and what is not the lab's lesson; the lesson's design is the learner's. The measure: the
//! code lines the stub gives that the reference solution keeps, against the code lines the
//! solution adds (blank lines and comments are not counted on either side).

use anyhow::{Context, Result};
use similar::{ChangeTag, TextDiff};

use crate::course::{Course, Lab};
use crate::ui;

/// A stub may give this many code lines whatever its solution's size (a CLI, an error type,
/// the output the grader reads: a short scroll)...
pub const MAX_GIVEN_LINES: usize = 150;
/// ...and beyond that at most this share of its solution's code.
pub const MAX_GIVEN_SHARE: f64 = 0.6;

/// Lines given by the stub and kept by the solution, and lines the solution adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StubMeasure {
    pub given: usize,
    pub added: usize,
}

impl StubMeasure {
    pub fn of(stub: &str, solution: &str) -> StubMeasure {
        let is_code = |line: &str| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with("//")
        };
        // Indentation is not content: a solution may wrap the stub's code in modules.
        let trimmed = |text: &str| -> String {
            text.lines()
                .map(|line| format!("{}\n", line.trim()))
                .collect()
        };
        let (stub, solution) = (trimmed(stub), trimmed(solution));
        let mut measure = StubMeasure { given: 0, added: 0 };
        for change in TextDiff::from_lines(&stub, &solution).iter_all_changes() {
            if !is_code(change.value()) {
                continue;
            }
            match change.tag() {
                ChangeTag::Equal => measure.given += 1,
                ChangeTag::Insert => measure.added += 1,
                ChangeTag::Delete => {}
            }
        }
        measure
    }

    pub fn share(self) -> f64 {
        self.given as f64 / (self.given + self.added).max(1) as f64
    }

    pub fn within_policy(self) -> bool {
        self.given <= MAX_GIVEN_LINES || self.share() <= MAX_GIVEN_SHARE
    }
}

pub fn measure(lab: &Lab) -> Result<StubMeasure> {
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    Ok(StubMeasure::of(
        &read(lab.problem())?,
        &read(lab.solution())?,
    ))
}

/// Prints the table (Markdown, to paste into the README) and whether every lab keeps the policy.
pub fn stubs(course: &Course) -> Result<bool> {
    println!("| Lab | Given lines | Lines the solution adds | Given share |");
    println!("|---|---:|---:|---:|");
    let mut over = Vec::new();
    for lab in &course.labs {
        let m = measure(lab)?;
        println!(
            "| {} {} | {} | {} | {:.0}% |",
            lab.id(),
            lab.title,
            m.given,
            m.added,
            m.share() * 100.0
        );
        if !m.within_policy() {
            over.push(lab.id());
        }
    }
    if over.is_empty() {
        println!(
            "\n{} every stub gives at most {MAX_GIVEN_LINES} code lines or {:.0}% of its solution's code",
            ui::ok_mark(),
            MAX_GIVEN_SHARE * 100.0
        );
        Ok(true)
    } else {
        println!(
            "\n{} over {MAX_GIVEN_LINES} lines and {:.0}%: {}",
            ui::fail_mark(),
            MAX_GIVEN_SHARE * 100.0,
            over.join(", ")
        );
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_kept_and_added_code_lines_only() {
        let stub = "// doc\nfn given() {}\n\nfn lesson() {\n    todo!()\n}\n";
        let solution =
            "// doc\nfn given() {}\n\nfn lesson() {\n    // why\n    work();\n    more();\n}\n";
        let m = StubMeasure::of(stub, solution);
        assert_eq!(m, StubMeasure { given: 3, added: 2 });
        assert!((m.share() - 0.6).abs() < 1e-9);
        assert!(m.within_policy());
        let nested = "mod lesson {\n    fn given() {}\n}\n";
        assert_eq!(
            StubMeasure::of("fn given() {}\n", nested),
            StubMeasure { given: 1, added: 2 },
            "code moved into a module is still given"
        );
        let big = StubMeasure {
            given: 400,
            added: 100,
        };
        assert!(!big.within_policy(), "400 given lines, 80%");
        let short = StubMeasure {
            given: 120,
            added: 30,
        };
        assert!(short.within_policy(), "120 lines is a short scroll");
    }
}
