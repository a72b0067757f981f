//! PROGRESS.md, the learner's checklist: `cargo lab test` ticks a lab's box when it passes.
//!
//! A lab's line is found by its package name in backticks, for example
//! ``- [ ] Complete lab 1.1 Mini Cat/Grep (`ch1_mini_cat`)``. Everything else in the file
//! belongs to the learner and is left exactly as it is.

use std::path::Path;

use anyhow::{Context, Result};

use crate::course::Lab;

/// Ticks the lab's box. Returns whether the file changed. A missing line is added at the end
/// of the file, so a lab added after the file was written is still tracked.
pub fn tick(path: &Path, lab: &Lab) -> Result<bool> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (new, changed) = tick_text(&text, lab);
    if changed {
        std::fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(changed)
}

/// The checklist line of a lab.
pub fn line(lab: &Lab, done: bool) -> String {
    let mark = if done { 'x' } else { ' ' };
    format!(
        "- [{mark}] Complete Lab {}: {} (`{}`)",
        lab.id(),
        lab.title,
        lab.package
    )
}

pub fn tick_text(text: &str, lab: &Lab) -> (String, bool) {
    let key = format!("`{}`", lab.package);
    let mut found = false;
    let mut changed = false;
    let mut out = String::with_capacity(text.len() + 80);
    for raw in text.split_inclusive('\n') {
        let trimmed = raw.trim_start();
        if trimmed.contains(&key) && trimmed.starts_with("- [") {
            found = true;
            if let Some(rest) = trimmed.strip_prefix("- [ ]") {
                let indent = &raw[..raw.len() - trimmed.len()];
                out.push_str(indent);
                out.push_str("- [x]");
                out.push_str(rest);
                changed = true;
                continue;
            }
        }
        out.push_str(raw);
    }
    if !found {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line(lab, true));
        out.push('\n');
        changed = true;
    }
    (out, changed)
}

/// Whether the lab's box is ticked.
#[cfg(test)]
pub fn is_ticked(path: &Path, lab: &Lab) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| is_ticked_text(&text, lab))
}

fn is_ticked_text(text: &str, lab: &Lab) -> bool {
    let key = format!("`{}`", lab.package);
    text.lines().any(|l| {
        let l = l.trim_start();
        l.contains(&key) && (l.starts_with("- [x]") || l.starts_with("- [X]"))
    })
}

/// When every lab of `labs` (one chapter) is ticked, marks the chapter's row of the Overall
/// Progress table (`| Chapter N: ... | status | date |`) completed on `date`, once: a date
/// already there is kept. Returns whether the file changed.
pub fn complete_chapter(path: &Path, chapter: u32, labs: &[&Lab], date: &str) -> Result<bool> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if labs.is_empty() || !labs.iter().all(|lab| is_ticked_text(&text, lab)) {
        return Ok(false);
    }
    let (new, changed) = complete_chapter_text(&text, chapter, date);
    if changed {
        std::fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(changed)
}

