//! ## Goal
//! Write `TaskRepo`, the one place where an application's SQL lives: lists of tasks in
//! PostgreSQL, created by a migration, read and written through SQLx's type-safe queries checked
//! at compile time (`sqlx::query_as!(Task, "SELECT ...", id)`): the build asks PostgreSQL to
//! describe every query, so a misspelled column or a Rust type that does not fit is a compile
//! error, not a failed request. Along the way you meet what turns SQL into a reliable API:
//! migrations, bind parameters, keyset pagination, errors mapped to the domain (`Duplicate`,
//! `NotFound`, `ListFull`), and a transaction with a row lock that keeps an invariant true when
//! sixteen writers race.
//!
//! ## Requirements
//! 1. `migrate()` applies the embedded migrations (`sqlx::migrate!("./migrations")`); a second
//!    call is harmless.
//! 2. `create_list`, `create_task` and `get_task` return the stored rows (ids and `created_at`
//!    from the database), whatever the text: values travel as bind parameters, never pasted into
//!    the SQL. A missing task is `RepoError::NotFound`.
//! 3. Constraint violations are domain errors, never panics: a list name or a task title (within
//!    its list) already taken is `Duplicate`; a task in a missing list is `NotFound`; an empty
//!    title or a capacity below 1 is `Invalid`.
//! 4. `list_tasks(list, after, limit)` pages through a list in id order with keyset pagination
//!    (`WHERE id > after`, no `OFFSET`): `next` is the last id of the page when more rows follow,
//!    `None` on the last page, and rows deleted before the cursor do not shift later pages. A
//!    `limit` outside `1..=MAX_PAGE_SIZE` is `Invalid`.
//! 5. `update_task` changes only the fields it is given and returns the new row; `delete_task`
//!    deletes once. Missing rows are `NotFound`, a title clash `Duplicate`.
//! 6. A list never holds more than `capacity` tasks, even under concurrency: `create_task` and
//!    `move_task` check and write in one transaction, with the list's row locked; a full list is
//!    `ListFull` and a failed move changes nothing.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 4.1    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `migrate()` applies the embedded migrations
//!   (`sqlx::migrate!("./migrations")`); a second call is harmless
//! - [ ] Requirement 2: `create_list`, `create_task` and `get_task` return the stored rows (ids and
//!   `created_at` from the database), whatever the text: values travel as bind parameters, never
//!   pasted into the SQL
//! - [ ] Requirement 3: Constraint violations are domain errors, never panics: a list name or a
//!   task title (within its list) already taken is `Duplicate`; a task in a missing list is
//!   `NotFound`; an empty title or a capacity below 1 is `Invalid`
//! - [ ] Requirement 4: `list_tasks(list, after, limit)` pages through a list in id order with
//!   keyset pagination (`WHERE id > after`, no `OFFSET`): `next` is the last id of the page when
//!   more rows follow, `None` on the last page, and rows deleted before the cursor do not shift
//!   later pages
//! - [ ] Requirement 5: `update_task` changes only the fields it is given and returns the new row;
//!   `delete_task` deletes once
//! - [ ] Requirement 6: A list never holds more than `capacity` tasks, even under concurrency:
//!   `create_task` and `move_task` check and write in one transaction, with the list's row locked;
//!   a full list is `ListFull` and a failed move changes nothing
//!
//! ## Notes
//!
//! SQLx CRUD: a repository of task lists on PostgreSQL.
//!
//! Build `TaskRepo`, the one place where the application's SQL lives. The schema is given in
//! `migrations/0001_lists_and_tasks.sql` (read it first). Read README.md for the requirements;
//! `cargo lab test 4.1` grades this file against a real PostgreSQL.
//!
//! Rules of the game:
//! - Queries checked at compile time: `sqlx::query_as!(Task, "SELECT ... WHERE id = $1", id)`,
//!   `sqlx::query_scalar!(..)`, `sqlx::query!(..)` (the demo in `main` below uses two). The
//!   macros need the lab's schema while compiling: `cargo lab test 4.1` prepares a database
//!   that holds it and builds against it; for a plain `cargo test` or `cargo build`, first run
//!   `export DATABASE_URL=$(cargo run -q --bin ch4_sqlx_crud-schema)` (README: "How the queries
//!   are checked").
//! - No `unwrap`: a unique violation becomes `RepoError::Duplicate`, a missing row
//!   `RepoError::NotFound`, and so on (see `RepoError`).
//!
//! Remove the `allow` below once every argument is used.
#![allow(unused_variables)]

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Parser;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

