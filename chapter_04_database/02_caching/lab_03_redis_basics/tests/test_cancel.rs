//! Grader for Redis Basics: a pop given up on (its future dropped) leaves nothing parked in the
//! server, so a job pushed afterwards goes to the next pop instead of a caller that is gone.
//!
//! Alone in its file (its own test process), so the blocked clients it counts in `CLIENT LIST`
//! are its own.

labkit::lab_mod!(lab);

use std::time::Duration;

use lab::Store;
use labkit::keyspace::Prefix;
use labkit::wait::{eventually, within};

/// Clients parked in a blocking command right now, from the server's point of view.
fn blocked_brpops(prefix: &Prefix) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut prefix.redis())
        .unwrap();
    list.lines()
        .filter(|line| line.contains("cmd=brpop"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_pop_leaves_no_client_blocked() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = Store::connect(&prefix.url, &prefix.prefix)
            .await
            .expect("connect");
        let before = blocked_brpops(&prefix);
        let consumer = store.clone();
        let pop =
            tokio::spawn(async move { consumer.pop_job("jobs", Duration::from_secs(20)).await });
        eventually("requirement 5: the pop is parked in BRPOP", || async {
            blocked_brpops(&prefix) > before
        })
        .await;
        // The caller gives up (a request cancelled, a timeout around the pop).
        pop.abort();
        let _ = pop.await;
        eventually(
            "requirement 5: once the pop's future is dropped, the server has no client left parked in its BRPOP (close the pop's own connection with it; a BRPOP left on a shared connection takes the next job)",
            || async { blocked_brpops(&prefix) == before },
        )
        .await;
        store.push_job("jobs", "after").await.expect("push");
        let popped = store
            .pop_job("jobs", Duration::from_secs(2))
            .await
            .expect("pop");
        assert!(
            popped.as_deref() == Some("after"),
            "requirement 5: the pop after a dropped one gave {popped:?}; wanted the job pushed since, \"after\""
        );
    })
    .await
}
