//! What the runner remembers between runs, in `target/lab/state.json`.
//!
//! A grade is recorded with the hash of what was graded (the learner's `src/main.rs` plus the
//! grader's files), so an edit after a green run shows the lab as "in progress" again until
//! it is re-graded, and a changed grader invalidates old results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::course::Lab;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub labs: BTreeMap<String, LabState>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LabState {
    /// Hash of the graded files at the last `cargo lab test`.
    #[serde(default)]
    pub graded_hash: String,
    #[serde(default)]
    pub passed: usize,
    #[serde(default)]
    pub total: usize,
    /// How many hints `cargo lab hint` has shown.
    #[serde(default)]
    pub hints_shown: usize,
}

/// Where a learner stands on a lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `src/main.rs` is still the stub.
    Untouched,
    /// Edited; `passed` of `total` tests passed at the last grade of this exact content
    /// (`None`: not graded since the last edit).
    InProgress(Option<(usize, usize)>),
    /// Every test passed on the current content.
    Passed,
}

impl State {
    pub fn load(dir: &Path) -> State {
        std::fs::read_to_string(dir.join("state.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        // rename(2) is atomic: an interrupted save never leaves half a file behind.
        std::fs::rename(&tmp, dir.join("state.json"))?;
        Ok(())
    }

    pub fn lab(&mut self, package: &str) -> &mut LabState {
        self.labs.entry(package.to_string()).or_default()
    }

    /// Records a grade of the current content of the lab.
    pub fn record(&mut self, lab: &Lab, passed: usize, total: usize) {
        let hash = graded_hash(lab);
        let entry = self.lab(&lab.package);
        entry.graded_hash = hash;
        entry.passed = passed;
        entry.total = total;
    }

    pub fn status(&self, lab: &Lab) -> Status {
        let src = std::fs::read(lab.src()).unwrap_or_default();
        let problem = std::fs::read(lab.problem()).unwrap_or_default();
        let graded = self
            .labs
            .get(&lab.package)
            .filter(|s| !s.graded_hash.is_empty() && s.graded_hash == graded_hash(lab));
        match graded {
            Some(s) if s.total > 0 && s.passed == s.total => Status::Passed,
            _ if src == problem => Status::Untouched,
            Some(s) => Status::InProgress(Some((s.passed, s.total))),
            None => Status::InProgress(None),
        }
    }
}

/// SHA-256 of `src/main.rs` and the grader files (`tests/**`), in a stable order.
pub fn graded_hash(lab: &Lab) -> String {
    let mut files = vec![lab.src()];
    files.extend(files_under(&lab.dir.join("tests")));
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(
            file.strip_prefix(&lab.dir)
                .unwrap_or(&file)
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update([0]);
        hasher.update(std::fs::read(&file).unwrap_or_default());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(files_under(&path));
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::course::tests::lab;

    fn lab_in(dir: &Path) -> Lab {
        let mut lab = lab(1, 1, "ch1_mini_cat", "lab_01_mini_cat");
        lab.dir = dir.to_path_buf();
        for sub in ["src", "problem", "tests"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(lab.problem(), "todo").unwrap();
        std::fs::write(lab.src(), "todo").unwrap();
        std::fs::write(dir.join("tests/grader.rs"), "#[test] fn t() {}").unwrap();
        lab
    }

    #[test]
    fn status_follows_the_content_of_src() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_in(dir.path());
        let mut state = State::default();
        assert_eq!(state.status(&lab), Status::Untouched);

        std::fs::write(lab.src(), "attempt 1").unwrap();
        assert_eq!(state.status(&lab), Status::InProgress(None));
        state.record(&lab, 3, 5);
        assert_eq!(state.status(&lab), Status::InProgress(Some((3, 5))));

        std::fs::write(lab.src(), "attempt 2").unwrap();
        state.record(&lab, 5, 5);
        assert_eq!(state.status(&lab), Status::Passed);

        // An edit after a pass: in progress again until re-graded.
        std::fs::write(lab.src(), "attempt 3").unwrap();
        assert_eq!(state.status(&lab), Status::InProgress(None));
        // Going back to the graded content finds the grade again.
        std::fs::write(lab.src(), "attempt 2").unwrap();
        assert_eq!(state.status(&lab), Status::Passed);
    }

    #[test]
    fn a_changed_grader_invalidates_the_grade() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_in(dir.path());
        let mut state = State::default();
        std::fs::write(lab.src(), "done").unwrap();
        state.record(&lab, 5, 5);
        std::fs::write(dir.path().join("tests/grader.rs"), "#[test] fn new() {}").unwrap();
        assert_eq!(state.status(&lab), Status::InProgress(None));
    }

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_in(dir.path());
        let mut state = State::default();
        state.record(&lab, 1, 2);
        state.lab(&lab.package).hints_shown = 2;
        state.save(&dir.path().join("lab")).unwrap();
        let loaded = State::load(&dir.path().join("lab"));
        assert_eq!(loaded.labs["ch1_mini_cat"].passed, 1);
        assert_eq!(loaded.labs["ch1_mini_cat"].hints_shown, 2);
        // A missing or corrupt file is an empty state, not an error.
        assert!(State::load(&dir.path().join("nowhere")).labs.is_empty());
    }
}
