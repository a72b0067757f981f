//! Helpers shared by every grader of the course.
//!
//! A lab is one crate with three faces (`src/`, `problem/`, `solution/`), selected by cargo
//! features. The macros here pick the face under test so that no grader repeats the `cfg`
//! dance; the modules give graders the plumbing they all need:
//!
//! - [`process`]: run a binary with a timeout, spawn a server and wait for `listening on <addr>`;
//! - [`net`]: timeouts for every network wait, connecting with them set;
//! - [`netns`]: a private network namespace per test, for the raw-socket graders;
//! - [`services`]: `DATABASE_URL` / `REDIS_URL`, failing fast with the fix when a service is down;
//! - [`sys`]: facts from the kernel (`/proc`), tools on `PATH`, capabilities;
//! - [`strace`]: run a program under strace and read its system calls;
//! - [`echo`]: the grader shared by every echo server (chapters 2 and 7), and [`load_client`],
//!   the many-connection client those labs run in a process of their own;
//! - [`lossy_relay`]: a UDP relay on loopback that loses, duplicates, reorders and delays
//!   datagrams from a seeded generator, with counters (chapter 7's reliability layer over UDP);
//! - [`upstream`]: recording HTTP upstreams and a raw client for proxies and load balancers;
//! - [`signal`]: a one-shot future set from any thread, for graders of hand-built executors;
//! - `rivals` (feature `wait`): the tokio echo servers the echo benchmarks compare against;
//! - `http_suite` (feature `http`): the grader shared by chapter 3's two HTTP servers;
//! - [`wait`]: polling a condition with a deadline instead of a fixed sleep (async versions
//!   with feature `wait`);
//! - `pg` (feature `postgres`): a fresh PostgreSQL database per test;
//! - `keyspace` (feature `redis`): a Redis key prefix per test;
//! - `notes` (feature `notes`): the client of chapter 6's notes API.
//!
//! Graders panic with one line that names the fix when something outside the lab is missing:
//! a learner should never wait on a timeout to learn that Redis is not running.

pub mod echo;
#[cfg(feature = "http")]
pub mod http_suite;
#[cfg(feature = "redis")]
pub mod keyspace;
pub mod load_client;
pub mod lossy_relay;
pub mod net;
pub mod netns;
#[cfg(feature = "notes")]
pub mod notes;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod process;
#[cfg(feature = "wait")]
pub mod rivals;
pub mod services;
pub mod signal;
pub mod strace;
pub mod sys;
pub mod upstream;
pub mod wait;

pub use process::{Output, Server, run, run_with_stdin};

/// Path of the binary under test: `src/main.rs`, or with `--features problem` / `solution`
/// the stub or the reference answer, or with `--features mistake` the known mistake verify is
/// proving (a patched copy of the solution in `.mistake/main.rs`). Expands to a `&'static str`.
///
/// ```ignore
/// let out = labkit::run(labkit::lab_bin!(), &["test.txt"]);
/// ```
#[macro_export]
macro_rules! lab_bin {
    () => {{
        #[cfg(feature = "mistake")]
        let bin = $crate::mistake_bin(env!(concat!(
            "CARGO_BIN_EXE_",
            env!("CARGO_PKG_NAME"),
            "-mistake"
        )));
        #[cfg(all(feature = "solution", not(feature = "mistake")))]
        let bin = env!(concat!(
            "CARGO_BIN_EXE_",
            env!("CARGO_PKG_NAME"),
            "-solution"
        ));
        #[cfg(all(
            feature = "problem",
            not(any(feature = "solution", feature = "mistake"))
        ))]
        let bin = env!(concat!(
            "CARGO_BIN_EXE_",
            env!("CARGO_PKG_NAME"),
            "-problem"
        ));
        #[cfg(not(any(feature = "problem", feature = "solution", feature = "mistake")))]
        let bin = env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME")));
        bin
    }};
}

/// The known mistake's binary: where cargo built it, or the copy verify made of it.
///
/// Verify builds the next round of mistakes while this round's tests run, so it runs them
/// against snapshots (links to the executables of one build) and names the snapshot of the
/// binary in `LABKIT_MISTAKE_BIN`. Only graders built with `--features mistake` read it.
#[doc(hidden)]
pub fn mistake_bin(built: &'static str) -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| std::env::var("LABKIT_MISTAKE_BIN").unwrap_or_else(|_| built.to_string()))
}

/// Which face the grader was compiled against: `"src"`, `"problem"`, `"solution"` or
/// `"mistake"`.
#[macro_export]
macro_rules! face {
    () => {{
        #[cfg(feature = "mistake")]
        let face = "mistake";
        #[cfg(all(feature = "solution", not(feature = "mistake")))]
        let face = "solution";
        #[cfg(all(
            feature = "problem",
            not(any(feature = "solution", feature = "mistake"))
        ))]
        let face = "problem";
        #[cfg(not(any(feature = "problem", feature = "solution", feature = "mistake")))]
        let face = "src";
        face
    }};
}

/// Path of a file in the lab's folder (the folder holding its `Cargo.toml`).
#[macro_export]
macro_rules! lab_file {
    ($rel:expr) => {
        ::std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join($rel)
    };
}

/// Declares `mod $name` holding the face under test, for white-box graders and benches:
/// `labkit::lab_mod!(lab);` then `lab::my_function(...)`. Items the grader calls must be `pub`.
#[macro_export]
macro_rules! lab_mod {
    ($name:ident) => {
        #[allow(dead_code)]
        #[cfg_attr(feature = "mistake", path = "../.mistake/main.rs")]
        #[cfg_attr(
            all(feature = "solution", not(feature = "mistake")),
            path = "../solution/main.rs"
        )]
        #[cfg_attr(
            all(
                feature = "problem",
                not(any(feature = "solution", feature = "mistake"))
            ),
            path = "../problem/main.rs"
        )]
        #[cfg_attr(
            not(any(feature = "problem", feature = "solution", feature = "mistake")),
            path = "../src/main.rs"
        )]
        mod $name;
    };
}
