//! A unique key prefix per test, and every key under it deleted at the end (also when the test
//! panics), so tests run in parallel against one Redis.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

/// No test may take longer: a command that never returns fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub async fn within<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(DEADLINE, body)
        .await
        .expect("the test took longer than 20 s: a Redis call that never returns?")
}

/// Polls `ok` every 20 ms for up to 5 s.
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut ok: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok().await {
        assert!(
            Instant::now() < deadline,
            "still not true after 5 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A prefix of this test's own, e.g. `ch4test:3f9a...:`.
pub struct Prefix {
    pub url: String,
    pub prefix: String,
}

impl Prefix {
    pub fn new() -> Prefix {
        let url = labkit::services::require_redis();
        let prefix = format!("ch4test:{:016x}:", rand::random::<u64>());
        Prefix { url, prefix }
    }

    /// A connection of the test's own, to check what the lab wrote.
    pub fn redis(&self) -> redis::Connection {
        let client = redis::Client::open(self.url.as_str()).expect("REDIS_URL");
        let conn = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect to Redis");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        conn
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Keys under the prefix, counted by the test itself.
    pub fn count_keys(&self) -> usize {
        let mut conn = self.redis();
        let iter: redis::Iter<'_, String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{}*", self.prefix))
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter(&mut conn)
            .expect("SCAN");
        let mut keys: Vec<String> = iter.map(|key| key.expect("key")).collect();
        keys.sort();
        keys.dedup();
        keys.len()
    }
}

impl Drop for Prefix {
    /// Deletes every key under the prefix with a blocking connection (`Drop` cannot await).
    fn drop(&mut self) {
        let mut conn = self.redis();
        let keys: Vec<String> = {
            let iter: redis::Iter<'_, String> = match redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter(&mut conn)
            {
                Ok(iter) => iter,
                Err(_) => return,
            };
            iter.filter_map(Result::ok).collect()
        };
        for chunk in keys.chunks(500) {
            let _: redis::RedisResult<usize> = redis::cmd("UNLINK").arg(chunk).query(&mut conn);
        }
    }
}
