//! `cargo lab` (status), `cargo lab list` and `cargo lab next`: where the learner stands.

use anyhow::Result;

use super::next_lab;
use crate::course::Course;
use crate::state::{State, Status};
use crate::{readme, ui};

pub fn status(course: &Course) -> Result<bool> {
    let state = State::load(&course.state_dir());
    println!("{}\n", ui::bold("OS & Network for Backend, in Rust"));
    let mut chapter = 0;
    let mut passed = 0;
    for lab in &course.labs {
        if lab.chapter != chapter {
            chapter = lab.chapter;
            println!(
                "{}",
                ui::bold(&format!(
                    "Chapter {chapter}: {}",
                    course.chapter_title(chapter)
                ))
            );
        }
        let status = state.status(lab);
        passed += usize::from(status == Status::Passed);
        println!("  {} {}", ui::lab_name(lab), ui::status(status));
    }
    println!(
        "\n{passed} of {} labs passed. {}",
        course.labs.len(),
        ui::dim("Details: PROGRESS.md")
    );
    match next_lab(course, &state) {
        Some(lab) => println!(
            "Next: lab {} {}  →  {}   {}",
            lab.id(),
            lab.title,
            ui::bold(&format!("cargo lab test {}", lab.id())),
            ui::dim(&format!("({})", lab.rel_dir(&course.root)))
        ),
        None => println!("{}", ui::green("Every lab passes. Well done!")),
    }
    Ok(true)
}

pub fn list(course: &Course) -> Result<bool> {
    for lab in &course.labs {
        let requires = if lab.requires.is_empty() {
            String::new()
        } else {
            ui::dim(&format!("  requires {}", lab.requires.join(", ")))
        };
        println!(
            "{} {:<24} {}{requires}",
            ui::lab_name(lab),
            lab.package,
            ui::dim(&lab.rel_dir(&course.root))
        );
    }
    Ok(true)
}

pub fn next(course: &Course) -> Result<bool> {
    let state = State::load(&course.state_dir());
    let Some(lab) = next_lab(course, &state) else {
        println!("{}", ui::green("Every lab passes. Well done!"));
        return Ok(true);
    };
    println!("{}", ui::bold(&format!("Lab {} {}", lab.id(), lab.title)));
    if let Some(goal) = std::fs::read_to_string(lab.readme())
        .ok()
        .and_then(|r| readme::goal(&r))
    {
        println!("\n{goal}\n");
    }
    println!("  read     {}/README.md", lab.rel_dir(&course.root));
    println!("  edit     {}/src/main.rs", lab.rel_dir(&course.root));
    println!("  grade    cargo lab test {}", lab.id());
    println!("  stuck?   cargo lab hint {}", lab.id());
    println!(
        "  {}  cargo lab prepare {}   builds its grader now, while you read",
        ui::dim("tip:"),
        lab.id()
    );
    Ok(true)
}
