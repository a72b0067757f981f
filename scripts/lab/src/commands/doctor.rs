//! `cargo lab doctor`: what this machine has and lacks for the course, each with its fix.

use anyhow::Result;

use crate::course::Course;
use crate::ui;

pub fn doctor(course: &Course) -> Result<bool> {
    println!("{}", ui::bold("Checking this machine for the course"));
    let ok = crate::doctor::report(&crate::doctor::checks(&course.rust_version));
    println!(
        "\n{} labs found. {}",
        course.labs.len(),
        if ok {
            ui::green("Ready.")
        } else {
            ui::red("Fix the ✗ lines above.")
        }
    );
    Ok(ok)
}
