//! Grader for SQLx CRUD: the repository, used as a library against a real PostgreSQL.
//!
//! Every test gets a database of its own (created, migrated by the lab's `migrate`, dropped at
//! the end), so the tests run in parallel.

use std::collections::HashSet;

use labkit::pg::TestDb;
use labkit::wait::within;
use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{Page, RepoError, TaskRepo, TaskUpdate};

/// A fresh database, migrated through the lab's code.
async fn setup(max_connections: u32) -> (TestDb, TaskRepo) {
    let db = TestDb::new(max_connections).await;
    let repo = TaskRepo::new(db.pool.clone());
    repo.migrate().await.expect("migrate");
    (db, repo)
}

fn random_name(what: &str) -> String {
    format!("{what}-{}", rand::rng().random_range(1000..1_000_000))
}

// Requirement 1: migrations create the schema, and running them again is harmless.
#[tokio::test]
async fn migrate_creates_the_schema_and_is_idempotent() {
    within(async {
        let (db, repo) = setup(2).await;
        repo.migrate()
            .await
            .expect("a second migrate must be a no-op");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY table_name",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        for table in ["_sqlx_migrations", "lists", "tasks"] {
            assert!(
                tables.iter().any(|t| t == table),
                "requirement 1: table {table} is missing after migrate(); found {tables:?}"
            );
        }
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert!(
            applied == 1,
            "requirement 1: _sqlx_migrations holds {applied} rows after two migrate() calls; wanted 1"
        );
    })
    .await
}

// Requirement 2: create and get return the stored rows.
#[tokio::test]
async fn creates_and_gets_a_task() {
    within(async {
        let (_db, repo) = setup(2).await;
        let name = random_name("list");
        let capacity = rand::rng().random_range(5..50);
        let list = repo
            .create_list(&name, capacity)
            .await
            .expect("create_list");
        assert!(
            (list.name.as_str(), list.capacity) == (name.as_str(), capacity),
            "requirement 2: create_list returned ({:?}, {}); wanted ({name:?}, {capacity})",
            list.name,
            list.capacity
        );

        let title = random_name("task");
        let task = repo
            .create_task(list.id, &title)
            .await
            .expect("create_task");
        assert!(
            task.list_id == list.id && task.title == title,
            "requirement 2: create_task returned list {} title {:?}; wanted list {} title {title:?}",
            task.list_id,
            task.title,
            list.id
        );
        assert!(!task.done, "requirement 2: a new task came back with done = true; wanted false");
        let age = chrono::Utc::now() - task.created_at;
        assert!(
            age.num_minutes().abs() < 5,
            "requirement 2: created_at is {age} away from now; wanted the database's now()"
        );

        let fetched = repo.get_task(task.id).await.expect("get_task");
        assert!(
            fetched == task,
            "requirement 2: get_task returned {fetched:?}; wanted the created row {task:?}"
        );
    })
    .await
}

#[tokio::test]
async fn get_of_a_missing_task_is_not_found() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let task = repo
            .create_task(list.id, "exists")
            .await
            .expect("create_task");
        let missing = task.id + rand::rng().random_range(1..1000);
        match repo.get_task(missing).await {
            Err(RepoError::NotFound { id, .. }) => assert!(
                id == missing,
                "requirement 2: NotFound names id {id}; wanted {missing}"
            ),
            other => panic!("requirement 2: get_task({missing}) must be NotFound, got {other:?}"),
        }
    })
    .await
}

// Requirement 3: constraint violations become domain errors.
#[tokio::test]
async fn duplicate_title_in_a_list_is_a_duplicate_error() {
    within(async {
        let (_db, repo) = setup(2).await;
        let a = repo.create_list("a", 10).await.expect("create_list a");
        let b = repo.create_list("b", 10).await.expect("create_list b");
        let title = random_name("task");
        repo.create_task(a.id, &title).await.expect("first task");
        assert!(
            matches!(
                repo.create_task(a.id, &title).await,
                Err(RepoError::Duplicate(_))
            ),
            "requirement 3: the same title twice in one list must be RepoError::Duplicate"
        );
        repo.create_task(b.id, &title)
            .await
            .expect("the same title in another list is fine");
    })
    .await
}

