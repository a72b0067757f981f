//! Building graders and running them.
//!
//! A face (`src`, `problem`, `solution`) is built for many labs with ONE cargo invocation
//! (`cargo build --tests -p a -p b ... --features <face>`): the dependency graph is resolved
//! and compiled once. Then each lab's test executables run in the lab's folder, as
//! `cargo test` would, with a timeout, and their libtest output is parsed into results.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cargo_metadata::{Message, TargetKind};

use crate::course::{Course, Lab};

/// Which file the grader is compiled against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Src,
    Problem,
    Solution,
    /// A known mistake: the solution with one `mistakes/*.patch` applied (verify only).
    Mistake,
}

impl Face {
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Face::Src => None,
            Face::Problem => Some("problem"),
            Face::Solution => Some("solution"),
            Face::Mistake => Some("mistake"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Face::Src => "src",
            Face::Problem => "problem",
            Face::Solution => "solution",
            Face::Mistake => "mistake",
        }
    }
}

/// What one build produced, per package.
#[derive(Debug, Default)]
pub struct Build {
    /// Test executables (integration tests) of each package.
    pub executables: BTreeMap<String, Vec<PathBuf>>,
    /// The binaries each package built (the face's own `<package>-<face>` among them).
    pub binaries: BTreeMap<String, Vec<PathBuf>>,
    /// The executables this build found up to date and did not write (cargo's `fresh`).
    pub fresh: std::collections::BTreeSet<PathBuf>,
    /// Compiler errors, per package, as rendered by rustc.
    pub errors: BTreeMap<String, String>,
    /// Whether cargo itself succeeded.
    pub success: bool,
    /// cargo's own stderr when it failed for a reason no package explains.
    pub stderr: String,
}

/// How cargo's output reaches the user while building.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    /// The compiler's messages go to the terminal, with a progress bar while anything compiles
    /// and nothing at all when everything is fresh (a learner's `test`).
    Show,
    /// Like `Show`, with the progress bar from the first moment (`prepare`).
    Progress,
    /// Everything is captured and kept in [`Build`] (verify shows only what failed).
    Capture,
}

pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the graders of `labs` against `face` with one cargo invocation.
pub fn build(course: &Course, labs: &[&Lab], face: Face, noise: Noise) -> Result<Build> {
    build_with(course, labs, face, noise, &[])
}

/// [`build`], with more arguments for cargo (verify's `--timings`).
pub fn build_with(
    course: &Course,
    labs: &[&Lab],
    face: Face,
    noise: Noise,
    extra: &[&str],
) -> Result<Build> {
    let mut cmd = cargo();
    cmd.current_dir(&course.root)
        // `build --tests` compiles exactly what `test --no-run` does, and `--keep-going` lets
        // one lab that does not compile leave the others built (never stale).
        .args(["build", "--tests", "--keep-going"])
        .arg("--message-format=json-diagnostic-rendered-ansi")
        .args(extra)
        .stdout(Stdio::piped());
    match noise {
        Noise::Capture => {
            cmd.stderr(Stdio::piped());
        }
        // The runner draws its own progress from cargo's messages: cargo's status lines
        // ("Compiling", "Finished") would print even when there is nothing to build.
        Noise::Show | Noise::Progress => {
            cmd.arg("--quiet");
        }
    }
    for lab in labs {
        cmd.args(["--package", &lab.package]);
    }
    if let Some(feature) = face.feature() {
        // Without the default `src` feature the learner's src/main.rs is not compiled, so a
        // half-done file never breaks the proof of the stub and the solution.
        cmd.args(["--no-default-features", "--features", feature]);
    }
    sqlx_check_source(course, labs, face, noise, &mut cmd);
    let mut child = cmd.spawn().context("cannot run cargo")?;
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });

    let mut build = Build::default();
    // Artifacts and messages are matched to labs by the path of the target they come from.
    let package_of = |src: &std::path::Path| -> String {
        labs.iter()
            .find(|l| src.starts_with(&l.dir))
            .map_or_else(|| src.display().to_string(), |l| l.package.clone())
    };
    let progress = (noise != Noise::Capture).then(|| BuildProgress::new(course, labs, noise));
    let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    for message in Message::parse_stream(stdout) {
        let Ok(message) = message else { continue };
        if let Some(progress) = &progress {
            progress.saw(&message);
        }
        match message {
            Message::CompilerArtifact(artifact) => {
                let kind = &artifact.target.kind;
                let list = if kind.contains(&TargetKind::Test) {
                    &mut build.executables
                } else if kind.contains(&TargetKind::Bin) {
                    &mut build.binaries
                } else {
                    continue;
                };
                if let Some(exe) = artifact.executable {
                    let package = package_of(artifact.target.src_path.as_std_path());
                    let exe = exe.into_std_path_buf();
                    if artifact.fresh {
                        build.fresh.insert(exe.clone());
                    }
                    list.entry(package).or_default().push(exe);
                }
            }
            Message::CompilerMessage(msg) => {
                if matches!(
                    msg.message.level,
                    cargo_metadata::diagnostic::DiagnosticLevel::Error
                ) {
                    let package = package_of(msg.target.src_path.as_std_path());
                    let text = msg.message.rendered.unwrap_or(msg.message.message);
                    if noise != Noise::Capture {
                        progress_print(progress.as_ref(), &text);
                    }
                    build.errors.entry(package).or_default().push_str(&text);
                } else if noise != Noise::Capture
                    && let Some(text) = msg.message.rendered
                {
                    progress_print(progress.as_ref(), &text);
                }
            }
            _ => {}
        }
    }
    if let Some(progress) = progress {
        progress.finish();
    }
    build.success = child.wait().context("waiting for cargo")?.success();
    if let Some(handle) = stderr {
        build.stderr = handle.join().unwrap_or_default();
    }
    Ok(build)
}

