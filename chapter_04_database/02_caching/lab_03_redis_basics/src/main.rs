//! ## Goal
//! Build `Store`, a thin layer over the `redis` crate on tokio that uses each Redis data type for
//! the job it does best: strings with a TTL, atomic counters and a rate-limit window, a hash per
//! object, a list as a job queue with a blocking pop, a sorted set as a leaderboard. Then the
//! tools that make Redis fast and safe to share: a pipeline (many commands, one round trip),
//! `MULTI`/`EXEC` (commands no other client can split), and `SCAN` (walking the keyspace without
//! freezing the server the way `KEYS` does). Every key lives under the store's prefix, so the
//! grader's tests, like tenants of one Redis, never see each other's keys.
//!
//! ## Requirements
//! 1. `Store::connect(url, prefix)` opens a multiplexed connection with explicit timeouts; an
//!    unreachable server is `StoreError::Redis`, quickly. Every key is `prefix + name`.
//! 2. `set_with_ttl` stores a value and its expiry (milliseconds) in one command; `get` and `ttl`
//!    read them back (`None` for a missing key, and `ttl` is `None` for a key without expiry);
//!    expired values are gone.
//! 3. `incr` is atomic under concurrency (500 increments from 20 tasks, each returning its own
//!    value). `hit(name, window)` counts hits in a fixed window that the first hit opens and later
//!    hits do not extend; the next window starts again from 1.
//! 4. A `User` is one hash at `user:<id>` with fields `name`, `email`, `visits`; `load_user` of a
//!    hash that is not a valid user is `StoreError::Corrupt`, never a panic; `add_visit` changes
//!    one field.
//! 5. `push_job`/`pop_job` make a FIFO queue. `pop_job` waits up to its timeout (returning `None`
//!    then) and receives a job pushed while it waits, and while it waits the store's other
//!    commands keep working. A pop whose future is dropped leaves no client parked in the server.
//! 6. `add_score`, `top` and `rank` make a leaderboard, best first.
//! 7. `set_many` sets many keys with a TTL in one pipeline; `get_many` reads them in one command;
//!    `transfer` moves points between two players inside `MULTI`/`EXEC` and returns both new
//!    scores, which always sum to the total even with many clients transferring at once.
//! 8. `keys(pattern)` lists this store's keys with `SCAN`, never `KEYS` (more keys than one `SCAN`
//!    call returns), without the prefix, sorted, each once; `clear()` deletes this store's keys
//!    and no other.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 4.3    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `Store::connect(url, prefix)` opens a multiplexed connection with explicit
//!   timeouts; an unreachable server is `StoreError::Redis`, quickly
//! - [ ] Requirement 2: `set_with_ttl` stores a value and its expiry (milliseconds) in one command;
//!   `get` and `ttl` read them back (`None` for a missing key, and `ttl` is `None` for a key
//!   without expiry); expired values are gone
//! - [ ] Requirement 3: `incr` is atomic under concurrency (500 increments from 20 tasks, each
//!   returning its own value)
//! - [ ] Requirement 4: A `User` is one hash at `user:<id>` with fields `name`, `email`, `visits`;
//!   `load_user` of a hash that is not a valid user is `StoreError::Corrupt`, never a panic;
//!   `add_visit` changes one field
//! - [ ] Requirement 5: `push_job`/`pop_job` make a FIFO queue
//! - [ ] Requirement 6: `add_score`, `top` and `rank` make a leaderboard, best first
//! - [ ] Requirement 7: `set_many` sets many keys with a TTL in one pipeline; `get_many` reads them
//!   in one command; `transfer` moves points between two players inside `MULTI`/`EXEC` and returns
//!   both new scores, which always sum to the total even with many clients transferring at once
//! - [ ] Requirement 8: `keys(pattern)` lists this store's keys with `SCAN`, never `KEYS` (more
//!   keys than one `SCAN` call returns), without the prefix, sorted, each once; `clear()` deletes
//!   this store's keys and no other
//!
//! ## Notes
//!
//! Redis Basics: the five data types a backend uses every day, through the `redis` crate on
//! tokio.
//!
//! Build `Store`: strings with a TTL, counters, hashes, a queue, a leaderboard, a pipeline, a
//! `MULTI`/`EXEC` transaction and a `SCAN`. Read README.md for the requirements;
//! `cargo lab test 4.3` grades this file against a real Redis.
//!
//! Every key starts with the store's prefix: `key("user:7")` is `"app:user:7"` for the prefix
//! `app:`, and every method takes names without the prefix. A `MultiplexedConnection` is cheap
//! to clone: clone `self.conn` in each method (`let mut conn = self.conn.clone();`) and use
//! `redis::AsyncCommands` or `redis::cmd("...")` on it.
//!
//! Remove the `allow` below once every argument and field is used.
#![allow(unused_variables, dead_code)]

