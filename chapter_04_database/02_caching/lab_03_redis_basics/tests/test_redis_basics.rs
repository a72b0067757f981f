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
        let key = store.key("user:7");
        assert!(
            key == format!("{}user:7", prefix.prefix),
            "requirement 1: key(\"user:7\") is {key:?}; wanted {:?}",
            format!("{}user:7", prefix.prefix)
        );
        let closed = labkit::net::closed_port();
        let result = Store::connect(&format!("redis://{closed}"), "x:").await;
        assert!(
            matches!(result, Err(StoreError::Redis(_))),
            "requirement 1: connecting to a closed port answered {:?}; wanted StoreError::Redis",
            result.as_ref().err()
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
        let got = store.get("greeting").await.expect("get");
        assert!(
            got.as_ref() == Some(&value),
            "requirement 2: get after set gave {got:?}; wanted {value:?}"
        );

        let raw: Option<String> = prefix.redis().get(prefix.key("greeting")).unwrap();
        assert!(
            raw.as_ref() == Some(&value),
            "requirement 2: Redis holds {raw:?} at <prefix>greeting; wanted {value:?}"
        );
        let pttl: i64 = prefix.redis().pttl(prefix.key("greeting")).unwrap();
        assert!(
            (1..=30_000).contains(&pttl),
            "requirement 2: PTTL of the key is {pttl}; wanted 1..=30000 ms (it expires within 30 s)"
        );
        let ttl = store.ttl("greeting").await.expect("ttl").expect("a TTL");
        assert!(
            ttl > Duration::ZERO && ttl <= Duration::from_secs(30),
            "requirement 2: ttl() is {ttl:?}; wanted between 0 and 30 s"
        );

        let missing = store.get("missing").await.expect("get");
        assert!(
            missing.is_none(),
            "requirement 2: get of a missing key gave {missing:?}; wanted None"
        );
        let ttl = store.ttl("missing").await.expect("ttl");
        assert!(
            ttl.is_none(),
            "requirement 2: ttl of a missing key is {ttl:?}; wanted None"
        );
        let _: () = prefix.redis().set(prefix.key("forever"), "1").unwrap();
        let ttl = store.ttl("forever").await.expect("ttl");
        assert!(
            ttl.is_none(),
            "requirement 2: ttl of a key without expiry is {ttl:?}; wanted None"
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
            "requirement 2: PTTL after a 300 ms set_with_ttl is {pttl}; wanted 1..=300 (set it in milliseconds: PX)"
        );
        eventually("requirement 2: the value expired", || async {
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
        let first = store.incr("counter", start).await.expect("incr");
        assert!(
            first == start,
            "requirement 3: incr by {start} of a missing counter gave {first}; wanted {start}"
        );
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
                assert!(
                    seen.insert(value),
                    "requirement 3: two increments both returned {value}; wanted each its own value"
                );
            }
        }
        let expected: HashSet<i64> = (start + 1..=start + 500).collect();
        assert!(
            seen == expected,
            "requirement 3: 500 concurrent increments returned {} distinct values; wanted {}..={}",
            seen.len(),
            start + 1,
            start + 500
        );
        let raw: i64 = prefix.redis().get(prefix.key("counter")).unwrap();
        assert!(
            raw == start + 500,
            "requirement 3: the counter holds {raw} after 500 increments from {start}; wanted {}",
            start + 500
        );
    })
    .await
}

