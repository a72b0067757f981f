//! `cargo lab verify`: the maintainer's proof that the course works.
//!
//! For every selected lab: the structure is complete, the reference solution passes every
//! test, and the original stub fails EVERY test (a test that passes on `todo!()` grades
//! nothing and is reported by name). Each face is built once for all labs. The learner's
//! `src/` is never read or written, except by `--pristine`, which checks it equals the stub.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::course::{Course, Lab};
use crate::grade::{self, Build, Face, LabRun, Noise, Outcome};
use crate::{readme, services, ui};

/// How long one test executable may run before verify kills it.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Options {
    pub pristine: bool,
    pub services: bool,
    /// Also run the tooling's own unit tests (the runner and labkit).
    pub tooling: bool,
}

pub fn run(course: &Course, labs: &[Lab], options: Options) -> Result<bool> {
    let started = Instant::now();
    let labs: Vec<&Lab> = labs.iter().collect();
    println!(
        "{} {} lab{}: every solution must pass, every stub must fail every test",
        ui::cyan("verify:"),
        labs.len(),
        if labs.len() == 1 { "" } else { "s" }
    );
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for lab in &labs {
        let mut found = readme::structure_problems(lab);
        if options.pristine && std::fs::read(lab.src()).ok() != std::fs::read(lab.problem()).ok() {
            found.push(
                "src/main.rs differs from problem/main.rs (not pristine; `cargo lab reset` keeps a backup)"
                    .into(),
            );
        }
        problems.insert(lab.package.clone(), found);
    }
    if options.services {
        services::prepare(course, &labs)?;
    }

    let problem_build = build_face(course, &labs, Face::Problem)?;
    let solution_build = build_face(course, &labs, Face::Solution)?;

    let bar = ProgressBar::new(labs.len() as u64 * 2);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let (mut passed, mut failed) = (0, 0);
    for lab in &labs {
        bar.set_message(format!("{} {} (stub)", lab.id(), lab.title));
        let stub = grade::run_lab(lab, &problem_build, TEST_TIMEOUT);
        bar.inc(1);
        bar.set_message(format!("{} {} (solution)", lab.id(), lab.title));
        let solution = grade::run_lab(lab, &solution_build, TEST_TIMEOUT);
        bar.inc(1);

        let found = problems.entry(lab.package.clone()).or_default();
        judge(&stub, &solution, found);
        let line = if found.is_empty() {
            passed += 1;
            format!(
                "{} {} {}",
                ui::ok_mark(),
                ui::lab_name(lab),
                ui::dim(&format!(
                    "{} tests pass on the solution, all fail on the stub ({:.1}s)",
                    solution.tests.len(),
                    (stub.duration + solution.duration).as_secs_f64()
                ))
            )
        } else {
            failed += 1;
            let details: Vec<String> = found.iter().map(|p| ui::indent(p, 6)).collect();
            format!(
                "{} {}\n{}",
                ui::fail_mark(),
                ui::lab_name(lab),
                details.join("\n")
            )
        };
        // A hidden bar (no terminal, as in CI) swallows its println: print directly then.
        if bar.is_hidden() {
            println!("{line}");
        } else {
            bar.println(line);
        }
    }
    bar.finish_and_clear();

    let mut tooling_ok = true;
    if options.tooling {
        tooling_ok = tooling(course)?;
    }
    println!(
        "{}",
        ui::dim(&format!(
            "finished in {:.0}s",
            started.elapsed().as_secs_f64()
        ))
    );
    println!("verify: {passed} passed, {failed} failed");
    Ok(failed == 0 && tooling_ok)
}

fn build_face(course: &Course, labs: &[&Lab], face: Face) -> Result<Build> {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!(
        "building {} graders against {}",
        labs.len(),
        face.name()
    ));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let build = grade::build(course, labs, face, Noise::Capture);
    spinner.finish_and_clear();
    build
}

