//! Grader for Redis Basics: the `Store`, used as a library against a real Redis. Each test
//! works under a key prefix of its own and deletes its keys at the end, so tests run in
//! parallel; the test checks what the lab wrote with a connection of its own.

labkit::lab_mod!(lab);

use std::collections::HashSet;
use std::time::{Duration, Instant};

use lab::{Store, StoreError, User};
use labkit::keyspace::Prefix;
use labkit::wait::{eventually, within};
use rand::RngExt;
use redis::Commands;

async fn store(prefix: &Prefix) -> Store {
    Store::connect(&prefix.url, &prefix.prefix)
        .await
        .expect("Store::connect")
}

fn random_word() -> String {
    let mut rng = rand::rng();
    (0..rng.random_range(4..12))
        .map(|_| rng.random_range('a'..='z'))
        .collect()
}

// Requirement 1: connecting, and failing to connect, cleanly.
#[tokio::test]
async fn connecting_to_a_closed_port_is_an_error() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        assert_eq!(store.key("user:7"), format!("{}user:7", prefix.prefix));
        let closed = labkit::net::closed_port();
        let result = Store::connect(&format!("redis://{closed}"), "x:").await;
        assert!(
            matches!(result, Err(StoreError::Redis(_))),
            "a closed port must be StoreError::Redis"
        );
    })
    .await
}

// Requirement 2: strings with a TTL.
#[tokio::test]
async fn set_with_ttl_stores_a_value_that_expires() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let value = random_word();
        store
            .set_with_ttl("greeting", &value, Duration::from_secs(30))
            .await
            .expect("set");
        assert_eq!(
            store.get("greeting").await.expect("get"),
            Some(value.clone())
        );

        let raw: Option<String> = prefix.redis().get(prefix.key("greeting")).unwrap();
        assert_eq!(raw, Some(value), "the value sits at <prefix>greeting");
        let pttl: i64 = prefix.redis().pttl(prefix.key("greeting")).unwrap();
        assert!(
            (1..=30_000).contains(&pttl),
            "the key expires within 30 s: PTTL {pttl}"
        );
        let ttl = store.ttl("greeting").await.expect("ttl").expect("a TTL");
        assert!(
            ttl > Duration::ZERO && ttl <= Duration::from_secs(30),
            "ttl {ttl:?}"
        );

        assert_eq!(store.get("missing").await.expect("get"), None);
        assert_eq!(
            store.ttl("missing").await.expect("ttl"),
            None,
            "missing key: no TTL"
        );
        let _: () = prefix.redis().set(prefix.key("forever"), "1").unwrap();
        assert_eq!(
            store.ttl("forever").await.expect("ttl"),
            None,
            "no expiry: no TTL"
        );
    })
    .await
}

#[tokio::test]
async fn expired_values_are_gone() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        store
            .set_with_ttl("short", "lived", Duration::from_millis(300))
            .await
            .expect("set");
        let pttl: i64 = prefix.redis().pttl(prefix.key("short")).unwrap();
        // -2: already expired (a slow machine); -1 would mean no TTL at all.
        assert!(
            pttl == -2 || (1..=300).contains(&pttl),
            "PTTL {pttl}: the TTL is 300 ms (set it in milliseconds: PX)"
        );
        eventually("the value expired", || async {
            store.get("short").await.expect("get").is_none()
        })
        .await;
    })
    .await
}

// Requirement 3: counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incr_counts_atomically_under_concurrency() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let start = rand::rng().random_range(0..1000);
        assert_eq!(store.incr("counter", start).await.expect("incr"), start);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for _ in 0..25 {
                        seen.push(store.incr("counter", 1).await.expect("incr"));
                    }
                    seen
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for task in tasks {
            for value in task.await.expect("task panicked") {
                assert!(seen.insert(value), "two increments both returned {value}");
            }
        }
        let expected: HashSet<i64> = (start + 1..=start + 500).collect();
        assert_eq!(seen, expected, "every increment returns its own new value");
        let raw: i64 = prefix.redis().get(prefix.key("counter")).unwrap();
        assert_eq!(raw, start + 500);
    })
    .await
}

#[tokio::test]
async fn hit_counts_in_a_fixed_window() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let window = Duration::from_secs(10);
        assert_eq!(store.hit("api", window).await.expect("hit"), 1);
        let first: i64 = prefix.redis().pttl(prefix.key("api")).unwrap();
        assert!(
            (1..=10_000).contains(&first),
            "the first hit opens a 10 s window: PTTL {first}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let n = rand::rng().random_range(3..10);
        for expected in 2..=n {
            assert_eq!(store.hit("api", window).await.expect("hit"), expected);
        }
        let later: i64 = prefix.redis().pttl(prefix.key("api")).unwrap();
        assert!(
            later > 0 && later <= first - 100,
            "later hits must not push the window's end back: PTTL {first} then {later}"
        );
    })
    .await
}

