//! The course as cargo sees it: labs are workspace packages carrying `[package.metadata.lab]`.
//! There is no second list to keep in sync; adding a lab folder adds a lab.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cargo_metadata::{MetadataCommand, TargetKind};
use serde::Deserialize;

/// One lab: a package of the workspace with three faces.
#[derive(Debug, Clone)]
pub struct Lab {
    pub package: String,
    pub chapter: u32,
    pub number: u32,
    pub title: String,
    /// Services and privileges the grader needs: "postgres", "redis", "strace", "net_raw".
    pub requires: Vec<String>,
    /// The lab folder (where its Cargo.toml is).
    pub dir: PathBuf,
    /// Whether the lab defines `[[bench]]` targets.
    pub has_bench: bool,
}

#[derive(Deserialize)]
struct LabMetadata {
    chapter: u32,
    number: u32,
    title: String,
    #[serde(default)]
    requires: Vec<String>,
}

impl Lab {
    /// `<chapter>.<number>`, the short name used everywhere (`cargo lab test 1.1`).
    pub fn id(&self) -> String {
        format!("{}.{}", self.chapter, self.number)
    }

    /// The folder name, for example `lab_01_mini_cat`.
    pub fn folder(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn src(&self) -> PathBuf {
        self.dir.join("src/main.rs")
    }

    pub fn problem(&self) -> PathBuf {
        self.dir.join("problem/main.rs")
    }

    pub fn solution(&self) -> PathBuf {
        self.dir.join("solution/main.rs")
    }

    pub fn readme(&self) -> PathBuf {
        self.dir.join("README.md")
    }

    /// The hints, revealed one at a time by `cargo lab hint`.
    pub fn hints(&self) -> PathBuf {
        self.dir.join("hints.md")
    }

    /// The known mistakes: `mistakes/*.patch`, in name order.
    pub fn mistakes(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.dir.join("mistakes"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "patch"))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    /// Where verify writes a mistake's patched copy of the solution (gitignored), built by
    /// the `mistake` feature.
    pub fn mistake_scratch(&self) -> PathBuf {
        self.dir.join(".mistake/main.rs")
    }

    /// The lab's schema tool, when its SQL is checked at compile time (sqlx's `query!` macros):
    /// the binary `<package>-schema` built from `schema/main.rs`, which prepares the database
    /// the learner's queries are checked against and prints its URL.
    pub fn schema_tool(&self) -> Option<String> {
        let source = self.dir.join("schema/main.rs");
        source.is_file().then(|| format!("{}-schema", self.package))
    }

    /// The topic folder holding the lab (and its theory.md).
    pub fn topic_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// The chapter folder (holding checkpoint.md).
    pub fn chapter_dir(&self) -> &Path {
        self.topic_dir().parent().unwrap_or(&self.dir)
    }

    /// The lab folder relative to the workspace root, for display.
    pub fn rel_dir(&self, root: &Path) -> String {
        self.dir
            .strip_prefix(root)
            .unwrap_or(&self.dir)
            .display()
            .to_string()
    }
}

/// All labs of the workspace, in course order.
#[derive(Debug)]
pub struct Course {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub labs: Vec<Lab>,
    /// The oldest Rust the course builds with (the workspace's `rust-version`).
    pub rust_version: String,
}

impl Course {
    /// Reads the workspace with `cargo metadata` (no dependency resolution: fast and offline).
    pub fn discover() -> Result<Course> {
        let metadata = MetadataCommand::new().no_deps().exec().context(
            "cannot read the workspace with `cargo metadata`; run this inside the course",
        )?;
        let mut labs = Vec::new();
        let mut rust_version = None;
        for package in metadata.workspace_packages() {
            if rust_version.is_none() {
                rust_version = package.rust_version.as_ref().map(|v| v.to_string());
            }
            let Some(meta) = package.metadata.get("lab") else {
                continue;
            };
            let meta: LabMetadata = serde_json::from_value(meta.clone()).with_context(|| {
                format!("bad [package.metadata.lab] in {}", package.manifest_path)
            })?;
            labs.push(Lab {
                package: package.name.to_string(),
                chapter: meta.chapter,
                number: meta.number,
                title: meta.title,
                requires: meta.requires,
                dir: package
                    .manifest_path
                    .parent()
                    .map(|p| p.as_std_path().to_path_buf())
                    .unwrap_or_default(),
                has_bench: package
                    .targets
                    .iter()
                    .any(|t| t.kind.contains(&TargetKind::Bench)),
            });
        }
        labs.sort_by_key(|lab| (lab.chapter, lab.number));
        Ok(Course {
            root: metadata.workspace_root.into_std_path_buf(),
            target_dir: metadata.target_directory.into_std_path_buf(),
            labs,
            rust_version: rust_version.context("the workspace sets no rust-version")?,
        })
    }