/// What sqlx's query macros check SQL against while compiling (lab 4.1 uses them): the
/// database in `DATABASE_URL`, or the offline data committed in the lab's `.sqlx/` when
/// `SQLX_OFFLINE=true` or no `DATABASE_URL` is set.
///
/// - The reference faces (stub, solution, known mistakes) build from the offline data, as a
///   fresh clone and CI do, whatever `DATABASE_URL` says. An explicit `SQLX_OFFLINE` wins: with
///   `SQLX_OFFLINE=false` a maintainer checks them online (and regenerates `.sqlx/`).
/// - The learner's queries are new, so no offline data has them: a lab with a schema tool gets
///   its schema database prepared, and `src/main.rs` is checked against it. One cargo
///   invocation has one `DATABASE_URL`, so this happens when one lab is built.
fn sqlx_check_source(course: &Course, labs: &[&Lab], face: Face, noise: Noise, cmd: &mut Command) {
    if face != Face::Src {
        if std::env::var_os("SQLX_OFFLINE").is_none() {
            cmd.env("SQLX_OFFLINE", "true");
        }
        return;
    }
    let [lab] = labs else { return };
    let Some(tool) = lab.schema_tool() else {
        return;
    };
    match schema_database(course, lab, &tool, noise) {
        Ok(url) => {
            cmd.env("DATABASE_URL", url).env("SQLX_OFFLINE", "false");
        }
        Err(e) => {
            eprintln!(
                "{} lab {}: {e:#}\n  Only queries found in its .sqlx/ compile until {tool} works.",
                crate::ui::warn_mark(),
                lab.id()
            );
            cmd.env("SQLX_OFFLINE", "true");
        }
    }
}

/// Runs the lab's schema tool, which creates and migrates the database its queries compile
/// against and prints that database's URL.
fn schema_database(course: &Course, lab: &Lab, tool: &str, noise: Noise) -> Result<String> {
    let mut cmd = cargo();
    cmd.current_dir(&course.root)
        // No features: a build of its own, never sharing the graders' build-script run (which
        // depends on DATABASE_URL, and theirs is set to the URL this prints).
        .args(["run", "--no-default-features", "--package", &lab.package])
        .args(["--bin", tool])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    // The first time it compiles the lab's dependencies: let cargo show its progress then.
    let first_time = !course.target_dir.join("debug").join(tool).exists();
    if first_time && noise != Noise::Capture {
        eprintln!(
            "Building {tool}, which prepares the database lab {}'s queries are checked against",
            lab.id()
        );
        cmd.stderr(Stdio::inherit());
    } else {
        cmd.arg("--quiet").stderr(Stdio::piped());
    }
    let out = cmd.output().with_context(|| format!("cannot run {tool}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().last() {
        Some(url) if out.status.success() => Ok(url.trim().to_string()),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            match last_lines(&stderr, 3).trim() {
                "" => anyhow::bail!("{tool} failed ({})", out.status),
                why => anyhow::bail!("{why}"),
            }
        }
    }
}

