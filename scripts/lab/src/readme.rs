//! Reading a lab's README.md: its sections, its hints, and the structure verify demands.

use std::path::Path;

use crate::course::Lab;

/// Sections every lab README has, in this order.
pub const SECTIONS: [&str; 5] = [
    "Goal",
    "Requirements",
    "How to run",
    "What to observe",
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

/// The hints of a lab's `hints.md`: its numbered items (`1. ...` with continuation lines).
/// They live in a file of their own so that reading the README does not hand them over.
pub fn hints(text: &str) -> Vec<String> {
    numbered_items(text)
}

/// The numbered items (`1. ...` at the start of a line, with continuation lines) of `body`.
pub fn numbered_items(body: &str) -> Vec<String> {
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
            if section(&readme, "Hints").is_some() {
                problems.push(
                    "README.md prints hints: move them to hints.md (`cargo lab hint` reveals them)"
                        .into(),
                );
            }
        }
    }
    match std::fs::read_to_string(lab.hints()) {
        Err(_) => problems.push("hints.md is missing".into()),
        Ok(text) if hints(&text).is_empty() => {
            problems.push("hints.md has no numbered hint (`1. ...`)".into())
        }
        Ok(_) => {}
    }
    if let (Ok(readme), Ok(stub)) = (
        std::fs::read_to_string(lab.readme()),
        std::fs::read_to_string(lab.problem()),
    ) {
        problems.extend(header_problems(&readme, &stub));
    }
    if lab.title.trim().is_empty() {
        problems.push("[package.metadata.lab] has an empty title".into());
    }
    let theory = lab.topic_dir().join("theory.md");
    if !theory.is_file() {
        problems.push(format!("{} is missing", rel(lab, &theory)));
    }
    let checkpoint = lab.chapter_dir().join("checkpoint.md");
    match std::fs::read_to_string(&checkpoint) {
        Err(_) => problems.push(format!("{} is missing", rel(lab, &checkpoint))),
        Ok(text) if crate::course::checkpoint_title(lab.chapter, &text).is_none() => {
            problems.push(format!(
                "{} must open with `# Chapter {} checkpoint: <the chapter's title>` (the runner \
                 shows that title)",
                rel(lab, &checkpoint),
                lab.chapter
            ));
        }
        Ok(_) => {}
    }
    problems
}

/// The sections the stub's `//!` header opens with (the course outline's problem format).
pub const HEADER_SECTIONS: [&str; 4] = [
    "Goal",
    "Requirements",
    "Verification",
    "Acceptance Criteria",
];

/// The text of the leading `//!` lines of a source file, without the `//!` markers.
pub fn doc_header(source: &str) -> String {
    let mut out = String::new();
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("//!") else {
            break;
        };
        out.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        out.push('\n');
    }
    out
}

/// Where the stub's header and the README disagree: a missing section, a different number of
/// requirements or checkboxes, or a requirement whose text differs. Whitespace and line breaks
/// do not count.
pub fn header_problems(readme: &str, stub: &str) -> Vec<String> {
    let header = doc_header(stub);
    let mut problems = Vec::new();
    for name in HEADER_SECTIONS {
        if section(&header, name).is_none_or(str::is_empty) {
            problems.push(format!(
                "problem/main.rs's `//!` header has no `## {name}` section"
            ));
        }
    }
    let squash = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let wanted: Vec<String> = requirements(readme).iter().map(|r| squash(r)).collect();
    let got: Vec<String> = section(&header, "Requirements")
        .map(requirements_in)
        .unwrap_or_default()
        .iter()
        .map(|r| squash(r))
        .collect();
    if wanted.len() != got.len() {
        problems.push(format!(
            "problem/main.rs's header lists {} requirements, README.md {}",
            got.len(),
            wanted.len()
        ));
    } else if let Some(i) = (0..wanted.len()).find(|&i| wanted[i] != got[i]) {
        problems.push(format!(
            "requirement {} differs between problem/main.rs's header and README.md:\n  header: {}\n  README: {}",
            i + 1,
            got[i],
            wanted[i]
        ));
    }
    let boxes = section(&header, "Acceptance Criteria")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("- [ ]") || l.starts_with("- [x]") || l.starts_with("- [X]")
        })
        .count();
    if boxes != wanted.len() {
        problems.push(format!(
            "problem/main.rs's Acceptance Criteria has {boxes} checkboxes for {} requirements",
            wanted.len()
        ));
    }
    problems
}

