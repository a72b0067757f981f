//! The learner's commands: status, list, next, test, watch, hint, reset, solution, doctor, bench.
//! Each returns `Ok(true)` on success, `Ok(false)` for a clean "no" (a failing grade), and an
//! error for everything that went wrong around the lab.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use notify::{RecursiveMode, Watcher};

use crate::course::{Course, Lab};
use crate::grade::{self, Face, Noise, Outcome};
use crate::state::{State, Status};
use crate::{backup, doctor, progress, readme, services, ui};

/// How long one test executable may run under `cargo lab test`.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The lab a command is about: named, or the one whose folder we are in.
pub fn pick<'a>(course: &'a Course, name: Option<&str>) -> Result<&'a Lab> {
    match name {
        Some(name) => course.find(name),
        None => course.lab_here().context(
            "which lab? name one (`cargo lab test 1.1`) or run the command inside a lab folder",
        ),
    }
}

/// The chapter's name, as the course map in README.md gives it.
fn chapter_title(chapter: u32) -> &'static str {
    match chapter {
        1 => "Foundation",
        2 => "Operating system",
        3 => "Network",
        4 => "Database",
        5 => "Distributed patterns",
        6 => "Capstone",
        7 => "Syscall networking",
        _ => "",
    }
}

fn next_lab<'a>(course: &'a Course, state: &State) -> Option<&'a Lab> {
    course
        .labs
        .iter()
        .find(|lab| state.status(lab) != Status::Passed)
}

/// The lab the learner is on: the first one not passed yet.
pub fn upcoming(course: &Course) -> Result<&Lab> {
    next_lab(course, &State::load(&course.state_dir())).ok_or_else(|| {
        anyhow::anyhow!("every lab passes: name one to prepare, e.g. `cargo lab prepare 7.8`")
    })
}

pub fn status(course: &Course) -> Result<bool> {
    let state = State::load(&course.state_dir());
    println!("{}\n", ui::bold("OS & Network for Backend, in Rust"));
    let mut chapter = 0;
    let mut passed = 0;
    for lab in &course.labs {
        if lab.chapter != chapter {
            chapter = lab.chapter;
            println!(
                "{}",
                ui::bold(&format!("Chapter {chapter}: {}", chapter_title(chapter)))
            );
        }
        let status = state.status(lab);
        passed += usize::from(status == Status::Passed);
        println!("  {} {}", ui::lab_name(lab), ui::status(status));
    }
    println!(
        "\n{passed} of {} labs passed. {}",
        course.labs.len(),
        ui::dim("Details: PROGRESS.md")
    );
    match next_lab(course, &state) {
        Some(lab) => println!(
            "Next: lab {} {}  →  {}   {}",
            lab.id(),
            lab.title,
            ui::bold(&format!("cargo lab test {}", lab.id())),
            ui::dim(&format!("({})", lab.rel_dir(&course.root)))
        ),
        None => println!("{}", ui::green("Every lab passes. Well done!")),
    }
    Ok(true)
}

pub fn list(course: &Course) -> Result<bool> {
    for lab in &course.labs {
        let requires = if lab.requires.is_empty() {
            String::new()
        } else {
            ui::dim(&format!("  requires {}", lab.requires.join(", ")))
        };
        println!(
            "{} {:<24} {}{requires}",
            ui::lab_name(lab),
            lab.package,
            ui::dim(&lab.rel_dir(&course.root))
        );
    }
    Ok(true)
}

pub fn next(course: &Course) -> Result<bool> {
    let state = State::load(&course.state_dir());
    let Some(lab) = next_lab(course, &state) else {
        println!("{}", ui::green("Every lab passes. Well done!"));
        return Ok(true);
    };
    println!("{}", ui::bold(&format!("Lab {} {}", lab.id(), lab.title)));
    if let Some(goal) = std::fs::read_to_string(lab.readme())
        .ok()
        .and_then(|r| readme::goal(&r))
    {
        println!("\n{goal}\n");
    }
    println!("  read     {}/README.md", lab.rel_dir(&course.root));
    println!("  edit     {}/src/main.rs", lab.rel_dir(&course.root));
    println!("  grade    cargo lab test {}", lab.id());
    println!("  stuck?   cargo lab hint {}", lab.id());
    println!(
        "  {}  cargo lab prepare {}   builds its grader now, while you read",
        ui::dim("tip:"),
        lab.id()
    );
    Ok(true)
}