#[tokio::test]
async fn a_new_window_starts_from_one() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let window = Duration::from_secs(1);
        assert_eq!(store.hit("login", window).await.expect("hit"), 1);
        assert_eq!(store.hit("login", window).await.expect("hit"), 2);
        eventually("the window expired", || async {
            prefix
                .redis()
                .exists::<_, bool>(prefix.key("login"))
                .map(|e| !e)
                .unwrap_or(false)
        })
        .await;
        assert_eq!(
            store.hit("login", window).await.expect("hit"),
            1,
            "a fresh window"
        );
    })
    .await
}

// Requirement 4: hashes.
fn random_user() -> User {
    User {
        id: rand::rng().random_range(1..1_000_000),
        name: random_word(),
        email: format!("{}@example.com", random_word()),
        visits: rand::rng().random_range(0..100),
    }
}

#[tokio::test]
async fn saves_and_loads_a_user_as_a_hash() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let user = random_user();
        store.save_user(&user).await.expect("save_user");
        assert_eq!(
            store.load_user(user.id).await.expect("load_user"),
            Some(user.clone())
        );

        let key = prefix.key(&format!("user:{}", user.id));
        let mut redis = prefix.redis();
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut redis).unwrap();
        assert_eq!(kind, "hash", "a user is one hash at <prefix>user:<id>");
        let name: String = redis.hget(&key, "name").unwrap();
        let visits: i64 = redis.hget(&key, "visits").unwrap();
        assert_eq!((name, visits), (user.name, user.visits));
        assert_eq!(store.load_user(user.id + 1).await.expect("load_user"), None);
    })
    .await
}

#[tokio::test]
async fn add_visit_increments_one_field() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let user = random_user();
        store.save_user(&user).await.expect("save_user");
        let k = rand::rng().random_range(1..10);
        for i in 1..=k {
            assert_eq!(
                store.add_visit(user.id).await.expect("add_visit"),
                user.visits + i
            );
        }
        let loaded = store
            .load_user(user.id)
            .await
            .expect("load")
            .expect("the user");
        assert_eq!(
            loaded,
            User {
                visits: user.visits + k,
                ..user
            }
        );
    })
    .await
}

#[tokio::test]
async fn a_corrupt_user_hash_is_an_error_not_a_panic() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let mut redis = prefix.redis();
        let _: () = redis
            .hset_multiple(
                prefix.key("user:1"),
                &[
                    ("name", "x"),
                    ("email", "x@example.com"),
                    ("visits", "many"),
                ],
            )
            .unwrap();
        let _: () = redis
            .hset(prefix.key("user:2"), "name", "no email")
            .unwrap();
        for id in [1, 2] {
            let result = store.load_user(id).await;
            assert!(
                matches!(result, Err(StoreError::Corrupt { .. })),
                "user {id} is not a valid user hash: expected Corrupt, got {result:?}"
            );
        }
    })
    .await
}

// Requirement 5: a list as a FIFO queue with a blocking pop.
#[tokio::test]
async fn jobs_come_out_in_fifo_order() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let jobs: Vec<String> = (0..rand::rng().random_range(3..10))
            .map(|_| random_word())
            .collect();
        for (i, job) in jobs.iter().enumerate() {
            assert_eq!(
                store.push_job("jobs", job).await.expect("push"),
                i + 1,
                "queue length"
            );
        }
        for job in &jobs {
            let popped = store
                .pop_job("jobs", Duration::from_secs(2))
                .await
                .expect("pop");
            assert_eq!(popped.as_ref(), Some(job), "first in, first out");
        }
        let len: usize = prefix.redis().llen(prefix.key("jobs")).unwrap();
        assert_eq!(len, 0);
    })
    .await
}

#[tokio::test]
async fn pop_on_an_empty_queue_returns_none_after_the_timeout() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let start = Instant::now();
        let popped = store
            .pop_job("empty", Duration::from_secs(1))
            .await
            .expect("pop");
        assert_eq!(popped, None);
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "BRPOP with a 1 s timeout waits about 1 s, not {:?}",
            start.elapsed()
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop_waits_for_a_job_pushed_later() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let consumer = store(&prefix).await;
        let producer = store(&prefix).await;
        let pop =
            tokio::spawn(async move { consumer.pop_job("jobs", Duration::from_secs(8)).await });
        // Long enough for the pop to be parked in the server (and for a client-side response
        // timeout shorter than the wait to fire).
        tokio::time::sleep(Duration::from_millis(800)).await;
        let job = random_word();
        producer.push_job("jobs", &job).await.expect("push");
        let popped = pop.await.expect("pop panicked").expect("pop");
        assert_eq!(popped, Some(job));
    })
    .await
}