#[tokio::test]
async fn duplicate_list_name_is_a_duplicate_error() {
    within(async {
        let (_db, repo) = setup(2).await;
        let name = random_name("list");
        repo.create_list(&name, 3).await.expect("create_list");
        let again = repo.create_list(&name, 3).await;
        assert!(
            matches!(again, Err(RepoError::Duplicate(_))),
            "requirement 3: a second list named {name:?} must be RepoError::Duplicate, got {again:?}"
        );
    })
    .await
}

#[tokio::test]
async fn task_in_a_missing_list_is_not_found() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let missing = list.id + rand::rng().random_range(1..1000);
        match repo.create_task(missing, "orphan").await {
            Err(RepoError::NotFound { id, .. }) => assert!(
                id == missing,
                "requirement 3: NotFound names id {id}; wanted list {missing}"
            ),
            other => panic!(
                "requirement 3: a task in missing list {missing} must be NotFound, got {other:?}"
            ),
        }
    })
    .await
}

#[tokio::test]
async fn invalid_values_are_invalid_errors() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let empty = repo.create_task(list.id, "").await;
        assert!(
            matches!(empty, Err(RepoError::Invalid(_))),
            "requirement 3: an empty title must be RepoError::Invalid, got {empty:?}"
        );
        let zero = repo.create_list("zero", 0).await;
        assert!(
            matches!(zero, Err(RepoError::Invalid(_))),
            "requirement 3: capacity 0 must be RepoError::Invalid, got {zero:?}"
        );
    })
    .await
}

// Requirement 4: keyset pagination.
async fn all_pages(repo: &TaskRepo, list_id: i64, limit: i64) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = repo
            .list_tasks(list_id, after, limit)
            .await
            .expect("list_tasks");
        assert!(
            page.tasks.len() as i64 <= limit,
            "requirement 4: a page of {} tasks; wanted at most the limit {limit}",
            page.tasks.len()
        );
        after = page.next;
        pages.push(page);
        if after.is_none() {
            return pages;
        }
        assert!(
            pages.len() < 1000,
            "requirement 4: 1000 pages and `next` is still Some: pagination does not end"
        );
    }
}

#[tokio::test]
async fn lists_tasks_with_keyset_pagination() {
    within(async {
        let (_db, repo) = setup(4).await;
        let mut rng = rand::rng();
        let n = rng.random_range(20..60);
        let list = repo.create_list("big", 100).await.expect("create_list");
        let other = repo.create_list("other", 100).await.expect("create_list");
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(
                repo.create_task(list.id, &format!("t{i}"))
                    .await
                    .expect("create")
                    .id,
            );
            if i % 3 == 0 {
                repo.create_task(other.id, &format!("o{i}"))
                    .await
                    .expect("create");
            }
        }
        let limit = rng.random_range(3..8);
        let pages = all_pages(&repo, list.id, limit).await;
        let seen: Vec<i64> = pages
            .iter()
            .flat_map(|p| p.tasks.iter().map(|t| t.id))
            .collect();
        let first_difference = seen.iter().zip(&ids).position(|(a, b)| a != b);
        assert!(
            seen == ids,
            "requirement 4: paging gave {} ids, wanted the list's {} in id order; first difference at index {first_difference:?}",
            seen.len(),
            ids.len()
        );
        let expected_pages = (n as usize).div_ceil(limit as usize);
        assert!(
            pages.len() == expected_pages,
            "requirement 4: {n} tasks at {limit} a page took {} pages; wanted {expected_pages} (no empty last page)",
            pages.len()
        );
        for page in &pages[..pages.len() - 1] {
            let last = page.tasks.last().map(|t| t.id);
            assert!(
                page.next == last,
                "requirement 4: next is {:?}; wanted the page's last id {last:?}",
                page.next
            );
        }
        // A last page that is exactly full: `next` must still be None, so the client does not
        // ask for an empty page (knowing needs one row more than the limit).
        let tail = ids.len() - 1 - limit as usize;
        let last = repo
            .list_tasks(list.id, Some(ids[tail]), limit)
            .await
            .expect("list_tasks");
        assert!(
            last.tasks.len() == limit as usize && last.next.is_none(),
            "requirement 4: the last {limit} tasks came as a page of {} with next = {:?}; wanted {limit} tasks and next = None",
            last.tasks.len(),
            last.next
        );
    })
    .await
}

