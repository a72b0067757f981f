//! ## Goal
//! Move lab 6.1's API onto PostgreSQL with sqlx: migrations, a pool with an acquire timeout,
//! transactions, and rules that hold under concurrency because the database enforces them (a
//! unique index, optimistic concurrency with a version column). Then make the process behave
//! like a good citizen of an orchestrator: a readiness endpoint that reports the database, and a
//! graceful shutdown on SIGTERM that lets in-flight requests finish.
//!
//! ## Requirements
//! 1. Notes live in the `notes` table (created by the migrations); what the table holds is what
//!    the API serves, and migrations run again harmlessly on restart.
//! 2. `GET /notes` pages through the table in SQL (`ORDER BY id LIMIT .. OFFSET ..`) with an exact
//!    `total`.
//! 3. An update based on a stale version is 409 `version_conflict`; of N concurrent updates of one
//!    version exactly one wins. Of N concurrent creates of one title exactly one wins, the others
//!    are 409 `title_taken`.
//! 4. Bad input is still a 4xx problem document, never a 500; SQL in a title is just text.
//! 5. `GET /health/live` is 200 while the process runs; `GET /health/ready` is 200
//!    `{"status":"ready","database":"up"}` when the database answers, 503 problem `not_ready`
//!    when it does not.
//! 6. SIGTERM: the server stops accepting connections, finishes the requests in flight, and exits
//!    with code 0.
//! 7. An unreachable database at startup is one line on stderr and exit code 1 (no panic).
//! 8. The server never holds more than `--max-connections` connections to PostgreSQL (counted by
//!    PostgreSQL in `pg_stat_activity`); a request that waits `ACQUIRE_TIMEOUT` (3 s) for a
//!    connection is 503 `database_unavailable`.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 6.2    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: Notes live in the `notes` table (created by the migrations); what the table
//!   holds is what the API serves, and migrations run again harmlessly on restart
//! - [ ] Requirement 2: `GET /notes` pages through the table in SQL (`ORDER BY id LIMIT
//! - [ ] Requirement 3: An update based on a stale version is 409 `version_conflict`; of N
//!   concurrent updates of one version exactly one wins
//! - [ ] Requirement 4: Bad input is still a 4xx problem document, never a 500; SQL in a title is
//!   just text
//! - [ ] Requirement 5: `GET /health/live` is 200 while the process runs; `GET /health/ready` is
//!   200 `{"status":"ready","database":"up"}` when the database answers, 503 problem `not_ready`
//!   when it does not
//! - [ ] Requirement 6: SIGTERM: the server stops accepting connections, finishes the requests in
//!   flight, and exits with code 0
//! - [ ] Requirement 7: An unreachable database at startup is one line on stderr and exit code 1
//!   (no panic)
//! - [ ] Requirement 8: The server never holds more than `--max-connections` connections to
//!   PostgreSQL (counted by PostgreSQL in `pg_stat_activity`); a request that waits
//!   `ACQUIRE_TIMEOUT` (3 s) for a connection is 503 `database_unavailable`
//!
//! ## Notes
//!
//! Notes API on PostgreSQL: lab 1's service with its repository swapped for sqlx.
//!
//! Read README.md for the requirements; `cargo lab test 6.2` grades this file through real
//! HTTP against a fresh database per test. The server takes `--addr HOST:PORT`,
//! `--database-url URL` (default: `DATABASE_URL`) and `--max-connections N`, runs the
//! migrations in `migrations/`, then prints `listening on <addr>`.
//!
//! Start by copying your lab 1 solution (routes, `ApiError`, `ApiJson`, validation) here; the
//! items below are what is new. Remove the `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use clap::Parser;
use serde::Serialize;
use sqlx::postgres::PgPool;

/// How long a request waits for a pooled connection before answering 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the readiness probe waits for `SELECT 1`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// A note, read from a row with `sqlx::query_as::<_, Note>(..)` (no compile-time database).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct Note {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub version: i64,
}

/// Validated content of a note.
#[derive(Debug, Clone)]
pub struct NoteContent {
    pub title: String,
    pub body: String,
}