/// Builds the graders of `labs` against the learner's files (the `src` face), with a progress
/// bar: the first `cargo lab test` of each then grades in seconds.
pub fn prepare(course: &Course, labs: &[&Lab]) -> Result<bool> {
    let names: Vec<String> = labs.iter().map(|l| l.id()).collect();
    println!(
        "{} {} ({}): their dependencies compile once, then every grade is quick",
        ui::cyan("Preparing"),
        if labs.len() == 1 { "lab" } else { "labs" },
        names.join(", ")
    );
    let started = std::time::Instant::now();
    let build = grade::build(course, labs, Face::Src, Noise::Progress)?;
    let seconds = started.elapsed().as_secs_f64();
    // A half-written src/main.rs may not compile yet: its dependencies are built all the same.
    let unfinished: Vec<&str> = labs
        .iter()
        .filter(|l| build.errors.contains_key(&l.package))
        .map(|l| l.package.as_str())
        .collect();
    if build.success || !unfinished.is_empty() {
        println!(
            "{} ready in {seconds:.0} s; grade with `cargo lab test {}`",
            ui::ok_mark(),
            names[0]
        );
        if !unfinished.is_empty() {
            println!(
                "  {} src/main.rs does not compile yet in {}: everything it needs is built",
                ui::dim("note:"),
                unfinished.join(", ")
            );
        }
        Ok(true)
    } else {
        eprintln!("{}", build.stderr.trim_end());
        Ok(false)
    }
}

