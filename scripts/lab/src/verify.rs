//! `cargo lab verify`: the maintainer's proof that the course works.
//!
//! For every selected lab: the structure is complete, the reference solution passes every
//! test, the original stub fails EVERY test (a test that passes on `todo!()` grades
//! nothing and is reported by name), and every known mistake (`mistakes/*.patch`, applied to
//! a scratch copy of the solution) fails the tests it names. Each face is built once for all
//! labs; the mistakes are built round by round, one cargo invocation per round, and each round's
//! tests run while the next round builds. The learner's `src/` is never read or written,
//! except by `--pristine`, which checks it equals the stub.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::course::{Course, Lab};
use crate::grade::{self, Build, Face, GradeError, LabRun, Noise, Outcome};
use crate::mistakes::Mistake;
use crate::{readme, services, ui};

/// How long one test executable may run before verify kills it.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);
/// A mistake's named tests should fail fast: graders put deadlines on every wait.
const MISTAKE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `--help` may take.
const BRIEFLY: Duration = Duration::from_secs(10);
/// How many labs' stubs are graded at the same time.
const STUB_RUNNERS: usize = 4;
/// How many known mistakes are proven at the same time (while the next round builds).
const MISTAKE_RUNNERS: usize = 3;
/// Every lab proves at least this many known mistakes.
const MIN_MISTAKES: usize = 3;

pub struct Options {
    pub pristine: bool,
    pub services: bool,
    /// Also run the tooling's own unit tests (the runner and labkit).
    pub tooling: bool,
    /// Prove the known mistakes too (`mistakes/*.patch`).
    pub mistakes: bool,
    /// Only the mistakes whose name contains this.
    pub mistake_filter: Option<String>,
    /// Pass `--timings` to every cargo build.
    pub timings: bool,
}

/// Where verify's time went, phase by phase (printed at the end: what to cut next).
#[derive(Default)]
struct Clock {
    phases: Vec<(String, Duration)>,
}

impl Clock {
    fn time<T>(&mut self, phase: &str, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        self.add(phase, started.elapsed());
        result
    }

    fn add(&mut self, phase: &str, spent: Duration) {
        match self.phases.iter_mut().find(|(name, _)| name == phase) {
            Some((_, total)) => *total += spent,
            None => self.phases.push((phase.to_string(), spent)),
        }
    }

    fn report(&self) -> String {
        let parts: Vec<String> = self
            .phases
            .iter()
            .map(|(name, spent)| format!("{name} {:.0}s", spent.as_secs_f64()))
            .collect();
        format!("time: {}", parts.join(", "))
    }
}

/// What verify found about one lab.
#[derive(Default)]
struct Verdict {
    problems: Vec<String>,
    tests: usize,
    mistakes_caught: usize,
    seconds: f64,
    /// Whether the solution passed: mistakes are only meaningful against a passing solution.
    solution_passes: bool,
}