#[tokio::test]
async fn pagination_does_not_skip_rows_when_earlier_rows_are_deleted() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 100).await.expect("create_list");
        let mut ids = Vec::new();
        for i in 0..12 {
            ids.push(
                repo.create_task(list.id, &format!("t{i}"))
                    .await
                    .expect("create")
                    .id,
            );
        }
        let first = repo.list_tasks(list.id, None, 5).await.expect("page 1");
        assert!(
            first.tasks.len() == 5,
            "requirement 4: page 1 of 12 tasks at 5 a page has {} tasks; wanted 5",
            first.tasks.len()
        );
        // Somebody deletes two rows of the page we already read: with OFFSET 5 the next page
        // would start two rows too late.
        repo.delete_task(ids[0]).await.expect("delete");
        repo.delete_task(ids[3]).await.expect("delete");
        let second = repo
            .list_tasks(list.id, first.next, 5)
            .await
            .expect("page 2");
        let got: Vec<i64> = second.tasks.iter().map(|t| t.id).collect();
        assert!(
            got == ids[5..10],
            "requirement 4: after deleting two rows of page 1, page 2 is {got:?}; wanted {:?} (the rows right after the cursor)",
            &ids[5..10]
        );
    })
    .await
}

#[tokio::test]
async fn rejects_a_page_size_out_of_range() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        repo.create_task(list.id, "one").await.expect("create_task");
        let page = repo
            .list_tasks(list.id, None, 1)
            .await
            .expect("limit 1 is fine");
        assert!(
            page.tasks.len() == 1,
            "requirement 4: limit 1 gave {} tasks; wanted 1",
            page.tasks.len()
        );
        for limit in [0, -1, lab::MAX_PAGE_SIZE + 1, i64::MAX] {
            let result = repo.list_tasks(list.id, None, limit).await;
            assert!(
                matches!(result, Err(RepoError::Invalid(_))),
                "requirement 4: limit {limit} must be RepoError::Invalid, got {result:?}"
            );
        }
    })
    .await
}

// Requirement 5: update and delete.
#[tokio::test]
async fn updates_title_and_done() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let task = repo
            .create_task(list.id, "draft")
            .await
            .expect("create_task");
        let title = random_name("final");

        let only_done = TaskUpdate {
            title: None,
            done: Some(true),
        };
        let updated = repo
            .update_task(task.id, only_done)
            .await
            .expect("update done");
        assert!(
            (updated.title.as_str(), updated.done) == ("draft", true),
            "requirement 5: updating only done gave ({:?}, {}); wanted (\"draft\", true)",
            updated.title,
            updated.done
        );

        let only_title = TaskUpdate {
            title: Some(title.clone()),
            done: None,
        };
        let updated = repo
            .update_task(task.id, only_title)
            .await
            .expect("update title");
        assert!(
            (updated.title.as_str(), updated.done) == (title.as_str(), true),
            "requirement 5: updating only the title gave ({:?}, {}); wanted ({title:?}, true)",
            updated.title,
            updated.done
        );
        let stored = repo.get_task(task.id).await.expect("get");
        assert!(
            stored == updated,
            "requirement 5: the stored row is {stored:?}; wanted the returned {updated:?}"
        );
    })
    .await
}

