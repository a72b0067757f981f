//! `cargo lab prepare`: build the next labs' graders ahead, while the learner reads.

use anyhow::Result;

use crate::course::{Course, Lab};
use crate::grade::{self, Face, Noise};
use crate::ui;

/// Builds the graders of `labs` against the learner's files (the `src` face), with a progress
/// bar: the first `cargo lab test` of each then grades in seconds.
pub fn prepare(course: &Course, labs: &[&Lab]) -> Result<bool> {
    let names: Vec<String> = labs.iter().map(|l| l.id()).collect();
    println!(
        "{} {} ({}): their dependencies compile once, then every grade is quick",
        ui::cyan("Preparing"),
        if labs.len() == 1 { "lab" } else { "labs" },
        names.join(", ")
    );
    let started = std::time::Instant::now();
    let build = grade::build(course, labs, Face::Src, Noise::Progress)?;
    let seconds = started.elapsed().as_secs_f64();
    // A half-written src/main.rs may not compile yet: its dependencies are built all the same.
    let unfinished: Vec<&str> = labs
        .iter()
        .filter(|l| build.errors.contains_key(&l.package))
        .map(|l| l.package.as_str())
        .collect();
    if build.success || !unfinished.is_empty() {
        println!(
            "{} ready in {seconds:.0} s; grade with `cargo lab test {}`",
            ui::ok_mark(),
            names[0]
        );
        if !unfinished.is_empty() {
            println!(
                "  {} src/main.rs does not compile yet in {}: everything it needs is built",
                ui::dim("note:"),
                unfinished.join(", ")
            );
        }
        Ok(true)
    } else {
        eprintln!("{}", build.stderr.trim_end());
        Ok(false)
    }
}
