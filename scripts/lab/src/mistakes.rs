//! Known mistakes: the wrong answers a learner writes when they skip a lab's idea.
//!
//! Each is `mistakes/<name>.patch` in the lab folder: a header, then a unified diff against
//! `solution/main.rs`.
//!
//! ```text
//! Mistake: idle workers poll the queue every millisecond instead of sleeping
//! Breaks: requirement 5 (no busy waiting)
//! Caught by: idle_workers_use_no_cpu
//!
//! --- a/solution/main.rs
//! +++ b/solution/main.rs
//! @@ -10,7 +10,7 @@
//! ...
//! ```
//!
//! `Caught by` lists the tests (libtest names, comma-separated) that must fail once the patch
//! is applied. A header value may continue on indented lines. Make one with
//! `diff -u --label a/solution/main.rs --label b/solution/main.rs solution/main.rs wrong.rs`.

/// What `<lab>/.mistake/main.rs` holds when verify is not proving a mistake: the file is
/// tracked, because cargo (`cargo fmt` among others) expects every bin target's file to exist.
pub const SCRATCH_AT_REST: &str = "\
//! Scratch file of `cargo lab verify`. While verify proves this lab's known mistakes
//! (`mistakes/*.patch`), the patched solution is written here and built with
//! `--features mistake`; verify puts this text back when it is done. Nothing to edit here.

fn main() {}
";

use std::path::Path;

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone)]
pub struct Mistake {
    /// The file stem, for example `01_spinning_workers`.
    pub name: String,
    /// What the wrong answer does.
    pub what: String,
    /// The requirement or lesson it breaks.
    pub breaks: String,
    /// Tests that must fail against it.
    pub caught_by: Vec<String>,
    /// The unified diff.
    pub diff: String,
}

impl Mistake {
    pub fn load(path: &Path) -> Result<Mistake> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        parse(&name, &text)
    }

    /// The solution with this mistake applied.
    pub fn apply(&self, solution: &str) -> Result<String> {
        let patch = diffy::Patch::from_str(&self.diff)
            .map_err(|e| anyhow::anyhow!("`{}` is not a unified diff: {e}", self.name))?;
        diffy::apply(solution, &patch).map_err(|e| {
            anyhow::anyhow!(
                "mistake `{}` no longer applies to solution/main.rs ({e}); remake the patch",
                self.name
            )
        })
    }
}

pub fn parse(name: &str, text: &str) -> Result<Mistake> {
    let Some(diff_start) = text
        .match_indices("--- ")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
    else {
        bail!("mistake `{name}` has no diff (a `--- a/solution/main.rs` line)");
    };
    let (header, diff) = text.split_at(diff_start);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in header.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace)
            && let Some((_, value)) = fields.last_mut()
        {
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            bail!("mistake `{name}`: header line `{line}` is not `Key: value`");
        };
        fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let field = |key: &str| -> Result<String> {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .with_context(|| format!("mistake `{name}` has no `{}:` header line", title(key)))
    };
    let caught_by: Vec<String> = field("caught by")?
        .split(',')
        .map(|t| t.trim().trim_matches('`').to_string())
        .filter(|t| !t.is_empty())
        .collect();
    Ok(Mistake {
        name: name.to_string(),
        what: field("mistake")?,
        breaks: field("breaks")?,
        caught_by,
        diff: diff.to_string(),
    })
}

fn title(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOLUTION: &str = "fn main() {\n    let x = 1;\n    println!(\"{x}\");\n}\n";
    const PATCH: &str = "Mistake: prints two\nBreaks: requirement 1 (prints one)\n  and the lesson\nCaught by: prints_one, `mod::other`\n\n--- a/solution/main.rs\n+++ b/solution/main.rs\n@@ -1,4 +1,4 @@\n fn main() {\n-    let x = 1;\n+    let x = 2;\n     println!(\"{x}\");\n }\n";

    #[test]
    fn parses_the_header_and_applies_the_diff() {
        let m = parse("01_two", PATCH).unwrap();
        assert_eq!(m.what, "prints two");
        assert_eq!(m.breaks, "requirement 1 (prints one) and the lesson");
        assert_eq!(m.caught_by, ["prints_one", "mod::other"]);
        assert_eq!(
            m.apply(SOLUTION).unwrap(),
            SOLUTION.replace("x = 1", "x = 2")
        );
    }

    #[test]
    fn a_patch_that_no_longer_applies_is_an_error() {
        let m = parse("01_two", PATCH).unwrap();
        let err = m.apply(&SOLUTION.replace("x = 1", "y = 1")).unwrap_err();
        assert!(err.to_string().contains("no longer applies"), "{err}");
    }

    #[test]
    fn a_header_without_tests_is_an_error() {
        let text = PATCH.replace("Caught by: prints_one, `mod::other`\n", "");
        let err = parse("01_two", &text).unwrap_err();
        assert!(err.to_string().contains("`Caught by:`"), "{err}");
        let err = parse("01_two", "Mistake: x\n").unwrap_err();
        assert!(err.to_string().contains("has no diff"), "{err}");
    }
}
