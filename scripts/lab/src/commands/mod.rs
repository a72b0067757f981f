//! The runner's commands, one module each. Every command returns `Ok(true)` on success,
//! `Ok(false)` for a clean "no" (a failing grade), and an error for everything that went
//! wrong around the lab.

mod bench;
mod doctor;
mod hint;
mod prepare;
mod reset;
mod solution;
mod status;
pub mod stubs;
mod test;
mod watch;

pub use bench::bench;
pub use doctor::doctor;
pub use hint::hint;
pub use prepare::prepare;
pub use reset::reset;
pub use solution::solution;
pub use status::{list, next, status};
pub use stubs::stubs;
pub use test::test;
pub use watch::watch;

use anyhow::{Context, Result};

use crate::course::{Course, Lab};
use crate::state::{State, Status};

/// The lab a command is about: named, or the one whose folder we are in.
pub fn pick<'a>(course: &'a Course, name: Option<&str>) -> Result<&'a Lab> {
    match name {
        Some(name) => course.find(name),
        None => course.lab_here().context(
            "which lab? name one (`cargo lab test 1.1`) or run the command inside a lab folder",
        ),
    }
}

/// The first lab not passed yet.
pub(crate) fn next_lab<'a>(course: &'a Course, state: &State) -> Option<&'a Lab> {
    course
        .labs
        .iter()
        .find(|lab| state.status(lab) != Status::Passed)
}

/// The lab the learner is on: the first one not passed yet.
pub fn upcoming(course: &Course) -> Result<&Lab> {
    next_lab(course, &State::load(&course.state_dir())).ok_or_else(|| {
        anyhow::anyhow!("every lab passes: name one to prepare, e.g. `cargo lab prepare 7.8`")
    })
}
