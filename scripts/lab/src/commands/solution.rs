//! `cargo lab solution`: the learner's file against the reference, once the lab passes.

use anyhow::Result;

use crate::course::{Course, Lab};
use crate::state::{State, Status};
use crate::ui;

pub fn solution(course: &Course, lab: &Lab, force: bool) -> Result<bool> {
    let state = State::load(&course.state_dir());
    if state.status(lab) != Status::Passed && !force {
        println!(
            "Lab {} does not pass yet. Try `cargo lab hint {}` first, or look anyway with `cargo lab solution {} --force`.",
            lab.id(),
            lab.id(),
            lab.id()
        );
        return Ok(false);
    }
    let yours = std::fs::read_to_string(lab.src())?;
    let reference = std::fs::read_to_string(lab.solution())?;
    let diff = similar::TextDiff::from_lines(&yours, &reference);
    println!("{}", ui::red("--- src/main.rs (yours)"));
    println!("{}", ui::green("+++ solution/main.rs (reference)"));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        println!("{}", ui::cyan(&hunk.header().to_string()));
        for change in hunk.iter_changes() {
            let line = format!("{}{}", change.tag(), change.value().trim_end_matches('\n'));
            match change.tag() {
                similar::ChangeTag::Delete => println!("{}", ui::red(&line)),
                similar::ChangeTag::Insert => println!("{}", ui::green(&line)),
                similar::ChangeTag::Equal => println!("{line}"),
            }
        }
    }
    if yours == reference {
        println!("Your file is identical to the reference.");
    }
    Ok(true)
}