#[tokio::test]
async fn update_errors_are_domain_errors() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let a = repo.create_task(list.id, "a").await.expect("create a");
        let b = repo.create_task(list.id, "b").await.expect("create b");
        let clash = TaskUpdate {
            title: Some("a".into()),
            done: None,
        };
        let result = repo.update_task(b.id, clash).await;
        assert!(
            matches!(result, Err(RepoError::Duplicate(_))),
            "requirement 5: renaming b onto a must be RepoError::Duplicate, got {result:?}"
        );
        let missing = a.id.max(b.id) + rand::rng().random_range(1..1000);
        let result = repo.update_task(missing, TaskUpdate::default()).await;
        assert!(
            matches!(result, Err(RepoError::NotFound { id, .. }) if id == missing),
            "requirement 5: an update of missing task {missing} must be NotFound, got {result:?}"
        );
        let b_now = repo.get_task(b.id).await.expect("get").title;
        assert!(
            b_now == "b",
            "requirement 5: b is titled {b_now:?} after a refused rename; wanted \"b\""
        );
    })
    .await
}

#[tokio::test]
async fn deletes_a_task_once() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let keep = repo.create_task(list.id, "keep").await.expect("create");
        let gone = repo.create_task(list.id, "gone").await.expect("create");
        repo.delete_task(gone.id).await.expect("delete");
        let after = repo.get_task(gone.id).await;
        assert!(
            matches!(after, Err(RepoError::NotFound { .. })),
            "requirement 5: get_task after delete_task must be NotFound, got {after:?}"
        );
        let again = repo.delete_task(gone.id).await;
        assert!(
            matches!(again, Err(RepoError::NotFound { .. })),
            "requirement 5: deleting twice must be NotFound, got {again:?}"
        );
        let kept = repo.get_task(keep.id).await.expect("the other task stays");
        assert!(
            kept == keep,
            "requirement 5: the other task is now {kept:?}; wanted it unchanged {keep:?}"
        );
    })
    .await
}

// Requirement 6: the capacity of a list holds, and a move is all or nothing.
#[tokio::test]
async fn a_full_list_refuses_new_tasks() {
    within(async {
        let (_db, repo) = setup(2).await;
        let capacity = rand::rng().random_range(1..6);
        let list = repo
            .create_list("small", capacity)
            .await
            .expect("create_list");
        for i in 0..capacity {
            repo.create_task(list.id, &format!("t{i}"))
                .await
                .expect("room left");
        }
        match repo.create_task(list.id, "one too many").await {
            Err(RepoError::ListFull {
                list_id,
                capacity: c,
            }) => assert!(
                (list_id, c) == (list.id, capacity),
                "requirement 6: ListFull names list {list_id} capacity {c}; wanted list {} capacity {capacity}",
                list.id
            ),
            other => panic!("requirement 6: a full list must answer ListFull, got {other:?}"),
        }
    })
    .await
}

#[tokio::test]
async fn moves_a_task_between_lists() {
    within(async {
        let (_db, repo) = setup(2).await;
        let from = repo.create_list("from", 10).await.expect("create_list");
        let to = repo.create_list("to", 10).await.expect("create_list");
        let task = repo.create_task(from.id, "travel").await.expect("create");
        let moved = repo.move_task(task.id, to.id).await.expect("move_task");
        assert!(
            (moved.id, &moved.title, moved.list_id) == (task.id, &task.title, to.id),
            "requirement 6: move_task returned {moved:?}; wanted task {} in list {}",
            task.id,
            to.id
        );
        let stored = repo.get_task(task.id).await.expect("get").list_id;
        assert!(
            stored == to.id,
            "requirement 6: the stored task is in list {stored}; wanted {}",
            to.id
        );
        let left = repo.list_tasks(from.id, None, 10).await.expect("list");
        assert!(
            left.tasks.is_empty(),
            "requirement 6: the source list still has {} tasks after the move; wanted 0",
            left.tasks.len()
        );
    })
    .await
}