// Requirement 6: a sorted set as a leaderboard.
#[tokio::test]
async fn leaderboard_ranks_players_by_score() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let mut rng = rand::rng();
        // Distinct totals (multiples of 10 plus the player's index), built in several steps.
        let mut totals: Vec<(String, f64)> = Vec::new();
        for i in 0..10 {
            let player = format!("p{i}-{}", random_word());
            let parts = [
                rng.random_range(0..50) * 10,
                rng.random_range(0..50) * 10,
                i,
            ];
            let mut score = 0.0;
            for part in parts {
                score = store
                    .add_score("board", &player, part as f64)
                    .await
                    .expect("add");
            }
            assert_eq!(
                score,
                parts.iter().sum::<i32>() as f64,
                "add_score returns the total"
            );
            totals.push((player, score));
        }
        totals.sort_by(|a, b| b.1.total_cmp(&a.1));
        assert_eq!(
            store.top("board", 3).await.expect("top"),
            totals[..3].to_vec()
        );
        assert_eq!(store.top("board", 100).await.expect("top"), totals);
        assert_eq!(store.top("board", 0).await.expect("top"), Vec::new());
        for (rank, (player, _)) in totals.iter().enumerate() {
            assert_eq!(store.rank("board", player).await.expect("rank"), Some(rank));
        }
        assert_eq!(store.rank("board", "nobody").await.expect("rank"), None);
    })
    .await
}

// Requirement 7: pipelines and MULTI/EXEC.
#[tokio::test]
async fn set_many_and_get_many_round_trip() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let n = rand::rng().random_range(300..600);
        let items: Vec<(String, String)> =
            (0..n).map(|i| (format!("k{i}"), random_word())).collect();
        store
            .set_many(&items, Duration::from_secs(60))
            .await
            .expect("set_many");
        let mut names: Vec<String> = items.iter().map(|(name, _)| name.clone()).collect();
        names.push("missing".into());
        let values = store.get_many(&names).await.expect("get_many");
        let mut expected: Vec<Option<String>> =
            items.iter().map(|(_, value)| Some(value.clone())).collect();
        expected.push(None);
        assert_eq!(
            values, expected,
            "values in the order of the names, None when missing"
        );
        let pttl: i64 = prefix
            .redis()
            .pttl(prefix.key(&format!("k{}", n - 1)))
            .unwrap();
        assert!(
            (1..=60_000).contains(&pttl),
            "every key gets the TTL: PTTL {pttl}"
        );
        assert_eq!(
            store.get_many(&[]).await.expect("get_many of nothing"),
            Vec::new()
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfer_moves_points_inside_multi_exec() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        store.add_score("board", "a", 1000.0).await.expect("add");
        store.add_score("board", "b", 1000.0).await.expect("add");
        let (a, b) = store
            .transfer("board", "a", "b", 250.0)
            .await
            .expect("transfer");
        assert_eq!((a, b), (750.0, 1250.0), "transfer returns both new scores");

        // Many clients transfer at once; the pair each EXEC returns always sums to 2000.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let key_prefix = prefix.prefix.clone();
                let url = prefix.url.clone();
                tokio::spawn(async move {
                    let store = Store::connect(&url, &key_prefix).await.expect("connect");
                    for j in 0..20 {
                        let (from, to) = if (i + j) % 2 == 0 {
                            ("a", "b")
                        } else {
                            ("b", "a")
                        };
                        let (x, y) = store
                            .transfer("board", from, to, 7.0)
                            .await
                            .expect("transfer");
                        assert_eq!(x + y, 2000.0, "a transfer saw a half-done transfer");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("transfer task failed");
        }
        let top = store.top("board", 2).await.expect("top");
        assert_eq!(top.iter().map(|(_, s)| s).sum::<f64>(), 2000.0, "{top:?}");
    })
    .await
}

// Requirement 8: SCAN, not KEYS.
#[tokio::test]
async fn keys_walks_the_keyspace_with_scan() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let n = rand::rng().random_range(1200..1800);
        let mut redis = prefix.redis();
        let mut pipe = redis::pipe();
        for i in 0..n {
            pipe.set(prefix.key(&format!("item:{i}")), i).ignore();
        }
        for i in 0..20 {
            pipe.set(prefix.key(&format!("other:{i}")), i).ignore();
        }
        let _: () = pipe.query(&mut redis).unwrap();

        let mut expected: Vec<String> = (0..n).map(|i| format!("item:{i}")).collect();
        expected.sort();
        let found = store.keys("item:*").await.expect("keys");
        assert_eq!(found.len(), n, "all {n} keys, over several SCAN calls");
        assert_eq!(
            found, expected,
            "names without the prefix, sorted, each once"
        );
        assert_eq!(
            store.keys("nothing:*").await.expect("keys"),
            Vec::<String>::new()
        );
    })
    .await
}

#[tokio::test]
async fn clear_deletes_only_this_prefix() {
    within(async {
        let (mine, theirs) = (Prefix::new("ch4test"), Prefix::new("ch4test"));
        let (store, other) = (store(&mine).await, store(&theirs).await);
        let n = rand::rng().random_range(5..50);
        for i in 0..n {
            store
                .set_with_ttl(&format!("k{i}"), "v", Duration::from_secs(60))
                .await
                .expect("set");
        }
        other
            .set_with_ttl("k0", "v", Duration::from_secs(60))
            .await
            .expect("set");
        assert_eq!(
            store.clear().await.expect("clear"),
            n,
            "clear returns how many it deleted"
        );
        assert_eq!(mine.count_keys(), 0);
        assert_eq!(theirs.count_keys(), 1, "another prefix is untouched");
    })
    .await
}