/// Largest page `list_tasks` returns: a client cannot ask for a million rows at once.
pub const MAX_PAGE_SIZE: i64 = 100;

/// A named list holding at most `capacity` tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub id: i64,
    pub name: String,
    pub capacity: i32,
}

/// One row of `tasks`. `query_as!(Task, ...)` fills it from the columns of the same names, so
/// every query returns exactly these columns (`RETURNING id, list_id, title, done, created_at`
/// after a write); the compiler tells you when one is missing or has the wrong type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: i64,
    pub list_id: i64,
    pub title: String,
    pub done: bool,
    pub created_at: DateTime<Utc>,
}

/// The fields `update_task` changes; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskUpdate {
    pub title: Option<String>,
    pub done: Option<bool>,
}

/// One page of a keyset-paginated listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub tasks: Vec<Task>,
    /// Pass it as `after` to get the next page; `None` on the last page.
    pub next: Option<i64>,
}

/// Everything the repository can answer instead of a value.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: i64 },
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("list {list_id} is full (capacity {capacity})")]
    ListFull { list_id: i64, capacity: i32 },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The repository: every query of the application, behind methods that speak the domain.
/// Cloning is cheap (a `PgPool` is an `Arc` inside).
#[derive(Clone)]
pub struct TaskRepo {
    pool: PgPool,
}

impl TaskRepo {
    pub fn new(pool: PgPool) -> Self {
        TaskRepo { pool }
    }

    /// Applies the pending migrations of `migrations/` (`sqlx::migrate!("./migrations")`
    /// embeds them at compile time). Calling it again must be harmless.
    pub async fn migrate(&self) -> Result<(), RepoError> {
        todo!("run the embedded migrations on self.pool")
    }

    /// Inserts a list. A name already taken is `Duplicate`; a capacity below 1 (the CHECK
    /// constraint of the schema) is `Invalid`.
    pub async fn create_list(&self, name: &str, capacity: i32) -> Result<List, RepoError> {
        todo!("INSERT INTO lists ... RETURNING id, name, capacity")
    }

    /// Adds a task to a list, in ONE transaction that first checks the list has room:
    /// a missing list is `NotFound`, a full one `ListFull`, a title already in the list
    /// `Duplicate`, an empty title `Invalid`. Two concurrent calls must never put more than
    /// `capacity` tasks in a list (the grader races 16 of them).
    pub async fn create_task(&self, list_id: i64, title: &str) -> Result<Task, RepoError> {
        todo!("BEGIN; check the list has room (and lock it); INSERT; COMMIT")
    }

    /// The task with this id, or `NotFound`.
    pub async fn get_task(&self, id: i64) -> Result<Task, RepoError> {
        todo!("SELECT ... WHERE id = $1")
    }