    /// Where the runner keeps its state (under `target/`, like every other build product).
    pub fn state_dir(&self) -> PathBuf {
        self.target_dir.join("lab")
    }

    pub fn progress_file(&self) -> PathBuf {
        self.root.join("PROGRESS.md")
    }

    /// Finds a lab by `chapter.number`, package name, folder name or path.
    pub fn find(&self, name: &str) -> Result<&Lab> {
        find_lab(
            &self.labs,
            name,
            &std::env::current_dir().unwrap_or_default(),
        )
    }

    /// The lab whose folder contains the current directory, if any.
    pub fn lab_here(&self) -> Option<&Lab> {
        let cwd = std::env::current_dir().ok()?;
        self.labs.iter().find(|lab| cwd.starts_with(&lab.dir))
    }

    /// The chapter's title, from the first line of its own `checkpoint.md`
    /// (`# Chapter 2 checkpoint: OS`), so no second list of titles is kept.
    pub fn chapter_title(&self, chapter: u32) -> String {
        self.labs
            .iter()
            .find(|l| l.chapter == chapter)
            .and_then(|lab| std::fs::read_to_string(lab.chapter_dir().join("checkpoint.md")).ok())
            .and_then(|text| checkpoint_title(chapter, &text))
            .unwrap_or_default()
    }

    /// Labs of one chapter.
    pub fn chapter(&self, chapter: u32) -> Vec<&Lab> {
        self.labs.iter().filter(|l| l.chapter == chapter).collect()
    }
}

/// The title in a checkpoint's first line, `# Chapter N checkpoint: <title>`.
pub fn checkpoint_title(chapter: u32, checkpoint: &str) -> Option<String> {
    let heading = checkpoint.lines().next()?;
    let title = heading.strip_prefix(&format!("# Chapter {chapter} checkpoint: "))?;
    (!title.trim().is_empty()).then(|| title.trim().to_string())
}

/// Resolves a lab name: `3.2`, `ch3_udp_echo`, `lab_02_udp_echo`, `udp_echo`, or a path such as `.`.
pub fn find_lab<'a>(labs: &'a [Lab], name: &str, cwd: &Path) -> Result<&'a Lab> {
    let name = name.trim();
    if let Some((c, n)) = name.split_once('.')
        && let (Ok(c), Ok(n)) = (c.parse::<u32>(), n.parse::<u32>())
    {
        return labs
            .iter()
            .find(|l| l.chapter == c && l.number == n)
            .with_context(|| format!("there is no lab {name}{}", suggest(labs, name)));
    }
    let by_name: Vec<&Lab> = labs
        .iter()
        .filter(|l| {
            let folder = l.folder();
            l.package == name
                || folder == name
                || folder
                    .split_once('_')
                    .and_then(|(_, rest)| rest.split_once('_'))
                    .is_some_and(|(_, slug)| slug == name)
        })
        .collect();
    match by_name.as_slice() {
        [lab] => return Ok(lab),
        [] => {}
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|l| format!("{} ({})", l.id(), l.package))
                .collect();
            bail!("`{name}` names several labs: {}", names.join(", "));
        }
    }
    // A path: `.` inside a lab folder, or `chapter_01_foundation/.../lab_01_mini_cat`.
    let path = cwd.join(name);
    if let Ok(path) = path.canonicalize()
        && let Some(lab) = labs
            .iter()
            .find(|l| l.dir.canonicalize().is_ok_and(|dir| path.starts_with(dir)))
    {
        return Ok(lab);
    }
    bail!("there is no lab `{name}`{}", suggest(labs, name))
}

