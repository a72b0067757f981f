//! Prepares the database that sqlx's query macros check this lab's SQL against while compiling,
//! and prints its URL on stdout.
//!
//! `sqlx::query!` and friends connect to `DATABASE_URL` during the build and ask PostgreSQL to
//! describe each query: that database must hold the lab's schema. This tool keeps one for the
//! purpose, `ch4_sqlx_crud_schema`, on the server of `DATABASE_URL` (default: the course's):
//! created when missing, migrated with `migrations/`, and never given a row.
//!
//! ```sh
//! export DATABASE_URL=$(cargo run -q --bin ch4_sqlx_crud-schema)
//! cargo test     # the macros check your queries against the live schema
//! ```
//!
//! `cargo lab test 4.1` runs it before every build of `src/main.rs`. It uses no query macro
//! itself, so it builds whatever state the lab's queries are in.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

const DATABASE: &str = "ch4_sqlx_crud_schema";
const DEFAULT_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/course";

/// Creates (or updates) the schema database of lab 4.1 on the server of DATABASE_URL and prints
/// its URL: export it as DATABASE_URL and the query macros check against it while compiling.
#[derive(Parser)]
#[command(name = "ch4_sqlx_crud-schema")]
struct Args {}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if let Err(e) = Args::try_parse() {
        let _ = e.print();
        return if e.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_string());
    let prepared = tokio::time::timeout(Duration::from_secs(30), prepare(&url)).await;
    match prepared {
        Ok(Ok(schema_url)) => {
            println!("{schema_url}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("ch4_sqlx_crud-schema: {e} (is PostgreSQL running? scripts/services.sh up)");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("ch4_sqlx_crud-schema: no answer from {url} within 30 s");
            ExitCode::FAILURE
        }
    }
}

async fn prepare(url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let admin: PgConnectOptions = url.parse()?;
    let mut conn = PgConnection::connect_with(&admin).await?;
    create_if_missing(&mut conn).await?;
    let options = admin.clone().database(DATABASE);
    let migrated = migrate(&options).await;
    if let Err(MigrateError::VersionMismatch(_) | MigrateError::VersionMissing(_)) = migrated {
        // migrations/ was edited after this database was made: it holds no data, so start over.
        drop_database(&mut conn).await?;
        create_if_missing(&mut conn).await?;
        migrate(&options).await?;
    } else {
        migrated?;
    }
    conn.close().await?;
    Ok(with_database(url, DATABASE))
}

/// `url` with another database: same server, credentials and options.
fn with_database(url: &str, database: &str) -> String {
    let (base, options) = url.split_once('?').unwrap_or((url, ""));
    let host = base.find("://").map_or(0, |i| i + 3);
    let server = base[host..].find('/').map_or(base, |i| &base[..host + i]);
    let options = if options.is_empty() {
        String::new()
    } else {
        format!("?{options}")
    };
    format!("{server}/{database}{options}")
}

async fn migrate(options: &PgConnectOptions) -> Result<(), MigrateError> {
    // The migrator takes an advisory lock: two builds preparing at once apply each migration once.
    let mut conn = PgConnection::connect_with(options).await?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

async fn create_if_missing(conn: &mut PgConnection) -> sqlx::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut *conn)
            .await?;
    if exists {
        return Ok(());
    }
    // An identifier cannot be a bind parameter; this one is a constant.
    let created = sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {DATABASE}")))
        .execute(&mut *conn)
        .await;
    match created {
        // Another build created it between our check and our CREATE.
        Err(sqlx::Error::Database(e))
            if e.code().as_deref() == Some("42P04") || e.is_unique_violation() =>
        {
            Ok(())
        }
        other => other.map(drop),
    }
}

async fn drop_database(conn: &mut PgConnection) -> sqlx::Result<()> {
    let sql = format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)");
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(drop)
}