/// A progress bar fed by cargo's JSON messages: one step per crate compiled (or found fresh)
/// out of the crates the labs depend on. In `Show` mode it appears only once something
/// actually compiles, so a warm `cargo lab test` stays quiet.
struct BuildProgress<'a> {
    bar: indicatif::ProgressBar,
    started: Instant,
    course: &'a Course,
    labs: &'a [&'a Lab],
    shown: std::cell::Cell<bool>,
}

impl<'a> BuildProgress<'a> {
    fn new(course: &'a Course, labs: &'a [&'a Lab], noise: Noise) -> BuildProgress<'a> {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(1),
            indicatif::ProgressDrawTarget::hidden(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} building {msg} [{bar:30}] {pos}/{len} crates, about {eta} left",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        let what = match labs {
            [lab] => format!("lab {}", lab.id()),
            _ => format!("{} labs", labs.len()),
        };
        bar.set_message(what);
        let progress = BuildProgress {
            bar,
            started: Instant::now(),
            course,
            labs,
            shown: std::cell::Cell::new(false),
        };
        if noise == Noise::Progress {
            progress.show();
        }
        progress
    }

    fn show(&self) {
        if !self.shown.replace(true) {
            // Counted only now: a warm build that compiles nothing never pays for it.
            let total = crates_to_build(self.course, self.labs).unwrap_or(0);
            self.bar.set_length(total.max(self.bar.position() + 1));
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
            self.bar.enable_steady_tick(Duration::from_millis(120));
        }
    }

    fn saw(&self, message: &Message) {
        let compiled = match message {
            Message::CompilerArtifact(artifact) => Some(!artifact.fresh),
            Message::BuildScriptExecuted(_) => Some(false),
            _ => None,
        };
        let Some(compiled) = compiled else { return };
        self.bar.inc(1);
        if self.bar.position() >= self.bar.length().unwrap_or(0) {
            self.bar.set_length(self.bar.position() + 1);
        }
        // Something is compiling, or cargo has been busy long enough to say so.
        if compiled || self.started.elapsed() > Duration::from_millis(700) {
            self.show();
        }
    }

    fn finish(self) {
        if self.shown.get() {
            self.bar.finish_and_clear();
        }
    }
}

/// Compiler output printed above the progress bar, never through it.
fn progress_print(progress: Option<&BuildProgress<'_>>, text: &str) {
    match progress {
        Some(p) if p.shown.get() => p.bar.suspend(|| eprint!("{text}")),
        _ => eprint!("{text}"),
    }
}

/// How many crates the labs' graders build: the labs and everything they depend on (normal,
/// dev and build dependencies) with the features these labs turn on, as `cargo tree` resolves
/// them offline from Cargo.lock for this machine.
fn crates_to_build(course: &Course, labs: &[&Lab]) -> Option<u64> {
    let mut cmd = cargo();
    cmd.current_dir(&course.root).args([
        "tree",
        "--offline",
        "--quiet",
        "--edges",
        "normal,build,dev",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    for lab in labs {
        cmd.args(["--package", &lab.package]);
    }
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let crates: std::collections::BTreeSet<&str> = text
        .lines()
        .map(|l| l.trim_end_matches(" (*)").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('['))
        .collect();
    // Build scripts are a unit of their own, and each lab builds a binary and its graders.
    Some(crates.len() as u64 * 5 / 4 + 2 * labs.len() as u64)
}

/// The outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Ignored,
    /// The test executable was killed before this test reported.
    TimedOut,
}

#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    pub outcome: Outcome,
    /// What the test printed when it failed (the panic message first).
    pub message: String,
}

/// Why a lab's grader could not be run at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GradeError {
    /// The face under test has compiler errors (rendered by rustc).
    #[error("does not compile:\n{0}")]
    DoesNotCompile(String),
    /// cargo failed for a reason no package explains (a full disk, a broken lockfile...).
    #[error("was not built:\n{0}")]
    NotBuilt(String),
    #[error("has no test files under tests/")]
    NoTests,
    /// A test executable could not be started.
    #[error("could not run: {0}")]
    CannotRun(String),
}