use std::time::Duration;

use clap::Parser;
use redis::Client;
use redis::aio::MultiplexedConnection;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("corrupt value at {key}: {why}")]
    Corrupt { key: String, why: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A user, stored as the hash `<prefix>user:<id>` with fields `name`, `email`, `visits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub visits: i64,
}

#[derive(Clone)]
pub struct Store {
    /// Kept to open more connections (one command of this lab needs its own).
    client: Client,
    /// The shared multiplexed connection.
    conn: MultiplexedConnection,
    prefix: String,
}

impl Store {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`); every key gets `prefix` in front.
    /// An unreachable server is `StoreError::Redis`, within a couple of seconds.
    pub async fn connect(url: &str, prefix: &str) -> Result<Store> {
        todo!("Client::open, then a multiplexed connection with explicit timeouts")
    }

    /// The full key of `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    // --- Strings -------------------------------------------------------------------------

    /// Stores `value` under `name`, expiring after `ttl` (millisecond precision), in ONE
    /// command.
    pub async fn set_with_ttl(&self, name: &str, value: &str, ttl: Duration) -> Result<()> {
        todo!("SET key value PX ms")
    }

    /// The value, or `None` when the key is missing (or expired).
    pub async fn get(&self, name: &str) -> Result<Option<String>> {
        todo!("GET")
    }

    /// Time left to live; `None` when the key is missing or never expires.
    pub async fn ttl(&self, name: &str) -> Result<Option<Duration>> {
        todo!("PTTL, whose -2 and -1 mean missing and no expiry")
    }

    // --- Counters ------------------------------------------------------------------------

    /// Adds `by` to the counter (a missing counter starts at 0); returns the new value.
    /// Concurrent callers never lose an update.
    pub async fn incr(&self, name: &str, by: i64) -> Result<i64> {
        todo!("INCRBY")
    }

    /// A fixed-window rate counter: returns the number of hits in the current window. The
    /// first hit opens the window (the key expires `window` later); later hits must not push
    /// the end of the window back; after it, counting starts again from 1.
    pub async fn hit(&self, name: &str, window: Duration) -> Result<i64> {
        todo!("INCR and PEXPIRE ... NX, together in MULTI/EXEC")
    }

    // --- Hashes --------------------------------------------------------------------------

    /// Stores the user as the hash `user:<id>` (fields name, email, visits).
    pub async fn save_user(&self, user: &User) -> Result<()> {
        todo!("HSET with several fields")
    }

    /// The user, `None` when there is no such hash, `Corrupt` when the hash lacks a field or
    /// `visits` is not a number (never a panic: anybody can write anything into Redis).
    pub async fn load_user(&self, id: u64) -> Result<Option<User>> {
        todo!("HGETALL into a HashMap<String, String>, then check every field")
    }

    /// Adds one to the user's `visits` field; returns the new count.
    pub async fn add_visit(&self, id: u64) -> Result<i64> {
        todo!("HINCRBY")
    }

    // --- Lists as a queue ----------------------------------------------------------------

    /// Adds a job to the queue; returns the queue's length.
    pub async fn push_job(&self, queue: &str, job: &str) -> Result<usize> {
        todo!("LPUSH")
    }

    /// Takes the oldest job, waiting up to `timeout` for one (`None` after the timeout).
    /// While it waits, the store's other commands must keep working.
    pub async fn pop_job(&self, queue: &str, timeout: Duration) -> Result<Option<String>> {
        todo!("BRPOP, on a connection of its own")
    }

    // --- Sorted sets ---------------------------------------------------------------------

    /// Adds `points` to the player's score (a new player starts at 0); returns the new score.
    pub async fn add_score(&self, board: &str, player: &str, points: f64) -> Result<f64> {
        todo!("ZINCRBY")
    }

    /// The best `n` players, best first, with their scores.
    pub async fn top(&self, board: &str, n: usize) -> Result<Vec<(String, f64)>> {
        todo!("ZREVRANGE ... WITHSCORES")
    }

    /// The player's place, 0 for the best; `None` when not on the board.
    pub async fn rank(&self, board: &str, player: &str) -> Result<Option<usize>> {
        todo!("ZREVRANK")
    }

    // --- Pipelines and transactions ------------------------------------------------------

    /// Sets every `(name, value)` with the same TTL, in one round trip.
    pub async fn set_many(&self, items: &[(String, String)], ttl: Duration) -> Result<()> {
        todo!("redis::pipe() with one SET ... PX per item")
    }

    /// The values of `names`, in order, `None` where missing, in one command.
    pub async fn get_many(&self, names: &[String]) -> Result<Vec<Option<String>>> {
        todo!("MGET (careful with an empty list)")
    }

    /// Moves `points` from one player to another so that no other client can see one change
    /// without the other; returns both new scores `(from, to)`.
    pub async fn transfer(
        &self,
        board: &str,
        from: &str,
        to: &str,
        points: f64,
    ) -> Result<(f64, f64)> {
        todo!("two ZINCRBY in a pipeline marked .atomic() (MULTI/EXEC)")
    }

    // --- Walking the keyspace ------------------------------------------------------------

    /// Names (prefix removed), sorted, each once, of this store's keys matching the glob
    /// `pattern` (e.g. `user:*`). Never `KEYS`.
    pub async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        todo!("SCAN cursor MATCH <prefix><pattern> COUNT n, until the cursor is 0")
    }

    /// Deletes every key of this store (and no other); returns how many.
    pub async fn clear(&self) -> Result<usize> {
        todo!("keys(\"*\"), then UNLINK them in batches")
    }
}

