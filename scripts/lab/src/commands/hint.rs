//! `cargo lab hint`: the lab's hints, one at a time, gentle to explicit.

use anyhow::{Context, Result, bail};

use crate::course::{Course, Lab};
use crate::state::State;
use crate::{readme, ui};

pub fn hint(course: &Course, lab: &Lab, all: bool) -> Result<bool> {
    let text = std::fs::read_to_string(lab.hints())
        .with_context(|| format!("cannot read {}", lab.hints().display()))?;
    let hints = readme::hints(&text);
    if hints.is_empty() {
        bail!("lab {} has no hints in its hints.md", lab.id());
    }
    let mut state = State::load(&course.state_dir());
    let shown = state.lab(&lab.package).hints_shown;
    let range = if all {
        0..hints.len()
    } else if shown >= hints.len() {
        println!("{}", ui::dim("That was the last hint; here it is again."));
        hints.len() - 1..hints.len()
    } else {
        shown..shown + 1
    };
    for i in range.clone() {
        println!(
            "{}",
            ui::bold(&format!(
                "Hint {}/{} for lab {} {}",
                i + 1,
                hints.len(),
                lab.id(),
                lab.title
            ))
        );
        println!("{}\n", ui::indent(&hints[i], 2));
    }
    let entry = state.lab(&lab.package);
    entry.hints_shown = entry.hints_shown.max(range.end);
    state.save(&course.state_dir())?;
    if !all && range.end < hints.len() {
        println!(
            "{}",
            ui::dim(&format!("More: cargo lab hint {} (all: --all)", lab.id()))
        );
    }
    Ok(true)
}