/// All tests of one lab against one face.
#[derive(Debug, Default)]
pub struct LabRun {
    pub tests: Vec<TestResult>,
    /// Set when the grader could not be built or run at all.
    pub error: Option<GradeError>,
    pub duration: Duration,
}

impl LabRun {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.tests.iter().filter(|t| t.outcome == outcome).count()
    }

    /// Every test ran and passed (and there is at least one).
    pub fn all_passed(&self) -> bool {
        self.error.is_none()
            && !self.tests.is_empty()
            && self.tests.iter().all(|t| t.outcome == Outcome::Passed)
    }
}

/// Runs the test executables of `lab` from `build`, each at most `timeout`.
pub fn run_lab(lab: &Lab, build: &Build, timeout: Duration) -> LabRun {
    run_lab_only(lab, build, timeout, &[])
}

/// Like [`run_lab`], but only the tests named in `only` (exact libtest names) when it is not
/// empty.
pub fn run_lab_only(lab: &Lab, build: &Build, timeout: Duration, only: &[String]) -> LabRun {
    match build.executables_of(lab) {
        Ok(executables) => run_executables(lab, executables, timeout, only, &[]),
        Err(e) => LabRun {
            error: Some(e),
            ..LabRun::default()
        },
    }
}

impl Build {
    /// The test executables `lab` got from this build, or why it has none.
    pub fn executables_of(&self, lab: &Lab) -> Result<&[PathBuf], GradeError> {
        if let Some(errors) = self.errors.get(&lab.package) {
            return Err(GradeError::DoesNotCompile(errors.clone()));
        }
        match self.executables.get(&lab.package) {
            Some(executables) => Ok(executables),
            None if self.success => Err(GradeError::NoTests),
            None => Err(GradeError::NotBuilt(cargo_failure(&self.stderr))),
        }
    }

    /// The binary `name` that `lab` got from this build.
    pub fn binary(&self, lab: &Lab, name: &str) -> Option<&PathBuf> {
        self.binaries
            .get(&lab.package)?
            .iter()
            .find(|b| b.file_name() == Some(name.as_ref()))
    }
}

/// Runs the given test executables of `lab` (only the tests in `only` when it is not empty),
/// with `env` added to the environment the tests see.
pub fn run_executables(
    lab: &Lab,
    executables: &[PathBuf],
    timeout: Duration,
    only: &[String],
    env: &[(&str, &std::ffi::OsStr)],
) -> LabRun {
    let started = Instant::now();
    let mut run = LabRun::default();
    for exe in executables {
        match run_executable(lab, exe, timeout, only, env) {
            Ok(mut tests) => run.tests.append(&mut tests),
            Err(e) => run.error = Some(GradeError::CannotRun(format!("{e:#}"))),
        }
    }
    run.tests.sort_by(|a, b| a.name.cmp(&b.name));
    run.duration = started.elapsed();
    run
}

