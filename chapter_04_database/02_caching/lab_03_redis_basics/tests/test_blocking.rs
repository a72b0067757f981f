//! Grader for Redis Basics: a blocking pop must not hold up the store's other commands.
//!
//! Alone in its file (its own test process), so the blocked clients it looks for in
//! `CLIENT LIST` are its own.

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
async fn blocking_pop_does_not_hold_up_other_commands() {
    within(async {
        let prefix = Prefix::new("ch4test");
        let store = Store::connect(&prefix.url, &prefix.prefix)
            .await
            .expect("connect");
        let before = blocked_brpops(&prefix);
        let consumer = store.clone();
        let pop =
            tokio::spawn(async move { consumer.pop_job("jobs", Duration::from_secs(6)).await });
        eventually("requirement 5: the pop is parked in BRPOP", || async {
            blocked_brpops(&prefix) > before
        })
        .await;

        // The same Store (same multiplexed connection, if that is all it has) keeps working
        // while the pop waits: on a shared connection these commands would queue behind BRPOP.
        for i in 0..5 {
            store
                .incr("counter", 1)
                .await
                .expect("requirement 5: incr while a pop waits (BRPOP on its own connection)");
            assert!(
                !pop.is_finished(),
                "requirement 5: the pop ended after {i} other commands, before any job came; wanted it still waiting"
            );
        }
        store.push_job("jobs", "wake up").await.expect("push");
        let popped = pop.await.expect("pop panicked").expect("pop");
        assert!(
            popped.as_deref() == Some("wake up"),
            "requirement 5: the waiting pop gave {popped:?}; wanted \"wake up\""
        );
    })
    .await
}
