//! `cargo lab bench`: the labs' side-by-side benchmarks against the crates they imitate.

use anyhow::{Context, Result};

use crate::course::{Course, Lab};
use crate::{grade, services, ui};

pub fn bench(course: &Course, name: Option<&str>, src: bool) -> Result<bool> {
    let labs: Vec<&Lab> = match name {
        Some(name) => vec![course.find(name)?],
        None => course.labs.iter().filter(|l| l.has_bench).collect(),
    };
    if labs.is_empty() {
        println!("No lab defines a benchmark yet.");
        return Ok(true);
    }
    let mut ok = true;
    for lab in labs {
        if !lab.has_bench {
            println!("Lab {} has no benchmark.", lab.id());
            continue;
        }
        println!(
            "{}",
            ui::bold(&format!("Benchmarks of lab {} {}", lab.id(), lab.title))
        );
        services::prepare(course, &[lab])?;
        let mut cmd = grade::cargo();
        cmd.current_dir(&course.root)
            .args(["bench", "--package", &lab.package]);
        if !src {
            cmd.args(["--no-default-features", "--features", "solution"]);
        }
        ok &= cmd.status().context("cannot run cargo bench")?.success();
    }
    Ok(ok)
}