#[tokio::test]
async fn hit_counts_in_a_fixed_window() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = store(&prefix).await;
        let window = Duration::from_secs(10);
        let count = store.hit("api", window).await.expect("hit");
        assert!(
            count == 1,
            "requirement 3: the first hit counted {count}; wanted 1"
        );
        let first: i64 = prefix.redis().pttl(prefix.key("api")).unwrap();
        assert!(
            (1..=10_000).contains(&first),
            "requirement 3: after the first hit PTTL is {first}; wanted 1..=10000 (the first hit opens a 10 s window)"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let n = rand::rng().random_range(3..10);
        for expected in 2..=n {
            let count = store.hit("api", window).await.expect("hit");
            assert!(
                count == expected,
                "requirement 3: hit number {expected} counted {count}"
            );
        }
        let later: i64 = prefix.redis().pttl(prefix.key("api")).unwrap();
        assert!(
            later > 0 && later <= first - 100,
            "requirement 3: PTTL was {first} after the first hit and {later} after later hits; wanted it lower by the time that passed (later hits must not push the window's end back)"
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
        for expected in [1, 2] {
            let count = store.hit("login", window).await.expect("hit");
            assert!(
                count == expected,
                "requirement 3: hit number {expected} counted {count}"
            );
        }
        eventually("requirement 3: the window expired", || async {
            prefix
                .redis()
                .exists::<_, bool>(prefix.key("login"))
                .map(|e| !e)
                .unwrap_or(false)
        })
        .await;
        let count = store.hit("login", window).await.expect("hit");
        assert!(
            count == 1,
            "requirement 3: the first hit of a new window counted {count}; wanted 1"
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
        let loaded = store.load_user(user.id).await.expect("load_user");
        assert!(
            loaded.as_ref() == Some(&user),
            "requirement 4: load_user gave {loaded:?}; wanted the saved {user:?}"
        );

        let key = prefix.key(&format!("user:{}", user.id));
        let mut redis = prefix.redis();
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut redis).unwrap();
        assert!(
            kind == "hash",
            "requirement 4: <prefix>user:<id> is a {kind}; wanted one hash"
        );
        let name: String = redis.hget(&key, "name").unwrap();
        let visits: i64 = redis.hget(&key, "visits").unwrap();
        assert!(
            (&name, visits) == (&user.name, user.visits),
            "requirement 4: the hash holds name {name:?} visits {visits}; wanted {:?} and {}",
            user.name,
            user.visits
        );
        let missing = store.load_user(user.id + 1).await.expect("load_user");
        assert!(
            missing.is_none(),
            "requirement 4: load_user of a missing user gave {missing:?}; wanted None"
        );
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
            let visits = store.add_visit(user.id).await.expect("add_visit");
            assert!(
                visits == user.visits + i,
                "requirement 4: add_visit number {i} returned {visits}; wanted {}",
                user.visits + i
            );
        }
        let loaded = store
            .load_user(user.id)
            .await
            .expect("load")
            .expect("the user");
        let wanted = User {
            visits: user.visits + k,
            ..user
        };
        assert!(
            loaded == wanted,
            "requirement 4: after {k} visits the user is {loaded:?}; wanted {wanted:?}"
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
                "requirement 4: user {id} is not a valid user hash: load_user gave {result:?}; wanted StoreError::Corrupt"
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
            let len = store.push_job("jobs", job).await.expect("push");
            assert!(
                len == i + 1,
                "requirement 5: push number {} returned queue length {len}",
                i + 1
            );
        }
        for job in &jobs {
            let popped = store
                .pop_job("jobs", Duration::from_secs(2))
                .await
                .expect("pop");
            assert!(
                popped.as_ref() == Some(job),
                "requirement 5: pop gave {popped:?}; wanted {job:?} (first in, first out)"
            );
        }
        let len: usize = prefix.redis().llen(prefix.key("jobs")).unwrap();
        assert!(
            len == 0,
            "requirement 5: {len} jobs left after popping all; wanted 0"
        );
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
        assert!(
            popped.is_none(),
            "requirement 5: pop on an empty queue gave {popped:?}; wanted None"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "requirement 5: BRPOP with a 1 s timeout waits about 1 s, not {:?}",
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
        assert!(
            popped.as_ref() == Some(&job),
            "requirement 5: the waiting pop gave {popped:?}; wanted the job pushed meanwhile, {job:?}"
        );
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
            let total = parts.iter().sum::<i32>() as f64;
            assert!(
                score == total,
                "requirement 6: add_score returned {score}; wanted the total {total}"
            );
            totals.push((player, score));
        }
        totals.sort_by(|a, b| b.1.total_cmp(&a.1));
        for n in [3, 100, 0] {
            let top = store.top("board", n).await.expect("top");
            let wanted = &totals[..n.min(totals.len())];
            assert!(
                top == wanted,
                "requirement 6: top({n}) is {top:?}; wanted {wanted:?}, best first"
            );
        }
        for (rank, (player, _)) in totals.iter().enumerate() {
            let got = store.rank("board", player).await.expect("rank");
            assert!(
                got == Some(rank),
                "requirement 6: rank of {player} is {got:?}; wanted Some({rank})"
            );
        }
        let nobody = store.rank("board", "nobody").await.expect("rank");
        assert!(
            nobody.is_none(),
            "requirement 6: rank of a missing player is {nobody:?}; wanted None"
        );
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
        let first_difference = values.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            values == expected,
            "requirement 7: get_many of {} names gave {} values, first difference at {first_difference:?}; wanted the values in the order of the names, None when missing",
            names.len(),
            values.len()
        );
        let pttl: i64 = prefix
            .redis()
            .pttl(prefix.key(&format!("k{}", n - 1)))
            .unwrap();
        assert!(
            (1..=60_000).contains(&pttl),
            "requirement 7: the last key of set_many has PTTL {pttl}; wanted 1..=60000 (every key gets the TTL)"
        );
        let none = store.get_many(&[]).await.expect("get_many of nothing");
        assert!(
            none.is_empty(),
            "requirement 7: get_many of no names gave {none:?}; wanted an empty list"
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
        assert!(
            (a, b) == (750.0, 1250.0),
            "requirement 7: transfer of 250 from 1000 to 1000 returned ({a}, {b}); wanted (750, 1250)"
        );

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
                        assert!(
                            x + y == 2000.0,
                            "requirement 7: a transfer returned {x} + {y} = {}; wanted 2000 (it saw a half-done transfer)",
                            x + y
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("transfer task failed");
        }
        let top = store.top("board", 2).await.expect("top");
        let sum = top.iter().map(|(_, s)| s).sum::<f64>();
        assert!(
            sum == 2000.0,
            "requirement 7: after the transfers the scores are {top:?}, sum {sum}; wanted 2000"
        );
    })
    .await
}

