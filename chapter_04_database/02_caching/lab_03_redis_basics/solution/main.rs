//! Redis Basics: the five data types a backend uses every day, through the `redis` crate on
//! tokio.
//!
//! `Store` wraps one multiplexed connection: a single TCP connection that many tasks share,
//! each command tagged so its reply finds its way back. Cloning it is cheap, so every method
//! takes `&self` and clones it for the duration of a call. The ideas, one per method group:
//!
//! - **Strings with a TTL** (`SET key value PX ms`): a cache entry that cleans itself up.
//! - **Counters** (`INCR`): atomic in the server, so concurrent clients never lose an update.
//! - **Hashes** (`HSET`/`HGETALL`): one key per object, one field per attribute.
//! - **Lists as a queue** (`LPUSH` + `BRPOP`): a blocking pop on a dedicated connection.
//! - **Sorted sets** (`ZINCRBY`/`ZREVRANGE`): a leaderboard kept sorted by the server.
//! - **Pipelines and `MULTI`/`EXEC`**: many commands in one round trip; with `MULTI` they run
//!   as one block that no other client's command can split.
//! - **`SCAN`, never `KEYS`**: `KEYS` walks the whole keyspace in one go and blocks every
//!   client meanwhile; `SCAN` walks it a slice per call.
//!
//! Every key starts with the store's prefix (`app:` in `app:user:7`), so that tests, tenants or
//! applications sharing one Redis never see each other's keys.

use std::collections::HashMap;
use std::time::Duration;

use clap::Parser;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, Client};

/// How long a command may take before the client gives up (not for `BRPOP`, see `pop_job`).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys asked for per `SCAN` call: big enough to make few round trips, small enough that
/// one call never holds the server for long.
const SCAN_COUNT: usize = 200;

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
    client: Client,
    conn: MultiplexedConnection,
    prefix: String,
}

