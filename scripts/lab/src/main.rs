//! `cargo lab`: the course runner.
//!
//! A few plain modules named for what they do: `course` finds the labs, `grade` builds and runs
//! graders, `state` remembers results, `progress` ticks PROGRESS.md, `backup` keeps learner
//! work safe, `readme` reads hints and checks structure, `doctor` inspects the machine,
//! `verify` is the maintainer's proof, `commands` holds the learner's commands.

mod backup;
mod commands;
mod course;
mod doctor;
mod grade;
mod mistakes;
mod progress;
mod readme;
mod services;
mod state;
mod ui;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo lab",
    bin_name = "cargo lab",
    about = "The course runner: your progress, grading, hints, and the maintainer's verify.",
    after_help = "A lab is named by chapter.number (1.1), package (ch1_mini_cat), folder (lab_01_mini_cat), \
slug (mini_cat) or path (.). Without a name, commands use the lab of the current folder."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Chapters and labs with your progress, and the next lab (the default).
    Status,
    /// Every lab with its package, folder and what it requires.
    List,
    /// The next lab to do, with its goal.
    Next,
    /// Grade your src/main.rs; a pass ticks the lab in PROGRESS.md.
    Test { lab: Option<String> },
    /// Build the graders of the next lab (or of a lab, or a chapter) ahead, with a progress bar.
    Prepare {
        lab: Option<String>,
        #[arg(long, value_name = "N", conflicts_with = "lab")]
        chapter: Option<u32>,
    },
    /// Re-grade every time you save.
    Watch { lab: Option<String> },
    /// Show the next hint of a lab (`--all` for every hint).
    Hint {
        lab: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Put the original stub back in src/main.rs (your file is backed up first).
    Reset {
        lab: Option<String>,
        /// Bring back a backup instead: the newest, or the one whose name contains VALUE.
        #[arg(long, value_name = "VALUE", num_args = 0..=1, default_missing_value = "")]
        restore: Option<String>,
        /// List the lab's backups.
        #[arg(long)]
        list: bool,
    },
    /// Compare your src/main.rs with the reference solution.
    Solution {
        lab: Option<String>,
        /// Show it even though the lab is not passed yet.
        #[arg(long)]
        force: bool,
    },
    /// Check this machine: toolchain, tools, services, privileges.
    Doctor,
    /// Prove the course: every solution passes its grader, every stub fails every test, every
    /// known mistake fails the tests it names.
    Verify {
        lab: Option<String>,
        #[arg(long, value_name = "N", conflicts_with = "lab")]
        chapter: Option<u32>,
        /// Also require src/main.rs to be identical to problem/main.rs (a pristine checkout).
        #[arg(long)]
        pristine: bool,
        /// Do not start PostgreSQL or Redis (labs that need them then fail with the fix).
        #[arg(long)]
        no_services: bool,
        /// Skip the known mistakes (mistakes/*.patch): only solutions and stubs.
        #[arg(long)]
        no_mistakes: bool,
        /// Prove only the mistakes whose file name contains NAME.
        #[arg(long, value_name = "NAME", conflicts_with = "no_mistakes")]
        mistake: Option<String>,
        /// Have cargo write its `--timings` report of every build (target/cargo-timings/).
        #[arg(long)]
        timings: bool,
    },
    /// The stub policy, measured: per lab, the lines the stub gives against the lines the
    /// solution adds (a Markdown table).
    Stubs,
    /// Run the labs' benchmarks (the reference solution; `--src` for yours).
    Bench {
        lab: Option<String>,
        #[arg(long)]
        src: bool,
    },
}

fn main() -> ExitCode {
    // `cargo lab list | head` should end quietly like any Unix tool, not panic on EPIPE.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let result = course::Course::discover().and_then(|course| {
        let lab = |name: &Option<String>| commands::pick(&course, name.as_deref());
        match cli.command.unwrap_or(Cmd::Status) {
            Cmd::Status => commands::status(&course),
            Cmd::List => commands::list(&course),
            Cmd::Next => commands::next(&course),
            Cmd::Test { lab: name } => commands::test(&course, lab(&name)?),
            Cmd::Prepare { lab: name, chapter } => {
                let labs: Vec<&course::Lab> = match (&name, chapter) {
                    (_, Some(n)) => course.chapter(n),
                    (Some(_), None) => vec![lab(&name)?],
                    (None, None) => vec![commands::upcoming(&course)?],
                };
                if labs.is_empty() {
                    anyhow::bail!("no such chapter; `cargo lab list` shows them");
                }
                commands::prepare(&course, &labs)
            }
            Cmd::Watch { lab: name } => commands::watch(&course, lab(&name)?),
            Cmd::Hint { lab: name, all } => commands::hint(&course, lab(&name)?, all),
            Cmd::Reset {
                lab: name,
                restore,
                list,
            } => commands::reset(&course, lab(&name)?, restore.as_deref(), list),
            Cmd::Solution { lab: name, force } => commands::solution(&course, lab(&name)?, force),
            Cmd::Doctor => commands::doctor(&course),
            Cmd::Stubs => commands::stubs(&course),
            Cmd::Verify {
                lab: name,
                chapter,
                pristine,
                no_services,
                no_mistakes,
                mistake,
                timings,
            } => {
                let selection = match (&name, chapter) {
                    (Some(_), _) => vec![lab(&name)?.clone()],
                    (None, Some(n)) => {
                        let labs: Vec<_> = course.chapter(n).into_iter().cloned().collect();
                        if labs.is_empty() {
                            anyhow::bail!(
                                "chapter {n} has no lab yet; `cargo lab list` shows them"
                            );
                        }
                        labs
                    }
                    (None, None) => course.labs.clone(),
                };
                verify::run(
                    &course,
                    &selection,
                    verify::Options {
                        pristine,
                        services: !no_services,
                        tooling: name.is_none() && chapter.is_none(),
                        mistakes: !no_mistakes,
                        mistake_filter: mistake,
                        timings,
                    },
                )
            }
            Cmd::Bench { lab: name, src } => commands::bench(&course, name.as_deref(), src),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{} {e:#}", ui::red("error:"));
            ExitCode::FAILURE
        }
    }
}