/// Runs one libtest executable the way `cargo test` does (in the package folder, with the
/// package's environment), killing it after `timeout`.
fn run_executable(
    lab: &Lab,
    exe: &PathBuf,
    timeout: Duration,
    only: &[String],
    env: &[(&str, &std::ffi::OsStr)],
) -> Result<Vec<TestResult>> {
    let filters: Vec<&str> = if only.is_empty() {
        Vec::new()
    } else {
        only.iter()
            .map(String::as_str)
            .chain(std::iter::once("--exact"))
            .collect()
    };
    let listing = Command::new(exe)
        .args(["--list", "--format", "terse"])
        .args(&filters)
        .current_dir(&lab.dir)
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let listed = parse_list(&String::from_utf8_lossy(&listing.stdout));

    // Its own process group: on a timeout the whole group dies, so the servers and clients the
    // tests started cannot outlive the grader.
    let mut child = Command::new(exe)
        .process_group(0)
        .current_dir(&lab.dir)
        .env("CARGO_MANIFEST_DIR", &lab.dir)
        .env("CARGO_PKG_NAME", &lab.package)
        // Short failure messages: a backtrace helps in `cargo test`, not in a summary.
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied())
        .args(["--color", "never"])
        .args(&filters)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            // SAFETY: kill(2) with a negative pid signals the process group the child leads;
            // it touches no memory of ours.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.kill();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
    // Whatever the tests left running in the group (a server a test forgot) goes with them.
    // SAFETY: as above; a group with no member left is ESRCH, which is fine.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let mut results = parse_libtest(&stdout, &listed);
    if timed_out {
        for result in results
            .iter_mut()
            .filter(|r| r.outcome == Outcome::TimedOut)
        {
            result.message = format!("still running after {timeout:?}: killed");
        }
    } else if results.iter().any(|r| r.outcome == Outcome::TimedOut) {
        // The executable died without reporting these tests (a crash, an abort, exit()).
        let why = last_lines(&format!("{stdout}{stderr}"), 8);
        for result in results
            .iter_mut()
            .filter(|r| r.outcome == Outcome::TimedOut)
        {
            result.outcome = Outcome::Failed;
            result.message = format!("the test process died before this test finished:\n{why}");
        }
    }
    Ok(results)
}

/// Test names from `--list --format terse` (`name: test`).
pub fn parse_list(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_string)
        .collect()
}

/// Reads libtest's human output: `test NAME ... ok|FAILED|ignored` and the failure sections.
/// Tests in `listed` that never reported are returned as [`Outcome::TimedOut`].
pub fn parse_libtest(stdout: &str, listed: &[String]) -> Vec<TestResult> {
    let mut results: BTreeMap<String, TestResult> = listed
        .iter()
        .map(|name| {
            let result = TestResult {
                name: name.clone(),
                outcome: Outcome::TimedOut,
                message: String::new(),
            };
            (name.clone(), result)
        })
        .collect();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, verdict)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let name = name.trim_end_matches(" - should panic").to_string();
        let outcome = match verdict.trim() {
            "ok" => Outcome::Passed,
            "FAILED" => Outcome::Failed,
            v if v.starts_with("ignored") => Outcome::Ignored,
            _ => continue,
        };
        results
            .entry(name.clone())
            .or_insert_with(|| TestResult {
                name,
                outcome,
                message: String::new(),
            })
            .outcome = outcome;
    }
    // Failure sections: "---- NAME stdout ----" followed by what the test printed.
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            current = Some(name.trim_end_matches(" - should panic").to_string());
            continue;
        }
        if line == "failures:" || line.starts_with("test result:") {
            current = None;
            continue;
        }
        if let Some(result) = current.as_ref().and_then(|n| results.get_mut(n)) {
            result.message.push_str(line);
            result.message.push('\n');
        }
    }
    for result in results.values_mut() {
        result.message = result.message.trim().to_string();
    }
    results.into_values().collect()
}

/// What cargo said when a build failed for no package's compile error (a full disk, a broken
/// lockfile...): its stderr without the status lines ("Compiling ...") that bury the cause.
pub fn cargo_failure(stderr: &str) -> String {
    const STATUS: [&str; 10] = [
        "Compiling",
        "Checking",
        "Building",
        "Finished",
        "Running",
        "Fresh",
        "Blocking",
        "Downloaded",
        "Downloading",
        "Locking",
    ];
    let cause: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            let first = line.split_whitespace().next().unwrap_or("");
            !STATUS.contains(&first)
        })
        .collect();
    cause.join("\n").trim().to_string()
}