pub fn run(course: &Course, labs: &[Lab], options: Options) -> Result<bool> {
    let started = Instant::now();
    let labs: Vec<&Lab> = labs.iter().collect();
    println!(
        "{} {} lab{}: every solution must pass, every stub must fail every test{}",
        ui::cyan("verify:"),
        labs.len(),
        if labs.len() == 1 { "" } else { "s" },
        if options.mistakes {
            ", every known mistake must fail the tests it names"
        } else {
            ""
        }
    );
    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    for lab in &labs {
        let mut found = readme::structure_problems(lab);
        if let Ok(stub) = crate::commands::stubs::measure(lab)
            && !stub.within_policy()
        {
            found.push(format!(
                "the stub gives {} code lines, {:.0}% of the solution's (the policy: at most {} \
                 lines or {:.0}%; `cargo lab stubs`)",
                stub.given,
                stub.share() * 100.0,
                crate::commands::stubs::MAX_GIVEN_LINES,
                crate::commands::stubs::MAX_GIVEN_SHARE * 100.0
            ));
        }
        if options.pristine && std::fs::read(lab.src()).ok() != std::fs::read(lab.problem()).ok() {
            found.push(
                "src/main.rs differs from problem/main.rs (not pristine; `cargo lab reset` keeps a backup)"
                    .into(),
            );
        }
        verdicts.insert(
            lab.package.clone(),
            Verdict {
                problems: found,
                ..Verdict::default()
            },
        );
    }
    let mut clock = Clock::default();
    if options.services {
        clock.time("services", || services::prepare(course, &labs))?;
    }

    let timings: &[&str] = if options.timings { &["--timings"] } else { &[] };
    let problem_build = clock.time("build stubs", || {
        build_face(course, &labs, Face::Problem, "", timings)
    })?;

    // The stubs are graded while the solutions build: their tests only have to fail, which no
    // load can change, and many of them wait out a deadline for an answer that never comes.
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let graded = std::sync::atomic::AtomicUsize::new(0);
    let show = |graded: usize| {
        spinner.set_message(format!(
            "building {} graders against solution; stubs graded: {graded}/{}",
            labs.len(),
            labs.len()
        ))
    };
    show(0);
    let (stubs, solution_build) = std::thread::scope(|scope| {
        let stubs = scope.spawn(|| {
            let started = Instant::now();
            let stubs = run_side_by_side(&labs, STUB_RUNNERS, |lab| {
                let run = grade::run_lab(lab, &problem_build, TEST_TIMEOUT);
                show(graded.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
                run
            });
            (stubs, started.elapsed())
        });
        let started = Instant::now();
        let build = grade::build_with(course, &labs, Face::Solution, Noise::Capture, timings);
        clock.add("build solutions", started.elapsed());
        let (stubs, spent) = stubs.join().expect("no runner panics");
        clock.add("run stubs (beside the build)", spent);
        (stubs, build)
    });
    spinner.finish_and_clear();
    let solution_build = checked(solution_build?, Face::Solution)?;

    let bar = ProgressBar::new(labs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let solutions_started = Instant::now();
    // The solutions one at a time: their tests measure CPU time, context switches and ratios
    // that must hold on a machine doing nothing else.
    for (lab, stub) in labs.iter().zip(stubs) {
        bar.set_message(format!("{} {} (solution)", lab.id(), lab.title));
        let solution = grade::run_lab(lab, &solution_build, TEST_TIMEOUT);
        bar.inc(1);
        let verdict = verdicts
            .get_mut(&lab.package)
            .expect("every lab has a verdict");
        judge(&stub, &solution, &mut verdict.problems);
        if solution.error.is_none() {
            verdict
                .problems
                .extend(command_line_problems(lab, &solution_build));
        }
        verdict.tests = solution.tests.len();
        verdict.solution_passes = solution.all_passed();
        verdict.seconds += (stub.duration + solution.duration).as_secs_f64();
    }
    bar.finish_and_clear();
    clock.add("run solutions", solutions_started.elapsed());

    if options.mistakes {
        prove_mistakes(
            course,
            &labs,
            &mut verdicts,
            options.mistake_filter.as_deref(),
            timings,
            &mut clock,
        )?;
    }

    let (mut passed, mut failed, mut caught) = (0, 0, 0);
    for lab in &labs {
        let verdict = &verdicts[&lab.package];
        caught += verdict.mistakes_caught;
        if verdict.problems.is_empty() {
            passed += 1;
            let mistakes = if options.mistakes {
                format!(", {} known mistakes caught", verdict.mistakes_caught)
            } else {
                String::new()
            };
            println!(
                "{} {} {}",
                ui::ok_mark(),
                ui::lab_name(lab),
                ui::dim(&format!(
                    "{} tests pass on the solution, all fail on the stub{mistakes} ({:.1}s)",
                    verdict.tests, verdict.seconds
                ))
            );
        } else {
            failed += 1;
            let details: Vec<String> = verdict.problems.iter().map(|p| ui::indent(p, 6)).collect();
            println!(
                "{} {}\n{}",
                ui::fail_mark(),
                ui::lab_name(lab),
                details.join("\n")
            );
        }
    }

    let mut tooling_ok = true;
    if options.tooling {
        tooling_ok = clock.time("tooling", || tooling(course))?;
    }
    println!("{}", ui::dim(&clock.report()));
    println!(
        "{}",
        ui::dim(&format!(
            "finished in {:.0}s",
            started.elapsed().as_secs_f64()
        ))
    );
    if options.mistakes {
        println!("mistakes: {caught} caught");
    }
    println!("verify: {passed} passed, {failed} failed");
    Ok(failed == 0 && tooling_ok)
}

/// Applies each lab's known mistakes to a scratch copy of its solution and requires the tests
/// each one names to fail. Round `r` holds the `r`-th mistake of every lab, all built by one
/// cargo invocation, so the number of builds is the largest number of mistakes in one lab.
///
/// Builds and tests overlap: while cargo builds round `r + 1`, [`MISTAKE_RUNNERS`] threads run
/// the tests of round `r` against a [`Snapshot`] of its executables. A mistake's tests only
/// have to fail, which the load of a build cannot change, and most of them wait out a deadline.
fn prove_mistakes(
    course: &Course,
    labs: &[&Lab],
    verdicts: &mut BTreeMap<String, Verdict>,
    filter: Option<&str>,
    timings: &[&str],
    clock: &mut Clock,
) -> Result<()> {
    let mut queues: Vec<(&Lab, Vec<Mistake>)> = Vec::new();
    for lab in labs {
        let verdict = verdicts
            .get_mut(&lab.package)
            .expect("every lab has a verdict");
        let mut mistakes = Vec::new();
        for path in lab.mistakes() {
            match Mistake::load(&path) {
                Ok(m) if filter.is_none_or(|f| m.name.contains(f)) => mistakes.push(m),
                Ok(_) => {}
                Err(e) => verdict.problems.push(format!("{e:#}")),
            }
        }
        if filter.is_none() && mistakes.len() < MIN_MISTAKES {
            verdict.problems.push(format!(
                "{} known mistake(s) in mistakes/: a lab needs at least {MIN_MISTAKES}",
                mistakes.len()
            ));
        }
        if let Ok(readme) = std::fs::read_to_string(lab.readme()) {
            let table = readme::section(&readme, "Requirements").unwrap_or_default();
            for m in mistakes.iter().filter(|m| !table.contains(&m.name)) {
                verdict.problems.push(format!(
                    "README.md's requirement table does not name mistake `{}`",
                    m.name
                ));
            }
        }
        if !verdict.solution_passes || mistakes.is_empty() {
            continue;
        }
        mistakes.reverse(); // popped from the back: first file first
        queues.push((lab, mistakes));
    }
    let total: usize = queues.iter().map(|(_, m)| m.len()).sum();
    let rounds = queues.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
    let snapshots = course.state_dir().join("mistakes");
    let _ = std::fs::remove_dir_all(&snapshots);

    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} mistakes {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    // Mistakes built and waiting for a runner. Bounded: at most about two rounds of snapshots
    // are on disk at once.
    let (to_run, queued) = std::sync::mpsc::sync_channel::<Built<'_>>(queues.len().max(1));
    let queued = std::sync::Mutex::new(queued);
    let mut judged = std::sync::Mutex::new(Vec::<(String, Option<String>, f64)>::new());
    let tests_busy = std::sync::Mutex::new(Duration::ZERO);
    let again = std::sync::Mutex::new(Vec::<Built<'_>>::new());
    let mut build_error = None;
    std::thread::scope(|scope| {
        for _ in 0..MISTAKE_RUNNERS {
            scope.spawn(|| {
                loop {
                    let job = queued.lock().expect("no runner panics").recv();
                    let Ok(built) = job else { break };
                    let started = Instant::now();
                    let run = built.run();
                    *tests_busy.lock().expect("no runner panics") += started.elapsed();
                    let verdict = judge_mistake(&built.mistake, &run);
                    if verdict.is_some() && built.snapshot.is_ok() {
                        // Load can slow what a timing catch compares: judged again, alone.
                        again.lock().expect("no runner panics").push(built);
                        continue;
                    }
                    built.forget();
                    judged.lock().expect("no runner panics").push((
                        built.lab.package.clone(),
                        verdict,
                        run.duration.as_secs_f64(),
                    ));
                    bar.inc(1);
                }
            });
        }
        for round in 1..=rounds {
            let mut this_round: Vec<(&Lab, Mistake)> = Vec::new();
            for (lab, mistakes) in &mut queues {
                let Some(mistake) = mistakes.pop() else {
                    continue;
                };
                let patched = std::fs::read_to_string(lab.solution())
                    .map_err(anyhow::Error::from)
                    .and_then(|solution| mistake.apply(&solution))
                    .and_then(|text| {
                        let scratch = lab.mistake_scratch();
                        std::fs::create_dir_all(scratch.parent().expect("a folder"))?;
                        Ok(std::fs::write(&scratch, text)?)
                    });
                match patched {
                    Ok(()) => this_round.push((lab, mistake)),
                    Err(e) => {
                        judged.lock().expect("no runner panics").push((
                            lab.package.clone(),
                            Some(format!("{e:#}")),
                            0.0,
                        ));
                        bar.inc(1);
                    }
                }
            }
            if this_round.is_empty() {
                continue;
            }
            bar.set_message(format!("(building round {round} of {rounds})"));
            // Every round builds the same packages, so cargo unifies the dependencies'
            // features the same way and never rebuilds them. A lab whose mistakes are all
            // proven keeps its last scratch file, which is fresh: it costs a fingerprint check.
            let queued_labs: Vec<&Lab> = queues.iter().map(|(lab, _)| *lab).collect();
            let started = Instant::now();
            let build =
                grade::build_with(course, &queued_labs, Face::Mistake, Noise::Capture, timings);
            clock.add("build mistakes", started.elapsed());
            let build = match build.and_then(|build| checked(build, Face::Mistake)) {
                Ok(build) => build,
                Err(e) => {
                    build_error = Some(e);
                    break;
                }
            };
            bar.set_message(String::new());
            for (lab, mistake) in this_round {
                let snapshot = Snapshot::take(
                    lab,
                    &build,
                    &snapshots.join(&lab.package).join(round.to_string()),
                );
                if to_run
                    .send(Built {
                        lab,
                        mistake,
                        snapshot,
                    })
                    .is_err()
                {
                    break;
                }
            }
        }
        drop(to_run);
    });
    // A mistake that survived beside the builds runs once more on a quiet machine, as the
    // solutions do: only a survivor there is a problem.
    let started = Instant::now();
    for built in again.into_inner().expect("no runner panics") {
        bar.set_message(format!(
            "(again, alone: {} {})",
            built.lab.id(),
            built.mistake.name
        ));
        let run = built.run();
        built.forget();
        let judged = judged.get_mut().expect("no runner panics");
        let verdict = judge_mistake(&built.mistake, &run);
        judged.push((
            built.lab.package.clone(),
            verdict,
            run.duration.as_secs_f64(),
        ));
        bar.inc(1);
    }
    clock.add("run survivors again, alone", started.elapsed());
    bar.finish_and_clear();
    clock.add(
        &format!("run mistakes on {MISTAKE_RUNNERS} runners"),
        tests_busy.into_inner().expect("no runner panics") / MISTAKE_RUNNERS as u32,
    );
    for (package, problem, seconds) in judged.into_inner().expect("no runner panics") {
        let verdict = verdicts.get_mut(&package).expect("every lab has a verdict");
        verdict.seconds += seconds;
        match problem {
            None => verdict.mistakes_caught += 1,
            Some(problem) => verdict.problems.push(problem),
        }
    }
    let _ = std::fs::remove_dir_all(&snapshots);
    // The scratch file is tracked (so `cargo fmt` and other tools find every bin target):
    // put its resting text back.
    for lab in labs {
        std::fs::write(lab.mistake_scratch(), crate::mistakes::SCRATCH_AT_REST)?;
    }
    match build_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A known mistake, built.
struct Built<'a> {
    lab: &'a Lab,
    mistake: Mistake,
    snapshot: Result<Snapshot, GradeError>,
}

impl Built<'_> {
    /// Removes the snapshot.
    fn forget(&self) {
        if let Ok(snapshot) = &self.snapshot {
            let _ = std::fs::remove_dir_all(&snapshot.dir);
        }
    }

    /// Runs the tests the mistake names against its snapshot.
    fn run(&self) -> LabRun {
        let snapshot = match &self.snapshot {
            Ok(snapshot) => snapshot,
            Err(e) => {
                return LabRun {
                    error: Some(e.clone()),
                    ..LabRun::default()
                };
            }
        };
        grade::run_executables(
            self.lab,
            &snapshot.executables,
            MISTAKE_TIMEOUT,
            &self.mistake.caught_by,
            &[("LABKIT_MISTAKE_BIN", snapshot.bin.as_os_str())],
        )
    }
}

/// The test executables and the binary one build gave a lab, kept in a folder of their own so
/// that the next build cannot change them: what the build wrote is copied (a linker may rewrite
/// its output in place), what it found fresh is hard-linked (no later round writes it).
struct Snapshot {
    dir: std::path::PathBuf,
    executables: Vec<std::path::PathBuf>,
    bin: std::path::PathBuf,
}

impl Snapshot {
    fn take(lab: &Lab, build: &Build, dir: &std::path::Path) -> Result<Snapshot, GradeError> {
        let executables = build.executables_of(lab)?;
        let name = format!("{}-{}", lab.package, Face::Mistake.name());
        let bin = build
            .binary(lab, &name)
            .ok_or_else(|| GradeError::NotBuilt(format!("the binary {name} was not built")))?;
        let keep = |from: &std::path::PathBuf| -> Result<std::path::PathBuf, GradeError> {
            let to = dir.join(from.file_name().expect("an executable has a name"));
            let linked = build.fresh.contains(from) && std::fs::hard_link(from, &to).is_ok();
            (if linked {
                Ok(())
            } else {
                std::fs::copy(from, &to).map(|_| ())
            })
            .map_err(|e| GradeError::CannotRun(format!("cannot keep {}: {e}", from.display())))?;
            Ok(to)
        };
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)
            .map_err(|e| GradeError::CannotRun(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Snapshot {
            dir: dir.to_path_buf(),
            executables: executables.iter().map(keep).collect::<Result<_, _>>()?,
            bin: keep(bin)?,
        })
    }
}

/// `None` when the mistake is caught: every test it names ran and failed.
fn judge_mistake(mistake: &Mistake, run: &LabRun) -> Option<String> {
    let name = &mistake.name;
    if let Some(e) = &run.error {
        let e_text = e.to_string();
        return Some(if matches!(e, GradeError::DoesNotCompile(_)) {
            format!("mistake `{name}` {}", first_lines(&e_text, 12))
        } else {
            format!("mistake `{name}`: the grader {}", first_lines(&e_text, 12))
        });
    }
    let mut problems = Vec::new();
    for test in &mistake.caught_by {
        match run.tests.iter().find(|t| &t.name == test) {
            None => problems.push(format!(
                "names test `{test}`, which the grader does not have"
            )),
            Some(t) if t.outcome == Outcome::Passed => {
                problems.push(format!("survives: `{test}` passes against it"))
            }
            Some(t) if t.outcome == Outcome::Ignored => {
                problems.push(format!("names `{test}`, which is ignored"))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!(
            "mistake `{name}` ({}; breaks {}) {}",
            mistake.what,
            mistake.breaks,
            problems.join("; ")
        ))
    }
}

fn build_face(
    course: &Course,
    labs: &[&Lab],
    face: Face,
    note: &str,
    extra: &[&str],
) -> Result<Build> {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!(
        "building {} graders against {}{note}",
        labs.len(),
        face.name()
    ));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let build = grade::build_with(course, labs, face, Noise::Capture, extra);
    spinner.finish_and_clear();
    checked(build?, face)
}

/// A build that produced nothing and has no lab to blame (a full disk, a broken lockfile) is
/// one error for all, not the same message for every lab.
fn checked(build: Build, face: Face) -> Result<Build> {
    if !build.success && build.executables.is_empty() && build.errors.is_empty() {
        anyhow::bail!(
            "cargo could not build the {} graders:\n{}",
            face.name(),
            grade::cargo_failure(&build.stderr)
        );
    }
    Ok(build)
}

/// Turns the two runs of a lab into a list of problems (empty: the lab is proven).
pub fn judge(stub: &LabRun, solution: &LabRun, problems: &mut Vec<String>) {
    match &stub.error {
        Some(e @ GradeError::DoesNotCompile(_)) => {
            problems.push(format!(
                "the stub problem/main.rs {}",
                first_lines(&e.to_string(), 12)
            ));
        }
        Some(e) => problems.push(format!(
            "grader on the stub: {}",
            first_lines(&e.to_string(), 12)
        )),
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
        Some(e) => problems.push(format!(
            "the solution's grader {}",
            first_lines(&e.to_string(), 20)
        )),
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

/// `work` for every lab on `runners` threads; the results in the order of `labs`.
fn run_side_by_side<I: Sync, T: Send>(
    labs: &[I],
    runners: usize,
    work: impl Fn(&I) -> T + Sync,
) -> Vec<T> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<T>>> =
        labs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..runners.min(labs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(lab) = labs.get(i) else { break };
                    let result = work(lab);
                    *results[i].lock().expect("no runner panics") = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .expect("no runner panics")
                .expect("every lab was run")
        })
        .collect()
}

/// The conventions every lab binary keeps, checked on the solution's: `--help` prints a usage
/// on stdout and exits 0; an unknown option is a usage error, exit code 2 with a message on
/// stderr, never a panic.
fn command_line_problems(lab: &Lab, build: &Build) -> Vec<String> {
    let name = format!("{}-{}", lab.package, Face::Solution.name());
    let Some(binary) = build.binary(lab, &name) else {
        return vec![format!("the binary {name} was not built")];
    };
    let mut problems = Vec::new();
    match run_briefly(binary, "--help", BRIEFLY) {
        Ok(out) if out.status.code() == Some(0) && !out.stdout.trim().is_empty() => {}
        Ok(out) => problems.push(format!(
            "`{name} --help` must print a usage on stdout and exit 0: {}",
            out.describe()
        )),
        Err(e) => problems.push(format!("`{name} --help`: {e:#}")),
    }
    match run_briefly(binary, "--no-such-option", BRIEFLY) {
        Ok(out)
            if out.status.code() == Some(2)
                && !out.stderr.trim().is_empty()
                && !out.stderr.contains("panicked") => {}
        Ok(out) => problems.push(format!(
            "`{name} --no-such-option` must be a usage error (a message on stderr, exit code 2, \
             no panic): {}",
            out.describe()
        )),
        Err(e) => problems.push(format!("`{name} --no-such-option`: {e:#}")),
    }
    problems
}

struct Briefly {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Briefly {
    fn describe(&self) -> String {
        let stderr = self.stderr.lines().next().unwrap_or("");
        format!("{}, stderr: {stderr:?}", self.status)
    }
}

/// Runs `binary arg` with no input and a deadline (a server that ignores the argument would
/// otherwise run forever).
fn run_briefly(binary: &std::path::Path, arg: &str, deadline: Duration) -> Result<Briefly> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(binary)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("still running after {deadline:?} (the argument was ignored?)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Briefly {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
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
    fn side_by_side_keeps_the_order_of_the_labs() {
        let items: Vec<u64> = (0..20).collect();
        let doubled = run_side_by_side(&items, 4, |&n| {
            std::thread::sleep(Duration::from_millis(20 - n));
            n * 2
        });
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_snapshot_keeps_what_the_build_wrote_when_the_next_build_writes_in_place() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let lab = crate::course::tests::lab(2, 2, "ch2_thread_pool", "lab_02_thread_pool");
        let written = dir.path().join("test_pool-1234");
        let fresh = dir.path().join("test_other-5678");
        let bin = dir.path().join("ch2_thread_pool-mistake");
        for (path, text) in [(&written, "round 1"), (&fresh, "fresh"), (&bin, "bin 1")] {
            std::fs::write(path, text).unwrap();
        }
        let mut build = Build::default();
        build
            .executables
            .insert(lab.package.clone(), vec![written.clone(), fresh.clone()]);
        build
            .binaries
            .insert(lab.package.clone(), vec![bin.clone()]);
        build.fresh.insert(fresh.clone());
        let snapshot = Snapshot::take(&lab, &build, &dir.path().join("snap")).unwrap();
        // The next round's linker rewrites its outputs in place.
        for (path, text) in [(&written, "round 2"), (&bin, "bin 2")] {
            let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.write_all(text.as_bytes()).unwrap();
        }
        let read = |p: &std::path::PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&snapshot.executables[0]), "round 1");
        assert_eq!(read(&snapshot.executables[1]), "fresh");
        assert_eq!(read(&snapshot.bin), "bin 1");
        use std::os::unix::fs::MetadataExt;
        let inode = |p: &std::path::PathBuf| std::fs::metadata(p).unwrap().ino();
        assert_eq!(
            inode(&snapshot.executables[1]),
            inode(&fresh),
            "fresh: linked"
        );
    }

    #[test]
    fn a_command_that_ignores_its_argument_is_stopped() {
        let out = run_briefly("sh".as_ref(), "-c", Duration::from_secs(5)).expect("sh runs");
        assert_eq!(out.status.code(), Some(2), "sh -c without a command");
        let err = run_briefly("sleep".as_ref(), "30", Duration::from_millis(200))
            .err()
            .expect("sleep 30 outlives the deadline");
        assert!(err.to_string().contains("still running"), "{err}");
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
            error: Some(GradeError::DoesNotCompile("error[E0425]".into())),
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
