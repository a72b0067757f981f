//! `cargo lab test`: grade the learner's `src/main.rs`, tick PROGRESS.md when it passes.

use std::time::Duration;

use anyhow::Result;

use super::next_lab;
use crate::course::{Course, Lab};
use crate::grade::{self, Face, GradeError, Noise, Outcome};
use crate::state::State;
use crate::{progress, services, ui};

/// How long one test executable may run under `cargo lab test`.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

pub fn test(course: &Course, lab: &Lab) -> Result<bool> {
    println!(
        "{} lab {} {} {}",
        ui::cyan("Grading"),
        lab.id(),
        lab.title,
        ui::dim(&format!("({}/src/main.rs)", lab.rel_dir(&course.root)))
    );
    services::prepare(course, &[lab])?;
    let build = grade::build(course, &[lab], Face::Src, Noise::Show)?;
    let run = grade::run_lab(lab, &build, TEST_TIMEOUT);
    let mut state = State::load(&course.state_dir());

    if let Some(error) = &run.error {
        state.record(lab, 0, 0);
        state.save(&course.state_dir())?;
        let text = error.to_string();
        let first = text.lines().next().unwrap_or_default();
        println!("\n{} the grader {first}", ui::fail_mark());
        if matches!(error, GradeError::DoesNotCompile(_)) {
            println!(
                "  Fix the compiler errors above, then run `cargo lab test {}` again.",
                lab.id()
            );
        }
        return Ok(false);
    }
    println!();
    // A fresh stub fails every test at the same `todo!()`: say so once, not once per test.
    let failing: Vec<_> = run
        .tests
        .iter()
        .filter(|t| matches!(t.outcome, Outcome::Failed | Outcome::TimedOut))
        .collect();
    let todos: Vec<&str> = failing
        .iter()
        .filter_map(|t| grade::unimplemented(&t.message))
        .collect();
    if !failing.is_empty() && todos.len() == failing.len() && run.count(Outcome::Passed) == 0 {
        let mut distinct = todos.clone();
        distinct.sort_unstable();
        distinct.dedup();
        println!(
            "  {} all {} tests stop at an unimplemented `todo!()` in src/main.rs:",
            ui::fail_mark(),
            failing.len()
        );
        for todo in distinct.iter().take(5) {
            println!("{}", ui::dim(&ui::indent(todo, 6)));
        }
        println!(
            "  Implement them, then run `cargo lab test {}` again.",
            lab.id()
        );
    }
    for test in &run.tests {
        if todos.len() == failing.len() && run.count(Outcome::Passed) == 0 {
            break;
        }
        match test.outcome {
            Outcome::Passed => println!("  {} {}", ui::ok_mark(), test.name),
            Outcome::Ignored => println!(
                "  {} {} {}",
                ui::warn_mark(),
                test.name,
                ui::dim("(ignored)")
            ),
            Outcome::Failed | Outcome::TimedOut => {
                println!("  {} {}", ui::fail_mark(), ui::bold(&test.name));
                if let Some(todo) = grade::unimplemented(&test.message) {
                    println!("{}", ui::dim(&ui::indent(&format!("reaches {todo}"), 6)));
                    continue;
                }
                let why = grade::summary(&test.message, 6);
                if !why.is_empty() {
                    println!("{}", ui::dim(&ui::indent(&why, 6)));
                }
            }
        }
    }
    let passed = run.count(Outcome::Passed);
    let total = run.tests.len();
    state.record(lab, passed, total);
    state.save(&course.state_dir())?;
    println!(
        "\n{passed} of {total} tests pass {}",
        ui::dim(&format!("({:.1}s)", run.duration.as_secs_f64()))
    );
    if run.all_passed() {
        progress::tick(&course.progress_file(), lab)?;
        let date = chrono::Local::now().format("%Y-%m-%d").to_string();
        if progress::complete_chapter(
            &course.progress_file(),
            lab.chapter,
            &course.chapter(lab.chapter),
            &date,
        )? {
            println!(
                "{} Chapter {} complete: its completion date is in PROGRESS.md's Overall Progress.",
                ui::ok_mark(),
                lab.chapter
            );
        }
        println!(
            "{} Lab {} passed and ticked in PROGRESS.md. Compare with the reference: {}",
            ui::ok_mark(),
            lab.id(),
            ui::bold(&format!("cargo lab solution {}", lab.id()))
        );
        if let Some(next) = next_lab(course, &state) {
            println!(
                "Next: lab {} {}  →  cargo lab test {}",
                next.id(),
                next.title,
                next.id()
            );
        }
        Ok(true)
    } else {
        println!(
            "{}",
            ui::dim(&format!(
                "Details: cd {} && cargo test <name>.  Stuck? cargo lab hint {}",
                lab.rel_dir(&course.root),
                lab.id()
            ))
        );
        Ok(false)
    }
}