/// Lab 1's error type, plus the database: a pool timeout is 503 `database_unavailable`, any
/// other database error 500 `internal_error` (logged, not shown), readiness failure 503
/// `not_ready`, and a unique violation on the title (SQLSTATE 23505) 409 `title_taken`.
#[derive(Debug)]
pub enum ApiError {
    NoteNotFound(i64),
    Database(sqlx::Error),
    // ... the others of lab 1
}

/// Lab 1's trait, unchanged.
pub trait NoteRepository: Send + Sync + 'static {
    fn create(&self, content: NoteContent) -> impl Future<Output = Result<Note, ApiError>> + Send;
    fn get(&self, id: i64) -> impl Future<Output = Result<Note, ApiError>> + Send;
    fn list(
        &self,
        limit: u32,
        offset: u64,
    ) -> impl Future<Output = Result<(Vec<Note>, u64), ApiError>> + Send;
    fn update(
        &self,
        id: i64,
        content: NoteContent,
        expected_version: i64,
    ) -> impl Future<Output = Result<Note, ApiError>> + Send;
    fn delete(&self, id: i64) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// Notes in PostgreSQL.
#[derive(Clone)]
pub struct PgRepository {
    pool: PgPool,
}

impl NoteRepository for PgRepository {
    async fn create(&self, content: NoteContent) -> Result<Note, ApiError> {
        todo!("INSERT .. RETURNING; a unique violation is TitleTaken")
    }

    async fn get(&self, id: i64) -> Result<Note, ApiError> {
        todo!("SELECT .. WHERE id = $1, fetch_optional")
    }

    async fn list(&self, limit: u32, offset: u64) -> Result<(Vec<Note>, u64), ApiError> {
        todo!("one transaction: the page (ORDER BY id LIMIT OFFSET) and count(*)")
    }

    async fn update(
        &self,
        id: i64,
        content: NoteContent,
        expected_version: i64,
    ) -> Result<Note, ApiError> {
        todo!("UPDATE .. WHERE id = $1 AND version = $4 RETURNING ..; no row: 404 or 409?")
    }

    async fn delete(&self, id: i64) -> Result<(), ApiError> {
        todo!("DELETE; rows_affected() == 0 is NoteNotFound")
    }
}

/// Lab 1's routes over `PgRepository`, plus `GET /health/live` (always 200) and
/// `GET /health/ready` (200 `{"status":"ready","database":"up"}` when `SELECT 1` answers
/// within READY_TIMEOUT, else a 503 `not_ready` problem).
pub fn app(pool: PgPool) -> Router {
    todo!("notes routes + health routes")
}

/// The course's database when neither `--database-url` nor `DATABASE_URL` is given.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/course";
/// Where the server listens when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// `DATABASE_URL` when it is set, else the course's database.
fn database_url_from_env() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string())
}

/// The command line (it replaces lab 1's), ready to use: `Config::parse()` (clap answers
/// `--help`, and exits with code 2 on a bad argument).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ch6_db_integration",
    about = "The notes API on PostgreSQL: migrations, a connection pool, health probes, \
             graceful shutdown"
)]
pub struct Config {
    /// Where to listen (port 0: the kernel picks a free one; the bound address is printed)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// The PostgreSQL database [default: $DATABASE_URL, else the course's database]
    #[arg(
        long,
        value_name = "URL",
        default_value_t = database_url_from_env(),
        hide_default_value = true
    )]
    pub database_url: String,
    /// Most connections the pool opens to PostgreSQL
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections: u32,
}

/// Resolves on SIGTERM or Ctrl-C (`tokio::signal::unix::signal(SignalKind::terminate())`).
async fn shutdown_signal() {
    todo!("wait for SIGTERM")
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!(
        "Config::parse(), pool (PgPoolOptions with acquire_timeout), sqlx::migrate!(), bind, \
         print `listening on`, axum::serve(..).with_graceful_shutdown(shutdown_signal()); a \
         startup error is one line on stderr and exit code 1"
    )
}
