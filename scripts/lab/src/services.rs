//! What the selected labs `require`, made available before their graders run: PostgreSQL and
//! Redis through `scripts/services.sh up`, system tools through `scripts/install-tools.sh`.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{Context, Result};

use crate::course::{Course, Lab};
use crate::doctor;
use crate::ui;

/// Starts the services and installs the tools `labs` need. A piece that cannot be made
/// available is reported here; the graders then fail with their own one-line fix.
pub fn prepare(course: &Course, labs: &[&Lab]) -> Result<()> {
    let needs: BTreeSet<&str> = labs
        .iter()
        .flat_map(|l| l.requires.iter().map(String::as_str))
        .collect();

    let mut down = Vec::new();
    if needs.contains("postgres") && !doctor::reachable(&doctor::database_url(), 5432) {
        down.push("postgres");
    }
    if needs.contains("redis") && !doctor::reachable(&doctor::redis_url(), 6379) {
        down.push("redis");
    }
    if !down.is_empty() {
        println!("{} starting {}", ui::cyan("services:"), down.join(" and "));
        let status = Command::new("bash")
            .arg(course.root.join("scripts/services.sh"))
            .arg("up")
            .args(&down)
            .current_dir(&course.root)
            .status()
            .context("cannot run scripts/services.sh")?;
        if !status.success() {
            println!(
                "{} scripts/services.sh could not start {}; the labs that need it will fail",
                ui::warn_mark(),
                down.join(" and ")
            );
        }
    }

    if needs.contains("strace") && !doctor::has_tool("strace") {
        let is_root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1))
                == Some("0")
        });
        if is_root {
            println!("{} installing strace", ui::cyan("tools:"));
            let _ = Command::new("bash")
                .arg(course.root.join("scripts/install-tools.sh"))
                .arg("strace")
                .status();
        } else {
            println!(
                "{} strace is missing: run `sudo scripts/install-tools.sh`",
                ui::warn_mark()
            );
        }
    }
    Ok(())
}
