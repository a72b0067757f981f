//! Reading a lab's README.md: its sections, its hints, and the structure verify demands.

use std::path::Path;

use crate::course::Lab;

/// Sections every lab README has, in this order.
pub const SECTIONS: [&str; 6] = [
    "Goal",
    "Requirements",
    "How to run",
    "What to observe",
    "Hints",
    "Going further",
];

/// The body of `## <name>` (up to the next `## ` heading), if the README has it.
pub fn section<'a>(readme: &'a str, name: &str) -> Option<&'a str> {
    let mut start = None;
    let mut offset = 0;
    for line in readme.split_inclusive('\n') {
        let heading = line.trim_end().strip_prefix("## ").map(str::trim);
        match (start, heading) {
            (None, Some(h)) if h.eq_ignore_ascii_case(name) => start = Some(offset + line.len()),
            (Some(s), Some(_)) => return Some(readme[s..offset].trim()),
            _ => {}
        }
        offset += line.len();
    }
    start.map(|s| readme[s..].trim())
}

/// The numbered items of the `## Hints` section (`1. ...` with continuation lines).
pub fn hints(readme: &str) -> Vec<String> {
    let Some(body) = section(readme, "Hints") else {
        return Vec::new();
    };
    let mut hints: Vec<String> = Vec::new();
    for line in body.lines() {
        let trimmed = line.trim_start();
        let numbered = trimmed
            .split_once(". ")
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            .filter(|_| line.len() == trimmed.len());
        match (numbered, hints.last_mut()) {
            (Some((_, text)), _) => hints.push(text.to_string()),
            (None, Some(last)) if !trimmed.is_empty() => {
                last.push('\n');
                last.push_str(trimmed);
            }
            _ => {}
        }
    }
    hints
}

/// The first paragraph of `## Goal`.
pub fn goal(readme: &str) -> Option<String> {
    let body = section(readme, "Goal")?;
    Some(body.split("\n\n").next()?.replace('\n', " "))
}

/// Everything missing from a lab's structure, as readable sentences.
pub fn structure_problems(lab: &Lab) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, what) in [
        (lab.problem(), "the stub problem/main.rs"),
        (lab.src(), "the learner's src/main.rs"),
        (lab.solution(), "the reference solution/main.rs"),
    ] {
        if !file.is_file() {
            problems.push(format!("{what} is missing"));
        }
    }
    let has_tests = std::fs::read_dir(lab.dir.join("tests")).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "rs"))
    });
    if !has_tests {
        problems.push("no grader: tests/*.rs is missing".into());
    }
    match std::fs::read_to_string(lab.readme()) {
        Err(_) => problems.push("README.md is missing".into()),
        Ok(readme) => {
            for name in SECTIONS {
                if section(&readme, name).is_none_or(str::is_empty) {
                    problems.push(format!("README.md has no `## {name}` section"));
                }
            }
            if section(&readme, "Hints").is_some() && hints(&readme).is_empty() {
                problems.push("README.md's hints are not a numbered list".into());
            }
        }
    }
    if lab.title.trim().is_empty() {
        problems.push("[package.metadata.lab] has an empty title".into());
    }
    let theory = lab.topic_dir().join("theory.md");
    if !theory.is_file() {
        problems.push(format!("{} is missing", rel(lab, &theory)));
    }
    let checkpoint = lab.chapter_dir().join("checkpoint.md");
    if !checkpoint.is_file() {
        problems.push(format!("{} is missing", rel(lab, &checkpoint)));
    }
    problems
}

fn rel(lab: &Lab, path: &Path) -> String {
    let base = lab.chapter_dir().parent().unwrap_or(lab.chapter_dir());
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "# Lab\n\n## Goal\n\nBuild a thing.\nIt is small.\n\nMore.\n\n## Hints\n\n1. Gentle.\n2. Less gentle:\n   use `read_until`.\n\n   ```rust\n   let x = 1;\n   ```\n10. Explicit.\n\n## Going further\n\n- More.\n";

    #[test]
    fn finds_sections() {
        assert_eq!(section(README, "Going further"), Some("- More."));
        assert_eq!(
            section(README, "goal").unwrap().lines().next(),
            Some("Build a thing.")
        );
        assert_eq!(section(README, "Requirements"), None);
    }

    #[test]
    fn reads_numbered_hints_with_continuations() {
        let hints = hints(README);
        assert_eq!(hints.len(), 3);
        assert_eq!(hints[0], "Gentle.");
        assert_eq!(
            hints[1],
            "Less gentle:\nuse `read_until`.\n```rust\nlet x = 1;\n```"
        );
        assert_eq!(hints[2], "Explicit.");
    }

    #[test]
    fn goal_is_the_first_paragraph() {
        assert_eq!(goal(README).unwrap(), "Build a thing. It is small.");
    }

    #[test]
    fn reports_missing_structure() {
        let dir = tempfile::tempdir().unwrap();
        let lab_dir = dir.path().join("chapter_01_x/01_topic/lab_01_x");
        std::fs::create_dir_all(lab_dir.join("src")).unwrap();
        std::fs::write(lab_dir.join("src/main.rs"), "").unwrap();
        std::fs::write(lab_dir.join("README.md"), README).unwrap();
        let mut lab = crate::course::tests::lab(1, 1, "ch1_x", "lab_01_x");
        lab.dir = lab_dir;
        let problems = structure_problems(&lab).join("\n");
        assert!(
            problems.contains("problem/main.rs is missing"),
            "{problems}"
        );
        assert!(!problems.contains("src/main.rs is missing"), "{problems}");
        assert!(problems.contains("tests/*.rs"), "{problems}");
        assert!(problems.contains("`## Requirements`"), "{problems}");
        assert!(!problems.contains("`## Hints`"), "{problems}");
        assert!(
            problems.contains("chapter_01_x/01_topic/theory.md"),
            "{problems}"
        );
        assert!(
            problems.contains("chapter_01_x/checkpoint.md"),
            "{problems}"
        );
    }
}
