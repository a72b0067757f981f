//! A Redis key prefix of each test's own, e.g. `ch4test:3f9a0c1d2e4b5a6f:`, and every key under
//! it deleted at the end (also when the test panics), so tests run in parallel on one Redis.

use std::time::Duration;

/// Every command of the test's own connection gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Prefix {
    /// The Redis the lab under test gets.
    pub url: String,
    /// `<namespace>:<random>:`; the lab under test puts every key it writes under it.
    pub prefix: String,
}

impl Prefix {
    /// A random prefix under `namespace`. Fails with the fix when Redis is not running.
    pub fn new(namespace: &str) -> Prefix {
        let url = crate::services::require_redis();
        let prefix = format!("{namespace}:{:016x}:", rand::random::<u64>());
        Prefix { url, prefix }
    }

    /// `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A blocking connection of the test's own, to check what the lab wrote.
    pub fn redis(&self) -> redis::Connection {
        self.try_redis()
            .unwrap_or_else(|e| panic!("cannot connect to Redis at {}: {e}", self.url))
    }

    fn try_redis(&self) -> redis::RedisResult<redis::Connection> {
        let conn = redis::Client::open(self.url.as_str())?.get_connection_with_timeout(TIMEOUT)?;
        conn.set_read_timeout(Some(TIMEOUT))?;
        conn.set_write_timeout(Some(TIMEOUT))?;
        Ok(conn)
    }

    /// Every key under the prefix, sorted (SCAN, which unlike KEYS does not block the server).
    pub fn keys(&self) -> Vec<String> {
        scan(&mut self.redis(), &self.prefix).expect("SCAN")
    }

    pub fn count_keys(&self) -> usize {
        self.keys().len()
    }
}

fn scan(conn: &mut redis::Connection, prefix: &str) -> redis::RedisResult<Vec<String>> {
    let iter: redis::Iter<'_, String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(format!("{prefix}*"))
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(conn)?;
    let mut keys = iter.collect::<redis::RedisResult<Vec<String>>>()?;
    // SCAN may return a key twice when the keyspace is rehashed during the walk.
    keys.sort();
    keys.dedup();
    Ok(keys)
}

impl Drop for Prefix {
    /// Deletes every key under the prefix; `Drop` cannot await, so the connection is blocking.
    fn drop(&mut self) {
        let Ok(mut conn) = self.try_redis() else {
            return;
        };
        let Ok(keys) = scan(&mut conn, &self.prefix) else {
            return;
        };
        for chunk in keys.chunks(500) {
            let _: redis::RedisResult<usize> = redis::cmd("UNLINK").arg(chunk).query(&mut conn);
        }
    }
}