#[tokio::test]
async fn a_failed_move_changes_nothing() {
    within(async {
        let (_db, repo) = setup(2).await;
        let from = repo.create_list("from", 10).await.expect("create_list");
        let full = repo.create_list("full", 1).await.expect("create_list");
        let task = repo.create_task(from.id, "stay").await.expect("create");
        repo.create_task(full.id, "occupant").await.expect("create");

        let result = repo.move_task(task.id, full.id).await;
        assert!(
            matches!(result, Err(RepoError::ListFull { .. })),
            "requirement 6: a move into a full list must be ListFull, got {result:?}"
        );
        let missing = task.id + 1000;
        let result = repo.move_task(missing, from.id).await;
        assert!(
            matches!(result, Err(RepoError::NotFound { .. })),
            "requirement 6: a move of a missing task must be NotFound, got {result:?}"
        );
        let result = repo.move_task(task.id, full.id + 1000).await;
        assert!(
            matches!(result, Err(RepoError::NotFound { .. })),
            "requirement 6: a move to a missing list must be NotFound, got {result:?}"
        );

        let stored = repo.get_task(task.id).await.expect("get");
        assert!(
            stored == task,
            "requirement 6: after three failed moves the task is {stored:?}; wanted it unchanged {task:?}"
        );
        let in_full = repo.list_tasks(full.id, None, 10).await.expect("list");
        assert!(
            in_full.tasks.len() == 1,
            "requirement 6: the full list holds {} tasks after a refused move; wanted 1",
            in_full.tasks.len()
        );
    })
    .await
}

/// Counts a list's rows directly, not through the lab's code.
async fn count_in(db: &TestDb, list_id: i64) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasks WHERE list_id = $1")
        .bind(list_id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_moves_never_overfill_a_list() {
    within(async {
        let (db, repo) = setup(16).await;
        let movers = 16;
        let capacity = rand::rng().random_range(2..6);
        let from = repo.create_list("from", 100).await.expect("create_list");
        let to = repo.create_list("to", capacity).await.expect("create_list");
        let mut ids = Vec::new();
        for i in 0..movers {
            ids.push(
                repo.create_task(from.id, &format!("t{i}"))
                    .await
                    .expect("create")
                    .id,
            );
        }
        // All movers start together and race for the last free places of `to`.
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(movers));
        let handles: Vec<_> = ids
            .iter()
            .map(|&id| {
                let (repo, barrier) = (repo.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    repo.move_task(id, to.id).await
                })
            })
            .collect();
        let (mut moved, mut refused) = (0, 0);
        for handle in handles {
            match handle.await.expect("mover panicked") {
                Ok(_) => moved += 1,
                Err(RepoError::ListFull { .. }) => refused += 1,
                Err(e) => panic!("a move failed with {e:?}; only ListFull is expected"),
            }
        }
        assert!(
            moved == capacity && refused == movers as i32 - capacity,
            "requirement 6: {movers} racing moves into a list of capacity {capacity}: {moved} moved, {refused} refused; wanted {capacity} moved"
        );
        let (in_to, in_from) = (count_in(&db, to.id).await, count_in(&db, from.id).await);
        assert!(
            in_to == i64::from(capacity) && in_from == movers as i64 - i64::from(capacity),
            "requirement 6: the target holds {in_to} tasks and the source {in_from}; wanted {capacity} and {}",
            movers as i32 - capacity
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_overfill_a_list() {
    within(async {
        let (db, repo) = setup(16).await;
        let writers = 16;
        let capacity = rand::rng().random_range(2..6);
        let list = repo
            .create_list("small", capacity)
            .await
            .expect("create_list");
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(writers));
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let (repo, barrier) = (repo.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    repo.create_task(list.id, &format!("t{i}")).await
                })
            })
            .collect();
        let mut titles = HashSet::new();
        for handle in handles {
            match handle.await.expect("writer panicked") {
                Ok(task) => assert!(
                    titles.insert(task.title.clone()),
                    "requirement 6: title {:?} was created twice",
                    task.title
                ),
                Err(RepoError::ListFull { .. }) => {}
                Err(e) => panic!("a create failed with {e:?}; only ListFull is expected"),
            }
        }
        assert!(
            titles.len() == capacity as usize,
            "requirement 6: {writers} racing creates into a list of capacity {capacity}: {} succeeded; wanted {capacity}",
            titles.len()
        );
        let stored = count_in(&db, list.id).await;
        assert!(
            stored == i64::from(capacity),
            "requirement 6: the list holds {stored} tasks; wanted its capacity {capacity}"
        );
    })
    .await
}