/// Turns the two runs of a lab into a list of problems (empty: the lab is proven).
pub fn judge(stub: &LabRun, solution: &LabRun, problems: &mut Vec<String>) {
    match &stub.error {
        Some(e) if e.starts_with("does not compile") => {
            problems.push(format!("the stub problem/main.rs {}", first_lines(e, 12)));
        }
        Some(e) => problems.push(format!("grader on the stub: {}", first_lines(e, 12))),
        None => {
            for test in stub.tests.iter().filter(|t| t.outcome == Outcome::Passed) {
                problems.push(format!(
                    "test `{}` passes against the stub: it grades nothing",
                    test.name
                ));
            }
        }
    }
    match &solution.error {
        Some(e) => problems.push(format!("the solution's grader {}", first_lines(e, 20))),
        None if solution.tests.is_empty() => problems.push("the grader has no test".into()),
        None => {
            for test in &solution.tests {
                let why = match test.outcome {
                    Outcome::Passed => continue,
                    Outcome::Ignored => "is ignored".to_string(),
                    Outcome::Failed | Outcome::TimedOut => {
                        format!(
                            "fails against the solution:\n{}",
                            ui::indent(&grade::summary(&test.message, 10), 2)
                        )
                    }
                };
                problems.push(format!("test `{}` {why}", test.name));
            }
        }
    }
}

fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[..lines.len().min(n)].join("\n");
    if lines.len() > n {
        out.push_str("\n…");
    }
    out
}

/// The runner's and labkit's own unit tests.
fn tooling(course: &Course) -> Result<bool> {
    let out = grade::cargo()
        .current_dir(&course.root)
        .args(["test", "--package", "lab", "--package", "labkit"])
        .env("RUST_BACKTRACE", "0")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let passed: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: "))
        .filter_map(|l| l.split_once(" passed").map(|(head, _)| head))
        .filter_map(|head| head.rsplit(' ').next()?.parse::<usize>().ok())
        .sum();
    if out.status.success() {
        println!(
            "{} tooling: {passed} unit tests of the runner and labkit pass",
            ui::ok_mark()
        );
        Ok(true)
    } else {
        println!("{} tooling: unit tests fail", ui::fail_mark());
        println!("{}{}", stdout, String::from_utf8_lossy(&out.stderr));
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::TestResult;

    fn run(outcomes: &[(&str, Outcome)]) -> LabRun {
        LabRun {
            tests: outcomes
                .iter()
                .map(|(name, outcome)| TestResult {
                    name: name.to_string(),
                    outcome: *outcome,
                    message: "thread 'x' panicked at a.rs:1:1:\nboom".into(),
                })
                .collect(),
            ..LabRun::default()
        }
    }

    #[test]
    fn a_proven_lab_has_no_problem() {
        let mut problems = Vec::new();
        judge(
            &run(&[("a", Outcome::Failed), ("b", Outcome::Failed)]),
            &run(&[("a", Outcome::Passed), ("b", Outcome::Passed)]),
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn names_tests_that_pass_on_the_stub() {
        let mut problems = Vec::new();
        judge(
            &run(&[("grades_nothing", Outcome::Passed), ("b", Outcome::Failed)]),
            &run(&[("grades_nothing", Outcome::Passed), ("b", Outcome::Passed)]),
            &mut problems,
        );
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("`grades_nothing` passes against the stub"));
    }

    #[test]
    fn names_tests_that_fail_on_the_solution() {
        let mut problems = Vec::new();
        judge(
            &run(&[("a", Outcome::Failed), ("b", Outcome::Failed)]),
            &run(&[("a", Outcome::TimedOut), ("b", Outcome::Ignored)]),
            &mut problems,
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("`a` fails against the solution"));
        assert!(problems[0].contains("boom"));
        assert!(problems[1].contains("`b` is ignored"));
    }

    #[test]
    fn a_stub_that_does_not_compile_is_a_problem() {
        let mut problems = Vec::new();
        let stub = LabRun {
            error: Some("does not compile:\nerror[E0425]".into()),
            ..LabRun::default()
        };
        judge(&stub, &run(&[("a", Outcome::Passed)]), &mut problems);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("problem/main.rs does not compile"));
    }

    #[test]
    fn an_empty_grader_is_a_problem() {
        let mut problems = Vec::new();
        judge(&LabRun::default(), &LabRun::default(), &mut problems);
        assert_eq!(problems, vec!["the grader has no test".to_string()]);
    }
}