impl Store {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`); every key gets `prefix` in front.
    pub async fn connect(url: &str, prefix: &str) -> Result<Store> {
        let client = Client::open(url)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(Store {
            client,
            conn,
            prefix: prefix.to_string(),
        })
    }

    /// The full key of `name`: `key("user:7")` is `"app:user:7"` for the prefix `app:`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    // --- Strings -------------------------------------------------------------------------

    /// `SET key value PX ttl`: value and expiry in one atomic command. (A `SET` then an
    /// `EXPIRE` would leave a key without TTL forever if the client died in between.)
    pub async fn set_with_ttl(&self, name: &str, value: &str, ttl: Duration) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(name))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn get(&self, name: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(conn.get(self.key(name)).await?)
    }

    /// Time left to live; `None` when the key is missing or never expires. (`PTTL` answers
    /// -2 and -1 for those: sentinel values become an `Option` at the edge.)
    pub async fn ttl(&self, name: &str) -> Result<Option<Duration>> {
        let mut conn = self.conn.clone();
        let ms: i64 = conn.pttl(self.key(name)).await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    // --- Counters ------------------------------------------------------------------------

    /// `INCRBY`: the server adds, so two clients incrementing at once never lose an update
    /// (a GET, add, SET from the client would).
    pub async fn incr(&self, name: &str, by: i64) -> Result<i64> {
        let mut conn = self.conn.clone();
        Ok(conn.incr(self.key(name), by).await?)
    }

    /// A fixed-window rate counter: the number of hits in the current window, which the
    /// first hit opens. `INCR` and `PEXPIRE ... NX` (set the expiry only if there is none) go
    /// in one `MULTI`, so a counter can never be left without its expiry.
    pub async fn hit(&self, name: &str, window: Duration) -> Result<i64> {
        let key = self.key(name);
        let mut conn = self.conn.clone();
        let (count,): (i64,) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(window.as_millis().max(1) as u64)
            .arg("NX")
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(count)
    }

    // --- Hashes --------------------------------------------------------------------------

    fn user_key(&self, id: u64) -> String {
        self.key(&format!("user:{id}"))
    }

    /// `HSET key field value field value ...`: all fields in one command. (Redis 4 made
    /// `HSET` take several pairs; the older `HMSET` is deprecated.)
    pub async fn save_user(&self, user: &User) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("HSET")
            .arg(self.user_key(user.id))
            .arg("name")
            .arg(&user.name)
            .arg("email")
            .arg(&user.email)
            .arg("visits")
            .arg(user.visits)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// `HGETALL`: a missing key reads as an empty hash, hence `None`. A hash that does not
    /// hold a valid user is an error, not a panic: Redis has no schema, so every read checks.
    pub async fn load_user(&self, id: u64) -> Result<Option<User>> {
        let key = self.user_key(id);
        let mut conn = self.conn.clone();
        let mut fields: HashMap<String, String> = conn.hgetall(&key).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let corrupt = |why: String| StoreError::Corrupt {
            key: key.clone(),
            why,
        };
        let mut take = |field: &str| {
            fields
                .remove(field)
                .ok_or_else(|| corrupt(format!("no field {field}")))
        };
        let (name, email, visits) = (take("name")?, take("email")?, take("visits")?);
        let visits = visits
            .parse()
            .map_err(|_| corrupt(format!("visits is not a number: {visits:?}")))?;
        Ok(Some(User {
            id,
            name,
            email,
            visits,
        }))
    }

    /// `HINCRBY`: one field of the object changes, atomically, without reading the rest.
    pub async fn add_visit(&self, id: u64) -> Result<i64> {
        let mut conn = self.conn.clone();
        Ok(conn.hincr(self.user_key(id), "visits", 1).await?)
    }

    // --- Lists as a queue ----------------------------------------------------------------

    /// `LPUSH` at the head; `BRPOP` takes from the tail: first in, first out. Returns the
    /// queue's length.
    pub async fn push_job(&self, queue: &str, job: &str) -> Result<usize> {
        let mut conn = self.conn.clone();
        Ok(conn.lpush(self.key(queue), job).await?)
    }

    /// Waits up to `timeout` for a job. `BRPOP` parks the connection in the server until a
    /// job arrives, and Redis answers a connection's commands in order: on the shared
    /// multiplexed connection it would hold up every other command behind it (and trip the
    /// client's response timeout). So it gets a connection of its own, with a response
    /// timeout longer than the wait. A real worker keeps that connection for its whole life.
    pub async fn pop_job(&self, queue: &str, timeout: Duration) -> Result<Option<String>> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(timeout + RESPONSE_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        // The reply is [queue, job], or nil after the timeout.
        let popped: Option<(String, String)> =
            conn.brpop(self.key(queue), timeout.as_secs_f64()).await?;
        Ok(popped.map(|(_queue, job)| job))
    }

    // --- Sorted sets ---------------------------------------------------------------------

    /// Adds `points` to a player's score (a new player starts at 0); returns the new score.
    pub async fn add_score(&self, board: &str, player: &str, points: f64) -> Result<f64> {
        let mut conn = self.conn.clone();
        Ok(conn.zincr(self.key(board), player, points).await?)
    }

    /// The best `n` players, best first, with their scores.
    pub async fn top(&self, board: &str, n: usize) -> Result<Vec<(String, f64)>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        Ok(conn
            .zrevrange_withscores(self.key(board), 0, n as isize - 1)
            .await?)
    }

    /// 0 for the best player; `None` for a player not on the board.
    pub async fn rank(&self, board: &str, player: &str) -> Result<Option<usize>> {
        let mut conn = self.conn.clone();
        Ok(conn.zrevrank(self.key(board), player).await?)
    }

    // --- Pipelines and transactions ------------------------------------------------------

    /// Sets many keys with one TTL in ONE round trip: the commands go out back to back and
    /// the replies come back together. Without the pipeline, 1,000 keys cost 1,000 round
    /// trips of latency.
    pub async fn set_many(&self, items: &[(String, String)], ttl: Duration) -> Result<()> {
        let mut pipe = redis::pipe();
        for (name, value) in items {
            pipe.cmd("SET")
                .arg(self.key(name))
                .arg(value)
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// `MGET`: many values in one command; `None` where a key is missing.
    pub async fn get_many(&self, names: &[String]) -> Result<Vec<Option<String>>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = names.iter().map(|name| self.key(name)).collect();
        let mut conn = self.conn.clone();
        Ok(redis::cmd("MGET").arg(keys).query_async(&mut conn).await?)
    }

    /// Moves points from one player to another inside `MULTI`/`EXEC`: both changes happen,
    /// and no other client can read the board between them (the sum never looks wrong).
    /// Returns both new scores, read from `EXEC`'s replies.
    ///
    /// `MULTI` is not a rollback: it guarantees isolation, not "all or nothing on error".
    /// And it cannot read-then-decide (a balance check): that needs `WATCH` on a dedicated
    /// connection, or a Lua script.
    pub async fn transfer(
        &self,
        board: &str,
        from: &str,
        to: &str,
        points: f64,
    ) -> Result<(f64, f64)> {
        let key = self.key(board);
        let mut conn = self.conn.clone();
        let scores: (f64, f64) = redis::pipe()
            .atomic()
            .zincr(&key, from, -points)
            .zincr(&key, to, points)
            .query_async(&mut conn)
            .await?;
        Ok(scores)
    }

    // --- Walking the keyspace ------------------------------------------------------------

    /// The names (prefix removed) of this store's keys matching the glob `pattern`, e.g.
    /// `user:*`. `SCAN` returns a cursor and a slice of keys; the walk is over when the cursor
    /// comes back as 0. A key may show up twice (the keyspace can be resized mid-walk), hence
    /// the sort and dedup.
    pub async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let full_pattern = self.key(pattern);
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut names = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&full_pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await?;
            names.extend(
                batch
                    .into_iter()
                    .filter_map(|key| key.strip_prefix(&self.prefix).map(str::to_string)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Deletes every key of this store; returns how many. `UNLINK` frees the memory in a
    /// background thread of the server, so a big value does not stall other clients.
    pub async fn clear(&self) -> Result<usize> {
        let names = self.keys("*").await?;
        let mut conn = self.conn.clone();
        let mut deleted = 0;
        for chunk in names.chunks(SCAN_COUNT) {
            let keys: Vec<String> = chunk.iter().map(|name| self.key(name)).collect();
            deleted += conn.unlink::<_, usize>(keys).await?;
        }
        Ok(deleted)
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