/// The demo takes no options; `--help` says what it does.
#[derive(Parser)]
#[command(
    name = "ch4_redis_basics",
    about = "One of everything the Store does, on the Redis at REDIS_URL (default \
             redis://127.0.0.1:6379), under the prefix ch4demo:"
)]
struct Args {}

#[tokio::main]
async fn main() -> Result<()> {
    Args::parse(); // `--help` exits 0, any argument exits 2
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = Store::connect(&url, "ch4demo:").await?;

    store
        .set_with_ttl("greeting", "hello", Duration::from_secs(30))
        .await?;
    let ttl = store.ttl("greeting").await?;
    println!("greeting = {:?}, ttl {ttl:?}", store.get("greeting").await?);

    for _ in 0..3 {
        println!(
            "hits this minute: {}",
            store.hit("hits", Duration::from_secs(60)).await?
        );
    }

    let user = User {
        id: 7,
        name: "Ada".into(),
        email: "ada@example.com".into(),
        visits: 0,
    };
    store.save_user(&user).await?;
    store.add_visit(7).await?;
    println!("user 7 = {:?}", store.load_user(7).await?);

    for job in ["resize image 1", "send mail 2"] {
        store.push_job("jobs", job).await?;
    }
    while let Some(job) = store.pop_job("jobs", Duration::from_millis(200)).await? {
        println!("worked on {job:?}");
    }

    for (player, points) in [("ada", 30.0), ("bob", 10.0), ("eve", 20.0)] {
        store.add_score("board", player, points).await?;
    }
    store.transfer("board", "ada", "bob", 15.0).await?;
    println!("top 3: {:?}", store.top("board", 3).await?);

    println!("keys: {:?}", store.keys("*").await?);
    println!("cleared {} keys", store.clear().await?);
    Ok(())
}