/// The numbered requirements of a README (`## Requirements`, up to its table).
pub fn requirements(readme: &str) -> Vec<String> {
    section(readme, "Requirements")
        .map(requirements_in)
        .unwrap_or_default()
}

fn requirements_in(body: &str) -> Vec<String> {
    // The list ends at the first line that is neither an item, nor indented under one, nor
    // blank: the requirement table or a paragraph after the list.
    let mut started = false;
    let list: String = body
        .lines()
        .take_while(|l| {
            let numbered = l
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            let keep = numbered || !started || l.trim().is_empty() || l.starts_with(' ');
            started |= numbered;
            keep && !l.trim_start().starts_with('|')
        })
        .collect::<Vec<_>>()
        .join("\n");
    numbered_items(&list)
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

    const README: &str = "# Lab\n\n## Goal\n\nBuild a thing.\nIt is small.\n\nMore.\n\n## Hints\n\n`cargo lab hint 1.1`\n\n## Going further\n\n- More.\n";
    const HINTS: &str = "# Hints\n\nGentle first.\n\n1. Gentle.\n2. Less gentle:\n   use `read_until`.\n\n   ```rust\n   let x = 1;\n   ```\n10. Explicit.\n";

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
        let hints = hints(HINTS);
        assert_eq!(hints.len(), 3);
        assert_eq!(hints[0], "Gentle.");
        assert_eq!(
            hints[1],
            "Less gentle:\nuse `read_until`.\n```rust\nlet x = 1;\n```"
        );
        assert_eq!(hints[2], "Explicit.");
    }

    const LAB_README: &str = "# Lab\n\n## Goal\n\nBuild it.\n\n## Requirements\n\n1. Reads `a`\n   and `b`.\n2. Fails on c.\n\nA paragraph after the list.\n\n| Requirement | Tests |\n|---|---|\n| 1 | `t` |\n\n## How to run\n";
    const STUB: &str = "//! ## Goal\n//! Build it.\n//!\n//! ## Requirements\n//! 1. Reads `a` and\n//!    `b`.\n//! 2. Fails on c.\n//!\n//! ## Verification\n//! cargo test\n//!\n//! ## Acceptance Criteria\n//! - [ ] 1. Reads a and b\n//! - [x] 2. Fails on c\n\nfn main() {}\n";

    #[test]
    fn a_stub_header_that_matches_its_readme_passes() {
        assert_eq!(header_problems(LAB_README, STUB), Vec::<String>::new());
    }

    #[test]
    fn a_stub_header_that_drifts_from_its_readme_is_named() {
        let fewer_boxes = STUB.replace("//! - [x] 2. Fails on c\n", "");
        let problems = header_problems(LAB_README, &fewer_boxes).join("\n");
        assert!(
            problems.contains("1 checkboxes for 2 requirements"),
            "{problems}"
        );

        let other_text = STUB.replace("Fails on c.", "Fails on d.");
        let problems = header_problems(LAB_README, &other_text).join("\n");
        assert!(problems.contains("requirement 2 differs"), "{problems}");

        let extra = STUB.replace("//! 2. Fails on c.\n", "//! 2. Fails on c.\n//! 3. More.\n");
        let problems = header_problems(LAB_README, &extra).join("\n");
        assert!(
            problems.contains("lists 3 requirements, README.md 2"),
            "{problems}"
        );

        let no_header = "fn main() {}\n";
        let problems = header_problems(LAB_README, no_header).join("\n");
        assert!(problems.contains("no `## Goal` section"), "{problems}");
        assert!(
            problems.contains("no `## Acceptance Criteria` section"),
            "{problems}"
        );
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
        assert!(problems.contains("hints.md is missing"), "{problems}");
        std::fs::write(
            lab.dir.join("README.md"),
            README.replace("`cargo lab hint 1.1`", "1. Do X."),
        )
        .unwrap();
        std::fs::write(lab.dir.join("hints.md"), HINTS).unwrap();
        let problems = structure_problems(&lab).join("\n");
        assert!(problems.contains("README.md prints hints"), "{problems}");
        assert!(!problems.contains("hints.md is missing"), "{problems}");
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