    /// The tasks of a list in id order, at most `limit` (1 to `MAX_PAGE_SIZE`, else `Invalid`),
    /// starting after the task whose id is `after`. Keyset pagination: no OFFSET. `next` is the
    /// id of the page's last task when more tasks follow, `None` on the last page (so a list of
    /// 10 tasks read 5 at a time makes exactly 2 pages).
    pub async fn list_tasks(
        &self,
        list_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Page, RepoError> {
        todo!("SELECT ... WHERE list_id = $1 AND id > $2 ORDER BY id LIMIT ...")
    }

    /// Changes the fields the update sets and returns the new row: `NotFound` for a missing
    /// task, `Duplicate` when the new title is taken in the task's list.
    pub async fn update_task(&self, id: i64, update: TaskUpdate) -> Result<Task, RepoError> {
        todo!("UPDATE tasks SET ... WHERE id = $1 RETURNING ...")
    }

    /// Deletes a task; `NotFound` when there was none.
    pub async fn delete_task(&self, id: i64) -> Result<(), RepoError> {
        todo!("DELETE ... and look at rows_affected()")
    }

    /// Moves a task to another list, all or nothing, in one transaction: a missing task or list
    /// is `NotFound`, a full target `ListFull` (and the task stays where it was). Concurrent
    /// moves must never put more than `capacity` tasks in the target.
    pub async fn move_task(&self, task_id: i64, to_list: i64) -> Result<Task, RepoError> {
        todo!("BEGIN; check the target has room (and lock it); UPDATE tasks; COMMIT")
    }
}

/// The demo keeps its tables in a database of its own, so its migrations never meet those of
/// another lab in the shared `course` database.
const DEMO_DATABASE: &str = "ch4_sqlx_crud_demo";

/// The demo of lab 4.1: creates lists and tasks through `TaskRepo` in a database of its own
/// (ch4_sqlx_crud_demo, emptied at every run) and prints what each call answered.
#[derive(Parser)]
#[command(name = "ch4_sqlx_crud")]
struct Args {
    /// The PostgreSQL server [default: $DATABASE_URL, else the course's]
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

/// Parses the command line. `--help` prints the usage on stdout (exit 0); a bad argument is one
/// line on stderr (exit 2).
fn parse_args() -> Result<Args, ExitCode> {
    Args::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        let message = e.to_string();
        let why = message.lines().next().unwrap_or_default();
        eprintln!(
            "ch4_sqlx_crud: {}; usage: ch4_sqlx_crud [--database-url URL]",
            why.trim_start_matches("error: ")
        );
        ExitCode::from(2)
    })
}

async fn demo_pool(url: &str) -> Result<PgPool, RepoError> {
    let admin: PgConnectOptions = url.parse()?;
    let mut conn = PgConnection::connect_with(&admin).await?;
    // PostgreSQL types EXISTS (...) as a boolean that might be NULL; `!` says it never is.
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        DEMO_DATABASE
    )
    .fetch_one(&mut conn)
    .await?;
    if !exists {
        // Built at run time, on purpose: a database name is an identifier, which cannot be a
        // bind parameter, and a query macro takes one literal string. The name is a constant.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {DEMO_DATABASE}"
        )))
        .execute(&mut conn)
        .await?;
    }
    conn.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(admin.database(DEMO_DATABASE))
        .await?;
    Ok(pool)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let url = args
        .database_url
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "postgres://postgres:postgres@127.0.0.1:5432/course".to_string());
    match demo(&url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch4_sqlx_crud: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(url: &str) -> Result<(), RepoError> {
    let repo = TaskRepo::new(demo_pool(url).await?);
    repo.migrate().await?;
    // Start from a clean slate at every run (the foreign key cascades to the tasks).
    sqlx::query!("DELETE FROM lists")
        .execute(&repo.pool)
        .await?;

    let inbox = repo.create_list("inbox", 3).await?;
    let done = repo.create_list("done", 10).await?;
    for title in [
        "write the migration",
        "write the repository",
        "write the tests",
    ] {
        let task = repo.create_task(inbox.id, title).await?;
        println!("created  {} {:?}", task.id, task.title);
    }
    match repo.create_task(inbox.id, "one too many").await {
        Err(e @ RepoError::ListFull { .. }) => println!("refused  {e}"),
        other => println!("unexpected: {other:?}"),
    }
    let page = repo.list_tasks(inbox.id, None, 2).await?;
    println!("page 1   {:?} next={:?}", titles(&page), page.next);
    let page = repo.list_tasks(inbox.id, page.next, 2).await?;
    println!("page 2   {:?} next={:?}", titles(&page), page.next);

    let first = repo.list_tasks(inbox.id, None, 1).await?.tasks.remove(0);
    let update = TaskUpdate {
        title: None,
        done: Some(true),
    };
    let moved = repo.update_task(first.id, update).await?;
    let moved = repo.move_task(moved.id, done.id).await?;
    println!(
        "moved    {} {:?} to list {}",
        moved.id, moved.title, moved.list_id
    );
    match repo.create_list("inbox", 1).await {
        Err(e @ RepoError::Duplicate(_)) => println!("refused  {e}"),
        other => println!("unexpected: {other:?}"),
    }
    repo.delete_task(moved.id).await?;
    match repo.get_task(moved.id).await {
        Err(e @ RepoError::NotFound { .. }) => println!("deleted  {e}"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}

fn titles(page: &Page) -> Vec<&str> {
    page.tasks.iter().map(|task| task.title.as_str()).collect()
}