pub fn test(course: &Course, lab: &Lab) -> Result<bool> {
    println!(
        "{} lab {} {} {}",
        ui::cyan("Grading"),
        lab.id(),
        lab.title,
        ui::dim(&format!("({}/src/main.rs)", lab.rel_dir(&course.root)))
    );
    services::prepare(course, &[lab])?;
    let build = grade::build(course, &[lab], Face::Src, Noise::Show)?;
    let run = grade::run_lab(lab, &build, TEST_TIMEOUT);
    let mut state = State::load(&course.state_dir());

    if let Some(error) = &run.error {
        state.record(lab, 0, 0);
        state.save(&course.state_dir())?;
        let first = error.lines().next().unwrap_or_default();
        println!("\n{} the grader {first}", ui::fail_mark());
        if first.starts_with("does not compile") {
            println!(
                "  Fix the compiler errors above, then run `cargo lab test {}` again.",
                lab.id()
            );
        }
        return Ok(false);
    }
    println!();
    // A fresh stub fails every test at the same `todo!()`: say so once, not once per test.
    let failing: Vec<_> = run
        .tests
        .iter()
        .filter(|t| matches!(t.outcome, Outcome::Failed | Outcome::TimedOut))
        .collect();
    let todos: Vec<&str> = failing
        .iter()
        .filter_map(|t| grade::unimplemented(&t.message))
        .collect();
    if !failing.is_empty() && todos.len() == failing.len() && run.count(Outcome::Passed) == 0 {
        let mut distinct = todos.clone();
        distinct.sort_unstable();
        distinct.dedup();
        println!(
            "  {} all {} tests stop at an unimplemented `todo!()` in src/main.rs:",
            ui::fail_mark(),
            failing.len()
        );
        for todo in distinct.iter().take(5) {
            println!("{}", ui::dim(&ui::indent(todo, 6)));
        }
        println!(
            "  Implement them, then run `cargo lab test {}` again.",
            lab.id()
        );
    }
    for test in &run.tests {
        if todos.len() == failing.len() && run.count(Outcome::Passed) == 0 {
            break;
        }
        match test.outcome {
            Outcome::Passed => println!("  {} {}", ui::ok_mark(), test.name),
            Outcome::Ignored => println!(
                "  {} {} {}",
                ui::warn_mark(),
                test.name,
                ui::dim("(ignored)")
            ),
            Outcome::Failed | Outcome::TimedOut => {
                println!("  {} {}", ui::fail_mark(), ui::bold(&test.name));
                if let Some(todo) = grade::unimplemented(&test.message) {
                    println!("{}", ui::dim(&ui::indent(&format!("reaches {todo}"), 6)));
                    continue;
                }
                let why = grade::summary(&test.message, 6);
                if !why.is_empty() {
                    println!("{}", ui::dim(&ui::indent(&why, 6)));
                }
            }
        }
    }
    let passed = run.count(Outcome::Passed);
    let total = run.tests.len();
    state.record(lab, passed, total);
    state.save(&course.state_dir())?;
    println!(
        "\n{passed} of {total} tests pass {}",
        ui::dim(&format!("({:.1}s)", run.duration.as_secs_f64()))
    );
    if run.all_passed() {
        progress::tick(&course.progress_file(), lab)?;
        let date = chrono::Local::now().format("%Y-%m-%d").to_string();
        if progress::complete_chapter(
            &course.progress_file(),
            lab.chapter,
            &course.chapter(lab.chapter),
            &date,
        )? {
            println!(
                "{} Chapter {} complete: its completion date is in PROGRESS.md's Overall Progress.",
                ui::ok_mark(),
                lab.chapter
            );
        }
        println!(
            "{} Lab {} passed and ticked in PROGRESS.md. Compare with the reference: {}",
            ui::ok_mark(),
            lab.id(),
            ui::bold(&format!("cargo lab solution {}", lab.id()))
        );
        if let Some(next) = next_lab(course, &state) {
            println!(
                "Next: lab {} {}  →  cargo lab test {}",
                next.id(),
                next.title,
                next.id()
            );
        }
        Ok(true)
    } else {
        println!(
            "{}",
            ui::dim(&format!(
                "Details: cd {} && cargo test <name>.  Stuck? cargo lab hint {}",
                lab.rel_dir(&course.root),
                lab.id()
            ))
        );
        Ok(false)
    }
}

pub fn watch(course: &Course, lab: &Lab) -> Result<bool> {
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && (event.kind.is_modify() || event.kind.is_create())
            && event
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "rs"))
        {
            let _ = tx.send(());
        }
    })?;
    for dir in ["src", "tests"] {
        let path = lab.dir.join(dir);
        if path.is_dir() {
            watcher.watch(&path, RecursiveMode::Recursive)?;
        }
    }
    let term = console::Term::stdout();
    loop {
        let _ = term.clear_screen();
        test(course, lab)?;
        println!(
            "\n{}",
            ui::dim(&format!(
                "Watching {}/src: save to re-grade, Ctrl-C to stop.",
                lab.rel_dir(&course.root)
            ))
        );
        rx.recv().context("file watcher stopped")?;
        // Editors write in several steps: let a burst of events settle into one re-grade.
        while rx.recv_timeout(Duration::from_millis(300)).is_ok() {}
    }
}

pub fn hint(course: &Course, lab: &Lab, all: bool) -> Result<bool> {
    let text = std::fs::read_to_string(lab.hints())
        .with_context(|| format!("cannot read {}", lab.hints().display()))?;
    let hints = readme::hints(&text);
    if hints.is_empty() {
        bail!("lab {} has no hints in its hints.md", lab.id());
    }
    let mut state = State::load(&course.state_dir());
    let shown = state.lab(&lab.package).hints_shown;
    let range = if all {
        0..hints.len()
    } else if shown >= hints.len() {
        println!("{}", ui::dim("That was the last hint; here it is again."));
        hints.len() - 1..hints.len()
    } else {
        shown..shown + 1
    };
    for i in range.clone() {
        println!(
            "{}",
            ui::bold(&format!(
                "Hint {}/{} for lab {} {}",
                i + 1,
                hints.len(),
                lab.id(),
                lab.title
            ))
        );
        println!("{}\n", ui::indent(&hints[i], 2));
    }
    let entry = state.lab(&lab.package);
    entry.hints_shown = entry.hints_shown.max(range.end);
    state.save(&course.state_dir())?;
    if !all && range.end < hints.len() {
        println!(
            "{}",
            ui::dim(&format!("More: cargo lab hint {} (all: --all)", lab.id()))
        );
    }
    Ok(true)
}