// Requirement 8: SCAN, not KEYS.

/// How many times the server ran `command` since it started (`INFO commandstats`).
fn command_calls(prefix: &Prefix, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut prefix.redis())
        .expect("INFO commandstats");
    let field = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&field))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0)
}

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
        let (keys_before, scans_before) = (command_calls(&prefix, "keys"), command_calls(&prefix, "scan"));
        let found = store.keys("item:*").await.expect("keys");
        let keys_calls = command_calls(&prefix, "keys") - keys_before;
        let scan_calls = command_calls(&prefix, "scan") - scans_before;
        assert!(
            keys_calls == 0 && scan_calls >= 2,
            "requirement 8: keys() made the server run KEYS {keys_calls} times and SCAN {scan_calls} times; wanted no KEYS (it blocks the server for the whole keyspace) and a SCAN loop"
        );
        assert!(
            found.len() == n,
            "requirement 8: keys(\"item:*\") found {} keys; wanted all {n}, over several SCAN calls",
            found.len()
        );
        let first_difference = found.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            found == expected,
            "requirement 8: keys differ from the names written at index {first_difference:?} ({:?}); wanted names without the prefix, sorted, each once",
            first_difference.map(|i| &found[i])
        );
        let nothing = store.keys("nothing:*").await.expect("keys");
        assert!(
            nothing.is_empty(),
            "requirement 8: keys(\"nothing:*\") gave {nothing:?}; wanted none"
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
        let deleted = store.clear().await.expect("clear");
        assert!(
            deleted == n,
            "requirement 8: clear returned {deleted}; wanted the {n} keys it deleted"
        );
        let (left, other_left) = (mine.count_keys(), theirs.count_keys());
        assert!(
            left == 0 && other_left == 1,
            "requirement 8: after clear, {left} keys are left under the store's prefix and {other_left} under another; wanted 0 and 1 (another prefix is untouched)"
        );
    })
    .await
}