/// ", did you mean 1.2 (ch1_parallel_sum)?" when some lab name is close to `name`.
fn suggest(labs: &[Lab], name: &str) -> String {
    let mut scored: Vec<(f64, &Lab)> = labs
        .iter()
        .map(|l| {
            let candidates = [
                l.id(),
                l.package.clone(),
                l.folder(),
                l.title.to_lowercase(),
            ];
            let score = candidates
                .iter()
                .map(|c| strsim::jaro_winkler(&name.to_lowercase(), c))
                .fold(0.0, f64::max);
            (score, l)
        })
        .filter(|(score, _)| *score > 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    if scored.is_empty() {
        return "; `cargo lab list` shows them all".to_string();
    }
    let names: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, l)| format!("{} ({})", l.id(), l.package))
        .collect();
    format!("; did you mean {}?", names.join(" or "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_chapter_is_titled_by_its_checkpoint() {
        let text = "# Chapter 2 checkpoint: OS\n\nAnswer each question...";
        assert_eq!(checkpoint_title(2, text).as_deref(), Some("OS"));
        assert_eq!(checkpoint_title(3, text), None, "another chapter's number");
        assert_eq!(checkpoint_title(6, "# Chapter 6 checkpoint\n"), None);
    }

    pub(crate) fn lab(chapter: u32, number: u32, package: &str, folder: &str) -> Lab {
        Lab {
            package: package.into(),
            chapter,
            number,
            title: package.into(),
            requires: vec![],
            dir: PathBuf::from(format!("/course/chapter_0{chapter}/topic/{folder}")),
            has_bench: false,
        }
    }

    #[test]
    fn a_lab_with_schema_main_rs_has_a_schema_tool() {
        let dir = tempfile::tempdir().unwrap();
        let mut sql = lab(4, 1, "ch4_sqlx_crud", "lab_01_sqlx_crud");
        sql.dir = dir.path().to_path_buf();
        assert_eq!(sql.schema_tool(), None);
        std::fs::create_dir(dir.path().join("schema")).unwrap();
        std::fs::write(dir.path().join("schema/main.rs"), "fn main() {}").unwrap();
        assert_eq!(sql.schema_tool().as_deref(), Some("ch4_sqlx_crud-schema"));
    }

    fn labs() -> Vec<Lab> {
        vec![
            lab(1, 1, "ch1_mini_cat", "lab_01_mini_cat"),
            lab(1, 2, "ch1_parallel_sum", "lab_02_parallel_sum"),
            lab(3, 1, "ch3_chat_server", "lab_01_chat_server"),
            lab(3, 2, "ch3_udp_echo", "lab_02_udp_echo"),
        ]
    }

    #[test]
    fn finds_by_chapter_and_number() {
        let labs = labs();
        assert_eq!(
            find_lab(&labs, "3.2", Path::new("/")).unwrap().package,
            "ch3_udp_echo"
        );
        assert_eq!(
            find_lab(&labs, "1.1", Path::new("/")).unwrap().package,
            "ch1_mini_cat"
        );
    }

    #[test]
    fn finds_by_package_folder_and_slug() {
        let labs = labs();
        for name in ["ch1_parallel_sum", "lab_02_parallel_sum", "parallel_sum"] {
            assert_eq!(
                find_lab(&labs, name, Path::new("/")).unwrap().id(),
                "1.2",
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_names_suggest_close_ones() {
        let labs = labs();
        let err = find_lab(&labs, "ch1_minicat", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 1.1 (ch1_mini_cat)"), "{err}");
        let err = find_lab(&labs, "9.9", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no lab 9.9"), "{err}");
        let err = find_lab(&labs, "zzzzzz", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cargo lab list"), "{err}");
    }

    #[test]
    fn finds_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let lab_dir = dir.path().join("chapter_01/topic/lab_01_mini_cat");
        std::fs::create_dir_all(lab_dir.join("src")).unwrap();
        let mut labs = labs();
        labs[0].dir = lab_dir.clone();
        assert_eq!(
            find_lab(&labs, ".", &lab_dir.join("src")).unwrap().id(),
            "1.1"
        );
        assert!(find_lab(&labs, ".", dir.path()).is_err());
    }

    #[test]
    fn ids_and_folders() {
        let lab = lab(2, 7, "ch2_echo_tokio", "lab_07_echo_tokio");
        assert_eq!(lab.id(), "2.7");
        assert_eq!(lab.folder(), "lab_07_echo_tokio");
        assert_eq!(lab.chapter_dir(), Path::new("/course/chapter_02"));
    }
}
