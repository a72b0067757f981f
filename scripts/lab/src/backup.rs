//! `cargo lab reset` never loses work: the learner's file is copied to the lab's
//! `.lab-backups/` folder (ignored by git, untouched by `cargo clean`) before anything
//! overwrites it, and `cargo lab reset --restore` brings any copy back.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::course::Lab;

/// Folder of a lab's backups.
pub fn dir(lab: &Lab) -> PathBuf {
    lab.dir.join(".lab-backups")
}

/// Backups of a lab, oldest first. Names sort by time: `main-20261121-094512.123.rs`.
pub fn list(lab: &Lab) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(lab))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Copies `src/main.rs` to a new backup, unless it is identical to the stub or to the newest
/// backup (nothing would be lost). Returns the backup's path when one was written.
pub fn save(lab: &Lab) -> Result<Option<PathBuf>> {
    let current = std::fs::read(lab.src()).unwrap_or_default();
    if current.is_empty() || current == std::fs::read(lab.problem()).unwrap_or_default() {
        return Ok(None);
    }
    if let Some(newest) = list(lab).last()
        && std::fs::read(newest).unwrap_or_default() == current
    {
        return Ok(Some(newest.clone()));
    }
    let folder = dir(lab);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S%.3f");
    let mut path = folder.join(format!("main-{stamp}.rs"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = folder.join(format!("main-{stamp}-{n}.rs"));
    }
    std::fs::write(&path, &current).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(path))
}

/// Backs up `src/main.rs`, then copies the stub over it.
pub fn reset(lab: &Lab) -> Result<Option<PathBuf>> {
    let backup = save(lab)?;
    std::fs::copy(lab.problem(), lab.src())
        .with_context(|| format!("cannot write {}", lab.src().display()))?;
    Ok(backup)
}

/// Restores a backup (the newest, or the one whose file name contains `which`), after backing
/// up the current file so that the restore itself loses nothing. Returns the restored path.
pub fn restore(lab: &Lab, which: Option<&str>) -> Result<PathBuf> {
    let backups = list(lab);
    let chosen = match which {
        None => backups.last().cloned(),
        Some(w) => backups
            .iter()
            .rev()
            .find(|p| file_name(p).contains(w))
            .cloned(),
    };
    let Some(chosen) = chosen else {
        if backups.is_empty() {
            bail!(
                "lab {} has no backup yet (they are made by `cargo lab reset`)",
                lab.id()
            );
        }
        let names: Vec<String> = backups.iter().map(|p| file_name(p)).collect();
        bail!(
            "no backup matches `{}`; there are: {}",
            which.unwrap_or(""),
            names.join(", ")
        );
    };
    let contents = std::fs::read(&chosen)?;
    save(lab)?;
    std::fs::write(lab.src(), contents)
        .with_context(|| format!("cannot write {}", lab.src().display()))?;
    Ok(chosen)
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::course::tests::lab;

    fn lab_in(dir: &Path) -> Lab {
        let mut lab = lab(1, 1, "ch1_mini_cat", "lab_01_mini_cat");
        lab.dir = dir.to_path_buf();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("problem")).unwrap();
        std::fs::write(lab.problem(), "stub").unwrap();
        std::fs::write(lab.src(), "stub").unwrap();
        lab
    }

    #[test]
    fn reset_backs_up_then_restores() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_in(dir.path());
        std::fs::write(lab.src(), "my work").unwrap();

        let backup = reset(&lab).unwrap().expect("a backup");
        assert_eq!(std::fs::read_to_string(lab.src()).unwrap(), "stub");
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), "my work");

        let restored = restore(&lab, None).unwrap();
        assert_eq!(restored, backup);
        assert_eq!(std::fs::read_to_string(lab.src()).unwrap(), "my work");
    }

    #[test]
    fn resetting_the_stub_makes_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_in(dir.path());
        assert_eq!(reset(&lab).unwrap(), None);
        assert!(list(&lab).is_empty());
        assert!(
            restore(&lab, None)
                .unwrap_err()
                .to_string()
                .contains("no backup")
        );
    }

    #[test]
    fn restore_keeps_the_current_work_too() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_in(dir.path());
        std::fs::write(lab.src(), "first try").unwrap();
        reset(&lab).unwrap();
        std::fs::write(lab.src(), "second try").unwrap();
        restore(&lab, None).unwrap();
        let contents: Vec<String> = list(&lab)
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert!(contents.contains(&"first try".to_string()));
        assert!(contents.contains(&"second try".to_string()));
        assert_eq!(std::fs::read_to_string(lab.src()).unwrap(), "first try");
    }

    #[test]
    fn unknown_backup_name_lists_the_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_in(dir.path());
        std::fs::write(lab.src(), "work").unwrap();
        reset(&lab).unwrap();
        let err = restore(&lab, Some("1999")).unwrap_err().to_string();
        assert!(err.contains("main-"), "{err}");
    }
}