pub fn complete_chapter_text(text: &str, chapter: u32, date: &str) -> (String, bool) {
    let key = format!("| Chapter {chapter}:");
    let mut changed = false;
    let mut out = String::with_capacity(text.len() + 40);
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches('\n');
        let cells: Vec<&str> = line.split('|').collect();
        // "| name | status | date |" splits into ["", name, status, date, ""].
        if line.trim_start().starts_with(&key) && cells.len() == 5 && cells[3].trim().is_empty() {
            out.push_str(&format!("|{}| ✅ Completed | {date} |", cells[1]));
            out.push_str(&raw[line.len()..]);
            changed = true;
            continue;
        }
        out.push_str(raw);
    }
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::course::tests::lab;

    #[test]
    fn ticks_only_the_labs_line() {
        let cat = lab(1, 1, "ch1_mini_cat", "lab_01_mini_cat");
        let text = "# Progress\n\n- [ ] Read theory\n- [ ] Complete lab 1.1 Mini Cat/Grep (`ch1_mini_cat`)\n- [ ] Complete lab 1.2 (`ch1_parallel_sum`)\n";
        let (new, changed) = tick_text(text, &cat);
        assert!(changed);
        assert_eq!(
            new,
            "# Progress\n\n- [ ] Read theory\n- [x] Complete lab 1.1 Mini Cat/Grep (`ch1_mini_cat`)\n- [ ] Complete lab 1.2 (`ch1_parallel_sum`)\n"
        );
        // Ticking twice changes nothing.
        let (again, changed) = tick_text(&new, &cat);
        assert!(!changed);
        assert_eq!(again, new);
    }

    #[test]
    fn package_names_do_not_match_prefixes() {
        let sum = lab(1, 2, "ch1_sum", "lab_02_sum");
        let text = "- [ ] Complete lab 1.3 (`ch1_sum_fast`)\n";
        let (new, changed) = tick_text(text, &sum);
        assert!(changed);
        assert!(new.starts_with("- [ ] Complete lab 1.3"), "{new}");
        assert!(
            new.ends_with("- [x] Complete Lab 1.2: ch1_sum (`ch1_sum`)\n"),
            "{new}"
        );
    }

    #[test]
    fn keeps_indentation_and_learner_notes() {
        let cat = lab(1, 1, "ch1_mini_cat", "lab_01_mini_cat");
        let text = "  - [ ] Complete lab 1.1 (`ch1_mini_cat`) my note: tricky";
        let (new, _) = tick_text(text, &cat);
        assert_eq!(
            new,
            "  - [x] Complete lab 1.1 (`ch1_mini_cat`) my note: tricky"
        );
    }

    #[test]
    fn fills_a_completed_chapters_date_once() {
        let text = "| Chapter | Status | Completion Date |\n| --- | --- | --- |\n| Chapter 1: Foundation | ✅ Available | |\n| Chapter 12: Later | ✅ Available | |\n";
        let (new, changed) = complete_chapter_text(text, 1, "2026-12-02");
        assert!(changed);
        assert!(
            new.contains("| Chapter 1: Foundation | ✅ Completed | 2026-12-02 |\n"),
            "{new}"
        );
        assert!(
            new.contains("| Chapter 12: Later | ✅ Available | |"),
            "{new}"
        );
        let (again, changed) = complete_chapter_text(&new, 1, "2027-01-01");
        assert!(!changed, "a date already there is kept: {again}");
    }

    #[test]
    fn a_chapter_is_complete_only_when_all_its_labs_are_ticked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("PROGRESS.md");
        let cat = lab(1, 1, "ch1_mini_cat", "lab_01_mini_cat");
        let sum = lab(1, 2, "ch1_sum", "lab_02_sum");
        let table = "| Chapter 1: Foundation | ✅ Available | |\n";
        std::fs::write(
            &path,
            format!(
                "{}\n{}\n- [x] Understand ownership\n{table}",
                line(&cat, true),
                line(&sum, false)
            ),
        )
        .unwrap();
        assert!(!complete_chapter(&path, 1, &[&cat, &sum], "2026-12-02").unwrap());
        tick(&path, &sum).unwrap();
        assert!(complete_chapter(&path, 1, &[&cat, &sum], "2026-12-02").unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("- [x] Understand ownership"),
            "a box ticked by hand stays: {text}"
        );
        assert!(text.contains("✅ Completed | 2026-12-02"), "{text}");
    }

    #[test]
    fn writes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("PROGRESS.md");
        let cat = lab(1, 1, "ch1_mini_cat", "lab_01_mini_cat");
        std::fs::write(&path, format!("{}\n", line(&cat, false))).unwrap();
        assert!(!is_ticked(&path, &cat));
        assert!(tick(&path, &cat).unwrap());
        assert!(is_ticked(&path, &cat));
        assert!(!tick(&path, &cat).unwrap());
    }
}