pub fn reset(course: &Course, lab: &Lab, restore: Option<&str>, list: bool) -> Result<bool> {
    let rel = |p: &Path| {
        p.strip_prefix(&course.root)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    if list {
        let backups = backup::list(lab);
        if backups.is_empty() {
            println!("Lab {} has no backup.", lab.id());
        }
        for b in backups {
            println!("  {}", rel(&b));
        }
        return Ok(true);
    }
    if let Some(which) = restore {
        let which = (!which.is_empty()).then_some(which);
        let restored = backup::restore(lab, which)?;
        println!(
            "{} src/main.rs of lab {} is {} again (your previous file is backed up too).",
            ui::ok_mark(),
            lab.id(),
            rel(&restored)
        );
        return Ok(true);
    }
    match backup::reset(lab)? {
        Some(saved) => println!(
            "{} Your file is saved as {}.\n  src/main.rs of lab {} is the original stub again. Undo: {}",
            ui::ok_mark(),
            rel(&saved),
            lab.id(),
            ui::bold(&format!("cargo lab reset {} --restore", lab.id()))
        ),
        None => println!(
            "{} src/main.rs of lab {} is the original stub.",
            ui::ok_mark(),
            lab.id()
        ),
    }
    Ok(true)
}

pub fn solution(course: &Course, lab: &Lab, force: bool) -> Result<bool> {
    let state = State::load(&course.state_dir());
    if state.status(lab) != Status::Passed && !force {
        println!(
            "Lab {} does not pass yet. Try `cargo lab hint {}` first, or look anyway with `cargo lab solution {} --force`.",
            lab.id(),
            lab.id(),
            lab.id()
        );
        return Ok(false);
    }
    let yours = std::fs::read_to_string(lab.src())?;
    let reference = std::fs::read_to_string(lab.solution())?;
    let diff = similar::TextDiff::from_lines(&yours, &reference);
    println!("{}", ui::red("--- src/main.rs (yours)"));
    println!("{}", ui::green("+++ solution/main.rs (reference)"));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        println!("{}", ui::cyan(&hunk.header().to_string()));
        for change in hunk.iter_changes() {
            let line = format!("{}{}", change.tag(), change.value().trim_end_matches('\n'));
            match change.tag() {
                similar::ChangeTag::Delete => println!("{}", ui::red(&line)),
                similar::ChangeTag::Insert => println!("{}", ui::green(&line)),
                similar::ChangeTag::Equal => println!("{line}"),
            }
        }
    }
    if yours == reference {
        println!("Your file is identical to the reference.");
    }
    Ok(true)
}

pub fn doctor(course: &Course) -> Result<bool> {
    let rust_version = std::fs::read_to_string(course.root.join("Cargo.toml"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("rust-version = "))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "1.85".into());
    println!("{}", ui::bold("Checking this machine for the course"));
    let ok = doctor::report(&doctor::checks(&rust_version));
    println!(
        "\n{} labs found. {}",
        course.labs.len(),
        if ok {
            ui::green("Ready.")
        } else {
            ui::red("Fix the ✗ lines above.")
        }
    );
    Ok(ok)
}

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
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&course.root)
            .args(["bench", "--package", &lab.package]);
        if !src {
            cmd.args(["--no-default-features", "--features", "solution"]);
        }
        ok &= cmd.status().context("cannot run cargo bench")?.success();
    }
    Ok(ok)
}
