//! `cargo lab reset`: back to the stub, never without a backup of the learner's file.

use std::path::Path;

use anyhow::Result;

use crate::course::{Course, Lab};
use crate::{backup, ui};

pub fn reset(course: &Course, lab: &Lab, restore: Option<&str>, list: bool) -> Result<bool> {
    let rel = |p: &Path| {
        p.strip_prefix(&course.root)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    if list {
        let backups = backup::list(lab);
        if backups.is_empty() {
            println!("Lab {} has no backup.", lab.id());
        }
        for b in backups {
            println!("  {}", rel(&b));
        }
        return Ok(true);
    }
    if let Some(which) = restore {
        let which = (!which.is_empty()).then_some(which);
        let restored = backup::restore(lab, which)?;
        println!(
            "{} src/main.rs of lab {} is {} again (your previous file is backed up too).",
            ui::ok_mark(),
            lab.id(),
            rel(&restored)
        );
        return Ok(true);
    }
    match backup::reset(lab)? {
        Some(saved) => println!(
            "{} Your file is saved as {}.\n  src/main.rs of lab {} is the original stub again. Undo: {}",
            ui::ok_mark(),
            rel(&saved),
            lab.id(),
            ui::bold(&format!("cargo lab reset {} --restore", lab.id()))
        ),
        None => println!(
            "{} src/main.rs of lab {} is the original stub.",
            ui::ok_mark(),
            lab.id()
        ),
    }
    Ok(true)
}