/// The panic message of a failed test, without libtest's framing, at most `max` lines.
pub fn summary(message: &str, max: usize) -> String {
    let lines: Vec<&str> = message
        .lines()
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    // Start at the panic message when there is one: "thread 'x' panicked at file:line:".
    let start = lines
        .iter()
        .position(|l| l.starts_with("thread '") && l.contains("panicked at"))
        .map_or(0, |i| i + 1);
    let chosen: Vec<&str> = lines[start..].iter().take(max).copied().collect();
    let mut text = chosen.join("\n");
    if lines.len() - start > max {
        text.push_str("\n…");
    }
    text
}

/// The `not yet implemented: ...` line of a failure that reached a `todo!()`, if it did
/// (in the test itself, or in the lab's binary whose stderr the test printed).
pub fn unimplemented(message: &str) -> Option<&str> {
    message
        .lines()
        .map(str::trim)
        .find(|l| l.contains("not yet implemented"))
        .map(|l| l.find("not yet implemented").map_or(l, |i| &l[i..]))
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_todo_a_test_reached() {
        let msg =
            "thread 'a' panicked at src/main.rs:3:5:\nnot yet implemented: parse the header\n";
        assert_eq!(
            unimplemented(msg),
            Some("not yet implemented: parse the header")
        );
        let child = "requirement 1: exit 101\nstderr: thread 'main' panicked at x.rs:1:1:\n  not yet implemented";
        assert_eq!(unimplemented(child), Some("not yet implemented"));
        assert_eq!(unimplemented("assertion failed"), None);
    }

    #[test]
    fn a_failed_build_shows_its_cause_not_cargo_progress() {
        let stderr = "   Compiling syn v3.0.9\n   Compiling serde v1.0.229\nerror: failed to create directory `target/debug/.fingerprint/x`\n\nCaused by:\n  No space left on device (os error 28)\n";
        assert_eq!(
            cargo_failure(stderr),
            "error: failed to create directory `target/debug/.fingerprint/x`\n\nCaused by:\n  No space left on device (os error 28)"
        );
    }

    const OUTPUT: &str = "\
running 4 tests
test prints_the_file ... ok
test rejects_bad_args ... FAILED
test panics_on_purpose - should panic ... ok
test slow_one ... ignored, needs a network

failures:

---- rejects_bad_args stdout ----

thread 'rejects_bad_args' panicked at tests/grader.rs:10:5:
exit code must be 2
  left: Some(101)
 right: Some(2)
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    rejects_bad_args

test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
";

    fn listed() -> Vec<String> {
        parse_list(
            "prints_the_file: test\nrejects_bad_args: test\npanics_on_purpose: test\nslow_one: test\nnever_reported: test\n",
        )
    }

    #[test]
    fn parses_outcomes() {
        let results = parse_libtest(OUTPUT, &listed());
        let outcome = |name: &str| results.iter().find(|r| r.name == name).unwrap().outcome;
        assert_eq!(outcome("prints_the_file"), Outcome::Passed);
        assert_eq!(outcome("rejects_bad_args"), Outcome::Failed);
        assert_eq!(outcome("panics_on_purpose"), Outcome::Passed);
        assert_eq!(outcome("slow_one"), Outcome::Ignored);
        assert_eq!(outcome("never_reported"), Outcome::TimedOut);
        assert_eq!(results.len(), 5);
    }

    #[test]
    fn keeps_the_failure_message() {
        let results = parse_libtest(OUTPUT, &listed());
        let failed = results
            .iter()
            .find(|r| r.name == "rejects_bad_args")
            .unwrap();
        assert!(failed.message.contains("exit code must be 2"));
        assert!(!failed.message.contains("failures:"));
        let short = summary(&failed.message, 2);
        assert_eq!(short, "exit code must be 2\n  left: Some(101)\n…");
    }

    #[test]
    fn summary_without_panic_line_keeps_the_start() {
        assert_eq!(summary("a\nb\nc", 5), "a\nb\nc");
    }

    #[test]
    fn lab_run_counts() {
        let run = LabRun {
            tests: parse_libtest(OUTPUT, &listed()),
            ..LabRun::default()
        };
        assert_eq!(run.count(Outcome::Passed), 2);
        assert!(!run.all_passed());
        assert!(!LabRun::default().all_passed());
    }
}