/// How many backends of the test database wait on a lock right now, as PostgreSQL sees them.
async fn lock_waiters(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("pg_stat_activity")
}

/// The race of the concurrent tests, made deterministic: the test itself holds the list's row
/// lock while `create_task` runs, so the writer must queue behind it, and must see the row the
/// test commits before it counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waits_for_the_list_lock_then_counts_committed_rows() {
    within(async {
        let (db, repo) = setup(4).await;
        let capacity = rand::rng().random_range(2..6);
        let list = repo
            .create_list("small", capacity)
            .await
            .expect("create_list");
        for i in 0..capacity - 1 {
            repo.create_task(list.id, &format!("t{i}"))
                .await
                .expect("room left");
        }
        // Another writer locks the list and is about to take its last place.
        let mut other = db.pool.begin().await.expect("BEGIN");
        sqlx::query("SELECT id FROM lists WHERE id = $1 FOR UPDATE")
            .bind(list.id)
            .execute(&mut *other)
            .await
            .expect("SELECT ... FOR UPDATE");
        let racer = tokio::spawn({
            let repo = repo.clone();
            async move { repo.create_task(list.id, "racer").await }
        });
        let mut waited = false;
        for _ in 0..500 {
            if racer.is_finished() {
                break;
            }
            if lock_waiters(&db).await > 0 {
                waited = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if !waited {
            let finished = racer.is_finished();
            racer.abort();
            panic!(
                "requirement 6: while another transaction held the list's row lock, create_task {}; wanted it to wait on the lock (SELECT capacity ... FOR UPDATE in its transaction)",
                if finished { "finished without waiting" } else { "neither finished nor waited on a lock for 5 s" }
            );
        }
        sqlx::query("INSERT INTO tasks (list_id, title) VALUES ($1, 'last place')")
            .bind(list.id)
            .execute(&mut *other)
            .await
            .expect("INSERT");
        other.commit().await.expect("COMMIT");
        let result = racer.await.expect("create_task panicked");
        let stored = count_in(&db, list.id).await;
        assert!(
            matches!(result, Err(RepoError::ListFull { .. })) && stored == i64::from(capacity),
            "requirement 6: create_task waited for the lock while another writer took the last place, then answered {result:?} and the list holds {stored} tasks (capacity {capacity}); wanted ListFull: count after the lock is granted, in READ COMMITTED, so the count sees the committed row"
        );
    })
    .await
}

/// Text and values travel apart: a title full of SQL is stored as a string.
#[tokio::test]
async fn titles_travel_as_bind_parameters() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo
            .create_list(&random_name("O'Brien's list"), 10)
            .await
            .expect("create_list with a quote in the name");
        let title = format!(
            "it's {}'); DROP TABLE tasks; --",
            rand::rng().random_range(0..1000)
        );
        let created = repo.create_task(list.id, &title).await;
        let Ok(task) = created else {
            panic!(
                "requirement 2: create_task with the title {title:?} answered {created:?}; wanted the row stored as is (bind the title with $2, never format it into the SQL)"
            );
        };
        let stored = repo.get_task(task.id).await.expect("get_task");
        assert!(
            stored.title == title,
            "requirement 2: the stored title is {:?}; wanted {title:?}",
            stored.title
        );
        let renamed = format!("{title} ' OR '1'='1");
        let update = TaskUpdate {
            title: Some(renamed.clone()),
            done: None,
        };
        let updated = repo.update_task(task.id, update).await;
        assert!(
            matches!(&updated, Ok(t) if t.title == renamed),
            "requirement 5: renaming to {renamed:?} answered {updated:?}; wanted the row with that title"
        );
    })
    .await
}
