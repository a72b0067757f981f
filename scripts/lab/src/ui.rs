//! Terminal output: marks, colours and the lab line shared by every command.
//! Colours follow the terminal (`console` honours `NO_COLOR` and `CLICOLOR_FORCE`).

use console::style;

use crate::course::Lab;
use crate::state::Status;

pub fn ok_mark() -> String {
    style("✓").green().bold().to_string()
}

pub fn fail_mark() -> String {
    style("✗").red().bold().to_string()
}

pub fn warn_mark() -> String {
    style("!").yellow().bold().to_string()
}

pub fn bold(text: &str) -> String {
    style(text).bold().to_string()
}

pub fn dim(text: &str) -> String {
    style(text).dim().to_string()
}

pub fn green(text: &str) -> String {
    style(text).green().to_string()
}

pub fn red(text: &str) -> String {
    style(text).red().to_string()
}

pub fn yellow(text: &str) -> String {
    style(text).yellow().to_string()
}

pub fn cyan(text: &str) -> String {
    style(text).cyan().to_string()
}

/// `untouched`, `in progress (3/5)`, `passed`, coloured.
pub fn status(status: Status) -> String {
    match status {
        Status::Untouched => dim("· untouched"),
        Status::InProgress(None) => yellow("◐ in progress"),
        Status::InProgress(Some((passed, total))) => {
            yellow(&format!("◐ in progress ({passed}/{total} tests)"))
        }
        Status::Passed => green("✓ passed"),
    }
}

/// `1.1  Mini Cat/Grep` with aligned columns.
pub fn lab_name(lab: &Lab) -> String {
    format!("{:>5}  {:<40}", lab.id(), lab.title)
}

/// Indents every line of `text` by `n` spaces.
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
