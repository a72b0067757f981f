//! SQLx CRUD: a repository of task lists on PostgreSQL.
//!
//! Four ideas carry the lab:
//!
//! - **The schema lives in migrations** (`migrations/*.sql`), embedded in the binary by
//!   `sqlx::migrate!` and applied once per database; `_sqlx_migrations` remembers what ran.
//! - **SQL checked while compiling**: `sqlx::query_as!(Task, "SELECT ...", id)` sends the SQL
//!   to PostgreSQL at build time (`DATABASE_URL`) to learn its parameter and column types, or
//!   reads what an earlier build saved in `.sqlx/` when there is no database. A misspelled
//!   column, a parameter of the wrong type or a column the struct cannot hold is a compile error,
//!   not a failing request.
//! - **Errors are part of the API**: a unique violation is `Duplicate`, a missing row is
//!   `NotFound`; callers match on them. Only the unexpected stays a `sqlx::Error`.
//! - **A transaction is a unit**: "check the list has room, then insert or move" runs between
//!   `BEGIN` and `COMMIT` with the list's row locked, so concurrent writers queue up instead of
//!   overfilling the list; an error anywhere drops the transaction, which rolls it back.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Parser;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

/// The migrations of `migrations/`, read at compile time: the binary carries its schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Largest page `list_tasks` returns: a client cannot ask for a million rows at once.
pub const MAX_PAGE_SIZE: i64 = 100;

/// A named list holding at most `capacity` tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub id: i64,
    pub name: String,
    pub capacity: i32,
}

/// One row of `tasks`. `query_as!(Task, ...)` fills it field by field from the columns of the
/// same names, with the types PostgreSQL described at compile time: a query that does not
/// return every field, or a nullable column for a non-`Option` field, does not compile.
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

/// Turns a failed statement into a domain error. Constraint violations are the caller's
/// mistake and get their own variant; anything else (connection lost, syntax error) stays a
/// database error. `duplicate` names what collided, built only when needed.
fn classify(err: sqlx::Error, duplicate: impl FnOnce() -> String) -> RepoError {
    match err.as_database_error() {
        Some(db) if db.is_unique_violation() => RepoError::Duplicate(duplicate()),
        Some(db) if db.is_check_violation() => RepoError::Invalid(db.message().to_string()),
        _ => RepoError::Database(err),
    }
}

/// Locks the list's row until the transaction ends, then checks that one more task fits.
///
/// The lock is what makes "count, then write" safe. Without it two transactions could both
/// count `capacity - 1` tasks and both insert. With it the second waits on `FOR UPDATE` until
/// the first commits; in READ COMMITTED each statement takes a fresh snapshot, so its `count`
/// then sees the first one's task.
async fn reserve_slot(conn: &mut PgConnection, list_id: i64) -> Result<(), RepoError> {
    let capacity = sqlx::query_scalar!(
        "SELECT capacity FROM lists WHERE id = $1 FOR UPDATE",
        list_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(RepoError::NotFound {
        entity: "list",
        id: list_id,
    })?;
    // PostgreSQL cannot tell whether an expression may be NULL, so the macro would type
    // `count(*)` as `Option<i64>`; the `!` in the alias asserts it never is.
    let used = sqlx::query_scalar!(
        r#"SELECT count(*) AS "used!" FROM tasks WHERE list_id = $1"#,
        list_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if used >= i64::from(capacity) {
        return Err(RepoError::ListFull { list_id, capacity });
    }
    Ok(())
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

    /// Applies the pending migrations. Safe to call at every start: applied ones are skipped.
    pub async fn migrate(&self) -> Result<(), RepoError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub async fn create_list(&self, name: &str, capacity: i32) -> Result<List, RepoError> {
        sqlx::query_as!(
            List,
            "INSERT INTO lists (name, capacity) VALUES ($1, $2) RETURNING id, name, capacity",
            name,
            capacity
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| classify(e, || format!("list {name:?}")))
    }

    /// Adds a task to a list that has room, in one transaction.
    pub async fn create_task(&self, list_id: i64, title: &str) -> Result<Task, RepoError> {
        let mut tx = self.pool.begin().await?;
        // `?` on an error drops `tx`: sqlx then rolls the transaction back, releasing the lock.
        reserve_slot(&mut tx, list_id).await?;
        let task = sqlx::query_as!(
            Task,
            "INSERT INTO tasks (list_id, title) VALUES ($1, $2)
             RETURNING id, list_id, title, done, created_at",
            list_id,
            title
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| classify(e, || format!("task {title:?} in list {list_id}")))?;
        tx.commit().await?;
        Ok(task)
    }

    pub async fn get_task(&self, id: i64) -> Result<Task, RepoError> {
        sqlx::query_as!(
            Task,
            "SELECT id, list_id, title, done, created_at FROM tasks WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(RepoError::NotFound { entity: "task", id })
    }

    /// The tasks of a list in id order, `limit` at a time, starting after the task `after`.
    ///
    /// Keyset pagination: the cursor is the last id seen, and the next page is `id > cursor`.
    /// The index on `(list_id, id)` jumps straight to the cursor, so page 1,000 costs what page
    /// 1 costs, and rows deleted or added before the cursor cannot shift the pages the way
    /// `OFFSET` does.
    pub async fn list_tasks(
        &self,
        list_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Page, RepoError> {
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(RepoError::Invalid(format!(
                "page size {limit} is not between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        // One row more than asked tells whether another page exists, without a count(*).
        let mut tasks = sqlx::query_as!(
            Task,
            "SELECT id, list_id, title, done, created_at FROM tasks
             WHERE list_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            list_id,
            after.unwrap_or(0), // identity ids start at 1
            limit + 1
        )
        .fetch_all(&self.pool)
        .await?;
        let next = if tasks.len() as i64 > limit {
            tasks.truncate(limit as usize);
            tasks.last().map(|task| task.id)
        } else {
            None
        };
        Ok(Page { tasks, next })
    }

    pub async fn update_task(&self, id: i64, update: TaskUpdate) -> Result<Task, RepoError> {
        // COALESCE keeps the stored value where the update says `None`: one statement, no
        // read-modify-write race between a SELECT and an UPDATE.
        sqlx::query_as!(
            Task,
            "UPDATE tasks SET title = COALESCE($2, title), done = COALESCE($3, done)
             WHERE id = $1 RETURNING id, list_id, title, done, created_at",
            id,
            update.title.as_deref(),
            update.done
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| {
            classify(e, || {
                format!("a task titled {:?} in its list", update.title)
            })
        })?
        .ok_or(RepoError::NotFound { entity: "task", id })
    }

    pub async fn delete_task(&self, id: i64) -> Result<(), RepoError> {
        let deleted = sqlx::query!("DELETE FROM tasks WHERE id = $1", id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(RepoError::NotFound { entity: "task", id });
        }
        Ok(())
    }

    /// Moves a task to another list, all or nothing: either the target had room and the task
    /// is there, or nothing changed.
    pub async fn move_task(&self, task_id: i64, to_list: i64) -> Result<Task, RepoError> {
        let mut tx = self.pool.begin().await?;
        reserve_slot(&mut tx, to_list).await?;
        let task = sqlx::query_as!(
            Task,
            "UPDATE tasks SET list_id = $2 WHERE id = $1
             RETURNING id, list_id, title, done, created_at",
            task_id,
            to_list
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| classify(e, || format!("task {task_id}'s title in list {to_list}")))?
        .ok_or(RepoError::NotFound {
            entity: "task",
            id: task_id,
        })?;
        tx.commit().await?;
        Ok(task)
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
